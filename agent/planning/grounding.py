"""Words the offline planner grounds outside its grammar: unfamiliar nouns through the shipped
MiniLM encoder (only when the best match is clearly ahead), exclusions ("all blocks but the
yellow one"), and whether "move X left" is a push or a placement."""

from __future__ import annotations

import re

import numpy as np

from vla_agent.agent.planning.lexicon import COLOR_WORDS, KIND_WORDS
from vla_agent.sim.catalog import COLORS
from vla_agent.types import Scene

_EMBED_CACHE: dict[str, str | None] = {}


def embedding_match(word: str, min_sim: float = 0.62, margin: float = 0.05) -> str | None:
    if word in _EMBED_CACHE:
        return _EMBED_CACHE[word]

    from vla_agent.vla.text import text_encoder

    enc = text_encoder()
    best: tuple[float, float, str] = (0.0, 0.0, "")
    for template, vocab in (
        ("the color {}", list(COLORS)),
        ("a {} on the table", ["block", "bowl", "plate"]),
    ):
        v = enc.embed([template.format(x) for x in vocab])
        s = (enc.embed([template.format(word)]) @ v.T)[0]
        order = np.argsort(s)[::-1]
        top, second = float(s[order[0]]), float(s[order[1]])
        if top - second >= margin and top >= min_sim and top > best[0]:
            best = (top, second, vocab[order[0]])
    _EMBED_CACHE[word] = best[2] or None
    return _EMBED_CACHE[word]


def bare_direction(rest: str) -> bool:
    """'move X left' is a push; 'move X to the left side of the table' is a placement."""
    return bool(re.search(r"\b(left|right|forwards?|backwards?|away|ahead)\b", rest)) and not re.search(
        r"\b(side|of the table|area|region|in|on|at)\b", rest
    )


EXCLUSION = re.compile(
    r"\s*\b(?:except(?: for)?|but not|but|other than|apart from|besides|excluding|not|"
    r"(?:that|which) (?:is|are) not|(?:that|which) (?:isn|aren) t|(?:that|which) (?:isnt|arent))\b\s*(.*)$"
)


def split_exclusion(text: str, scene: Scene) -> tuple[str, set[str]]:
    """``"all blocks but the yellow one"`` -> (``"all blocks"``, {yellow block}): the phrase to
    ground, and the scene objects its exclusion names (by colour, kind or both)."""
    m = EXCLUSION.search(text)
    if not m:
        return text, set()
    words = m.group(1).split()
    colors = {COLOR_WORDS[w] for w in words if COLOR_WORDS.get(w)}
    kinds = {KIND_WORDS[w.rstrip("s")] for w in words if w.rstrip("s") in KIND_WORDS}
    named = {
        o.name
        for o in scene.objects
        if (not colors or o.color in colors) and (not kinds or o.kind in kinds) and (colors or kinds)
    }
    return text[: m.start()], named
