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
        t = Table(title=f"scripted experts, {cfg.episodes} episodes")
        t.add_column("skill")
        t.add_column("success", justify="right")
        for k, v in result["per_variant"].items():
            t.add_row(k, f"{v:.3f}")
        t.add_row("[b]overall[/b]", f"[b]{result['success_rate']:.3f}[/b]")
        out.print(t)
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
