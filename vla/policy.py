"""The VLA as a ``SkillPolicy``: static + wrist camera images, proprioception and the instruction
-> an action chunk."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from vla_agent.errors import ConfigError
from vla_agent.sim.env import EnvConfig
from vla_agent.types import IMAGE, STATE, WRIST_IMAGE, Observation, Subgoal
from vla_agent.vla.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint, torch_device
from vla_agent.vla.dataset import WRIST_KEY
from vla_agent.vla.text import text_encoder

_ENV = EnvConfig()  # the action space the policy was trained in
ARM_LIMITS = np.array([_ENV.max_translation] * 3 + [_ENV.max_rotation] * 3, np.float32)


class VLAPolicy:
    """In-process VLA. ``act`` returns the first ``execute`` actions of the predicted chunk;
    ``done`` turns true when the learned "subgoal done" probability exceeds ``done_threshold``."""

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        device: str = "cpu",
        execute: int = 2,
        done_threshold: float = 0.5,
    ):
        self.device = torch_device(device)
        self.model, self.norm, self.config = load_checkpoint(
            checkpoint or DEFAULT_CHECKPOINT, str(self.device)
        )
        self.execute = max(1, min(execute, self.model.cfg.horizon))
        self.done_threshold = done_threshold
        mean, std = self.norm.image_mean_std()
        self._img_mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self._img_std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        wmean, wstd = self.norm.image_mean_std(WRIST_KEY)
        self._wrist_mean = torch.tensor(wmean, device=self.device).view(1, 3, 1, 1)
        self._wrist_std = torch.tensor(wstd, device=self.device).view(1, 3, 1, 1)
        self.encoder = text_encoder()
        self.subgoal: Subgoal | None = None
        self.done = False
        self.done_prob = 0.0
        self.latencies_ms: list[float] = []

    def reset(self, subgoal: Subgoal) -> None:
        self.subgoal = subgoal
        tokens, mask = self.encoder.encode_tokens([subgoal.instruction])
        self._tokens = torch.from_numpy(tokens).to(self.device)
        self._mask = torch.from_numpy(mask).to(self.device)
        self.done = False
        self.done_prob = 0.0

    def _image(self, image: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        img = torch.from_numpy(np.array(image, dtype=np.uint8)).to(self.device).permute(2, 0, 1)[None]
        return (img.float() / 255 - mean) / std

    @torch.inference_mode()
    def infer(self, image: np.ndarray, state: np.ndarray, wrist: np.ndarray) -> tuple[np.ndarray, float]:
        """Full chunk (H, 7) in env units and the done probability."""
        if self.subgoal is None:
            raise ConfigError("VLAPolicy.act called before reset(subgoal)")
        img = self._image(image, self._img_mean, self._img_std)
        wrist_img = self._image(wrist, self._wrist_mean, self._wrist_std)
        st = torch.from_numpy(self.norm.state(np.asarray(state, np.float32)))[None].to(self.device)
        out = self.model(img, st, self._tokens, self._mask, wrist_img)
        arm = self.model.decode_arm(out["arm"])[0].cpu().numpy()
        grip = np.where(out["gripper"][0].cpu().numpy() >= 0, 1.0, -1.0)[:, None]
        chunk = self.norm.unaction(np.concatenate([arm, grip], axis=-1))
        chunk[:, :6] = np.clip(chunk[:, :6], -ARM_LIMITS, ARM_LIMITS)
        return chunk.astype(np.float64), float(torch.sigmoid(out["done"][0]))

    def act(self, obs: Observation) -> np.ndarray:
        t0 = time.perf_counter()
        if WRIST_IMAGE not in obs:
            raise ConfigError(f"the VLA needs the wrist camera ({WRIST_IMAGE}); enable it on the backend")
        chunk, self.done_prob = self.infer(obs[IMAGE], obs[STATE], obs[WRIST_IMAGE])
        self.latencies_ms.append((time.perf_counter() - t0) * 1000)
        self.done = self.done_prob >= self.done_threshold
        if self.done:  # hold still: the subgoal is finished
            chunk[:, :6] = 0.0
        return chunk[: self.execute]
