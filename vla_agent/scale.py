"""Batches of independent episodes (benchmarks, data collection, task files): in this process,
or as Ray tasks across cores and machines, with nothing lost.

``run_episodes(make_worker, ids, ...)`` runs ``worker.episode(i)`` for every episode id and
returns the records in id order, whatever order they finish in:

- ``make_worker`` is a picklable callable with no arguments that builds what runs episodes (its
  own simulator, policy and planner); each Ray worker builds its own once. An episode's record
  depends only on its id (seeds are per episode), so the records are the same for any number of
  workers and any completion order.
- ``log`` (an ``EpisodeLog``: ``episodes.jsonl`` in the run folder) gets each record as soon as
  it is finished; records already there are not run again, so running the same command with the
  same folder resumes a run that was killed.
- ``workers > 1`` starts a local Ray cluster on 127.0.0.1 for the run (usage stats off);
  ``ray_address`` joins an existing one. A worker process that dies is restarted by Ray and its
  episode retried; one that still fails is queued again (``retries`` times) before the run fails.

Ray is optional (``pip install 'vla-agent[scale]'``); without ``workers``/``ray_address`` nothing
imports it."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from vla_agent.errors import ConfigError, VlaAgentError

log = logging.getLogger(__name__)


class EpisodeWorker(Protocol):
    def episode(self, i: int) -> dict: ...
    def close(self) -> None: ...


class EpisodeLog:
    """Per-episode records as JSON lines, with the run's configuration on the first line: a folder
    holding another configuration's episodes is refused rather than mixed in."""

    def __init__(self, path: Path, config: dict, fresh: bool = False):
        """``fresh``: start over even when the folder holds a log (its records are replaced)."""
        self.path, self.config = Path(path), config
        self.records: dict[int, dict] = {}
        self.resumed = 0  # episodes found finished when the run started
        if self.path.exists() and self.path.stat().st_size and not fresh:
            lines = self.path.read_text().splitlines()
            try:
                header = json.loads(lines[0])
            except ValueError:
                raise ConfigError(f"{self.path}: not an episode log (first line is not JSON)") from None
            if header.get("config") != config:
                raise ConfigError(
                    f"{self.path} holds episodes of another configuration; use another --out folder"
                )
            for line in lines[1:]:
                try:
                    r = json.loads(line)
                    self.records[int(r["episode"])] = r
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill: that episode runs again
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"config": config}) + "\n")

    def append(self, record: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.records[int(record["episode"])] = record


def run_episodes(
    make_worker: Callable[[], EpisodeWorker],
    ids: Iterable[int],
    *,
    workers: int = 1,
    ray_address: str | None = None,
    log_to: EpisodeLog | None = None,
    progress: Callable[[int, int], None] | None = None,
    retries: int = 2,
    store: Callable[[int, dict], dict] | None = None,
) -> list[dict]:
    """The records of episodes ``ids`` in that order (see the module's text). ``store(i, record)``
    may move what a JSON line cannot hold (arrays) somewhere safe before the record is logged."""
    ids = list(ids)
    done: dict[int, dict] = {i: r for i, r in (log_to.records if log_to else {}).items() if i in ids}
    if log_to is not None:
        log_to.resumed = len(done)
    todo = [i for i in ids if i not in done]

    def finished(i: int, record: dict) -> None:
        record = {**(store(i, record) if store else record), "episode": i}
        done[i] = record
        if log_to is not None:
            log_to.append(record)
        if progress:
            progress(len(done), len(ids))

    if progress and done:
        progress(len(done), len(ids))
    if todo and workers <= 1 and ray_address is None:
        worker = make_worker()
        try:
            for i in todo:
                finished(i, worker.episode(i))
        finally:
            worker.close()
    elif todo:
        # Ray reports lost workers on the driver's stdout; stdout is for results (--json)
        with contextlib.redirect_stdout(sys.stderr):
            _run_on_ray(make_worker, todo, workers, ray_address, finished, retries)
    return [done[i] for i in ids]


def run_batch(
    make_worker: Callable[[], EpisodeWorker],
    ids: Iterable[int],
    config: dict,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    out: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    store: Callable[[int, dict], dict] | None = None,
    fresh: bool = False,
) -> tuple[list[dict], dict]:
    """``run_episodes`` with the run folder's log (``out/episodes.jsonl``, for ``config``) when
    ``out`` is given. Returns the records and what a command's JSON says of the run: on how many
    workers (or which cluster) and how many episodes a previous run had already finished."""
    log = EpisodeLog(out / "episodes.jsonl", config, fresh=fresh) if out else None
    records = run_episodes(
        make_worker, ids, workers=workers, ray_address=ray_address, log_to=log, progress=progress, store=store
    )
    run = {
        "workers": workers if ray_address is None else f"cluster {ray_address}",
        "resumed_episodes": log.resumed if log else 0,
    }
    return records, run


def save_result(out: Path | None, result: dict) -> None:
    """A batch's figures beside its episodes (``out/result.json``) when it has a run folder."""
    if out:
        (out / "result.json").write_text(json.dumps(result, indent=2))


def ray_module():
    """Ray, imported with usage statistics off; a one-line error when it is not installed."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError("--workers and --ray-address need Ray: pip install 'vla-agent[scale]'") from None
    return ray


def init_ray(workers: int, address: str | None) -> tuple[Any, Callable[[], None]]:
    """Ray, connected, and what ends what this call started (nothing when it was connected)."""
    if not address:  # a cluster of this process's own listens on 127.0.0.1 only (single-machine mode)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = ray_module()
    if ray.is_initialized():
        return ray, lambda: None
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address:
        ray.init(address=address, **quiet)
        return ray, ray.shutdown
    node = _head_node(workers)
    if node is None:
        ray.init(num_cpus=workers, include_dashboard=False, **quiet)
        return ray, ray.shutdown

    def end() -> None:
        ray.shutdown()
        node.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)

    try:
        ray.init(address=node.address, **quiet)
    except BaseException:
        end()
        raise
    return ray, end


def _head_node(workers: int):
    """A one-node cluster for this run alone, on 127.0.0.1, started as ``ray.init`` starts one but
    without the three services no run of ours uses, which cost it 1-2 s of a 2-core machine: the
    autoscaler's monitor (a fixed cluster has nothing to scale; it also answers SIGTERM by reporting
    to a GCS already stopped, a second at every run's end), the log monitor (worker output is not
    sent to the driver) and the API server (job submission, the state API, usage statistics).
    Ray's node API (the one ``ray start`` and ``ray.cluster_utils`` call) is not public; where it
    has changed, or Ray was imported before single-machine mode was set, None (``ray.init`` then
    starts the cluster with all of them). ``--ray-address`` joins a cluster as its owner set it up."""
    try:
        from ray._private import ray_constants
        from ray._private.node import Node
        from ray._private.parameter import RayParams

        if ray_constants.ENABLE_RAY_CLUSTER:  # Ray imported before init_ray: it would not join 127.0.0.1
            return None

        class LeanHead(Node):
            def start_api_server(self, **_):  # on the critical path of the start: ~0.5 s here
                pass

        params = RayParams(
            num_cpus=workers,
            include_dashboard=False,
            no_monitor=True,
            include_log_monitor=False,
            node_ip_address="127.0.0.1",
        )
        return LeanHead(params, head=True, shutdown_at_exit=True, spawn_reaper=True)
    except (ImportError, TypeError, AttributeError) as e:
        log.debug("Ray's node API: %s; ray.init starts the cluster", e)
        return None


# One core per worker: numerical libraries' own thread pools would fight the other workers.
_ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


class _Actor:
    def __init__(self, make_worker):
        os.environ.update(_ONE_THREAD)  # read by torch when a worker imports it
        if "torch" in sys.modules:  # imported already (unpickling make_worker): set it directly
            sys.modules["torch"].set_num_threads(1)
        self.worker = make_worker()

    def episode(self, i: int) -> dict:
        return self.worker.episode(i)


def _run_on_ray(make_worker, todo: list[int], workers: int, address, finished, retries: int) -> None:
    ray, end = init_ray(workers, address)
    if workers <= 1:  # joining a cluster without --workers: one worker per CPU it has
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
    actor_cls = ray.remote(num_cpus=1, max_restarts=3, max_task_retries=2)(_Actor)
    actors = [actor_cls.remote(make_worker) for _ in range(min(workers, len(todo)))]
    queue = list(todo)
    tries = dict.fromkeys(todo, 0)
    pending: dict[Any, tuple[Any, int]] = {}

    def submit(actor) -> None:
        if queue:
            i = queue.pop(0)
            pending[actor.episode.remote(i)] = (actor, i)

    for a in actors:
        submit(a)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            actor, i = pending.pop(ready[0])
            try:
                record = ray.get(ready[0])
            except ray.exceptions.RayActorError as e:  # the worker died beyond Ray's own retries
                tries[i] += 1
                if tries[i] > retries:
                    raise VlaAgentError(f"episode {i} failed {tries[i]} times: {e}") from None
                log.warning("episode %d: worker lost (%s); running it again", i, str(e).splitlines()[0])
                queue.insert(0, i)
                actor = actor_cls.remote(make_worker)
                actors.append(actor)
                submit(actor)
                continue
            except ray.exceptions.RayTaskError as e:  # the episode itself raised: a bug, not a crash
                raise VlaAgentError(f"episode {i}: {str(e.cause) if e.cause else e}") from None
            finished(i, record)
            submit(actor)
    finally:
        for a in actors:
            ray.kill(a)
        end()  # a private cluster (or connection) for this run ends with it
