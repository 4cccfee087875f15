"""Perception: a block under another one shows the camera only its sides; the shortcuts of the
per-frame work (a depth window per pixel, remembered colour classes) change no answer."""

import numpy as np
import pybullet as p
import pytest

from vla_agent.agent.perception import objects
from vla_agent.agent.perception.objects import CameraModel, Perception
from vla_agent.sim.camera import pixel_rays
from vla_agent.sim.catalog import BLOCK_SIZE, ObjectSpec, SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.sim.predicates import evaluate
from vla_agent.types import DEPTH, SEGMENTATION, SceneObject


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


def test_colour_classes_are_remembered_exactly(monkeypatch):
    """The per-colour memory answers what classifying each pixel answers, also once it is full
    and starts over (a noisy camera shows many colours)."""
    monkeypatch.setattr(objects, "_COLOR_CACHE_MAX", 700)
    colors = ["red", "blue", "green", "yellow", "white"]
    perception = Perception([SceneObject(f"{c} block", "block", c) for c in colors], _camera())
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, (500, 3), dtype=np.uint8)
    for _ in range(6):  # repeated colours, new ones, and more than the memory holds
        pixels = np.concatenate(
            [palette[rng.integers(0, 500, 800)], rng.integers(0, 256, (300, 3), dtype=np.uint8)]
        )
        expected = objects.classify_colors(objects.hsv_image(pixels), perception.colors)
        assert np.array_equal(perception._classes(pixels), expected)
    assert len(perception._color_cache[0]) <= 700


def test_the_depth_window_keeps_exactly_the_work_area(env):
    """The pixels kept by each pixel's depth range are those whose deprojected point lies in the
    work area: depths scattered around every border, zero, NaN and infinite depths included."""
    obs, _ = env.reset(seed=3)
    f = env.camera_frame
    camera = _camera(f)
    rng = np.random.default_rng(1)
    depth = np.asarray(obs[DEPTH], np.float32) * rng.uniform(0.3, 1.6, obs[DEPTH].shape).astype(np.float32)
    depth.flat[rng.integers(0, depth.size, 50)] = rng.choice([0.0, np.nan, np.inf], 50)
    h, w = depth.shape
    rays, near, far = Perception([], camera)._depth_window(h, w)
    sel = np.flatnonzero((depth > near) & (depth < far))
    sel = sel[objects._in_area(camera.T[:3, 3] + depth.reshape(-1)[sel, None] * rays[sel])]
    v, u = np.mgrid[0:h, 0:w]
    pts = camera.T[:3, 3] + depth.reshape(-1, 1) * pixel_rays(
        camera.K, camera.T, u.reshape(-1), v.reshape(-1)
    )
    x, y, z = pts.T
    area = (
        (x > objects.AREA_X[0]) & (x < objects.AREA_X[1]) & (y > objects.AREA_Y[0]) & (y < objects.AREA_Y[1])
    )
    area &= (z > objects.AREA_Z[0]) & np.isfinite(depth.reshape(-1)) & (depth.reshape(-1) > 0)
    assert 100 < len(sel) < h * w / 2 and np.array_equal(sel, np.flatnonzero(area))


def _camera(frame=None) -> CameraModel:
    if frame is None:
        return CameraModel(np.eye(3), np.eye(4))
    return CameraModel(frame.intrinsics, frame.extrinsics)
