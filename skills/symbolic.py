"""The symbolic state plan validation walks (what is held, what rests in or on what) and the
rules of the containers; each skill's ``walk`` hook checks and applies one step against it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from vla_agent.types import Scene

# How many blocks a container takes before the next one would not count as "in"/"on" it:
# measured with the scripted expert (``vla-agent bench capacity --write``), a block holds one.
CAPACITY_FILE = Path(__file__).with_name("capacity.json")


def _measured_capacity() -> dict[str, int]:
    data = json.loads(CAPACITY_FILE.read_text()) if CAPACITY_FILE.exists() else {}
    return {k: int(data.get(k, d)) for k, d in (("bowl", 2), ("plate", 1), ("block", 1))}


CAPACITY = _measured_capacity()
MAX_TOWER = 4  # blocks in one stack, base included


@dataclass
class SymbolicState:
    """What the walk tracks: the held object and what each object rests in/on."""

    holding: str | None = None
    support: dict[str, str] = field(default_factory=dict)  # obj -> bowl/plate/block/region it is in/on
    blocks: set[str] = field(default_factory=set)

    @classmethod
    def from_scene(cls, scene: Scene) -> SymbolicState:
        st = cls(blocks={o.name for o in scene.objects if o.kind == "block"})
        for r in scene.relations:
            if r.name == "holding":
                st.holding = r.args[0]
            elif r.name in ("in", "on", "at"):
                st.support[r.args[0]] = r.args[1]
        return st

    def above(self, name: str) -> list[str]:
        return [o for o, s in self.support.items() if s == name]

    def tower_height(self, name: str) -> int:
        """Blocks in the stack whose top is ``name`` (itself included)."""
        h, cur = 1, name
        while cur in self.support and self.support[cur] in self.blocks:
            cur = self.support[cur]
            h += 1
        return h


def relation_word(kind: str) -> str:
    return "in" if kind == "bowl" else "on"


def needs_empty_hand(st: SymbolicState, what: str, where: str) -> list[str]:
    return [f"{where}: cannot {what} while holding {st.holding}"] if st.holding is not None else []


def set_down_near(st: SymbolicState, sg, where: str, relation: str) -> list[str]:
    """The plan walk of a skill that sets the held object down on the table relative to another
    object (``relation``: "next to", "behind"): it must be held and not be its own reference."""
    obj, target = sg.args["obj"], sg.args["target"]
    errs = needs_held(st, obj, "set down", where)
    if target == obj:
        errs.append(f"{where}: cannot put {obj} {relation} itself")
    if not errs:
        st.holding = None
        st.support.pop(obj, None)  # on the table
    return errs


def needs_held(st: SymbolicState, obj: str, what: str, where: str) -> list[str]:
    if st.holding == obj:
        return []
    held = f"holding {st.holding}" if st.holding else "the hand is empty"
    return [f"{where}: cannot {what} {obj}, it is not held ({held})"]
