"""pick: grasp a block from above and lift it (the first half of every move of a block)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from vla_agent.sim.catalog import BLOCK_SIZE
from vla_agent.skills.experts import ExpertPolicy, Waypoint, align_yaw
from vla_agent.skills.library import ArgType, SkillArg, SkillSpec, register_skill
from vla_agent.skills.symbolic import SymbolicState, needs_empty_hand
from vla_agent.skills.tasks import TaskDraw, TaskParts
from vla_agent.types import GRIPPER_CLOSE, GRIPPER_OPEN, Subgoal

DONE_LIFT = 0.05  # metres the held block's bottom must clear the table before the detector says done
VERBS = frozenset({"pick", "grab", "grasp", "lift", "take", "get", "hold", "raise"})


def expert(x: ExpertPolicy) -> list[Waypoint]:
    o = x.obj(x.subgoal.args["obj"])
    d_yaw, along, height, lift_z = x.stray
    yaw = x.once("yaw", lambda: [align_yaw(o.yaw, float(x.tool()[5])) + d_yaw])[0]
    grasp = o.position + np.array([-along * math.cos(yaw), -along * math.sin(yaw), height - 0.004])
    if x.once("held", lambda: [float(x.holding(o))])[0]:  # taken over mid-pick: lift
        tool = x.tool()
        lift = x.once("lift", lambda: [tool[0], tool[1], max(tool[2], BLOCK_SIZE / 2 + 0.146)])
        x.goal = lift
        return [Waypoint(lift, None, GRIPPER_CLOSE, tol=0.02)]
    lift = x.once("lift", lambda: grasp + [0.0, 0.0, lift_z])
    x.goal = lift
    return [
        Waypoint(grasp + [0, 0, 0.09], yaw, GRIPPER_OPEN, tol=0.012),
        Waypoint(grasp, yaw, GRIPPER_OPEN, tol=0.006),
        Waypoint(grasp, yaw, GRIPPER_CLOSE, tol=0.02, hold=5),
        Waypoint(lift, None, GRIPPER_CLOSE, tol=0.02),
    ]


def sample(d: TaskDraw) -> TaskParts:
    return TaskParts("pick", subgoal=PICK.subgoal({"obj": d.obj.label}, d.rng, d.split))


def walk(st: SymbolicState, sg: Subgoal, kinds: Mapping[str, str], where: str) -> list[str]:
    obj = sg.args["obj"]
    errs = needs_empty_hand(st, f"pick {obj}", where)
    if st.above(obj):
        errs.append(f"{where}: cannot pick {obj}, {', '.join(st.above(obj))} is on it")
    if not errs:
        st.holding = obj
        st.support.pop(obj, None)
    return errs


def settled(obj, state) -> bool:
    """Lifted clear of the table (the next skill starts from a block in the air)."""
    return obj.position[2] - BLOCK_SIZE / 2 >= DONE_LIFT


PICK = SkillSpec(
    name="pick",
    args=(SkillArg("obj", ArgType.OBJECT, "the block to pick up"),),
    templates={
        "": (
            "pick up the {obj}",
            "grasp the {obj}",
            "grab the {obj}",
            "lift the {obj}",
            "take the {obj}",
            "lift up the {obj}",
            "fetch the {obj}",
            "pick up the {obj} from the table",
            "raise the {obj}",
            "seize the {obj}",
            "pick the {obj} up",
            "get the {obj}",
        )
    },
    preconditions=("hand_empty()", "clear({obj})"),
    effects=("holding({obj})",),
    step_budget=80,
    doc="Grasp an object from above and lift it about 15 cm.",
    expert=expert,
    sample=sample,
    walk=walk,
    settled=settled,
    verbs=VERBS,
)

register_skill(PICK)
