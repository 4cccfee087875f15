"""Franka Emika Panda (pybullet_data's ``franka_panda/panda.urdf``), the simulator's default arm
and the one the shipped VLA was trained on."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pybullet_data

from vla_agent.sim.robots.base import ROBOTS, RobotSpec, cached_urdf


def panda_urdf() -> str:
    """Path of a Panda URDF whose visual geometry is the simplified collision meshes.

    The detailed visual meshes (~100k triangles) cost ~19 ms per 128x128 TinyRenderer frame on
    2 CPU cores; the collision meshes (~3.5k triangles) keep the silhouette and render ~4x faster.
    The file is derived from pybullet_data's URDF and cached in the temp folder.
    """
    data = Path(pybullet_data.getDataPath()) / "franka_panda"
    text = (data / "panda.urdf").read_text()
    collision = f"{data / 'meshes' / 'collision'}{os.sep}"
    text = text.replace("package://meshes/visual/", collision)
    text = text.replace("package://meshes/collision/", collision)
    return cached_urdf("panda", text)


def _width(q: Sequence[float]) -> float:
    return float(q[0] + q[1])  # two prismatic fingers, metres from the centre each


_WHITE, _DARK = (0.92, 0.92, 0.92, 1), (0.25, 0.25, 0.27, 1)

PANDA = RobotSpec(
    name="panda",
    description="Franka Emika Panda with its parallel hand (7 joints, 8 cm stroke)",
    urdf=panda_urdf,
    arm_joints=tuple(range(7)),
    joint_lower=(-2.9, -1.76, -2.9, -3.07, -2.9, -0.0175, -2.9),
    joint_upper=(2.9, 1.76, 2.9, -0.07, 2.9, 3.75, 2.9),
    rest_pose=(0.0, -0.35, 0.0, -2.35, 0.0, 2.0, 0.785),
    arm_forces=(87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0),
    tool_link=11,  # panda_grasptarget: midway between the fingertips
    hand_link=8,
    wrist_camera=(0.05, 0.0, 0.02),
    gripper_joints=(9, 10),
    gripper_open=(0.04, 0.04),
    gripper_closed=(0.0, 0.0),
    gripper_force=40.0,
    gripper_gain=0.05,
    finger_links=(9, 10),
    gripper_width=_width,
    max_gripper_width=0.08,
    max_speed=0.5,
    max_rot_speed=1.0,
    link_colors={
        -1: _WHITE,
        **dict.fromkeys(range(5), _WHITE),
        5: _DARK,
        6: _WHITE,
        8: (0.30, 0.30, 0.33, 1),
        9: (0.15, 0.15, 0.16, 1),
        10: (0.15, 0.15, 0.16, 1),
    },
    # The real Panda hand is mechanically coupled: both fingers move symmetrically, which centres
    # a grasped object between them. A gear constraint reproduces that (URDF <mimic> is ignored).
    couple_fingers=True,
)

ROBOTS.register("panda", lambda _arg="": PANDA, help=PANDA.description)
