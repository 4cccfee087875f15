"""The safety envelope: its configuration (``ShieldConfig``, from code or a YAML file) and the
audit of a measured state against it (``state_excursion``). The shield (``agent/safety/shield.py``)
enforces it on every action; backends use ``state_excursion`` to count unsafe states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_agent.sim.robots.base import RobotSpec


class KeepOut(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "zone"
    min: tuple[float, float, float]
    max: tuple[float, float, float]


class ShieldConfig(BaseModel):
    """Limits of the safety envelope (base frame, metres and radians)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_translation: float = Field(0.04, gt=0, description="metres per control step")
    max_rotation: float = Field(0.25, gt=0, description="radians per control step")
    workspace_min: tuple[float, float, float] = (0.22, -0.40, 0.012)
    workspace_max: tuple[float, float, float] = (0.82, 0.40, 0.45)
    max_tilt: float = Field(0.35, gt=0, description="max |roll|, |pitch| of the tool (0 = pointing down)")
    keep_out: tuple[KeepOut, ...] = ()
    max_obs_age_s: float = Field(0.5, gt=0)
    max_action_age_s: float = Field(1.0, gt=0)
    ik_check: bool = True
    ik_tolerance: float = Field(0.01, gt=0, description="metres between the IK solution and the target")
    predicted_miss: float = Field(
        0.02,
        gt=0,
        description="metres the arm may end from the target when the twin predicts from its joints",
    )
    table_margin: float = Field(0.002, description="min clearance of the arm (fingers excepted) to the table")
    overshoot: float = Field(
        0.6,
        ge=0,
        description="braking allowance: a step toward a face covers at most 1/(1+overshoot) of the gap",
    )
    max_tracking_error: float = Field(
        0.03, gt=0, description="metres the measured tool may stray sideways from the commanded move"
    )
    state_tolerance: float = Field(
        0.005, ge=0, description="metres outside the box a measured state may be before it counts as unsafe"
    )
    tilt_tolerance: float = Field(
        0.1, ge=0, description="radians past max_tilt before a state is unsafe (contacts can tip the hand)"
    )
    joint_tolerance: float = Field(
        0.05, ge=0, description="radians past a joint limit before a state is unsafe"
    )
    low_z: float = Field(
        0.10,
        description="below this height the tool may tilt only to max_tilt - tilt_tolerance (contacts tip it)",
    )
    joint_margin: float = Field(
        0.1, ge=0, description="radians short of a joint limit that no move may go further into (braking)"
    )


def load_shield_config(path: str | Path) -> ShieldConfig:
    """A ``ShieldConfig`` from a YAML file (the envelope of your cell: workspace box, keep-out
    zones, speeds, tilt); a malformed file is one line naming the field."""
    import yaml
    from pydantic import ValidationError

    from vla_agent.errors import ConfigError

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"{path}: cannot read the shield config ({getattr(e, 'strerror', None) or e})"
        ) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a shield config is a mapping of ShieldConfig fields")
    try:
        cfg = ShieldConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(map(str, err["loc"])) or "(file)"
        raise ConfigError(f"{path}: {where}: {err['msg']}") from None
    lo, hi = np.array(cfg.workspace_min), np.array(cfg.workspace_max)
    if np.any(lo >= hi):
        raise ConfigError(f"{path}: workspace_min must be below workspace_max on every axis")
    return cfg


@dataclass(frozen=True)
class Excursion:
    """How far a measured state lies outside the envelope (0 where it is inside)."""

    position: float = 0.0  # metres outside the workspace box
    tilt: float = 0.0  # radians past max_tilt (roll or pitch)
    joint: float = 0.0  # radians past a joint limit
    detail: str = ""

    @property
    def outside(self) -> bool:
        return bool(self.position > 0 or self.tilt > 0 or self.joint > 0)

    def unsafe(self, c: ShieldConfig) -> bool:
        """Outside by more than the tolerances: what benchmarks count as an unsafe state."""
        return bool(
            self.position > c.state_tolerance
            or self.tilt > c.tilt_tolerance
            or self.joint > c.joint_tolerance
        )


def for_robot(c: ShieldConfig, robot: RobotSpec, base=None) -> ShieldConfig:
    """``c`` with the robot's own workspace box (in the frame whose origin is ``base`` from the
    robot's base) wherever the user did not set one: the envelope follows the connected robot."""
    lo, hi = robot.box(base)
    update = {k: v for k, v in (("workspace_min", lo), ("workspace_max", hi)) if k not in c.model_fields_set}
    return c.model_copy(update=update) if update else c


def state_excursion(c: ShieldConfig, state, joints=None, robot: RobotSpec | None = None) -> Excursion:
    """Where the measured ``state`` (and ``joints``, checked against ``robot``'s limits, when
    both are known) lies outside the envelope."""
    s = np.asarray(state, float).reshape(-1)
    if s.shape != (7,) or not np.all(np.isfinite(s)):
        return Excursion(math.inf, math.inf, 0.0, "no valid robot state")
    lo, hi = np.array(c.workspace_min), np.array(c.workspace_max)
    below, above = np.maximum(lo - s[:3], 0), np.maximum(s[:3] - hi, 0)
    position = float(np.linalg.norm(below + above))
    tilt = float(max(0.0, max(abs(wrap(s[3])), abs(wrap(s[4]))) - c.max_tilt))
    joint = 0.0
    q = joint_angles(joints, robot.dof) if robot is not None else None
    if q is not None:
        lower, upper = robot.limits()
        joint = float(max(np.max(lower - q), np.max(q - upper), 0.0))
    parts = []
    for i, axis in enumerate("xyz"):
        if below[i] > 0:
            parts.append(f"{axis} {below[i] * 1000:.0f} mm below {lo[i]:.3f}")
        if above[i] > 0:
            parts.append(f"{axis} {above[i] * 1000:.0f} mm above {hi[i]:.3f}")
    if tilt > 0:
        parts.append(f"tilt {tilt:.2f} rad past {c.max_tilt:.2f}")
    if joint > 0:
        parts.append(f"a joint {joint:.2f} rad past its limit")
    return Excursion(position, tilt, joint, ", ".join(parts))


def joint_angles(joints, dof: int) -> np.ndarray | None:
    if joints is None:
        return None
    try:
        q = np.asarray(joints, float).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        return None
    return q if q.shape == (dof,) and np.all(np.isfinite(q)) else None


def wrap(x: float) -> float:
    """An angle wrapped into [-pi, pi)."""
    return (x + math.pi) % (2 * math.pi) - math.pi


# ---------------------------------------------------------------------- geometry the shield uses
def gap_to_box(c: ShieldConfig, pos: np.ndarray) -> float:
    """Distance from ``pos`` to the nearest face of the workspace box (0 outside it)."""
    lo, hi = np.array(c.workspace_min), np.array(c.workspace_max)
    return float(max(0.0, min(np.min(pos - lo), np.min(hi - pos))))


def into_joint_margin(
    robot: RobotSpec, target: np.ndarray, measured: np.ndarray, margin: float, overshoot: float = 0.6
) -> str:
    """'' unless the move takes a joint into the last ``margin`` radians before a limit faster than
    braking allows (each step covers at most ``1 / (1 + overshoot)`` of the gap left): a joint
    may reach close to its limit (a stretched elbow for a far push), slowly, never at speed."""
    lo, hi = robot.limits()
    up_room = np.maximum(hi - measured, 0.0) / (1.0 + overshoot)
    down_room = np.maximum(measured - lo, 0.0) / (1.0 + overshoot)
    creep = 0.02  # rad per step: a joint may always creep (no momentum to speak of), not past its limit
    deeper = ((target > hi - margin) & (target > measured + np.maximum(up_room, creep))) | (
        (target < lo + margin) & (target < measured - np.maximum(down_room, creep))
    )
    deeper |= ((target > hi) & (target > measured + 1e-4)) | ((target < lo) & (target < measured - 1e-4))
    if np.any(deeper):
        i = int(np.flatnonzero(deeper)[0])
        return f"joint {i + 1} would come within {margin:.2f} rad of its limit"
    return ""


def segment_hits_box(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Slab test: does the segment a->b touch the axis-aligned box [lo, hi]?"""
    d = b - a
    t0, t1 = 0.0, 1.0
    for i in range(3):
        if abs(d[i]) < 1e-12:
            if a[i] < lo[i] or a[i] > hi[i]:
                return False
            continue
        u, v = (lo[i] - a[i]) / d[i], (hi[i] - a[i]) / d[i]
        t0, t1 = max(t0, min(u, v)), min(t1, max(u, v))
        if t0 > t1:
            return False
    return True
