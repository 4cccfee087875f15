"""The skill library: each skill is one ``SkillSpec`` in one file (``skills/pick.py``, ...), with
its language (paraphrases, verbs), preconditions and effects (ground-truth predicates), step
budget, scripted expert, task sampler, symbolic plan check and what the success detector waits
for. Planners, plan validation, policies, benchmarks, data collection and voice all read the
registry ``SKILLS``; other packages add skills through the ``vla_agent.skills`` entry point group
(the entry point names a ``SkillSpec``).

Placeholders in templates and predicates: ``{obj}``, ``{target}``, ``{direction}``, and
``{relation}`` (``in`` for bowls, ``on`` for plates and blocks, ``at`` for table regions).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vla_agent.errors import ConfigError
from vla_agent.registry import registry
from vla_agent.sim.catalog import REGION_ALIASES, REGIONS, canonical_region
from vla_agent.sim.predicates import canonical_direction
from vla_agent.types import Predicate, Subgoal

if TYPE_CHECKING:  # the hooks' argument types; importing them here would be circular
    from vla_agent.skills.experts import ExpertPolicy, Waypoint
    from vla_agent.skills.symbolic import SymbolicState
    from vla_agent.skills.tasks import TaskDraw, TaskParts


class ArgType(enum.Enum):
    OBJECT = "object"  # a graspable object in the scene (blocks)
    THING = "thing"  # any object in the scene: a block, bowl or plate (not a region)
    TARGET = "target"  # a bowl, plate or block in the scene, or a table region
    DIRECTION = "direction"  # left / right / forward / backward


@dataclass(frozen=True)
class SkillArg:
    name: str
    type: ArgType
    doc: str


@dataclass(frozen=True)
class SkillSpec:
    """One skill. The last ``n_heldout`` templates of each relation are held out for evaluation;
    the others are for training (the first is what planners render)."""

    name: str
    args: tuple[SkillArg, ...]
    templates: Mapping[str, tuple[str, ...]]  # relation (or "") -> paraphrases
    preconditions: tuple[str, ...]
    effects: tuple[str, ...]
    step_budget: int
    doc: str
    n_heldout: int = 2
    # --- hooks: what the rest of vla-agent needs to know about the skill (all optional) ---
    # the scripted expert: waypoints for the tool, re-planned every step from the world state
    expert: Callable[[ExpertPolicy], list[Waypoint]] | None = None
    # benchmark and data-collection tasks: the objects, setup subgoals and subgoal of one draw
    sample: Callable[[TaskDraw], TaskParts] | None = None
    # a subgoal that depends on the built scene (e.g. a push direction with room): bind it there
    bind: Callable[[Any, str, Any, str], Subgoal] | None = None
    # plan validation: check the step against the symbolic state, then apply it; errors or []
    walk: Callable[[SymbolicState, Subgoal, Mapping[str, str], str], list[str]] | None = None
    # the success detector, once the effects hold: is the motion over (hand clear, block lifted)?
    settled: Callable[[Any, Any], bool] | None = None
    # language: verbs the offline planner and the voice grammar know for this skill, and
    # (skills the planner's core grammar does not cover) a pattern over the words after the verb
    # with named groups ``obj`` and ``target``/``direction``
    verbs: frozenset[str] = frozenset()
    phrase: str = ""
    variants: tuple[str, ...] = ()  # refinements reported by benchmarks (place: bowl, plate, ...)

    def relation(self, args: Mapping[str, str], kinds: Mapping[str, str] | None = None) -> str:
        """The spatial relation a ``place`` target implies: in (bowl), on (plate/block), at (region)."""
        target = args.get("target")
        if target is None:
            return ""
        if is_region(target):
            return "at"
        kind = (kinds or {}).get(target)
        if kind is None:
            words = target.split()
            kind = words[1] if len(words) > 1 else ""
        return "in" if kind == "bowl" else "on"

    def check_args(self, args: Mapping[str, str]) -> dict[str, str]:
        """Validate argument names and canonicalize directions/regions; raise ConfigError."""
        names = [a.name for a in self.args]
        extra = set(args) - set(names)
        if extra:
            raise ConfigError(f"skill {self.name!r} takes ({', '.join(names)}), not {sorted(extra)}")
        missing = [n for n in names if n not in args]
        if missing:
            raise ConfigError(f"skill {self.name!r} is missing argument(s) {missing}")
        out = dict(args)
        for a in self.args:
            if a.type is ArgType.DIRECTION:
                out[a.name] = canonical_direction(out[a.name])
            elif a.type is ArgType.TARGET and out[a.name].lower() in (
                *REGIONS,
                "center",
                "middle",
                "near",
                "far",
            ):
                out[a.name] = canonical_region(out[a.name])
        return out

    def paraphrases(
        self, args: Mapping[str, str], split: str = "all", kinds: Mapping[str, str] | None = None
    ) -> list[str]:
        """All instruction sentences for these args; ``split`` is "train", "heldout" or "all"."""
        rel = self.relation(args, kinds)
        templates = self.templates.get(rel) or self.templates[""]
        cut = len(templates) - self.n_heldout
        chosen = {"train": templates[:cut], "heldout": templates[cut:], "all": templates}[split]
        return [t.format(relation=rel, **args) for t in chosen]

    def instruction(
        self,
        args: Mapping[str, str],
        rng: np.random.Generator | None = None,
        split: str = "all",
        kinds: Mapping[str, str] | None = None,
    ) -> str:
        options = self.paraphrases(args, split, kinds)
        return options[int(rng.integers(len(options)))] if rng is not None else options[0]

    def subgoal(
        self,
        args: Mapping[str, str],
        rng: np.random.Generator | None = None,
        split: str = "all",
        kinds: Mapping[str, str] | None = None,
    ) -> Subgoal:
        args = self.check_args(args)
        return Subgoal(self.name, args, self.instruction(args, rng, split, kinds))

    def ground(
        self, which: str, args: Mapping[str, str], kinds: Mapping[str, str] | None = None
    ) -> list[Predicate]:
        """Preconditions (``which="pre"``) or effects (``"post"``) as ground predicates."""
        rel = self.relation(args, kinds)
        templates = self.preconditions if which == "pre" else self.effects
        return [Predicate.parse(t.format(relation=rel, **args)) for t in templates]


SKILLS = registry("skill", "vla_agent.skills")
"""Skill name -> its ``SkillSpec`` (built-ins register in their own files; plugins by entry point)."""


def register_skill(spec: SkillSpec) -> SkillSpec:
    """Add ``spec`` to the registry (what each skill file does at the end)."""
    SKILLS.register(spec.name, spec, help=spec.doc.split(". ")[0].rstrip("."))
    return spec


def _builtins() -> None:
    from vla_agent.skills import pick, place, place_beside, push  # noqa: F401 - register on import


def skill_names() -> list[str]:
    """Every registered skill, sorted."""
    _builtins()
    return SKILLS.names()


def get_skill(name: str) -> SkillSpec:
    """Look a skill up by name; unknown names raise ConfigError with suggestions."""
    _builtins()
    spec, _ = SKILLS.get(name)
    if not isinstance(spec, SkillSpec):
        raise ConfigError(f"skill {name!r} is not a SkillSpec (a plugin's entry point must name one)")
    return spec


def all_skills() -> list[SkillSpec]:
    return [get_skill(n) for n in skill_names()]


def is_region(name: str) -> bool:
    """A table region name or alias (left, centre, middle, far, ...)."""
    return name.strip().lower() in REGIONS or name.strip().lower() in REGION_ALIASES


def _template_regex(template: str) -> re.Pattern:
    rx = re.escape(template)
    for name in ("obj", "target", "direction"):
        rx = rx.replace(re.escape("{" + name + "}"), ".+?")
    return re.compile(rx)


def skill_of_instruction(instruction: str) -> str | None:
    """The skill whose paraphrase templates (training and held out) produce ``instruction``, or
    None when none or several do. Recorded datasets keep only the instruction per episode; this
    recovers the skill, e.g. to filter demonstrations by skill."""
    text = " ".join(instruction.lower().split())
    regexes = [(_template_regex(t), s.name) for s in all_skills() for ts in s.templates.values() for t in ts]
    names = {name for rx, name in regexes if rx.fullmatch(text)}
    return names.pop() if len(names) == 1 else None


def parse_instruction(
    instruction: str, objects: Iterable[str] | None = None
) -> tuple[str, dict[str, str]] | None:
    """The skill and arguments whose paraphrase template produces ``instruction`` (``{"obj":
    "red block", ...}``; an argument the sentence leaves out, such as the held object of "put it
    in the bowl", is absent), or None when no template or several different readings do. With
    ``objects`` (the scene's names) an object or target must be one of them (or a table region)."""
    text = " ".join(instruction.lower().split()).rstrip(".")
    any_text = ".+?"
    names = any_text
    if objects is not None:
        options = sorted(
            {o.lower() for o in objects} | set(REGIONS) | set(REGION_ALIASES), key=len, reverse=True
        )
        names = "|".join(re.escape(o) for o in options)
    readings = set()
    for s in all_skills():
        for ts in s.templates.values():
            for t in ts:
                rx = re.escape(t.lower())
                for name in ("obj", "target", "direction", "relation"):
                    group = names if name in ("obj", "target") else any_text
                    rx = rx.replace(re.escape("{" + name + "}"), f"(?P<{name}>{group})", 1)
                m = re.fullmatch(rx, text)
                if not m:
                    continue
                args = {k: v for k, v in m.groupdict().items() if k != "relation" and v is not None}
                try:
                    full = s.check_args({"obj": "", **args}) if "obj" not in args else s.check_args(args)
                except (ConfigError, KeyError, ValueError):
                    continue
                args = {k: v for k, v in full.items() if k in args}
                readings.add((s.name, tuple(sorted(args.items()))))
    if len(readings) != 1:
        return None
    name, args = readings.pop()
    return name, dict(args)
