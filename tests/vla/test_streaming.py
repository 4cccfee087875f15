"""Chunk execution in time: idle ticks while waiting, the asynchronous join of a late chunk,
and the wall-clock mode a real robot uses (requests in threads, the control loop never blocks)."""

import time

import numpy as np

from vla_agent.types import STATE
from vla_agent.vla.adapters.convention import Chunk
from vla_agent.vla.chunking import ChunkRunner
from vla_agent.vla.streaming import ChunkStream


def _chunk(dx: float, n: int = 4) -> Chunk:
    actions = np.zeros((n, 7))
    actions[:, 0], actions[:, 6] = dx, 1.0
    return Chunk(actions, np.ones(n))


def _obs(x: float = 0.0) -> dict:
    return {STATE: np.array([x, 0, 0.2, 0, 0, 0, 0.08])}


def _slow(seconds: float, dx: float = 0.01):
    def request(obs):
        time.sleep(seconds)
        return _chunk(dx)

    return request


def test_sync_waits_are_idle_ticks_only_when_realtime():
    for realtime, idle in ((False, 0), (True, 1)):
        stream = ChunkStream(ChunkRunner(2), "sync", realtime=realtime)
        actions = [stream.step(_obs(), _slow(0.12)) for _ in range(6)]
        assert stream.idle_ticks == 2 * idle  # one per chunk of 2: 0.12 s is one whole tick
        moving = [a for a in actions if a[0] != 0]
        assert len(moving) == 6 - 2 * idle and all(a[6] == 1.0 for a in actions)


def test_async_joins_a_late_chunk_where_the_arm_really_is():
    stream = ChunkStream(ChunkRunner(2), "async", realtime=True, blend=1)
    first = stream.step(_obs(0.0), _slow(0.12))  # nothing yet: hold while the first chunk is out
    assert first[0] == 0 and stream.idle_ticks == 1
    second = stream.step(_obs(0.0), _slow(0.12))  # it arrives one tick late: its step 0 is past
    # the chunk expected the arm 1 cm along already (its step 0); it has not moved: half of that
    # is made up now (catch_up), the rest by the next chunks
    assert np.isclose(second[0], 0.015)
    third = stream.step(_obs(0.02), _slow(0.12))
    assert np.isclose(third[0], 0.01)  # on the chunk's path now
    assert stream.idle_ticks == 1


def test_wall_clock_mode_never_blocks_the_control_loop():
    def connect():
        return _slow(0.12, dx=0.01)

    stream = ChunkStream(ChunkRunner(2), "async", simulated=False, connect=connect)
    started, actions = time.monotonic(), []
    for _ in range(12):
        t0 = time.monotonic()
        actions.append(stream.step(_obs(), None))
        assert time.monotonic() - t0 < 0.05  # a tick never waits for the server
        time.sleep(0.1)
    stream.close()
    assert actions[0][0] == 0  # the first ticks hold
    assert sum(a[0] != 0 for a in actions) >= 6  # then chunks arrive and are executed
    assert time.monotonic() - started < 3


def test_a_safety_event_voids_the_chunks_planned_before_it():
    calls = []

    def request(obs):
        calls.append(float(obs[STATE][0]))
        return _chunk(0.01)

    stream = ChunkStream(ChunkRunner(2), "async")
    stream.step(_obs(0.0), request)
    stream.step(_obs(0.01), request)
    assert stream.queue and len(calls) == 1
    stream.interrupt()  # the shield held the arm: what was planned before is void
    assert not stream.queue and not stream.flights
    stream.step(_obs(0.02), request)
    assert calls == [0.0, 0.02]  # asked afresh, from the observation after the event
    sync = ChunkStream(ChunkRunner(2), "sync")
    sync.step(_obs(0.0), request)
    sync.interrupt()
    assert len(sync.queue) == 1  # synchronous execution waits for each chunk anyway: unchanged


def test_hybrid_waits_for_chunks_planned_at_rest_only_while_the_fingers_hold_something():
    held = {STATE: np.array([0, 0, 0.2, 0, 0, 0, 0.04])}  # closed on a block
    stream = ChunkStream(ChunkRunner(2), "hybrid", realtime=True)
    actions = [stream.step(held, _slow(0.12)) for _ in range(6)]
    # as sync: hold while the chunk is out, then its first actions from its start (no catch-up)
    assert [round(a[0], 3) for a in actions] == [0, 0.01, 0.01, 0, 0.01, 0.01]
    assert stream.idle_ticks == 2
    instant = ChunkStream(ChunkRunner(2), "hybrid")  # a reply within the tick: no tick is lost
    assert all(instant.step(held, _slow(0.0))[0] > 0 for _ in range(6)) and instant.idle_ticks == 0

    hybrid = ChunkStream(ChunkRunner(2), "hybrid", realtime=True, blend=1)
    for _ in range(3):  # free motion: asynchronous, chunks in flight while the arm moves
        moving = hybrid.step(_obs(), _slow(0.12))
    assert moving[0] > 0 and hybrid.flights
    grasped = hybrid.step(held, _slow(0.12))  # the fingers closed: what was planned before is void
    assert grasped[0] == 0 and all(f.at_rest for f in hybrid.flights)


def test_hybrid_goes_synchronous_from_the_chunk_that_forecasts_a_grasp():
    stream = ChunkStream(ChunkRunner(2), "hybrid", realtime=True, blend=1)
    left = []  # actions the arm still had queued when each request went out

    def grasp_ahead(obs):
        left.append(len(stream.queue))
        time.sleep(0.12)
        c = _chunk(0.01)
        c.p_open[2:] = 0.1  # "close the fingers in two steps"
        return c

    for _ in range(3):  # free motion: asynchronous, a request while the arm still has actions
        stream.step(_obs(), _slow(0.12))
    idle = stream.idle_ticks
    for _ in range(9):
        stream.step(_obs(), grasp_ahead)
    # the first such chunk went out in free motion; from its arrival on, a chunk goes out only
    # when the arm has nothing left, and the arm holds while it is out
    assert len(left) >= 3 and left[0] > 0 and left[1:] == [0] * (len(left) - 1)
    assert stream.idle_ticks - idle == len(left) - 1
