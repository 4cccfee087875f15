"""Arm drivers: end-effector delta motion, gripper, state, stop. Every driver sits behind the
safety shield (the executor filters each action, the backend audits it again) and clips to its own
conservative speed limits on top.

- ``TwinArm``: a simulated arm (any registered robot, the Panda by default) standing in for the
  arm, in a digital-twin scene; used by tests, by playback runs and by the shadow dry run.
- ``XArmDriver``: UFactory xArm through ``xarm-python-sdk`` (``pip install 'vla-agent[real]'``);
  the xArm 6 has a ``RobotSpec`` (``xarm6``), so its shield checks an xArm 6; other models need
  theirs registered first.

Every driver names its ``robot`` (a registered ``RobotSpec``) and its ``mount`` (where the arm's
base is in the frame of its states): the session builds the shield's twin and limits from them.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from vla_agent.errors import VlaAgentError
from vla_agent.interfaces import ArmDriver
from vla_agent.registry import registry
from vla_agent.sim.catalog import SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.sim.robots.xarm6 import TCP_OFFSET
from vla_agent.types import JOINTS, STATE, WRIST_IMAGE

_FLIP = Rotation.from_euler("x", np.pi)  # the simulator's tool frame = the tool's z frame turned about x


class ArmError(VlaAgentError):
    """The arm refused a command or reported an error; it has been told to stop."""


# The interface is ``vla_agent.interfaces.ArmDriver``. Optional: ``joint_positions() -> np.ndarray``,
# the measured joint angles (in the order of the spec's joints), which let the shield's twin predict
# each move and audit the joint limits; ``measured_at() -> float``, when the state was measured
# (monotonic seconds), for drivers whose states arrive by themselves (the watchdog reads it).


def clip_step(action: np.ndarray, max_step: float, max_rot_step: float) -> np.ndarray:
    """An action's end-effector delta (its first six values), translation and rotation each
    scaled down to a driver's per-step limit (metres, radians), on top of the shield."""
    a = np.asarray(action, np.float64)
    d, r = a[:3], a[3:6]
    n, m = np.linalg.norm(d), np.linalg.norm(r)
    if n > max_step:
        d = d * (max_step / n)
    if m > max_rot_step:
        r = r * (max_rot_step / m)
    return np.concatenate([d, r])


class TwinArm:
    """A simulated arm (``robot``, default the Panda) as an arm driver. ``scene`` places objects in
    the twin world (the perceived scene for a shadow run); its wrist camera renders that world."""

    name = "twin"

    def __init__(
        self,
        scene: SceneSpec | str | None = None,
        seed: int = 0,
        env: TabletopEnv | None = None,
        robot: str = "panda",
    ):
        self.env = env or TabletopEnv(EnvConfig(robot=robot))
        self.robot, self.mount = self.env.robot_spec.name, self.env.base
        options = {"scene": SceneSpec.parse(scene) if isinstance(scene, str) else scene} if scene else None
        self._obs, _ = self.env.reset(seed=seed, options=options)
        self.moves = 0

    def set_scene(self, scene: SceneSpec | None, seed: int = 0) -> None:
        """Rebuild the twin world around the arm (e.g. from the perceived scene)."""
        self._obs, _ = self.env.reset(seed=seed, options={"scene": scene} if scene else None)

    def state(self) -> np.ndarray:
        return np.asarray(self._obs[STATE], np.float64)

    def joint_positions(self) -> np.ndarray:
        return np.asarray(self._obs[JOINTS], np.float64)

    def move(self, action: np.ndarray) -> None:
        a = np.asarray(action, np.float64)
        if a.shape != (7,) or not np.all(np.isfinite(a)):
            raise ArmError(f"twin arm refused a malformed action {a!r}")
        self._obs, *_ = self.env.step(a)
        self.moves += 1

    def stop(self) -> None:
        hold = np.array([0, 0, 0, 0, 0, 0, 1.0 if self.env.gripper_open else -1.0])
        self._obs, *_ = self.env.step(hold)

    def wrist_image(self) -> np.ndarray | None:
        return self._obs.get(WRIST_IMAGE)

    def close(self) -> None:
        self.env.close()


class XArmDriver:
    """UFactory xArm through its Python SDK (TCP to the controller).

    Actions are turned into absolute Cartesian targets (``set_position``, position mode), each
    step clipped to ``max_speed`` / ``max_rot_speed`` times the control period; orientation
    deltas act on the tool frame, as in the simulator. The gripper is sent only when its command
    flips. Any non-zero SDK return code stops the arm and raises ``ArmError``.
    """

    name = "xarm"
    mount = (0.0, 0.0, 0.0)  # states are in the arm's own base frame
    GRIPPER_RANGE = 850.0  # SDK units of the xArm Gripper, fully open
    GRIPPER_WIDTH = 0.085  # metres at GRIPPER_RANGE

    def __init__(
        self,
        ip: str,
        control_hz: float = 10.0,
        max_speed: float = 0.05,  # m/s: conservative until the cell is known
        max_rot_speed: float = 0.3,  # rad/s
        accel: float = 0.5,  # m/s^2
        api=None,  # an XArmAPI-compatible object (tests); default: connect to ``ip``
    ):
        if api is None:
            try:
                from xarm.wrapper import XArmAPI
            except ImportError as e:  # pragma: no cover - depends on the install
                raise ArmError("the xArm driver needs xarm-python-sdk: pip install 'vla-agent[real]'") from e
            api = XArmAPI(ip, is_radian=True)
        self.api = api
        axis = getattr(api, "axis", 6)
        self.robot = f"xarm{axis if isinstance(axis, int) else 6}"  # a RobotSpec is registered for xarm6
        self.dt = 1.0 / control_hz
        self.max_step, self.max_rot_step = max_speed * self.dt, max_rot_speed * self.dt
        self.speed_mm, self.accel_mm = max_speed * 1000.0, accel * 1000.0
        self._gripper_open: bool | None = None
        self._check(self.api.clean_error(), "clean_error")
        self._check(self.api.motion_enable(enable=True), "motion_enable")
        # the tool point of the RobotSpec (midway between the fingertips), so poses mean the same
        # here as in the simulator and in the shield's twin
        self._check(self.api.set_tcp_offset([0, 0, TCP_OFFSET * 1000.0, 0, 0, 0]), "set_tcp_offset")
        self._check(self.api.set_mode(0), "set_mode(0)")  # position control
        self._check(self.api.set_state(0), "set_state(0)")  # ready
        self._check(self.api.set_gripper_enable(True), "set_gripper_enable")

    def _check(self, ret, what: str):
        code = ret[0] if isinstance(ret, (tuple, list)) else ret
        if code != 0:
            try:
                self.api.emergency_stop()
            finally:
                raise ArmError(f"xArm {what} failed with code {code}; the arm was stopped")
        return ret[1] if isinstance(ret, (tuple, list)) else None

    def state(self) -> np.ndarray:
        """Base frame, metres; the orientation in the simulator's tool convention (the xArm reports
        its tool z axis, so pointing down is roll = pi there and 0 here)."""
        pose = np.asarray(self._check(self.api.get_position(is_radian=True), "get_position"), np.float64)
        grip = float(self._check(self.api.get_gripper_position(), "get_gripper_position"))
        width = np.clip(grip / self.GRIPPER_RANGE, 0.0, 1.0) * self.GRIPPER_WIDTH
        rpy = (Rotation.from_euler("xyz", pose[3:6]) * _FLIP).as_euler("xyz")
        return np.concatenate([pose[:3] / 1000.0, rpy, [width]])

    def joint_positions(self) -> np.ndarray | None:
        """The measured joint angles (rad) for the shield's twin and joint-limit audit."""
        ret = self.api.get_servo_angle(is_radian=True)
        if not isinstance(ret, (tuple, list)) or len(ret) < 2 or ret[0] != 0:
            return None
        q = np.asarray(ret[1], np.float64)[: int(self.robot[4:] or 6)]
        return q if np.all(np.isfinite(q)) else None

    def target(self, action: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The pose ``[x, y, z (mm), roll, pitch, yaw (rad)]`` one step of ``action`` leads to."""
        step = clip_step(action, self.max_step, self.max_rot_step)
        d, rot = step[:3], step[3:]
        current = Rotation.from_euler("xyz", state[3:6])
        goal = current * Rotation.from_euler("xyz", rot) * _FLIP  # tool-frame delta, back to the xArm's
        return np.concatenate([(state[:3] + d) * 1000.0, goal.as_euler("xyz")])

    def move(self, action: np.ndarray) -> None:
        a = np.asarray(action, np.float64)
        if a.shape != (7,) or not np.all(np.isfinite(a)):
            self.stop()
            raise ArmError(f"xArm driver refused a malformed action {a!r}")
        x, y, z, roll, pitch, yaw = self.target(a, self.state())
        self._check(
            self.api.set_position(
                x=x,
                y=y,
                z=z,
                roll=roll,
                pitch=pitch,
                yaw=yaw,
                speed=self.speed_mm,
                mvacc=self.accel_mm,
                relative=False,
                is_radian=True,
                wait=False,
            ),
            "set_position",
        )
        want_open = bool(a[6] > 0)
        if want_open != self._gripper_open:
            pos = self.GRIPPER_RANGE if want_open else 0.0
            self._check(self.api.set_gripper_position(pos, wait=False), "set_gripper_position")
            self._gripper_open = want_open

    def stop(self) -> None:
        # Stop the motion in progress, then leave the arm ready for the next command.
        self.api.set_state(4)
        self.api.set_state(0)

    def wrist_image(self) -> np.ndarray | None:
        return None

    def close(self) -> None:
        self.stop()
        self.api.disconnect()


# Arm drivers by name (``--arm``): a factory is ``factory(arg, scene=None, seed=0) -> ArmDriver``;
# other packages register theirs under the ``vla_agent.arms`` entry-point group.
ARMS = registry("arm", "vla_agent.arms")


@ARMS.register("twin", form="twin[:ROBOT]", help="a simulated arm (default panda) for tests and shadow runs")
def _twin(arg: str, scene: SceneSpec | str | None = None, seed: int = 0) -> ArmDriver:
    return TwinArm(scene, seed, robot=arg or "panda")


@ARMS.register("xarm", form="xarm:IP", help="UFactory xArm 6 through xarm-python-sdk (the xarm6 RobotSpec)")
def _xarm(arg: str, scene: SceneSpec | str | None = None, seed: int = 0) -> ArmDriver:
    if not arg:
        raise ArmError("arm xarm needs the controller's address: xarm:IP")
    return XArmDriver(arg)


@ARMS.register("ros", form="ros[:CONFIG.yaml]", help="any ROS 2 arm by topics (pip install 'vla-agent[ros]')")
def _ros(arg: str, scene: SceneSpec | str | None = None, seed: int = 0) -> ArmDriver:
    from vla_agent.agent.ros.robot import RosArm, RosRobotConfig

    return RosArm(RosRobotConfig.load(arg))


def make_arm(spec: str, scene: SceneSpec | str | None = None, seed: int = 0) -> ArmDriver:
    """The arm driver ``spec`` names (``twin``, ``xarm:IP``, or a plugin's)."""
    return ARMS.create(spec, scene=scene, seed=seed)
