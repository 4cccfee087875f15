"""Bodies of the tabletop world: a robot from its ``RobotSpec``, the table, blocks, bowls and
plates. Every call takes the PyBullet client id explicitly."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pybullet as p

from vla_agent.sim.catalog import (
    BLOCK_SIZE,
    BOWL_HEIGHT,
    BOWL_INNER_RADIUS,
    PLATE_HEIGHT,
    PLATE_RADIUS,
    WALL,
)
from vla_agent.sim.robots.base import RobotSpec

_TOOL_FLIP_INV = p.invertTransform([0, 0, 0], p.getQuaternionFromEuler([math.pi, 0.0, 0.0]))[1]


def link_orientation(rpy) -> tuple[float, float, float, float]:
    """Quaternion of a robot's tool link for a tool orientation ``rpy`` (the tool frame points down)."""
    return p.multiplyTransforms([0, 0, 0], p.getQuaternionFromEuler(list(rpy)), [0, 0, 0], _TOOL_FLIP_INV)[1]


def robot_ik(
    cid: int, robot: int, spec: RobotSpec, pos, orn, iterations: int, threshold: float
) -> list[float]:
    """Arm joint targets for the tool at ``pos``/``orn``, seeded from the robot's current joints.

    The limit and rest-pose lists cover the arm's joints only; PyBullet uses a null space only
    when they cover every movable joint (the gripper's too), so this is its plain damped least
    squares: the controller the simulated arms have had since round 1 (the VLA was trained on it).
    """
    lower, upper, rest = list(spec.joint_lower), list(spec.joint_upper), list(spec.rest_pose)
    q = p.calculateInverseKinematics(
        robot,
        spec.tool_link,
        list(pos),
        orn,
        lowerLimits=lower,
        upperLimits=upper,
        jointRanges=[hi - lo for lo, hi in zip(lower, upper)],
        restPoses=rest,
        maxNumIterations=iterations,
        residualThreshold=threshold,
        physicsClientId=cid,
    )
    return list(q[: spec.dof])


def load_robot(cid: int, spec: RobotSpec, base: Sequence[float] | None = None) -> int:
    """Load ``spec``'s arm with its base at ``base`` (default: the spec's cell position)."""
    robot = p.loadURDF(
        spec.urdf(),
        list(spec.base_position if base is None else base),
        useFixedBase=True,
        flags=p.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
        physicsClientId=cid,
    )
    for link, rgba in spec.link_colors.items():
        p.changeVisualShape(robot, link, rgbaColor=rgba, physicsClientId=cid)
    for j in spec.finger_links:
        p.changeDynamics(
            robot, j, lateralFriction=spec.finger_friction, spinningFriction=0.01, physicsClientId=cid
        )
    if spec.couple_fingers:
        a, b = spec.gripper_joints[:2]
        gear = p.createConstraint(
            robot, a, robot, b, p.JOINT_GEAR, [1, 0, 0], [0, 0, 0], [0, 0, 0], physicsClientId=cid
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
