"""Episode traces: one JSONL file per run, flushed after every record so a crash loses nothing.

Records (one JSON object per line, field ``type``):

- ``header``: format version, command, scene spec, seed, policy, planner, detector, env config;
- ``event``: every event of the stream (plan, subgoal start/end, verdict, shield, retry, ...);
- ``step``: one control step: subgoal index, the policy's action and the action sent after the
  shield, violations, the detector's verdict, end-effector state, and timings (ms).

``summarize`` turns a trace back into a report; ``vla-agent replay`` prints it and can re-render
the episode by replaying the sent actions in a fresh simulator built from the header.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vla_agent.agent.core.events import Event
from vla_agent.agent.core.stats import p50_p99
from vla_agent.errors import ConfigError

TRACE_VERSION = 1


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return [round(float(v), 6) for v in x.reshape(-1)]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


class TraceWriter:
    def __init__(self, path: str | Path, header: dict[str, Any]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("w", encoding="utf-8")
        self.write({"type": "header", "version": TRACE_VERSION, **header})

    def write(self, record: dict[str, Any]) -> None:
        if self._f.closed:
            return
        self._f.write(json.dumps(_jsonable(record)) + "\n")
        self._f.flush()

    def event(self, ev: Event) -> None:
        self.write(ev.to_json())

    def step(self, **record: Any) -> None:
        self.write({"type": "step", **record})

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def read_trace(path: str | Path) -> Iterator[dict[str, Any]]:
    """Records of a trace; a truncated last line (a crash mid-write) is skipped, other bad lines
    raise ConfigError naming the line."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"trace {path} does not exist")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give its trace.jsonl")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a vla-agent trace (not UTF-8 text)") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines):
                return
            raise ConfigError(f"{path}:{i}: not a JSON record ({e.msg})") from None
        if not isinstance(record, dict):
            raise ConfigError(f"{path}:{i}: not a trace record (a JSON object)")
        yield record


def summarize(path: str | Path, records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Command, plan, per-subgoal outcomes, shield interventions and timing percentiles
    (``records``: the trace already read, to avoid reading it twice)."""
    header: dict[str, Any] = {}
    plan: list[dict] = []
    subgoals: list[dict] = []
    shield = 0
    held = 0
    steps = 0
    overhead: list[float] = []
    policy_ms: list[float] = []
    final: dict[str, Any] = {}
    last_state: Any = None
    for r in records if records is not None else read_trace(path):
        t = r.get("type")
        if t == "header":
            header = r
        elif t == "step":
            steps += 1
            last_state = r.get("state", last_state)
            tm = r.get("timing_ms") or {}
            if "overhead" in tm:
                overhead.append(tm["overhead"])
            if "policy" in tm:
                policy_ms.append(tm["policy"])
        elif t == "event":
            k = r.get("kind")
            if k in ("plan", "replan"):
                plan = r.get("subgoals", plan)
            elif k == "subgoal_end":
                subgoals.append(
                    {
                        key: r.get(key)
                        for key in ("index", "instruction", "status", "steps", "attempts", "reason")
                    }
                )
            elif k == "shield":
                shield += 1
                held += bool(r.get("held"))
            elif k in ("finished", "refused"):
                final = {key: v for key, v in r.items() if key not in ("type", "time")}
    if not header:
        raise ConfigError(f"{path} has no header record; is it a vla-agent trace?")
    if not final:  # the run was killed (crash, power, kill -9): say so, with what was last known
        done = [s for s in subgoals if s.get("status") == "done"]
        final = {
            "status": "interrupted",
            "reason": f"interrupted at step {steps} (no end record; {len(done)} subgoals done before)",
            "last_state": last_state,
        }

    return {
        "command": header.get("command"),
        "scene": header.get("scene"),
        "seed": header.get("seed"),
        "policy": header.get("policy"),
        "plan": plan,
        "subgoals": subgoals,
        "steps": steps,
        "shield_interventions": shield,
        "shield_holds": held,
        "policy_ms": p50_p99(policy_ms),
        "overhead_ms_per_step": p50_p99(overhead),
        "final": final,
    }


def recover_summary(trace: str | Path) -> Path | None:
    """A run killed mid-episode leaves its trace but no ``summary.json``: write one beside the
    trace, marked interrupted, from what the trace holds (None when a summary exists already or
    the folder is not writable)."""
    trace = Path(trace)
    out = trace.with_name("summary.json")
    if out.exists():
        return None
    s = summarize(trace)
    if s["final"].get("status") != "interrupted":
        return None
    summary = {
        "command": s["command"],
        "status": "interrupted",
        "reason": s["final"]["reason"],
        "last_state": s["final"]["last_state"],
        "scene": s["scene"],
        "seed": s["seed"],
        "subgoals": s["subgoals"],
        "steps": s["steps"],
        "trace": str(trace),
    }
    try:
        out.write_text(json.dumps(summary, indent=2))
    except OSError:
        return None
    return out


def sent_actions(path: str | Path) -> list[np.ndarray]:
    """The actions that reached the backend, in order (for re-rendering)."""
    return [np.array(r["action_sent"], float) for r in read_trace(path) if r.get("type") == "step"]
