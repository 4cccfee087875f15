"""Small shared types. This module imports nothing else of the project, so every part may use it.

Conventions (see DESIGN.md): actions are 7-D end-effector deltas
``[dx, dy, dz, droll, dpitch, dyaw, gripper]`` in the robot base frame, metres and radians per
control step, gripper ``+1 = open, -1 = close``. Observations are dicts with the openpi key names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Observation keys (openpi policy protocol).
IMAGE = "observation/image"
WRIST_IMAGE = "observation/wrist_image"
DEPTH = "observation/depth"
SEGMENTATION = "observation/segmentation"  # simulator-only; policies and detectors must not read it
STATE = "observation/state"  # [x, y, z, roll, pitch, yaw, gripper_width]
JOINTS = "observation/joint_position"  # optional: measured arm joint angles (rad), openpi's DROID key
PROMPT = "prompt"
OBJECT_START = "object_start"  # optional request key: where the object was when the subgoal began

ACTION_DIM = 7
STATE_DIM = 7
GRIPPER_OPEN = 1.0
GRIPPER_CLOSE = -1.0

Observation = dict[str, Any]
Action = np.ndarray  # (7,)
ActionChunk = np.ndarray  # (H, 7)


@dataclass(frozen=True)
class Predicate:
    """A ground predicate such as ``in(red block, blue bowl)``."""

    name: str
    args: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}({', '.join(self.args)})"

    @classmethod
    def parse(cls, text: str) -> Predicate:
        """Parse ``name(arg, arg)``; raises ValueError with the offending text."""
        text = text.strip()
        if not text.endswith(")") or "(" not in text:
            raise ValueError(f"not a predicate: {text!r} (expected name(arg, ...))")
        name, rest = text[:-1].split("(", 1)
        args = tuple(a.strip() for a in rest.split(",") if a.strip())
        if not name.strip().isidentifier():
            raise ValueError(f"bad predicate name in {text!r}")
        return cls(name.strip(), args)


@dataclass(frozen=True)
class Subgoal:
    """One step of a plan: a skill, its grounded arguments and the sentence sent to the policy."""

    skill: str
    args: dict[str, str] = field(default_factory=dict)
    instruction: str = ""

    def __hash__(self) -> int:
        return hash((self.skill, tuple(sorted(self.args.items())), self.instruction))


class Status(enum.Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    UNSURE = "unsure"  # a detector that cannot tell (hidden object, a verdict within its error)


@dataclass(frozen=True)
class Verdict:
    """A success detector's judgement of the current subgoal."""

    status: Status
    confidence: float = 1.0
    reason: str = ""


@dataclass(frozen=True)
class SceneObject:
    """An object a planner may refer to: its name (``"red block"``, ``"red block 2"``), kind and
    colour, and where it is (base frame, metres) when known."""

    name: str
    kind: str
    color: str
    position: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class Scene:
    """What the planner sees: the objects in view and the relations that hold between them
    (``Predicate`` over object names, e.g. ``in(red block, blue bowl)``, ``holding(red block)``)."""

    objects: tuple[SceneObject, ...]
    relations: tuple[Predicate, ...] = ()

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objects]

    def get(self, name: str) -> SceneObject | None:
        return next((o for o in self.objects if o.name == name), None)

    def kinds(self) -> dict[str, str]:
        return {o.name: o.kind for o in self.objects}

    def describe(self) -> str:
        rel = "; ".join(str(r) for r in self.relations)
        return ", ".join(self.names) + (f" [{rel}]" if rel else "")


@dataclass(frozen=True)
class StepOutcome:
    """What happened to one subgoal: the executor's verdict after its retries."""

    subgoal: Subgoal
    status: Status
    attempts: int = 1
    steps: int = 0
    reason: str = ""


@dataclass(frozen=True)
class ShieldResult:
    """The action the shield lets through and what it changed (empty ``violations``: untouched)."""

    action: np.ndarray
    violations: tuple[str, ...] = ()
    held: bool = False  # the shield replaced the action by a safe hold
    state_event: bool = False  # the measured state left the envelope or strayed from the command
    repeat_refused: bool = False  # part of the move was dropped: it led to an earlier safety event

    @property
    def intervened(self) -> bool:
        return bool(self.violations)

    @property
    def safety_event(self) -> bool:
        """The arm was held, or kept from repeating what caused an event: plans made before are void."""
        return self.held or self.repeat_refused
