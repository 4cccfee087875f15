"""The scripted expert (oracle): one engine that follows the waypoints each skill's ``expert``
hook (in the skill's own file) plans from the world state.

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
from vla_agent.sim.catalog import BLOCK_SIZE, BOWL_INNER_RADIUS, PLATE_RADIUS, WALL
from vla_agent.sim.env import TabletopEnv
from vla_agent.sim.predicates import ObjectState
from vla_agent.skills.library import get_skill
from vla_agent.types import GRIPPER_OPEN, Observation, Subgoal

SPEED = 0.035  # metres per step, under the env's 0.04 limit
TURN = 0.2  # radians per step
SAFE_Z = 0.16
PICK_LIFT = 0.15  # metres the expert lifts a picked block above its grasp point


@dataclass
class Waypoint:
    """Move the tool to ``pos`` (and ``yaw``) with the gripper state, within ``tol`` metres."""

    pos: np.ndarray
    yaw: float | None
    gripper: float
    tol: float = 0.008
    hold: int = 0  # extra steps to stay once reached (e.g. to let the fingers close)
    speed: float = SPEED  # metres per step at most on the way there


def align_yaw(target_yaw: float, current: float, period: float = math.pi / 2) -> float:
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
    """The scripted oracle; implements the ``SkillPolicy`` protocol (``reset``/``act``/``done``;
    ``skills`` None: any skill with an ``expert`` hook).

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
        self.skills: tuple[str, ...] | None = None

    def reset(self, subgoal: Subgoal) -> None:
        script = get_skill(subgoal.skill).expert  # unknown skills raise here, not mid-episode
        if script is None:
            raise ConfigError(f"skill {subgoal.skill!r} has no scripted expert (its SkillSpec.expert hook)")
        self.subgoal = subgoal
        self.phase = 0
        self.held = 0
        self.done = False
        self.fixed: dict[str, np.ndarray] = {}  # values a script computes once per subgoal
        self._plan: Callable[[], list[Waypoint]] = lambda: script(self)
        self._entered = False
        self.goal: np.ndarray | None = None  # where the object is headed (a training label)
        self.stray = (0.0, 0.0, 0.0, PICK_LIFT)  # yaw, along, height offsets and lift of a pick
        if self.slop is not None:
            sl, r = self.slop, self.rng
            self.stray = (
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

    # ------------------------------------------------------------------ for the skills' scripts
    def obj(self, name: str) -> ObjectState:
        return self.env.world_state().get(name)

    def once(self, key: str, fn: Callable[[], np.ndarray]) -> np.ndarray:
        """``fn()`` the first time ``key`` is asked for in this subgoal, the same value after."""
        if key not in self.fixed:
            self.fixed[key] = np.asarray(fn(), dtype=float)
        return self.fixed[key]

    def tool(self) -> np.ndarray:
        return self.env.robot_state()

    def holding(self, o: ObjectState) -> bool:
        """The object is off the table between closed fingers (e.g. a policy grasped it already)."""
        tool = self.tool()
        return (
            not self.env.gripper_open
            and o.position[2] > BLOCK_SIZE / 2 + 0.01
            and np.linalg.norm(o.position[:2] - tool[:2]) < 0.02
        )


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


def footprint(s: ObjectState) -> float:
    """Metres from an object's centre that another object must keep clear of."""
    return {"block": 0.03, "bowl": BOWL_INNER_RADIUS + WALL, "plate": PLATE_RADIUS}[s.kind]
