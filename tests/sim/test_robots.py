"""Robots are specs: the Panda and the xArm 6 are registered, the simulator builds the one asked
for (spaces, joints, gripper), and an unknown name is a one-line error with a suggestion."""

from __future__ import annotations

import numpy as np
import pytest

from vla_agent.errors import ConfigError
from vla_agent.sim.catalog import ObjectSpec, SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.sim.robots import ROBOTS, robot_spec
from vla_agent.types import JOINTS, STATE


def test_built_in_robots_are_registered_and_a_typo_gets_a_suggestion():
    assert {"panda", "xarm6"} <= set(ROBOTS.names())
    assert robot_spec("xarm6").dof == 6 and robot_spec().dof == 7
    with pytest.raises(ConfigError, match="unknown robot 'xarm'.*did you mean 'xarm6'"):
        TabletopEnv(EnvConfig(robot="xarm"))


@pytest.fixture(scope="module")
def xarm():
    env = TabletopEnv(EnvConfig(robot="xarm6", image_size=64, wrist_size=32, segmentation=False))
    yield env
    env.close()


def test_xarm6_grasps_carries_and_releases_a_block(xarm):
    block = ObjectSpec(kind="block", color="red", position=(0.5, 0.0), yaw=0.0)
    obs, _ = xarm.reset(seed=0, options={"scene": SceneSpec(objects=(block,))})
    assert obs[JOINTS].shape == (6,) and xarm.observation_space[JOINTS].shape == (6,)
    assert obs[STATE][6] == pytest.approx(0.087, abs=1e-3)  # open
    assert np.allclose(obs[STATE][3:5], 0.0, atol=0.1)  # home: pointing down

    def go(target, gripper, steps=30):
        nonlocal obs
        for _ in range(steps):
            move = np.clip(np.asarray(target) - obs[STATE][:3], -0.03, 0.03)
            obs, *_ = xarm.step(np.array([*move, 0, 0, 0, gripper]))

    go([0.5, 0.0, 0.12], 1.0)
    go([0.5, 0.0, 0.018], 1.0)
    go([0.5, 0.0, 0.018], -1.0, steps=10)
    assert obs[STATE][6] == pytest.approx(0.04, abs=0.003)  # closed on the 4 cm block
    go([0.4, -0.2, 0.2], -1.0)
    held = xarm.world_state().get("red block")
    assert held.position[2] > 0.15 and held.touching_fingers == 2
    assert np.linalg.norm(held.position[:2] - obs[STATE][:2]) < 0.01
    go([0.4, -0.2, 0.04], -1.0)
    go([0.4, -0.2, 0.04], 1.0, steps=10)
    assert xarm.evaluate("at(red block, right)") and not xarm.evaluate("holding(red block)")
