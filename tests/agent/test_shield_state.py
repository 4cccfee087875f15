"""The envelope holds on the robot's measured state, not only on the commands."""

import numpy as np
import pytest

from vla_agent.agent.backends.sim import SimBackend
from vla_agent.agent.bench.shield import ShieldBenchConfig, adversaries, run_shield_bench
from vla_agent.agent.safety.shield import SafetyShield, ShieldConfig, state_excursion
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.skills.library import get_skill
from vla_agent.types import JOINTS, STATE
from vla_agent.vla.client import RemotePolicy
from vla_agent.vla.server import BackgroundServer, ServeConfig


def obs_at(pos, rpy=(0.0, 0.0, 0.0), width=0.08):
    return {STATE: np.array([*pos, *rpy, width], np.float32)}


class WristYawService:
    """A stand-in policy server: every chunk only turns the wrist, 0.25 rad per step (inside every
    per-step limit). Through the simulator's IK this drags the tool ~4 cm sideways per step."""

    metadata = {"action_horizon": 4, "action_dim": 7, "server": "wrist-yaw stand-in"}

    def infer(self, obs: dict) -> dict:
        return {"actions": np.tile([0.0, 0.0, 0.0, 0.0, 0.0, 0.25, 1.0], (4, 1))}


@pytest.fixture(scope="module")
def small_env():
    env = TabletopEnv(EnvConfig(image_size=32, wrist_size=16, segmentation=False))
    yield env
    env.close()


def _drive(backend: SimBackend, policy, shield: SafetyShield | None, steps: int):
    obs = backend.reset(seed=0, scene="red block, blue bowl")
    policy.reset(get_skill("pick").subgoal({"obj": "red block"}))
    if shield is not None:
        shield.reset(obs)
    positions, reasons = [], set()
    for _ in range(steps):
        action = policy.act(obs)[0]
        sent = action
        if shield is not None:
            result = shield.filter(action, obs, issued_at=backend.clock(), now=backend.clock())
            sent = result.action
            reasons |= {v.split(" (")[0] for v in result.violations}
        backend.apply(sent)  # the backend's own audit of the command runs here
        obs = backend.observe()
        positions.append(np.asarray(obs[STATE][:3], float))
    return positions, reasons


def test_wrist_yaw_policy_over_the_websocket_is_held_at_the_envelope(small_env):
    cfg = ShieldConfig()
    lo, hi = np.array(cfg.workspace_min), np.array(cfg.workspace_max)
    with BackgroundServer(ServeConfig(port=0), service=WristYawService()) as srv:
        policy = RemotePolicy(f"ws://127.0.0.1:{srv.port}")
        # Without the state checks (every command still within the per-step limits and passed by
        # the backend's command audit) the tool leaves the box: the audit counts those states.
        unshielded = SimBackend(small_env, audit=SafetyShield(cfg))
        path, _ = _drive(unshielded, policy, None, 40)
        assert unshielded.unsafe_actions == 0
        assert unshielded.unsafe_states > 0
        assert min(p[0] for p in path) < lo[0] - 0.05  # behind the box, toward the base
        # With the shield the wrist turn is held: no unsafe state, the tool stays in the box.
        shield = SafetyShield(cfg)
        shielded = SimBackend(small_env, audit=SafetyShield(cfg))
        path, reasons = _drive(shielded, policy, shield, 40)
        shield.close()
        policy.client.close()
    assert shielded.unsafe_states == 0 and shielded.unsafe_actions == 0
    tol = cfg.state_tolerance
    assert all(np.all(p >= lo - tol) and np.all(p <= hi + tol) for p in path)
    assert np.ptp(np.array(path), axis=0).max() < 0.01  # held where it was
    assert reasons == {"target out of reach"}, reasons  # the twin saw the drift coming (not a stale frame)


def test_a_measured_state_outside_only_moves_back():
    shield = SafetyShield(ShieldConfig(ik_check=False))
    outside = obs_at((0.90, 0.0, 0.2), rpy=(0.5, 0.0, 0.0))
    shield.reset(outside)
    r = shield.filter([0.04, 0.0, 0.0, 0.1, 0.0, 0.25, 1.0], outside)  # further out, turning
    assert r.state_event and "outside the envelope" in r.violations[-1]
    assert r.action[0] < 0 and r.action[1] == 0  # straight back toward the box
    assert r.action[2] == pytest.approx(0.01)  # a tipped hand lifts off what it is pressed on
    assert r.action[3] < 0 and r.action[5] == 0  # tilting back, no wrist turn
    assert shield.envelope_violations(r.action, outside[STATE]) == []


def test_the_box_never_stretches_to_include_the_arm():
    shield = SafetyShield()
    outside = np.array([0.90, 0.0, 0.2, 0, 0, 0, 0.08])
    assert shield.envelope_violations([0.01, 0, 0, 0, 0, 0, 1.0], outside) == ["workspace box"]
    assert shield.envelope_violations([0.0, 0.02, 0, 0, 0, 0, 1.0], outside) == []  # not further out
    assert shield.envelope_violations([-0.02, 0, 0, 0, 0, 0, 1.0], outside) == []
    inside = np.array([0.81, 0.0, 0.2, 0, 0, 0, 0.08])
    assert shield.envelope_violations([0.02, 0, 0, 0, 0, 0, 1.0], inside) == ["workspace box"]
    shield.close()


def test_a_tool_that_strays_from_the_command_is_held():
    shield = SafetyShield(ShieldConfig(ik_check=False))
    o = obs_at((0.5, 0.0, 0.2))
    shield.reset(o)
    assert not shield.filter([0.0, 0.0, 0.0, 0.0, 0.0, 0.25, 1.0], o).held
    drifted = obs_at((0.5, 0.05, 0.2))  # 5 cm sideways while only the wrist was asked to turn
    r = shield.filter([0.0, 0.0, 0.0, 0.0, 0.0, 0.25, 1.0], drifted)
    assert r.held and r.state_event and "tracking error" in r.violations[-1]
    assert np.allclose(r.action[:6], 0)
    # lag and overshoot along the commanded move are not straying
    shield.reset(o)
    shield.filter([0.0, 0.0, -0.04, 0, 0, 0, 1.0], o)
    assert not shield.filter(np.zeros(7), obs_at((0.5, 0.0, 0.15))).held


def test_numbers_no_float_holds_are_held_not_raised():
    shield = SafetyShield()
    o = obs_at((0.5, 0.0, 0.2))
    shield.reset(o)
    for bad in ([10**400, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, -(10**400)], [1e308] * 7):
        r = shield.filter(bad, o)
        assert np.all(np.isfinite(r.action)) and np.abs(r.action[:3]).max() <= 0.04
    assert shield.envelope_violations([10**400] * 7, o[STATE]) == ["malformed action"]
    shield.close()


def test_joint_limits_are_audited_on_the_measured_joints(small_env):
    obs, _ = small_env.reset(seed=0)
    cfg = ShieldConfig()
    assert not state_excursion(cfg, obs[STATE], obs[JOINTS], small_env.robot_spec).outside
    past = np.array(obs[JOINTS], float)
    past[6] = 2.99  # joint 7 at its hard stop, past the 2.9 limit
    ex = state_excursion(cfg, obs[STATE], past, small_env.robot_spec)
    assert ex.joint == pytest.approx(0.09, abs=1e-6) and ex.unsafe(cfg) and "joint" in ex.detail


def test_every_adversary_of_the_fuzz_benchmark_leaves_no_unsafe_state():
    n = len(adversaries())
    r = run_shield_bench(ShieldBenchConfig(episodes=n, steps=15, seed=3_900_000))
    assert r["actions"] == n * 15
    assert r["unsafe_states_reached"] == 0 and r["unsafe_actions_reached_backend"] == 0
    assert r["interventions"] > 0 and set(r["per_adversary"]) == set(adversaries())
    assert r["holds"] < 0.8 * r["actions"]  # the shield filters; it does not just hold everything
    assert r["per_adversary"]["drift-x+-1mm"]["holds"] == 0
    assert r["worst_state_excursion"]["position_mm"] <= 5.0
