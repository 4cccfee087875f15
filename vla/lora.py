"""Low-rank adaptation (LoRA, Hu et al. 2021) of the VLA's linear layers: ``W x + (B A x) *
alpha / r`` with ``A`` (r x in) and ``B`` (out x r, zero at the start), the base frozen.

Our own small layers rather than peft: the VLA is a 0.74 M-parameter custom module, where peft's
wrapper would rename every state-dict key and add a dependency for ~60 lines of code; an adapter
here is a safetensors file of the ``A``/``B`` matrices plus a JSON of where they go, loaded on top
of the unchanged base checkpoint (``--checkpoint BASE --lora PATH``).
"""

from __future__ import annotations

import fnmatch
import json
import math
from pathlib import Path

import torch
from torch import nn

from vla_agent.errors import ConfigError

# The language path and the layers that read it (FiLM of the deep visual blocks, the trunk, the
# heads): what a new instruction or skill has to change. 1.2% of the parameters at rank 2.
DEFAULT_TARGETS = ("lang.*", "*.deep.*.film", "trunk.*", "arm", "gripper", "done")


class _LowRank(nn.Module):
    """A frozen layer ``base`` plus ``scale * B(A(x))``; ``lora_a`` is (rank, *a_shape) and
    ``lora_b`` has ``b_shape`` (the shapes adapters are saved in)."""

    def __init__(self, base: nn.Module, rank: int, alpha: float, a_shape: tuple, b_shape: tuple):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank, self.scale = rank, alpha / rank
        dev = base.weight.device
        self.lora_a = nn.Parameter(torch.empty(rank, *a_shape, device=dev))
        self.lora_b = nn.Parameter(torch.zeros(*b_shape, device=dev))  # zero: no change at first
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))


class LoRALinear(_LowRank):
    """A frozen ``nn.Linear`` plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__(base, rank, alpha, (base.in_features,), (base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale


class LoRAConv2d(_LowRank):
    """A frozen ``nn.Conv2d`` plus a low-rank update: a ``rank``-channel convolution with the
    base's kernel, stride and dilation, then a 1x1 convolution back (zero at the start)."""

    def __init__(self, base: nn.Conv2d, rank: int, alpha: float):
        a_shape, b_shape = (base.in_channels, *base.kernel_size), (base.out_channels, rank, 1, 1)
        super().__init__(base, rank, alpha, a_shape, b_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.base
        low = nn.functional.conv2d(x, self.lora_a, None, b.stride, b.padding, b.dilation)
        return b(x) + nn.functional.conv2d(low, self.lora_b) * self.scale


def apply_lora(
    model: nn.Module, rank: int = 2, alpha: float = 8.0, targets: tuple[str, ...] = DEFAULT_TARGETS
) -> list[str]:
    """Freeze ``model`` and wrap its linear and convolution layers whose names match ``targets``
    (fnmatch patterns); returns the wrapped names (an empty match is an error)."""
    for p in model.parameters():
        p.requires_grad_(False)
    names = [
        n
        for n, m in model.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv2d)) and any(fnmatch.fnmatchcase(n, t) for t in targets)
    ]
    if not names:
        raise ConfigError(f"LoRA targets {targets} match no linear or convolution layer of the model")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = getattr(parent, child)
        wrap = LoRALinear if isinstance(layer, nn.Linear) else LoRAConv2d
        setattr(parent, child, wrap(layer, rank, alpha))
    return names


def lora_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if ".lora_" in n}


def save_lora(path: Path, model: nn.Module, meta: dict) -> Path:
    """``path`` (a ``.safetensors`` file) and ``path.with_suffix('.json')`` (rank, alpha, targets,
    the skills it adds, how it was trained)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(lora_state(model), str(path))
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return path


def load_lora(model: nn.Module, path: str | Path) -> dict:
    """Wrap ``model`` as the adapter at ``path`` says and load its weights; returns its metadata."""
    from safetensors.torch import load_file

    path = Path(path)
    shipped = Path(__file__).parent / "checkpoints" / f"lora-{path}"
    if not path.exists() and shipped.is_dir():  # a shipped adapter by name: --lora place_beside
        path = shipped
    if path.is_dir():
        path = path / "lora.safetensors"
    meta_path = path.with_suffix(".json")
    if not path.exists() or not meta_path.exists():
        raise ConfigError(f"no LoRA adapter at {path} (expected {path.name} and {meta_path.name})")
    meta = json.loads(meta_path.read_text())
    apply_lora(model, meta["rank"], meta["alpha"], tuple(meta["targets"]))
    weights = load_file(str(path), device=str(next(model.parameters()).device))
    expected = set(lora_state(model))
    if set(weights) != expected:
        raise ConfigError(
            f"{path}: its weights do not fit this model ({len(weights)} vs {len(expected)} tensors)"
        )
    try:
        model.load_state_dict(weights, strict=False)
    except RuntimeError as e:  # shapes of another architecture
        raise ConfigError(
            f"{path}: its weights do not fit this model ({str(e).splitlines()[-1].strip()})"
        ) from None
    return meta
