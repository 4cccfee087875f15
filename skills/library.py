"""The skill library: each skill is a typed spec with language paraphrases, preconditions and
effects (ground-truth predicates) and a step budget. Planners, policies and benchmarks all read it.

Placeholders in templates and predicates: ``{obj}``, ``{target}``, ``{direction}``, and
``{relation}`` (``in`` for bowls, ``on`` for plates and blocks, ``at`` for table regions).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vla_agent.errors import ConfigError, unknown
from vla_agent.sim.catalog import REGION_ALIASES, REGIONS, canonical_region
from vla_agent.sim.predicates import DIRECTIONS, canonical_direction
from vla_agent.types import Predicate, Subgoal


class ArgType(enum.Enum):
    OBJECT = "object"  # a graspable object in the scene (blocks)
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


def is_region(name: str) -> bool:
    """A table region name or alias (left, centre, middle, far, ...)."""
    return name.strip().lower() in REGIONS or name.strip().lower() in REGION_ALIASES


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
)

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
)

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
)

SKILLS: dict[str, SkillSpec] = {s.name: s for s in (PICK, PLACE, PUSH)}


def get_skill(name: str) -> SkillSpec:
    """Look a skill up by name; unknown names raise ConfigError with suggestions."""
    try:
        return SKILLS[name]
    except KeyError:
        raise unknown("skill", name, SKILLS) from None


def _template_regex(template: str) -> re.Pattern:
    rx = re.escape(template)
    for name in ("obj", "target", "direction"):
        rx = rx.replace(re.escape("{" + name + "}"), ".+?")
    return re.compile(rx)


_TEMPLATE_REGEXES = [
    (_template_regex(t), s.name) for s in SKILLS.values() for ts in s.templates.values() for t in ts
]


def skill_of_instruction(instruction: str) -> str | None:
    """The skill whose paraphrase templates (training and held out) produce ``instruction``, or
    None when none or several do. Recorded datasets keep only the instruction per episode; this
    recovers the skill, e.g. to filter demonstrations by skill."""
    text = " ".join(instruction.lower().split())
    names = {name for rx, name in _TEMPLATE_REGEXES if rx.fullmatch(text)}
    return names.pop() if len(names) == 1 else None
