"""How ``bench planner`` judges a plan: the end state it reaches when applied symbolically to the
scene (no simulator), and checks for commands with several right end states (any two blocks,
one tower in a given order, a bowl of another colour)."""

from __future__ import annotations

from vla_agent.types import Scene


def support(state: set[str]) -> dict[str, str]:
    out = {}
    for p in state:
        if p.startswith(("on(", "in(", "at(")):
            a, b = p[3:-1].split(", ")
            out[a] = b
    return out


def tower_of(state: set[str], blocks: list[str], bottom: str, top: str) -> bool:
    """``blocks`` form one tower from ``bottom`` up to ``top``."""
    below, chain, cur = support(state), [top], top
    while cur in below and below[cur] in blocks:
        cur = below[cur]
        chain.append(cur)
    return cur == bottom and sorted(chain) == sorted(blocks)


def paired(state: set[str], *pairs: tuple[str, str]) -> bool:
    return all(f"on({a}, {b})" in state or f"on({b}, {a})" in state for a, b in pairs)


def count_in(state: set[str], container: str) -> int:
    return sum(p.startswith("in(") and p.endswith(f", {container})") for p in state)


def end_state(subgoals, scene: Scene) -> tuple[set[str], set[str]]:
    """The predicates the plan makes true (symbolically) and the objects it acts on."""
    kinds = scene.kinds()
    where: dict[str, str] = {}
    held: str | None = None
    moved: list[str] = []
    touched: set[str] = set()
    for sg in subgoals:
        obj = sg.args.get("obj", "")
        touched.add(obj)
        target = sg.args.get("target")
        if target in kinds:
            touched.add(target)
        if sg.skill == "pick":
            held = obj
            where.pop(obj, None)
        elif sg.skill == "place":
            kind = kinds.get(target, "")
            rel = "in" if kind == "bowl" else "on" if kind in ("plate", "block") else "at"
            where[obj], held = f"{rel}({obj}, {target})", None
        elif sg.skill == "place_beside":
            where[obj], held = f"beside({obj}, {target})", None
        elif sg.skill == "push":
            moved.append(f"moved({obj}, {sg.args['direction']})")
    state = set(where.values()) | set(moved) | ({f"holding({held})"} if held else set())
    return state, touched - {""}
