"""The safety shield: every action passes here before it reaches a robot backend.

Checks, in order (each intervention is named in ``ShieldResult.violations``):

1. shape and finiteness (NaN/inf -> hold: zero motion, gripper unchanged);
2. watchdog: a stale observation or a stale policy output -> hold;
3. gripper command clipped to [-1, 1];
4. per-step translation and rotation limits (vector-scaled, direction kept);
5. tool tilt limit (roll/pitch stay within ``max_tilt`` of pointing down);
6. end-effector workspace box (the target is clipped into it);
7. keep-out boxes: a move whose path enters one is cut to zero translation;
8. a kinematic twin (PyBullet, its own physics client): inverse kinematics for the target pose,
   joint limits and reach error, and collision lookahead of the whole arm against the table;
   an infeasible target -> hold.

``envelope_violations`` is the independent audit a backend runs on what it receives.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pybullet as p
from pydantic import BaseModel, ConfigDict, Field

from vla_agent.sim import assets
from vla_agent.types import ACTION_DIM, STATE, Observation, ShieldResult

ORIENTATION_TOLERANCE = 0.15  # rad between the IK solution's tool orientation and the target
TIMESTAMP = "timestamp"  # observation key: time.monotonic() at capture, set by backends


class KeepOut(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "zone"
    min: tuple[float, float, float]
    max: tuple[float, float, float]


class ShieldConfig(BaseModel):
    """Limits of the safety envelope (base frame, metres and radians)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_translation: float = Field(0.04, gt=0, description="metres per control step")
    max_rotation: float = Field(0.25, gt=0, description="radians per control step")
    workspace_min: tuple[float, float, float] = (0.22, -0.40, 0.012)
    workspace_max: tuple[float, float, float] = (0.82, 0.40, 0.45)
    max_tilt: float = Field(0.35, gt=0, description="max |roll|, |pitch| of the tool (0 = pointing down)")
    keep_out: tuple[KeepOut, ...] = ()
    max_obs_age_s: float = Field(0.5, gt=0)
    max_action_age_s: float = Field(1.0, gt=0)
    ik_check: bool = True
    ik_tolerance: float = Field(0.01, gt=0, description="metres between the IK solution and the target")
    table_margin: float = Field(0.002, description="min clearance of the arm (fingers excepted) to the table")


class SafetyShield:
    """Filters actions into the envelope; holds on bad data. Not thread-safe (one per executor)."""

    def __init__(self, config: ShieldConfig | None = None):
        self.config = config or ShieldConfig()
        self.last_gripper = 1.0
        self.interventions = 0
        self._twin: _KinematicTwin | None = None

    def reset(self, obs: Observation) -> None:
        state = np.asarray(obs[STATE], float)
        self.last_gripper = 1.0 if state[6] > 0.06 else -1.0

    def hold(self) -> np.ndarray:
        return np.array([0, 0, 0, 0, 0, 0, self.last_gripper], float)

    def filter(self, action, obs: Observation, issued_at: float | None = None) -> ShieldResult:
        c = self.config
        now = time.monotonic()
        try:
            a = np.asarray(action, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return self._held("malformed action")
        if a.shape != (ACTION_DIM,):
            return self._held(f"action has {a.size} values, expected {ACTION_DIM}")
        if not np.all(np.isfinite(a)):
            return self._held("non-finite action (NaN/inf)")
        state = np.asarray(obs.get(STATE, np.full(7, np.nan)), float)
        if state.shape != (7,) or not np.all(np.isfinite(state)):
            return self._held("no valid robot state in the observation")
        stamp = obs.get(TIMESTAMP)
        if stamp is not None and now - float(stamp) > c.max_obs_age_s:
            return self._held(f"stale observation ({now - float(stamp):.2f} s old)")
        if issued_at is not None and now - issued_at > c.max_action_age_s:
            return self._held(f"stale policy output ({now - issued_at:.2f} s old)")
        violations: list[str] = []
        a = a.copy()
        if abs(a[6]) > 1.0:
            violations.append("gripper command clipped to [-1, 1]")
            a[6] = float(np.clip(a[6], -1.0, 1.0))
        t = np.abs(a[:3]).max()
        if t > c.max_translation:
            violations.append(f"translation {t * 100:.1f} cm/step scaled to {c.max_translation * 100:.1f}")
            a[:3] *= c.max_translation / t
        r = np.abs(a[3:6]).max()
        if r > c.max_rotation:
            violations.append(f"rotation {r:.2f} rad/step scaled to {c.max_rotation:.2f}")
            a[3:6] *= c.max_rotation / r
        pos, rpy = state[:3], state[3:6]
        new_rpy = rpy + a[3:6]
        for i, axis in ((0, "roll"), (1, "pitch")):
            if abs(_wrap(new_rpy[i])) > c.max_tilt:
                violations.append(f"{axis} would exceed the {c.max_tilt:.2f} rad tilt limit")
                # aim at the limit; from beyond it (tracking error) this turns back toward it
                limit = np.sign(_wrap(new_rpy[i])) * c.max_tilt
                a[3 + i] = float(np.clip(_wrap(limit - rpy[i]), -c.max_rotation, c.max_rotation))
        # The target is clipped into the box; from outside it (after a manual jog), only moves
        # back toward it are allowed.
        target = pos + a[:3]
        lo, hi = _box(c, pos)
        clipped = np.clip(target, lo, hi)
        if not np.allclose(clipped, target, atol=1e-9):
            violations.append("target clipped to the workspace box")
            a[:3] = clipped - pos
        for zone in c.keep_out:
            if _segment_hits_box(pos, pos + a[:3], np.array(zone.min), np.array(zone.max)):
                violations.append(f"move into keep-out zone {zone.name!r} cancelled")
                a[:3] = 0.0
        if c.ik_check:
            err = self.twin.check(pos + a[:3], rpy + a[3:6], c.ik_tolerance, c.table_margin)
            if err:
                return self._held(err, violations)
        self.last_gripper = 1.0 if a[6] >= 0 else -1.0
        if violations:
            self.interventions += 1
        return ShieldResult(a, tuple(violations), held=False)

    def _held(self, reason: str, before: list[str] | None = None) -> ShieldResult:
        self.interventions += 1
        return ShieldResult(self.hold(), (*(before or []), reason), held=True)

    @property
    def twin(self) -> _KinematicTwin:
        if self._twin is None:
            self._twin = _KinematicTwin()
        return self._twin

    def envelope_violations(self, action, state) -> list[str]:
        """Independent audit of an action about to be applied (what a backend checks)."""
        c = self.config
        a = np.asarray(action, float).reshape(-1)
        s = np.asarray(state, float)
        if a.shape != (ACTION_DIM,) or not np.all(np.isfinite(a)):
            return ["malformed or non-finite action"]
        out = []
        if np.abs(a[:3]).max() > c.max_translation + 1e-6:
            out.append("translation limit")
        if np.abs(a[3:6]).max() > c.max_rotation + 1e-6:
            out.append("rotation limit")
        if abs(a[6]) > 1.0:
            out.append("gripper range")
        target = s[:3] + a[:3]
        lo, hi = _box(c, s[:3])
        if np.any((target < lo - 1e-6) | (target > hi + 1e-6)):
            out.append("workspace box")
        for zone in c.keep_out:
            if np.linalg.norm(a[:3]) > 1e-9 and _segment_hits_box(
                s[:3], target, np.array(zone.min), np.array(zone.max)
            ):
                out.append(f"keep-out {zone.name}")
        return out

    def close(self) -> None:
        if self._twin is not None:
            self._twin.close()
            self._twin = None


def _box(c: ShieldConfig, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis allowed target range: the workspace box, stretched to include ``pos``."""
    return np.minimum(np.array(c.workspace_min), pos), np.maximum(np.array(c.workspace_max), pos)


def _wrap(x: float) -> float:
    return (x + math.pi) % (2 * math.pi) - math.pi


def _segment_hits_box(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Slab test: does the segment a->b touch the axis-aligned box [lo, hi]?"""
    d = b - a
    t0, t1 = 0.0, 1.0
    for i in range(3):
        if abs(d[i]) < 1e-12:
            if a[i] < lo[i] or a[i] > hi[i]:
                return False
            continue
        u, v = (lo[i] - a[i]) / d[i], (hi[i] - a[i]) / d[i]
        t0, t1 = max(t0, min(u, v)), min(t1, max(u, v))
        if t0 > t1:
            return False
    return True


class _KinematicTwin:
    """A Panda in its own PyBullet client, used only for IK, joint limits and table clearance."""

    def __init__(self):
        self.cid = p.connect(p.DIRECT)
        self.robot = assets.load_panda(self.cid)
        self.table = p.createMultiBody(
            0,
            p.createCollisionShape(p.GEOM_BOX, halfExtents=[1.0, 1.0, 0.05], physicsClientId=self.cid),
            basePosition=[0.5, 0.0, -0.05],
            physicsClientId=self.cid,
        )
        self.lower = np.array(assets.ARM_LOWER)
        self.upper = np.array(assets.ARM_UPPER)
        self.fingers = set(assets.FINGER_JOINTS) | {assets.EE_LINK}
        self.q = np.array(assets.REST_POSE, float)

    def check(self, pos: np.ndarray, rpy: np.ndarray, tol: float, margin: float) -> str:
        """'' when the pose is reachable within joint limits and the arm clears the table."""
        orn = assets.link_orientation(rpy)
        # IK seeded from the last feasible solution, then from the rest pose: the twin does not
        # know the arm's exact joint state, so one miss is not proof of infeasibility.
        err = ""
        for seed, iters in ((self.q, 60), (np.array(assets.REST_POSE), 200)):
            q, reached = self._solve(seed, pos, orn, iters)
            if np.any(q < self.lower - 1e-3) or np.any(q > self.upper + 1e-3):
                # IK's null-space solution may stray past a limit; the clipped configuration
                # is what the arm would reach.
                q, reached = self._fk(np.clip(q, self.lower, self.upper))
            turn = 2 * math.acos(min(1.0, abs(float(np.dot(self._orn, orn)))))
            if np.linalg.norm(reached - pos) > tol:
                err = f"target out of reach (IK misses by {np.linalg.norm(reached - pos) * 100:.1f} cm)"
            elif turn > ORIENTATION_TOLERANCE:
                err = f"target orientation out of reach (IK misses by {turn:.2f} rad)"
            else:
                err = ""
                break
        if err:
            return err
        for c in p.getClosestPoints(self.robot, self.table, margin, physicsClientId=self.cid):
            if c[3] not in self.fingers and c[3] != -1:  # the base stands on the table
                return f"arm link {c[3]} would hit the table"
        self.q = q
        return ""

    def _solve(self, seed: np.ndarray, pos: np.ndarray, orn, iters: int) -> tuple[np.ndarray, np.ndarray]:
        for j, q in zip(assets.ARM_JOINTS, seed):
            p.resetJointState(self.robot, j, q, physicsClientId=self.cid)
        return self._fk(np.array(assets.panda_ik(self.cid, self.robot, pos, orn, iters, 1e-5)))

    def _fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        for j, qj in zip(assets.ARM_JOINTS, q):
            p.resetJointState(self.robot, j, qj, physicsClientId=self.cid)
        st = p.getLinkState(
            self.robot, assets.EE_LINK, computeForwardKinematics=True, physicsClientId=self.cid
        )
        self._orn = np.array(st[5])
        return q, np.array(st[4])

    def close(self) -> None:
        if p.isConnected(self.cid):
            p.disconnect(self.cid)
