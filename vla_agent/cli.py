"""The ``vla-agent`` command line. Every subcommand wraps a plain ``run_*(config)`` function."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from vla_agent import __version__
from vla_agent.agent.demo import DEFAULT_SCENE
from vla_agent.errors import VlaAgentError

err = Console(stderr=True)
out = Console()

EPILOG = """examples:
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

    cfg = ExpertBenchConfig(episodes=a.episodes, seed=a.seed, randomize=not a.no_randomize)
    with _progress() as prog:
        task = prog.add_task("expert episodes", total=cfg.episodes)
        result = run_expert_bench(cfg, progress=lambda i, n: prog.update(task, completed=i))
    if a.json:
        print(json.dumps(result))
    else:
        _print_rates(f"scripted experts, {cfg.episodes} episodes", result, "overall")
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
    from vla_agent.skills.library import SKILLS

    if a.json:
        print(
            json.dumps(
                {
                    n: {
                        "args": [x.name for x in s.args],
                        "preconditions": list(s.preconditions),
                        "effects": list(s.effects),
                        "step_budget": s.step_budget,
                        "doc": s.doc,
                    }
                    for n, s in SKILLS.items()
                }
            )
        )
        return 0
    t = Table(title="skill library")
    for col in ("skill", "arguments", "preconditions", "effects", "budget", "example"):
        t.add_column(col)
    examples = {
        "pick": {"obj": "red block"},
        "place": {"obj": "red block", "target": "blue bowl"},
        "push": {"obj": "red block", "direction": "left"},
    }
    for n, s in SKILLS.items():
        t.add_row(
            n,
            ", ".join(x.name for x in s.args),
            "\n".join(s.preconditions),
            "\n".join(s.effects),
            str(s.step_budget),
            s.instruction(examples[n]),
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
        ServerBenchConfig(checkpoint=a.checkpoint, device=a.device, requests=a.requests)
    )
    if a.json:
        print(json.dumps(result))
    else:
        out.print(
            f"in-process p50 {result['in_process_ms']['p50']:.2f} ms, loopback p50 "
            f"{result['loopback_ms']['p50']:.2f} ms, overhead p50 {result['overhead_ms']['p50']:.2f} ms"
        )
    return 0


def cmd_vla_collect(a: argparse.Namespace) -> int:
    from vla_agent.vla.collect import CollectConfig, collect

    cfg = CollectConfig(
        out=Path(a.out), episodes=a.episodes, seed=a.seed, image_size=a.image_size, noise_prob=a.noise_prob
    )
    with _progress() as prog:
        task = prog.add_task("expert demonstrations", total=cfg.episodes)
        result = collect(cfg, progress=lambda i, n: prog.update(task, completed=i))
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
        model=VLAConfig(action_head=a.action_head),
    )
    with _progress() as prog:
        task = prog.add_task("training", total=cfg.steps)

        def update(step, total, info):
            prog.update(task, completed=step, description=f"training loss {info['loss']:.3f}")

        result = train(cfg, progress=update)
    print(json.dumps(result) if a.json else f"checkpoint: {result['checkpoint']} ({result['wall_s']:.0f} s)")
    return 0


def cmd_vla_reproduce(a: argparse.Namespace) -> int:
    """Collect demonstrations and train with the defaults that produced the shipped checkpoint."""
    import shutil
    import time

    from vla_agent.vla.checkpoint import DEFAULT_CHECKPOINT

    t0 = time.perf_counter()
    root = Path(a.out)
    collect_args = argparse.Namespace(
        out=str(root / "demos"), episodes=a.episodes, seed=0, image_size=128, noise_prob=0.5, json=False
    )
    cmd_vla_collect(collect_args)
    train_args = argparse.Namespace(
        dataset=str(root / "demos"),
        out=str(root / "train"),
        steps=a.steps,
        batch_size=64,
        lr=1e-3,
        seed=0,
        device=a.device,
        action_head="continuous",
        json=False,
    )
    cmd_vla_train(train_args)
    final = root / "train" / "final"
    if a.install:
        DEFAULT_CHECKPOINT.mkdir(parents=True, exist_ok=True)
        for f in ("model.safetensors", "config.json", "stats.json"):
            shutil.copy2(final / f, DEFAULT_CHECKPOINT / f)
        out.print(f"installed as the default checkpoint: {DEFAULT_CHECKPOINT}")
    out.print(f"reproduced in {time.perf_counter() - t0:.0f} s: {final}")
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    import os

    from vla_agent.vla.server import ServeConfig, serve_forever

    cfg = ServeConfig(
        checkpoint=a.checkpoint,
        device=a.device,
        host=a.host,
        port=a.port,
        api_key=a.api_key or os.environ.get("VLA_AGENT_API_KEY"),
    )
    err.print(f"serving the VLA on ws://{cfg.host}:{cfg.port} (device {cfg.device}); /healthz for probes")
    serve_forever(cfg)
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
    be.add_argument("--json", action="store_true", help="print figures as one JSON object")
    be.set_defaults(func=cmd_bench_expert)

    bs = bsub.add_parser(
        "skills",
        help="closed-loop skill success of a policy on unseen seeds/paraphrases",
        description="Roll a skill policy out on seeds disjoint from training and "
        "held-out instruction paraphrases; judged by ground truth.",
    )
    bs.add_argument("--policy", default="vla", help="vla | expert | ws://HOST:PORT (policy server)")
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
    bsv.add_argument("--json", action="store_true")
    bsv.set_defaults(func=cmd_bench_server)

    v = sub.add_parser("vla", help="demonstrations and training of the VLA skill policy")
    vsub = v.add_subparsers(dest="vla", metavar="ACTION", required=True)
    vc = vsub.add_parser("collect", help="record expert demonstrations (LeRobotDataset v3.0 layout)")
    vc.add_argument("--out", default="data/demos", help="dataset folder (must not exist)")
    vc.add_argument("--episodes", type=int, default=1200, help="tasks to run (place tasks add their pick)")
    vc.add_argument("--seed", type=int, default=0)
    vc.add_argument("--image-size", type=int, default=128)
    vc.add_argument("--noise-prob", type=float, default=0.5, help="fraction of episodes with action noise")
    vc.add_argument("--json", action="store_true")
    vc.set_defaults(func=cmd_vla_collect)
    vt = vsub.add_parser("train", help="train the VLA on a dataset (resumes from OUT/last)")
    vt.add_argument("--dataset", default="data/demos", help="dataset folder(s), comma-separated")
    vt.add_argument("--out", default="runs/train")
    vt.add_argument("--steps", type=int, default=12000)
    vt.add_argument("--batch-size", type=int, default=64)
    vt.add_argument("--lr", type=float, default=1e-3)
    vt.add_argument("--seed", type=int, default=0)
    vt.add_argument("--device", default="cpu", help="cpu | cuda")
    vt.add_argument("--action-head", default="continuous", choices=["continuous", "bins"])
    vt.add_argument("--json", action="store_true")
    vt.set_defaults(func=cmd_vla_train)

    vr = vsub.add_parser("reproduce", help="collect + train with the defaults of the shipped checkpoint")
    vr.add_argument("--out", default="runs/reproduce")
    vr.add_argument("--episodes", type=int, default=1200)
    vr.add_argument("--steps", type=int, default=12000)
    vr.add_argument("--device", default="cpu", help="cpu | cuda")
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
    sv.add_argument("--api-key", default=None, help="required beyond loopback (or VLA_AGENT_API_KEY)")
    sv.set_defaults(func=cmd_serve)

    s = sub.add_parser("scene", help="build a scene, list the true predicates, optionally save an image")
    s.add_argument("--scene", default=None, help="objects, e.g. 'red block, blue bowl' (random when omitted)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--randomize", action="store_true")
    s.add_argument("--image", default=None, help="write the static camera view to this PNG")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_scene)

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
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
