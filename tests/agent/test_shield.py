"""Safety shield properties: random and adversarial actions never leave the envelope."""

import time

import numpy as np
import pytest

from vla_agent.agent.safety.shield import TIMESTAMP, KeepOut, SafetyShield, ShieldConfig
from vla_agent.types import STATE


def obs_at(pos, rpy=(0.0, 0.0, 0.0), width=0.08, **extra):
    return {STATE: np.array([*pos, *rpy, width], np.float32), **extra}


@pytest.fixture(scope="module")
def shield():
    s = SafetyShield()
    yield s
    s.close()


def test_random_and_adversarial_actions_stay_in_the_envelope(env, shield):
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=3)
    shield.reset(obs)
    for k in range(250):
        scale = rng.choice([0.01, 0.1, 10.0, 1e6])
        a = rng.normal(0, scale, 7)
        if k % 11 == 0:
            a[rng.integers(7)] = rng.choice([np.nan, np.inf, -np.inf])
        if k % 13 == 0:
            a = np.array([0, 0, -0.04, 0, 0, 0, 1.0])  # dive into the table
        r = shield.filter(a, obs)
        assert np.all(np.isfinite(r.action))
        now, commanded = np.abs(obs[STATE][3:5]), np.abs(obs[STATE][3:5] + r.action[3:5])
        assert r.held or np.all((commanded <= shield.config.max_tilt + 1e-6) | (commanded < now)), (
            now,
            commanded,
        )
        assert shield.envelope_violations(r.action, obs[STATE]) == []
        obs, *_ = env.step(r.action)
        pos = obs[STATE][:3]
        # the arm tracks commands within ~1.5 cm (position control, tilted poses are the worst)
        lo = np.array(shield.config.workspace_min) - 0.015
        hi = np.array(shield.config.workspace_max) + 0.015
        assert np.all(pos >= lo) and np.all(pos <= hi), pos


def test_bad_data_holds_with_the_gripper_unchanged(shield):
    o = obs_at((0.5, 0.0, 0.2), width=0.04)
    shield.reset(o)  # closed on a block
    for bad in ([np.nan] * 7, [0.0] * 6, "left", None):
        r = shield.filter(bad, o)
        assert r.held and np.allclose(r.action, [0, 0, 0, 0, 0, 0, -1.0])
    r = shield.filter(np.zeros(7), {STATE: np.array([np.nan] * 7)})
    assert r.held


def test_limits_and_workspace(shield):
    o = obs_at((0.5, 0.0, 0.2))
    shield.reset(o)
    r = shield.filter([0.5, 0.0, 0.0, 0.0, 0.0, 2.0, 5.0], o)
    assert (
        np.abs(r.action[:3]).max() <= 0.04 + 1e-9 and abs(r.action[5]) <= 0.25 + 1e-9 and r.action[6] == 1.0
    )
    assert len(r.violations) == 3
    edge = obs_at((0.81, 0.0, 0.02))
    shield.reset(edge)  # a new episode: the jump is not the arm straying
    r = shield.filter([0.04, 0.0, -0.04, 0, 0, 0, 1.0], edge)
    target = edge[STATE][:3] + r.action[:3]
    assert target[0] <= 0.82 + 1e-6 and target[2] >= 0.012 - 1e-6 and "workspace" in " ".join(r.violations)


def test_keep_out_zone_and_watchdog():
    s = SafetyShield(
        ShieldConfig(keep_out=(KeepOut(name="fixture", min=(0.45, -0.05, 0.0), max=(0.55, 0.05, 0.3)),))
    )
    o = obs_at((0.40, 0.0, 0.1), **{TIMESTAMP: time.monotonic()})
    s.reset(o)
    s.reset(obs_at((0.43, 0.0, 0.1)))
    r = s.filter([0.04, 0.0, 0.0, 0, 0, 0, 1.0], obs_at((0.43, 0.0, 0.1)))
    assert np.allclose(r.action[:3], 0) and "fixture" in r.violations[0]
    stale = obs_at((0.4, 0.0, 0.1), **{TIMESTAMP: time.monotonic() - 5.0})
    assert s.filter(np.zeros(7), stale).held
    assert s.filter(np.zeros(7), o, issued_at=time.monotonic() - 5.0).held
    s.close()


def test_unreachable_target_is_held(shield):
    o = obs_at((0.5, 0.0, 0.3))
    shield.reset(o)
    far = obs_at((0.82, 0.39, 0.44), rpy=(0.3, -0.3, 2.9))
    shield.reset(far)
    r = shield.filter([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], far)
    assert (
        r.held
        or shield.twin.check(np.array([0.82, 0.39, 0.44]), np.array([0.3, -0.3, 2.9]), 0.01, 0.002).error
        == ""
    )
