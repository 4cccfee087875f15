"""Towers in an order the person chose, and several towers in one command.

- order: "stack the blocks with yellow at the bottom and red on top", "stack them, red first and
  blue last", "stack the red, green and blue blocks from bottom to top" (or "from top to bottom");
- several: "build two towers: the red block on the green one and the blue on the yellow",
  "make two stacks, one of the red and blue blocks and one of the green and yellow blocks".

``ground(text, one=False)`` is the planner's noun-phrase grounding (scene object names, in the
order they were said)."""

from __future__ import annotations

import re
from collections.abc import Callable

from vla_agent.agent.planning.plan import PlanError

Ground = Callable[..., list[str]]

ORDER_WORDS = re.compile(
    r"\b(?:(?:at|on) the (?:bottom|base|top)|on top|as the base|at the base|"
    r"from (?:the )?(?:bottom|top) (?:up |down )?to (?:the )?(?:top|bottom)|first|last)\b"
)
_BOTTOM = re.compile(r"\s*\b(?:(?:at|on) the (?:bottom|base)|as the base|at the base|first)\s*$")
_TOP = re.compile(r"\s*\b(?:on top|(?:at|on) the top|last)\s*$")
_SPAN = re.compile(r"\bfrom (?:the )?(bottom|top) (?:up |down )?to (?:the )?(?:top|bottom)\b")


def ordered_tower(rest: str, ground: Ground) -> list[str]:
    """The blocks of one tower, bottom first, from a clause that says where some of them go."""
    span = _SPAN.search(rest)
    if span:
        blocks = ground(rest[: span.start()] + " " + rest[span.end() :])
        return blocks[::-1] if span.group(1) == "top" else blocks
    if " with " in f" {rest} ":
        main, _, mods = rest.partition("with ")
    else:
        main, _, mods = rest.partition(",")
    bottom = top = None
    for piece in (p.strip() for p in re.split(r"\s*(?:,|\band\b)\s*", mods)):
        if not piece:
            continue
        if _BOTTOM.search(piece):
            bottom = ground(_BOTTOM.sub("", piece), one=True)[0]
        elif _TOP.search(piece):
            top = ground(_TOP.sub("", piece), one=True)[0]
        else:
            raise PlanError([f"{piece!r}: say where it goes in the tower (at the bottom, on top)"])
    if bottom is None and top is None:  # "stack the red block first" without a list
        piece = main.strip()
        if _BOTTOM.search(piece):
            main, bottom = "", ground(_BOTTOM.sub("", piece), one=True)[0]
        elif _TOP.search(piece):
            main, top = "", ground(_TOP.sub("", piece), one=True)[0]
    main = re.sub(r"\b(?:in|into|as) (?:a |one )?(?:single )?tower\b|\ba tower\b|\btower\b", " ", main)
    blocks = ground(main) if main.strip() not in ("", "the blocks", "all the blocks", "all blocks") else []
    if not blocks:
        blocks = ground("all the blocks")
    middle = [b for b in blocks if b not in (bottom, top)]
    return [b for b in [bottom, *middle, top] if b is not None]


_SEVERAL = re.compile(
    r"^(?:build|make|stack|create|form)\s+(?:two|three|2|3|several|multiple|separate)\s+"
    r"(?:separate )?(?:towers|stacks|piles)\b\s*,?\s*(.*)$"
)
_ONE_OF = re.compile(
    r"\s*,?\s*(?:\band\b\s+)?\b(?:one|another|the other|a second|the second|the first)"
    r"(?: tower| stack| pile)?\s+(?:of|with|from|using|made of)\s+"
)


def several_towers(text: str, ground: Ground) -> list[list[str]] | None:
    """The towers of a command asking for several (each bottom first), or None."""
    m = _SEVERAL.match(text)
    if not m:
        return None
    rest = m.group(1).strip()
    if _ONE_OF.search(rest):
        parts = [p.strip() for p in _ONE_OF.split(rest) if p.strip()]
        towers = [ground(p) for p in parts]
    else:
        towers = []
        for piece in (p.strip() for p in re.split(r"\s*(?:,|;|\band\b)\s*", rest)):
            if not piece:
                continue
            levels = [lv for lv in re.split(r"\s+\bon\b\s+", piece) if lv.strip()]
            if len(levels) < 2:
                raise PlanError(
                    [f"{piece!r}: say which block goes on which (the red block on the green one)"]
                )
            towers.append([ground(lv, one=True)[0] for lv in reversed(levels)])
    if len(towers) < 2:
        raise PlanError([f"{text!r}: name the blocks of each tower (one of ... and one of ...)"])
    used = [b for t in towers for b in t]
    if len(set(used)) != len(used):
        raise PlanError([f"{text!r}: a block cannot be in two towers"])
    return towers
