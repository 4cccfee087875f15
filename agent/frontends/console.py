"""The event stream as people read it in a terminal (run, task, chat, voice): plan tables, one
line per subgoal start and end, shield interventions (a run of identical ones folded into one
line with a count), refusals, the shadow run's verdict."""

from __future__ import annotations

import sys
from collections.abc import Callable

from rich.console import Console
from rich.table import Table


def ask_yes(
    question: str, default: bool, ask: Callable[[str], str] = input, console: Console | None = None
) -> bool:
    """The one yes/no question of every front-end. Enter takes ``default`` (yes to run a plan
    shown, no to move a real arm); without a terminal to ask on (and the default ``input``) the
    answer is no, said on ``console``; Ctrl-C or Ctrl-D answer no."""
    if ask is input and not sys.stdin.isatty():
        (console or Console(stderr=True)).print(f"{question} -> no (not a terminal; pass --yes to approve)")
        return False
    try:
        answer = ask(f"{question} {'[Y/n]' if default else '[y/N]'} ").strip().lower()
    except (EOFError, KeyboardInterrupt):
        return False
    return default if not answer else answer in ("y", "yes")


def yes_or_no(answer: str) -> bool | None:
    """A person's yes or no ("y", "yes it did", "no"); None for anything else (not sure)."""
    words = answer.strip().lower().split()
    word = words[0] if words else ""
    return True if word in ("y", "yes") else False if word in ("n", "no") else None


def plan_table(subgoals: list[dict], title: str = "plan", predicted: dict | None = None) -> Table:
    t = Table(title=title, caption=_predicted_caption(predicted))
    t.add_column("#", justify="right")
    t.add_column("skill")
    t.add_column("arguments")
    t.add_column("instruction sent to the policy")
    if predicted:
        t.add_column("predicted", justify="right")
    for i, s in enumerate(subgoals, 1):
        row = [str(i), s["skill"], ", ".join(f"{k}={v}" for k, v in s["args"].items()), s["instruction"]]
        if predicted:
            p, n = predicted["subgoals"][i - 1], predicted["samples"][i - 1]
            row.append(f"{p:.2f} ({n})")
        t.add_row(*row)
    return t


def _predicted_caption(predicted: dict | None) -> str | None:
    if not predicted:
        return None
    text = f"predicted success of the plan {predicted['plan']:.2f} (outcomes seen per subgoal in brackets)"
    return f"[yellow]warning: unlikely to succeed;[/yellow] {text}" if predicted.get("low") else text


def event_printer(console: Console):
    """A listener printing each event; repeated shield messages become one line and a count."""
    marks = {"done": "[green]done[/green]", "failed": "[red]failed[/red]"}
    repeat = {"text": "", "n": 0}

    def flush() -> None:
        if repeat["n"] > 1:
            console.print(f"  [yellow]shield[/yellow] (the same {repeat['n'] - 1} more times)")
        repeat.update(text="", n=0)

    def show(ev) -> None:
        d = ev.data
        if ev.kind == "shield":
            text = "; ".join(d["violations"])
            if text == repeat["text"]:
                repeat["n"] += 1
                return
            flush()
            repeat.update(text=text, n=1)
            console.print(f"  [yellow]shield[/yellow] step {d['step']}: {text}")
            return
        flush()
        if ev.kind == "plan":
            if d.get("fallback"):
                console.print(f"[yellow]fell back to the {d['planner']} planner:[/yellow] {d['fallback']}")
            title = f"plan ({d.get('planner', '')}, {d.get('latency_ms', 0):.1f} ms)"
            console.print(plan_table(d["subgoals"], title, d.get("predicted")))
        elif ev.kind == "replan":
            console.print(plan_table(d["subgoals"], f"replan after {d['after']!r}: {d['reason']}"))
        elif ev.kind == "subgoal_start":
            attempt = f" (attempt {d['attempt']})" if d["attempt"] > 1 else ""
            console.print(f"[bold]▶ {d['index'] + 1}. {d['instruction']}[/bold]{attempt}")
        elif ev.kind == "subgoal_end":
            console.print(f"  {marks.get(d['status'], d['status'])} after {d['steps']} steps: {d['reason']}")
        elif ev.kind == "unsure":
            said = {True: "yes", False: "no", None: "no answer: treated as not done"}[d["answer"]]
            console.print(f"  [cyan]detector unsure[/cyan] ({d['reason']}): {d['question']} -> {said}")
        elif ev.kind == "retry":
            console.print(f"  [yellow]retry[/yellow]: {d['reason']}")
        elif ev.kind == "question":
            options = "; ".join(f"{i}. {o}" for i, o in enumerate(d["options"], 1))
            console.print(f"[cyan]question:[/cyan] {d['question']} ({options})")
        elif ev.kind == "refused":
            console.print(f"[red]refused[/red] ({d['stage']}): {d['reason']}")
        elif ev.kind == "shadow":
            console.print(f"[{'green' if d['ok'] else 'red'}]{d['verdict']}[/]")
        elif ev.kind in ("error", "stopped"):
            console.print(f"  [red]{ev.kind}[/red]: {d['reason']}")
        elif ev.kind == "finished" and d.get("tally"):
            console.print(f"[dim]{d['tally']}[/dim]")

    return show
