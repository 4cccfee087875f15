"""Ground-truth predicates over the simulator state: the judge of every benchmark.

Tolerances (metres, base frame; blocks are 4 cm cubes):

- ``holding(obj)``: both Panda fingers touch ``obj`` and its lowest point is >= 1 cm above the table.
- ``in(obj, bowl)``: ``obj`` is not held, its centre lies within the bowl's inner radius (6 cm)
  horizontally and below the rim top + 2 cm.
- ``on(obj, plate)``: not held, centre within the plate's inner radius, and resting on the plate
  (bottom within 2.5 cm of the plate's top surface).
- ``on(obj, block)``: not held, centres within 2.5 cm horizontally, and ``obj`` one block height
  (+-1 cm) above the other: a stack.
- ``at(obj, region)``: not held, resting on the table itself (centre below 2.4 cm) inside the region's
  rectangle (see ``catalog.REGIONS``).
- ``hand_empty()``: the fingers touch no object.
- ``clear(obj)``: no object is on or in ``obj``.
- skills add their own (``register_predicate``): ``beside`` comes with ``skills/place_beside.py``.
- ``moved(obj, direction)``: relative to a reference snapshot, ``obj`` moved >= 5 cm along the
  direction (left=+y, right=-y, forward=+x, backward=-x) and <= 5 cm sideways.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from vla_agent.errors import ConfigError, unknown
from vla_agent.sim.catalog import (
    BLOCK_SIZE,
    BOWL_HEIGHT,
    BOWL_INNER_RADIUS,
    PLATE_RADIUS,
    REGIONS,
    WALL,
    canonical_region,
)
from vla_agent.types import Predicate

DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (0.0, 1.0),
    "right": (0.0, -1.0),
    "forward": (1.0, 0.0),
    "backward": (-1.0, 0.0),
}
DIRECTION_ALIASES = {
    "forwards": "forward",
    "away": "forward",
    "ahead": "forward",
    "backwards": "backward",
    "back": "backward",
    "towards me": "backward",
    "toward me": "backward",
}
PUSH_MIN_DISTANCE = 0.05
PUSH_MAX_SIDEWAYS = 0.05


@dataclass(frozen=True)
class ObjectState:
    name: str
    kind: str
    color: str
    position: np.ndarray  # (3,)
    yaw: float
    touching_fingers: int  # how many finger links touch it (0-2)


@dataclass(frozen=True)
class WorldState:
    """A snapshot of everything the predicates need (built by ``TabletopEnv.world_state``)."""

    objects: Mapping[str, ObjectState]
    reference: Mapping[str, np.ndarray] | None = None  # positions at the last ``env.snapshot()``

    def get(self, name: str) -> ObjectState:
        try:
            return self.objects[name]
        except KeyError:
            raise unknown("object", name, self.objects) from None


def holding(w: WorldState, obj: str) -> bool:
    o = w.get(obj)
    bottom = o.position[2] - _half_height(o)
    return o.touching_fingers >= 2 and bottom >= 0.01


def _half_height(o: ObjectState) -> float:
    return BLOCK_SIZE / 2 if o.kind == "block" else 0.0


def hdist(a: ObjectState, b: ObjectState) -> float:
    return float(np.linalg.norm(a.position[:2] - b.position[:2]))


def in_(w: WorldState, obj: str, container: str) -> bool:
    o, c = w.get(obj), w.get(container)
    if c.kind != "bowl" or obj == container or holding(w, obj):
        return False
    return hdist(o, c) <= BOWL_INNER_RADIUS and o.position[2] <= c.position[2] + BOWL_HEIGHT + 0.02


def on(w: WorldState, obj: str, below: str) -> bool:
    o, b = w.get(obj), w.get(below)
    if obj == below or holding(w, obj):
        return False
    if b.kind == "plate":
        top = b.position[2] + WALL
        bottom = o.position[2] - _half_height(o)
        return hdist(o, b) <= PLATE_RADIUS - WALL and -0.005 <= bottom - top <= 0.025
    if b.kind == "block":
        dz = o.position[2] - b.position[2]
        return hdist(o, b) <= 0.025 and abs(dz - BLOCK_SIZE) <= 0.01
    return False


def at(w: WorldState, obj: str, region: str) -> bool:
    o = w.get(obj)
    (x0, x1), (y0, y1) = REGIONS[canonical_region(region)]
    x, y, z = o.position
    return not holding(w, obj) and z <= BLOCK_SIZE / 2 + 0.004 and x0 <= x <= x1 and y0 <= y <= y1


def hand_empty(w: WorldState) -> bool:
    return all(o.touching_fingers == 0 for o in w.objects.values())


def clear(w: WorldState, obj: str) -> bool:
    return not any(on(w, other, obj) or in_(w, other, obj) for other in w.objects if other != obj)


def moved(w: WorldState, obj: str, direction: str) -> bool:
    d = np.array(DIRECTIONS[canonical_direction(direction)])
    if w.reference is None or obj not in w.reference:
        return False
    delta = w.get(obj).position[:2] - w.reference[obj][:2]
    along = float(delta @ d)
    sideways = abs(float(delta @ np.array([-d[1], d[0]])))
    return along >= PUSH_MIN_DISTANCE and sideways <= PUSH_MAX_SIDEWAYS


def canonical_direction(name: str) -> str:
    name = DIRECTION_ALIASES.get(name.strip().lower(), name.strip().lower())
    if name not in DIRECTIONS:
        raise unknown("direction", name, DIRECTIONS)
    return name


PREDICATES: dict[str, Callable[..., bool]] = {
    "holding": holding,
    "in": in_,
    "on": on,
    "at": at,
    "hand_empty": hand_empty,
    "clear": clear,
    "moved": moved,
}


# Binary relations between a block and another object that ``holds`` lists (beside those above).
RELATIONS: list[str] = []


def register_predicate(name: str, fn: Callable[..., bool], relation: bool = False) -> None:
    """Add a ground-truth predicate ``fn(world, *args) -> bool`` (a plugin's skill effect);
    ``relation``: a block-to-object relation that ``holds`` lists. A name taken is an error."""
    if name in PREDICATES and PREDICATES[name] is not fn:
        raise ConfigError(f"predicate {name!r} is already registered")
    PREDICATES[name] = fn
    if relation and name not in RELATIONS:
        RELATIONS.append(name)


def evaluate(w: WorldState, pred: Predicate | str) -> bool:
    """Truth of one ground predicate; unknown names and objects raise ConfigError."""
    if isinstance(pred, str):
        pred = Predicate.parse(pred)
    fn = PREDICATES.get(pred.name)
    if fn is None:
        raise unknown("predicate", pred.name, PREDICATES)
    return bool(fn(w, *pred.args))


def holds(w: WorldState) -> list[Predicate]:
    """Every true ground predicate among holding/in/on/at and the registered relations (beside,
    plugins') over the scene's objects (sorted)."""
    out: list[Predicate] = []
    names = list(w.objects)
    for a in names:
        if holding(w, a):
            out.append(Predicate("holding", (a,)))
        for b in names:
            if a == b:
                continue
            if in_(w, a, b):
                out.append(Predicate("in", (a, b)))
            if on(w, a, b):
                out.append(Predicate("on", (a, b)))
            if w.get(a).kind == "block":
                out += [Predicate(r, (a, b)) for r in RELATIONS if PREDICATES[r](w, a, b)]
        for r in REGIONS:
            if w.get(a).kind == "block" and at(w, a, r):
                out.append(Predicate("at", (a, r)))
    return sorted(out, key=str)


def yaw_distance(a: float, b: float, period: float = math.pi / 2) -> float:
    """Smallest angle between two yaws of an object symmetric under rotation by ``period``."""
    d = (a - b) % period
    return min(d, period - d)
