"""The offline planner: deterministic, no network, a few milliseconds per command.

It reads a command as a sequence of clauses ("then", "after that", "finally", "and" before a
verb, ";", "."), each clause as a verb, the objects it acts on and a target or direction, and
turns the clauses into goals ("red block in blue bowl", "hold the red block", "push it left").
Goals compile into subgoals against the current scene (a goal already true is skipped; a block
already in the hand is not picked again), and the result is validated like any plan.

Language it handles:

- quantifiers: "all the red blocks", "every block", "each cube", "both blocks", "the two blocks",
  "the other blocks", "the rest";
- pronouns: "it", "them", "those", "the same with the blue one", "do the same for ...";
- synonyms (cube/brick/box -> block, container/basket/bin/pot -> bowl, dish/tray -> plate, colour
  names like violet/teal/navy), and the shipped MiniLM encoder for other unfamiliar nouns (used
  only when its best match is clearly ahead of the second);
- relations: in, into, inside, on, onto, on top of, to/at/on the left (side of the table), ...;
- whole tasks: "clear the table", "sort the blocks into the bowls by colour", "stack all the blocks
  into a tower".

What it cannot ground it refuses with a message naming the word; it never invents an object.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from vla_agent.agent.planning.compile import Goal, compile_goals, freest_region, tower_goals, whole_task_goals
from vla_agent.agent.planning.grounding import bare_direction, embedding_match, split_exclusion
from vla_agent.agent.planning.lexicon import (
    COLOR_WORDS,
    DIRECTION_WORDS,
    FILLER,
    GENERIC,
    KIND_WORDS,
    REGION_WORDS,
    all_verbs,
    phrase_skills,
    verbs_of,
)
from vla_agent.agent.planning.plan import (
    CAPACITY,
    Ambiguous,
    Plan,
    PlanError,
    SymbolicState,
)
from vla_agent.agent.planning.reading import normalize_command, split_clauses
from vla_agent.agent.planning.references import (
    by_distance_to_robot,
    color_target,
    mark_references,
    pick_by_place,
    resolve_color_targets,
    some_of,
    split_reference,
)
from vla_agent.agent.planning.towers import ORDER_WORDS, ordered_tower, several_towers
from vla_agent.errors import VlaAgentError
from vla_agent.sim.catalog import COLORS
from vla_agent.skills.library import ArgType, SkillSpec
from vla_agent.types import Scene, Status, StepOutcome


@dataclass
class _Clause:
    verb: str
    objects: list[str]
    target: str = ""
    direction: str = ""
    text: str = ""


class OfflinePlanner:
    """``plan``/``replan`` as in the ``Planner`` protocol; raises PlanError when it must refuse."""

    name = "offline"

    def __init__(self, use_embeddings: bool = True):
        self.use_embeddings = use_embeddings
        self.experience = None  # agent.core.experience.Experience: picks the likelier alternative

    # ------------------------------------------------------------------ protocol
    def plan(self, command: str, scene: Scene) -> Plan:
        t0 = time.perf_counter()
        try:
            goals = self.goals(command, scene)
        except Ambiguous as e:  # a question, answered by the person (chat, voice) or failed on (task files)
            return Plan(question=e.question, options=e.options, about=e.about, planner=self.name)
        plan = compile_goals(goals, scene, planner=self.name)
        plan.latency_ms = (time.perf_counter() - t0) * 1000
        return plan

    def replan(self, command: str, scene: Scene, history: Sequence[StepOutcome]) -> Plan:
        """The rest of the command from the scene as it is now: goals already true are skipped,
        pushes already done are not repeated."""
        t0 = time.perf_counter()
        goals = self.goals(command, scene)
        done_pushes = [
            (o.subgoal.args.get("obj"), o.subgoal.args.get("direction"))
            for o in history
            if o.subgoal.skill == "push" and o.status is Status.DONE
        ]
        rest = []
        for g in goals:
            if g.kind == "push" and (g.obj, g.direction) in done_pushes:
                done_pushes.remove((g.obj, g.direction))
                continue
            rest.append(g)
        held = SymbolicState.from_scene(scene).holding
        if held is not None and (not rest or rest[0].obj != held):
            # A failed step left a block in the hand that the rest of the command does not start
            # with (a wrong block picked, a place that never let go): put it down first, where the
            # table is freest, rather than refusing to go on.
            rest.insert(0, Goal("place", held, target=freest_region(scene, held)))
        plan = compile_goals(rest, scene, planner=self.name, skip_regions=True)
        plan.latency_ms = (time.perf_counter() - t0) * 1000
        return plan

    # ------------------------------------------------------------------ language -> goals
    def goals(self, command: str, scene: Scene) -> list[Goal]:
        text = normalize_command(command)
        towers = several_towers(text, lambda t, one=False: self._objects(t, scene, [], singular=one))
        if towers is not None:
            return [g for t in towers for g in tower_goals(t, scene)]
        whole = whole_task_goals(text, scene)
        if whole is not None:
            return whole
        clauses: list[_Clause] = []
        last: list[str] = []
        for raw in split_clauses(text):
            c = self._clause(raw, scene, last, clauses)
            if c is None:
                continue
            clauses.append(c)
            if c.objects:
                last = c.objects
        if not clauses:
            raise PlanError([f"found no action in {command!r}; try 'put the red block in the bowl'"])
        goals: list[Goal] = []
        planned: dict[str, int] = {}
        for c in clauses:
            if c.target.startswith("@"):  # a container chosen by colour, per object
                st = SymbolicState.from_scene(scene)

                def room(name: str, st: SymbolicState = st) -> int:
                    return CAPACITY[scene.kinds()[name]] - len(st.above(name)) - planned.get(name, 0)

                pairs = resolve_color_targets(c.objects, c.target, scene, room)
                for obj, target in pairs:
                    planned[target] = planned.get(target, 0) + 1
                    goals.append(Goal("place", obj, target=target))
                continue
            for obj in c.objects if c.verb != "tower" else ():
                if c.verb == "push":
                    goals.append(Goal("push", obj, direction=c.direction))
                elif c.verb == "place":
                    goals.append(Goal("place", obj, target=c.target))
                elif c.verb not in ("hold", "tower"):  # a skill with its own phrase
                    goals.append(Goal(c.verb, obj, target=c.target, direction=c.direction))
                else:
                    goals.append(Goal("hold", obj))
            if c.verb == "tower":
                goals.extend(tower_goals(c.objects, scene))
        return goals

    def _clause(self, text: str, scene: Scene, last: list[str], previous: list[_Clause]) -> _Clause | None:
        words = text.split()
        if not words:
            return None
        same = re.match(r"^(?:do )?(?:the )?same (?:thing )?(?:with|for|to) (.+)$", text)
        if same:
            if not previous:
                raise PlanError(["'the same' refers to nothing before it"])
            prev = previous[-1]
            objs = self._objects(same.group(1), scene, last, exclude={prev.target})
            return replace(prev, objects=objs, text=text)
        verbs = all_verbs()
        verb_i = next((i for i, w in enumerate(words) if w in verbs), None)
        if verb_i is None:
            raise PlanError([f"no action verb in {text!r} (known: pick, put, place, stack, push, ...)"])
        verb = words[verb_i]
        rest = mark_references(" ".join(words[verb_i + 1 :]))
        if verb in ("stack", "build", "pile", "make") and ORDER_WORDS.search(rest):
            order = ordered_tower(rest, lambda t, one=False: self._objects(t, scene, last, singular=one))
            return _Clause("tower", order, text=text)
        if re.search(r"\b\d+(?:\.\d+)? ?(?:cm|centimet\w*|mm|millimet\w*|m|metres?|meters?|inch\w*)\b", rest):
            raise PlanError(
                [
                    f"{text!r}: the skills here do not take a distance (a push moves a block about 10 cm); "
                    "leave it out, e.g. 'push the blue block left'"
                ]
            )
        if verb in verbs_of("push") or (verb in ("move", "shift") and bare_direction(rest)):
            m = re.match(
                r"^(.*?)\s*(?:to the |towards the |toward the |to )?"
                r"\b(left|right|forwards?|backwards?|away|ahead|back)\b(.*)$",
                rest,
            )
            if not m:
                raise PlanError([f"{text!r}: push needs a direction (left, right, forward, backward)"])
            objs = self._objects(m.group(1), scene, last)
            return _Clause("push", objs, direction=DIRECTION_WORDS[m.group(2)], text=text)
        for spec in phrase_skills():
            m = re.match(spec.phrase, rest) if verb in spec.verbs else None
            if m:
                return self._skill_clause(spec, m.groupdict(), scene, last, text)
        # A target after a relation word: in / on / at / to (a region or an object).
        m = re.search(r"\s*\b(in|on|at|to|onto|towards?|next)\b\s+(.*)$", rest)
        if (
            m
            and verb not in verbs_of("pick") | {"stack"}
            or (m and verb in verbs_of("pick") and m.group(1) in ("in", "on", "to", "onto"))
        ):
            target, objs = self._object_and_target(rest[: m.start()], m.group(2), scene, last)
            return _Clause("place", objs, target=target, text=text)
        if verb == "stack" and m and m.group(1) in ("on", "onto", "in"):
            target, objs = self._object_and_target(rest[: m.start()], m.group(2), scene, last)
            return _Clause("place", objs, target=target, text=text)
        if verb in ("stack", "build", "pile", "make"):
            objs = self._objects(
                rest.replace("into a tower", "").replace("a tower", "").replace("tower", ""), scene, last
            )
            return _Clause("tower", objs, text=text)
        if verb in verbs_of("pick"):
            objs = self._objects(rest, scene, last)
            if len(objs) > 1:
                raise PlanError([f"{text!r}: the gripper holds one block at a time ({', '.join(objs)})"])
            return _Clause("hold", objs, text=text)
        there = re.search(r"\b(?:over )?(?:there|here)\s*$", rest)
        if there and verb not in verbs_of("pick"):  # "put it there": where?
            self._objects(rest[: there.start()], scene, last)  # which object first
            holders = [o.name for o in scene.objects if o.kind in ("bowl", "plate")]
            if len(holders) == 1:
                return _Clause(
                    "place", self._objects(rest[: there.start()], scene, last), holders[0], text=text
                )
            if holders:
                raise Ambiguous(there.group(0), holders)
        raise PlanError([f"{text!r}: say where to put it (e.g. 'in the blue bowl', 'on the left side')"])

    def _skill_clause(
        self, spec: SkillSpec, groups: dict, scene: Scene, last: list[str], text: str
    ) -> _Clause:
        """A clause of a skill outside the core grammar, from its phrase's named groups."""
        types = {a.name: a.type for a in spec.args}
        target = direction = ""
        for name in ("target", "direction"):
            words = (groups.get(name) or "").strip()
            if name not in types or not words:
                continue
            if types[name] is ArgType.DIRECTION:
                found = [DIRECTION_WORDS[w] for w in words.split() if w in DIRECTION_WORDS]
                if not found:
                    raise PlanError(
                        [f"{text!r}: {spec.name} needs a direction (left, right, forward, backward)"]
                    )
                direction = found[0]
            elif types[name] in (ArgType.OBJECT, ArgType.THING):
                target = self._objects(words, scene, last[-1:], singular=True)[0]
            else:
                target = self._target(words, scene, last)
        objs = self._objects(groups.get("obj") or "", scene, last, exclude={target})
        return _Clause(spec.name, objs, target=target, direction=direction, text=text)

    def _object_and_target(
        self, obj_text: str, target_text: str, scene: Scene, last: list[str]
    ) -> tuple[str, list[str]]:
        """The target, then the objects (never the target itself). A question about the target
        waits until the objects are known to exist: "put the purple block in the bowl" with no
        purple block is refused, not answered with "which bowl?"."""
        try:
            target = self._target(target_text, scene, last)
        except Ambiguous:
            with contextlib.suppress(Ambiguous):
                self._objects(obj_text, scene, last)
            raise
        return target, self._objects(obj_text, scene, last, exclude={target})

    def _target(self, text: str, scene: Scene, last: list[str]) -> str:
        marker = color_target(text)
        if marker is not None:
            return marker
        if re.search(r"\bor\b", text):  # "in a bowl or on the plate": the likelier to succeed
            alternatives = [
                re.sub(r"^(?:in|on|at|to|onto)\s+", "", t.strip()) for t in re.split(r"\bor\b", text)
            ]
            options = [self._target(t, scene, last) for t in alternatives if t]
            kinds = scene.kinds()

            def chance(name: str) -> float:
                kind = kinds.get(name, "region")
                return self.experience.predict("place", kind)[0] if self.experience is not None else 0.0

            return max(options, key=chance)  # ties: the first said
        words = [
            w for w in text.split() if w not in ("the", "of", "top", "side", "table", "a", "part", "area")
        ]
        regions = [REGION_WORDS[w] for w in words if w in REGION_WORDS]
        if regions and not any(w in KIND_WORDS or w in COLOR_WORDS for w in words):
            return regions[0]
        objs = self._objects(text, scene, last[-1:], singular=True)
        return objs[0]

    def _objects(
        self,
        text: str,
        scene: Scene,
        last: list[str],
        exclude: set[str] | None = None,
        singular: bool = False,
    ) -> list[str]:
        """Resolve a noun phrase to scene object names (refusing what it cannot ground). An
        exclusion ("but the yellow one", "that is not green", "other than the red block") is taken
        off the phrase first: its colours and kinds name what must not be chosen."""
        text, exclusions = split_exclusion(text.strip(), scene)
        exclude = (exclude or set()) | exclusions
        text, how, landmark_text = split_reference(text)
        landmark = None
        if landmark_text and landmark_text != "you":
            landmark = scene.get(self._objects(landmark_text, scene, last, singular=True)[0])
        words = re.findall(r"[a-z]+", text)
        if not words or words in (["it"], ["that"], ["this"], ["them"], ["those"], ["these"], ["they"]):
            if not last:  # "put it there" with nothing before: which one?
                blocks = [
                    o.name for o in scene.objects if o.kind == "block" and o.name not in (exclude or ())
                ]
                if len(blocks) == 1 and words in (["it"], ["that"], ["this"]):
                    return blocks
                if len(blocks) > 1 and words in (["it"], ["that"], ["this"]):
                    raise Ambiguous(text, blocks)
                raise PlanError([f"{text or 'the command'!r} refers to no object mentioned before"])
            return list(last)
        colors: list[str] = []
        kind = ""
        plural = False
        unknown: list[str] = []
        for w in words:
            base = (
                w[:-2]
                if w.endswith("es") and w[:-2] in KIND_WORDS
                else w[:-1]
                if w.endswith("s") and w[:-1] in KIND_WORDS
                else w
            )
            if w in COLOR_WORDS:
                if COLOR_WORDS[w] is None:
                    raise PlanError([f"there is no {w} object: the scene has {', '.join(scene.names)}"])
                colors.append(COLOR_WORDS[w])
            elif base in KIND_WORDS:
                kind = KIND_WORDS[base]
                plural = plural or base != w
            elif w in ("ones", "objects", "things", "items", "pieces", "them", "they"):
                plural = True
            elif w in FILLER or w in GENERIC or w in ("and", "or", "except", "but", "not"):
                continue
            else:
                g = self._ground(w)
                if g is None:
                    unknown.append(w)
                elif g in COLORS:
                    colors.append(g)
                else:
                    kind = g
        if unknown:
            raise PlanError([f"cannot ground {unknown[0]!r}: the scene has {', '.join(scene.names)}"])
        quant = re.search(r"\b(all|every|each|both|two|three|four|five|rest|remaining|other)\b", text)
        plural = plural or quant is not None or len(colors) > 1
        cands = [
            o
            for o in scene.objects
            if (not colors or o.color in colors) and (not kind or o.kind == kind) and o.name not in exclude
        ]
        if not kind and any(o.kind == "block" for o in cands):  # "the red one": blocks first
            cands = [o for o in cands if o.kind == "block"]
        if quant and quant.group(1) in ("rest", "remaining", "other") and last:
            cands = [o for o in cands if o.name not in last]
        desc = " ".join(colors + [kind or "object"])
        if not cands:
            raise PlanError([f"there is no {desc} in the scene (objects: {', '.join(scene.names)})"])
        if len(colors) > 1:  # in the order they were said: "stack the red, green and blue blocks"
            cands.sort(key=lambda o: colors.index(o.color))
        anyof = some_of(text)
        if how:
            said = {"two": 2, "three": 3, "four": 4, "five": 5}.get(quant.group(1) if quant else "", 0)
            return pick_by_place(cands, how, landmark, anyof or said or 1, text)
        if anyof and not singular:
            if len(cands) < anyof:
                raise PlanError(
                    [f"{text!r}: asked for {anyof}, found {len(cands)} ({', '.join(o.name for o in cands)})"]
                )
            return [o.name for o in by_distance_to_robot(cands)[:anyof]]
        if singular or not plural:
            if len(cands) > 1:
                if len(set(colors)) > 1:  # "the blue bowl, the green one": not one object
                    raise PlanError([f"{text.strip()!r} names more than one object where one is meant"])
                any_one = (
                    re.search(
                        r"\b(?:a|an|any)\b|(?<!the )\bone\s+(?:\w+\s+)?(?:block|cube|brick|bowl|plate)", text
                    )
                    is not None
                )
                exact = [o for o in cands if o.name == " ".join(colors + [kind])]
                if len(exact) == 1 and not any_one:
                    return [exact[0].name]
                if any_one:
                    return [cands[0].name]
                raise Ambiguous(text, [o.name for o in cands])
            return [cands[0].name]
        n = {"both": 2, "two": 2, "three": 3, "four": 4, "five": 5}.get(quant.group(1) if quant else "", 0)
        if n and len(cands) != n:
            raise PlanError(
                [f"{text!r}: expected {n}, found {len(cands)} ({', '.join(o.name for o in cands)})"]
            )
        return [o.name for o in cands]

    def _ground(self, word: str) -> str | None:
        """Map an unfamiliar word to a colour or kind with the shipped MiniLM encoder, only when
        the best match is clearly ahead."""
        if not self.use_embeddings or len(word) < 3:
            return None
        try:
            return embedding_match(word)
        except VlaAgentError:
            return None
