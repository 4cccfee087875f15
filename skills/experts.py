"""Scripted experts (oracles), one per skill.

An expert reads the simulator's object poses (privileged information a VLA never gets) but acts
only through the same 7-D end-effector delta interface a VLA uses: no teleporting, no grasp
constraints. Each is a closed-loop phase machine, so its rollouts are valid demonstrations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vla_agent.errors import ConfigError
from vla_agent.sim.catalog import BLOCK_SIZE, BOWL_INNER_RADIUS, PLATE_RADIUS, REGIONS, WALL
from vla_agent.sim.env import TabletopEnv
from vla_agent.sim.predicates import DIRECTIONS, ObjectState
from vla_agent.skills.library import get_skill
from vla_agent.types import GRIPPER_CLOSE, GRIPPER_OPEN, Observation, Subgoal

SPEED = 0.035  # metres per step, under the env's 0.04 limit
PUSH_SPEED = 0.02  # metres per step while in contact: a faster push sends the block sliding on
TURN = 0.2  # radians per step
SAFE_Z = 0.16
PICK_LIFT = 0.15  # metres the expert lifts a picked block above its grasp point
FINGER_AXIS_YAW = 0.0  # tool yaw that opens the fingers across the tool-to-offset direction
BOWL_SIDE_OFFSET = 0.032  # aim of a second block in a bowl, from the centre away from the first


@dataclass
class Waypoint:
    """Move the tool to ``pos`` (and ``yaw``) with the gripper state, within ``tol`` metres."""

    pos: np.ndarray
    yaw: float | None
    gripper: float
    tol: float = 0.008
    hold: int = 0  # extra steps to stay once reached (e.g. to let the fingers close)
    speed: float = SPEED  # metres per step at most on the way there


def _align(target_yaw: float, current: float, period: float = math.pi / 2) -> float:
    """The yaw equivalent to ``target_yaw`` (mod ``period``) nearest to ``current``."""
    return current + ((target_yaw - current + period / 2) % period - period / 2)


@dataclass(frozen=True)
class GraspSlop:
    """How far a deliberately imperfect pick strays from the expert's clean one.

    Measured on a VLA's own picks (the weights shipped before these; 60 crowded place setups,
    seeds 30000-30059): the block ends up turned in the fingers (relative yaw p10/p90 -38/+38
    degrees against the expert's 0), off-centre along the fingers (std 3 mm), grasped 4 mm (std)
    higher or lower. Places recorded from such grasps teach placing from the states a chain
    really starts from, without a VLA to make them.
    """

    yaw: float = 0.75  # radians, uniform +-: the wrist's error against the block's faces
    # metres, normal (mean, std): the block off-centre along the fingers
    along: tuple[float, float] = (0.002, 0.003)
    height: tuple[float, float] = (-0.008, 0.005)  # metres, uniform: grasp point above the clean one
    lift: tuple[float, float] = (0.135, 0.16)  # metres, uniform: lift height above the grasp


class ExpertPolicy:
    """The scripted oracle; implements the ``SkillPolicy`` protocol (``reset``/``act``).

    With ``slop`` (and its ``rng``) every pick is deliberately imperfect (see ``GraspSlop``);
    the other skills are unchanged.
    """

    def __init__(
        self, env: TabletopEnv, slop: GraspSlop | None = None, rng: np.random.Generator | None = None
    ):
        if slop is not None and rng is None:
            raise ConfigError("a sloppy expert needs a random generator (rng)")
        self.env = env
        self.slop, self.rng = slop, rng
        self.subgoal: Subgoal | None = None
        self.done = False

    def reset(self, subgoal: Subgoal) -> None:
        get_skill(subgoal.skill)  # unknown skills raise here, not mid-episode
        self.subgoal = subgoal
        self.phase = 0
        self.held = 0
        self.done = False
        self._fixed: dict[str, np.ndarray] = {}
        self._plan: Callable[[], list[Waypoint]] = getattr(self, f"_plan_{subgoal.skill}")
        self._entered = False
        self.goal: np.ndarray | None = None  # where the object is headed (a training label)
        self._stray = (0.0, 0.0, 0.0, PICK_LIFT)  # yaw, along, height offsets and lift of a pick
        if self.slop is not None:
            sl, r = self.slop, self.rng
            self._stray = (
                r.uniform(-sl.yaw, sl.yaw),
                r.normal(*sl.along),
                r.uniform(*sl.height),
                r.uniform(*sl.lift),
            )

    # ------------------------------------------------------------------ acting
    def act(self, obs: Observation) -> np.ndarray:
        """One action as a (1, 7) chunk; a zero-motion hold once the skill's script is finished."""
        if self.subgoal is None:
            raise ConfigError("ExpertPolicy.act called before reset(subgoal)")
        state = obs["observation/state"]
        pos, yaw = np.asarray(state[:3], float), float(state[5])
        waypoints = self._plan()
        if not self._entered:
            self._entered = True
            self.phase = _entry_phase(waypoints, pos, yaw, self.env.gripper_open)
        while self.phase < len(waypoints):
            wp = waypoints[self.phase]
            err = wp.pos - pos
            yaw_err = 0.0 if wp.yaw is None else wp.yaw - yaw
            if np.linalg.norm(err) <= wp.tol and abs(yaw_err) <= 0.05:
                if self.held >= wp.hold:
                    self.phase += 1
                    self.held = 0
                    continue
                self.held += 1
            break
        if self.phase >= len(waypoints):
            self.done = True
            last = waypoints[-1].gripper if waypoints else GRIPPER_OPEN
            return np.array([[0, 0, 0, 0, 0, 0, last]], dtype=np.float64)
        step = np.clip(err, -wp.speed, wp.speed)
        rot = np.zeros(3)
        rot[:2] = np.clip(-np.asarray(state[3:5], float), -TURN, TURN)  # keep the gripper vertical
        rot[2] = np.clip(yaw_err, -TURN, TURN)
        return np.concatenate([step, rot, [wp.gripper]])[None, :]

    # ------------------------------------------------------------------ scripts
    def _obj(self, name: str) -> ObjectState:
        return self.env.world_state().get(name)

    def _once(self, key: str, fn: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self._fixed:
            self._fixed[key] = np.asarray(fn(), dtype=float)
        return self._fixed[key]

    def _tool(self) -> np.ndarray:
        return self.env.robot_state()

    def _holding(self, o: ObjectState) -> bool:
        """The object is off the table between closed fingers (e.g. a policy grasped it already)."""
        tool = self._tool()
        return (
            not self.env.gripper_open
            and o.position[2] > BLOCK_SIZE / 2 + 0.01
            and np.linalg.norm(o.position[:2] - tool[:2]) < 0.02
        )

    def _plan_pick(self) -> list[Waypoint]:
        o = self._obj(self.subgoal.args["obj"])
        d_yaw, along, height, lift_z = self._stray
        yaw = self._once("yaw", lambda: [_align(o.yaw, float(self._tool()[5])) + d_yaw])[0]
        grasp = o.position + np.array([-along * math.cos(yaw), -along * math.sin(yaw), height - 0.004])
        if self._once("held", lambda: [float(self._holding(o))])[0]:  # taken over mid-pick: lift
            tool = self._tool()
            lift = self._once("lift", lambda: [tool[0], tool[1], max(tool[2], BLOCK_SIZE / 2 + 0.146)])
            self.goal = lift
            return [Waypoint(lift, None, GRIPPER_CLOSE, tol=0.02)]
        lift = self._once("lift", lambda: grasp + [0.0, 0.0, lift_z])
        self.goal = lift
        return [
            Waypoint(grasp + [0, 0, 0.09], yaw, GRIPPER_OPEN, tol=0.012),
            Waypoint(grasp, yaw, GRIPPER_OPEN, tol=0.006),
            Waypoint(grasp, yaw, GRIPPER_CLOSE, tol=0.02, hold=5),
            Waypoint(lift, None, GRIPPER_CLOSE, tol=0.02),
        ]

    def _place_point(self) -> tuple[np.ndarray, float | None]:
        """Where the held object's centre should be released, and the yaw to release at."""
        target = self.subgoal.args["target"]
        half = BLOCK_SIZE / 2
        if target in REGIONS:
            xy = self._once("spot", lambda: self._free_spot(target))
            return np.array([xy[0], xy[1], half + 0.012]), None
        t = self._obj(target)
        if t.kind == "bowl":
            return t.position + [
                *self._once("bowl_spot", lambda: self._bowl_offset(t)),
                WALL + half + 0.025,
            ], None
        if t.kind == "plate":
            return t.position + [0.0, 0.0, WALL + half + 0.012], None
        return t.position + [0.0, 0.0, BLOCK_SIZE + 0.006], t.yaw

    def _bowl_offset(self, bowl: ObjectState) -> list[float]:
        """Horizontal aim inside a bowl: the centre when empty, else beside the blocks already in it."""
        held = self.subgoal.args["obj"]
        inside = [
            o.position[:2] - bowl.position[:2]
            for n, o in self.env.world_state().objects.items()
            if n not in (held, bowl.name)
            and o.kind == "block"
            and math.hypot(*(o.position[:2] - bowl.position[:2])) < BOWL_INNER_RADIUS
        ]
        if not inside:
            return [0.0, 0.0]
        away = -np.mean(inside, axis=0)
        if np.linalg.norm(away) < 1e-3:  # the other block sits at the centre: go toward the robot
            away = np.array([-1.0, 0.0])
        return list(away / np.linalg.norm(away) * BOWL_SIDE_OFFSET)

    def _plan_place(self) -> list[Waypoint]:
        o = self._obj(self.subgoal.args["obj"])
        tool = self._tool()
        # Aim the tool so that the *object* (wherever it sits in the fingers) lands on the spot:
        # the horizontal offset is re-measured every step, the vertical one fixed at the start.
        offset = o.position - tool[:3]
        offset[2] = self._once("offset_z", lambda: [o.position[2] - tool[2]])[0]
        spot, t_yaw = self._place_point()
        yaw = None
        if t_yaw is not None:
            rel = self._once("rel_yaw", lambda: [o.yaw - tool[5]])[0]
            yaw = _align(t_yaw - rel, float(tool[5]))
        bowl_off = self._fixed.get("bowl_spot")
        if bowl_off is not None and np.linalg.norm(bowl_off) > 0:
            # Beside another block in a bowl: fingers open along the bowl's tangent, so that
            # neither finger presses on the other block or the wall.
            yaw = _align(
                math.atan2(bowl_off[1], bowl_off[0]) + FINGER_AXIS_YAW, 0.0, math.pi
            )  # wrist mid-range
        release = spot - offset
        self.goal = spot
        start = self._once("start", lambda: tool[:3])
        up = max(SAFE_Z, spot[2] - offset[2] + 0.08)
        retreat = self._once("retreat", lambda: release + [0.0, 0.0, 0.10])
        return [
            Waypoint(np.array([start[0], start[1], max(start[2], up)]), None, GRIPPER_CLOSE, tol=0.03),
            Waypoint(np.array([release[0], release[1], up]), yaw, GRIPPER_CLOSE, tol=0.015),
            Waypoint(release, yaw, GRIPPER_CLOSE, tol=0.006),
            Waypoint(release, None, GRIPPER_OPEN, tol=0.03, hold=4),
            Waypoint(retreat, None, GRIPPER_OPEN, tol=0.02),
        ]

    def _free_spot(self, region: str) -> np.ndarray:
        """The point of the region farthest from every other object (privileged, deterministic)."""
        (x0, x1), (y0, y1) = REGIONS[region]
        margin = 0.04
        xs = np.linspace(max(x0 + margin, 0.36), min(x1 - margin, 0.70), 9)
        ys = np.linspace(max(y0 + margin, -0.26), min(y1 - margin, 0.26), 9)
        held = self.subgoal.args["obj"]
        others = [s for n, s in self.env.world_state().objects.items() if n != held]
        best, best_d = None, -1.0
        for x in xs:
            for y in ys:
                d = min(
                    (math.hypot(x - s.position[0], y - s.position[1]) - _radius(s) for s in others),
                    default=1.0,
                )
                if d > best_d:
                    best, best_d = np.array([x, y]), d
        return best

    def _plan_push(self) -> list[Waypoint]:
        """Push with the closed fingers at whatever yaw the wrist has: they push alike at any yaw,
        while a yaw target for a sideways push would be +-90 degrees, two equally near answers
        that a policy averages into no turn at all (and in chains, the subgoal after a turned
        push often stalled). In contact the tool moves at
        ``PUSH_SPEED``, so the block does not slide on far past the end of the push. The fingers
        open as the tool lifts away: above the pushed block the tool then looks as it does before
        the push except for the open fingers, and a policy that sees only the current frame can
        tell "descend and push" (closed) from "finished" (open); with closed fingers on both ways
        it averaged them into hovering above the block."""
        name = self.subgoal.args["obj"]
        d = np.array([*DIRECTIONS[self.subgoal.args["direction"]], 0.0])
        n = np.array([-d[1], d[0], 0.0])
        o = self._obj(name)
        start = self._once("start", lambda: o.position.copy())
        z = 0.016
        behind = start - d * (BLOCK_SIZE / 2 + 0.03)
        behind[2] = z
        # Track the object's sideways drift so the push stays centred on it.
        drift = float((o.position - start) @ n)
        end = start + d * 0.085 + n * drift
        self.goal = end
        end[2] = z
        pusher_goal = end - d * (BLOCK_SIZE / 2 + 0.01)
        return [
            Waypoint(behind + [0, 0, 0.10], None, GRIPPER_CLOSE, tol=0.012),
            Waypoint(behind, None, GRIPPER_CLOSE, tol=0.008),
            Waypoint(pusher_goal, None, GRIPPER_CLOSE, tol=0.01, speed=PUSH_SPEED),
            Waypoint(pusher_goal + [0, 0, 0.10] - d * 0.02, None, GRIPPER_OPEN, tol=0.02),
        ]


def _entry_phase(waypoints: list[Waypoint], pos: np.ndarray, yaw: float, gripper_open: bool) -> int:
    """Where to start a script: the last waypoint whose approach the tool is already on (near the
    segment from the waypoint before, gripper already as commanded there, and at its yaw where the
    segment keeps one), else the first. From a fresh start that is the first waypoint; taking over
    from a policy half-way (recovery data) it continues the motion instead of backing out of it,
    which would contradict what the demonstrations show in the same states."""
    for k in range(len(waypoints) - 1, 0, -1):
        a, b = waypoints[k - 1], waypoints[k]
        if (b.gripper > 0) != gripper_open:
            continue
        if a.yaw is not None and b.yaw is not None and abs(b.yaw - yaw) > 0.1:
            continue
        seg = b.pos - a.pos
        t = float(np.clip((pos - a.pos) @ seg / max(seg @ seg, 1e-9), 0.0, 1.0))
        if np.linalg.norm(a.pos + t * seg - pos) <= max(b.tol, 0.015):
            return k
    return 0


def _radius(s: ObjectState) -> float:
    return {"block": 0.03, "bowl": BOWL_INNER_RADIUS + WALL, "plate": PLATE_RADIUS}[s.kind]
