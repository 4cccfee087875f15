import numpy as np
import pytest

from vla_agent.sim.camera import deproject, project
from vla_agent.types import DEPTH, SEGMENTATION


def test_intrinsics_and_extrinsics_are_consistent(env):
    env.reset(seed=0, options={"scene": "red block"})
    f = env.camera_frame
    K, T = f.intrinsics, f.extrinsics
    assert K.shape == (3, 3) and K[0, 2] == 64 and K[1, 2] == 64
    assert T.shape == (4, 4)
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9)
    assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)


def test_block_pixels_lift_to_block_position(env):
    obs, _ = env.reset(seed=2, options={"scene": "red block, blue block, yellow bowl"})
    f = env.camera_frame
    for i, name in enumerate(env.names[:2]):
        v, u = np.nonzero(obs[SEGMENTATION] == i)
        assert len(u) > 5, f"{name} not visible"
        pts = deproject(obs[DEPTH], f.intrinsics, f.extrinsics, np.c_[u, v])
        top = pts[pts[:, 2] > 0.03]  # visible top face (z = 4 cm)
        true = env.world_state().get(name).position
        assert np.linalg.norm(pts.mean(0)[:2] - true[:2]) < 0.015
        assert top[:, 2].mean() == pytest.approx(0.04, abs=0.006)
        uv = project(true[None], f.intrinsics, f.extrinsics)[0]
        assert np.hypot(uv[0] - u.mean(), uv[1] - v.mean()) < 3.0


def test_depth_is_metric_on_the_table(env):
    obs, _ = env.reset(seed=0, options={"scene": "red block"})
    f = env.camera_frame
    pts = deproject(obs[DEPTH], f.intrinsics, f.extrinsics)
    table = pts[(obs[SEGMENTATION].reshape(-1) == -1) & (pts[:, 2] < 0.01) & (pts[:, 2] > -0.01)]
    assert len(table) > 1000  # most of the image is the table top at z = 0
