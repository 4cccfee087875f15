"""Does a plan do what the command says? A check of any planner's plan (offline or LLM) against
the objects the command names and the ones it excludes, before anything moves.

The command is read lexically against the scene: ``red block`` / ``red ones`` / ``the red and
blue cubes`` name objects by colour and kind; a kind alone (``every block``, ``the bowl``)
names every object of that kind; ``everything`` / ``all`` / ``the rest`` name every block; a
colour after ``not`` / ``except`` / ``other than`` / ``all ... but`` excludes objects. A plan is
refused when it moves (picks, places or pushes) an object the command does not name or
excludes, or, on a first plan, when it leaves out an object the command names by colour and kind
and that is not already somewhere (in, on or at something).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vla_agent.agent.planning.lexicon import COLOR_WORDS, KIND_WORDS
from vla_agent.types import Scene, Subgoal

_EVERYTHING = {"everything", "all", "rest", "each", "every", "both", "remaining", "others"}
_NEGATORS = {"not", "except", "excluding", "besides", "without", "never"}
_QUANTIFIERS = {"all", "every", "each", "everything", "any"}
_LANDMARKS = {"closest", "nearest", "farthest", "furthest", "next", "near", "beside", "from"}


@dataclass(frozen=True)
class Intent:
    named: frozenset[str]  # objects the command refers to (explicitly, by kind, or "everything")
    explicit: frozenset[str]  # objects named by colour and kind ("the red block")
    excluded: frozenset[str]


def _tokens(command: str) -> list[str]:
    text = (
        command.lower().replace("n't", " not").replace("other than", "except").replace("apart from", "except")
    )
    return re.findall(r"[a-z]+", text)


def _kind(word: str) -> str | None:
    for w in (word, word[:-1] if word.endswith("s") else word, word[:-2] if word.endswith("es") else word):
        if w in KIND_WORDS:
            return KIND_WORDS[w]
    return None


def command_intent(command: str, scene: Scene) -> Intent:
    """The objects of ``scene`` that ``command`` names, names explicitly, and excludes."""
    tokens = _tokens(command)
    objects = scene.objects
    if re.search(r"\b(?:clear|tidy|clean|sort|organi[sz]e)\b", " ".join(tokens[:3])):
        tokens = [*tokens, "all"]  # a whole task names every block
    named: set[str] = set()
    explicit: set[str] = set()
    excluded: set[str] = set()
    negate_until = -1
    for i, tok in enumerate(tokens):
        if tok in _NEGATORS or (tok == "but" and any(t in _QUANTIFIERS for t in tokens[max(0, i - 5) : i])):
            negate_until = i + 4
        colors: list[str] = []
        if tok in COLOR_WORDS and (i == 0 or tokens[i - 1] not in COLOR_WORDS):
            # a run of colours ("red and blue") followed by a kind or "one(s)"
            j = i
            while j < len(tokens) and (tokens[j] in COLOR_WORDS or tokens[j] in ("and", "or")):
                if tokens[j] in COLOR_WORDS and COLOR_WORDS[tokens[j]]:
                    colors.append(COLOR_WORDS[tokens[j]])
                j += 1
            head = tokens[j] if j < len(tokens) else ""
            kind = _kind(head)  # None: "the red one(s)", "the red": any kind of that colour
            hits = {o.name for o in objects if o.color in colors and (kind is None or o.kind == kind)}
            if i <= negate_until:
                excluded |= hits
            else:
                named |= hits
                if kind is not None and not set(tokens[max(0, i - 3) : i]) & _LANDMARKS:
                    explicit |= hits  # not a landmark ("the block closest to the red bowl")
            continue
        kind = _kind(tok)
        if kind is not None and (i == 0 or tokens[i - 1] not in COLOR_WORDS):
            if i > negate_until:
                named |= {o.name for o in objects if o.kind == kind}
        elif tok in _EVERYTHING:
            named |= {o.name for o in objects if o.kind == "block"}
    return Intent(frozenset(named), frozenset(explicit - excluded), frozenset(excluded))


def _moved(sg: Subgoal) -> str | None:
    return sg.args.get("obj")


def check_plan_intent(command: str, scene: Scene, subgoals: list[Subgoal], first: bool = True) -> str | None:
    """The reason ``subgoals`` do not match ``command`` (None when they do). The command is read
    as the planner reads it: corrections applied ("on the plate, sorry, in the bowl" names the
    bowl, not the plate), typos and polite forms normalised."""
    from vla_agent.agent.planning.reading import reading

    intent = command_intent(reading(command), scene)
    by_place = _picked_by_place(reading(command), scene)
    for sg in subgoals:
        obj = _moved(sg)
        if obj is None:
            continue
        if obj in intent.excluded:
            return f"the plan moves the {obj}, which the command excludes"
        if obj not in intent.named:
            return f"the plan moves the {obj}, which the command does not name"
        if by_place is not None and obj not in by_place and obj not in intent.explicit:
            return f"the plan moves the {obj}, not the one the command picks out by place"
    if first and subgoals:
        touched = {v for sg in subgoals for k, v in sg.args.items() if k in ("obj", "target")}
        placed = {r.args[0] for r in scene.relations if r.name in ("in", "on", "at") and r.args}
        left_out = sorted(intent.explicit - touched - placed)
        if left_out:
            return f"the plan leaves out the {left_out[0]}, which the command names"
    return None


_BY_PLACE = re.compile(
    r"\b(?:leftmost|rightmost|left most|right most|closest|nearest|farthest|furthest)\b"
    r"|\bfar (?:left|right)\b"
)


def _picked_by_place(text: str, scene: Scene) -> set[str] | None:
    """When the command picks objects out by where they are ("the leftmost block", "the one
    closest to you"), the objects such a reading moves (the geometry of ``references``, read by
    the offline grammar); None when it does not, or cannot be read that way."""
    if not _BY_PLACE.search(text):
        return None
    from vla_agent.agent.planning.offline import OfflinePlanner
    from vla_agent.agent.planning.plan import PlanError

    try:
        return {g.obj for g in OfflinePlanner(use_embeddings=False).goals(text, scene)}
    except PlanError:
        return None
