"""Encode our observation into a hosted VLA's inputs and decode its outputs into our actions.

Our convention (``vla_agent.types``): images HxWx3 uint8 as rendered; state ``[x, y, z, roll,
pitch, yaw, gripper_width]`` in the robot base frame (the tool frame of the robot spec: pointing
down is roll = pitch = 0); actions 7-D end-effector deltas per control tick (metres, radians as
differences of PyBullet's roll/pitch/yaw, ``R = Rz(yaw) Ry(pitch) Rx(roll)``), gripper +1 open.
Torch-free and numpy only: the client side of every adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_agent.errors import PolicyUnavailable
from vla_agent.types import IMAGE, OBJECT_START, STATE, WRIST_IMAGE

from . import AdapterConfig

OUR_HZ = 10.0


class AdapterError(PolicyUnavailable):
    """A reply that does not fit the adapter's convention (wrong shape, NaN, out of range)."""


@dataclass
class Chunk:
    """A decoded reply: actions in our convention and what the policy said about them."""

    actions: np.ndarray  # (H, 7) per control tick, gripper +1 open / -1 closed
    p_open: np.ndarray  # (H,) P(gripper open) per tick
    done_prob: float = 0.0
    object_position: np.ndarray | None = None


# ---------------------------------------------------------------------------- rotations
def euler_to_matrix(rpy: np.ndarray) -> np.ndarray:
    r, p, y = (float(v) for v in rpy)
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def matrix_to_euler(R: np.ndarray) -> np.ndarray:
    pitch = -np.arcsin(np.clip(R[2, 0], -1.0, 1.0))
    return np.array([np.arctan2(R[2, 1], R[2, 2]), pitch, np.arctan2(R[1, 0], R[0, 0])])


def axisangle_to_matrix(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def matrix_to_axisangle(R: np.ndarray) -> np.ndarray:
    cos = np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)
    angle = float(np.arccos(cos))
    if angle < 1e-9:
        return np.zeros(3)
    if np.pi - angle < 1e-6:  # a half turn: the axis from the symmetric part
        axis = np.sqrt(np.maximum((np.diag(R) + 1) / 2, 0.0))
        i = int(np.argmax(axis))
        axis[np.arange(3) != i] = (R[i, np.arange(3) != i] + R[np.arange(3) != i, i]) / (4 * axis[i])
        return axis / np.linalg.norm(axis) * angle
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    return w / (2 * np.sin(angle)) * angle


def wrap(a: np.ndarray) -> np.ndarray:
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


# ---------------------------------------------------------------------------- images
def resize_with_pad(image: np.ndarray, size: int) -> np.ndarray:
    """``tf.image.resize_with_pad`` as openpi's ``image_tools`` does it (PIL bilinear, the
    longer side to ``size``, zeros around)."""
    from PIL import Image

    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    ratio = max(w / size, h / size)
    rh, rw = int(h / ratio), int(w / ratio)
    resized = Image.fromarray(image).resize((rw, rh), resample=Image.BILINEAR)
    out = np.zeros((size, size, 3), np.uint8)
    top, left = max(0, (size - rh) // 2), max(0, (size - rw) // 2)
    out[top : top + rh, left : left + rw] = np.asarray(resized)
    return out


def _image(cfg: AdapterConfig, image: np.ndarray, size: int | None) -> np.ndarray:
    img = np.asarray(image)
    if np.issubdtype(img.dtype, np.floating):
        img = (255 * np.clip(img, 0, 1)).astype(np.uint8)
    if cfg.rotate_180:
        img = img[::-1, ::-1]
    if size:
        img = resize_with_pad(np.ascontiguousarray(img), size)
    return np.ascontiguousarray(img, dtype=np.uint8)


# ---------------------------------------------------------------------------- encode
def encode(cfg: AdapterConfig, obs: dict, prompt: str, start: np.ndarray | None = None) -> dict:
    """Our observation -> the request the policy expects."""
    state = np.asarray(obs[STATE], np.float64)
    request: dict = {cfg.image_key: _image(cfg, obs[IMAGE], cfg.image_size)}
    if cfg.wrist_key:
        if WRIST_IMAGE not in obs:
            raise AdapterError(f"adapter {cfg.name!r} sends a wrist image; enable the wrist camera")
        request[cfg.wrist_key] = _image(cfg, obs[WRIST_IMAGE], cfg.wrist_size or cfg.image_size)
    if cfg.state_key:
        if cfg.state_layout == "xyz_rpy_width":
            request[cfg.state_key] = state.astype(np.float32)
        elif cfg.state_layout == "xyz_axisangle_fingers":
            aa = matrix_to_axisangle(euler_to_matrix(state[3:6]))
            fingers = [state[6] / 2, -state[6] / 2]
            request[cfg.state_key] = np.concatenate([state[:3], aa, fingers]).astype(np.float32)
    request[cfg.prompt_key] = prompt.lower() if cfg.lowercase_prompt else prompt
    if cfg.send_object_start and start is not None:
        request[OBJECT_START] = np.asarray(start, np.float64)
    request.update(cfg.extra)
    return request


# ---------------------------------------------------------------------------- decode
def decode(cfg: AdapterConfig, reply, state: np.ndarray) -> Chunk:
    """The policy's reply -> a chunk in our convention, per control tick. ``state`` is the
    measured state the request was made from (absolute targets become deltas from it)."""
    raw = reply.get(cfg.actions_key) if isinstance(reply, dict) and cfg.actions_key else reply
    try:
        a = np.array(raw, np.float64)
    except (TypeError, ValueError):
        raise AdapterError(f"{cfg.name}: the reply's actions are not numeric") from None
    a = np.atleast_2d(a)
    if a.ndim != 2 or a.shape[1] < 7 or len(a) == 0:
        raise AdapterError(f"{cfg.name}: expected actions of shape (H, >=7), got {a.shape}")
    a = a[:, :7]
    if not np.all(np.isfinite(a)):
        raise AdapterError(f"{cfg.name}: the reply has NaN/inf actions")
    trans = a[:, :3] * cfg.translation_scale
    rot = a[:, 3:6] * cfg.rotation_scale
    lo, hi = sorted((cfg.gripper_closed, cfg.gripper_open))
    g = np.clip(a[:, 6], lo, hi)
    p_open = (g - cfg.gripper_closed) / (cfg.gripper_open - cfg.gripper_closed)
    pos, rpy = np.asarray(state[:3], np.float64), np.asarray(state[3:6], np.float64)
    if cfg.action == "absolute":  # a path of targets -> per-step deltas
        trans = np.diff(np.vstack([pos, trans]), axis=0)
    deltas = np.empty((len(a), 3))
    R = euler_to_matrix(rpy)
    for k in range(len(a) if (cfg.rotation, cfg.action) != ("euler", "delta") else 0):
        if cfg.rotation == "euler":
            target = rot[k] if cfg.action == "absolute" else rpy + rot[k]
        else:  # axis-angle (exponential coordinates) in the base frame
            Rk = axisangle_to_matrix(rot[k]) if cfg.action == "absolute" else axisangle_to_matrix(rot[k]) @ R
            target = matrix_to_euler(Rk)
            R = Rk
        deltas[k] = wrap(target - rpy)
        rpy = rpy + deltas[k]
    if (cfg.rotation, cfg.action) == ("euler", "delta"):  # already ours
        deltas = rot
    arm = np.concatenate([trans, deltas], axis=1)
    arm, p_open = _resample(arm, p_open, cfg.control_hz / OUR_HZ)
    actions = np.concatenate([arm, np.where(p_open >= 0.5, 1.0, -1.0)[:, None]], axis=1)
    done, where = 0.0, None
    if cfg.extras and isinstance(reply, dict):
        if "gripper_prob" in reply:
            p = np.asarray(reply["gripper_prob"], np.float64)
            if p.shape != p_open.shape or not np.all(np.isfinite(p)):
                raise AdapterError(f"{cfg.name}: gripper_prob of shape {p.shape}")
            p_open = p
        done = float(reply.get("done_prob", 0.0))
        if reply.get("object_position") is not None:
            where = np.asarray(reply["object_position"], np.float64)
            if where.shape != (3,):
                raise AdapterError(f"{cfg.name}: object_position of shape {where.shape}")
    return Chunk(actions, p_open, done, where)


def _resample(arm: np.ndarray, p_open: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Their steps -> our ticks: ``ratio`` (their rate / ours) of their steps summed into one
    tick, or one of theirs split evenly over ``1 / ratio`` ticks."""
    if abs(ratio - 1) < 1e-9:
        return arm, p_open
    if ratio > 1:
        k = round(ratio)
        n = len(arm) // k
        if n == 0:
            raise AdapterError(f"a chunk of {len(arm)} steps is shorter than one control tick ({k} steps)")
        return arm[: n * k].reshape(n, k, 6).sum(axis=1), p_open[: n * k].reshape(n, k)[:, -1]
    k = round(1 / ratio)
    return np.repeat(arm / k, k, axis=0), np.repeat(p_open, k)


def encode_actions(cfg: AdapterConfig, actions: np.ndarray, state: np.ndarray) -> np.ndarray:
    """The inverse of ``decode`` for delta actions: our (H, 7) per tick -> theirs, as a server
    trained in that convention would send them (used by the stand-in servers)."""
    a = np.atleast_2d(np.asarray(actions, np.float64))
    ratio = cfg.control_hz / OUR_HZ
    if ratio > 1:  # one tick -> k of their steps of a k-th each
        k = round(ratio)
        a = np.concatenate([np.repeat(a[:, :6] / k, k, axis=0), np.repeat(a[:, 6:], k, axis=0)], axis=1)
    elif ratio < 1:  # k ticks -> one of their steps
        k = round(1 / ratio)
        n = len(a) // k
        a = np.concatenate([a[: n * k, :6].reshape(n, k, 6).sum(1), a[k - 1 : n * k : k, 6:]], axis=1)
    out = np.empty((len(a), 7))
    rpy = np.asarray(state[3:6], np.float64)
    for k, act in enumerate(a):
        out[k, :3] = act[:3] / cfg.translation_scale
        if cfg.rotation == "euler":
            rot = act[3:6]
        else:
            R0 = euler_to_matrix(rpy)
            rot = matrix_to_axisangle(euler_to_matrix(rpy + act[3:6]) @ R0.T)
        rpy = rpy + act[3:6]
        out[k, 3:6] = rot / cfg.rotation_scale
        out[k, 6] = cfg.gripper_open if act[6] >= 0 else cfg.gripper_closed
    return out
