"""Normalization with stats that travel with the checkpoint. A missing stat is an error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_agent.errors import ConfigError

REQUIRED = {
    "observation.state": ("mean", "std"),
    "action": ("mean", "std"),
    "observation.image": ("mean", "std"),
}


@dataclass(frozen=True)
class Normalizer:
    """Mean/std normalization for state, action (arm dims) and image channels."""

    stats: dict

    def __post_init__(self):
        for key, fields in REQUIRED.items():
            for f in fields:
                if key not in self.stats or f not in self.stats[key]:
                    raise ConfigError(
                        f"normalization stats lack {key}.{f}; the checkpoint or dataset is incomplete"
                    )

    def _get(self, key: str, field: str) -> np.ndarray:
        v = np.asarray(self.stats[key][field], dtype=np.float32).reshape(-1)
        return v

    def _std(self, key: str) -> np.ndarray:
        return np.maximum(self._get(key, "std"), 1e-4)

    def state(self, s: np.ndarray) -> np.ndarray:
        return (s - self._get("observation.state", "mean")) / self._std("observation.state")

    def action(self, a: np.ndarray) -> np.ndarray:
        """Normalize the 6 arm dims; the gripper stays in {-1, +1}."""
        out = np.array(a, dtype=np.float32, copy=True)
        out[..., :6] = (out[..., :6] - self._get("action", "mean")[:6]) / self._std("action")[:6]
        return out

    def unaction(self, a: np.ndarray) -> np.ndarray:
        out = np.array(a, dtype=np.float32, copy=True)
        out[..., :6] = out[..., :6] * self._std("action")[:6] + self._get("action", "mean")[:6]
        return out

    def image_mean_std(self, key: str = "observation.image") -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean/std of a camera (``observation.images.wrist`` for the wrist camera)."""
        if key not in self.stats or not {"mean", "std"} <= set(self.stats[key]):
            raise ConfigError(
                f"normalization stats lack {key}.mean/std; the checkpoint or dataset is incomplete"
            )
        return self._get(key, "mean"), np.maximum(self._get(key, "std"), 1e-3)
