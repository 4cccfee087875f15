"""The one event stream every front-end consumes (REPL, task runner, voice, traces, reports).

Kinds, in the order a run produces them:

``command``  the text received          ``refused``  language check or planner refused it
``plan``     validated subgoals           ``subgoal_start`` / ``subgoal_end`` (status, steps, reason)
``verdict``  detector status changes      ``shield``  an intervention (violations, held)
``retry``    a subgoal is tried again     ``replan``  a new plan for the rest of the command
``home``     the arm went back to its start pose before a pick or push (steps)
``stopped``  e-stop                       ``error``   policy/backend failure (the robot holds)
``finished`` the run's final status
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "command",
    "refused",
    "question",  # the command is ambiguous: a question with options instead of a guess
    "plan",
    "shadow",  # the real backend's shadow dry run of the plan, before approval
    "subgoal_start",
    "home",
    "verdict",
    "unsure",  # the detector could not tell; the question asked and the answer (None: unattended)
    "shield",
    "retry",
    "replan",
    "subgoal_end",
    "stopped",
    "error",
    "finished",
)


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {"type": "event", "kind": self.kind, "time": self.time, **self.data}


Listener = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out; a listener that raises is reported once and dropped, never fatal."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self.history: list[Event] = []

    def subscribe(self, listener: Listener) -> Listener:
        with self._lock:
            self._listeners.append(listener)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def emit(self, kind: str, **data: Any) -> Event:
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        ev = Event(kind, data)
        self.history.append(ev)
        with self._lock:
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(ev)
            except Exception as e:  # a broken UI must not stop the robot loop
                self.unsubscribe(fn)
                print(f"vla-agent: event listener {fn!r} failed and was removed: {e}", file=sys.stderr)
        return ev

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.history if e.kind == kind]
