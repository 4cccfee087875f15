"""The ``vla-agent`` command line. Every subcommand wraps a plain ``run_*(config)`` function."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from vla_agent import __version__
from vla_agent.agent.demo import DEFAULT_SCENE
from vla_agent.errors import VlaAgentError

err = Console(stderr=True)
out = Console()

EPILOG = """examples:
  vla-agent run                                    agent dry run of the default command (VLA policy)
  vla-agent run "put all the red blocks in the bowl" --scene "2 red blocks, blue bowl" --policy expert
  vla-agent plan "stack the blue block on the green one" --json
  vla-agent replay runs/run-*/trace.jsonl --video replay.mp4
  vla-agent bench chains --episodes 100 --policy expert --json
  vla-agent demo                                   scripted dry run, writes runs/demo/episode.mp4
  vla-agent bench expert --episodes 200 --json     expert success, render fps, steps/s as JSON
  vla-agent scene --scene "red block, blue bowl" --image scene.png
  vla-agent skills                                 the skill library
"""


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def _print_rates(title: str, result: dict, total_label: str) -> None:
    """A success table: one row per skill variant, then the headline rate."""
    t = Table(title=title)
    t.add_column("skill")
    t.add_column("success", justify="right")
    for k, v in result["per_variant"].items():
        t.add_row(k, f"{v:.3f}")
    t.add_row(f"[b]{total_label}[/b]", f"[b]{result['success_rate']:.3f}[/b]")
    out.print(t)


def cmd_demo(a: argparse.Namespace) -> int:
    from vla_agent.agent.demo import DemoConfig, run_demo

    cfg = DemoConfig(scene=a.scene, seed=a.seed, out=Path(a.out), video=a.video, randomize=a.randomize)
    summary = run_demo(cfg, log=(lambda s: None) if a.json else err.print)
    if a.json:
        print(json.dumps(summary))
    else:
        out.print(f"video: {summary['video']}\nholds: {', '.join(summary['holds'])}")
    return 0 if all(s["success"] for s in summary["subgoals"]) else 1


def cmd_bench_expert(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench import ExpertBenchConfig, run_expert_bench

    cfg = ExpertBenchConfig(episodes=a.episodes, seed=a.seed, randomize=not a.no_randomize, robot=a.robot)
    with _progress() as prog:
        task = prog.add_task("expert episodes", total=cfg.episodes)
        result = run_expert_bench(cfg, progress=lambda i, n: prog.update(task, completed=i))
    if a.json:
        print(json.dumps(result))
    else:
        _print_rates(f"scripted experts on the {cfg.robot}, {cfg.episodes} episodes", result, "overall")
        out.print(f"render {result['render_fps']:.0f} frames/s, {result['steps_per_s']:.0f} control steps/s")
    return 0


def cmd_scene(a: argparse.Namespace) -> int:
    import imageio.v2 as imageio

    from vla_agent.sim import EnvConfig, SceneSpec, TabletopEnv

    env = TabletopEnv(EnvConfig(randomize=a.randomize))
    env.reset(seed=a.seed, options={"scene": SceneSpec.parse(a.scene) if a.scene else None})
    holds = [str(x) for x in env.holds()]
    if a.image:
        imageio.imwrite(a.image, env.render())
    if a.json:
        w = env.world_state()
        print(
            json.dumps(
                {
                    "objects": {n: [round(float(v), 4) for v in o.position] for n, o in w.objects.items()},
                    "holds": holds,
                }
            )
        )
    else:
        out.print(f"objects: {', '.join(env.names)}")
        out.print(f"holds: {', '.join(holds)}")
        if a.image:
            out.print(f"image: {a.image}")
    env.close()
    return 0


def cmd_skills(a: argparse.Namespace) -> int:
    from vla_agent.skills.library import SKILLS, ArgType, all_skills

    origin = {e.name: e.origin for e in SKILLS.entries()}
    example = {
        ArgType.OBJECT: "red block",
        ArgType.TARGET: "blue bowl",
        ArgType.THING: "blue bowl",
        ArgType.DIRECTION: "left",
    }
    if a.json:
        print(
            json.dumps(
                {
                    s.name: {
                        "args": [x.name for x in s.args],
                        "preconditions": list(s.preconditions),
                        "effects": list(s.effects),
                        "step_budget": s.step_budget,
                        "doc": s.doc,
                        "expert": s.expert is not None,
                        "origin": origin.get(s.name, ""),
                    }
                    for s in all_skills()
                }
            )
        )
        return 0
    t = Table(title="skill library")
    for col in ("skill", "arguments", "preconditions", "effects", "budget", "example"):
        t.add_column(col)
    for s in all_skills():
        t.add_row(
            s.name,
            ", ".join(x.name for x in s.args),
            "\n".join(s.preconditions),
            "\n".join(s.effects),
            str(s.step_budget),
            s.instruction({x.name: example[x.type] for x in s.args}),
        )
    out.print(t)
    return 0


def cmd_bench_skills(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench import SkillBenchConfig, run_skill_bench

    cfg = SkillBenchConfig(
        policy=a.policy,
        checkpoint=a.checkpoint,
        device=a.device,
        episodes_per_skill=a.episodes_per_skill,
        seed=a.seed,
        execute=a.execute,
    )
    with _progress() as prog:
        task = prog.add_task(f"{cfg.policy} rollouts", total=cfg.episodes_per_skill * 3)
        result = run_skill_bench(cfg, progress=lambda i, n: prog.update(task, completed=i, total=n))
    if a.json:
        print(json.dumps(result))
    else:
        title = f"{cfg.policy}: {cfg.episodes_per_skill} episodes per skill, unseen seeds and paraphrases"
        _print_rates(title, result, "mean over skills")
        lat = result["latency_ms"]
        out.print(f"inference latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms")
    return 0


def cmd_bench_server(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench import ServerBenchConfig, run_server_bench

    result = run_server_bench(
        ServerBenchConfig(checkpoint=a.checkpoint, device=a.device, requests=a.requests, flooders=a.flooders)
    )
    if a.json:
        print(json.dumps(result))
    else:
        out.print(
            f"in-process p50 {result['in_process_ms']['p50']:.2f} ms, loopback p50 "
            f"{result['loopback_ms']['p50']:.2f} ms, overhead p50 {result['overhead_ms']['p50']:.2f} ms"
        )
        if result["loopback_flooded_ms"]:
            out.print(
                f"beside {result['flooders']} flooding clients: "
                f"p99 {result['loopback_flooded_ms']['p99']:.2f} ms "
                f"({result['flooded_p99_over_idle']:.2f}x the idle p99)"
            )
    return 0


def _csv(text: str | None) -> tuple[str, ...] | None:
    items = tuple(x.strip() for x in (text or "").split(",") if x.strip())
    return items or None


def cmd_vla_collect(a: argparse.Namespace) -> int:
    from vla_agent.skills.tasks import PLACE_VARIANTS
    from vla_agent.vla.collect import CollectConfig, collect

    cfg = CollectConfig(
        out=Path(a.out),
        episodes=a.episodes,
        seed=a.seed,
        image_size=a.image_size,
        noise_prob=a.noise_prob,
        policy=a.policy,
        takeover_max=a.takeover_max,
        policy_setup=a.policy_setup,
        sloppy_setup=a.sloppy_setup,
        skills=_csv(a.skills),
        place_variants=_csv(a.place_variants) or PLACE_VARIANTS,
        crowded=a.crowded,
    )
    with _progress() as prog:
        what = "recovery demonstrations" if cfg.policy else "expert demonstrations"
        task = prog.add_task(what, total=cfg.episodes)
        result = collect(cfg, progress=lambda i, n: prog.update(task, completed=i))
    if result["dataset"] is None:
        err.print(
            f"[red]error:[/red] no episodes kept: {result['episodes_dropped']} failed expert episodes, "
            f"{result['setup_failed']} setups the policy failed, "
            f"{result['scenes_unplaced']} scenes did not fit",
            highlight=False,
        )
        return 1
    print(
        json.dumps(result)
        if a.json
        else f"{result['episodes_kept']} episodes ({result['frames']} frames) -> {result['dataset']}; "
        f"{result['episodes_dropped']} failed expert episodes dropped"
    )
    return 0


def cmd_vla_train(a: argparse.Namespace) -> int:
    from vla_agent.vla.model import VLAConfig
    from vla_agent.vla.train import TrainConfig, train

    datasets = [Path(x) for x in a.dataset.split(",")]
    cfg = TrainConfig(
        dataset=datasets if len(datasets) > 1 else datasets[0],
        out=Path(a.out),
        steps=a.steps,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        device=a.device,
        precision=a.precision,
        save_every=a.save_every,
        init=Path(a.init) if a.init else None,
        model=VLAConfig(action_head=a.action_head),
    )
    with _progress() as prog:
        task = prog.add_task("training", total=cfg.steps)

        def update(step, total, info):
            prog.update(task, completed=step, description=f"training loss {info['loss']:.3f}")

        result = train(cfg, progress=update)
    print(json.dumps(result) if a.json else f"checkpoint: {result['checkpoint']} ({result['wall_s']:.0f} s)")
    return 0


def cmd_vla_filter(a: argparse.Namespace) -> int:
    from vla_agent.skills.library import get_skill, skill_of_instruction
    from vla_agent.vla.dataset import filter_dataset

    skills = set(_csv(a.skills) or ())
    for name in skills:
        get_skill(name)  # unknown names: one-line error with suggestions
    with _progress() as prog:
        prog.add_task(f"filtering {a.dataset}", total=None)
        result = filter_dataset(a.dataset, Path(a.out), lambda task: skill_of_instruction(task) in skills)
    print(
        json.dumps(result)
        if a.json
        else f"{result['episodes_kept']} episodes ({result['frames']} frames) -> {result['dataset']}; "
        f"{result['episodes_dropped']} dropped"
    )
    return 0


# The data of the shipped checkpoint, all from the scripted expert: per collector, the stage's
# folder, its tasks and how they are drawn. Stacking and regions are weighted up where the policy
# did worst; the last stage places from deliberately imperfect grasps, like the VLA's own.
FOCUS_PLACE_VARIANTS = ("block", "region", "block", "region", "bowl", "plate")
STACK_PLACE_VARIANTS = ("block", "block", "block", "region", "bowl", "plate")
RECIPE: tuple[tuple[str, int, dict], ...] = (
    ("demos", 500, dict(skills=("pick", "place"))),
    ("focus", 400, dict(skills=("place",), place_variants=FOCUS_PLACE_VARIANTS)),
    ("crowded", 667, dict(skills=("pick", "place"), crowded=True, place_variants=FOCUS_PLACE_VARIANTS)),
    ("push", 1100, dict(skills=("push",))),
    ("push-crowded", 1100, dict(skills=("push",), crowded=True)),
    (
        "places",
        700,
        dict(skills=("place",), crowded=True, sloppy_setup=True, place_variants=STACK_PLACE_VARIANTS),
    ),
)


def cmd_vla_reproduce(a: argparse.Namespace) -> int:
    """The shipped checkpoint from nothing: the expert's demonstrations (``RECIPE``, ``--workers``
    collectors on disjoint seeds), one training run from scratch on all of them, a short
    fine-tune at a lower learning rate. Resumable: a finished dataset part is kept, and training
    resumes from its last checkpoint."""
    import json
    import shutil
    import time
    from concurrent.futures import ProcessPoolExecutor

    from vla_agent.vla.checkpoint import DEFAULT_CHECKPOINT
    from vla_agent.vla.collect import CollectConfig, collect
    from vla_agent.vla.train import TrainConfig, train

    t0 = time.perf_counter()
    root = Path(a.out)
    times: dict[str, float] = {}

    parts, seed = [], 0  # every part on fresh seeds, all below the benchmarks' 10^6
    for name, tasks, kw in RECIPE:
        n = max(1, round(tasks * a.scale))
        for k in range(a.workers):
            parts.append(CollectConfig(out=root / name / f"part-{k}", episodes=n, seed=seed, **kw))
            seed += n
    todo = []
    for cfg in parts:
        if (cfg.out / "meta" / "info.json").exists():
            continue  # collected by an earlier run
        shutil.rmtree(cfg.out, ignore_errors=True)  # an interrupted part starts over
        todo.append(cfg)
    t = time.perf_counter()
    with _progress() as prog:
        task = prog.add_task(f"expert demonstrations ({a.workers} collectors)", total=len(todo))
        with ProcessPoolExecutor(a.workers) as pool:
            for i, r in enumerate(pool.map(collect, todo)):
                prog.update(task, completed=i + 1)
                out.print(
                    f"  {r['dataset']}: {r['episodes_kept']} episodes kept, {r['episodes_dropped']} dropped, "
                    f"{r['frames']} frames, {r['wall_s']:.0f} s"
                )
    times["collect"] = time.perf_counter() - t
    datasets = [cfg.out for cfg in parts if (cfg.out / "meta" / "info.json").exists()]

    def fit(name: str, steps: int, **kw) -> Path:
        t = time.perf_counter()
        cfg = TrainConfig(
            dataset=datasets,
            out=root / name,
            steps=steps,
            device=a.device,
            precision=a.precision,
            save_every=max(1, steps // 4),
            **kw,
        )
        with _progress() as prog:
            task = prog.add_task(name, total=cfg.steps)
            result = train(cfg, progress=lambda s, n, info: prog.update(task, completed=s))
        times[name] = time.perf_counter() - t
        return Path(result["checkpoint"])

    final = fit("train", a.steps)
    if a.finetune_steps:
        final = fit("finetune", a.finetune_steps, init=final, lr=a.finetune_lr)
    if a.install:
        DEFAULT_CHECKPOINT.mkdir(parents=True, exist_ok=True)
        for f in ("model.safetensors", "config.json", "stats.json"):
            shutil.copy2(final / f, DEFAULT_CHECKPOINT / f)
        out.print(f"installed as the default checkpoint: {DEFAULT_CHECKPOINT}")
    times["total"] = time.perf_counter() - t0
    (root / "reproduce.json").write_text(json.dumps({"checkpoint": str(final), "wall_s": times}, indent=2))
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in times.items() if k != "total")
    out.print(f"reproduced in {times['total']:.0f} s ({stages}): {final}")
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    from vla_agent.vla.auth import resolve_api_key
    from vla_agent.vla.server import ServeConfig, serve_forever

    cfg = ServeConfig(
        checkpoint=a.checkpoint,
        device=a.device,
        host=a.host,
        port=a.port,
        api_key=resolve_api_key(a.api_key, a.api_key_file),
    )
    err.print(f"serving the VLA on ws://{cfg.host}:{cfg.port} (device {cfg.device}); /healthz for probes")
    serve_forever(cfg)
    return 0


# ---------------------------------------------------------------------- agent commands
def _agent_config(a: argparse.Namespace):
    from vla_agent.agent.runner import AgentConfig
    from vla_agent.agent.shield import ShieldConfig, load_shield_config

    return AgentConfig(
        scene=a.scene,
        seed=a.seed,
        randomize=a.randomize,
        policy=getattr(a, "policy", "vla"),
        robot=getattr(a, "robot", "panda"),
        checkpoint=getattr(a, "checkpoint", None),
        device=getattr(a, "device", "cpu"),
        api_key_file=getattr(a, "api_key_file", None),
        shield=load_shield_config(a.shield) if getattr(a, "shield", None) else ShieldConfig(),
        planner=a.planner,
        llm_model=a.llm_model,
        llm_base_url=a.llm_base_url,
        llm_timeout=a.llm_timeout,
        llm_fallback=not a.no_llm_fallback,
        detector=getattr(a, "detector", "perception"),
        max_retries=getattr(a, "retries", 1),
        max_replans=getattr(a, "replans", 2),
        home=not getattr(a, "no_home", False),
        out=Path(a.out) if getattr(a, "out", None) else None,
        video=not getattr(a, "no_video", False),
    )


def _plan_table(subgoals: list[dict], title: str = "plan") -> Table:
    t = Table(title=title)
    t.add_column("#", justify="right")
    t.add_column("skill")
    t.add_column("arguments")
    t.add_column("instruction sent to the policy")
    for i, s in enumerate(subgoals, 1):
        t.add_row(str(i), s["skill"], ", ".join(f"{k}={v}" for k, v in s["args"].items()), s["instruction"])
    return t


def event_printer(console: Console):
    """Human-readable live view of the event stream (used by run, task, chat, voice)."""
    marks = {"done": "[green]done[/green]", "failed": "[red]failed[/red]"}

    def show(ev) -> None:
        d = ev.data
        if ev.kind == "plan":
            console.print(
                _plan_table(d["subgoals"], f"plan ({d.get('planner', '')}, {d.get('latency_ms', 0):.1f} ms)")
            )
        elif ev.kind == "replan":
            console.print(_plan_table(d["subgoals"], f"replan after {d['after']!r}: {d['reason']}"))
        elif ev.kind == "subgoal_start":
            attempt = f" (attempt {d['attempt']})" if d["attempt"] > 1 else ""
            console.print(f"[bold]▶ {d['index'] + 1}. {d['instruction']}[/bold]{attempt}")
        elif ev.kind == "subgoal_end":
            console.print(f"  {marks.get(d['status'], d['status'])} after {d['steps']} steps: {d['reason']}")
        elif ev.kind == "shield":
            console.print(f"  [yellow]shield[/yellow] step {d['step']}: {'; '.join(d['violations'])}")
        elif ev.kind == "retry":
            console.print(f"  [yellow]retry[/yellow]: {d['reason']}")
        elif ev.kind == "refused":
            console.print(f"[red]refused[/red] ({d['stage']}): {d['reason']}")
        elif ev.kind == "shadow":
            console.print(f"[{'green' if d['ok'] else 'red'}]{d['verdict']}[/]")
        elif ev.kind in ("error", "stopped"):
            console.print(f"  [red]{ev.kind}[/red]: {d['reason']}")

    return show


def cmd_run(a: argparse.Namespace) -> int:
    from vla_agent.agent.runner import Session

    cfg = _agent_config(a)
    listeners = [] if a.json else [event_printer(err)]
    if a.backend == "real":
        return _run_real(a, cfg, listeners)
    session = Session(cfg, listeners)
    try:
        session.reset()
        summary = session.run(a.command)
    finally:
        session.close()
    _print_run(summary, a.json)
    return _run_exit_code(summary)


def _run_real(a: argparse.Namespace, cfg, listeners) -> int:
    from vla_agent.agent.real.session import RealConfig, RealSession

    real = RealConfig(
        camera=a.camera, arm=a.arm, calibration=a.calibration, shadow=not a.no_shadow, yes=a.yes
    )

    def confirm(question: str) -> bool:
        if not sys.stdin.isatty():
            err.print(f"{question} -> no (not a terminal; pass --yes to approve)")
            return False
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    session = RealSession(cfg, real, confirm=confirm, listeners=listeners)
    try:
        summary = session.run(a.command)
    finally:
        session.close()
    if a.json:
        print(json.dumps(summary))
    else:
        if summary.get("shadow"):
            out.print(f"shadow: {summary['shadow']['status']} ({summary['shadow']['steps']} steps)")
        out.print(f"[b]{summary['status']}[/b] {summary.get('reason') or ''}")
        out.print(
            f"arm moves: {summary['arm_moves']}; "
            f"perceived: {', '.join(summary['perceived_holds']) or '(nothing)'}"
        )
        out.print(f"trace: {summary['trace']}\nreport: {summary['report']}")
    return _run_exit_code(summary)


def cmd_record_sim(a: argparse.Namespace) -> int:
    import numpy as np

    from vla_agent.agent.real.calibration import Calibration
    from vla_agent.agent.real.camera import write_recording
    from vla_agent.sim.catalog import SceneSpec
    from vla_agent.sim.env import EnvConfig, TabletopEnv
    from vla_agent.types import DEPTH, IMAGE

    scene = SceneSpec.parse(a.scene)
    if a.targets:  # the calibration sheet: a plate (a flat coloured disc) on each target
        from vla_agent.agent.real.calibration import load_targets
        from vla_agent.sim.catalog import ObjectSpec

        scene = SceneSpec(
            objects=tuple(
                ObjectSpec(kind="plate", color=t.color, position=t.position[:2])
                for t in load_targets(a.targets)
            )
        )
    env = TabletopEnv(EnvConfig(image_size=a.size, randomize=a.randomize))
    try:
        obs, _ = env.reset(seed=a.seed, options={"scene": scene})
        frames = [(obs[IMAGE], obs[DEPTH])]
        hold = np.array([0, 0, 0, 0, 0, 0, 1.0])
        for _ in range(a.frames - 1):
            obs, *_ = env.step(hold)
            frames.append((obs[IMAGE], obs[DEPTH]))
        cam = env.camera_frame
        path = write_recording(a.out, frames, cam.intrinsics, fps=int(env.config.control_hz))
    finally:
        env.close()
    calib = Calibration(
        T_base_camera=cam.extrinsics.tolist(), method="simulator ground truth (record-sim)", residual_mm=0.0
    ).save(path.with_suffix(".calib.yaml"))
    out.print(f"wrote {path} ({len(frames)} frames, {a.size}x{a.size}) and {calib}")
    return 0


def cmd_calibrate(a: argparse.Namespace) -> int:
    from vla_agent.agent.real.calibration import calibrate, load_calibration, load_targets, target_errors_mm
    from vla_agent.agent.real.camera import RealSenseCamera

    targets = load_targets(a.targets)
    with RealSenseCamera(a.camera, hold_last=True) as cam:
        frames = [cam.read() for _ in range(a.frames)]
    if a.action == "create":
        calib = calibrate(frames, targets, serial=cam.serial)
        calib.save(a.calibration)
        errors = target_errors_mm(frames, targets, calib.T)
        result = {"calibration": str(a.calibration), "residual_mm": calib.residual_mm, "errors_mm": errors}
    else:
        calib = load_calibration(a.calibration)
        errors = target_errors_mm(frames, targets, calib.T)
        missing = [t.color for t in targets if t.color not in errors]
        worst = max(errors.values(), default=float("inf"))
        result = {
            "calibration": str(a.calibration),
            "errors_mm": errors,
            "missing": missing,
            "max_mm": worst,
            "ok": worst <= a.tolerance_mm and not missing,
        }
    if a.json:
        print(json.dumps(result))
    else:
        for color, e in errors.items():
            out.print(f"  {color:>8}: {e:6.1f} mm")
        out.print(f"{a.action}: {json.dumps({k: v for k, v in result.items() if k != 'errors_mm'})}")
    return 0 if result.get("ok", True) else 1


def _print_run(summary: dict, as_json: bool) -> None:
    """A run's summary as one JSON object, or status, end state and where the report folder is."""
    if as_json:
        print(json.dumps(summary))
        return
    out.print(f"[b]{summary['status']}[/b] {summary.get('reason') or ''}")
    if "holds" in summary:
        out.print(f"holds: {', '.join(summary['holds']) or '(nothing)'}")
        if summary.get("goals_unmet"):
            out.print(f"[yellow]ground truth disagrees: not {', not '.join(summary['goals_unmet'])}[/yellow]")
        out.print(
            f"trace: {summary['trace']}" + (f"\nvideo: {summary['video']}" if "video" in summary else "")
        )
        out.print(f"report: {summary['report']}")


def _run_exit_code(summary: dict) -> int:
    """0 success, 1 failed or stopped, 2 refused."""
    return {"success": 0, "refused": 2}.get(summary["status"], 1)


def cmd_plan(a: argparse.Namespace) -> int:
    from vla_agent.agent.runner import Session

    cfg = _agent_config(a).model_copy(update={"policy": "expert", "video": False})
    session = Session(cfg)
    try:
        session.reset()
        result = session.plan(a.command)
    finally:
        session.close()
    if a.json:
        print(json.dumps({k: v for k, v in result.items() if k in ("subgoals", "refused")}))
    elif "refused" in result:
        err.print(f"[red]refused:[/red] {result['refused']}", highlight=False)
    else:
        out.print(
            _plan_table(result["subgoals"], f"plan ({result['planner']}, {result['latency_ms']:.1f} ms)")
        )
    return 2 if "refused" in result else 0


def cmd_chat(a: argparse.Namespace) -> int:
    from vla_agent.agent.chat import ChatREPL

    cfg = _agent_config(a)
    repl = ChatREPL(
        cfg,
        out,
        confirm=not a.yes,
        out=Path(a.out) if a.out else None,
        history=Path(a.history).expanduser() if a.history else None,
    )
    return repl.loop()


def cmd_voice(a: argparse.Namespace) -> int:
    from vla_agent.agent.runner import Session
    from vla_agent.agent.voice import is_stop, make_transcriber, read_wav, record_mic, transcribe_timed

    if bool(a.wav) == bool(a.mic):
        raise VlaAgentError("give exactly one of --wav FILE or --mic")
    audio = read_wav(a.wav) if a.wav else None  # a bad file fails before the robot is built
    cfg = _agent_config(a)
    session = Session(cfg, [] if a.json else [event_printer(err)])
    try:
        session.reset()
        stt = make_transcriber(
            a.stt, session.env.names, base_url=a.llm_base_url, whisper_model=a.whisper_model
        )
        if audio is None:
            err.print(f"listening for {a.seconds:g} s ...")
            audio = record_mic(a.seconds)
        transcript, stt_ms = transcribe_timed(stt, audio)
        extra = {"transcript": transcript, "stt": a.stt, "stt_ms": round(stt_ms, 1)}
        if getattr(stt, "used_fallback", False):
            extra["out_of_grammar"] = True
        if not a.json:
            err.print(f'heard: [b]"{transcript}"[/b] ({stt_ms:.0f} ms)', highlight=False)
        if not transcript:
            summary = {"status": "refused", "reason": "no speech recognized", **extra}
        elif is_stop(transcript):
            session.executor.stop()
            session.backend.stop()
            summary = {"status": "stopped", "reason": "spoken stop: the robot holds", **extra}
        elif not (a.yes or _confirm(f'run "{transcript}"?')):
            summary = {"status": "refused", "reason": "not confirmed", **extra}
        else:
            summary = {**session.run(transcript), **extra}
    finally:
        session.close()
    _print_run(summary, a.json)
    return 0 if summary["status"] == "stopped" else _run_exit_code(summary)  # a spoken stop did its job


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise VlaAgentError("confirmation needs a terminal; pass --yes to confirm non-interactively")
    return input(f"{question} [Y/n] ").strip().lower() in ("", "y", "yes")


def cmd_task(a: argparse.Namespace) -> int:
    from vla_agent.agent.taskfile import run_task_files

    overrides = {
        k: v for k, v in (("policy", a.policy), ("planner", a.planner), ("detector", a.detector)) if v
    }
    if a.no_video:
        overrides["video"] = False
    listeners = [] if a.json else [event_printer(err)]
    result = run_task_files(a.files, overrides, Path(a.out), listeners)
    if a.json:
        print(json.dumps(result))
    else:
        t = Table(title="task files")
        for col in ("file", "result", "details", "s"):
            t.add_column(col)
        for r in result["files"]:
            mark = "[green]pass[/green]" if r["passed"] else "[red]FAIL[/red]"
            t.add_row(
                r["file"],
                mark,
                "; ".join(r["problems"]) or "all expectations hold",
                f"{r.get('wall_s', 0):.1f}",
            )
        out.print(t)
        out.print(f"{result['passed']} passed, {result['failed']} failed; reports in {a.out}/")
    return 0 if result["failed"] == 0 else 1


def cmd_replay(a: argparse.Namespace) -> int:
    from vla_agent.agent.trace import recover_summary, summarize

    summary = summarize(a.trace)
    recovered = recover_summary(a.trace)
    if recovered is not None:
        summary["recovered_summary"] = str(recovered)
    if a.video:
        summary["video"] = str(_rerender(a.trace, Path(a.video)))
    if a.json:
        print(json.dumps(summary))
        return 0
    out.print(
        f"[b]command:[/b] {summary['command']}\n[b]scene:[/b] {summary['scene']} (seed {summary['seed']})"
    )
    if summary["plan"]:
        out.print(_plan_table(summary["plan"]))
    t = Table(title="subgoals")
    for col in ("#", "instruction", "status", "steps", "attempts", "reason"):
        t.add_column(col)
    for s in summary["subgoals"]:
        t.add_row(
            *(str(s.get(k, "")) for k in ("index", "instruction", "status", "steps", "attempts", "reason"))
        )
    out.print(t)
    out.print(
        f"{summary['steps']} steps, {summary['shield_interventions']} shield interventions "
        f"({summary['shield_holds']} holds), overhead per step {summary['overhead_ms_per_step']}"
    )
    out.print(f"final: {summary['final']}")
    if summary["final"].get("status") == "interrupted":
        out.print(
            f"[yellow]{summary['final']['reason']}[/yellow]; last state {summary['final']['last_state']}"
        )
        if "recovered_summary" in summary:
            out.print(f"summary written: {summary['recovered_summary']}")
    if "video" in summary:
        out.print(f"video: {summary['video']}")
    return 0


def _rerender(trace: str, video: Path) -> Path:
    """Rebuild the episode's sim from the trace header and replay the actions that were sent."""
    from vla_agent.agent.trace import read_trace, sent_actions
    from vla_agent.sim.catalog import SceneSpec
    from vla_agent.sim.env import EnvConfig, TabletopEnv
    from vla_agent.sim.video import write_video

    header = next(read_trace(trace))
    env = TabletopEnv(EnvConfig(randomize=bool(header.get("randomize"))))
    env.reset(seed=header["seed"], options={"scene": SceneSpec.parse(header["scene"])})
    frames = [env.render()]
    actions = sent_actions(trace)
    with _progress() as prog:
        task = prog.add_task("re-rendering", total=len(actions))
        for i, action in enumerate(actions, 1):
            env.step(action)
            frames.append(env.render())
            prog.update(task, completed=i)
    env.close()
    return write_video(frames, video, fps=env.config.control_hz)


def cmd_bench_chains(a: argparse.Namespace) -> int:
    from vla_agent.agent.chains import ChainBenchConfig, run_chain_bench

    cfg = ChainBenchConfig(
        episodes=a.episodes,
        seed=a.seed,
        policy=a.policy,
        checkpoint=Path(a.checkpoint) if a.checkpoint else None,
        planner=a.planner,
        detector=a.detector,
        llm_model=a.llm_model,
        llm_base_url=a.llm_base_url,
        home=not a.no_home,
        robot=a.robot,
    )
    with _progress() as prog:
        task = prog.add_task(f"chains ({cfg.policy}, {cfg.robot})", total=cfg.episodes)
        result = run_chain_bench(cfg, progress=lambda i, n: prog.update(task, completed=i))
    if a.json:
        print(json.dumps(result))
        return 0
    title = f"{cfg.episodes} chains of 5 on the {cfg.robot}, policy {cfg.policy}, planner {cfg.planner}"
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("average completed length (0-5)", f"{result['avg_len']:.2f}")
    t.add_row("full-chain success", f"{result['chain_success']:.3f}")
    for k, v in enumerate(result["per_position"], 1):
        t.add_row(f"  success at position {k}", f"{v:.3f}")
    t.add_row("planner accuracy", f"{result['planner_accuracy']:.3f}")
    t.add_row("detector disagreements", f"{result['detector']['disagreement_rate']:.3f}")
    t.add_row("shield interventions", str(result["shield_interventions"]))
    t.add_row("unsafe actions reaching the backend", str(result["unsafe_actions_reached_backend"]))
    t.add_row("unsafe measured states", str(result["unsafe_states_reached"]))
    t.add_row("seconds per subgoal", f"{result['seconds_per_subgoal']:.2f}")
    oh = result["overhead_ms_per_step"]
    t.add_row("orchestrator overhead/step p50 / p99 (ms)", f"{oh['p50']:.2f} / {oh['p99']:.2f}")
    out.print(t)
    return 0


def cmd_bench_detector(a: argparse.Namespace) -> int:
    from vla_agent.agent.chains import DetectorBenchConfig, run_detector_bench

    cfg = DetectorBenchConfig(episodes=a.episodes, policy=a.policy)
    with _progress() as prog:
        task = prog.add_task("detector episodes", total=cfg.episodes)
        result = run_detector_bench(cfg, progress=lambda i, n: prog.update(task, completed=i))
    if a.json:
        print(json.dumps(result))
    else:
        for level in ("per_subgoal", "per_step"):
            r = result[level]
            out.print(
                f"{level}: precision {r['precision']:.3f}, recall {r['recall']:.3f} "
                f"({r['positives']} positives, {r['negatives']} negatives)"
            )
    return 0


def cmd_bench_shield(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench_shield import ShieldBenchConfig, run_shield_bench

    cfg = ShieldBenchConfig(episodes=a.episodes, steps=a.steps, seed=a.seed, adversary=a.adversary)
    with _progress() as prog:
        task = prog.add_task("adversarial episodes", total=cfg.episodes)
        result = run_shield_bench(cfg, progress=lambda i, n: prog.update(task, completed=i))
    if a.json:
        print(json.dumps(result))
        return 0 if result["unsafe_states_reached"] == 0 else 1
    t = Table(title=f"shield under {cfg.episodes} adversarial episodes ({result['actions']} actions)")
    t.add_column("adversary")
    for col in ("actions", "interventions", "holds", "unsafe states", "worst mm / rad"):
        t.add_column(col, justify="right")
    for name, row in result["per_adversary"].items():
        w = row["worst"]
        t.add_row(
            name,
            str(row["actions"]),
            str(row["interventions"]),
            str(row["holds"]),
            str(row["unsafe_states"]),
            f"{w['position_mm']:.1f} / {max(w['tilt_rad'], w['joint_rad']):.3f}",
        )
    out.print(t)
    w = result["worst_state_excursion"]
    out.print(
        f"{result['actions_per_s']:.0f} actions/s; "
        f"unsafe measured states: {result['unsafe_states_reached']}; "
        f"unsafe actions reaching the backend: {result['unsafe_actions_reached_backend']}; worst excursion "
        f"{w['position_mm']:.2f} mm, tilt {w['tilt_rad']:.3f} rad, joint {w['joint_rad']:.3f} rad"
    )
    return 0 if result["unsafe_states_reached"] == 0 else 1


def _registries() -> dict:
    """Every registry of parts, filled (built-ins register on import; plugins by entry point)."""
    import vla_agent.agent.detectors  # noqa: F401 - registration on import
    import vla_agent.agent.planners  # noqa: F401
    import vla_agent.agent.policies  # noqa: F401
    import vla_agent.agent.real.arms  # noqa: F401
    import vla_agent.sim.robots  # noqa: F401
    from vla_agent.registry import REGISTRIES
    from vla_agent.skills.library import skill_names

    skill_names()  # the built-in skills register on first use

    return REGISTRIES


def _default_llm() -> str:
    from vla_agent.agent.planner_llm import DEFAULT_MODEL

    return DEFAULT_MODEL


def _names(kind: str) -> str:
    return _registries()[kind].help()


def cmd_plugins(a: argparse.Namespace) -> int:
    rows = [
        {"kind": kind, "name": e.name, "usage": e.usage, "origin": e.origin, "help": e.help}
        for kind, reg in sorted(_registries().items())
        for e in reg.entries()
    ]
    errors = [msg for reg in _registries().values() for msg in reg.errors]
    if a.json:
        print(json.dumps({"parts": rows, "errors": errors}))
        return 0
    t = Table(title="registered parts (built-ins and plugins)")
    for col in ("kind", "usage", "from", "what"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["kind"], r["usage"], r["origin"], r["help"])
    out.print(t)
    for msg in errors:
        err.print(f"[yellow]plugin failed to load:[/yellow] {msg}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="vla-agent",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
        description="Natural-language robot agent: LLM planner -> VLA skills -> safety shield -> "
        "PyBullet or a real arm.",
    )
    ap.add_argument("--version", action="version", version=f"vla-agent {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    d = sub.add_parser(
        "demo",
        help="scripted-expert dry run of a long-horizon sequence; writes a video",
        description="Run the scripted expert through pick/place/stack/push subgoals in "
        "the simulator and write a video and summary.json.",
    )
    d.add_argument(
        "--scene",
        default=DEFAULT_SCENE,
        help="objects to place, e.g. 'red block, 2 green blocks, blue bowl'",
    )
    d.add_argument("--seed", type=int, default=0, help="scene seed (object poses)")
    d.add_argument("--out", default="runs/demo", help="output folder")
    d.add_argument("--video", default="episode.mp4", help="video file name (.mp4 or .gif)")
    d.add_argument("--randomize", action="store_true", help="domain randomization on")
    d.add_argument("--json", action="store_true", help="print the summary as JSON")
    d.set_defaults(func=cmd_demo)

    def agent_options(p: argparse.ArgumentParser, policy: bool = True) -> None:
        from vla_agent.agent.runner import DEFAULT_SCENE as AGENT_SCENE

        p.add_argument(
            "--scene", default=AGENT_SCENE, help="objects to place by the seed, e.g. 'red block, blue bowl'"
        )
        p.add_argument("--seed", type=int, default=0, help="scene seed (object poses)")
        p.add_argument(
            "--randomize", action="store_true", help="domain randomization (lighting, colours, camera)"
        )
        p.add_argument("--planner", default="offline", help=f"{_names('planner')} (default offline)")
        p.add_argument("--llm-model", default=_default_llm(), help="LangChain provider:model")
        p.add_argument(
            "--llm-base-url", default=None, help="OpenAI-compatible server, e.g. http://localhost:11434/v1"
        )
        p.add_argument("--llm-timeout", type=float, default=30.0, help="seconds per LLM request")
        p.add_argument(
            "--no-llm-fallback", action="store_true", help="fail instead of using the offline planner"
        )
        p.add_argument("--json", action="store_true", help="print the result as one JSON object")
        if policy:
            p.add_argument("--policy", default="vla", help=f"{_names('policy')} (default vla)")
            p.add_argument(
                "--robot",
                default="panda",
                help=f"the simulated robot: {_names('robot')} (a real arm names its own; default panda)",
            )
            p.add_argument(
                "--checkpoint", default=None, help="VLA checkpoint folder (default: the shipped one)"
            )
            p.add_argument("--device", default="cpu", help="cpu | cuda")
            p.add_argument(
                "--api-key-file",
                default=None,
                help="file with the policy server's API key (else VLA_AGENT_API_KEY, "
                "then ~/.config/vla-agent/api_key)",
            )
            p.add_argument(
                "--detector", default="perception", help=f"{_names('detector')} (default perception)"
            )
            p.add_argument(
                "--shield",
                default=None,
                metavar="FILE",
                help="YAML of the safety envelope (workspace_min/max, keep_out, max_translation, "
                "max_tilt, ...; see agent/envelope.py ShieldConfig)",
            )
            p.add_argument("--retries", type=int, default=1, help="extra attempts per failed subgoal")
            p.add_argument("--replans", type=int, default=2, help="new plans after a subgoal fails for good")
            p.add_argument(
                "--no-home",
                action="store_true",
                help="do not bring the arm back to its start pose before each pick or push",
            )
            p.add_argument("--out", default=None, help="report folder (default runs/run-DATE-TIME)")
            p.add_argument("--no-video", action="store_true", help="skip the video")

    from vla_agent.agent.runner import DEFAULT_COMMAND

    r = sub.add_parser(
        "run",
        help="plan and execute a command in the simulator; leaves a video and a trace",
        description="Plan COMMAND (offline planner or an LLM), check it against the skills and the scene, "
        "and execute it subgoal by subgoal: policy -> safety shield -> robot, with a perception-based "
        "success detector, retries and replanning. Exit code 0 success, 1 failed, 2 refused/error.",
    )
    r.add_argument("command", nargs="?", default=DEFAULT_COMMAND, help=f"default: {DEFAULT_COMMAND!r}")
    agent_options(r)
    real = r.add_argument_group(
        "real robot (--backend real)",
        "A RealSense camera (or a recording) and an arm driver. Every plan first runs in the PyBullet "
        "twin of the perceived scene (the shadow run); a predicted failure or unsafe intervention means "
        "nothing moves; otherwise you approve (or --yes). --scene lists the objects on the table.",
    )
    real.add_argument("--backend", default="sim", choices=["sim", "real"], help="sim (default) or real")
    real.add_argument(
        "--camera", default="", help="serial:NUMBER | file:REC.db3|.bag (default: first RealSense)"
    )
    real.add_argument("--arm", default="twin", help=f"{_names('arm')} (default twin: a PyBullet stand-in)")
    real.add_argument("--calibration", default=None, help="camera-to-base YAML (default: REC.calib.yaml)")
    real.add_argument("--no-shadow", action="store_true", help="skip the shadow dry run (not recommended)")
    real.add_argument("--yes", action="store_true", help="approve a successful shadow run without asking")
    r.set_defaults(func=cmd_run)

    rs_ = sub.add_parser(
        "record-sim",
        help="write a RealSense recording (.db3) of a simulated scene, with its calibration",
        description="Render the simulator's camera and record it through pyrealsense2's software device, "
        "as a D4xx would (colour + aligned depth + intrinsics), plus REC.calib.yaml with the true "
        "extrinsics: a recording to try --backend real --camera file:REC.db3 without hardware.",
    )
    rs_.add_argument("out", help="recording path (.db3)")
    rs_.add_argument("--scene", default="red block, blue block, green block, yellow bowl")
    rs_.add_argument("--seed", type=int, default=0)
    rs_.add_argument("--frames", type=int, default=5)
    rs_.add_argument("--size", type=int, default=128, help="image size in pixels (square)")
    rs_.add_argument("--randomize", action="store_true")
    rs_.add_argument(
        "--targets", default=None, help="record a calibration sheet instead: discs at these targets"
    )
    rs_.set_defaults(func=cmd_record_sim)

    ca = sub.add_parser(
        "calibrate",
        help="camera-to-base extrinsics from coloured targets at known positions (create, check)",
        description="create: find the coloured discs of TARGETS in the camera's RGB-D frames and solve the "
        "camera-to-base transform (Kabsch), written as YAML. check: each target's error in mm with an "
        "existing calibration; exit 1 above --tolerance-mm. See examples/calibration/targets.yaml.",
    )
    ca.add_argument("action", choices=["create", "check"])
    ca.add_argument("--camera", default="", help="serial:NUMBER | file:REC.db3 (default: first RealSense)")
    ca.add_argument("--targets", default="examples/calibration/targets.yaml", help="targets YAML")
    ca.add_argument("--calibration", default="calibration.yaml", help="calibration YAML to write or check")
    ca.add_argument("--frames", type=int, default=5, help="frames to average")
    ca.add_argument("--tolerance-mm", type=float, default=10.0)
    ca.add_argument("--json", action="store_true")
    ca.set_defaults(func=cmd_calibrate)

    pl = sub.add_parser(
        "plan",
        help="plan a command without moving anything",
        description="Print the plan for COMMAND in the scene, or why it is refused.",
    )
    pl.add_argument("command", help="e.g. 'put all the red blocks in the bowl'")
    agent_options(pl, policy=False)
    pl.set_defaults(func=cmd_plan)

    ch = sub.add_parser(
        "chat",
        help="chat-style REPL: type commands, see the plan, watch it run (Ctrl-C = e-stop)",
        description="A REPL around one simulated robot. Each command is planned and shown as a table, "
        "confirmed (unless --yes), then executed with a live status line; Ctrl-C during a run is an "
        "emergency stop and the session goes on. Slash commands: /scene, /plan <command>, /stop, "
        "/reset [seed], /video, /help, /quit. Every run leaves a report folder (video, trace, report.html).",
    )
    agent_options(ch)
    ch.add_argument("--yes", action="store_true", help="execute plans without asking")
    ch.add_argument("--history", default="~/.vla_agent_history", help="input history file ('' for none)")
    ch.set_defaults(func=cmd_chat)

    vo = sub.add_parser(
        "voice",
        help="speak a command (WAV file or microphone); offline speech recognition, then run it",
        description="Transcribe speech offline with pocketsphinx, constrained by a grammar built from the "
        "skills and the scene's objects (plain decoding when speech is out of grammar), echo the text, "
        "confirm it (--yes to skip), then run it like `run`. A spoken 'stop' is an e-stop. "
        "--json adds the transcript to run's JSON.",
    )
    vo.add_argument("--wav", default=None, help="a WAV file with the spoken command")
    vo.add_argument("--mic", action="store_true", help="record from the microphone (needs sounddevice)")
    vo.add_argument("--seconds", type=float, default=5.0, help="--mic recording length")
    vo.add_argument("--stt", default="sphinx", choices=["sphinx", "openai", "whisper"], help="speech-to-text")
    vo.add_argument("--whisper-model", default=None, help="faster-whisper model folder for --stt whisper")
    vo.add_argument("--yes", action="store_true", help="run the transcript without asking")
    agent_options(vo)
    vo.set_defaults(func=cmd_voice)

    tk = sub.add_parser(
        "task",
        help="run scripted task files (YAML) and check their expected end states",
        description="Validate every FILE first (a malformed file: one line naming file, line and field, and "
        "nothing runs), then run each in a fresh simulated scene: its commands in order, then its expected "
        "ground-truth predicates. Exit code 0 when every file passes, 1 when one fails, 2 on a malformed "
        "file. Schema: vla_agent.agent.taskfile (examples in examples/tasks/). Options given here override "
        "the files' own options.",
    )
    tk.add_argument("files", nargs="+", help="task files, e.g. examples/tasks/*.yaml")
    tk.add_argument("--policy", default=None, help=f"override: {_names('policy')}")
    tk.add_argument("--planner", default=None, help=f"override: {_names('planner')}")
    tk.add_argument("--detector", default=None, help=f"override: {_names('detector')}")
    tk.add_argument("--out", default="runs/tasks", help="report folders go here, one per file and command")
    tk.add_argument("--no-video", action="store_true")
    tk.add_argument("--json", action="store_true", help="print the results as one JSON object")
    tk.set_defaults(func=cmd_task)

    rp = sub.add_parser("replay", help="summarize a trace; --video re-renders the episode")
    rp.add_argument("trace", help="a trace.jsonl written by run/task/chat")
    rp.add_argument("--video", default=None, help="re-render the episode to this .mp4/.gif")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=cmd_replay)

    b = sub.add_parser("bench", help="benchmarks that print JSON figures")
    bsub = b.add_subparsers(dest="bench", metavar="BENCH", required=True)
    be = bsub.add_parser(
        "expert",
        help="scripted experts on seeded single-skill tasks",
        description="Run the scripted expert on N seeded single-skill tasks (pick, "
        "place into bowl/onto plate/stack/at region, push) in randomized "
        "scenes with distractors, judged by ground-truth predicates.",
    )
    be.add_argument("--episodes", type=int, default=60, help="number of episodes (cycled over skills)")
    be.add_argument("--seed", type=int, default=0, help="first episode seed")
    be.add_argument("--no-randomize", action="store_true", help="switch domain randomization off")
    be.add_argument("--robot", default="panda", help=f"{_names('robot')} (default panda)")
    be.add_argument("--json", action="store_true", help="print figures as one JSON object")
    be.set_defaults(func=cmd_bench_expert)

    bs = bsub.add_parser(
        "skills",
        help="closed-loop skill success of a policy on unseen seeds/paraphrases",
        description="Roll a skill policy out on seeds disjoint from training and "
        "held-out instruction paraphrases; judged by ground truth.",
    )
    bs.add_argument("--policy", default="vla", help=_names("policy"))
    bs.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped one)")
    bs.add_argument("--device", default="cpu", help="cpu | cuda")
    bs.add_argument("--episodes-per-skill", type=int, default=50)
    bs.add_argument(
        "--seed", type=int, default=1_000_000, help="first evaluation seed (training uses < 10^6)"
    )
    bs.add_argument("--execute", type=int, default=2, help="actions executed per predicted chunk")
    bs.add_argument("--json", action="store_true")
    bs.set_defaults(func=cmd_bench_skills)

    bsv = bsub.add_parser("server", help="policy-server round trip vs in-process inference latency")
    bsv.add_argument("--checkpoint", default=None)
    bsv.add_argument("--device", default="cpu")
    bsv.add_argument("--requests", type=int, default=200)
    bsv.add_argument(
        "--flooders", type=int, default=2, help="hostile clients beside the measured one in a last pass"
    )
    bsv.add_argument("--json", action="store_true")
    bsv.set_defaults(func=cmd_bench_server)

    bc = bsub.add_parser(
        "chains",
        help="CALVIN-style long-horizon commands of 5 subgoals, end to end",
        description="Generated 5-subgoal commands in randomized scenes, run planner -> policy -> "
        "shield -> sim with the perception detector; ground truth judges each subgoal.",
    )
    bc.add_argument("--episodes", type=int, default=100)
    bc.add_argument("--seed", type=int, default=2_000_000, help="first chain seed")
    bc.add_argument("--policy", default="vla", help=_names("policy"))
    bc.add_argument("--checkpoint", default=None, help="VLA checkpoint folder (default: the shipped one)")
    bc.add_argument(
        "--no-home",
        action="store_true",
        help="skills start where the previous one ended (no move home before a pick or push)",
    )
    bc.add_argument("--robot", default="panda", help=f"{_names('robot')} (default panda)")
    bc.add_argument("--planner", default="offline", help=_names("planner"))
    bc.add_argument("--detector", default="perception", help=_names("detector"))
    bc.add_argument("--llm-model", default=_default_llm())
    bc.add_argument("--llm-base-url", default=None)
    bc.add_argument("--json", action="store_true")
    bc.set_defaults(func=cmd_bench_chains)

    bd = bsub.add_parser(
        "detector", help="precision/recall of the perception success detector vs ground truth"
    )
    bd.add_argument("--episodes", type=int, default=60)
    bd.add_argument("--policy", default="mixed", choices=["mixed", "expert", "vla"], help="mixed: alternate")
    bd.add_argument("--json", action="store_true")
    bd.set_defaults(func=cmd_bench_detector)

    bsh = bsub.add_parser(
        "shield",
        help="fuzz the safety shield with adversarial policies; count unsafe measured states",
        description="Adversarial policies (huge, NaN, malformed, wrist and tilt ramps, drift to every "
        "face and corner of the workspace, random walks) drive the simulated arm through the shield; "
        "the backend audits the measured state after every step. Exit 1 if any state left the envelope.",
    )
    bsh.add_argument("--episodes", type=int, default=500, help="episodes (cycling through the adversaries)")
    bsh.add_argument("--steps", type=int, default=200, help="control steps per episode")
    bsh.add_argument("--seed", type=int, default=3_000_000, help="first episode seed")
    bsh.add_argument("--adversary", default=None, help="run only this adversary (e.g. yaw-ramp-0.25)")
    bsh.add_argument("--json", action="store_true")
    bsh.set_defaults(func=cmd_bench_shield)

    v = sub.add_parser("vla", help="demonstrations and training of the VLA skill policy")
    vsub = v.add_subparsers(dest="vla", metavar="ACTION", required=True)
    vc = vsub.add_parser("collect", help="record expert demonstrations (LeRobotDataset v3.0 layout)")
    vc.add_argument("--out", default="data/demos", help="dataset folder (must not exist)")
    vc.add_argument("--episodes", type=int, default=1200, help="tasks to run (place tasks add their pick)")
    vc.add_argument("--seed", type=int, default=0)
    vc.add_argument("--image-size", type=int, default=128)
    vc.add_argument("--noise-prob", type=float, default=0.5, help="fraction of episodes with action noise")
    vc.add_argument(
        "--policy",
        metavar="CHECKPOINT",
        help="recovery data: this VLA drives each subgoal first, the expert takes over and is recorded",
    )
    vc.add_argument("--takeover-max", type=int, default=40, help="with --policy: VLA steps before takeover")
    vc.add_argument(
        "--policy-setup",
        action="store_true",
        help="with --policy: the VLA runs the pick before a place to its end on its own and the expert "
        "places from the VLA's grasp; tasks whose pick the VLA fails are skipped",
    )
    vc.add_argument(
        "--sloppy-setup",
        action="store_true",
        help="the expert makes the pick before a place imperfect on purpose (block turned and off-centre "
        "in the fingers, like the VLA's picks; not recorded) and places from that grasp; no VLA needed",
    )
    vc.add_argument(
        "--skills", metavar="LIST", help="skills of the tasks, cycled, e.g. place,push (default: all)"
    )
    vc.add_argument(
        "--place-variants",
        metavar="LIST",
        help="place targets drawn from, repeat one to weight it, e.g. block,region,block,region,bowl,plate "
        "(default: bowl,plate,block,region)",
    )
    vc.add_argument(
        "--crowded",
        action="store_true",
        help="scenes like bench chains: 4-5 blocks and both a bowl and a plate (default: 1-3 distractors)",
    )
    vc.add_argument("--json", action="store_true")
    vc.set_defaults(func=cmd_vla_collect)
    vt = vsub.add_parser("train", help="train the VLA on a dataset (resumes from OUT/last)")
    vt.add_argument("--dataset", default="data/demos", help="dataset folder(s), comma-separated")
    vt.add_argument("--out", default="runs/train")
    vt.add_argument("--steps", type=int, default=10000)
    vt.add_argument("--batch-size", type=int, default=64)
    vt.add_argument("--lr", type=float, default=1e-3)
    vt.add_argument("--seed", type=int, default=0)
    vt.add_argument("--device", default="cpu", help="cpu | cuda")
    vt.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="bf16: forward pass under bfloat16 autocast; auto: bf16 where the CPU/GPU has it natively",
    )
    vt.add_argument("--save-every", type=int, default=1000, help="steps between checkpoints and validation")
    vt.add_argument("--action-head", default="continuous", choices=["continuous", "bins"])
    vt.add_argument("--init", metavar="CHECKPOINT", help="fine-tune from this checkpoint (keeps its stats)")
    vt.add_argument("--json", action="store_true")
    vt.set_defaults(func=cmd_vla_train)

    vf = vsub.add_parser(
        "filter",
        help="copy a dataset keeping only the episodes of some skills",
        description="Copy a dataset keeping only the episodes whose instruction belongs to one of --skills "
        "(re-indexed, stats recomputed), e.g. to retire demonstrations of a skill whose expert changed.",
    )
    vf.add_argument("--dataset", required=True, help="source dataset folder")
    vf.add_argument("--skills", required=True, metavar="LIST", help="skills to keep, e.g. pick,place")
    vf.add_argument("--out", required=True, help="new dataset folder (must not exist)")
    vf.add_argument("--json", action="store_true")
    vf.set_defaults(func=cmd_vla_filter)

    vr = vsub.add_parser(
        "reproduce",
        help="the shipped checkpoint from nothing: collect the expert data, train, fine-tune",
        description="Collect the shipped checkpoint's data with the scripted expert (picks, places, "
        "pushes, plain and crowded scenes, places from deliberately sloppy grasps; ~268 k frames with the "
        "defaults), train one model from scratch on all of it, fine-tune it briefly at a lower rate. "
        "Re-running with the same --out resumes. Needs ~20 GB of RAM at full scale.",
    )
    vr.add_argument("--out", default="runs/reproduce")
    vr.add_argument("--workers", type=int, default=2, help="parallel collectors (disjoint seeds)")
    vr.add_argument(
        "--scale", type=float, default=1.0, help="multiply every stage's tasks (e.g. 0.1 for a quick look)"
    )
    vr.add_argument("--steps", type=int, default=16000, help="training steps from scratch (batch 64)")
    vr.add_argument("--finetune-steps", type=int, default=2000, help="then fine-tuning steps; 0: none")
    vr.add_argument("--finetune-lr", type=float, default=3e-4)
    vr.add_argument("--device", default="cpu", help="cpu | cuda")
    vr.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    vr.add_argument(
        "--install", action="store_true", help="copy the result over the shipped default checkpoint"
    )
    vr.set_defaults(func=cmd_vla_reproduce)

    sv = sub.add_parser(
        "serve",
        help="host the VLA on a websocket policy server (openpi protocol)",
        description="Serve the VLA over websockets with the openpi protocol (msgpack + "
        "numpy, metadata frame, /healthz). Beyond loopback an API key is required.",
    )
    sv.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped one)")
    sv.add_argument("--device", default="cpu", help="cpu | cuda")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument(
        "--api-key",
        default=None,
        help="required beyond loopback; visible in ps: prefer --api-key-file or VLA_AGENT_API_KEY",
    )
    sv.add_argument(
        "--api-key-file", default=None, help="file holding the API key (else ~/.config/vla-agent/api_key)"
    )
    sv.set_defaults(func=cmd_serve)

    s = sub.add_parser("scene", help="build a scene, list the true predicates, optionally save an image")
    s.add_argument("--scene", default=None, help="objects, e.g. 'red block, blue bowl' (random when omitted)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--randomize", action="store_true")
    s.add_argument("--image", default=None, help="write the static camera view to this PNG")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_scene)

    pg = sub.add_parser(
        "plugins",
        help="list the registered policies, planners, detectors and arms, and where each came from",
        description="Built-in parts and those other packages add through entry points "
        "(groups vla_agent.policies, vla_agent.planners, vla_agent.detectors, vla_agent.arms).",
    )
    pg.add_argument("--json", action="store_true")
    pg.set_defaults(func=cmd_plugins)

    k = sub.add_parser("skills", help="list the skill library")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_skills)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VlaAgentError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        return 2
    except ValidationError as e:  # a config built from flags: one line per bad field
        for problem in e.errors():
            where = ".".join(map(str, problem["loc"])) or "config"
            err.print(f"[red]error:[/red] {where}: {problem['msg']}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        return 130
    except Exception as e:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("VLA_AGENT_DEBUG"):
            raise
        first = str(e).splitlines()[0] if str(e) else ""
        err.print(
            f"[red]internal error:[/red] {type(e).__name__}: {first} (VLA_AGENT_DEBUG=1 shows the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
