"""Bodies of the tabletop world: a Panda with simplified visual meshes, the table, blocks, bowls
and plates. Every call takes the PyBullet client id explicitly."""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from pathlib import Path

import pybullet as p
import pybullet_data

from vla_agent.sim.catalog import (
    BLOCK_SIZE,
    BOWL_HEIGHT,
    BOWL_INNER_RADIUS,
    PLATE_HEIGHT,
    PLATE_RADIUS,
    WALL,
)

# Panda joint/link indices in pybullet_data's franka_panda/panda.urdf.
ARM_JOINTS = tuple(range(7))
FINGER_JOINTS = (9, 10)
HAND_LINK = 8
EE_LINK = 11  # panda_grasptarget: midway between the fingertips
# Arm joint limits (rad) used for IK by the sim and by the shield's kinematic twin.
ARM_LOWER = (-2.9, -1.76, -2.9, -3.07, -2.9, -0.0175, -2.9)
ARM_UPPER = (2.9, 1.76, 2.9, -0.07, 2.9, 3.75, 2.9)
REST_POSE = (0.0, -0.35, 0.0, -2.35, 0.0, 2.0, 0.785)


_TOOL_FLIP_INV = p.invertTransform([0, 0, 0], p.getQuaternionFromEuler([math.pi, 0.0, 0.0]))[1]


def link_orientation(rpy) -> tuple[float, float, float, float]:
    """Quaternion of ``EE_LINK`` for a tool orientation ``rpy`` (the tool frame points down)."""
    return p.multiplyTransforms([0, 0, 0], p.getQuaternionFromEuler(list(rpy)), [0, 0, 0], _TOOL_FLIP_INV)[1]


def panda_ik(cid: int, robot: int, pos, orn, iterations: int, threshold: float) -> list[float]:
    """Arm joint targets (7) for the grasp target at ``pos``/``orn``, within ``ARM_LOWER``/``ARM_UPPER``,
    seeded from the robot's current joint state and pulled toward ``REST_POSE``."""
    lower, upper = list(ARM_LOWER), list(ARM_UPPER)
    q = p.calculateInverseKinematics(
        robot,
        EE_LINK,
        list(pos),
        orn,
        lowerLimits=lower,
        upperLimits=upper,
        jointRanges=[hi - lo for lo, hi in zip(lower, upper)],
        restPoses=list(REST_POSE),
        maxNumIterations=iterations,
        residualThreshold=threshold,
        physicsClientId=cid,
    )
    return list(q[: len(ARM_JOINTS)])


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
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    out = Path(tempfile.gettempdir()) / f"vla_agent_panda_{digest}.urdf"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return str(out)


PANDA_LINK_COLORS = {
    -1: (0.92, 0.92, 0.92, 1),
    0: (0.92, 0.92, 0.92, 1),
    1: (0.92, 0.92, 0.92, 1),
    2: (0.92, 0.92, 0.92, 1),
    3: (0.92, 0.92, 0.92, 1),
    4: (0.92, 0.92, 0.92, 1),
    5: (0.25, 0.25, 0.27, 1),
    6: (0.92, 0.92, 0.92, 1),
    8: (0.30, 0.30, 0.33, 1),
    9: (0.15, 0.15, 0.16, 1),
    10: (0.15, 0.15, 0.16, 1),
}


def load_panda(cid: int) -> int:
    robot = p.loadURDF(
        panda_urdf(),
        [0, 0, 0],
        useFixedBase=True,
        flags=p.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
        physicsClientId=cid,
    )
    for link, rgba in PANDA_LINK_COLORS.items():
        p.changeVisualShape(robot, link, rgbaColor=rgba, physicsClientId=cid)
    for j in FINGER_JOINTS:
        p.changeDynamics(robot, j, lateralFriction=1.2, spinningFriction=0.01, physicsClientId=cid)
    # The real Panda hand is mechanically coupled: both fingers move symmetrically, which centres
    # a grasped object between them. A gear constraint reproduces that (URDF <mimic> is ignored).
    gear = p.createConstraint(
        robot,
        FINGER_JOINTS[0],
        robot,
        FINGER_JOINTS[1],
        p.JOINT_GEAR,
        [1, 0, 0],
        [0, 0, 0],
        [0, 0, 0],
        physicsClientId=cid,
    )
    p.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=50, physicsClientId=cid)
    return robot


def load_table(cid: int, rgba: tuple[float, float, float, float]) -> int:
    half = [0.45, 0.55, 0.02]
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=cid)
    vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=rgba, physicsClientId=cid)
    body = p.createMultiBody(0, col, vis, [0.42, 0.0, -0.02], physicsClientId=cid)
    p.changeDynamics(body, -1, lateralFriction=0.6, physicsClientId=cid)
    return body


def create_block(cid: int, rgba, position, yaw: float) -> int:
    half = [BLOCK_SIZE / 2] * 3
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=cid)
    vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=rgba, physicsClientId=cid)
    body = p.createMultiBody(
        0.08,
        col,
        vis,
        [position[0], position[1], BLOCK_SIZE / 2],
        p.getQuaternionFromEuler([0, 0, yaw]),
        physicsClientId=cid,
    )
    p.changeDynamics(body, -1, lateralFriction=0.8, spinningFriction=0.005, physicsClientId=cid)
    return body


def _ring_container(
    cid: int,
    rgba,
    position,
    yaw: float,
    *,
    radius: float,
    height: float,
    base: float,
    segments: int,
    mass: float,
) -> int:
    """A compound body: a round base (cylinder) plus a ring of wall boxes."""
    types, halves, radii, lengths, positions, orients = (
        [p.GEOM_CYLINDER],
        [[0, 0, 0]],
        [radius + WALL],
        [base],
        [[0, 0, base / 2]],
        [[0, 0, 0, 1]],
    )
    seg_len = 2 * (radius + WALL) * math.tan(math.pi / segments) + 0.002
    for k in range(segments):
        a = 2 * math.pi * k / segments
        r = radius + WALL / 2
        types.append(p.GEOM_BOX)
        halves.append([WALL / 2, seg_len / 2, height / 2])
        radii.append(0.0)
        lengths.append(0.0)
        positions.append([r * math.cos(a), r * math.sin(a), height / 2])
        orients.append(p.getQuaternionFromEuler([0, 0, a]))
    n = len(types)
    col = p.createCollisionShapeArray(
        types,
        radii=radii,
        halfExtents=halves,
        lengths=lengths,
        collisionFramePositions=positions,
        collisionFrameOrientations=orients,
        physicsClientId=cid,
    )
    vis = p.createVisualShapeArray(
        types,
        radii=radii,
        halfExtents=halves,
        lengths=lengths,
        visualFramePositions=positions,
        visualFrameOrientations=orients,
        rgbaColors=[rgba] * n,
        physicsClientId=cid,
    )
    body = p.createMultiBody(
        mass,
        col,
        vis,
        [position[0], position[1], 0.0],
        p.getQuaternionFromEuler([0, 0, yaw]),
        physicsClientId=cid,
    )
    p.changeDynamics(body, -1, lateralFriction=0.8, physicsClientId=cid)
    return body


def create_bowl(cid: int, rgba, position, yaw: float) -> int:
    # Walls form a 12-gon of inner radius 6 cm on a round base.
    return _ring_container(
        cid,
        rgba,
        position,
        yaw,
        radius=BOWL_INNER_RADIUS,
        height=BOWL_HEIGHT,
        base=WALL,
        segments=12,
        mass=0.4,
    )


def create_plate(cid: int, rgba, position, yaw: float) -> int:
    return _ring_container(
        cid,
        rgba,
        position,
        yaw,
        radius=PLATE_RADIUS - WALL,
        height=PLATE_HEIGHT,
        base=WALL,
        segments=12,
        mass=0.4,
    )


CREATORS = {"block": create_block, "bowl": create_bowl, "plate": create_plate}
