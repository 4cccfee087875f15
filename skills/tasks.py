"""Seeded single-skill tasks in randomized scenes with distractors, shared by the expert
benchmark, demonstration collection and policy evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_agent.errors import unknown
from vla_agent.sim.catalog import COLORS, REGIONS, WORKSPACE_X, WORKSPACE_Y, ObjectSpec, SceneSpec
from vla_agent.sim.env import TabletopEnv
from vla_agent.sim.predicates import DIRECTIONS
from vla_agent.skills.library import SKILLS, get_skill
from vla_agent.types import Subgoal

PLACE_VARIANTS = ("bowl", "plate", "block", "region")
PUSH_DISTANCE = 0.10


@dataclass(frozen=True)
class SkillTask:
    """One episode: the scene to build, the setup subgoals (e.g. a pick before a place) and the
    subgoal under test. ``variant`` refines the skill for reporting (e.g. place into a bowl)."""

    skill: str
    variant: str
    scene: SceneSpec
    setup: tuple[Subgoal, ...]
    subgoal: Subgoal | None  # None when it must be bound to the built scene (push direction)


def sample_task(
    rng: np.random.Generator,
    skill: str,
    split: str = "train",
    distractors: tuple[int, int] = (1, 3),
    place_variants: tuple[str, ...] = PLACE_VARIANTS,
    crowded: bool = False,
) -> SkillTask:
    """Draw a task for ``skill``; ``split`` picks training or held-out instruction paraphrases.
    ``place_variants`` is drawn from uniformly (repeat a variant to weight it). ``crowded``
    scenes look like those of ``bench chains``: 4-5 blocks in all and both a bowl and a plate."""
    if skill not in SKILLS:
        raise unknown("skill", skill, SKILLS)
    for v in place_variants:
        if v not in PLACE_VARIANTS:
            raise unknown("place variant", v, PLACE_VARIANTS)
    colors = [str(c) for c in rng.permutation(list(COLORS))]
    obj = ObjectSpec(kind="block", color=colors.pop())
    objects = [obj]
    variant = skill
    setup: tuple[Subgoal, ...] = ()
    subgoal: Subgoal | None = None
    if skill == "place":
        variant = str(rng.choice(place_variants))
        if variant == "region":
            target = str(rng.choice(list(REGIONS)))
        else:
            t = ObjectSpec(kind=variant, color=colors.pop())
            objects.append(t)
            target = t.label
        setup = (get_skill("pick").subgoal({"obj": obj.label}, rng, split),)
        subgoal = get_skill("place").subgoal({"obj": obj.label, "target": target}, rng, split)
        variant = f"place/{variant}"
    elif skill == "pick":
        subgoal = get_skill("pick").subgoal({"obj": obj.label}, rng, split)
    if crowded:
        n_blocks = int(rng.integers(4, 6)) - sum(o.kind == "block" for o in objects)
        kinds = ["block"] * n_blocks + [k for k in ("bowl", "plate") if all(o.kind != k for o in objects)]
    else:
        kinds = []
        for _ in range(int(rng.integers(distractors[0], distractors[1] + 1))):
            kind = "block" if rng.random() < 0.75 or variant == "push" else str(rng.choice(["bowl", "plate"]))
            if kind != "block" and any(k != "block" for k in kinds + [o.kind for o in objects[1:]]):
                kind = "block"
            kinds.append(kind)
    objects += [ObjectSpec(kind=kind, color=colors.pop()) for kind in kinds]
    order = [objects[0]] + [objects[i] for i in rng.permutation(range(1, len(objects)))]
    return SkillTask(skill, variant, SceneSpec(objects=tuple(order)), setup, subgoal)


def bind_push(env: TabletopEnv, obj: str, rng: np.random.Generator, split: str = "train") -> Subgoal:
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
    return get_skill("push").subgoal({"obj": obj, "direction": direction}, rng, split)


def _seg_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = float(np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


def episode_rng(seed: int, stream: int = 0) -> np.random.Generator:
    """An independent generator for episode ``seed`` (stream 0: task, 1: policy noise, ...)."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


def skill_cycle(i: int, skills: tuple[str, ...] | None = None) -> str:
    """The skill of the i-th episode: round robin over ``skills`` (default: the library)."""
    names = skills or sorted(SKILLS)
    return names[i % len(names)]
