"""push: with the gripper closed, push a block about 10 cm along a direction on the table."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vla_agent.sim.catalog import BLOCK_SIZE, WORKSPACE_X, WORKSPACE_Y
from vla_agent.sim.predicates import DIRECTIONS
from vla_agent.skills.experts import ExpertPolicy, Waypoint
from vla_agent.skills.library import ArgType, SkillArg, SkillSpec, register_skill
from vla_agent.skills.symbolic import SymbolicState, needs_empty_hand, relation_word
from vla_agent.skills.tasks import TaskDraw, TaskParts
from vla_agent.types import GRIPPER_CLOSE, GRIPPER_OPEN, Subgoal

PUSH_SPEED = 0.02  # metres per step while in contact: a faster push sends the block sliding on
PUSH_DISTANCE = 0.10
VERBS = frozenset({"push", "slide", "shove", "nudge", "shift", "poke"})


def expert(x: ExpertPolicy) -> list[Waypoint]:
    """Push with the closed fingers at whatever yaw the wrist has: they push alike at any yaw,
    while a yaw target for a sideways push would be +-90 degrees, two equally near answers
    that a policy averages into no turn at all (and in chains, the subgoal after a turned
    push often stalled). In contact the tool moves at
    ``PUSH_SPEED``, so the block does not slide on far past the end of the push. The fingers
    open as the tool lifts away: above the pushed block the tool then looks as it does before
    the push except for the open fingers, and a policy that sees only the current frame can
    tell "descend and push" (closed) from "finished" (open); with closed fingers on both ways
    it averaged them into hovering above the block."""
    name = x.subgoal.args["obj"]
    d = np.array([*DIRECTIONS[x.subgoal.args["direction"]], 0.0])
    n = np.array([-d[1], d[0], 0.0])
    o = x.obj(name)
    start = x.once("start", lambda: o.position.copy())
    z = 0.016
    behind = start - d * (BLOCK_SIZE / 2 + 0.03)
    behind[2] = z
    # Track the object's sideways drift so the push stays centred on it.
    drift = float((o.position - start) @ n)
    end = start + d * 0.085 + n * drift
    x.goal = end
    end[2] = z
    pusher_goal = end - d * (BLOCK_SIZE / 2 + 0.01)
    return [
        Waypoint(behind + [0, 0, 0.10], None, GRIPPER_CLOSE, tol=0.012),
        Waypoint(behind, None, GRIPPER_CLOSE, tol=0.008),
        Waypoint(pusher_goal, None, GRIPPER_CLOSE, tol=0.01, speed=PUSH_SPEED),
        Waypoint(pusher_goal + [0, 0, 0.10] - d * 0.02, None, GRIPPER_OPEN, tol=0.02),
    ]


def sample(d: TaskDraw) -> TaskParts:
    # the direction depends on where the block lands: bound in the built scene (``bind``)
    return TaskParts("push", blocks_only=True)


def bind(env, obj: str, rng: np.random.Generator, split: str = "train") -> Subgoal:
    """Choose a push direction whose path stays on the workspace and clear of other objects."""
    w = env.world_state()
    pos = w.get(obj).position[:2]
    scores = {}
    for name, d in DIRECTIONS.items():
        d = np.array(d)
        end = pos + d * (PUSH_DISTANCE + 0.02)
        behind = pos - d * 0.07
        inside = all(
            WORKSPACE_X[0] - 0.06 <= p[0] <= WORKSPACE_X[1] + 0.02
            and WORKSPACE_Y[0] - 0.02 <= p[1] <= WORKSPACE_Y[1] + 0.02
            for p in (end, behind)
        )
        clearance = min(
            (_seg_dist(o.position[:2], behind, end) for n, o in w.objects.items() if n != obj), default=1.0
        )
        scores[name] = (inside, clearance)
    ok = [n for n, (inside, c) in scores.items() if inside and c > 0.09]
    # Prefer a clear path; otherwise the direction with the most room.
    direction = str(rng.choice(ok)) if ok else max(scores, key=lambda n: scores[n])
    return PUSH.subgoal({"obj": obj, "direction": direction}, rng, split)


def _seg_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = float(np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


def walk(st: SymbolicState, sg: Subgoal, kinds: Mapping[str, str], where: str) -> list[str]:
    obj = sg.args["obj"]
    errs = needs_empty_hand(st, "push", where)
    if obj in st.support and st.support[obj] in kinds:
        errs.append(
            f"{where}: cannot push {obj}, it is {relation_word(kinds[st.support[obj]])} {st.support[obj]}"
        )
    if st.above(obj):
        errs.append(f"{where}: cannot push {obj}, {', '.join(st.above(obj))} is on it")
    return errs


def settled(obj, state) -> bool:
    """The hand away from the pushed block (beside it or above it)."""
    return float(np.linalg.norm(state[:2] - obj.position[:2])) > 0.05 or state[2] > obj.position[2] + 0.05


PUSH = SkillSpec(
    name="push",
    args=(
        SkillArg("obj", ArgType.OBJECT, "the block to push"),
        SkillArg("direction", ArgType.DIRECTION, f"one of {', '.join(DIRECTIONS)}"),
    ),
    templates={
        "": (
            "push the {obj} {direction}",
            "slide the {obj} {direction}",
            "push the {obj} to the {direction}",
            "shove the {obj} {direction}",
            "move the {obj} {direction} by pushing it",
            "push the {obj} towards the {direction}",
            "slide it {direction}",
            "shove it to the {direction}",
            "press the {obj} {direction}",
            "push {direction} the {obj}",
            "nudge the {obj} {direction}",
            "give the {obj} a push {direction}",
        )
    },
    preconditions=("hand_empty()",),
    effects=("moved({obj}, {direction})",),
    step_budget=80,
    doc="With the gripper closed, push the object about 10 cm along the direction on the table; "
    "open the fingers while lifting away.",
    expert=expert,
    sample=sample,
    bind=bind,
    walk=walk,
    settled=settled,
    verbs=VERBS,
)

register_skill(PUSH)
