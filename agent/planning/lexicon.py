"""The offline planner's words: kinds, colours, regions and directions with their synonyms, the
verbs of every registered skill (each skill file declares its own), filler words and the words
that separate clauses."""

from __future__ import annotations

from vla_agent.sim.catalog import COLORS
from vla_agent.skills.library import SkillSpec, all_skills, get_skill

KIND_WORDS = {
    "block": "block",
    "cube": "block",
    "brick": "block",
    "box": "block",
    "bowl": "bowl",
    "container": "bowl",
    "basket": "bowl",
    "bin": "bowl",
    "pot": "bowl",
    "plate": "plate",
    "dish": "plate",
    "tray": "plate",
    "saucer": "plate",
}
GENERIC = {"one", "ones", "object", "objects", "thing", "things", "item", "items", "piece", "pieces"}
COLOR_WORDS = {c: c for c in COLORS} | {
    "violet": "purple",
    "magenta": "pink",
    "teal": "cyan",
    "turquoise": "cyan",
    "aqua": "cyan",
    "navy": "blue",
    "crimson": "red",
    "scarlet": "red",
    "lime": "green",
    "golden": "yellow",
    "gold": "yellow",
    "tan": "brown",
    "ivory": "white",
    "grey": None,
    "gray": None,
    "black": None,
}
REGION_WORDS = {
    "left": "left",
    "right": "right",
    "front": "front",
    "near": "front",
    "back": "back",
    "far": "back",
    "rear": "back",
    "centre": "centre",
    "center": "centre",
    "middle": "centre",
}
DIRECTION_WORDS = {
    "left": "left",
    "right": "right",
    "forward": "forward",
    "forwards": "forward",
    "away": "forward",
    "ahead": "forward",
    "backward": "backward",
    "backwards": "backward",
    "back": "backward",
}
CORE_SKILLS = ("pick", "place", "push")  # the skills of the grammar below; others bring a phrase
TASK_VERBS = {"do", "sort", "clear", "tidy", "clean", "build", "make", "gather", "collect", "pile"}


def verbs_of(skill: str) -> frozenset[str]:
    return get_skill(skill).verbs


def all_verbs() -> set[str]:
    """Every verb the planner knows: each registered skill's, and those of whole tasks."""
    return {v for s in all_skills() for v in s.verbs} | TASK_VERBS


def phrase_skills() -> list[SkillSpec]:
    """Registered skills outside the core grammar that bring their own phrase (place_beside, plugins)."""
    return [s for s in all_skills() if s.phrase and s.name not in CORE_SKILLS]


FILLER = {
    "the",
    "a",
    "an",
    "up",
    "please",
    "then",
    "and",
    "of",
    "to",
    "first",
    "also",
    "now",
    "it",
    "just",
    "can",
    "could",
    "would",
    "you",
    "robot",
    "carefully",
    "gently",
    "slowly",
    "over",
    "down",
    "side",
    "table",
    "that",
    "this",
    "these",
    "those",
    "some",
    "with",
    "for",
    "from",
    "its",
    "their",
    "too",
    "again",
    "as",
    "well",
    "single",
    "other",
    "rest",
    "remaining",
    "all",
    "every",
    "each",
    "both",
    "two",
    "three",
    "four",
    "five",
    "same",
    "is",
    "are",
    "which",
    "there",
    "by",
    "one",
    "ones",
    "thing",
    "things",
    "into",
    "in",
}
SEQUENCERS = (
    r"\b(?:and then|then|after that|afterwards|afterward|after this|finally|next(?! to\b)|lastly"
    r"|subsequently)\b|[;.!]"
)
