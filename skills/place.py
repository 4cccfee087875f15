"""place: carry the held block to a bowl (in), a plate or block (on) or a table region (at),
lower it, let go and retreat upward."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from vla_agent.sim.catalog import (
    BLOCK_SIZE,
    BOWL_INNER_RADIUS,
    HELD_WIDTH,
    REGIONS,
    WALL,
    WORKSPACE_X,
    WORKSPACE_Y,
    ObjectSpec,
)
from vla_agent.sim.predicates import ObjectState
from vla_agent.skills.experts import SAFE_Z, ExpertPolicy, Waypoint, align_yaw, footprint
from vla_agent.skills.library import ArgType, SkillArg, SkillSpec, register_skill
from vla_agent.skills.symbolic import CAPACITY, MAX_TOWER, SymbolicState, needs_held, relation_word
from vla_agent.skills.tasks import PLACE_VARIANTS, TaskDraw, TaskParts
from vla_agent.types import GRIPPER_CLOSE, GRIPPER_OPEN, Subgoal

FINGER_AXIS_YAW = 0.0  # tool yaw that opens the fingers across the tool-to-offset direction
BOWL_SIDE_OFFSET = 0.032  # aim of a second block in a bowl, from the centre away from the first
RETREAT = 0.04  # metres the open hand must be above a placed block before the detector says done
VARIANTS = PLACE_VARIANTS
VERBS = frozenset(
    {
        "put",
        "place",
        "drop",
        "move",
        "set",
        "lay",
        "deposit",
        "stack",
        "bring",
        "carry",
        "transfer",
        "leave",
        "stick",
    }
)


def place_point(x: ExpertPolicy) -> tuple[np.ndarray, float | None]:
    """Where the held object's centre should be released, and the yaw to release at."""
    target = x.subgoal.args["target"]
    half = BLOCK_SIZE / 2
    if target in REGIONS:
        xy = x.once("spot", lambda: free_spot(x, target))
        return np.array([xy[0], xy[1], half + 0.012]), None
    t = x.obj(target)
    if t.kind == "bowl":
        return t.position + [*x.once("bowl_spot", lambda: _bowl_offset(x, t)), WALL + half + 0.025], None
    if t.kind == "plate":
        return t.position + [0.0, 0.0, WALL + half + 0.012], None
    return t.position + [0.0, 0.0, BLOCK_SIZE + 0.006], t.yaw


def _bowl_offset(x: ExpertPolicy, bowl: ObjectState) -> list[float]:
    """Horizontal aim inside a bowl: the centre when empty, else beside the blocks already in it."""
    held = x.subgoal.args["obj"]
    inside = [
        o.position[:2] - bowl.position[:2]
        for n, o in x.env.world_state().objects.items()
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


def release_at(x: ExpertPolicy, spot: np.ndarray, yaw: float | None) -> list[Waypoint]:
    """Carry the held object over ``spot`` (where its centre should end), lower, release and
    retreat. The horizontal offset of the object in the fingers is re-measured every step, the
    vertical one fixed at the start: the *object* lands on the spot wherever it sits in the hand."""
    o = x.obj(x.subgoal.args["obj"])
    tool = x.tool()
    offset = o.position - tool[:3]
    offset[2] = x.once("offset_z", lambda: [o.position[2] - tool[2]])[0]
    release = spot - offset
    x.goal = spot
    start = x.once("start", lambda: tool[:3])
    up = max(SAFE_Z, spot[2] - offset[2] + 0.08)
    retreat = x.once("retreat", lambda: release + [0.0, 0.0, 0.10])
    return [
        Waypoint(np.array([start[0], start[1], max(start[2], up)]), None, GRIPPER_CLOSE, tol=0.03),
        Waypoint(np.array([release[0], release[1], up]), yaw, GRIPPER_CLOSE, tol=0.015),
        Waypoint(release, yaw, GRIPPER_CLOSE, tol=0.006),
        Waypoint(release, None, GRIPPER_OPEN, tol=0.03, hold=4),
        Waypoint(retreat, None, GRIPPER_OPEN, tol=0.02),
    ]


def expert(x: ExpertPolicy) -> list[Waypoint]:
    o = x.obj(x.subgoal.args["obj"])
    tool = x.tool()
    spot, t_yaw = place_point(x)
    yaw = None
    if t_yaw is not None:
        rel = x.once("rel_yaw", lambda: [o.yaw - tool[5]])[0]
        yaw = align_yaw(t_yaw - rel, float(tool[5]))
    bowl_off = x.fixed.get("bowl_spot")
    if bowl_off is not None and np.linalg.norm(bowl_off) > 0:
        # Beside another block in a bowl: fingers open along the bowl's tangent, so that
        # neither finger presses on the other block or the wall.
        yaw = align_yaw(
            math.atan2(bowl_off[1], bowl_off[0]) + FINGER_AXIS_YAW, 0.0, math.pi
        )  # wrist mid-range
    return release_at(x, spot, yaw)


def free_spot(x: ExpertPolicy, region: str) -> np.ndarray:
    """The point of the region farthest from every other object (privileged, deterministic)."""
    (x0, x1), (y0, y1) = REGIONS[region]
    margin = 0.04
    # inside the region and the table's work area (where scenes place objects), 2 cm off its near edge
    xs = np.linspace(max(x0 + margin, round(WORKSPACE_X[0] + 0.02, 6)), min(x1 - margin, WORKSPACE_X[1]), 9)
    ys = np.linspace(max(y0 + margin, WORKSPACE_Y[0]), min(y1 - margin, WORKSPACE_Y[1]), 9)
    held = x.subgoal.args["obj"]
    others = [s for n, s in x.env.world_state().objects.items() if n != held]
    best, best_d = None, -1.0
    for px in xs:
        for py in ys:
            d = min(
                (math.hypot(px - s.position[0], py - s.position[1]) - footprint(s) for s in others),
                default=1.0,
            )
            if d > best_d:
                best, best_d = np.array([px, py]), d
    return best


def sample(d: TaskDraw) -> TaskParts:
    variant = str(d.rng.choice(d.variants or VARIANTS))
    objects = []
    if variant == "region":
        target = str(d.rng.choice(list(REGIONS)))
    else:
        t = ObjectSpec(kind=variant, color=d.colors.pop())
        objects.append(t)
        target = t.label
    from vla_agent.skills.pick import PICK

    setup = (PICK.subgoal({"obj": d.obj.label}, d.rng, d.split),)
    subgoal = PLACE.subgoal({"obj": d.obj.label, "target": target}, d.rng, d.split)
    return TaskParts(f"place/{variant}", tuple(objects), setup, subgoal)


def walk(st: SymbolicState, sg: Subgoal, kinds: Mapping[str, str], where: str) -> list[str]:
    obj, target = sg.args["obj"], sg.args["target"]
    errs = needs_held(st, obj, "place", where)
    if target == obj:
        errs.append(f"{where}: cannot place {obj} on itself")
    elif target in kinds:
        kind = kinds[target]
        if len(st.above(target)) >= CAPACITY[kind]:
            errs.append(
                f"{where}: {target} is full ({', '.join(st.above(target))} already {relation_word(kind)} it)"
            )
        if kind == "block" and st.tower_height(target) >= MAX_TOWER:
            errs.append(f"{where}: a tower taller than {MAX_TOWER} blocks is not stable")
        if target == st.holding:
            errs.append(f"{where}: {target} is held")
    if not errs:
        st.holding = None
        st.support[obj] = target
    return errs


def settled(obj, state) -> bool:
    """The hand open and clear above the placed block."""
    return state[6] > HELD_WIDTH[1] and state[2] >= obj.position[2] + BLOCK_SIZE / 2 + RETREAT


PLACE = SkillSpec(
    name="place",
    args=(
        SkillArg("obj", ArgType.OBJECT, "the held block"),
        SkillArg("target", ArgType.TARGET, "a bowl (in), a plate or block (on), or a table region (at)"),
    ),
    templates={
        "in": (
            "put the {obj} in the {target}",
            "place the {obj} into the {target}",
            "drop the {obj} in the {target}",
            "put it in the {target}",
            "place it inside the {target}",
            "put the {obj} inside the {target}",
            "transfer the {obj} into the {target}",
            "bring the {obj} to the {target}",
            "drop it into the {target}",
            "set the {obj} in the {target}",
            "move the {obj} into the {target}",
            "deposit the {obj} in the {target}",
        ),
        "on": (
            "put the {obj} on the {target}",
            "place the {obj} on top of the {target}",
            "stack the {obj} on the {target}",
            "put it on the {target}",
            "set the {obj} onto the {target}",
            "position the {obj} on the {target}",
            "put the {obj} on top of the {target}",
            "set it on the {target}",
            "bring the {obj} onto the {target}",
            "rest the {obj} on the {target}",
            "lay the {obj} on the {target}",
            "place it on top of the {target}",
        ),
        "at": (
            "put the {obj} on the {target} side of the table",
            "place the {obj} at the {target}",
            "move the {obj} to the {target} of the table",
            "put it at the {target}",
            "set the {obj} down on the {target} side",
            "bring the {obj} to the {target} side",
            "set it down at the {target}",
            "position the {obj} on the {target} of the table",
            "carry the {obj} over to the {target} side",
            "put the {obj} down at the {target} of the table",
            "drop the {obj} at the {target} of the table",
            "leave the {obj} on the {target} side",
        ),
    },
    preconditions=("holding({obj})", "clear({target})"),
    effects=("{relation}({obj}, {target})", "hand_empty()"),
    step_budget=80,
    doc="Carry the held object to the target, lower it, release it and retreat upward.",
    expert=expert,
    sample=sample,
    walk=walk,
    settled=settled,
    verbs=VERBS,
    variants=VARIANTS,
)

register_skill(PLACE)
