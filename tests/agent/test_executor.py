"""The executor end to end in the sim: success, retry then replan, e-stop, traces, perception."""

import contextlib
import threading

import numpy as np
import pytest

from vla_agent.agent.core.session import AgentConfig, Session
from vla_agent.agent.core.trace import read_trace, summarize
from vla_agent.types import IMAGE, SEGMENTATION, STATE


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
    skills = None

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


class Recording(Frozen):
    """Records the state each subgoal starts from, then says it is done."""

    def __init__(self):
        self.starts = []

    def reset(self, subgoal):
        self.done = False

    def act(self, obs):
        self.starts.append(np.asarray(obs[STATE], float))
        self.done = True
        return super().act(obs)


def test_pick_and_push_start_from_home_with_an_open_hand(session):
    session.reset(seed=5)
    home = session.executor.home_pose.copy()
    low_and_away = np.array([0.03, 0.03, -0.04, 0, 0, 0.2, -1.0])
    for _ in range(6):  # where a push ends: low, turned, fingers closed
        session.backend.apply(low_and_away)
    state = np.asarray(session.backend.observe()[STATE], float)
    assert np.linalg.norm(state[:3] - home[:3]) > 0.1 and state[6] < 0.06
    unsafe = session.backend.unsafe_actions
    policy = Recording()
    with policy_swapped(session, policy):
        session.executor.run("push the red block to the left")
    first = policy.starts[0]
    assert np.linalg.norm(first[:3] - home[:3]) < 0.015
    assert abs(first[5] - home[5]) < 0.06 and first[6] > 0.06
    homes = session.events.of("home")
    assert homes and homes[0].data["steps"] > 5
    assert session.backend.unsafe_actions == unsafe


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
    first = backend.applied  # earlier tests share the backend

    def press():
        while backend.applied < first + 15:
            threading.Event().wait(0.001)
        session.executor.stop()
        state["at_stop"] = backend.applied  # counted after stop() returned: the loop may be mid-tick

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


def test_a_hidden_block_is_not_carried_off_by_a_hand_holding_another(session):
    """Only the block the fingers closed on follows the hand; a block the hand hides while passing
    low over it (the camera sees neither its colour nor its top) stays where it was seen."""
    session.reset(seed=6)
    assert session.executor.run("pick up the blue block").status == "success"
    env, perception = session.env, session.executor.perception
    red = env.names.index("red block")
    truth = env.world_state().get("red block").position.copy()

    def seen(obs):  # the red block occluded: its pixels painted table-grey
        img = obs[IMAGE].copy()
        img[obs[SEGMENTATION] == red] = (128, 128, 128)
        return {**{k: v for k, v in obs.items() if k != SEGMENTATION}, IMAGE: img}

    def move_to(goal):
        for _ in range(30):
            state = np.asarray(session.backend.observe()[STATE], float)
            d = np.clip(np.asarray(goal) - state[:3], -0.03, 0.03)
            session.backend.apply(np.r_[d, 0, 0, 0, -1.0])
            world = perception.world(seen(session.backend.observe()))
            if np.linalg.norm(np.asarray(goal) - state[:3]) < 0.01:
                return world
        return world

    move_to([truth[0], truth[1], 0.14])
    low = move_to([truth[0], truth[1], truth[2] + 0.055])  # the held block just clears the red one
    assert perception.grasped == "blue block"
    assert np.linalg.norm(low.objects["red block"].position - truth) < 0.015
    away = move_to([0.5, 0.0, 0.2])
    assert np.linalg.norm(away.objects["red block"].position - truth) < 0.015
    assert np.linalg.norm(away.objects["blue block"].position[:2] - [0.5, 0.0]) < 0.03


def test_placed_goals_are_the_last_places_the_agent_judged_done():
    from vla_agent.agent.core.session import placed_goals
    from vla_agent.skills.library import get_skill
    from vla_agent.types import Status, StepOutcome

    def out(skill, status=Status.DONE, **args):
        return StepOutcome(get_skill(skill).subgoal(args), status)

    outcomes = [
        out("pick", obj="red block"),
        out("place", obj="red block", target="blue bowl"),
        out("pick", obj="green block"),
        out("place", obj="green block", target="left", status=Status.FAILED),  # not claimed
        out("place", obj="green block", target="pink plate"),
        out("pick", obj="yellow block"),
        out("place", obj="yellow block", target="right"),
        out("push", obj="yellow block", direction="left"),  # took it from there
    ]
    assert placed_goals(outcomes) == ["in(red block, blue bowl)", "on(green block, pink plate)"]
    assert placed_goals(outcomes[:1]) == []
