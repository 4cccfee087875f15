"""``RobotSpec``: one embodiment as data (its URDF, tool link, joint limits, gripper, workspace,
speed limits, home pose, cameras), and the registry of them.

The simulator, the safety shield's kinematic twin, the backends' independent audit and the shadow
run are all built from the spec of the robot in use. A spec states its limits in the robot's own
base frame; the simulated cell places the base at ``base_position`` (a real arm's driver reports
in its base frame, so a real session puts the twin's base at the origin).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_agent.registry import Registry, registry

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class RobotSpec:
    """An arm with a parallel gripper, as the simulator, the twin and the shield need it.

    The tool link's z axis points along the fingers (out of the hand); the tool frame of actions
    and states is that frame turned by pi about x, so "pointing down" is roll = pitch = 0, and the
    fingers close along the tool's y axis.
    """

    name: str
    description: str
    urdf: Callable[[], str]  # path of the URDF (built on first use, cached)
    arm_joints: tuple[int, ...]
    joint_lower: tuple[float, ...]  # rad, what IK, the twin and the shield's audit use
    joint_upper: tuple[float, ...]
    rest_pose: tuple[float, ...]  # home: the tool above the middle of the table, pointing down
    arm_forces: tuple[float, ...]  # N m, the simulated position controller's limits
    tool_link: int  # the tool centre point, midway between the fingertips
    hand_link: int  # carries the wrist camera
    wrist_camera: Vec3  # the wrist camera's offset in the hand link's frame (looks along its z)
    gripper_joints: tuple[int, ...]  # every joint the gripper command drives
    gripper_open: tuple[float, ...]  # their targets when open / closed
    gripper_closed: tuple[float, ...]
    gripper_force: float
    gripper_gain: float
    finger_links: tuple[int, int]  # whose contacts with an object count as touching it
    gripper_width: Callable[[Sequence[float]], float]  # metres between the pads, from gripper joints
    max_gripper_width: float
    base_position: Vec3 = (0.0, 0.0, 0.0)  # where the simulated cell mounts the base
    workspace_min: Vec3 = (0.22, -0.40, 0.012)  # the default envelope, in the base frame
    workspace_max: Vec3 = (0.82, 0.40, 0.45)
    max_speed: float = 0.5  # m/s of the tool a real driver allows on top of the shield
    max_rot_speed: float = 1.0  # rad/s
    cameras: tuple[str, ...] = ("static", "wrist")
    link_colors: Mapping[int, tuple[float, float, float, float]] = field(default_factory=dict)
    finger_friction: float = 1.2
    couple_fingers: bool = False  # a gear constraint between two prismatic fingers (URDF mimic)
    ik_iterations: int = 40  # of the simulated controller's IK per step (the twin predicts with the same)
    ik_threshold: float = 1e-4

    @property
    def dof(self) -> int:
        return len(self.arm_joints)

    def limits(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.joint_lower, float), np.array(self.joint_upper, float)

    def box(self, base: Sequence[float] | None = None) -> tuple[Vec3, Vec3]:
        """The default workspace box in the frame whose origin is ``base`` away from the robot's
        base (the simulated cell: ``base_position``; a real arm's own frame: the origin)."""
        b = np.asarray(self.base_position if base is None else base, float)
        lo, hi = np.asarray(self.workspace_min) + b, np.asarray(self.workspace_max) + b
        return tuple(float(v) for v in lo), tuple(float(v) for v in hi)  # type: ignore[return-value]


def cached_urdf(name: str, text: str) -> str:
    """Write a derived URDF once per content into the temp folder (atomically) and return its path."""
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    out = Path(tempfile.gettempdir()) / f"vla_agent_{name}_{digest}.urdf"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return str(out)


ROBOTS: Registry[RobotSpec] = registry("robot", "vla_agent.robots")
"""Robot name -> a factory returning its ``RobotSpec`` (``ROBOTS.create("xarm6")``)."""


def robot_spec(robot: str | RobotSpec | None = None) -> RobotSpec:
    """The spec of ``robot`` (a registered name, a spec, or None for the Panda)."""
    if isinstance(robot, RobotSpec):
        return robot
    from vla_agent.sim import robots  # noqa: F401 - registers the built-in robots

    return ROBOTS.create(robot or "panda")


def spec_registry() -> Registry[RobotSpec]:
    from vla_agent.sim import robots  # noqa: F401

    return ROBOTS
