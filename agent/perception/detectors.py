"""Success detectors: is the current subgoal done, failed, or still running?

- ``PerceptionDetector`` (the default): the skill's effect predicates evaluated on object positions
  estimated from RGB-D pixels (``agent.perception``), confirmed over a few consecutive steps, plus
  a "settled" condition per skill so the next subgoal starts where demonstrations start (the block
  lifted clear of the table after a pick, the hand open and above the object after a place).
- ``LearnedDoneDetector``: the VLA's own "subgoal done" output.
- ``CombinedDetector``: perception confirms, and the policy's done signal ends the subgoal early;
  perception alone ends it after ``patience`` steps of confirmed effects.
- ``GroundTruthDetector``: the simulator's predicates; for benchmarks and as an upper bound only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from vla_agent.agent.perception.objects import HAND_RADIUS, Perception
from vla_agent.errors import VlaAgentError
from vla_agent.interfaces import SuccessDetector  # noqa: F401 - the interface, re-exported
from vla_agent.registry import registry
from vla_agent.sim.catalog import BLOCK_SIZE, HELD_WIDTH, REGION_ALIASES, REGIONS
from vla_agent.sim.predicates import DIRECTIONS, WorldState, evaluate
from vla_agent.skills.library import get_skill
from vla_agent.types import STATE, Observation, Predicate, Status, Subgoal, Verdict


class PerceptionDetector:
    """Effects from pixels, confirmed for ``confirm`` consecutive steps and settled."""

    name = "perception"

    def __init__(
        self,
        perception: Perception,
        kinds: dict[str, str] | None = None,
        confirm: int = 2,
        margin: float = 0.005,
        min_pixels: int = 12,
        strict: bool = False,
    ):
        self.perception = perception
        self.kinds = kinds or {o.name: o.kind for o in perception.objects}
        self.confirm = confirm
        # Perception's error it allows for: effects hold only if they hold with the moved object
        # anywhere within ``margin`` of where it is seen; an object seen with fewer than
        # ``min_pixels`` pixels is not seen well enough to judge.
        self.margin = margin
        self.min_pixels = min_pixels
        # strict: "done" during the run too only when the effects hold robustly (else only the
        # last look, ``conclude``, allows for the margin: the run's figures stay as they were).
        self.strict = strict
        self.streak = 0
        self.world: WorldState | None = None
        self.effects: list[Predicate] = []
        self.effects_hold = False

    def reset(self, subgoal: Subgoal, obs: Observation) -> None:
        self.effects = get_skill(subgoal.skill).ground("post", subgoal.args, self.kinds)
        self.world = self.perception.world(obs)
        self.perception.snapshot()
        self.streak = 0
        self.drop_streak = 0
        self.was_held = _held(self.world, subgoal.args.get("obj", ""))

    def _dropped(self, subgoal: Subgoal, w: WorldState, state: np.ndarray) -> bool:
        """A place whose block lies on the table, clearly away from both the hand and the target."""
        obj, target = subgoal.args.get("obj", ""), subgoal.args.get("target", "")
        if not _releases(subgoal) or not self.was_held or obj not in w.objects or _held(w, obj):
            return False
        o = w.objects[obj]
        if state[6] <= HELD_WIDTH[1] or self.effects_hold or o.position[2] > BLOCK_SIZE:
            return False
        far_from_hand = np.linalg.norm(o.position[:2] - state[:2]) > HAND_RADIUS
        t = w.objects.get(target)
        far_from_target = t is None or np.linalg.norm(o.position[:2] - t.position[:2]) > 0.08
        return bool(far_from_hand and far_from_target)

    def check(self, subgoal: Subgoal, obs: Observation) -> Verdict:
        w = self.world = self.perception.world(obs)
        missing = [n for n in _names(self.effects) if n not in w.objects]
        if missing:
            self.streak = 0
            self.effects_hold = False
            return Verdict(Status.RUNNING, 0.0, f"not seen: {', '.join(missing)}")
        self.effects_hold = (
            self._robust(w) is True if self.strict else all(evaluate(w, e) for e in self.effects)
        )
        settled = self.effects_hold and _settled(subgoal, w, np.asarray(obs[STATE], float))
        self.streak = self.streak + 1 if settled else 0
        if self.streak >= self.confirm:
            return Verdict(Status.DONE, 1.0, "effects seen: " + ", ".join(map(str, self.effects)))
        if self._dropped(subgoal, w, np.asarray(obs[STATE], float)):
            self.drop_streak += 1
            if self.drop_streak >= 3:
                return Verdict(Status.FAILED, 0.8, f"{subgoal.args['obj']} was dropped away from the target")
        else:
            self.drop_streak = 0
        return Verdict(Status.RUNNING, min(1.0, 0.5 * self.effects_hold + 0.5 * self.streak / self.confirm))

    def _robust(self, w: WorldState) -> bool | None:
        """Whether the effects hold, the same with the moved object shifted by ``margin`` in
        each direction; None when the answer depends on the shift (too close to call)."""
        hold = all(evaluate(w, e) for e in self.effects)
        moved = self.effects[0].args[0] if self.effects and self.effects[0].args else ""
        if self.margin <= 0 or moved not in w.objects:
            return hold
        o = w.objects[moved]
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            shifted = replace(o, position=o.position + self.margin * np.array([dx, dy, 0.0]))
            other = WorldState({**w.objects, moved: shifted}, reference=w.reference)
            if all(evaluate(other, e) for e in self.effects) != hold:
                return None
        return hold

    def conclude(self, subgoal: Subgoal, obs: Observation) -> Verdict:
        """The last word once the policy has finished without a DONE: FAILED when the effects
        clearly do not hold, DONE when they clearly do and the motion is over, UNSURE when an
        object they name is hidden or barely seen, or the verdict is within ``margin``."""
        w = self.world = self.perception.world(obs)
        watched = [n for e in self.effects if e.name != "holding" for n in _names([e])]
        hidden = [n for n in watched if self.perception.seen.get(n, 0) < self.min_pixels]
        if hidden:
            return Verdict(Status.UNSURE, 0.5, f"the {hidden[0]} is hidden or barely visible")
        hold = self._robust(w)
        if hold is None:
            return Verdict(
                Status.UNSURE,
                0.5,
                f"within {self.margin * 100:.1f} cm of {', '.join(map(str, self.effects))}",
            )
        if hold and _settled(subgoal, w, np.asarray(obs[STATE], float)):
            return Verdict(
                Status.DONE, 0.9, "effects seen after a last look: " + ", ".join(map(str, self.effects))
            )
        return Verdict(Status.FAILED, 0.9, "the effects are not seen")


_NOT_OBJECTS = set(REGIONS) | set(REGION_ALIASES) | set(DIRECTIONS)

_ASK = {
    "in": "did the {0} end up in the {1}?",
    "on": "did the {0} end up on the {1}?",
    "at": "did the {0} end up on the {1} side of the table?",
    "beside": "did the {0} end up next to the {1}?",
    "behind": "did the {0} end up behind the {1}?",
    "holding": "is the {0} in the gripper?",
    "moved": "did the {0} move {1}?",
}


def effect_question(effects: list[Predicate]) -> str:
    """The yes/no question a person answers for a detector that cannot tell."""
    about = [e for e in effects if e.args] or effects  # "hand_empty()" goes without saying
    said = [_ASK[e.name].format(*e.args) if e.name in _ASK else f"does {e} hold?" for e in about]
    return said[0] if len(said) == 1 else " and ".join(q.rstrip("?") for q in said) + "?"


def _names(preds: list[Predicate]) -> list[str]:
    """The object names among the predicates' arguments (not regions or directions)."""
    return [a for p in preds for a in p.args if a not in _NOT_OBJECTS]


def _held(w: WorldState, obj: str) -> bool:
    o = w.objects.get(obj)
    return o is not None and o.touching_fingers >= 2


def _settled(subgoal: Subgoal, w: WorldState, state: np.ndarray) -> bool:
    """The skill's own "motion over" condition (its ``settled`` hook), once the effects hold."""
    obj = w.objects.get(subgoal.args.get("obj", ""))
    settled = get_skill(subgoal.skill).settled
    return obj is None or settled is None or bool(settled(obj, state))


def _releases(subgoal: Subgoal) -> bool:
    """A skill that starts with the object in the hand and ends with the hand empty (a place)."""
    spec = get_skill(subgoal.skill)
    return "holding({obj})" in spec.preconditions and "hand_empty()" in spec.effects


class LearnedDoneDetector:
    """The policy's "subgoal done" output (``policy.done``), confirmed over ``confirm`` steps."""

    name = "vla"

    def __init__(self, done: Callable[[], bool], confirm: int = 2):
        self.done = done
        self.confirm = confirm
        self.streak = 0

    def reset(self, subgoal: Subgoal, obs: Observation) -> None:
        self.streak = 0

    def check(self, subgoal: Subgoal, obs: Observation) -> Verdict:
        self.streak = self.streak + 1 if self.done() else 0
        if self.streak >= self.confirm:
            return Verdict(Status.DONE, 0.9, "the policy says done")
        return Verdict(Status.RUNNING, 0.0)


class CombinedDetector:
    """Perception decides; the policy's done signal ends a confirmed subgoal at once, and without it
    confirmed effects end the subgoal after ``patience`` more steps."""

    name = "perception+vla"

    def __init__(self, perception: PerceptionDetector, done: Callable[[], bool], patience: int = 6):
        self.perception = perception
        self.done = done
        self.patience = patience

    def reset(self, subgoal: Subgoal, obs: Observation) -> None:
        self.perception.reset(subgoal, obs)

    def conclude(self, subgoal: Subgoal, obs: Observation) -> Verdict:
        return self.perception.conclude(subgoal, obs)

    def check(self, subgoal: Subgoal, obs: Observation) -> Verdict:
        v = self.perception.check(subgoal, obs)
        if v.status is not Status.DONE:
            return v
        if self.done() or self.perception.streak >= self.perception.confirm + self.patience:
            return v
        return Verdict(Status.RUNNING, v.confidence, "effects seen; waiting for the policy to finish")


class GroundTruthDetector:
    """The simulator's own predicates (privileged: benchmarks and upper bounds only)."""

    name = "ground-truth"

    def __init__(self, env, confirm: int = 1):
        self.env = env
        self.confirm = confirm

    def reset(self, subgoal: Subgoal, obs: Observation) -> None:
        kinds = self.env.kinds()
        self.effects = get_skill(subgoal.skill).ground("post", subgoal.args, kinds)
        self.env.snapshot()
        self.streak = 0

    def check(self, subgoal: Subgoal, obs: Observation) -> Verdict:
        w = self.env.world_state()
        ok = all(evaluate(w, e) for e in self.effects) and _settled(subgoal, w, np.asarray(obs[STATE], float))
        self.streak = self.streak + 1 if ok else 0
        if self.streak >= self.confirm:
            return Verdict(Status.DONE, 1.0, "ground truth")
        return Verdict(Status.RUNNING, 0.0)


# Detectors by name (``--detector``). A factory is ``factory(arg, env=None)`` and returns
# ``make(perception, policy) -> SuccessDetector``: the executor builds the detector again after
# every scene reset, from the perception of that scene. Other packages register theirs under the
# ``vla_agent.detectors`` entry-point group.
DETECTORS = registry("detector", "vla_agent.detectors")


def _policy_done(policy) -> Callable[[], bool]:
    return lambda: bool(policy.done)  # a policy without a done signal says False


@DETECTORS.register(
    "perception", help="effects seen in RGB-D pixels, ended early by the policy's done (default)"
)
def _perception(arg: str, env=None):
    """``perception`` or ``perception:margin=0.01,min_pixels=20,strict=1`` (metres, pixels)."""
    opts: dict = {}
    for item in filter(None, (arg or "").split(",")):
        key, _, value = item.partition("=")
        if key not in ("margin", "min_pixels", "strict") or not value:
            raise VlaAgentError(
                f"perception detector: unknown option {item!r} (margin=M, min_pixels=N, strict=0|1)"
            )
        opts[key] = {"margin": float, "min_pixels": int, "strict": lambda v: v not in ("0", "false")}[key](
            value
        )
    return lambda perception, policy: CombinedDetector(
        PerceptionDetector(perception, **opts), _policy_done(policy)
    )


@DETECTORS.register("vla", help="the VLA's own done output only")
def _learned(arg: str, env=None):
    return lambda perception, policy: LearnedDoneDetector(_policy_done(policy))


@DETECTORS.register("ground-truth", help="the simulator's predicates (benchmarks, an upper bound)")
def _ground_truth(arg: str, env=None):
    if env is None:
        raise VlaAgentError("the ground-truth detector exists only in the simulator")
    return lambda perception, policy: GroundTruthDetector(env)
