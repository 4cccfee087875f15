"""``run``, ``plan`` and ``replay``: one command on a session, a plan without moving, a trace."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from vla_agent.cli.common import (
    err,
    event_printer,
    out,
    plan_table,
    print_run,
    progress,
    run_exit_code,
)
from vla_agent.cli.options import agent_config, agent_options, real_config, real_confirm, real_options


def cmd_run(a: argparse.Namespace) -> int:
    from vla_agent.agent.frontends.sessions import open_session

    real = real_config(a)
    session = open_session(agent_config(a), real, [] if a.json else [event_printer(err)], real_confirm)
    try:
        if real is None:
            session.reset()
        summary = session.run(a.command)
    finally:
        session.close()
    if real is None:
        print_run(summary, a.json)
    else:
        _print_real(summary, a.json)
    return run_exit_code(summary)


def _print_real(summary: dict, as_json: bool) -> None:
    if as_json:
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


def cmd_plan(a: argparse.Namespace) -> int:
    from vla_agent.agent.core.session import Session

    cfg = agent_config(a).model_copy(update={"policy": "expert", "video": False})
    session = Session(cfg)
    session.experience.policy = a.policy  # predictions for the policy that would run it
    try:
        session.reset()
        result = session.plan(a.command)
    finally:
        session.close()
    if a.json:
        keep = ("subgoals", "refused", "question", "options", "planner", "fallback", "plan_latency_ms")
        keep += ("predicted_success",)
        print(json.dumps({k: v for k, v in result.items() if k in keep}))
    elif "question" in result:
        options = "; ".join(f"{i}. {o}" for i, o in enumerate(result["options"], 1))
        err.print(f"[cyan]question:[/cyan] {result['question']} ({options})", highlight=False)
    elif "refused" in result:
        err.print(f"[red]refused:[/red] {result['refused']}", highlight=False)
    else:
        if result.get("fallback"):
            err.print(f"[yellow]fell back to the {result['planner']} planner:[/yellow] {result['fallback']}")
        title = f"plan ({result['planner']}, {result['latency_ms']:.1f} ms)"
        out.print(plan_table(result["subgoals"], title, result.get("predicted_success")))
    return 2 if "refused" in result or "question" in result else 0


def cmd_replay(a: argparse.Namespace) -> int:
    from vla_agent.agent.core.trace import recover_summary, summarize

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
        out.print(plan_table(summary["plan"]))
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
    from vla_agent.agent.core.trace import read_trace, sent_actions
    from vla_agent.sim.catalog import SceneSpec
    from vla_agent.sim.env import EnvConfig, TabletopEnv
    from vla_agent.sim.video import write_video

    header = next(read_trace(trace))
    env = TabletopEnv(EnvConfig(randomize=bool(header.get("randomize"))))
    env.reset(seed=header["seed"], options={"scene": SceneSpec.parse(header["scene"])})
    frames = [env.render()]
    actions = sent_actions(trace)
    with progress() as prog:
        task = prog.add_task("re-rendering", total=len(actions))
        for i, action in enumerate(actions, 1):
            env.step(action)
            frames.append(env.render())
            prog.update(task, completed=i)
    env.close()
    return write_video(frames, video, fps=env.config.control_hz)


# ---------------------------------------------------------------------- parsers
def add_run(sub) -> None:
    from vla_agent.agent.core.session import DEFAULT_COMMAND

    r = sub.add_parser(
        "run",
        help="plan and execute a command in the simulator; leaves a video and a trace",
        description="Plan COMMAND (offline planner or an LLM), check it against the skills and the scene, "
        "and execute it subgoal by subgoal: policy -> safety shield -> robot, with a perception-based "
        "success detector, retries and replanning. Exit code 0 success, 1 failed, 2 refused/error.",
    )
    r.add_argument("command", nargs="?", default=DEFAULT_COMMAND, help=f"default: {DEFAULT_COMMAND!r}")
    agent_options(r)
    real_options(r)
    r.set_defaults(func=cmd_run)


def add_plan(sub) -> None:
    pl = sub.add_parser(
        "plan",
        help="plan a command without moving anything",
        description="Print the plan for COMMAND in the scene, or why it is refused.",
    )
    pl.add_argument("command", help="e.g. 'put all the red blocks in the bowl'")
    pl.add_argument(
        "--policy",
        default="vla",
        help="whose recorded outcomes predict each subgoal's success (nothing runs)",
    )
    agent_options(pl, policy=False)
    pl.set_defaults(func=cmd_plan)


def add_replay(sub) -> None:
    rp = sub.add_parser("replay", help="summarize a trace; --video re-renders the episode")
    rp.add_argument("trace", help="a trace.jsonl written by run/task/chat")
    rp.add_argument("--video", default=None, help="re-render the episode to this .mp4/.gif")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=cmd_replay)
