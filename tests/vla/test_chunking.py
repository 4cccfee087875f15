import numpy as np

from vla_agent.vla.chunking import ChunkRunner, DoneFilter, GripperEnsemble, StartMemory
from vla_agent.vla.train import lead_gripper_open


def test_ensemble_breaks_the_hover_fixed_point():
    # A policy at the release point keeps forecasting "open in 3 steps": executed position by
    # position it would never open; the ensemble honours the forecast made 3 steps earlier.
    g = GripperEnsemble()
    hover = np.array([0.1, 0.2, 0.35, 0.6])
    commands = [g.decide(hover, 1)[0] for _ in range(8)]
    assert commands[:3] == [-1.0] * 3 and commands[3:8] == [1.0] * 5  # opens, then holds (dwell)


def test_ensemble_follows_a_confident_chunk_and_resets():
    g = GripperEnsemble()
    assert list(g.decide(np.array([0.9, 0.9, 0.1, 0.1]), 2)) == [1.0, 1.0]
    assert list(g.decide(np.array([0.1, 0.1, 0.1, 0.1]), 2)) == [-1.0, -1.0]  # closes when asked
    g.reset()
    assert list(g.decide(np.array([0.2, 0.2, 0.2, 0.2]), 1)) == [-1.0]


def test_release_waits_until_the_arm_stops_descending():
    """A chunk asking to open while still going down 2 cm per step keeps the fingers closed until
    the descent slows, and ``max_defer`` bounds the wait."""
    g = GripperEnsemble(release_descent=0.01, max_defer=4)
    g.decide(np.zeros(4), 1)  # closed (holding a block)
    opening = np.full(4, 0.9)
    assert g.decide(opening, 1, dz=np.array([-0.02]))[0] == -1.0  # commanded descent
    assert g.decide(opening, 1, dz=np.array([-0.002]), descent=0.02)[0] == -1.0  # measured descent
    assert g.decide(opening, 1, dz=np.array([-0.002]), descent=0.001)[0] == 1.0  # at rest: opens
    g = GripperEnsemble(release_descent=0.01, max_defer=2)
    g.decide(np.zeros(4), 1)
    falling = [g.decide(opening, 1, dz=np.array([-0.03]))[0] for _ in range(3)]
    assert falling == [-1.0, -1.0, 1.0]  # deferred twice, then opens anyway


def test_stalled_arm_grasps_at_a_hesitant_probability_but_never_releases():
    """At the grasp pose a policy hesitating at P(open) = 0.6 would hover for the whole budget:
    a stalled arm closes below ``stall_open``; a moving arm does not, and a stalled arm holding
    a block keeps it."""
    hesitant = np.full(4, 0.6)
    g = GripperEnsemble(stall_open=0.75)
    assert g.decide(np.ones(4), 1)[0] == 1.0
    assert g.decide(hesitant, 1)[0] == 1.0  # moving: 0.6 > 0.5 stays open
    assert g.decide(hesitant, 1, stalled=True)[0] == -1.0  # stalled: 0.6 < 0.75 closes
    g = GripperEnsemble(stall_open=0.75)
    g.decide(np.zeros(4), 1)  # closed, holding
    assert g.decide(np.full(4, 0.4), 1, stalled=True)[0] == -1.0  # no early release when stalled


def test_runner_measures_descent_and_stall_from_the_tool_position():
    hesitant = np.full(4, 0.6)
    chunk = np.zeros((4, 7))
    chunk[:, 6] = 1.0
    r = ChunkRunner(execute=2, stall_steps=6, stall_motion=0.005)
    r.reset()
    p = np.array([0.5, 0.0, 0.2])
    for _ in range(3):  # moving 3 cm per chunk: no stall, the fingers stay open at P(open) = 0.6
        assert list(r.take(chunk, hesitant, 0.0, tool_position=p)[:, 6]) == [1.0, 1.0]
        p = p - [0.0, 0.0, 0.03]
    grip = [r.take(chunk, hesitant, 0.0, tool_position=p + [0.001 * i, 0, 0])[0, 6] for i in range(4)]
    assert grip[:3] == [1.0, 1.0, 1.0] and grip[3] == -1.0  # closes once 6 steps passed at rest
    r = ChunkRunner(execute=2)
    r.reset()
    grip = [r.take(chunk, hesitant, 0.0)[0, 6] for _ in range(6)]
    assert grip == [1.0] * 6  # without proprioception there is no stall rule


def test_done_filter_debounces_and_waits():
    f = DoneFilter(threshold=0.5, min_steps=4, consecutive=2)
    assert [f.update(p, 2) for p in (0.9, 0.9, 0.1, 0.9, 0.9)] == [False, False, False, False, True]
    f.reset()
    assert not f.update(0.9, 2) and not f.update(0.9, 2)  # too early: 2 steps < min_steps


def test_open_lead_moves_releases_earlier_within_episodes():
    grip = np.array([-1, -1, -1, -1, 1, 1, -1, 1], float)
    actions = np.zeros((8, 7))
    actions[:, 6] = grip
    episode = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    out = lead_gripper_open(actions, episode, 2)[:, 6]
    assert list(out) == [-1, -1, 1, 1, 1, 1, 1, 1]  # episode 1 (2 frames) cannot reach back into episode 0
    assert np.array_equal(lead_gripper_open(actions, episode, 0), actions)


def test_open_lead_starts_only_near_the_release_point():
    """A tool still descending (4 and 2 cm above where it opens) keeps the fingers closed."""
    actions = np.zeros((6, 7))
    actions[:, 6] = [-1, -1, -1, -1, 1, 1]
    tool = np.zeros((6, 3))
    tool[:, 2] = [0.10, 0.06, 0.04, 0.02, 0.0, 0.0]
    out = lead_gripper_open(actions, np.zeros(6, int), 3, tool, radius=0.025)[:, 6]
    assert list(out) == [-1, -1, -1, 1, 1, 1]


def test_start_memory_averages_the_first_estimates_then_freezes():
    m = StartMemory(frames=3)
    for x in (0.50, np.nan, 0.52, 0.54):  # a non-finite estimate is skipped, not averaged in
        assert m.start is None
        m.update(np.array([x, 0.0, 0.02]))
    np.testing.assert_allclose(m.start, [0.52, 0.0, 0.02])
    m.update(np.array([0.9, 0.9, 0.9]))  # the object moves: the memory does not
    np.testing.assert_allclose(m.start, [0.52, 0.0, 0.02])
    m.reset()
    assert m.start is None
