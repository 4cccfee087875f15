"""Seeded single-skill tasks in randomized scenes with distractors, shared by the expert
benchmark, demonstration collection and policy evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_agent.errors import ConfigError, unknown
from vla_agent.sim.catalog import COLORS, ObjectSpec, SceneSpec
from vla_agent.sim.env import TabletopEnv
from vla_agent.skills.library import get_skill, skill_names
from vla_agent.types import Subgoal

PLACE_VARIANTS = ("bowl", "plate", "block", "region")


@dataclass(frozen=True)
class SkillTask:
    """One episode: the scene to build, the setup subgoals (e.g. a pick before a place) and the
    subgoal under test. ``variant`` refines the skill for reporting (e.g. place into a bowl)."""

    skill: str
    variant: str
    scene: SceneSpec
    setup: tuple[Subgoal, ...]
    subgoal: Subgoal | None  # None when it must be bound to the built scene (``bind_subgoal``)


@dataclass
class TaskDraw:
    """What a skill's ``sample`` hook draws from: the generator, the paraphrase split, the block
    the task is about, the colours still free (pop one per new object) and the variants asked for."""

    rng: np.random.Generator
    split: str
    obj: ObjectSpec
    colors: list[str]
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskParts:
    """A skill's part of a task: its variant, the objects it needs besides the block, the setup
    subgoals and the subgoal (None: bound in the built scene); ``blocks_only`` distractors."""

    variant: str
    objects: tuple[ObjectSpec, ...] = ()
    setup: tuple[Subgoal, ...] = ()
    subgoal: Subgoal | None = None
    blocks_only: bool = False


def sample_task(
    rng: np.random.Generator,
    skill: str,
    split: str = "train",
    distractors: tuple[int, int] = (1, 3),
    place_variants: tuple[str, ...] = PLACE_VARIANTS,
    crowded: bool = False,
) -> SkillTask:
    """Draw a task for ``skill`` (its ``sample`` hook); ``split`` picks training or held-out
    instruction paraphrases. ``place_variants`` is drawn from uniformly (repeat a variant to
    weight it). ``crowded`` scenes look like those of ``bench chains``: 4-5 blocks in all and both
    a bowl and a plate."""
    spec = get_skill(skill)
    if spec.sample is None:
        raise ConfigError(f"skill {skill!r} has no task sampler (its SkillSpec.sample hook)")
    for v in place_variants:
        if v not in PLACE_VARIANTS:
            raise unknown("place variant", v, PLACE_VARIANTS)
    colors = [str(c) for c in rng.permutation(list(COLORS))]
    obj = ObjectSpec(kind="block", color=colors.pop())
    parts = spec.sample(TaskDraw(rng, split, obj, colors, tuple(place_variants)))
    objects = [obj, *parts.objects]
    if crowded:
        n_blocks = int(rng.integers(4, 6)) - sum(o.kind == "block" for o in objects)
        kinds = ["block"] * n_blocks + [k for k in ("bowl", "plate") if all(o.kind != k for o in objects)]
    else:
        kinds = []
        for _ in range(int(rng.integers(distractors[0], distractors[1] + 1))):
            kind = "block" if rng.random() < 0.75 or parts.blocks_only else str(rng.choice(["bowl", "plate"]))
            if kind != "block" and any(k != "block" for k in kinds + [o.kind for o in objects[1:]]):
                kind = "block"
            kinds.append(kind)
    objects += [ObjectSpec(kind=kind, color=colors.pop()) for kind in kinds]
    order = [objects[0]] + [objects[i] for i in rng.permutation(range(1, len(objects)))]
    return SkillTask(skill, parts.variant, SceneSpec(objects=tuple(order)), parts.setup, parts.subgoal)


def bind_subgoal(
    env: TabletopEnv, task: SkillTask, rng: np.random.Generator, split: str = "train"
) -> Subgoal:
    """The task's subgoal, bound in the built scene when the skill needs that (a push's direction)."""
    if task.subgoal is not None:
        return task.subgoal
    bind = get_skill(task.skill).bind
    if bind is None:
        raise ConfigError(f"skill {task.skill!r} sampled no subgoal and has no bind hook")
    return bind(env, task.scene.names[0], rng, split)


def episode_rng(seed: int, stream: int = 0) -> np.random.Generator:
    """An independent generator for episode ``seed`` (stream 0: task, 1: policy noise, ...)."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


def skill_cycle(i: int, skills: tuple[str, ...] | None = None) -> str:
    """The skill of the i-th episode: round robin over ``skills`` (default: the library)."""
    names = skills or skill_names()
    return names[i % len(names)]
