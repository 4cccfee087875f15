"""The offline planner's words: kinds, colours, regions and directions with their synonyms, the
verbs of every registered skill (each skill file declares its own), filler words and the words
that separate clauses."""

from __future__ import annotations

from vla_agent.sim.catalog import (
    ABSENT_COLORS,
    COLOR_ALIASES,
    COLORS,
    KIND_ALIASES,
    KINDS,
    REGION_ALIASES,
    REGIONS,
)
from vla_agent.sim.predicates import DIRECTION_ALIASES, DIRECTIONS
from vla_agent.skills.library import SkillSpec, all_skills, get_skill

# From the catalogue's tables: the words of the planner are the project's words.
KIND_WORDS = {k: k for k in KINDS} | KIND_ALIASES
GENERIC = {"one", "ones", "object", "objects", "thing", "things", "item", "items", "piece", "pieces"}
COLOR_WORDS: dict[str, str | None] = {c: c for c in COLORS} | COLOR_ALIASES | dict.fromkeys(ABSENT_COLORS)
REGION_WORDS = {r: r for r in REGIONS} | REGION_ALIASES
DIRECTION_WORDS = {d: d for d in DIRECTIONS} | {k: v for k, v in DIRECTION_ALIASES.items() if " " not in k}
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
    "any",
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
