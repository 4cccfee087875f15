"""What the commands share: consoles, progress bars, tables, the registries' names, the event
printer and the exit code of a run."""

from __future__ import annotations

import json

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from vla_agent.agent.frontends.console import ask_yes, event_printer, plan_table  # noqa: F401 - re-exported
from vla_agent.errors import VlaAgentError

err = Console(stderr=True)
out = Console()


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def print_rates(title: str, result: dict, total_label: str) -> None:
    """A success table: one row per skill variant, then the headline rate."""
    t = Table(title=title)
    t.add_column("skill")
    t.add_column("success", justify="right")
    for k, v in result["per_variant"].items():
        t.add_row(k, f"{v:.3f}")
    t.add_row(f"[b]{total_label}[/b]", f"[b]{result['success_rate']:.3f}[/b]")
    out.print(t)


def csv_tuple(text: str | None) -> tuple[str, ...] | None:
    items = tuple(x.strip() for x in (text or "").split(",") if x.strip())
    return items or None


def registries() -> dict:
    """Every registry of parts, filled (built-ins register on import; plugins by entry point)."""
    import vla_agent.agent.core.policies  # noqa: F401
    import vla_agent.agent.perception.detectors  # noqa: F401 - registration on import
    import vla_agent.agent.planning.planners  # noqa: F401
    import vla_agent.agent.real.arms  # noqa: F401
    import vla_agent.agent.real.cameras  # noqa: F401
    import vla_agent.sim.robots  # noqa: F401
    import vla_agent.vla.adapters  # noqa: F401
    from vla_agent.registry import REGISTRIES
    from vla_agent.skills.library import skill_names

    skill_names()  # the built-in skills register on first use

    return REGISTRIES


def default_llm() -> str:
    from vla_agent.agent.planning.llm import DEFAULT_MODEL

    return DEFAULT_MODEL


def names(kind: str) -> str:
    return registries()[kind].help()


def print_run(summary: dict, as_json: bool) -> None:
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


def run_exit_code(summary: dict) -> int:
    """0 success, 1 failed or stopped, 2 refused."""
    return {"success": 0, "refused": 2}.get(summary["status"], 1)


def confirm(question: str) -> bool:
    """Run what was heard or shown? (Enter: yes; no terminal: no.)"""
    return ask_yes(question, default=True, console=err)


def scale_options(p, out: bool = True, what: str = "episodes") -> None:
    """``--workers`` and ``--ray-address`` of the commands that run batches (``what``), and their
    run folder ``--out`` unless the command has its own."""
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help=f"run {what} on N Ray workers (a local cluster on 127.0.0.1; needs vla-agent[scale]); "
        "default: in this process",
    )
    p.add_argument("--ray-address", default=None, help="an existing Ray cluster (e.g. 127.0.0.1:6379)")
    if out:
        p.add_argument(
            "--out",
            default=None,
            help="run folder: per-episode records (episodes.jsonl) as they finish; the same folder resumes",
        )


def scale_args(a, out: bool = True) -> dict:
    """The keyword arguments ``scale_options`` stand for (``out`` too when it added ``--out``)."""
    from pathlib import Path

    if a.workers < 1:
        raise VlaAgentError("--workers must be 1 or more")
    args = {"workers": a.workers, "ray_address": a.ray_address}
    return {**args, "out": Path(a.out) if a.out else None} if out else args
