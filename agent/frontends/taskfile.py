"""Scripted task files: YAML that says which scene to build, which commands to give, and which
ground-truth predicates must hold at the end. ``vla-agent task FILE...`` runs them like a test
suite (exit code 0 only when every file passes), so they work in CI.

Schema (``TaskFile``; unknown keys are errors)::

    name: red block in the bowl, then a stack     # optional, defaults to the file name
    scene: "red block, blue block, green block, purple bowl"
    seed: 3                                       # object poses (default 0)
    commands:                                     # run in order, in the same scene
      - put the red block in the bowl
      - stack the blue block on the green one
    expect:                                       # must all hold at the end (simulator ground truth)
      - in(red block, purple bowl)
      - on(blue block, green block)
    options:                                      # all optional
      planner: offline                            # offline | llm
      policy: vla                                 # vla | expert | ws://host:port
      detector: perception                        # perception | vla | ground-truth
      time_limit_s: 120                           # the whole file; the robot is stopped at the limit
      randomize: false                            # domain randomization

A malformed file is reported as one line, ``FILE:LINE: FIELD: problem``, and nothing runs.
Limits bound what a batch may do: a file holds at most ``MAX_TASK_BYTES`` of UTF-8 text and
``MAX_COMMANDS`` commands, a batch at most ``MAX_FILES`` files; a file that fails while running
is reported as failed and the files before and after it keep their results.
"""

from __future__ import annotations

import hashlib
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vla_agent.errors import ConfigError, VlaAgentError
from vla_agent.sim.catalog import REGIONS, SceneSpec
from vla_agent.sim.predicates import DIRECTIONS, PREDICATES
from vla_agent.skills.library import skill_names
from vla_agent.types import Predicate

MAX_TASK_BYTES = 256 * 1024
MAX_COMMANDS = 50
MAX_FILES = 200


class TaskOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    planner: str | None = None
    policy: str | None = None
    detector: str | None = None
    time_limit_s: float = Field(300.0, gt=0, le=24 * 3600)
    randomize: bool = False


class TaskFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    scene: str = Field(max_length=2000)
    seed: int = Field(0, ge=0, lt=2**32)
    commands: list[str] = Field(min_length=1, max_length=MAX_COMMANDS)
    expect: list[str] = Field(default_factory=list)
    options: TaskOptions = TaskOptions()

    @field_validator("scene")
    @classmethod
    def _scene(cls, v: str) -> str:
        SceneSpec.parse(v)  # ConfigError -> ValueError below
        return v

    @field_validator("commands")
    @classmethod
    def _commands(cls, v: list[str]) -> list[str]:
        if any(not c.strip() for c in v):
            raise ValueError("empty command")
        if any(len(c) > 500 for c in v):
            raise ValueError("a command longer than 500 characters")
        return v


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """1-based line of the YAML node at a pydantic error location (nearest existing parent)."""
    line = None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _field(loc: tuple) -> str:
    out = ""
    for k in loc:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out or "(file)"


def load_task_file(path: str | Path) -> TaskFile:
    """Parse and validate one task file; raise ConfigError ``FILE:LINE: FIELD: problem``."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such task file")
    if not path.is_file():
        raise ConfigError(f"{path}: not a file (a task file is a YAML file)")
    if path.stat().st_size > MAX_TASK_BYTES:
        raise ConfigError(f"{path}: {path.stat().st_size} bytes; a task file may hold {MAX_TASK_BYTES}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (a binary file?)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it ({e.strerror or e})") from None
    if "\0" in text:
        raise ConfigError(f"{path}: not a text file (holds NUL bytes)")
    try:  # one parse: the node tree (for line numbers) and the data built from it
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"{mark.line + 1}:" if mark else ""
        raise ConfigError(f"{path}:{line} not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: a task file is a mapping with scene, commands and expect")
    try:
        task = TaskFile.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{path}:{_line_of(node, loc) or 1}: {_field(loc)}: {msg}") from None
    names = SceneSpec.parse(task.scene).names
    for i, text in enumerate(task.expect):
        where = f"{path}:{_line_of(node, ('expect', i)) or 1}: expect[{i}]"
        try:
            pred = Predicate.parse(text)
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None
        skill_names()  # the skills' own predicates (beside, plugins') register with them
        if pred.name not in PREDICATES:
            raise ConfigError(
                f"{where}: unknown predicate {pred.name!r} (known: {', '.join(sorted(PREDICATES))})"
            )
        for a in pred.args:
            if a not in names and a not in REGIONS and a not in DIRECTIONS:
                raise ConfigError(f"{where}: {a!r} is not in the scene ({', '.join(names)})")
    return task


def run_task_file(
    path: str | Path, task: TaskFile, overrides: dict[str, Any], out: Path, listeners=(), open_session=None
) -> dict:
    """Run one validated task file in a fresh session (simulated unless ``open_session`` makes
    another, e.g. on the real arm); return its JSON result. Expectations are checked on the
    session's truth: ground truth in the simulator, the perceived scene on a real robot."""
    from vla_agent.agent.core.session import AgentConfig, Session

    o = task.options
    own = {"planner": o.planner, "policy": o.policy, "detector": o.detector}
    fields = {"scene": task.scene, "seed": task.seed, "randomize": o.randomize}
    fields |= {k: v for k, v in own.items() if v} | overrides  # the command line wins over the file
    cfg = AgentConfig(**fields)
    t0 = time.perf_counter()
    session = (open_session or Session)(cfg, list(listeners))
    timed_out = threading.Event()

    def watchdog() -> None:
        timed_out.set()
        session.executor.stop()

    timer = threading.Timer(o.time_limit_s, watchdog)
    runs: list[dict] = []
    try:
        session.reset()
        timer.start()
        for i, command in enumerate(task.commands):
            summary = session.run(command, out=out / f"{i + 1:02d}")
            runs.append({k: summary[k] for k in ("command", "status", "reason", "report") if k in summary})
            if summary.get("status") == "question":  # unattended: nobody to answer, the file fails
                runs[-1]["reason"] = f"asks: {summary['question']} (name the object in the file)"
            if timed_out.is_set():
                break
        holds = session.holds()
        truth = {e: session.evaluate(e) for e in task.expect}
        unsafe = session.backend.unsafe_actions
        unsafe_states = session.backend.unsafe_states
    finally:
        timer.cancel()
        session.close()
    failed = [e for e, ok in truth.items() if not ok]
    problems = [f"{r['command']!r} {r['reason']}" for r in runs if r["status"] == "question"]
    if timed_out.is_set():
        problems.append(f"time limit of {o.time_limit_s:g} s reached")
    problems += [f"expected {e}" for e in failed]
    if not task.expect:
        problems += [f"{r['command']!r}: {r['status']}" for r in runs if r["status"] != "success"]
    return {
        "file": str(path),
        "name": task.name or Path(path).stem,
        "passed": not problems,
        "problems": problems,
        "commands": runs,
        "expect": truth,
        "holds": holds,
        "truth": session.truth,
        "unsafe_actions_reached_backend": unsafe,
        "unsafe_states_reached": unsafe_states,
        "wall_s": round(time.perf_counter() - t0, 2),
        "report_dir": str(out),
    }


class TaskFileRunner:
    """Runs task files (one file an episode) in this process or on a Ray worker, which builds a
    session per file as the serial path does; an ``EpisodeWorker`` of ``vla_agent.scale``."""

    def __init__(
        self, paths: list[str], overrides: dict[str, Any], out: Path, listeners=(), open_session=None
    ):
        self.paths, self.overrides, self.out = paths, overrides, out
        self.listeners, self.open_session = listeners, open_session

    def close(self) -> None:
        pass

    def episode(self, i: int) -> dict:
        p = self.paths[i]
        task = load_task_file(p)
        try:
            return run_task_file(
                p, task, self.overrides, self.out / Path(p).stem, self.listeners, self.open_session
            )
        except Exception as e:  # noqa: BLE001 - a dead server, a bug: this file fails, the rest still run
            problem = str(e) if isinstance(e, VlaAgentError) else f"internal error: {type(e).__name__}: {e}"
            return {
                "file": str(p),
                "name": task.name or Path(p).stem,
                "passed": False,
                "problems": [problem.splitlines()[0] if problem else type(e).__name__],
                "commands": [],
                "expect": {},
                "holds": [],
            }


def run_task_files(
    paths: list[str | Path],
    overrides: dict[str, Any],
    out: Path,
    listeners=(),
    open_session=None,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    progress=None,
    resume: bool = False,
) -> dict:
    """Validate every file first (one malformed file: nothing runs), then run them: in order, or
    on Ray workers (``workers``, ``ray_address``: the simulator only; event printing off there).
    Each file's result goes to ``out/episodes.jsonl`` as it finishes; with ``resume`` the same
    command with the same files runs only the files that have no result there yet."""
    if len(paths) > MAX_FILES:
        raise ConfigError(f"{len(paths)} task files; a batch may hold {MAX_FILES}")
    for p in paths:
        load_task_file(p)
    paths = [str(p) for p in paths]
    parallel = workers > 1 or ray_address is not None
    if parallel and open_session is not None and getattr(open_session, "real", False):
        raise ConfigError("--workers runs task files in simulators; a real robot runs them one by one")
    from vla_agent.scale import run_batch

    contents = [hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16] for p in paths]
    config = {"files": paths, "contents": contents, "overrides": overrides}
    runner = partial(
        TaskFileRunner,
        paths,
        overrides,
        out,
        () if parallel else listeners,
        None if parallel else open_session,
    )
    results, _ = run_batch(
        runner,
        range(len(paths)),
        config,
        workers=workers,
        ray_address=ray_address,
        out=out,
        progress=progress,
        fresh=not resume,
    )
    results = [{k: v for k, v in r.items() if k != "episode"} for r in results]
    return {
        "passed": sum(r["passed"] for r in results),
        "failed": sum(not r["passed"] for r in results),
        "files": results,
    }
