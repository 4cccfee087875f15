"""The ``vla-agent`` command line: a parser per command, each a thin layer over a plain function
with a typed config (``vla_agent.agent``, ``vla_agent.vla``). Only the command being run builds
its arguments (and imports what it needs), so ``vla-agent --help`` starts fast."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from vla_agent import __version__

EPILOG = """examples:
  vla-agent run                                    agent dry run of the default command (VLA policy)
  vla-agent run "put all the red blocks in the bowl" --scene "2 red blocks, blue bowl" --policy expert
  vla-agent plan "stack the blue block on the green one" --json
  vla-agent chat --robot xarm6 --policy expert     a REPL on a simulated xArm 6
  vla-agent replay runs/run-*/trace.jsonl --video replay.mp4
  vla-agent bench chains --episodes 100 --policy expert --json
  vla-agent bench expert --robot xarm6 --episodes 200 --json
  vla-agent scene --scene "red block, blue bowl" --image scene.png
  vla-agent ros serve --policy expert              vla-agent as a ROS 2 action server
  vla-agent skills                                 the skill library
  vla-agent plugins                                every registered part and where it came from
"""

# command -> (module of vla_agent.cli, one-line help); the module's add_<command>(sub) builds it
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "plan and execute a command (simulator or real arm); leaves a video and a trace"),
    "plan": ("run", "plan a command without moving anything"),
    "chat": ("frontends", "chat-style REPL: type commands, see the plan, watch it run (Ctrl-C = e-stop)"),
    "voice": ("frontends", "speak a command (WAV or microphone); offline speech recognition, then run it"),
    "task": ("frontends", "run scripted task files (YAML) and check their expected end states"),
    "replay": ("run", "summarize a trace; --video re-renders the episode"),
    "bench": ("bench", "benchmarks that print JSON figures"),
    "vla": ("vla", "demonstrations and training of the VLA skill policy"),
    "serve": ("world", "serve a skill policy over the openpi websocket protocol"),
    "record-sim": ("real", "write a RealSense recording (.db3) of a simulated scene, with its calibration"),
    "calibrate": ("real", "camera-to-base extrinsics from coloured targets at known positions"),
    "demo": ("world", "scripted-expert dry run of a long-horizon sequence; writes a video"),
    "scene": ("world", "build a scene, list the true predicates, optionally save an image"),
    "skills": ("world", "list the skill library"),
    "ros": ("ros", "ROS 2: vla-agent as an action server, the simulator as a ROS robot, a client"),
    "plugins": ("world", "list every registered part (skills, robots, policies, ...) and where it came from"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``command``'s arguments are built in full (the others list their help only)."""
    import importlib

    ap = argparse.ArgumentParser(
        prog="vla-agent",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
        description="Natural-language robot agent: LLM planner -> VLA skills -> safety shield -> "
        "PyBullet or a real arm.",
    )
    ap.add_argument("--version", action="version", version=f"vla-agent {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, text) in COMMANDS.items():
        if name == command:
            getattr(importlib.import_module(f"vla_agent.cli.{module}"), f"add_{name.replace('-', '_')}")(sub)
        else:
            sub.add_parser(name, help=text, add_help=False)
    return ap


def _route_logging(console) -> None:
    """Library messages go through ``logging``; the CLI shows warnings and errors with rich
    (``VLA_AGENT_LOG=INFO`` or ``DEBUG`` for more)."""
    import logging

    from rich.logging import RichHandler

    level = os.environ.get("VLA_AGENT_LOG", "WARNING").upper()
    handler = RichHandler(console=console, show_path=False, show_time=False)
    logging.basicConfig(
        level=getattr(logging, level, logging.WARNING), format="%(message)s", handlers=[handler]
    )


def _command(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command(argv)
    from pydantic import ValidationError
    from rich.markup import escape

    from vla_agent.cli.common import err
    from vla_agent.errors import VlaAgentError

    _route_logging(err)

    try:
        args = build_parser(command if command in COMMANDS else None).parse_args(argv)
        return int(args.func(args) or 0)
    except VlaAgentError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        return 2
    except ValidationError as e:  # a config built from flags: one line per bad field
        for problem in e.errors():
            where = ".".join(map(str, problem["loc"])) or "config"
            err.print(f"[red]error:[/red] {where}: {escape(problem['msg'])}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        return 130
    except Exception as e:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("VLA_AGENT_DEBUG"):
            raise
        first = str(e).splitlines()[0] if str(e) else ""
        err.print(
            f"[red]internal error:[/red] {type(e).__name__}: {escape(first)} "
            "(VLA_AGENT_DEBUG=1 shows the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        return 1
