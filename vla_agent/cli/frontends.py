"""``chat``, ``voice`` and ``task``: the front-ends over a session."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from rich.table import Table

from vla_agent.cli.common import (
    confirm,
    err,
    event_printer,
    names,
    out,
    print_run,
    progress,
    run_exit_code,
    scale_args,
    scale_options,
)
from vla_agent.cli.options import agent_config, agent_options, real_config, real_confirm, real_options
from vla_agent.errors import VlaAgentError


def cmd_chat(a: argparse.Namespace) -> int:
    from vla_agent.agent.frontends.chat import ChatREPL
    from vla_agent.agent.frontends.sessions import open_session

    cfg, real = agent_config(a), real_config(a)
    repl = ChatREPL(
        cfg,
        out,
        confirm=not a.yes,
        out=Path(a.out) if a.out else None,
        history=Path(a.history).expanduser() if a.history else None,
        session_factory=lambda cfg, listeners: open_session(cfg, real, listeners, real_confirm),
    )
    return repl.loop()


def cmd_voice(a: argparse.Namespace) -> int:
    from vla_agent.agent.frontends.console import yes_or_no
    from vla_agent.agent.frontends.sessions import open_session
    from vla_agent.agent.frontends.voice import (
        answer_of,
        is_stop,
        make_transcriber,
        read_wav,
        record_mic,
        speak,
        transcribe_timed,
    )
    from vla_agent.agent.planning.plan import resolve_answer
    from vla_agent.agent.planning.reading import answered

    if bool(a.wav) == bool(a.mic):
        raise VlaAgentError("give exactly one of --wav FILE or --mic")
    audio = read_wav(a.wav) if a.wav else None  # a bad file fails before the robot is built
    cfg = agent_config(a)
    session = open_session(cfg, real_config(a), [] if a.json else [event_printer(err)], real_confirm)
    try:
        session.reset()
        names = session.executor.scene().names
        stt = make_transcriber(a.stt, names, base_url=a.llm_base_url, whisper_model=a.whisper_model)
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
        elif not (a.yes or confirm(f'run "{transcript}"?')):
            summary = {"status": "refused", "reason": "not confirmed", **extra}
        else:
            answers = iter(a.answer_wav or [])
            spoken: list[dict] = []

            def listen(question: str, options: list[str]) -> str:
                """Speak the question, then hear the answer (the next --answer-wav, or the mic)."""
                if not a.json:
                    err.print(f"[cyan]asking:[/cyan] {question}")
                speak(question, Path(a.out or "runs/voice") / f"question-{len(spoken) + 1}.wav", play=a.mic)
                wav = next(answers, None)
                audio = read_wav(wav) if wav else record_mic(a.seconds) if a.mic else None
                heard = answer_of(stt, audio, options) if audio is not None else ""
                spoken.append({"question": question, "heard": heard})
                if not a.json:
                    err.print(f'heard: [b]"{heard}"[/b]', highlight=False)
                return heard

            def ask(question: str) -> bool | None:
                return yes_or_no(listen(question, ["yes", "no"]))

            session.executor.ask = ask
            summary = session.run(transcript)
            if summary.get("status") == "question":
                choice = resolve_answer(listen(summary["question"], summary["options"]), summary["options"])
                if choice is not None:
                    summary = session.run(answered(transcript, summary.get("about", ""), choice))
            summary = {**summary, **extra, **({"dialogue": spoken} if spoken else {})}
    finally:
        session.close()
    print_run(summary, a.json)
    return 0 if summary["status"] == "stopped" else run_exit_code(summary)  # a spoken stop did its job


def cmd_task(a: argparse.Namespace) -> int:
    from vla_agent.agent.frontends.taskfile import run_task_files

    overrides = {
        k: v for k, v in (("policy", a.policy), ("planner", a.planner), ("detector", a.detector)) if v
    }
    if a.no_video:
        overrides["video"] = False
    listeners = [] if a.json else [event_printer(err)]
    from vla_agent.agent.frontends.sessions import open_session

    real = real_config(a)
    if real is not None:
        overrides["video"] = False  # the camera's frames are in each run's trace

    def session(cfg, listeners):
        return open_session(cfg, real, listeners, real_confirm)

    session.real = real is not None
    scale = scale_args(a, out=False)
    parallel = a.workers > 1 or a.ray_address
    with progress() if parallel else contextlib.nullcontext() as prog:
        bar = prog.add_task("task files", total=len(a.files)) if parallel else None
        result = run_task_files(
            a.files,
            overrides,
            Path(a.out),
            listeners,
            session,
            progress=(lambda i, n: prog.update(bar, completed=i)) if parallel else None,
            resume=a.resume,
            **scale,
        )
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


# ---------------------------------------------------------------------- parsers
def add_chat(sub) -> None:
    ch = sub.add_parser(
        "chat",
        help="chat-style REPL: type commands, see the plan, watch it run (Ctrl-C = e-stop)",
        description="A REPL around one simulated robot. Each command is planned and shown as a table, "
        "confirmed (unless --yes), then executed with a live status line; Ctrl-C during a run is an "
        "emergency stop and the session goes on. Slash commands: /scene, /plan <command>, /stop, "
        "/reset [seed], /video, /help, /quit. Every run leaves a report folder (video, trace, report.html).",
    )
    agent_options(ch)
    real_options(ch, yes=False)
    ch.add_argument("--yes", action="store_true", help="execute plans without asking")
    ch.add_argument("--history", default="~/.vla_agent_history", help="input history file ('' for none)")
    ch.set_defaults(func=cmd_chat)


def add_voice(sub) -> None:
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
    vo.add_argument(
        "--answer-wav",
        action="append",
        default=None,
        metavar="FILE",
        help="a recorded answer to a question the robot asks (repeat for several; else --mic listens)",
    )
    agent_options(vo)
    real_options(vo, yes=False)
    vo.set_defaults(func=cmd_voice)


def add_task(sub) -> None:
    tk = sub.add_parser(
        "task",
        help="run scripted task files (YAML) and check their expected end states",
        description="Validate every FILE first (a malformed file: one line naming file, line and field, and "
        "nothing runs), then run each in a fresh simulated scene: its commands in order, then its expected "
        "ground-truth predicates. Exit code 0 when every file passes, 1 when one fails, 2 on a malformed "
        "file. Schema: vla_agent.agent.frontends.taskfile (examples in examples/tasks/). Options given "
        "here override the files' own options.",
    )
    tk.add_argument("files", nargs="+", help="task files, e.g. examples/tasks/*.yaml")
    tk.add_argument("--policy", default=None, help=f"override: {names('policy')}")
    tk.add_argument("--planner", default=None, help=f"override: {names('planner')}")
    tk.add_argument("--detector", default=None, help=f"override: {names('detector')}")
    tk.add_argument("--out", default="runs/tasks", help="report folders go here, one per file and command")
    tk.add_argument("--no-video", action="store_true")
    scale_options(tk, out=False, what="task files (in simulators)")
    tk.add_argument(
        "--resume", action="store_true", help="run only the files with no result in --out yet (same files)"
    )
    tk.add_argument("--json", action="store_true", help="print the results as one JSON object")
    real_options(tk)
    tk.set_defaults(func=cmd_task)
