"""``vla-agent chat``: a chat-style REPL around one simulated robot session.

Type a command; the plan appears as a table (and waits for a yes unless ``--yes``); execution
shows a live status line (subgoal, step count, detector confidence) with shield interventions,
retries and replans as they happen. Ctrl-C during a run is an emergency stop: the robot holds at
the next control tick and the session goes on. Input and history come from prompt_toolkit when a
terminal is attached (plain ``input()`` otherwise, e.g. piped input); output from rich.
"""

from __future__ import annotations

import queue
import shlex
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vla_agent.agent.core.session import AgentConfig, Session
from vla_agent.agent.frontends.console import ask_yes, yes_or_no
from vla_agent.errors import VlaAgentError
from vla_agent.sim.video import write_video

HELP = """[b]commands[/b]
  <text>            plan and execute a command, e.g. "put the red block in the bowl"
  /plan <text>      plan only (nothing moves)
  /scene            the objects in view and the relations perception sees
  /reset [seed]     rebuild the scene (same objects, poses from the seed)
  /video            write the session's video so far
  /stop             e-stop (Ctrl-C during a run does the same)
  /help             this help
  /quit             leave (Ctrl-D too)"""


class ChatREPL:
    def __init__(
        self,
        cfg: AgentConfig,
        console: Console,
        confirm: bool = True,
        out: Path | None = None,
        history: Path | None = None,
        session_factory: Callable[[AgentConfig, list], Session] = Session,
    ):
        from vla_agent.agent.frontends.console import event_printer

        self.cfg = cfg
        self.console = console
        self.confirm = confirm
        self.out = out or Path("runs") / time.strftime("chat-%Y%m%d-%H%M%S")
        self.history = history
        self.session = session_factory(cfg, [event_printer(console)])
        self.runs = 0
        self._prompt = self._make_prompt()

    # ------------------------------------------------------------------ input
    def _make_prompt(self) -> Callable[[str], str]:
        import sys

        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            return input
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        hist = InMemoryHistory()
        if self.history is not None:
            self.history.parent.mkdir(parents=True, exist_ok=True)
            hist = FileHistory(str(self.history))
        ps = PromptSession(history=hist)
        return lambda text: ps.prompt(text)

    def ask_yes(self, question: str) -> bool:
        return ask_yes(question, default=True, ask=self._prompt)

    # ------------------------------------------------------------------ loop
    def start(self, seed: int | None = None) -> None:
        self.session.reset(seed=seed)
        c = self.console
        c.print(
            f"[b]vla-agent chat[/b] · policy {self.cfg.policy} · planner {self.cfg.planner} · "
            f"detector {self.cfg.detector} · reports in {self.out}/"
        )
        self.show_scene()
        c.print("type a command, or /help")

    def loop(self) -> int:
        self.start()
        while True:
            try:
                line = self._prompt("vla-agent> ").strip()
            except KeyboardInterrupt:
                self.console.print("[dim](the robot is idle; /quit or Ctrl-D to leave)[/dim]")
                continue
            except EOFError:
                break
            if not line:
                continue
            try:
                if not self.handle(line):
                    break
            except VlaAgentError as e:
                self.console.print(f"[red]error:[/red] {e}", highlight=False)
        self.session.close()
        return 0

    def handle(self, line: str) -> bool:
        """One line of input; False to quit."""
        if not line.startswith("/"):
            self.execute(line)
            return True
        cmd, _, rest = line.partition(" ")
        cmd = cmd.lower()
        if cmd in ("/quit", "/exit", "/q"):
            return False
        if cmd == "/help":
            self.console.print(HELP)
        elif cmd == "/scene":
            self.show_scene()
        elif cmd == "/plan":
            self.plan_only(rest.strip())
        elif cmd == "/reset":
            seed = int(rest) if rest.strip().lstrip("-").isdigit() else None
            self.session.reset(seed=seed)
            self.console.print(f"scene rebuilt (seed {self.session.seed})")
            self.show_scene()
        elif cmd == "/video":
            self.write_video()
        elif cmd == "/stop":
            self.session.executor.stop()
            self.session.backend.stop()
            self.console.print("[yellow]e-stop[/yellow]: the robot holds")
        else:
            self.console.print(f"[red]unknown command {shlex.quote(cmd)}[/red]; /help lists them")
        return True

    # ------------------------------------------------------------------ actions
    def show_scene(self) -> None:
        scene = self.session.executor.scene()
        t = Table(title=f"scene (seed {self.session.seed})")
        for col in ("object", "kind", "position (m)"):
            t.add_column(col)
        for o in scene.objects:
            pos = "not seen" if o.position is None else ", ".join(f"{v:.2f}" for v in o.position)
            t.add_row(o.name, o.kind, pos)
        self.console.print(t)
        rel = [str(p) for p in scene.relations if p.name in ("in", "on", "holding")]
        if rel:
            self.console.print("relations: " + ", ".join(rel), highlight=False)

    def plan_only(self, command: str) -> None:
        from vla_agent.agent.frontends.console import plan_table as _plan_table

        if not command:
            self.console.print("usage: /plan <command>")
            return
        result = self.session.plan(command)
        if "refused" in result:
            self.console.print(f"[red]refused:[/red] {result['refused']}", highlight=False)
        else:
            self.console.print(
                _plan_table(result["subgoals"], f"plan ({result['planner']}, {result['latency_ms']:.1f} ms)")
            )

    def write_video(self) -> None:
        frames = self.session.frames
        if len(frames) < 2:
            self.console.print("no video yet (run a command first, and do not pass --no-video)")
            return
        self.out.mkdir(parents=True, exist_ok=True)
        path = write_video(frames, self.out / "session.mp4", fps=self.session.fps)
        self.console.print(f"video: {path}")

    def execute(self, command: str) -> dict | None:
        """Run one command in a worker thread; the main thread answers the plan confirmation,
        animates the status line and turns Ctrl-C into an e-stop."""
        self.runs += 1
        self.session.executor.clear_stop()  # a new command after an e-stop is the user's go-ahead
        requests: queue.Queue = queue.Queue()
        answers: queue.Queue = queue.Queue()

        def approve(plan) -> bool:
            if not self.confirm and not (plan.predicted or {}).get("low"):
                return True  # --yes, unless experience says the plan is unlikely to succeed
            requests.put(plan)
            return answers.get()

        def ask(question: str) -> bool | None:  # the detector cannot tell: the person answers
            requests.put(question)
            return answers.get()

        self.session.executor.ask = ask

        result: dict = {}
        errors: list[BaseException] = []

        def work() -> None:
            try:
                result.update(self.session.run(command, out=self.out / f"{self.runs:02d}", approve=approve))
            except BaseException as e:  # reported below, never kills the REPL
                errors.append(e)

        # Ctrl-C from the moment the worker exists: a signal handler (not a KeyboardInterrupt that
        # could land anywhere in the main thread) stops the executor; the loop reports it.
        executor = self.session.executor
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, lambda *_: executor.stop()) if main_thread else None
        worker = threading.Thread(target=work, name="vla-agent-run", daemon=True)
        status = self.console.status("planning ...", spinner="dots")
        reported = False
        try:
            worker.start()
            status.start()
            while worker.is_alive() or (executor.stopping and not reported):
                if executor.stopping and not reported:
                    reported = True
                    self.console.print("[yellow]e-stop[/yellow]: Ctrl-C, the robot holds")
                try:
                    request = requests.get(timeout=0.1)
                except queue.Empty:
                    status.update(self._status_text())
                    continue
                status.stop()
                if isinstance(request, str):
                    answers.put(self._ask_unsure(request))
                else:
                    answers.put(self.ask_yes("execute this plan?"))  # Ctrl-C there answers "no"
                status.start()
            worker.join()
        finally:
            status.stop()
            if main_thread:
                signal.signal(signal.SIGINT, previous)
        if errors:
            raise VlaAgentError(f"the run failed: {errors[0]}")
        if result.get("status") == "question":
            return self._answer(command, result)
        self._show_result(result)
        return result

    def _ask_unsure(self, question: str) -> bool | None:
        """The detector's question: yes, no, or anything else for "I cannot tell either"."""
        try:
            return yes_or_no(self._prompt(f"the detector cannot tell: {question} [y/n, Enter: not sure] "))
        except (EOFError, KeyboardInterrupt):
            return None

    def _answer(self, command: str, asked: dict) -> dict | None:
        """Ask the planner's question; run the command again with the object the answer picks."""
        from vla_agent.agent.planning.plan import resolve_answer
        from vla_agent.agent.planning.reading import answered

        options = asked["options"]
        try:
            answer = self._prompt(f"{asked['question']} (1-{len(options)} or a name) > ")
        except (EOFError, KeyboardInterrupt):
            answer = ""
        choice = resolve_answer(answer, options)
        if choice is None:
            self.console.print(
                f"[yellow]{answer!r} is not one of {', '.join(options)}; nothing moved[/yellow]"
            )
            return asked
        command = answered(command, asked.get("about", ""), choice)
        self.console.print(f"[dim]-> {command}[/dim]")
        return self.execute(command)

    def _status_text(self) -> str:
        p = self.session.executor.progress
        if not p:
            return "planning ..."
        conf = p.get("confidence")
        conf_text = f" · detector {p['status']}" + (f" ({conf:.2f})" if conf is not None else "")
        return f"{p['index'] + 1}. {p['instruction']} · step {p['step']}/{p['budget']}{conf_text}"

    def _show_result(self, s: dict) -> None:
        if not s:
            return
        color = {"success": "green", "refused": "yellow", "question": "cyan"}.get(s["status"], "red")
        self.console.print(f"[{color}][b]{s['status']}[/b][/{color}] {s.get('reason') or ''}")
        if s["status"] not in ("refused", "question"):
            self.console.print(f"holds: {', '.join(s['holds']) or '(nothing)'}", highlight=False)
            self.console.print(f"report: {s['report']}", highlight=False)
        self.session.executor.progress = {}
