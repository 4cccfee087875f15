"""Executing action chunks: what a policy does with the H actions it predicts at once.
Torch-free, shared by the in-process policy and the policy-server client."""

from __future__ import annotations

import numpy as np


class GripperEnsemble:
    """Temporal ensembling of the gripper over overlapping chunks (after ACT), with two rules
    for the moments a reactive policy gets wrong.

    The command for control step ``t`` flips the gripper when any chunk that covered ``t`` (the
    one predicted ``k`` steps earlier, at its position ``k``) gave the flip a probability of at
    least 0.5. A reactive policy hovering at the release point keeps forecasting "open in 3
    steps" and, executed position by position, would never open; honouring the earlier
    forecast breaks that fixed point while a consistent forecast still opens on time. After a
    flip the gripper keeps its new command for ``dwell`` steps (it takes that long to move), so an
    ambiguous state cannot make it chatter.

    - Release at rest: a release (closed -> open) waits while the arm still descends faster than
      ``release_descent`` metres per step (commanded at that step, or measured over the last
      chunk), for at most ``max_defer`` steps. The early forecasts otherwise open the fingers
      mid-descent, and a block dropped from a few centimetres bounces off the one below. The
      expert opens at rest.
    - Grasp when stalled: while the arm is ``stalled`` (it has not moved for a while) with the
      fingers open, they close at P(open) below ``stall_open`` instead of 0.5. A policy sitting
      at the grasp pose with P(open) at 0.55-0.67 for the whole budget was the one way held-out
      picks failed; closing on nothing is undone by the next open, whereas no such rule applies
      to releases (dropping a held block from the air is not).
    """

    def __init__(
        self,
        dwell: int = 4,
        release_descent: float = 0.01,
        max_defer: int = 4,
        stall_open: float = 0.75,
    ) -> None:
        self.dwell = dwell
        self.release_descent = release_descent
        self.max_defer = max_defer
        self.stall_open = stall_open
        self.reset()

    def reset(self) -> None:
        self._t = 0
        self._p: dict[int, list[float]] = {}
        self._open: bool | None = None
        self._hold_until = 0
        self._deferred = 0

    def decide(
        self,
        gripper_prob: np.ndarray,
        n: int,
        dz: np.ndarray | None = None,
        descent: float = 0.0,
        stalled: bool = False,
    ) -> np.ndarray:
        """Add a chunk predicted now and return the gripper commands (+1/-1) for its first ``n``
        steps. ``dz`` (metres per step): the arm's commanded vertical motion at those steps;
        ``descent`` (metres per step, down positive): how fast it was measured to descend;
        ``stalled``: the arm has not moved for a while."""
        self.add(gripper_prob)
        return np.array(
            [self.next(0.0 if dz is None else float(dz[i]), descent, stalled) for i in range(n)], np.float64
        )

    def add(self, gripper_prob: np.ndarray) -> None:
        """A chunk's P(open) forecasts, its first for the coming step."""
        for k, p in enumerate(np.asarray(gripper_prob, np.float64).ravel()):
            self._p.setdefault(self._t + k, []).append(float(p))

    def next(self, dz: float = 0.0, descent: float = 0.0, stalled: bool = False) -> float:
        """The gripper command (+1/-1) for the coming step, from every forecast made for it."""
        t = self._t
        ps = self._p.pop(t, [0.5])
        was = self._open
        if was is None:
            self._open = ps[-1] >= 0.5
        elif t >= self._hold_until:
            keep_open = self.stall_open if stalled else 0.5
            want = min(ps) > keep_open if was else max(ps) >= 0.5
            descending = max(-dz, descent) > self.release_descent
            if want and not was and descending and self._deferred < self.max_defer:
                self._deferred += 1  # still on the way down: release at rest
            else:
                self._open, self._deferred = want, 0
        if was is not None and self._open != was:
            self._hold_until = t + 1 + self.dwell
        self._t += 1
        return 1.0 if self._open else -1.0

    def idle(self) -> None:
        """A step with no action to execute (waiting for a chunk): its forecasts lapse."""
        self._p.pop(self._t, None)
        self._t += 1

    @property
    def command(self) -> float | None:
        """The last gripper command (+1/-1), None before the first."""
        return None if self._open is None else (1.0 if self._open else -1.0)


class DoneFilter:
    """The learned "subgoal done" signal, debounced: done once P(done) >= ``threshold`` on
    ``consecutive`` predictions in a row, and never in the first ``min_steps`` control steps (a
    single frame cannot tell "about to push" from "just pushed"; the arm poses look alike)."""

    def __init__(self, threshold: float = 0.5, min_steps: int = 12, consecutive: int = 2):
        self.threshold, self.min_steps, self.consecutive = threshold, min_steps, consecutive
        self.reset()

    def reset(self) -> None:
        self.steps, self.streak, self.prob = 0, 0, 0.0

    def update(self, prob: float, steps: int) -> bool:
        """Record one prediction made after ``self.steps`` steps, covering the next ``steps``."""
        self.prob = prob
        self.streak = self.streak + 1 if prob >= self.threshold else 0
        done = self.streak >= self.consecutive and self.steps >= self.min_steps
        self.steps += steps
        return done


class StartMemory:
    """Where the named object was when the subgoal began, from the policy's own estimates: the
    mean of the first ``frames`` predictions, then frozen for the rest of the subgoal. Before it
    is frozen ``start`` is None (the model then uses its current estimate, as it saw in training
    at the first frames of an episode)."""

    def __init__(self, frames: int = 3) -> None:
        self.frames = frames
        self.reset()

    def reset(self) -> None:
        self._seen: list[np.ndarray] = []
        self.start: np.ndarray | None = None

    def update(self, estimate: np.ndarray) -> None:
        """Record the object position (metres) estimated by one prediction."""
        if self.start is not None:
            return
        estimate = np.asarray(estimate, np.float64).reshape(3)
        if np.all(np.isfinite(estimate)):
            self._seen.append(estimate)
        if len(self._seen) >= self.frames:
            self.start = np.mean(self._seen, axis=0)


class ChunkRunner:
    """What a policy does with each predicted chunk, the same in-process and over the server:
    keep the first ``execute`` actions, decide the gripper by ``GripperEnsemble``, debounce the
    done signal (``DoneFilter``; once done the arm holds still) and feed the ``StartMemory``."""

    def __init__(
        self,
        execute: int,
        done_threshold: float = 0.5,
        stall_steps: int = 6,
        stall_motion: float = 0.005,
    ) -> None:
        self.execute = execute
        self.stall_steps, self.stall_motion = stall_steps, stall_motion
        self.gripper = GripperEnsemble()
        self.done_filter = DoneFilter(done_threshold)
        self.memory = StartMemory()
        self.reset()

    def reset(self) -> None:
        self.gripper.reset()
        self.done_filter.reset()
        self.memory.reset()
        self.done, self.done_prob = False, 0.0
        self._tool: list[np.ndarray] = []  # measured tool positions, one per chunk

    def take(
        self,
        actions: np.ndarray,
        gripper_prob: np.ndarray,
        done_prob: float,
        object_position: np.ndarray | None = None,
        tool_position: np.ndarray | None = None,
    ) -> np.ndarray:
        """The actions to execute from one predicted chunk (H, 7). ``tool_position`` (metres,
        the proprioception's first three values when the chunk was predicted) tells how fast the
        arm descends and whether it has stalled (moved less than ``stall_motion`` over the last
        ``stall_steps`` steps)."""
        chunk = np.array(actions[: self.execute], np.float64)  # a writable copy
        descent, stalled = 0.0, False
        if tool_position is not None:
            pos = np.asarray(tool_position, np.float64).reshape(3)
            if np.all(np.isfinite(pos)):
                if self._tool:
                    descent = (self._tool[-1][2] - pos[2]) / self.execute
                self._tool.append(pos)
                window = -(-self.stall_steps // self.execute) + 1  # chunks spanning stall_steps
                del self._tool[:-window]
                if len(self._tool) == window:
                    stalled = max(np.linalg.norm(q - pos) for q in self._tool) < self.stall_motion
        chunk[:, 6] = self.gripper.decide(gripper_prob, len(chunk), chunk[:, 2], descent, stalled)
        if object_position is not None:
            self.memory.update(object_position)
        self.done_prob = float(done_prob)
        self.done = self.done_filter.update(self.done_prob, len(chunk))
        if self.done:  # hold still: the subgoal is finished
            chunk[:, :6] = 0.0
        return chunk


class ChunkedPolicy:
    """The policy-facing view of a ``ChunkRunner`` (``self.runner``), for the in-process policy
    and the server client alike: what the executor and the detector read after each chunk."""

    runner: ChunkRunner
    skills: tuple[str, ...] | None = None  # what it was trained on, when known

    @property
    def execute(self) -> int:
        return self.runner.execute

    @property
    def memory(self) -> StartMemory:
        return self.runner.memory

    @property
    def done(self) -> bool:
        return self.runner.done

    @property
    def done_prob(self) -> float:
        return self.runner.done_prob
