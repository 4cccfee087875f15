"""Object catalogue, table geometry and the typed scene spec.

All positions are in the robot base frame: the Panda's base sits at the origin on the table top
(``z = 0``), ``+x`` points away from the robot across the table, ``+y`` to the robot's left.
Regions (``left``, ``right``, ``front``, ``back``, ``centre``) are seen from the robot: ``front``
is the strip nearest the robot, ``back`` the far strip.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from vla_agent.errors import ConfigError, suggest, unknown

# Reachable area where objects are placed (metres, base frame).
WORKSPACE_X = (0.34, 0.70)
WORKSPACE_Y = (-0.26, 0.26)
TABLE_TOP_Z = 0.0

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.12, 0.12),
    "orange": (0.95, 0.50, 0.08),
    "yellow": (0.93, 0.86, 0.10),
    "green": (0.15, 0.68, 0.20),
    "cyan": (0.10, 0.78, 0.82),
    "blue": (0.12, 0.25, 0.88),
    "purple": (0.52, 0.18, 0.70),
    "pink": (0.98, 0.50, 0.72),
    "brown": (0.50, 0.30, 0.14),
    "white": (0.96, 0.96, 0.96),
}


@dataclass(frozen=True)
class KindSpec:
    """Geometry of one kind of object (metres)."""

    name: str
    footprint_radius: float  # for collision-free placement
    height: float
    graspable_by: str  # how the Panda gripper takes it, documented for users


BLOCK_SIZE = 0.04
HELD_WIDTH = (0.02, 0.065)  # gripper width (m) meaning "closed on a block"; wider is open
BOWL_INNER_RADIUS = 0.060
BOWL_HEIGHT = 0.050
PLATE_RADIUS = 0.075
PLATE_HEIGHT = 0.018
WALL = 0.008

KINDS: dict[str, KindSpec] = {
    "block": KindSpec("block", 0.030, BLOCK_SIZE, "across two faces (4 cm < 8 cm opening)"),
    "bowl": KindSpec("bowl", BOWL_INNER_RADIUS + WALL + 0.005, BOWL_HEIGHT, "by its 8 mm rim wall"),
    "plate": KindSpec("plate", PLATE_RADIUS + 0.005, PLATE_HEIGHT, "by its 8 mm raised rim"),
}
CONTAINERS = ("bowl", "plate")
# The synonym tables of the project (scene specs, plan names, the offline planner, voice): one each.
KIND_ALIASES = {
    "cube": "block",
    "brick": "block",
    "box": "block",
    "container": "bowl",
    "basket": "bowl",
    "bin": "bowl",
    "pot": "bowl",
    "dish": "plate",
    "tray": "plate",
    "saucer": "plate",
}
COLOR_ALIASES = {
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
}
ABSENT_COLORS = ("grey", "gray", "black")  # colours people name that no object here has

# Region name -> (x range, y range) and the point a placement aims at.
REGIONS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "left": ((0.34, 0.70), (0.10, 0.30)),
    "right": ((0.34, 0.70), (-0.30, -0.10)),
    "front": ((0.25, 0.45), (-0.30, 0.30)),
    "back": ((0.60, 0.78), (-0.30, 0.30)),
    "centre": ((0.45, 0.60), (-0.08, 0.08)),
}
REGION_ALIASES = {"center": "centre", "middle": "centre", "near": "front", "far": "back", "rear": "back"}

NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
MAX_OBJECTS = 12


def closed_on_block(width: float) -> bool:
    """The gripper, ``width`` metres open, is closed on a block (neither open nor shut on nothing)."""
    return HELD_WIDTH[0] < width < HELD_WIDTH[1]


def canonical_region(name: str) -> str:
    """Map a region name or alias to its canonical name, or raise with the valid ones."""
    name = REGION_ALIASES.get(name.strip().lower(), name.strip().lower())
    if name not in REGIONS:
        raise unknown("region", name, list(REGIONS) + list(REGION_ALIASES))
    return name


class ObjectSpec(BaseModel):
    """One object of a scene: its kind, colour and optionally a fixed pose."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    color: str
    position: tuple[float, float] | None = None  # (x, y) on the table; random when None
    yaw: float | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        v = v.strip().lower()
        v = KIND_ALIASES.get(v, v)
        if v not in KINDS:
            raise ConfigError(
                f"unknown object kind {v!r}{suggest(v, [*KINDS, *KIND_ALIASES])}; valid: {', '.join(KINDS)}"
            )
        return v

    @field_validator("color")
    @classmethod
    def _color(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in COLORS:
            raise unknown("colour", v, COLORS)
        return v

    @field_validator("position")
    @classmethod
    def _position(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None:
            x, y = v
            if not (WORKSPACE_X[0] <= x <= WORKSPACE_X[1] and WORKSPACE_Y[0] <= y <= WORKSPACE_Y[1]):
                raise ValueError(
                    f"position ({x:.2f}, {y:.2f}) is outside the workspace "
                    f"x in {WORKSPACE_X}, y in {WORKSPACE_Y}"
                )
        return v

    @property
    def label(self) -> str:
        return f"{self.color} {self.kind}"


class SceneSpec(BaseModel):
    """The objects to place on the table. Names are ``"<colour> <kind>"``, with ``" 2"``, ``" 3"``
    appended to repeats (``red block``, ``red block 2``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    objects: tuple[ObjectSpec, ...]

    @model_validator(mode="after")
    def _check(self) -> SceneSpec:
        if not self.objects:
            raise ValueError("a scene needs at least one object")
        if len(self.objects) > MAX_OBJECTS:
            raise ValueError(f"{len(self.objects)} objects do not fit on the table (max {MAX_OBJECTS})")
        return self

    @property
    def names(self) -> list[str]:
        seen: dict[str, int] = {}
        out = []
        for o in self.objects:
            seen[o.label] = seen.get(o.label, 0) + 1
            out.append(o.label if seen[o.label] == 1 else f"{o.label} {seen[o.label]}")
        return out

    @classmethod
    def parse(cls, text: str) -> SceneSpec:
        """Parse ``"red block, 2 green blocks, blue bowl"``; raise ConfigError naming the bad item."""
        objects: list[ObjectSpec] = []
        items = [t.strip() for t in re.split(r",|\band\b", text) if t.strip()]
        if not items:
            raise ConfigError("empty scene: list objects like 'red block, blue bowl'")
        for item in items:
            words = item.lower().split()
            count = 1
            if words and (words[0].isdigit() or words[0] in NUMBER_WORDS):
                count = int(words[0]) if words[0].isdigit() else NUMBER_WORDS[words[0]]
                words = words[1:]
            if len(words) != 2:
                raise ConfigError(f"cannot read scene item {item!r}: expected '<colour> <kind>'")
            color, kind = words
            if kind.endswith("s") and (kind[:-1] in KINDS or kind[:-1] in KIND_ALIASES):
                kind = kind[:-1]
            try:
                objects += [ObjectSpec(kind=kind, color=color)] * count
            except ValueError as e:  # pydantic wraps our ConfigError
                raise ConfigError(f"scene item {item!r}: {_first_error(e)}") from None
        try:
            return cls(objects=tuple(objects))
        except ValueError as e:
            raise ConfigError(f"scene {text!r}: {_first_error(e)}") from None

    def describe(self) -> str:
        return ", ".join(self.names)


def _first_error(e: Exception) -> str:
    errors = getattr(e, "errors", None)
    if callable(errors):
        msg = str(errors()[0].get("msg", e))
        return msg.removeprefix("Value error, ")
    return str(e)


def random_scene(rng, lo: int, hi: int) -> SceneSpec:
    """A scene of ``lo``-``hi`` objects drawn from ``rng``: blocks, the last sometimes a bowl or plate."""
    n = int(rng.integers(lo, hi + 1))
    colors = rng.permutation(list(COLORS))
    kinds = ["block"] * n
    if n >= 3 and rng.random() < 0.6:
        kinds[-1] = str(rng.choice(["bowl", "plate"]))
    return SceneSpec(objects=tuple(ObjectSpec(kind=k, color=str(col)) for k, col in zip(kinds, colors)))


def free_spot(rng, radius: float, placed: list[tuple[float, float, float]]) -> tuple[float, float]:
    """A point of the work area at least 2 cm from every (x, y, radius) in ``placed``."""
    for _ in range(500):
        x = rng.uniform(WORKSPACE_X[0] + radius * 0.5, WORKSPACE_X[1] - radius * 0.5)
        y = rng.uniform(WORKSPACE_Y[0] + radius * 0.5, WORKSPACE_Y[1] - radius * 0.5)
        if all(math.hypot(x - px, y - py) >= radius + pr + 0.02 for px, py, pr in placed):
            return float(x), float(y)
    raise ConfigError(f"could not place {len(placed) + 1} objects without overlap; use fewer objects")
