"""The real robot backend: a RealSense camera + an arm driver + a calibration, behind the same
``RobotBackend`` interface as the simulator."""

from __future__ import annotations

import time

import numpy as np

from vla_agent.agent.backends.sim import StateAudit, audit_action
from vla_agent.agent.perception.objects import CameraModel
from vla_agent.agent.real.arms import ArmDriver
from vla_agent.agent.real.calibration import Calibration
from vla_agent.agent.real.camera import RealSenseCamera
from vla_agent.agent.safety.shield import TIMESTAMP, SafetyShield
from vla_agent.types import DEPTH, IMAGE, JOINTS, STATE, WRIST_IMAGE, Observation, SceneObject


class RealBackend:
    """Observations: the camera's colour and depth (aligned, metres) and the arm's state (plus its
    wrist image when it has one). Actions are audited against the shield's envelope before the
    arm driver sees them; an unsafe one is refused and counted, never sent."""

    name = "real"

    def __init__(
        self,
        camera: RealSenseCamera,
        arm: ArmDriver,
        calibration: Calibration,
        objects: list[SceneObject],
        audit: SafetyShield | None = None,
    ):
        self.cam, self.arm, self.calibration = camera, arm, calibration
        self.objects = list(objects)
        self.audit = audit or SafetyShield()
        self.unsafe_actions = 0
        self.states = StateAudit()
        self.applied = 0
        self.stopped = False
        self._obs: Observation | None = None
        self._K: np.ndarray | None = None

    def clock(self) -> float:
        """Wall-clock time: on a real robot a late frame is a stale frame (the watchdog's job)."""
        return time.monotonic()

    def reset(self, seed: int | None = None, scene=None) -> Observation:
        """(Re)read the world; the real scene is whatever is on the table (``seed``/``scene`` are
        the simulator's and are ignored)."""
        self.stopped = False
        return self._read()

    def _read(self) -> Observation:
        f = self.cam.read()
        obs: Observation = {
            IMAGE: f.rgb,
            DEPTH: f.depth,
            STATE: np.asarray(self.arm.state(), np.float32),
            # when the state was measured: a driver whose states arrive by themselves (ROS topics)
            # says when the last one came, so a stalled state stream looks stale to the watchdog
            TIMESTAMP: self.arm.measured_at() if hasattr(self.arm, "measured_at") else self.clock(),
        }
        joints = self.arm.joint_positions() if hasattr(self.arm, "joint_positions") else None
        if joints is not None:
            obs[JOINTS] = np.asarray(joints, np.float32)
        wrist = self.arm.wrist_image()
        if wrist is not None:
            obs[WRIST_IMAGE] = wrist
        self._obs, self._K = obs, f.K
        return obs

    def observe(self) -> Observation:
        return self._obs if self._obs is not None else self._read()

    def apply(self, action: np.ndarray) -> None:
        audit_action(self, action)
        self.arm.move(np.asarray(action, float))
        self.applied += 1
        self.states.record(self.audit, self._read())

    @property
    def unsafe_states(self) -> int:
        return self.states.unsafe_states

    def stop(self) -> None:
        self.stopped = True
        self.arm.stop()
        self._read()

    @property
    def camera(self) -> CameraModel:
        if self._K is None:
            self._read()
        return CameraModel(self._K, self.calibration.T)

    def scene_objects(self) -> list[SceneObject]:
        return list(self.objects)

    def render(self) -> np.ndarray | None:
        return None if self._obs is None else self._obs[IMAGE]

    def close(self) -> None:
        self.cam.stop()
        self.arm.close()
