"""Objects picked out by where they are and by how many, and targets picked out by colour.

- where: "the leftmost block", "the block furthest to the right", "the one closest to you",
  "the block next to the bowl", "the cube farthest from the red plate";
- how many: "two of the blocks", "put three blocks in the bowl" (any that many), as opposed to
  "the two blocks" (exactly the two there are);
- matching: "in the bowl of the same colour", "in a bowl that does not match its colour".

Left is +y and the robot stands at x = 0 (the catalogue's regions); "you" and "me" are both on the
robot's side of the table, as in "push it towards me" (backward)."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from vla_agent.agent.planning.plan import Ambiguous, PlanError
from vla_agent.types import Scene, SceneObject

# Words that pick one object out by place; a reference phrase after them names the landmark.
REFERENCE = r"(?:closest|nearest|farthest|furthest|next|near|beside|by)"
_LANDMARK_WORDS = re.compile(r"\b(closest|nearest|farthest|furthest)_(to|from)\b")
TIE_M = 0.02  # two objects closer than this to the extreme are a tie: ask which


def mark_references(text: str) -> str:
    """Glue the words of a reference to its landmark so that the clause grammar does not read
    them as the placement's relation: "the block closest to the bowl on the plate" -> "the block
    closest_to the bowl on the plate". "next to / near / beside / by X" is a reference only when
    another relation follows it in the clause ("put the block next to the bowl in the plate");
    otherwise it is where to put something (place_beside)."""
    text = re.sub(r"\b(?:left|right) most\b", lambda m: m.group(0).replace(" ", ""), text)
    text = re.sub(
        r"\b(?:(?:furthest|farthest|most) (?:to (?:the )?)?|(?:on|at) the (?:far|very) )(left|right)\b",
        r"\1most",
        text,
    )
    text = re.sub(r"\b(closest|nearest) (?:to )?(you|me|the robot)\b", r"\1_to you", text)
    text = re.sub(
        r"\b(closest|nearest|farthest|furthest) (?:from |to )?(you|me|the robot)\b", r"\1_to you", text
    )
    text = re.sub(r"\b(closest|nearest) to\b", r"\1_to", text)
    text = re.sub(r"\b(farthest|furthest) (?:away )?from\b", r"\1_from", text)
    m = re.search(
        r"\b(?:that is |which is |that s )?(next to|beside|near|by) "
        r"(the (?:\w+ ){0,2}?(?:block|bowl|plate|cube|one)s?)"
        r"(?= (?:in|on|at|onto|to|next to|beside)\b)",
        text,
    )
    if m:
        text = text[: m.start()] + f"closest_to {m.group(2)}" + text[m.end() :]
    return text


def split_reference(text: str) -> tuple[str, str, str]:
    """``"the red block closest_to the bowl"`` -> (``"the red block"``, ``"near"``, ``"the bowl"``);
    ``"the leftmost block"`` -> (``"the block"``, ``"left"``, ``""``); no reference: (text, "", "")."""
    m = _LANDMARK_WORDS.search(text)
    if m:
        how = "near" if m.group(1) in ("closest", "nearest") else "far"
        landmark = re.sub(r"^(?:one|block|cube)\b\s*", "", text[m.end() :].strip())
        head = re.sub(r"\b(?:that is|which is|that s|the one)\s*$", "", text[: m.start()].strip())
        return head or "the one", how, landmark
    m = re.search(r"\b(leftmost|rightmost|frontmost|backmost|nearest|closest|farthest|furthest)\b", text)
    if m:
        how = {"nearest": "front", "closest": "front", "farthest": "back", "furthest": "back"}.get(
            m.group(1), m.group(1).removesuffix("most")
        )
        return (text[: m.start()] + " " + text[m.end() :]).strip(), how, ""
    return text, "", ""


def pick_by_place(
    cands: list[SceneObject],
    how: str,
    landmark: SceneObject | None,
    n: int,
    about: str,
) -> list[str]:
    """The ``n`` candidates that are most ``how`` (left, right, front, back; near or far from
    ``landmark``, or from the robot when None); a tie at the extreme is a question."""
    if any(o.position is None for o in cands) or (landmark is not None and landmark.position is None):
        raise PlanError([f"cannot tell which is {_said(how)}: the scene has no object positions"])
    origin = np.zeros(2) if landmark is None else np.asarray(landmark.position[:2])

    def score(o: SceneObject) -> float:  # lower is better
        x, y = o.position[:2]
        return {
            "left": -y,
            "right": y,
            "front": x,
            "back": -x,
            "near": float(np.hypot(x - origin[0], y - origin[1])),
            "far": -float(np.hypot(x - origin[0], y - origin[1])),
        }[how]

    if landmark is None and how in ("near", "far"):
        how = "front" if how == "near" else "back"
    ranked = sorted((o for o in cands if landmark is None or o.name != landmark.name), key=score)
    if len(ranked) < n:
        raise PlanError([f"{about!r}: expected {n}, found {len(ranked)}"])
    if len(ranked) > n and score(ranked[n]) - score(ranked[n - 1]) < TIE_M:
        tied = [o.name for o in ranked if score(o) - score(ranked[n - 1]) < TIE_M]
        raise Ambiguous(about, tied)
    return [o.name for o in ranked[:n]]


def _said(how: str) -> str:
    return {"near": "closest", "far": "farthest"}.get(how, f"{how}most")


def by_distance_to_robot(cands: list[SceneObject]) -> list[SceneObject]:
    """Candidates nearest the robot first (scene order when positions are unknown)."""
    if any(o.position is None for o in cands):
        return list(cands)
    return sorted(cands, key=lambda o: float(np.hypot(*o.position[:2])))


def some_of(text: str) -> int:
    """How many a count asks for when any will do ("two of the blocks", "three blocks"), else 0
    ("the two blocks" asks for exactly the two there are)."""
    words = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "2": 2, "3": 3, "4": 4, "5": 5}
    m = re.search(r"(?:^|\b(the|any|all)\s+)?\b(one|two|three|four|five|[2-5])\b(\s+of\b)?", text)
    if not m or (m.group(2) == "one" and not m.group(3)):  # "the green one" is not a count
        return 0
    if m.group(3) or m.group(1) == "any" or not m.group(1):
        return words[m.group(2)]
    return 0


# "in the bowl of the same colour", "in a bowl that does not match": a marker the planner
# resolves per object ("@same:bowl", "@other:bowl").
SAME_COLOR = re.compile(
    r"\b(?:same color|matching|matches|match|its color|their color|its own|their own|by color|"
    r"of its|of their|corresponding)\b"
)
OTHER_COLOR = re.compile(
    r"\b(?:(?:a |an )?(?:different|another|other|another s|the wrong) color|does not match|doesn t match|"
    r"do not match|don t match|not matching|not of its|not the same color|mismatched|wrong)\b"
)


def color_target(text: str) -> str | None:
    """The marker of a target chosen by colour, or None."""
    kind = "plate" if re.search(r"\bplates?\b|\bdish", text) else "bowl"
    if OTHER_COLOR.search(text):
        return f"@other:{kind}"
    if SAME_COLOR.search(text):
        return f"@same:{kind}"
    return None


def resolve_color_targets(
    objs: list[str], marker: str, scene: Scene, room: Callable[[str], int]
) -> list[tuple[str, str]]:
    """(object, container) for each object of a colour-chosen target. Same colour: the container
    of the object's colour (objects with none are left alone when several were asked for, refused
    when one was). Another colour: the emptiest container of a different colour with room."""
    how, kind = marker[1:].split(":")
    containers = [o for o in scene.objects if o.kind == kind]
    if not containers:
        raise PlanError([f"there is no {kind} in the scene (objects: {', '.join(scene.names)})"])
    left = {c.name: room(c.name) for c in containers}
    out = []
    for name in objs:
        color = scene.get(name).color
        fits = [c for c in containers if (c.color == color) == (how == "same") and left[c.name] > 0]
        if not fits:
            if how == "same" and len(objs) > 1 and not any(c.color == color for c in containers):
                continue
            which = f"of the {name}'s colour" if how == "same" else f"of another colour than the {name}"
            raise PlanError([f"there is no {kind} {which} with room left"])
        best = max(fits, key=lambda c: left[c.name])
        left[best.name] -= 1
        out.append((name, best.name))
    if not out:
        raise PlanError([f"no {kind} has the colour of any of {', '.join(objs)}"])
    return out
