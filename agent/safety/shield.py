"""The safety shield: every action passes here before it reaches a robot backend.

The envelope is a promise about where the arm *is*, not only about what it is told: every step
the shield checks the measured state and the predicted end pose as well as the command.

Checks, in order (each intervention is named in ``ShieldResult.violations``):

1. shape and finiteness (NaN/inf, huge integers -> hold: zero motion, gripper unchanged);
2. watchdog: a stale observation or a stale policy output -> hold;
3. tracking: the measured tool strayed more than ``max_tracking_error`` sideways from the last
   commanded move (drift the command did not ask for) -> hold (a safety event);
4. gripper command clipped to [-1, 1]; per-step translation and rotation limits (vector-scaled);
5. measured state outside the envelope (workspace box, tool tilt, joint limits; never a box
   that stretches to include the arm) -> a safety event: only the move straight back toward the
   envelope is sent, no turn of the wrist, the gripper as it is;
6. otherwise: tool tilt limit, then the target clipped into the workspace box with a braking
   allowance (a step toward a face covers at most ``1 / (1 + overshoot)`` of the distance left,
   as a robot slows near a soft axis limit), keep-out boxes;
7. a kinematic twin (``vla_agent.sim.twin``): inverse kinematics for the target pose, seeded from
   the measured joints when the robot reports them, so its answer is where the arm will go:
   reach error, joint limits, the predicted pose inside the box, the arm clear of the table;
   an infeasible target -> hold.

``envelope_violations`` (a command) and ``state_excursion`` (a measured state) are the
independent audit a backend runs on what it receives and where it is.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from vla_agent.agent.safety.envelope import (  # noqa: F401 - the envelope, re-exported with its shield
    Excursion,
    KeepOut,
    ShieldConfig,
    for_robot,
    gap_to_box,
    into_joint_margin,
    joint_angles,
    load_shield_config,
    segment_hits_box,
    state_excursion,
    wrap,
)
from vla_agent.sim.robots.base import RobotSpec, robot_spec
from vla_agent.sim.twin import KinematicTwin
from vla_agent.types import ACTION_DIM, JOINTS, STATE, Observation, ShieldResult

TIMESTAMP = "timestamp"  # observation key: the backend's clock at capture (``backend.clock()``)
# How far the tool point swings off its path per radian of turn while the joints move (measured
# in the simulator: up to ~3 cm for a 0.25 rad tilt step); the shield leaves room for it.
SWING_TILT = 0.12
SWING_YAW = 0.05
SLOW_TURN = 0.1  # rad per step: the fastest turn of a tool tilted past half its limit
SLOW_MOVE = 0.02  # m per step: the fastest move of a tool tilted past half its limit
NEAR_FLOOR_SPEED = 0.01  # m per step sideways at the floor of the box, plus the height above it
TILTED = 0.1  # rad of roll or pitch above which a hand near the table moves sideways slowly


class SafetyShield:
    """Filters actions into the envelope; holds on bad data and on unsafe measured states.
    Not thread-safe (one per executor). ``interventions`` counts changed or held actions,
    ``state_events`` the steps whose measured state was outside the envelope or off course."""

    def __init__(
        self,
        config: ShieldConfig | None = None,
        robot: RobotSpec | str | None = None,
        base: Sequence[float] | None = None,
    ):
        """The envelope ``config`` for the connected ``robot`` (a ``RobotSpec`` or a registered
        name; default the Panda): its twin, joint limits and, unless ``config`` sets one, its
        workspace box, in the frame whose origin is ``base`` from the robot's base (default: the
        simulated cell's mounting; a real arm's driver reports in its own base frame: the origin)."""
        self.robot = robot_spec(robot)
        self.base = base
        self.config = for_robot(config or ShieldConfig(), self.robot, base)
        self.last_gripper = 1.0
        self.interventions = 0
        self.state_events = 0
        self._twin: KinematicTwin | None = None
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # (measured pos, move sent) last step
        self._blocked: np.ndarray | None = None  # unit move that led to a safety event: not repeated

    def reset(self, obs: Observation) -> None:
        state = np.asarray(obs[STATE], float)
        self.last_gripper = 1.0 if state[6] > 0.06 else -1.0
        self._last = None
        self._blocked = None

    def hold(self) -> np.ndarray:
        return np.array([0, 0, 0, 0, 0, 0, self.last_gripper], float)

    def filter(
        self, action, obs: Observation, issued_at: float | None = None, now: float | None = None
    ) -> ShieldResult:
        """The action to send for ``action`` given ``obs``. ``issued_at`` (when the policy produced
        it) and ``now`` are read on the backend's clock, as ``obs[TIMESTAMP]`` is: simulated time in
        a dry run (a loaded machine never looks stale), wall-clock time on a real robot;
        ``now=None`` means ``time.monotonic()``."""
        c = self.config
        now = time.monotonic() if now is None else now
        try:
            a = np.asarray(action, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            return self._held("malformed action (not 7 finite numbers)")
        if a.shape != (ACTION_DIM,):
            return self._held(f"action has {a.size} values, expected {ACTION_DIM}")
        if not np.all(np.isfinite(a)):
            return self._held("non-finite action (NaN/inf)")
        try:
            state = np.asarray(obs.get(STATE, np.full(7, np.nan)), float).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            state = np.full(7, np.nan)
        if state.shape != (7,) or not np.all(np.isfinite(state)):
            return self._held("no valid robot state in the observation")
        pos, rpy = state[:3], state[3:6]
        stamp = obs.get(TIMESTAMP)
        if stamp is not None and now - float(stamp) > c.max_obs_age_s:
            return self._held(f"stale observation ({now - float(stamp):.2f} s old)", pos=pos)
        if issued_at is not None and now - issued_at > c.max_action_age_s:
            return self._held(f"stale policy output ({now - issued_at:.2f} s old)", pos=pos)
        stray = self._stray(pos)
        if stray > c.max_tracking_error:
            self._block_last_move()
            self.state_events += 1
            return self._held(
                f"tracking error: the tool strayed {stray * 100:.1f} cm from the commanded move",
                pos=pos,
                state_event=True,
            )
        joints = joint_angles(obs.get(JOINTS), self.robot.dof)
        violations: list[str] = []
        a = a.copy()
        if abs(a[6]) > 1.0:
            violations.append("gripper command clipped to [-1, 1]")
            a[6] = float(np.clip(a[6], -1.0, 1.0))
        refused = self._no_repeat(a, violations)
        t = np.abs(a[:3]).max()
        if t > c.max_translation:
            violations.append(
                f"translation {min(t, 1e6) * 100:.1f} cm/step scaled to {c.max_translation * 100:.1f}"
            )
            a[:3] *= c.max_translation / t
        r = np.abs(a[3:6]).max()
        if r > c.max_rotation:
            violations.append(f"rotation {min(r, 1e6):.2f} rad/step scaled to {c.max_rotation:.2f}")
            a[3:6] *= c.max_rotation / r
        excursion = state_excursion(c, state, joints, self.robot)
        if excursion.outside:
            lo, hi = np.array(c.workspace_min), np.array(c.workspace_max)
            out_axes = (pos < lo) | (pos > hi)  # past a face: block only the move through it
            self._block_last_move(out_axes if out_axes.any() else None)
            self.state_events += 1
            violations.append(f"measured state outside the envelope ({excursion.detail}): moving back")
            a = self._back_toward_envelope(state)
        else:
            self._limit_tilt(a, rpy, violations, low=pos[2] < c.low_z)
            self._limit_swing(a, pos, violations)
            self._limit_to_box(a, pos, violations, tilt=max(abs(wrap(rpy[0])), abs(wrap(rpy[1]))))
            for zone in c.keep_out:
                if segment_hits_box(pos, pos + a[:3], np.array(zone.min), np.array(zone.max)):
                    violations.append(f"move into keep-out zone {zone.name!r} cancelled")
                    a[:3] = 0.0
        if c.ik_check:
            if excursion.joint > 0 and joints is not None:
                a[3:6] = self._unwind(pos, rpy, joints, a)
            # the way back may miss by more (a tilted, stretched arm turns back clumsily): the
            # predicted pose is checked against the box below either way
            tol = (c.ik_tolerance if joints is None else c.predicted_miss) * (
                2.0 if excursion.outside else 1.0
            )
            check = self.twin.check(pos + a[:3], rpy + a[3:6], tol, c.table_margin, joints)
            problem = check.error
            if not problem and joints is not None:
                problem = into_joint_margin(self.robot, check.joints, joints, c.joint_margin, c.overshoot)
                for scale in (0.5, 0.25):  # a joint near its limit: the same move, slower
                    if not problem:
                        break
                    slower = np.concatenate([a[:6] * scale, a[6:]])
                    check = self.twin.check(pos + slower[:3], rpy + slower[3:6], tol, c.table_margin, joints)
                    if not check.error and not into_joint_margin(
                        self.robot, check.joints, joints, c.joint_margin, c.overshoot
                    ):
                        a, problem = slower, ""
                        violations.append(f"slowed to {scale:.2f}x near a joint limit")
            if problem:
                retreat = self._retreat(pos, rpy, joints, outside=excursion.outside)
                return self._held(problem, violations, pos=pos, state_event=excursion.outside, action=retreat)
            if not excursion.outside:
                ahead = state_excursion(c, np.concatenate([check.reached, check.reached_rpy, [0.0]]))
                if ahead.position > 1e-3 or ahead.tilt > c.tilt_tolerance / 2:
                    return self._held(
                        f"the arm would leave the envelope ({ahead.detail})", violations, pos=pos
                    )
        self.last_gripper = 1.0 if a[6] >= 0 else -1.0
        if violations:
            self.interventions += 1
        self._last = (pos.copy(), a[:3].copy())
        return ShieldResult(
            a, tuple(violations), held=False, state_event=excursion.outside, repeat_refused=refused
        )

    def _stray(self, pos: np.ndarray) -> float:
        """Distance of the measured tool from the last commanded move, lengthened by the braking
        allowance (lag and overshoot along the move are not straying)."""
        if self._last is None:
            return 0.0
        start, move = self._last
        end = start + (1.0 + self.config.overshoot) * move
        d = end - start
        n = float(np.dot(d, d))
        u = 0.0 if n < 1e-12 else float(np.clip(np.dot(pos - start, d) / n, 0.0, 1.0))
        return float(np.linalg.norm(pos - (start + u * d)))

    def _back_toward_envelope(self, state: np.ndarray) -> np.ndarray:
        """The move from an unsafe measured state: straight back toward the nearest point of the
        box (a millimetre inside), the tool tilted back toward its limit (lifting a centimetre),
        no wrist turn, the gripper as it is."""
        c = self.config
        pos, rpy = state[:3], state[3:6]
        lo, hi = np.array(c.workspace_min) + 1e-3, np.array(c.workspace_max) - 1e-3
        move = np.clip(pos, lo, hi) - pos
        t = np.abs(move).max()
        if t > c.max_translation:
            move *= c.max_translation / t
        turn = np.zeros(3)
        for i in (0, 1):
            tilt = wrap(rpy[i])
            if abs(tilt) > c.max_tilt:
                turn[i] = float(np.clip(np.sign(tilt) * c.max_tilt - tilt, -c.max_rotation, c.max_rotation))
        if np.any(turn) and pos[2] + 0.01 <= hi[2]:
            move[2] = max(move[2], 0.01)  # a tipped hand is usually pressed on something: lift off it
        return np.array([*move, *turn, self.last_gripper], float)

    def _retreat(
        self, pos: np.ndarray, rpy: np.ndarray, joints: np.ndarray | None, outside: bool
    ) -> np.ndarray | None:
        """When the arm is outside the envelope and cannot turn straight back, or when even holding
        still is a pose it cannot keep (stretched out at the edge of its reach): the first small
        move toward the middle of the box (with the tool turned back toward pointing down, or
        not turned, or straight up) that the twin accepts; None to hold."""
        c = self.config
        if joints is None or not c.ik_check:
            return None
        if not outside and not self.twin.check(pos, rpy, c.predicted_miss, c.table_margin, joints).error:
            return None  # holding is fine
        centre = (np.array(c.workspace_min) + np.array(c.workspace_max)) / 2
        d = centre - pos
        inward = d * min(1.0, 0.5 * c.max_translation / max(float(np.linalg.norm(d)), 1e-9))
        tilt = np.array([wrap(rpy[0]), wrap(rpy[1]), 0.0])
        upright, nudge = -np.clip(tilt, -0.1, 0.1), -np.clip(tilt, -0.03, 0.03)
        up, still, none = np.array([0.0, 0.0, 0.5 * c.max_translation]), np.zeros(3), np.zeros(3)
        for move, turn in ((inward, upright), (inward, nudge), (still, nudge), (inward, none), (up, none)):
            check = self.twin.check(pos + move, rpy + turn, c.predicted_miss, c.table_margin, joints)
            if not check.error and not into_joint_margin(self.robot, check.joints, joints, c.joint_margin):
                return np.array([*move, *turn, self.last_gripper], float)
        return None

    def _unwind(self, pos, rpy, joints: np.ndarray, a: np.ndarray) -> np.ndarray:
        """From past a joint limit: the wrist turn (of a few candidates) whose solution brings the
        joints back furthest; the twin predicts each."""
        lower, upper = self.robot.limits()

        def past(q: np.ndarray) -> float:
            return float(max(np.max(lower - q), np.max(q - upper), 0.0))

        best, best_past = a[3:6].copy(), past(joints)
        for yaw in (-0.1, 0.1, -0.2, 0.2):
            turn = np.array([a[3], a[4], yaw])
            q = self.twin.check(pos + a[:3], rpy + turn, 1.0, -1.0, joints).joints
            if past(q) < best_past - 1e-4:
                best, best_past = turn, past(q)
        return best

    def _block_last_move(self, axes: np.ndarray | None = None) -> None:
        """A safety event: the move that led to it (into a contact, off course; through a face of
        the box: only its part across that face) is not repeated."""
        if self._last is None:
            return
        move = self._last[1] * (axes if axes is not None else 1.0)
        if np.linalg.norm(move) > 1e-6:
            self._blocked = move / np.linalg.norm(move)

    def _no_repeat(self, a: np.ndarray, violations: list[str]) -> bool:
        """After a safety event, drop the part of each move along the direction that caused it,
        until a move goes the other way (the policy backs off) or the shield is reset; True when
        a part was dropped."""
        if self._blocked is None:
            return False
        along = float(np.dot(a[:3], self._blocked))
        if along < -1e-4:
            self._blocked = None
        elif along > 1e-6:
            a[:3] -= along * self._blocked
            violations.append("the move that led to a safety event is not repeated")
            return True
        return False

    def _limit_tilt(self, a: np.ndarray, rpy: np.ndarray, violations: list[str], low: bool = False) -> None:
        """Keep roll and pitch within ``max_tilt`` (less near the table, where contacts tip the
        hand), braking as they near it (like the box)."""
        c = self.config
        limit = c.max_tilt - c.tilt_tolerance if low else c.max_tilt
        tilt = max(abs(wrap(rpy[0])), abs(wrap(rpy[1])))
        turn = float(np.abs(a[3:6]).max())
        if tilt > limit / 2 and turn > SLOW_TURN:  # turning fast while tilted overshoots the tilt
            a[3:6] *= SLOW_TURN / turn
            violations.append(f"turn slowed to {SLOW_TURN:.2f} rad/step while tilted")
        move = float(np.abs(a[:3]).max())
        if tilt > limit / 2 and move > SLOW_MOVE:  # so does a fast move swinging the tilted hand
            a[:3] *= SLOW_MOVE / move
            violations.append(f"move slowed to {SLOW_MOVE * 100:.0f} cm/step while tilted")
        for i, axis in ((0, "roll"), (1, "pitch")):
            now, new = wrap(rpy[i]), wrap(rpy[i] + a[3 + i])
            if abs(now) > limit:  # tilted more than the hand may be this low: turn back toward it
                back = float(np.clip(np.sign(now) * limit - now, -c.max_rotation, c.max_rotation))
                if abs(new) > abs(now + back):
                    a[3 + i] = back
                    a[2] = max(a[2], 0.01)  # and lift off whatever tipped the hand
                    violations.append(f"{axis} turned back toward {limit:.2f} rad near the table")
                continue
            reach = abs(now) + max(limit - abs(now), 0.0) / (1.0 + c.overshoot)
            if abs(new) > reach and abs(new) > abs(now):
                if abs(new) > c.max_tilt:
                    violations.append(f"{axis} would exceed the {c.max_tilt:.2f} rad tilt limit")
                a[3 + i] = float(np.clip(wrap(np.sign(new) * reach - now), -c.max_rotation, c.max_rotation))

    def _limit_swing(self, a: np.ndarray, pos: np.ndarray, violations: list[str]) -> None:
        """Near a face of the box, turn the tool slowly: while the joints turn it, the tool point
        swings off its path (about ``SWING_TILT`` metres per radian of roll or pitch,
        ``SWING_YAW`` of yaw), and that swing must fit in half the gap left."""
        c = self.config
        gap = gap_to_box(c, pos)
        swing = SWING_TILT * np.abs(a[3:5]).max() + SWING_YAW * abs(a[5])
        room = gap / 2 + c.state_tolerance / 2
        if swing > room:
            a[3:6] *= room / swing
            violations.append(f"turn slowed {gap * 100:.1f} cm from the workspace boundary")

    def _limit_to_box(self, a: np.ndarray, pos: np.ndarray, violations: list[str], tilt: float = 0.0) -> None:
        """Clip the target into the box (never stretched), braking near its faces."""
        c = self.config
        lo, hi = np.array(c.workspace_min), np.array(c.workspace_max)
        move = a[:3]
        # a tilted hand dragged along the table digs its low edge in and tips down into it: slow
        # its sideways moves near the floor (an upright hand, as in a push, is not slowed)
        side = float(np.abs(move[:2]).max())
        side_limit = NEAR_FLOOR_SPEED + max(pos[2] - lo[2], 0.0)
        if tilt > TILTED and side > side_limit:
            move[:2] *= side_limit / side
            violations.append(f"sideways move slowed to {side_limit * 100:.1f} cm/step near the table")
        room_down = np.maximum(pos - lo, 0.0) / (1.0 + c.overshoot)
        room_up = np.maximum(hi - pos, 0.0) / (1.0 + c.overshoot)
        limited = np.clip(move, -room_down, room_up)
        if not np.allclose(limited, move, atol=1e-9):
            violations.append("target clipped to the workspace box")
            a[:3] = limited

    def _held(
        self,
        reason: str,
        before: list[str] | None = None,
        pos: np.ndarray | None = None,
        state_event: bool = False,
        action: np.ndarray | None = None,
    ) -> ShieldResult:
        """Replace the action by a hold (or by ``action``, a retreat the twin checked)."""
        self.interventions += 1
        sent = self.hold() if action is None else action
        if action is not None:
            reason = f"{reason}; retreating toward the middle of the workspace"
        self._last = None if pos is None else (pos.copy(), sent[:3].copy())
        return ShieldResult(sent, (*(before or []), reason), held=True, state_event=state_event)

    @property
    def twin(self) -> KinematicTwin:
        if self._twin is None:
            self._twin = KinematicTwin(self.robot, self.base)
        return self._twin

    def envelope_violations(self, action, state) -> list[str]:
        """Independent audit of an action about to be applied (what a backend checks): the
        per-step limits, and a target inside the box, or at least no farther out than the arm
        is now on any axis (the way back from outside)."""
        c = self.config
        try:
            a = np.asarray(action, float).reshape(-1)
            s = np.asarray(state, float).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            return ["malformed action"]
        if a.shape != (ACTION_DIM,) or not np.all(np.isfinite(a)):
            return ["malformed or non-finite action"]
        if s.shape != (7,) or not np.all(np.isfinite(s)):
            return ["no valid robot state"]
        out = []
        if np.abs(a[:3]).max() > c.max_translation + 1e-6:
            out.append("translation limit")
        if np.abs(a[3:6]).max() > c.max_rotation + 1e-6:
            out.append("rotation limit")
        if abs(a[6]) > 1.0:
            out.append("gripper range")
        target = s[:3] + a[:3]
        lo, hi = np.array(c.workspace_min), np.array(c.workspace_max)
        out_now = np.maximum(lo - s[:3], 0) + np.maximum(s[:3] - hi, 0)
        out_then = np.maximum(lo - target, 0) + np.maximum(target - hi, 0)
        if np.any(out_then > out_now + 1e-6):
            out.append("workspace box")
        for zone in c.keep_out:
            if np.linalg.norm(a[:3]) > 1e-9 and segment_hits_box(
                s[:3], target, np.array(zone.min), np.array(zone.max)
            ):
                out.append(f"keep-out {zone.name}")
        return out

    def close(self) -> None:
        if self._twin is not None:
            self._twin.close()
            self._twin = None
