import numpy as np

from vla_agent.vla.chunking import DoneFilter, GripperEnsemble, StartMemory
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
