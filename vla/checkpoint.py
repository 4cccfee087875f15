"""Checkpoints: ``model.safetensors`` + ``config.json`` + ``stats.json`` in one folder.
Never a pickle: loading runs no code from the file."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vla_agent.errors import ConfigError
from vla_agent.vla.model import VLAConfig, VLANet
from vla_agent.vla.normalize import Normalizer

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"


def save_checkpoint(path: str | Path, model: VLANet, stats: dict, extra: dict | None = None) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path / "model.safetensors"))
    (path / "config.json").write_text(
        json.dumps({"model": model.cfg.model_dump(), **(extra or {})}, indent=2)
    )
    (path / "stats.json").write_text(json.dumps(stats))
    return path


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[VLANet, Normalizer, dict]:
    """Load a checkpoint folder; a missing file or stat raises ConfigError naming it."""
    path = Path(path)
    for name in ("model.safetensors", "config.json", "stats.json"):
        if not (path / name).exists():
            raise ConfigError(f"checkpoint {path} is missing {name}")
    config = json.loads((path / "config.json").read_text())
    # Checkpoints from before the start memory existed were trained without it.
    model = VLANet(VLAConfig(**{"start_memory": False, **config["model"]}))
    model.load_state_dict(load_file(str(path / "model.safetensors"), device=device))
    model.to(device).eval()
    norm = Normalizer(json.loads((path / "stats.json").read_text()))
    return model, norm, config


def torch_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is visible to torch")
    return torch.device(name)
