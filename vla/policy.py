"""The VLA as a ``SkillPolicy``: static + wrist camera images, proprioception and the instruction
-> an action chunk."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from vla_agent.errors import ConfigError
from vla_agent.sim.env import EnvConfig
from vla_agent.types import IMAGE, STATE, WRIST_IMAGE, Observation, Subgoal
from vla_agent.vla import TRAINED_SKILLS
from vla_agent.vla.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint, torch_device
from vla_agent.vla.chunking import ChunkedPolicy, ChunkRunner
from vla_agent.vla.dataset import WRIST_KEY
from vla_agent.vla.model import AUX_SCALE
from vla_agent.vla.text import text_encoder

_ENV = EnvConfig()  # the action space the policy was trained in
ARM_LIMITS = np.array([_ENV.max_translation] * 3 + [_ENV.max_rotation] * 3, np.float32)


def quantized(model: torch.nn.Module, how: str, device: torch.device) -> torch.nn.Module:
    """``int8``: dynamic int8 quantization of the linear layers (CPU; weights int8, activations
    quantized per batch); ``fp16``: half-precision autocast at inference (CUDA); ``none``."""
    if how == "int8":
        if device.type != "cpu":
            raise ConfigError("--quantize int8 is CPU dynamic quantization; on a GPU use --quantize fp16")
        import warnings

        with warnings.catch_warnings():  # torch.ao.quantization is deprecated for torchao, still works
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    if how == "fp16" and device.type != "cuda":
        raise ConfigError("--quantize fp16 needs --device cuda (half precision on CPU is slower, not faster)")
    if how not in ("none", "int8", "fp16"):
        raise ConfigError(f"--quantize must be none, int8 or fp16, not {how!r}")
    return model


class Prediction(NamedTuple):
    actions: np.ndarray  # (H, 7) in env units, gripper +1 open / -1 closed
    gripper_prob: np.ndarray  # (H,) P(gripper open) at each chunk position
    done_prob: float
    object_position: np.ndarray  # (3,) metres: where the model sees the named object now


class VLAPolicy(ChunkedPolicy):
    """In-process VLA. ``act`` returns the first ``execute`` actions of the predicted chunk, the
    gripper decided by ``GripperEnsemble``; ``done`` turns true when the learned "subgoal done"
    probability exceeds ``done_threshold``."""

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        device: str = "cpu",
        execute: int = 2,
        done_threshold: float = 0.5,
        quantize: str = "none",
        lora: str | Path | None = None,
    ):
        self.skills = TRAINED_SKILLS  # what it was trained on; the executor refuses other skills
        self.device = torch_device(device)
        self.model, self.norm, self.config = load_checkpoint(
            checkpoint or DEFAULT_CHECKPOINT, str(self.device)
        )
        if lora is not None:  # a low-rank adapter on top (vla.lora): the skills it was trained for
            from vla_agent.vla.lora import load_lora

            meta = load_lora(self.model, lora)
            self.skills = tuple(dict.fromkeys((*self.skills, *meta.get("skills", ()))))
        self.model = quantized(self.model, quantize, self.device)
        self.fp16 = quantize == "fp16"
        self.runner = ChunkRunner(max(1, min(execute, self.model.cfg.horizon)), done_threshold)
        mean, std = self.norm.image_mean_std()
        self._img_mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self._img_std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        wmean, wstd = self.norm.image_mean_std(WRIST_KEY)
        self._wrist_mean = torch.tensor(wmean, device=self.device).view(1, 3, 1, 1)
        self._wrist_std = torch.tensor(wstd, device=self.device).view(1, 3, 1, 1)
        self.encoder = text_encoder()
        self.subgoal: Subgoal | None = None
        self.latencies_ms: list[float] = []

    def reset(self, subgoal: Subgoal) -> None:
        self.subgoal = subgoal
        tokens, mask = self.encoder.encode_tokens([subgoal.instruction])
        self._tokens = torch.from_numpy(tokens).to(self.device)
        self._mask = torch.from_numpy(mask).to(self.device)
        self.runner.reset()

    def _image(self, image: np.ndarray, mean: torch.Tensor, std: torch.Tensor, size: int) -> torch.Tensor:
        """uint8 HxWx3 -> normalized 1x3xSxS; other sizes (a real camera) are centre-cropped to
        a square and resized."""
        img = torch.from_numpy(np.array(image, dtype=np.uint8)).to(self.device).permute(2, 0, 1)[None].float()
        h, w = img.shape[-2:]
        if (h, w) != (size, size):
            s = min(h, w)
            img = img[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
            img = torch.nn.functional.interpolate(img, size=(size, size), mode="bilinear", antialias=True)
        return (img / 255 - mean) / std

    @torch.inference_mode()
    def infer(
        self, image: np.ndarray, state: np.ndarray, wrist: np.ndarray, start: np.ndarray | None = None
    ) -> Prediction:
        """The full chunk in env units with the gripper probabilities, the done probability and
        the object position estimate; ``start`` (metres) is where the object was when the subgoal
        began (None: not known yet, use the current estimate)."""
        if self.subgoal is None:
            raise ConfigError("VLAPolicy.act called before reset(subgoal)")
        cfg = self.model.cfg
        img = self._image(image, self._img_mean, self._img_std, cfg.image_size)
        wrist_img = self._image(wrist, self._wrist_mean, self._wrist_std, cfg.wrist_size)
        st = torch.from_numpy(self.norm.state(np.asarray(state, np.float32)))[None].to(self.device)
        center = self.model.aux_center
        start_t = None
        if start is not None:
            start_t = (
                torch.as_tensor(np.asarray(start, np.float32), device=self.device)[None] - center
            ) / AUX_SCALE
        with torch.autocast("cuda", torch.float16, enabled=self.fp16):
            out = self.model(img, st, self._tokens, self._mask, wrist_img, start_t)
        return self._prediction({k: v.float() for k, v in out.items()}, 0)

    def _prediction(self, out: dict, b: int) -> Prediction:
        """Row ``b`` of a forward pass's outputs, in env units."""
        center = self.model.aux_center
        where = (out["where"][b, :3] * AUX_SCALE + center).cpu().numpy().astype(np.float64)
        arm = self.model.decode_arm(out["arm"][b : b + 1])[0].cpu().numpy()
        p_open = torch.sigmoid(out["gripper"][b]).cpu().numpy().astype(np.float64)
        grip = np.where(p_open >= 0.5, 1.0, -1.0)[:, None]
        chunk = self.norm.unaction(np.concatenate([arm, grip], axis=-1))
        chunk[:, :6] = np.clip(chunk[:, :6], -ARM_LIMITS, ARM_LIMITS)
        return Prediction(chunk.astype(np.float64), p_open, float(torch.sigmoid(out["done"][b])), where)

    @torch.inference_mode()
    def infer_batch(self, requests: list[tuple]) -> list[Prediction]:
        """Several requests ``(image, state, wrist, start or None, prompt)`` in one forward pass
        per kind (with and without a start position): a policy server's batch."""
        cfg = self.model.cfg
        preds: list[Prediction | None] = [None] * len(requests)
        for with_start in (False, True):
            idx = [i for i, r in enumerate(requests) if (r[3] is not None) == with_start]
            if not idx:
                continue
            img = torch.cat(
                [self._image(requests[i][0], self._img_mean, self._img_std, cfg.image_size) for i in idx]
            )
            wrist = torch.cat(
                [self._image(requests[i][2], self._wrist_mean, self._wrist_std, cfg.wrist_size) for i in idx]
            )
            st = np.stack([self.norm.state(np.asarray(requests[i][1], np.float32)) for i in idx])
            tokens, mask = self.encoder.encode_tokens([requests[i][4] for i in idx])
            start_t = None
            if with_start:
                starts = np.stack([np.asarray(requests[i][3], np.float32) for i in idx])
                start_t = (torch.as_tensor(starts, device=self.device) - self.model.aux_center) / AUX_SCALE
            with torch.autocast("cuda", torch.float16, enabled=self.fp16):
                out = self.model(
                    img,
                    torch.from_numpy(st).to(self.device),
                    torch.from_numpy(tokens).to(self.device),
                    torch.from_numpy(mask).to(self.device),
                    wrist,
                    start_t,
                )
            out = {k: v.float() for k, v in out.items()}
            for b, i in enumerate(idx):
                preds[i] = self._prediction(out, b)
        return preds  # type: ignore[return-value]

    def act(self, obs: Observation) -> np.ndarray:
        t0 = time.perf_counter()
        if WRIST_IMAGE not in obs:
            raise ConfigError(f"the VLA needs the wrist camera ({WRIST_IMAGE}); enable it on the backend")
        pred = self.infer(obs[IMAGE], obs[STATE], obs[WRIST_IMAGE], self.memory.start)
        self.latencies_ms.append((time.perf_counter() - t0) * 1000)
        return self.runner.take(
            pred.actions, pred.gripper_prob, pred.done_prob, pred.object_position, obs[STATE][:3]
        )
