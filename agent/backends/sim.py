"""Robot backends: where shielded actions go and observations come from.

``SimBackend`` drives the PyBullet ``TabletopEnv``. Every backend audits what it receives against
the shield's envelope (``unsafe_actions``) and refuses to move on malformed data, so a bug
upstream of the shield is counted, not executed; and it audits where the arm *is* after every
move (``unsafe_states``: measured states outside the envelope by more than its tolerances, with
the worst excursion in ``worst_excursion``), so drift that no command asked for is counted too.
"""

from __future__ import annotations

import numpy as np

from vla_agent.agent.perception.objects import CameraModel
from vla_agent.agent.safety.shield import TIMESTAMP, SafetyShield, state_excursion
from vla_agent.errors import ActionError
from vla_agent.interfaces import RobotBackend  # noqa: F401 - the interface, re-exported
from vla_agent.sim.catalog import SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.types import JOINTS, STATE, Observation, SceneObject


def audit_action(backend, action: np.ndarray) -> None:
    """A backend's own check of what it was handed: outside the shield's envelope -> counted in
    ``backend.unsafe_actions`` and refused (``ActionError``), never executed."""
    state = np.asarray(backend.observe()[STATE], float)
    problems = backend.audit.envelope_violations(action, state)
    if problems:
        backend.unsafe_actions += 1
        raise ActionError(f"backend refused an unsafe action ({', '.join(problems)})")


class StateAudit:
    """Counts measured states outside the envelope (beyond its tolerances) and keeps the worst
    excursion seen: metres outside the box, radians past the tilt and joint limits."""

    def __init__(self):
        self.unsafe_states = 0
        self.worst = {"position_mm": 0.0, "tilt_rad": 0.0, "joint_rad": 0.0}

    def record(self, shield: SafetyShield, obs: Observation) -> None:
        ex = state_excursion(shield.config, obs[STATE], obs.get(JOINTS), shield.robot)
        if ex.unsafe(shield.config):
            self.unsafe_states += 1
        w = self.worst
        w["position_mm"] = max(w["position_mm"], round(ex.position * 1000, 2))
        w["tilt_rad"] = max(w["tilt_rad"], round(ex.tilt, 4))
        w["joint_rad"] = max(w["joint_rad"], round(ex.joint, 4))

    def absorb(self, other: StateAudit) -> None:
        """Add ``other``'s count and keep the worse of each excursion (totals over episodes)."""
        self.unsafe_states += other.unsafe_states
        self.worst = {k: max(v, other.worst[k]) for k, v in self.worst.items()}


class SimBackend:
    """The simulated robot. ``render()`` gives video frames; ``env`` stays reachable for the
    ground-truth judge of benchmarks (never for the detector or the policy)."""

    name = "sim"

    def __init__(self, env: TabletopEnv | None = None, audit: SafetyShield | None = None):
        self.env = env or TabletopEnv(EnvConfig())
        self.audit = audit or SafetyShield(robot=self.env.robot_spec, base=self.env.base)
        self.unsafe_actions = 0
        self.states = StateAudit()
        self.applied = 0
        self.stopped = False
        self._obs: Observation | None = None

    def clock(self) -> float:
        """Simulated time: control steps since the reset times the control period. A dry run is
        reproducible under load and the shield's watchdog never sees a busy CPU as a stale frame."""
        return self.env.steps / self.env.config.control_hz

    def reset(self, seed: int | None = None, scene: SceneSpec | str | None = None) -> Observation:
        options = {"scene": scene} if scene is not None else None
        obs, _ = self.env.reset(seed=seed, options=options)
        self._obs = {**obs, TIMESTAMP: self.clock()}
        self.stopped = False
        return self._obs

    def observe(self) -> Observation:
        if self._obs is None:
            raise RuntimeError("SimBackend.observe before reset")
        return self._obs

    def apply(self, action: np.ndarray) -> None:
        audit_action(self, action)
        obs, *_ = self.env.step(np.asarray(action, float))
        self.applied += 1
        self._obs = {**obs, TIMESTAMP: self.clock()}
        self.states.record(self.audit, self._obs)

    @property
    def unsafe_states(self) -> int:
        return self.states.unsafe_states

    def stop(self) -> None:
        """Hold: zero motion with the gripper as it is (one control tick)."""
        self.stopped = True
        hold = np.array([0, 0, 0, 0, 0, 0, 1.0 if self.env.gripper_open else -1.0])
        obs, *_ = self.env.step(hold)
        self._obs = {**obs, TIMESTAMP: self.clock()}
        self.states.record(self.audit, self._obs)

    @property
    def camera(self) -> CameraModel:
        f = self.env.camera_frame
        return CameraModel(f.intrinsics, f.extrinsics)

    def scene_objects(self) -> list[SceneObject]:
        return [SceneObject(n, o.kind, o.color) for n, o in zip(self.env.names, self.env.scene.objects)]

    def render(self) -> np.ndarray | None:
        return self.env.render()

    def close(self) -> None:
        self.env.close()
