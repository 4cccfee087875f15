"""The plan schema and its validation.

A plan is data (from the offline planner or an LLM): ordered subgoals, each a skill with typed
arguments naming scene objects. Before anything moves, ``validate_plan`` checks every step against
the skill library and the scene, then walks the plan symbolically (what is held, what stands on
what) so that "place what is not held" or "stack on a covered block" fail with a message saying
which step and why. The sentence sent to the VLA is rendered from the skill's own template, never
taken verbatim from an LLM.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from vla_agent.errors import ConfigError, VlaAgentError, suggest
from vla_agent.sim.catalog import KIND_ALIASES, canonical_region
from vla_agent.skills.library import ArgType, get_skill, is_region, skill_names
from vla_agent.skills.symbolic import CAPACITY, MAX_TOWER, SymbolicState  # noqa: F401 - re-exported
from vla_agent.types import Scene, Subgoal


class PlanError(VlaAgentError, ValueError):
    """A plan that must not run; ``problems`` lists every reason, one per line."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class Ambiguous(PlanError):
    """The command names more than one object where it means one: a question, not a refusal."""

    def __init__(self, about: str, options: Sequence[str]):
        self.about, self.options = about, list(options)
        *first, last = self.options
        self.question = f"which one do you mean by {about.strip()!r}: {', '.join(first)} or {last}?"
        super().__init__([self.question])


def resolve_answer(answer: str, options: Sequence[str]) -> str | None:
    """The option an answer picks: its number ("2", "the second"), its name, or the one option
    whose colour or kind the answer says ("the red one"); None when it picks none or several."""
    text = " ".join(answer.lower().replace("the ", " ").split())
    ordinals = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1": 1, "2": 2, "3": 3, "4": 4}
    for word, k in ordinals.items():
        if re.fullmatch(rf"{word}(?: one)?", text) and k <= len(options):
            return options[k - 1]
    exact = [o for o in options if o.lower() == text]
    if exact:
        return exact[0]
    words = set(text.split())
    hits = [o for o in options if words & set(o.lower().split()) - {"block", "bowl", "plate", "one"}]
    return hits[0] if len(hits) == 1 else None


class PlanStep(BaseModel):
    """One subgoal as a planner writes it."""

    model_config = ConfigDict(extra="forbid")

    skill: str = Field(description="one of the skill library's names: pick, place, push")
    args: dict[str, str] = Field(description="argument name -> scene object name, region or direction")
    instruction: str = Field("", description="a short imperative sentence (re-rendered from the template)")


class PlanOutput(BaseModel):
    """What a planner answers: subgoals, or a refusal with its reason."""

    model_config = ConfigDict(extra="forbid")

    subgoals: list[PlanStep] = Field(default_factory=list)
    refused: str | None = Field(None, description="why the command cannot or must not be done")
    question: str | None = Field(None, description="asked instead of guessing when the command is ambiguous")
    options: list[str] = Field(
        default_factory=list, description="the scene objects the question chooses among"
    )


@dataclass
class Plan:
    """A validated plan: subgoals ready for the executor, or a refusal."""

    subgoals: list[Subgoal] = field(default_factory=list)
    refused: str | None = None
    planner: str = ""  # the planner that produced it ("offline" when the LLM fell back)
    latency_ms: float = 0.0  # what the user waited, a failed LLM request included
    fallback: str | None = None  # why the asked-for planner did not produce it (None: it did)
    question: str | None = None  # asked instead of guessing (an ambiguous command), with options
    options: list[str] = field(default_factory=list)
    about: str = ""  # the words of the command the question is about
    predicted: dict | None = None  # predicted success from experience (agent.core.experience)

    def to_json(self) -> dict:
        if self.question is not None:
            return {"question": self.question, "options": list(self.options), "about": self.about}
        if self.refused is not None:
            return {"refused": self.refused}
        out = {
            "subgoals": [
                {"skill": s.skill, "args": dict(s.args), "instruction": s.instruction} for s in self.subgoals
            ]
        }
        return {**out, "predicted_success": self.predicted} if self.predicted is not None else out

    def provenance(self) -> dict:
        """Who planned it, whether it fell back and why, and the wait: for JSON outputs."""
        out = {"planner": self.planner, "plan_latency_ms": round(self.latency_ms, 3)}
        return {**out, "fallback": self.fallback} if self.fallback else out


def resolve_name(name: str, scene: Scene) -> str | None:
    """Match an object name to the scene, tolerating case, spacing and kind synonyms (cube)."""
    norm = " ".join(name.lower().replace("_", " ").split()).removeprefix("the ")
    names = {n.lower(): n for n in scene.names}
    if norm in names:
        return names[norm]
    words = norm.split()
    words = [KIND_ALIASES.get(w, KIND_ALIASES.get(w.rstrip("s"), w)) for w in words]
    return names.get(" ".join(words))


def validate_plan(steps: Sequence[PlanStep | Subgoal], scene: Scene, planner: str = "") -> Plan:
    """Ground, check and symbolically walk ``steps``; raise PlanError listing every problem."""
    problems: list[str] = []
    kinds = scene.kinds()
    st = SymbolicState.from_scene(scene)
    out: list[Subgoal] = []
    walk_failed = False
    if not steps:
        raise PlanError(["the plan has no subgoals"])
    for i, step in enumerate(steps, 1):
        where = f"step {i} ({step.skill})"
        if step.skill not in skill_names():
            problems.append(f"{where}: unknown skill {step.skill!r}{suggest(step.skill, skill_names())}")
            continue
        skill = get_skill(step.skill)
        args: dict[str, str] = {}
        bad = False
        for a in skill.args:
            raw = step.args.get(a.name)
            if raw is None:
                problems.append(f"{where}: missing argument {a.name!r}")
                bad = True
                continue
            if a.type is ArgType.DIRECTION:
                args[a.name] = raw
                continue
            if a.type is ArgType.TARGET and is_region(raw):
                args[a.name] = canonical_region(raw)
                continue
            name = resolve_name(raw, scene)
            if name is None:
                problems.append(
                    f"{where}: {raw!r} is not in the scene{suggest(raw, scene.names)}; "
                    f"objects: {', '.join(scene.names)}"
                )
                bad = True
                continue
            if a.type is ArgType.OBJECT and kinds[name] != "block":
                problems.append(f"{where}: {name!r} is a {kinds[name]}; only blocks can be grasped")
                bad = True
            args[a.name] = name
        extra = set(step.args) - {a.name for a in skill.args}
        if extra:
            problems.append(f"{where}: unexpected argument(s) {sorted(extra)}")
        if bad or extra:
            continue
        try:
            sg = skill.subgoal(args, kinds=kinds)
            # The policy hears "the red block" for "red block 2": a camera cannot tell twins apart.
            said = {k: re.sub(r" \d+$", "", v) for k, v in sg.args.items()}
            sg = Subgoal(
                sg.skill,
                sg.args,
                skill.instruction(
                    said, kinds={**kinds, **{said[k]: kinds.get(v, "") for k, v in sg.args.items()}}
                ),
            )
        except ConfigError as e:
            problems.append(f"{where}: {e}")
            continue
        if not walk_failed:  # after the first symbolic error the walk's state means nothing
            errs = _walk(where, sg, st, kinds)
            problems += errs
            walk_failed = bool(errs)
        out.append(sg)
    if problems:
        raise PlanError(problems)
    return Plan(out, planner=planner)


def _walk(where: str, sg: Subgoal, st: SymbolicState, kinds: dict[str, str]) -> list[str]:
    """Check one step's preconditions against the symbolic state, then apply its effects (the
    skill's own ``walk`` hook; a skill without one is not checked symbolically)."""
    walk = get_skill(sg.skill).walk
    return walk(st, sg, kinds, where) if walk is not None else []
