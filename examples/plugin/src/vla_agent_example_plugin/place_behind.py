"""place_behind: set the held block down on the table behind another object (farther from the
robot along +x), e.g. "put the red block behind the blue bowl". One file: its predicate, spec,
scripted expert, task sampler, plan check and phrase for the offline planner."""

from __future__ import annotations

import numpy as np

from vla_agent.sim.catalog import BLOCK_SIZE, KINDS, ObjectSpec
from vla_agent.sim.predicates import WorldState, holding, register_predicate
from vla_agent.skills.library import ArgType, SkillArg, SkillSpec
from vla_agent.skills.place import release_at, settled
from vla_agent.skills.symbolic import set_down_near
from vla_agent.skills.tasks import TaskDraw, TaskParts

GAP = 0.025  # metres of table the expert leaves between the two footprints


def behind(w: WorldState, obj: str, other: str) -> bool:
    """``obj`` rests on the table farther from the robot than ``other``, in line with it."""
    o, t = w.get(obj), w.get(other)
    if obj == other or holding(w, obj) or o.position[2] > BLOCK_SIZE / 2 + 0.004:
        return False
    reach = KINDS[o.kind].footprint_radius + KINDS[t.kind].footprint_radius
    dx, dy = o.position[:2] - t.position[:2]
    return reach - 0.015 <= dx <= reach + 0.08 and abs(dy) <= 0.04


register_predicate("behind", behind, relation=True)


def expert(x):
    t = x.obj(x.subgoal.args["target"])
    reach = KINDS["block"].footprint_radius + KINDS[t.kind].footprint_radius + GAP
    spot = x.once("spot", lambda: [t.position[0] + reach, t.position[1], BLOCK_SIZE / 2 + 0.012])
    return release_at(x, np.asarray(spot), None)


def sample(d: TaskDraw) -> TaskParts:
    from vla_agent.skills.library import get_skill

    target = ObjectSpec(kind=str(d.rng.choice(["block", "bowl", "plate"])), color=d.colors.pop())
    setup = (get_skill("pick").subgoal({"obj": d.obj.label}, d.rng, d.split),)
    subgoal = PLACE_BEHIND.subgoal({"obj": d.obj.label, "target": target.label}, d.rng, d.split)
    return TaskParts(f"place_behind/{target.kind}", (target,), setup, subgoal)


def walk(st, sg, kinds, where):
    return set_down_near(st, sg, where, "behind")


PLACE_BEHIND = SkillSpec(
    name="place_behind",
    args=(
        SkillArg("obj", ArgType.OBJECT, "the held block"),
        SkillArg("target", ArgType.THING, "the object to set it down behind (seen from the robot)"),
    ),
    templates={
        "": (
            "put the {obj} behind the {target}",
            "place the {obj} behind the {target}",
            "set the {obj} down behind the {target}",
            "put it behind the {target}",
            "move the {obj} behind the {target}",
            "leave the {obj} behind the {target}",
            "set it behind the {target}",
        )
    },
    preconditions=("holding({obj})",),
    effects=("behind({obj}, {target})", "hand_empty()"),
    step_budget=80,
    doc="Carry the held block behind another object (farther from the robot) and set it down.",
    expert=expert,
    sample=sample,
    walk=walk,
    settled=settled,
    verbs=frozenset({"put", "place", "set", "move", "leave"}),
    phrase=r"^(?P<obj>.*?)\s*\bbehind\b\s+(?P<target>.+)$",
)
