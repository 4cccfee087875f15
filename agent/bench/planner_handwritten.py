"""Hand-written commands of ``bench planner``: phrased as a person would say them, one fixed
scene, each with its expected end state, question or refusal. Written alongside the template
categories (so, like them, a regression check rather than a held-out measurement)."""

from __future__ import annotations

from vla_agent.types import Scene, SceneObject

_OBJECTS = (
    ("red block", (0.50, 0.20)),
    ("green block", (0.40, -0.20)),
    ("blue block", (0.62, 0.00)),
    ("yellow block", (0.36, 0.06)),
    ("blue bowl", (0.55, -0.15)),
    ("red bowl", (0.44, 0.13)),
    ("green plate", (0.66, 0.20)),
)
SCENE = Scene(tuple(SceneObject(n, n.split()[1], n.split()[0], (x, y, 0.02)) for n, (x, y) in _OBJECTS))
R, G, B, Y = "red block", "green block", "blue block", "yellow block"
BB, RB, P = "blue bowl", "red bowl", "green plate"
BLOCKS = {R, G, B, Y}

# (command, expected: "state" | "question" | "refused", predicates, objects named, judge or None)
COMMANDS: list[tuple] = [  # fmt: skip
    ("grab the green block and set it down on the plate", "state", {f"on({G}, {P})"}, {G, P}),
    ("i'd like the blue cube in the red bowl please", "state", {f"in({B}, {RB})"}, {B, RB}),
    (
        "put the yellow block in the blue bowl and the red one on the plate",
        "state",
        {f"in({Y}, {BB})", f"on({R}, {P})"},
        {Y, BB, R, P},
    ),
    (
        "first stack the red block on the blue block, then put the green block in the red bowl",
        "state",
        {f"on({R}, {B})", f"in({G}, {RB})"},
        {R, B, G, RB},
    ),
    ("take the block on the far left and put it in the blue bowl", "state", {f"in({R}, {BB})"}, {R, BB}),
    (
        "move every block except the green one into the red bowl",
        "state",
        {f"in({R}, {RB})", f"in({B}, {RB})", f"in({Y}, {RB})"},
        {R, B, Y, RB},
    ),
    ("put the block that isn't red or blue on the plate", "question", set(), set()),
    ("put the cube nearest to you in the bowl", "question", set(), set()),
    ("slide the blue block to the right", "state", {f"moved({B}, right)"}, {B}),
    ("shove the yellow block forward a bit", "state", {f"moved({Y}, forward)"}, {Y}),
    ("place the green cube on top of the yellow one", "state", {f"on({G}, {Y})"}, {G, Y}),
    (
        "stack the blocks from bottom to top: yellow, green, blue, red",
        "state",
        {f"on({G}, {Y})", f"on({B}, {G})", f"on({R}, {B})"},
        BLOCKS,
    ),
    ("put the red block in the red bowl, sorry, in the blue bowl", "state", {f"in({R}, {BB})"}, {R, BB}),
    ("the blue block should go on the plate", "state", {f"on({B}, {P})"}, {B, P}),
    ("would you please put the yellow block next to the blue bowl", "state", {f"beside({Y}, {BB})"}, {Y, BB}),
    ("pick up the green block", "state", {f"holding({G})"}, {G}),
    ("put both bowls on the plate", "refused", set(), set()),
    ("put the purple block in the bowl", "refused", set(), set()),
    ("sing me a song", "refused", set(), set()),
    ("throw the red block across the room", "refused", set(), set()),
    ("put the red blok in teh blue bowl", "state", {f"in({R}, {BB})"}, {R, BB}),
    (
        "put two blocks in the blue bowl",
        "state",
        set(),
        {*BLOCKS, BB},
        lambda st: sum(p.startswith("in(") and p.endswith(f", {BB})") for p in st) == 2,
    ),
    (
        "build two towers, one of the red and blue blocks and one of the green and yellow blocks",
        "state",
        set(),
        BLOCKS,
        lambda st: ({f"on({R}, {B})", f"on({B}, {R})"} & st) and ({f"on({G}, {Y})", f"on({Y}, {G})"} & st),
    ),
    ("put the green block in the bowl of the same colour", "refused", set(), set()),
    ("put the red block in the bowl of the same colour", "state", {f"in({R}, {RB})"}, {R, RB}),
    ("put the blue block in a bowl of another colour", "state", {f"in({B}, {RB})"}, {B, RB}),
    (
        "put all the blocks that are not yellow in the red bowl",
        "state",
        {f"in({R}, {RB})", f"in({G}, {RB})", f"in({B}, {RB})"},
        {R, G, B, RB},
    ),
    (
        "put the yellow block in the blue bowl and then do the same with the green one",
        "state",
        {f"in({Y}, {BB})", f"in({G}, {BB})"},
        {Y, G, BB},
    ),
    (
        "put the red block in the blue bowl, then the yellow one too",
        "state",
        {f"in({R}, {BB})", f"in({Y}, {BB})"},
        {R, Y, BB},
    ),
    ("move the green block onto the left side of the table", "state", {f"at({G}, left)"}, {G}),
    ("push the block closest to the plate to the right", "state", {f"moved({R}, right)"}, {R}),
    (
        "could you stack the yellow block on the red block and put the green block in the blue bowl",
        "state",
        {f"on({Y}, {R})", f"in({G}, {BB})"},
        {Y, R, G, BB},
    ),
    ("put the cube in the blue bowl", "question", set(), set()),
    ("put it in the bowl", "question", set(), set()),  # nothing before "it": which one?
    ("put it there", "question", set(), set()),
    (
        "clear the table",
        "state",
        set(),
        {*BLOCKS, BB, RB, P},
        lambda st: all(
            any(p.startswith(("in(", "on(")) and p[3:].startswith(b + ",") for p in st) for b in BLOCKS
        ),
    ),
    (
        "put the blue block on the green block, no wait, on the yellow block",
        "state",
        {f"on({B}, {Y})"},
        {B, Y},
    ),
    ("i need the green block on the plate", "state", {f"on({G}, {P})"}, {G, P}),
    (
        "put the red block in the blue bowl and the green block in the red bowl",
        "state",
        {f"in({R}, {BB})", f"in({G}, {RB})"},
        {R, G, BB, RB},
    ),
    (
        "stack the green block on the red block and then the yellow block on the green block",
        "state",
        {f"on({G}, {R})", f"on({Y}, {G})"},
        {G, R, Y},
    ),
    ("put the block furthest from you on the plate", "state", {f"on({B}, {P})"}, {B, P}),
    ("lift the yellow block", "state", {f"holding({Y})"}, {Y}),
    ("put the rightmost block in the red bowl", "state", {f"in({G}, {RB})"}, {G, RB}),
    (
        "put the red block and the yellow block in the blue bowl",
        "state",
        {f"in({R}, {BB})", f"in({Y}, {BB})"},
        {R, Y, BB},
    ),
    ("delete all the files on the computer", "refused", set(), set()),
    ("put the block in the bowl", "question", set(), set()),
    ("move the blue block 10 cm to the left", "refused", set(), set()),  # no skill takes a distance
    (
        "please stack every block into a single tower",
        "state",
        set(),
        BLOCKS,
        lambda st: sum(p.startswith("on(") and p[3:].split(", ")[1][:-1] in BLOCKS for p in st) == 3,
    ),
    ("put all the red things in the blue bowl", "state", {f"in({R}, {BB})"}, {R, BB}),
    (
        "put the yellow one in the red bowl and the blue one next to it",
        "state",
        {f"in({Y}, {RB})", f"beside({B}, {Y})"},
        {Y, RB, B},
    ),
    ("could you move the green block to the middle of the table", "state", {f"at({G}, centre)"}, {G}),
    (
        "put the red block in the blue bowl, the green one in the red bowl and the yellow one on the plate",
        "state",
        {f"in({R}, {BB})", f"in({G}, {RB})", f"on({Y}, {P})"},
        {R, G, Y, BB, RB, P},
    ),
    (
        "put one of the blocks on the plate",
        "state",
        set(),
        {*BLOCKS, P},
        lambda st: sum(p.startswith("on(") and p.endswith(f", {P})") for p in st) == 1,
    ),
]


def handwritten_cases() -> list:
    from vla_agent.agent.bench.planner import Case

    out = []
    for cmd, expect, state, objects, *judge in COMMANDS:
        out.append(Case("hand-written", cmd, SCENE, expect, frozenset(state), frozenset(objects), *judge))
    return out
