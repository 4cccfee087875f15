"""A kinematic twin of the connected robot (built from its ``RobotSpec``): its own PyBullet
client, used by the safety shield to predict where a commanded pose takes the arm (inverse
kinematics, joint limits, reach, table clearance).

When the robot reports its measured joint positions, the twin solves the inverse kinematics the
way the arm's controller does (seeded from those joints, the same iterations): its answer is
then where the arm will actually go, which is what exposes a move whose tool drifts sideways
while only the wrist was asked to turn. Without joint positions (an arm that reports only the
tool pose) it falls back to a search from its last solution and the rest pose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pybullet as p

from vla_agent.sim import assets
from vla_agent.sim.robots.base import RobotSpec, robot_spec

_FLIP = p.getQuaternionFromEuler([math.pi, 0.0, 0.0])  # tool frame = grasp frame turned about x
ORIENTATION_TOLERANCE = 0.15  # rad between the IK solution's tool orientation and the target


@dataclass(frozen=True)
class TwinCheck:
    """The twin's answer for one target pose: ``error`` is '' when the arm can go there."""

    error: str
    reached: np.ndarray  # where the tool ends up (base frame, metres)
    joints: np.ndarray  # the arm's joint targets
    reached_rpy: np.ndarray  # the tool orientation it ends up with (roll, pitch, yaw; 0 = down)


class KinematicTwin:
    """The robot of ``spec`` in its own PyBullet client with a table top at z = 0, its base at
    ``base`` (default: where the simulated cell mounts it; a real arm's own frame: the origin)."""

    def __init__(self, spec: RobotSpec | str | None = None, base: Sequence[float] | None = None):
        self.spec = rs = robot_spec(spec)
        self.cid = p.connect(p.DIRECT)
        self.robot = assets.load_robot(self.cid, rs, base)
        self.table = p.createMultiBody(
            0,
            p.createCollisionShape(p.GEOM_BOX, halfExtents=[1.0, 1.0, 0.05], physicsClientId=self.cid),
            basePosition=[0.5, 0.0, -0.05],
            physicsClientId=self.cid,
        )
        self.lower, self.upper = rs.limits()
        # links that may touch the table: the fingers and every link of the gripper after the hand
        links = range(p.getNumJoints(self.robot, physicsClientId=self.cid))
        self.fingers = {j for j in links if j > rs.hand_link}
        self.q = np.array(rs.rest_pose, float)
        self._orn = np.array([0.0, 0.0, 0.0, 1.0])

    def check(
        self,
        pos: np.ndarray,
        rpy: np.ndarray,
        tol: float,
        margin: float,
        joints: np.ndarray | None = None,
    ) -> TwinCheck:
        """Can the arm take the tool to ``pos``/``rpy`` (within ``tol`` metres), inside its joint
        limits, with every link but the fingers ``margin`` above the table?"""
        orn = assets.link_orientation(rpy)
        if joints is not None:
            # the simulated arm's controller (sim/env.py): the spec's iterations and residual
            seeds = ((np.asarray(joints, float), self.spec.ik_iterations, self.spec.ik_threshold),)
        else:
            # one miss from a guessed seed is no proof of infeasibility: try the rest pose too
            seeds = ((self.q, 60, 1e-5), (np.array(self.spec.rest_pose), 200, 1e-5))
        err, q, reached = "", self.q, np.asarray(pos, float)
        for seed, iters, threshold in seeds:
            q, reached = self._solve(seed, pos, orn, iters, threshold)
            # From the measured joints this is the controller's own answer, limits and all (the
            # caller judges its joints); from a guessed seed, IK's null-space solution may stray
            # past a limit and the clipped configuration is what the arm would reach.
            if joints is None and (np.any(q < self.lower - 1e-3) or np.any(q > self.upper + 1e-3)):
                q, reached = self._fk(np.clip(q, self.lower, self.upper))
            turn = 2 * math.acos(min(1.0, abs(float(np.dot(self._orn, orn)))))
            miss = float(np.linalg.norm(reached - pos))
            if miss > tol:
                err = f"target out of reach (the arm would miss it by {miss * 100:.1f} cm)"
            elif turn > ORIENTATION_TOLERANCE:
                err = f"target orientation out of reach (IK misses by {turn:.2f} rad)"
            else:
                err = ""
                break
        if not err:
            for c in p.getClosestPoints(self.robot, self.table, margin, physicsClientId=self.cid):
                if c[3] not in self.fingers and c[3] != -1:  # the base stands on the table
                    err = f"arm link {c[3]} would hit the table"
                    break
        if not err:
            self.q = q
        tool = p.multiplyTransforms([0, 0, 0], list(self._orn), [0, 0, 0], _FLIP)[1]
        return TwinCheck(err, reached, q, np.array(p.getEulerFromQuaternion(tool)))

    def pose(self, joints: Sequence[float]) -> np.ndarray:
        """Forward kinematics: the tool pose ``[x, y, z, roll, pitch, yaw]`` (0 = pointing down) at
        ``joints`` (an arm that reports only its joint states)."""
        _, pos = self._fk(np.asarray(joints, float))
        tool = p.multiplyTransforms([0, 0, 0], list(self._orn), [0, 0, 0], _FLIP)[1]
        return np.concatenate([pos, p.getEulerFromQuaternion(tool)])

    def _solve(self, seed, pos, orn, iters: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        for j, q in zip(self.spec.arm_joints, seed):
            p.resetJointState(self.robot, j, q, physicsClientId=self.cid)
        q = assets.robot_ik(self.cid, self.robot, self.spec, pos, orn, iters, threshold)
        return self._fk(np.array(q))

    def _fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        for j, qj in zip(self.spec.arm_joints, q):
            p.resetJointState(self.robot, j, qj, physicsClientId=self.cid)
        st = p.getLinkState(
            self.robot, self.spec.tool_link, computeForwardKinematics=True, physicsClientId=self.cid
        )
        self._orn = np.array(st[5])
        return q, np.array(st[4])

    def close(self) -> None:
        if p.isConnected(self.cid):
            p.disconnect(self.cid)
