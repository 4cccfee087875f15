"""Homing: before a skill that starts with an empty hand, the arm goes back to the pose it had
when the scene was set up (the pose skills are demonstrated from), every step through the shield."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from vla_agent.skills.library import get_skill
from vla_agent.types import STATE, Subgoal

if TYPE_CHECKING:
    from vla_agent.agent.core.executor import Executor, RunResult


def go_home(ex: Executor, index: int, sg: Subgoal, res: RunResult) -> None:
    """Before a skill that starts with an empty hand, bring the arm back to ``home_pose`` with
    the gripper open: straight up first when it is low and away (no sweeping through objects),
    then a straight line. Every step goes through the shield like a policy's."""
    if not ex.config.home or ex.home_pose is None:
        return
    if "hand_empty()" not in get_skill(sg.skill).preconditions:
        return
    c = ex.shield.config
    goal_pos, goal_rpy = ex.home_pose[:3], ex.home_pose[3:6]
    steps = 0
    for _ in range(ex.config.home_steps):
        ex._check_stop()
        obs = ex.backend.observe()
        state = np.asarray(obs[STATE], float)
        pos, rpy = state[:3], state[3:6]
        d_pos = goal_pos - pos
        d_rpy = (goal_rpy - rpy + np.pi) % (2 * np.pi) - np.pi
        if np.linalg.norm(d_pos) < 0.01 and np.abs(d_rpy).max() < 0.05 and state[6] > 0.06:
            break
        if pos[2] < goal_pos[2] - 0.03 and np.linalg.norm(d_pos[:2]) > 0.03:
            d_pos = np.array([0.0, 0.0, d_pos[2]])  # lift before moving across
        move = d_pos * min(1.0, 0.8 * c.max_translation / max(float(np.linalg.norm(d_pos)), 1e-9))
        turn = np.clip(d_rpy, -0.8 * c.max_rotation, 0.8 * c.max_rotation)
        action = np.concatenate([move, turn, [1.0]])
        t0 = time.perf_counter()
        now = ex._clock()
        result = ex.shield.filter(action, obs, issued_at=now, now=now)
        if result.violations:
            ex.events.emit(
                "shield", index=index, violations=list(result.violations), held=result.held, step=steps
            )
        ex.backend.apply(result.action)
        if ex.on_frame is not None:
            ex.on_frame()
        steps += 1
        res.steps += 1
        if ex.trace is not None:
            ex.trace.step(
                index=index,
                step=steps,
                phase="home",
                action_policy=action,
                action_sent=result.action,
                violations=list(result.violations),
                state=np.asarray(ex.backend.observe()[STATE], float),
                timing_ms={"shield": round((time.perf_counter() - t0) * 1000, 3)},
            )
    if steps:
        ex.events.emit("home", index=index, steps=steps)
