"""Pinhole cameras rendered by PyBullet's TinyRenderer, with intrinsics and extrinsics exposed the
way a RealSense driver exposes them (OpenCV convention: x right, y down, z forward; depth in metres).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pybullet as p


@dataclass(frozen=True)
class CameraConfig:
    """A static camera looking at the table; ``eye``/``target`` in the robot base frame (metres)."""

    width: int = 128
    height: int = 128
    fov_deg: float = 55.0  # vertical field of view
    eye: tuple[float, float, float] = (1.10, 0.0, 0.78)
    target: tuple[float, float, float] = (0.42, 0.0, 0.10)
    near: float = 0.02
    far: float = 2.5


# The viewer camera of videos (``TabletopEnv.render``): from the robot's front left, the whole arm in view.
VIEWER_EYE = (1.20, 0.95, 0.95)
VIEWER_TARGET = (0.30, 0.0, 0.22)


def caption(rgb: np.ndarray, text: str) -> np.ndarray:
    """``rgb`` with ``text`` written on a dark band along its bottom edge."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(rgb)
    h = max(18, rgb.shape[0] // 16)
    try:
        font = ImageFont.load_default(size=int(h * 0.7))
    except TypeError:  # Pillow < 10.1: the bitmap font
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, rgb.shape[0] - h - 8, rgb.shape[1], rgb.shape[0]], fill=(30, 30, 30))
    draw.text((10, rgb.shape[0] - h - 4), text[:120], fill=(240, 240, 240), font=font)
    return np.asarray(img)


@dataclass(frozen=True)
class Frame:
    """One rendered view: RGB (H,W,3) uint8, depth (H,W) float32 metres, segmentation (H,W) int32
    (PyBullet body id per pixel, -1 for background; simulator-only)."""

    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray | None
    intrinsics: np.ndarray  # 3x3 K
    extrinsics: np.ndarray  # 4x4 camera-to-base transform (OpenCV camera axes)


def intrinsics(width: int, height: int, fov_deg: float) -> np.ndarray:
    fy = (height / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return np.array([[fy, 0.0, width / 2.0], [0.0, fy, height / 2.0], [0.0, 0.0, 1.0]])


def look_at_extrinsics(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-base transform for a camera at ``eye`` looking at ``target`` (OpenCV axes)."""
    eye, target, up = (np.asarray(v, dtype=float) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-6:  # looking straight along ``up``
        x = np.cross(z, np.array([1.0, 0.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def _view_matrix(T_cam: np.ndarray) -> list[float]:
    """OpenGL view matrix (column-major) from an OpenCV-axes camera-to-base transform."""
    gl_from_cv = np.diag([1.0, -1.0, -1.0, 1.0])
    view = gl_from_cv @ np.linalg.inv(T_cam)
    return view.T.reshape(-1).tolist()


def _projection_matrix(cfg_w: int, cfg_h: int, fov_deg: float, near: float, far: float):
    return p.computeProjectionMatrixFOV(fov_deg, cfg_w / cfg_h, near, far)


@dataclass
class Light:
    """TinyRenderer lighting, randomized by domain randomization."""

    direction: tuple[float, float, float] = (0.4, -0.3, 1.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.65
    diffuse: float = 0.40
    specular: float = 0.05


def render(
    cid: int,
    width: int,
    height: int,
    fov_deg: float,
    near: float,
    far: float,
    T_cam: np.ndarray,
    light: Light,
    segmentation: bool = True,
) -> Frame:
    """Render RGB, metric depth and (optionally) segmentation from camera pose ``T_cam``."""
    flags = 0 if segmentation else p.ER_NO_SEGMENTATION_MASK
    _, _, rgba, zbuf, seg = p.getCameraImage(
        width,
        height,
        _view_matrix(T_cam),
        _projection_matrix(width, height, fov_deg, near, far),
        shadow=0,
        lightDirection=light.direction,
        lightColor=light.color,
        lightAmbientCoeff=light.ambient,
        lightDiffuseCoeff=light.diffuse,
        lightSpecularCoeff=light.specular,
        renderer=p.ER_TINY_RENDERER,
        flags=flags,
        physicsClientId=cid,
    )
    rgba = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)
    zbuf = np.asarray(zbuf, dtype=np.float32).reshape(height, width)
    depth = np.clip(far * near / (far - (far - near) * zbuf), near, far).astype(np.float32)
    seg_arr = None
    if segmentation:
        seg_arr = np.asarray(seg, dtype=np.int32).reshape(height, width)
        seg_arr = np.where(seg_arr < 0, -1, seg_arr & ((1 << 24) - 1)).astype(np.int32)
    return Frame(
        np.ascontiguousarray(rgba[..., :3]), depth, seg_arr, intrinsics(width, height, fov_deg), T_cam
    )


def deproject(
    depth: np.ndarray, K: np.ndarray, T_cam: np.ndarray, pixels: np.ndarray | None = None
) -> np.ndarray:
    """Lift pixels (N,2 as (u, v); all pixels when None) with metric depth to base-frame points."""
    h, w = depth.shape
    if pixels is None:
        v, u = np.mgrid[0:h, 0:w]
        u, v = u.reshape(-1), v.reshape(-1)
    else:
        u, v = pixels[:, 0].astype(int), pixels[:, 1].astype(int)
    return T_cam[:3, 3] + depth[v, u][:, None] * pixel_rays(K, T_cam, u, v)


def pixel_rays(K: np.ndarray, T_cam: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N,3) base-frame rays through pixel centres (u, v), scaled so that a point at metric depth
    z lies at ``T_cam[:3, 3] + z * ray``: a fixed camera's rays can be computed once."""
    cam = np.stack([(u + 0.5 - K[0, 2]) / K[0, 0], (v + 0.5 - K[1, 2]) / K[1, 1], np.ones(len(u))], -1)
    return cam @ T_cam[:3, :3].T


def project(points: np.ndarray, K: np.ndarray, T_cam: np.ndarray) -> np.ndarray:
    """Project base-frame points (N,3) to pixel coordinates (N,2) as (u, v)."""
    pts = np.c_[points, np.ones(len(points))] @ np.linalg.inv(T_cam).T
    uv = pts[:, :2] / pts[:, 2:3] * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
    return uv - 0.5
