"""The interfaces that connect the parts, in one place. Imports nothing of the project but
``vla_agent.types``, so any part (and any plugin) can implement them without cycles.

Implementations: planners (``agent.planner_offline.OfflinePlanner``, ``agent.planner_llm.LLMPlanner``),
skill policies (``vla.policy.VLAPolicy``, ``vla.client.RemotePolicy``, ``skills.experts.ExpertPolicy``),
detectors (``agent.detectors``), backends (``agent.backend.SimBackend``, ``agent.real.backend.RealBackend``),
arm drivers (``agent.real.arms``), cameras (``agent.real.camera.RealSenseCamera``). Each registry
(``vla_agent.registry``) builds parts that implement one of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vla_agent.types import ActionChunk, Observation, Scene, SceneObject, StepOutcome, Subgoal, Verdict


class PlanLike(Protocol):
    """What a planner returns: subgoals ready for the executor, or a refusal."""

    subgoals: list[Subgoal]
    refused: str | None
    planner: str
    latency_ms: float


@runtime_checkable
class Planner(Protocol):
    def plan(self, command: str, scene: Scene) -> PlanLike: ...
    def replan(self, command: str, scene: Scene, history: Sequence[StepOutcome]) -> PlanLike: ...


@runtime_checkable
class SkillPolicy(Protocol):
    """A VLA, a remote VLA or a scripted expert. ``act`` returns the next actions, (H, 7);
    ``done`` is the policy's own "subgoal finished" (False when it cannot tell); ``skills`` the
    skill names it can run (None: any), so the executor refuses a plan with others before
    anything moves."""

    done: bool
    skills: tuple[str, ...] | None

    def reset(self, subgoal: Subgoal) -> None: ...
    def act(self, obs: Observation) -> ActionChunk: ...


@runtime_checkable
class SuccessDetector(Protocol):
    """``check`` after every step: RUNNING, DONE or FAILED. A detector may also define
    ``conclude(subgoal, obs) -> Verdict``, its last word when the policy has finished without a
    DONE: DONE, FAILED or UNSURE (it cannot tell; the executor asks a person, or fails the step)."""

    def reset(self, subgoal: Subgoal, obs: Observation) -> None: ...
    def check(self, subgoal: Subgoal, obs: Observation) -> Verdict: ...


@runtime_checkable
class RobotBackend(Protocol):
    """Where shielded actions go and observations come from (the simulator or a real robot)."""

    name: str
    unsafe_actions: int  # actions outside the envelope the backend refused (its own audit)

    @property
    def unsafe_states(self) -> int: ...  # measured states outside the envelope (its own audit)
    def clock(self) -> float: ...  # the time observations are stamped with (seconds)
    def observe(self) -> Observation: ...
    def apply(self, action: np.ndarray) -> None: ...
    def stop(self) -> None: ...  # immediate safe hold
    def scene_objects(self) -> list[SceneObject]: ...
    @property
    def camera(self) -> Any: ...  # intrinsics and camera-to-base extrinsics (perception)


@runtime_checkable
class ArmDriver(Protocol):
    name: str
    robot: str  # the registered RobotSpec of the arm (the shield's twin and limits come from it)
    mount: tuple[float, float, float]  # the arm's base in the frame its states are in (real: 0, 0, 0)

    def state(self) -> np.ndarray: ...  # [x, y, z, roll, pitch, yaw, gripper_width], base frame
    def move(self, action: np.ndarray) -> None: ...  # one control step: EE delta + gripper (+1 open)
    def stop(self) -> None: ...  # hold where it is, now
    def wrist_image(self) -> np.ndarray | None: ...  # a wrist camera, when the driver has one
    def close(self) -> None: ...


@runtime_checkable
class Camera(Protocol):
    def start(self) -> Any: ...
    def read(self) -> Any: ...  # an RGB-D frame: rgb (H, W, 3) uint8, depth (H, W) metres, K (3, 3)
    def stop(self) -> None: ...
