"""Executing a remote policy's chunks in time: synchronously (wait for each chunk, as openpi's
``ActionChunkBroker`` does) or asynchronously (ask for the next chunk while this one executes,
as LeRobot's async inference does), with the reply latency costing control ticks.

**Time.** One ``step`` is one control tick of ``dt`` seconds. On a real robot the clock is the
wall clock: a reply is used at the first tick after it arrives (requests run in threads, one
connection each). In a dry run the simulator waits for nobody, so latency is *emulated* when
``realtime`` is on: a reply that took ``L`` seconds is usable ``floor(L / dt)`` ticks after the
tick its observation was taken at, and until then the robot executes what it has or holds (an
idle tick). The requests themselves are real (the server's real latency, measured).

**Synchronous**: when the queue is empty, request and wait; the wait is idle ticks (robot
holding), then the first ``execute`` actions of the chunk run.

**Asynchronous**: a request goes out every ``execute`` ticks (every tick when the latency
leaves fewer usable actions per chunk), tagged with its observation's tick. A chunk that arrives
``d`` ticks after its observation was taken is a path from that moment: its first ``d`` steps
are past, and meanwhile the arm was commanded along the previous chunk (the commands are
recorded per tick). The chunk replaces the queue from its ``d``-th step, and the difference
between its first ``d`` steps and what was commanded in those ticks is made up: ``catch_up``
(half) of it over the next ``blend`` ticks, the rest by the following chunks, which measure it
again (all of it at once oscillates: with a new chunk every tick at 300 ms, mean jerk 42 against
23 m/s^3 on 12 pilot episodes). Why not ACT's temporal ensembling of every chunk, or only a
crossfade of old and new actions: a reactive policy's later actions anticipate what it expects
to happen ("down, stop, up" at a grasp), and skipping the past steps of each chunk without
accounting for them executes only the anticipation: the arm dithered above the block and did
not descend (1 of 4 picks at 100 ms in the first pilot). The gripper keeps its own ensembling
over every forecast for a tick (``GripperEnsemble``), which a binary command needs.

**Hybrid**: asynchronous, except at the two moments where a path planned from an observation
0.3 s old misses: while the fingers hold an object (a block released a centimetre off the one
below falls off it) and from the chunk that forecasts a grasp until the fingers close (the
fingers close a centimetre off the block's centre). There it is synchronous: each chunk planned
from the arm at rest and executed from its start (the chunks in flight when the fingers close
are dropped).
"""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vla_agent.sim.catalog import closed_on_block
from vla_agent.types import STATE

from .adapters.convention import Chunk
from .chunking import ChunkRunner

Request = Callable[[dict], Chunk]
MODES = ("sync", "async", "hybrid")


@dataclass
class _Flight:
    sent_tick: int
    at_rest: bool = False  # sent with nothing left to execute: the arm holds until it arrives
    latency_s: float = 0.0
    chunk: Chunk | None = None
    future: concurrent.futures.Future | None = None
    sent_wall: float = 0.0


class ChunkStream:
    """Turns chunks from ``request(obs)`` into one action per control tick."""

    def __init__(
        self,
        runner: ChunkRunner,
        mode: str = "sync",
        realtime: bool = False,
        dt: float = 0.1,
        blend: int = 2,
        simulated: bool = True,
        open_width: float = 0.08,
        connect: Callable[[], Request] | None = None,
        limits: tuple[float, float] = (0.04, 0.25),
        catch_up: float = 0.5,
    ):
        if mode not in MODES:
            raise ValueError(f"chunk execution must be one of {', '.join(MODES)}, not {mode!r}")
        self.runner, self.mode, self.realtime, self.dt, self.blend = runner, mode, realtime, dt, blend
        self.simulated, self.open_width = simulated, open_width
        self.limits = np.array([limits[0]] * 3 + [limits[1]] * 3)  # metres, radians per tick
        self.catch_up = catch_up  # the share of a late chunk's offset made up at once (the rest: next chunks)
        self._connect = connect  # wall clock: one client per request thread
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._local = threading.local()
        self.idle_ticks = 0
        self.stale_chunks = 0
        self.reset()

    def reset(self) -> None:
        self.runner.reset()
        self.queue: deque[np.ndarray] = deque()
        self.flights: deque[_Flight] = deque()
        self.tick = 0
        self.last_sent = -(10**9)
        self.last_install = 0
        self.delay_ticks = 0
        self.horizon = 0
        self._gripper_ctx = (0.0, False)
        self._path: deque[np.ndarray] = deque(maxlen=16)
        self._commanded: dict[int, np.ndarray] = {}  # the arm actions sent, by tick
        self._carrying = False
        self._grasp_ahead = False  # the last chunk forecast closing the fingers

    # ------------------------------------------------------------------ one tick
    def step(self, obs: dict, request: Request) -> np.ndarray:
        self._path.append(np.asarray(obs[STATE][:3], np.float64))
        action = self._sync(obs, request) if self.mode == "sync" else self._async(obs, request)
        self.tick += 1
        return action

    def _hold(self, obs: dict) -> np.ndarray:
        """An idle tick: stay where you are, the gripper as last commanded (or as measured)."""
        self.idle_ticks += 1
        g = self.runner.gripper.command
        if g is None:
            g = 1.0 if float(obs[STATE][6]) >= 0.85 * self.open_width else -1.0
        return np.array([0, 0, 0, 0, 0, 0, g], np.float64)

    def _sync(self, obs: dict, request: Request) -> np.ndarray:
        if not self.queue:
            t0 = time.perf_counter()
            c = request(obs)
            waited = self._ticks(time.perf_counter() - t0) if self.realtime else 0
            self.queue.extend(self._hold(obs) for _ in range(waited))  # the robot held while we waited
            self.queue.extend(
                self.runner.take(c.actions, c.p_open, c.done_prob, c.object_position, obs[STATE][:3])
            )
        return self.queue.popleft()

    def _ticks(self, seconds: float) -> int:
        return int(math.floor(seconds / self.dt + 1e-9))

    # ------------------------------------------------------------------ asynchronous
    def _async(self, obs: dict, request: Request) -> np.ndarray:
        tick = self.tick
        hybrid = self.mode == "hybrid"
        carrying = hybrid and closed_on_block(float(obs[STATE][6]))
        if carrying and not self._carrying:  # the fingers just closed on something: plan afresh
            self.interrupt()
        self._carrying = carrying
        while self.flights and self._arrived(self.flights[0], tick):
            self._install(self.flights.popleft(), tick)
        usable = max(1, self.horizon - self.delay_ticks) if self.horizon else self.runner.execute
        period = max(1, min(self.runner.execute, usable))
        synchronous = carrying or (hybrid and self._grasp_ahead)
        if synchronous:  # the next chunk only once this one is done, planned at rest
            if not self.queue and not self.flights:
                self._send(obs, request, tick, at_rest=True)
        elif tick - self.last_sent >= period or (not self.queue and not self.flights):
            self._send(obs, request, tick)
        while self.flights and self._arrived(self.flights[0], tick):  # a reply within the tick
            self._install(self.flights.popleft(), tick)
        if not self.queue:
            if not synchronous:  # frozen while a chunk planned at rest is out, as when synchronous
                self.runner.gripper.idle()
            action = self._hold(obs)
        else:
            arm = self.queue.popleft()
            descent, stalled = self._gripper_ctx
            action = np.concatenate([arm, [self.runner.gripper.next(float(arm[2]), descent, stalled)]])
        self._commanded[tick] = action[:6]
        self._commanded.pop(tick - 32, None)
        return action

    def _send(self, obs: dict, request: Request, tick: int, at_rest: bool = False) -> None:
        self.last_sent = tick
        if self.simulated:  # the simulator is paused while we wait: measure, then place in time
            t0 = time.perf_counter()
            chunk = request(obs)
            latency = time.perf_counter() - t0 if self.realtime else 0.0
            self.flights.append(_Flight(tick, at_rest, latency, chunk))
            return
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="chunk-request")
        flight = _Flight(tick, at_rest, sent_wall=time.monotonic())
        flight.future = self._pool.submit(self._threaded, obs)
        self.flights.append(flight)

    def _threaded(self, obs: dict) -> Chunk:
        if not hasattr(self._local, "request"):
            self._local.request = self._connect()
        return self._local.request(obs)

    def _arrived(self, flight: _Flight, tick: int) -> bool:
        if self.simulated:
            return tick >= flight.sent_tick + self._ticks(flight.latency_s)
        if not flight.future.done():
            return False
        flight.chunk = flight.future.result()  # a server error surfaces here, on the control thread
        flight.latency_s = time.monotonic() - flight.sent_wall
        return True

    def _install(self, flight: _Flight, tick: int) -> None:
        c = flight.chunk
        self.delay_ticks, self.horizon = tick - flight.sent_tick, len(c.actions)
        # The arm held while a chunk planned at rest was out: it starts where the chunk starts.
        offset = 0 if flight.at_rest else self.delay_ticks
        if offset >= len(c.actions):
            self.stale_chunks += 1
            return
        if flight.at_rest:
            new = np.array(c.actions[: self.runner.execute, :6], np.float64)
        else:
            new = np.array(c.actions[offset:, :6], np.float64)
            # Its first ``offset`` steps are past: what they planned against what was commanded then.
            planned = c.actions[:offset, :6].sum(axis=0)
            committed = sum((self._commanded.get(t, 0.0) for t in range(flight.sent_tick, tick)), np.zeros(6))
            k = min(self.blend, len(new))
            new[:k] += self.catch_up * (planned - committed) / k
        new = np.clip(new, -self.limits, self.limits)
        r = self.runner
        if c.object_position is not None:
            r.memory.update(c.object_position)
        r.done_prob = float(c.done_prob)
        r.done = r.done_filter.update(r.done_prob, max(1, tick - self.last_install))
        self.last_install = tick
        if r.done:
            new[:] = 0.0
        r.gripper.add(c.p_open[offset:])
        self._grasp_ahead = not self._carrying and bool(np.min(c.p_open[offset:]) < 0.5)
        self._gripper_ctx = self._descent_stalled()
        self.queue = deque(new)

    def _descent_stalled(self) -> tuple[float, bool]:
        path, r = list(self._path), self.runner
        descent = (path[-1 - r.execute][2] - path[-1][2]) / r.execute if len(path) > r.execute else 0.0
        # Stalled: no net motion over the window. Executing each chunk from its d-th action makes a
        # hovering arm dither by a few millimetres (the later actions anticipate the lift), which
        # the synchronous rule (every position within ``stall_motion``) would take for motion.
        window = path[-(r.stall_steps + 1) :]
        stalled = len(window) == r.stall_steps + 1 and np.linalg.norm(window[0] - window[-1]) < r.stall_motion
        return descent, stalled

    def interrupt(self) -> None:
        """Asynchronous: drop the queue and the chunks in flight (planned from observations before
        a safety event); the next tick asks afresh. Synchronous execution waits for each chunk
        anyway and is left as it is."""
        if self.mode != "sync":
            self.queue.clear()
            self.flights.clear()
            self.last_sent = -(10**9)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
