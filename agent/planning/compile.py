"""From goals to a validated plan: each goal compiled against the scene's symbolic state (a goal
already true is skipped, a block already in the hand is not picked again), whole tasks ("clear
the table", "sort by colour", "stack them all") and towers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vla_agent.agent.planning.lexicon import COLOR_WORDS
from vla_agent.agent.planning.plan import (
    CAPACITY,
    MAX_TOWER,
    Plan,
    PlanError,
    PlanStep,
    SymbolicState,
    validate_plan,
)
from vla_agent.agent.planning.towers import ORDER_WORDS
from vla_agent.sim.catalog import REGIONS
from vla_agent.skills.library import get_skill
from vla_agent.types import Scene


@dataclass(frozen=True)
class Goal:
    """One thing the command asks for."""

    kind: str  # "place" (obj ends in/on/at target), "hold" (obj ends in the hand), "push", or a skill
    obj: str
    target: str = ""
    direction: str = ""


def tower_goals(blocks: list[str], scene: Scene) -> list[Goal]:
    """Stack ``blocks`` (in the given order, first at the bottom) into one tower."""
    blocks = [b for b in blocks if scene.kinds().get(b) == "block"]
    if len(blocks) < 2:
        raise PlanError(["a tower needs at least two blocks"])
    if len(blocks) > MAX_TOWER:
        raise PlanError([f"a tower of {len(blocks)} blocks is too tall; the limit is {MAX_TOWER}"])
    return [Goal("place", b, target=below) for below, b in zip(blocks, blocks[1:])]


def whole_task_goals(text: str, scene: Scene) -> list[Goal] | None:
    blocks = [o.name for o in scene.objects if o.kind == "block"]
    containers = [o for o in scene.objects if o.kind in ("bowl", "plate")]
    st = SymbolicState.from_scene(scene)
    if re.search(
        r"\b(clear|tidy|clean)\b( up)?( the)? (table|workspace|everything)"
        r"|\bclean up\b|\btidy up\b|\bput (everything|all) away\b",
        text,
    ):
        if not containers:
            raise PlanError(["clearing the table needs a bowl or plate to put the blocks in"])
        loose = [b for b in blocks if st.support.get(b) not in {c.name for c in containers}]
        room = {c.name: CAPACITY[c.kind] - len(st.above(c.name)) for c in containers}
        free = sum(max(0, r) for r in room.values())
        if free < len(loose):
            raise PlanError([f"{len(loose)} blocks to clear but room for {free} in {', '.join(room)}"])
        goals = []
        for b in loose:
            c = max(room, key=lambda k: room[k])  # the emptiest container next
            room[c] -= 1
            goals.append(Goal("place", b, target=c))
        return goals
    if re.match(r"^(?:sort|organi[sz]e|group)\b", text) and not re.search(r"\b(?:in|on|to)\b", text):
        goals = []
        for b in blocks:
            color = scene.get(b).color
            match = [c for c in containers if c.color == color]
            if match and st.support.get(b) != match[0].name:
                goals.append(Goal("place", b, target=match[0].name))
        if not goals:
            raise PlanError(["nothing to sort: no block has a bowl or plate of its colour"])
        return goals
    tower = re.sub(r"\b(in|as|to|into) a (single )?tower\b", " tower", text)
    if ORDER_WORDS.search(tower):
        return None  # the clause grammar reads the order
    if re.search(r"\b(stack|pile|build)\b.*\b(all|every|the blocks|tower)\b", tower) and not re.search(
        r"\b(on|in)\b", tower
    ):
        colors = [COLOR_WORDS[w] for w in text.split() if COLOR_WORDS.get(w)]
        chosen = [b for b in blocks if not colors or scene.get(b).color in colors]
        chosen = [b for b in chosen if st.support.get(b) not in {c.name for c in containers}]
        return tower_goals(chosen, scene)
    return None


def freest_region(scene: Scene, held: str | None = None) -> str:
    """The table region whose centre is farthest from every object seen (other than ``held``)."""
    points = [np.array(o.position[:2]) for o in scene.objects if o.position is not None and o.name != held]

    def room(name: str) -> float:
        (x0, x1), (y0, y1) = REGIONS[name]
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        return min((float(np.linalg.norm(centre - p)) for p in points), default=1.0)

    return max(REGIONS, key=room)


def _compile_skill_goal(g: Goal, st: SymbolicState, scene: Scene, steps: list[PlanStep]) -> None:
    """A goal of a skill outside the core grammar: picked first when the skill starts from the
    object in the hand; skipped when its effects already hold in the scene."""
    spec = get_skill(g.kind)
    names = {a.name for a in spec.args}
    args = {"obj": g.obj, "target": g.target, "direction": g.direction}
    args = {k: v for k, v in args.items() if k in names}
    relations = {str(r) for r in scene.relations}
    if st.holding != g.obj and all(str(p) in relations for p in spec.ground("post", args, scene.kinds())):
        return  # already true
    if "holding({obj})" in spec.preconditions and st.holding != g.obj:
        if st.holding is not None:
            raise PlanError([f"cannot pick {g.obj} while holding {st.holding}; say where to put it first"])
        steps.append(PlanStep(skill="pick", args={"obj": g.obj}))
        st.holding = g.obj
    elif "hand_empty()" in spec.preconditions and st.holding is not None:
        raise PlanError([f"cannot {g.kind} {g.obj} while holding {st.holding}; say where to put it first"])
    steps.append(PlanStep(skill=g.kind, args=args))
    if "hand_empty()" in spec.effects:
        st.holding = None
    st.support.pop(g.obj, None)


def compile_goals(
    goals: Sequence[Goal], scene: Scene, planner: str = "offline", skip_regions: bool = False
) -> Plan:
    """Subgoals achieving ``goals`` in order from the scene's symbolic state; validated.

    A goal already true is skipped, except placements in a table region (a block near a region's
    edge is still moved there as asked) unless ``skip_regions`` (when replanning)."""
    st = SymbolicState.from_scene(scene)
    steps: list[PlanStep] = []
    for g in goals:
        if g.kind == "push":
            if st.holding is not None:
                raise PlanError(
                    [f"cannot push {g.obj} while holding {st.holding}; say where to put it first"]
                )
            steps.append(PlanStep(skill="push", args={"obj": g.obj, "direction": g.direction}))
        elif g.kind == "hold":
            if st.holding == g.obj:
                continue
            if st.holding is not None:
                raise PlanError(
                    [f"cannot pick {g.obj} while holding {st.holding}; say where to put it first"]
                )
            steps.append(PlanStep(skill="pick", args={"obj": g.obj}))
            st.holding = g.obj
            st.support.pop(g.obj, None)
        elif g.kind != "place":
            _compile_skill_goal(g, st, scene, steps)
        else:
            there = st.support.get(g.obj) == g.target and st.holding != g.obj
            if there and (skip_regions or g.target not in REGIONS):
                continue  # already there
            if st.holding not in (None, g.obj):
                raise PlanError(
                    [f"cannot pick {g.obj} while holding {st.holding}; say where to put it first"]
                )
            if st.holding != g.obj:
                steps.append(PlanStep(skill="pick", args={"obj": g.obj}))
            steps.append(PlanStep(skill="place", args={"obj": g.obj, "target": g.target}))
            st.holding = None
            st.support[g.obj] = g.target
    if not steps:
        return Plan([], planner=planner)
    return validate_plan(steps, scene, planner=planner)
