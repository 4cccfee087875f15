"""``demo``, ``scene``, ``skills``, ``plugins`` and ``serve``: the world, the parts, the policy server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from vla_agent.cli.common import (
    err,
    out,
    registries,
)


def cmd_demo(a: argparse.Namespace) -> int:
    from vla_agent.agent.frontends.demo import DemoConfig, run_demo

    cfg = DemoConfig(scene=a.scene, seed=a.seed, out=Path(a.out), video=a.video, randomize=a.randomize)
    summary = run_demo(cfg, log=(lambda s: None) if a.json else err.print)
    if a.json:
        print(json.dumps(summary))
    else:
        out.print(f"video: {summary['video']}\nholds: {', '.join(summary['holds'])}")
    return 0 if all(s["success"] for s in summary["subgoals"]) else 1


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


def cmd_plugins(a: argparse.Namespace) -> int:
    rows = [
        {"kind": kind, "name": e.name, "usage": e.usage, "origin": e.origin, "help": e.help}
        for kind, reg in sorted(registries().items())
        for e in reg.entries()
    ]
    errors = [msg for reg in registries().values() for msg in reg.errors]
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


def cmd_serve(a: argparse.Namespace) -> int:
    from vla_agent.vla.auth import resolve_api_key
    from vla_agent.vla.server import ServeConfig, serve_forever

    cfg = ServeConfig(
        checkpoint=a.checkpoint,
        device=a.device,
        quantize=a.quantize,
        lora=a.lora,
        host=a.host,
        port=a.port,
        api_key=resolve_api_key(a.api_key, a.api_key_file),
        batch_window_ms=a.batch_window_ms,
        max_batch=a.max_batch,
        latency_ms=a.latency_ms,
    )
    err.print(f"serving the VLA on ws://{cfg.host}:{cfg.port} (device {cfg.device}); /healthz for probes")
    serve_forever(cfg)
    return 0


# ---------------------------------------------------------------------- parsers
def add_demo(sub) -> None:
    from vla_agent.agent.frontends.demo import DEFAULT_SCENE

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


def add_scene(sub) -> None:
    s = sub.add_parser("scene", help="build a scene, list the true predicates, optionally save an image")
    s.add_argument("--scene", default=None, help="objects, e.g. 'red block, blue bowl' (random when omitted)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--randomize", action="store_true")
    s.add_argument("--image", default=None, help="write the static camera view to this PNG")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_scene)


def add_skills(sub) -> None:
    k = sub.add_parser("skills", help="list the skill library")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_skills)


def add_plugins(sub) -> None:
    pg = sub.add_parser(
        "plugins",
        help="list the registered policies, planners, detectors and arms, and where each came from",
        description="Built-in parts and those other packages add through entry points "
        "(groups vla_agent.policies, vla_agent.planners, vla_agent.detectors, vla_agent.arms).",
    )
    pg.add_argument("--json", action="store_true")
    pg.set_defaults(func=cmd_plugins)


def add_serve(sub) -> None:
    sv = sub.add_parser(
        "serve",
        help="host the VLA on a websocket policy server (openpi protocol)",
        description="Serve the VLA over websockets with the openpi protocol (msgpack + "
        "numpy, metadata frame, /healthz). Beyond loopback an API key is required.",
    )
    sv.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped one)")
    sv.add_argument("--device", default="cpu", help="cpu | cuda")
    sv.add_argument(
        "--quantize", default="none", choices=["none", "int8", "fp16"], help="int8 on CPU, fp16 on CUDA"
    )
    sv.add_argument("--lora", default=None, help="a LoRA adapter on top of the checkpoint (path or name)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument(
        "--batch-window-ms",
        type=float,
        default=2.0,
        help="with several clients connected, batch requests arriving this close together (0: off)",
    )
    sv.add_argument("--max-batch", type=int, default=8, help="most requests in one forward pass")
    sv.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="wait this long before every reply: emulate a remote GPU server (for benchmarks)",
    )
    sv.add_argument(
        "--api-key",
        default=None,
        help="required beyond loopback; visible in ps: prefer --api-key-file or VLA_AGENT_API_KEY",
    )
    sv.add_argument(
        "--api-key-file", default=None, help="file holding the API key (else ~/.config/vla-agent/api_key)"
    )
    sv.set_defaults(func=cmd_serve)
