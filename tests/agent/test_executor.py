"""The executor end to end in the sim: success, retry then replan, e-stop, traces, perception."""

import contextlib
import threading

import numpy as np
import pytest

from vla_agent.agent.runner import AgentConfig, Session
from vla_agent.agent.trace import read_trace, summarize
from vla_agent.types import SEGMENTATION


@pytest.fixture(scope="module")
def session():
    s = Session(
        AgentConfig(policy="expert", video=False, scene="red block, blue block, green block, purple bowl")
    )
    yield s
    s.close()


def test_command_ends_where_it_said_with_a_trace(session, tmp_path):
    session.reset(seed=1)
    summary = session.run(
        "put the red block in the bowl, then stack the blue block on the green one", out=tmp_path
    )
    assert summary["status"] == "success"
    assert (
        "in(red block, purple bowl)" in summary["holds"] and "on(blue block, green block)" in summary["holds"]
    )
    assert summary["unsafe_actions_reached_backend"] == 0
    records = list(read_trace(tmp_path / "trace.jsonl"))
    assert records[0]["type"] == "header" and records[0]["command"].startswith("put the red")
    steps = [r for r in records if r["type"] == "step"]
    assert len(steps) == summary["steps"] and {"action_policy", "action_sent", "verdict", "timing_ms"} <= set(
        steps[0]
    )
    s = summarize(tmp_path / "trace.jsonl")
    assert [x["status"] for x in s["subgoals"]] == ["done"] * 4 and s["final"]["status"] == "success"


@contextlib.contextmanager
def policy_swapped(session, policy):
    """Run the session's executor with ``policy`` instead of the expert, then put it back."""
    expert, session.executor.policy = session.executor.policy, policy
    try:
        yield
    finally:
        session.executor.policy = expert


class Frozen:
    """A policy that never moves (a broken VLA): the executor must retry, then replan, then stop."""

    done = False

    def reset(self, subgoal):
        pass

    def act(self, obs):
        return np.array([[0, 0, 0, 0, 0, 0, 1.0]])


def test_failing_policy_triggers_retry_then_replan(session):
    session.reset(seed=2)
    with policy_swapped(session, Frozen()):
        result = session.executor.run("put the red block in the bowl")
    kinds = [e.kind for e in session.events.history]
    assert "retry" in kinds and "replan" in kinds
    assert kinds.index("retry") < kinds.index("replan")
    assert result.status == "failed" and "no progress" in result.reason


class Exploding(Frozen):
    def act(self, obs):
        raise ConnectionError("policy server at ws://127.0.0.1:9 is unreachable")


def test_dead_policy_holds_and_fails_cleanly(session):
    session.reset(seed=2)
    with policy_swapped(session, Exploding()):
        result = session.executor.run("pick up the red block")
    assert result.status == "failed" and "unreachable" in result.reason
    assert session.events.of("error")


def test_estop_holds_within_one_tick(session):
    session.reset(seed=3)
    backend = session.backend
    state = {}

    def press():
        while backend.applied < 15:
            threading.Event().wait(0.001)
        state["at_stop"] = backend.applied
        session.executor.stop()

    t = threading.Thread(target=press)
    t.start()
    result = session.executor.run("put the red block in the bowl")
    t.join()
    assert result.status == "stopped"
    assert backend.applied - state["at_stop"] <= 1
    assert backend.stopped and session.events.of("stopped")


def test_unsafe_and_unplannable_commands_never_move(session):
    session.reset(seed=4)
    before = session.backend.applied
    for command in (
        "throw the red block at the wall",
        "put the banana in the bowl",
        "put the red block in the green bowl",
    ):
        result = session.executor.run(command)
        assert result.status == "refused", command
    assert session.backend.applied == before


def test_perception_matches_ground_truth_without_simulator_state(session):
    session.reset(seed=5)
    obs = session.backend.observe()
    world = session.executor.perception.world({k: v for k, v in obs.items() if k != SEGMENTATION})
    truth = session.env.world_state()
    for name, o in truth.objects.items():
        assert np.linalg.norm(world.objects[name].position[:2] - o.position[:2]) < 0.015, name
