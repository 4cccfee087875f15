"""Perception on stacks: a block under another one shows the camera only its sides."""

import numpy as np
import pybullet as p
import pytest

from vla_agent.agent.perception.objects import CameraModel, Perception
from vla_agent.sim.catalog import BLOCK_SIZE, ObjectSpec, SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.sim.predicates import evaluate
from vla_agent.types import SEGMENTATION, SceneObject


@pytest.fixture(scope="module")
def env():
    e = TabletopEnv(EnvConfig(randomize=True))
    yield e
    e.close()


@pytest.mark.parametrize(
    "base, offset",
    [((0.45, -0.15), (-0.012, 0.008)), ((0.6, 0.15), (-0.012, 0.008)), ((0.42, 0.2), (0.0, 0.009))],
)
def test_a_covered_block_is_located_from_its_sides(env, base, offset):
    """Stacks the pixel estimate used to miss (the lower block's top edge read as its top face put
    it 1-2 cm towards the camera): the stack is seen, and the lower block within 1.5 cm."""
    scene = SceneSpec(
        objects=(
            ObjectSpec(kind="block", color="pink", position=base),
            ObjectSpec(kind="block", color="orange", position=(0.65, -0.24)),
        )
    )
    obs, _ = env.reset(seed=0, options={"scene": scene})
    top = [base[0] + offset[0], base[1] + offset[1], 1.5 * BLOCK_SIZE + 0.002]
    p.resetBasePositionAndOrientation(env.bodies["orange block"], top, [0, 0, 0, 1], physicsClientId=env.cid)
    for _ in range(5):
        obs, *_ = env.step(np.zeros(7))
    truth = env.world_state()
    assert evaluate(truth, "on(orange block, pink block)")
    f = env.camera_frame
    objects = [SceneObject(n, o.kind, o.color) for n, o in zip(env.names, env.scene.objects)]
    seen = Perception(objects, CameraModel(f.intrinsics, f.extrinsics)).world(
        {k: v for k, v in obs.items() if k != SEGMENTATION}
    )
    assert evaluate(seen, "on(orange block, pink block)")
    error = seen.objects["pink block"].position[:2] - truth.get("pink block").position[:2]
    assert np.linalg.norm(error) < 0.015
