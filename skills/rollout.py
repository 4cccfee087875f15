"""Run one subgoal of a skill policy in the sim and judge it by ground truth."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vla_agent.sim.env import TabletopEnv
from vla_agent.skills.library import get_skill
from vla_agent.types import Observation, Subgoal

# on_step(obs, action, settling): called before each env step with the policy's action
# (``settling`` is True for the hold steps after the policy finished).
StepHook = Callable[[Observation, np.ndarray, bool], None]


@dataclass
class RolloutResult:
    subgoal: Subgoal
    success: bool
    steps: int
    wall_s: float
    frames: list[np.ndarray] = field(default_factory=list)
    policy_done: bool = False


def run_subgoal(
    env: TabletopEnv,
    policy,
    subgoal: Subgoal,
    obs: Observation,
    *,
    budget: int | None = None,
    settle_steps: int = 3,
    record: bool = False,
    on_step: StepHook | None = None,
    perturb: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[RolloutResult, Observation]:
    """Reset ``policy`` on ``subgoal`` and step until the policy says done (``policy.done``) or
    the step budget runs out; hold still for ``settle_steps``; judge by the skill's effects.

    ``perturb`` maps the policy's action to the executed one (noise injection for data
    collection); ``on_step`` sees the policy's own action.
    """
    skill = get_skill(subgoal.skill)
    budget = budget or skill.step_budget
    kinds = env.kinds()
    effects = skill.ground("post", subgoal.args, kinds)
    env.snapshot()
    env.set_prompt(subgoal.instruction)
    obs = {**obs, "prompt": subgoal.instruction}
    policy.reset(subgoal)
    t0 = time.perf_counter()
    frames = [env.render()] if record else []
    steps = 0
    while steps < budget and not policy.done:
        chunk = np.atleast_2d(policy.act(obs))
        for action in chunk:
            if on_step is not None:
                on_step(obs, action, False)
            executed = perturb(action) if perturb is not None else action
            obs, *_ = env.step(executed)
            steps += 1
            if record:
                frames.append(env.render())
            if steps >= budget or policy.done:
                break
    policy_done = bool(policy.done)
    hold = np.array([0, 0, 0, 0, 0, 0, 1.0 if env.gripper_open else -1.0])
    for _ in range(settle_steps):
        if on_step is not None:
            on_step(obs, hold, True)
        obs, *_ = env.step(hold)
        if record:
            frames.append(env.render())
    success = env.goal_reached(effects)
    return RolloutResult(subgoal, success, steps, time.perf_counter() - t0, frames, policy_done), obs
