"""Camera-to-base extrinsics: a YAML file, made from coloured targets at known positions and checked
against them.

The target is printable: coloured discs (>= 6 cm) taped on the table at measured base-frame
positions, listed in a targets YAML (``examples/calibration/targets.yaml``)::

    targets:
      - {color: red, position: [0.40, 0.20, 0.0]}
      - ...

``calibrate`` finds each disc in RGB-D frames (the perception colour classes), lifts its pixels to
camera-frame points, and solves the rigid transform that maps the disc centres onto their measured
positions (Kabsch, least squares); ``check`` reports each target's error in millimetres.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from scipy import ndimage

from vla_agent.agent.perception.objects import classify_colors, hsv_image
from vla_agent.agent.real.camera import RGBDFrame
from vla_agent.errors import ConfigError
from vla_agent.sim.camera import deproject
from vla_agent.sim.catalog import COLORS


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    color: str
    position: tuple[float, float, float]  # base frame, metres: the disc's centre

    @field_validator("color")
    @classmethod
    def _color(cls, v: str) -> str:
        if v not in COLORS:
            raise ValueError(f"unknown colour {v!r} (one of {', '.join(COLORS)})")
        return v


class Targets(BaseModel):
    model_config = ConfigDict(extra="forbid")
    targets: list[Target] = Field(min_length=3)


class Calibration(BaseModel):
    """``T_base_camera``: 4x4 camera-to-base transform, OpenCV camera axes (x right, y down, z
    forward), metres."""

    model_config = ConfigDict(extra="forbid")
    T_base_camera: list[list[float]]
    camera_serial: str = ""
    method: str = "targets"
    residual_mm: float | None = None
    created: str = ""

    @field_validator("T_base_camera")
    @classmethod
    def _rigid(cls, v: list[list[float]]) -> list[list[float]]:
        T = np.asarray(v, np.float64)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ValueError("must be a 4x4 matrix of finite numbers")
        R = T[:3, :3]
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or not np.isclose(np.linalg.det(R), 1.0, atol=1e-4):
            raise ValueError("its rotation part is not a rotation (R R^T = I, det R = 1)")
        if not np.allclose(T[3], [0, 0, 0, 1]):
            raise ValueError("its last row must be [0, 0, 0, 1]")
        return v

    @property
    def T(self) -> np.ndarray:
        return np.asarray(self.T_base_camera, np.float64)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.model_dump(), sort_keys=False))
        return path


def _load_yaml(path: str | Path, model, what: str):
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
        return model.model_validate(data)
    except FileNotFoundError as e:
        raise ConfigError(f"{what} {path}: no such file") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path}: not YAML ({str(e).splitlines()[0]})") from e
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(f"{what} {path}: {'.'.join(map(str, err['loc'])) or 'file'}: {err['msg']}") from e


def load_calibration(path: str | Path) -> Calibration:
    return _load_yaml(path, Calibration, "calibration")


def load_targets(path: str | Path) -> list[Target]:
    return _load_yaml(path, Targets, "targets").targets


def locate_targets(frames: list[RGBDFrame], colors: list[str]) -> dict[str, np.ndarray]:
    """Camera-frame centre of each colour's largest blob, averaged over ``frames``."""
    found: dict[str, list[np.ndarray]] = {c: [] for c in colors}
    for f in frames:
        cls = classify_colors(hsv_image(f.rgb), colors)
        pts = deproject(f.depth, f.K, np.eye(4)).reshape(*f.depth.shape, 3)
        valid = np.isfinite(f.depth) & (f.depth > 0)
        for i, c in enumerate(colors):
            labels, n = ndimage.label((cls == i) & valid)
            if n == 0:
                continue
            sizes = ndimage.sum(np.ones_like(labels), labels, range(1, n + 1))
            blob = labels == 1 + int(np.argmax(sizes))
            if blob.sum() >= 10:
                found[c].append(np.median(pts[blob], axis=0))
    return {c: np.mean(v, axis=0) for c, v in found.items() if v}


def solve_rigid(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The rigid 4x4 ``T`` minimizing ``sum |T src_i - dst_i|^2`` (Kabsch)."""
    cs, cd = src.mean(0), dst.mean(0)
    U, _, Vt = np.linalg.svd((src - cs).T @ (dst - cd))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
    R = Vt.T @ D @ U.T
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, cd - R @ cs
    return T


def target_errors_mm(frames: list[RGBDFrame], targets: list[Target], T: np.ndarray) -> dict[str, float]:
    """Distance (mm) between each target's measured position and where the camera puts it."""
    seen = locate_targets(frames, [t.color for t in targets])
    out = {}
    for t in targets:
        if t.color in seen:
            p = T[:3, :3] @ seen[t.color] + T[:3, 3]
            out[t.color] = float(np.linalg.norm(p - np.asarray(t.position)) * 1000)
    return out


def calibrate(frames: list[RGBDFrame], targets: list[Target], serial: str = "") -> Calibration:
    """Solve the camera-to-base transform from ``frames`` of the ``targets``."""
    seen = locate_targets(frames, [t.color for t in targets])
    missing = [t.color for t in targets if t.color not in seen]
    used = [t for t in targets if t.color in seen]
    if len(used) < 3:
        raise ConfigError(f"calibration needs >= 3 visible targets; not found: {', '.join(missing)}")
    src = np.array([seen[t.color] for t in used])
    dst = np.array([t.position for t in used])
    if np.linalg.matrix_rank(dst - dst.mean(0), tol=1e-3) < 2:
        raise ConfigError("calibration targets must not lie on one line")
    T = solve_rigid(src, dst)
    residual = float(np.sqrt(np.mean(np.sum((src @ T[:3, :3].T + T[:3, 3] - dst) ** 2, axis=1))) * 1000)
    return Calibration(
        T_base_camera=T.tolist(),
        camera_serial=serial,
        method=f"targets ({len(used)} coloured discs, Kabsch)",
        residual_mm=round(residual, 2),
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
