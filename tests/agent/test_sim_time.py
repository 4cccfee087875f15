"""Time belongs to the backend: a dry run is stamped with simulated time, so a loaded machine
neither trips the shield's watchdog nor changes what the robot does."""

import multiprocessing as mp
import time

import numpy as np

from vla_agent.agent.core.session import AgentConfig, Session
from vla_agent.agent.core.trace import read_trace, sent_actions
from vla_agent.agent.safety.shield import TIMESTAMP

COMMAND = "put the red block in the bowl, then stack the blue block on the green one"


def _hog(stop):
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _run(tmp_path, name):
    s = Session(AgentConfig(policy="expert", video=False))
    try:
        s.reset(seed=1)
        summary = s.run(COMMAND, out=tmp_path / name)
    finally:
        s.close()
    trace = tmp_path / name / "trace.jsonl"
    stale = [
        v
        for r in read_trace(trace)
        if r.get("type") == "step"
        for v in r.get("violations", [])
        if "stale" in v
    ]
    return summary, sent_actions(trace), stale


def test_a_seeded_dry_run_is_the_same_under_load(tmp_path):
    idle, idle_actions, idle_stale = _run(tmp_path, "idle")
    stop = mp.Event()
    hogs = [mp.Process(target=_hog, args=(stop,), daemon=True) for _ in range(4)]
    for h in hogs:
        h.start()
    try:
        time.sleep(0.2)
        loaded, loaded_actions, loaded_stale = _run(tmp_path, "loaded")
    finally:
        stop.set()
        for h in hogs:
            h.join(5)
    assert idle["status"] == loaded["status"] == "success"
    assert idle_stale == loaded_stale == []
    assert len(idle_actions) == len(loaded_actions)
    assert np.allclose(np.array(idle_actions), np.array(loaded_actions))


def test_sim_observations_carry_simulated_time():
    s = Session(AgentConfig(policy="expert", video=False))
    try:
        s.reset(seed=0)
        assert s.backend.observe()[TIMESTAMP] == 0.0
        s.backend.apply(np.array([0, 0, 0, 0, 0, 0, 1.0]))
        assert s.backend.observe()[TIMESTAMP] == s.backend.clock() == 0.1  # one 10 Hz step
    finally:
        s.close()
