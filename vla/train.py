"""``vla-agent vla train``: behaviour cloning of the expert demonstrations.

Seeded, resumable (``<out>/last`` holds model, optimizer and step), with image augmentation
(random shifts, brightness/contrast jitter that keeps hues) and checkpoints as safetensors +
JSON config + normalization stats. Uses CUDA when ``--device cuda``.
"""

from __future__ import annotations

import gc
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from vla_agent.errors import ConfigError
from vla_agent.vla.checkpoint import load_checkpoint, save_checkpoint, torch_device
from vla_agent.vla.dataset import WRIST_KEY
from vla_agent.vla.demos import Demonstrations, load_datasets
from vla_agent.vla.lora import DEFAULT_TARGETS, apply_lora, save_lora
from vla_agent.vla.model import AUX_CENTER, AUX_SCALE, VLAConfig, VLANet
from vla_agent.vla.normalize import Normalizer
from vla_agent.vla.text import text_encoder


class TrainConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: Path | list[Path] = Path("data/demos")  # several datasets are trained on as one
    out: Path = Path("runs/train")
    steps: int = Field(10000, ge=1)
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "cpu"
    threads: int = 2
    # "bf16": forward pass under bfloat16 autocast (losses, weights and optimizer stay float32);
    # "auto" picks it where the hardware has native bf16 (AMX / AVX512-BF16 CPUs: ~1.4x faster
    # steps on 2 cores; CUDA GPUs with bf16) and float32 elsewhere.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    save_every: int = 1000
    val_fraction: float = 0.05
    shift_px: int = 4
    done_weight: float = 0.5
    aux_weight: float = 1.0  # localization head (object and goal positions)
    heat_weight: float = 0.5  # heatmaps (object, goal, tool pixels in both cameras)
    # Label the gripper "open" this many steps before the expert opened it: the expert opens once
    # within 6 mm of the release point, finer than a policy can place itself, so the last
    # approach frames look like release frames but were labelled "closed"; a policy trained on
    # them hovers at the release point forever.
    open_lead: int = Field(3, ge=0)
    # ... but only where the tool is already within this distance of where the expert opened:
    # 3 steps before the release the expert is still descending, a median 8.6 cm above the
    # release point, and a step-only lead taught the policy to drop a block from there (a stacked
    # block then bounces off; stacking 2/12 on held-out seeds, every release 10-15 cm high).
    open_radius: float = Field(0.025, gt=0, description="metres")
    start_noise: float = 0.015  # metres (per axis) added to the start-memory input in training
    # Fine-tuning: start from this checkpoint's weights and keep its normalization stats (the
    # model's inputs and outputs mean what they meant); the optimizer and schedule start afresh.
    init: Path | None = None
    # LoRA (``vla.lora``): with ``init``, train only rank-``lora_rank`` updates of its linear layers
    # and write them as a small adapter (``<out>/lora.safetensors``) instead of a checkpoint.
    lora_rank: int = Field(0, ge=0, description="0: train every weight")
    lora_alpha: float = Field(8.0, gt=0)
    lora_targets: tuple[str, ...] = DEFAULT_TARGETS
    lora_skills: tuple[str, ...] = Field((), description="skills the adapter adds to the base's")
    model: VLAConfig = VLAConfig()


def lead_gripper_open(
    actions: np.ndarray,
    episode: np.ndarray,
    lead: int,
    tool: np.ndarray | None = None,
    radius: float = np.inf,
) -> np.ndarray:
    """A copy of ``actions`` whose gripper opens up to ``lead`` steps earlier at every closed ->
    open switch: never across an episode boundary, and (given the tool positions ``tool`` (N, 3))
    only from the first of those frames within ``radius`` of the tool's position at the switch."""
    out = np.array(actions, copy=True)
    if lead <= 0:
        return out
    g = actions[:, 6] > 0
    for t in np.flatnonzero(~g[:-1] & g[1:] & (episode[:-1] == episode[1:])) + 1:
        first = max(t - lead, 0)
        while first < t and (
            episode[first] != episode[t]
            or (tool is not None and np.linalg.norm(tool[first] - tool[t]) > radius)
        ):
            first += 1
        out[first:t, 6] = actions[t, 6]
    return out


class Batcher:
    """Tensors of the whole dataset with chunked action targets and augmentation."""

    def __init__(
        self,
        demos: Demonstrations,
        norm: Normalizer,
        horizon: int,
        device: torch.device,
        open_lead: int = 0,
        open_radius: float = np.inf,
    ):
        n = len(demos.states)
        idx = np.arange(n)[:, None] + np.arange(horizon)[None, :]
        ep = demos.episode_index
        last = np.zeros(n, np.int64)  # index of each frame's episode end
        ends = np.r_[np.flatnonzero(np.diff(ep)), n - 1]
        starts = np.r_[0, ends[:-1] + 1]
        first = np.zeros(n, np.int64)  # index of each frame's episode start
        for s, e in zip(starts, ends):
            last[s : e + 1] = e
            first[s : e + 1] = s
        idx = np.minimum(idx, last[:, None])
        chunks = norm.action(
            lead_gripper_open(demos.actions, ep, open_lead, demos.states[:, :3], open_radius)[idx]
        )  # (N, H, 7)
        if demos.wrist is None:
            raise ConfigError(
                "the dataset has no wrist camera images (re-collect with `vla-agent vla collect`)"
            )
        # uint8, (N, H, W, 3) as loaded: no second copy of the largest arrays; batches are
        # made channels-first when drawn.
        self.images = torch.from_numpy(demos.images)
        self.wrist = torch.from_numpy(demos.wrist)
        self.states = torch.from_numpy(norm.state(demos.states))
        self.arm = torch.from_numpy(chunks[..., :6])
        self.gripper = torch.from_numpy((chunks[..., 6] > 0).astype(np.float32))
        self.done = torch.from_numpy(demos.done)
        center = np.tile(np.array(AUX_CENTER, np.float32), 2)
        where = np.concatenate([demos.aux["aux.object_position"], demos.aux["aux.goal_position"]], axis=1)
        self.where = torch.from_numpy((where - center) / AUX_SCALE)  # NaN where unknown
        # Where the object was at the episode's first frame: the input of the start memory.
        self.start = torch.nan_to_num(self.where[first, :3]).contiguous()
        pix = lambda *keys: torch.from_numpy(np.stack([demos.aux[k][:, :2] for k in keys], 1))  # noqa: E731
        self.static_px = pix("aux.object_pixel", "aux.goal_pixel", "aux.tool_pixel")  # (N, 3, 2)
        self.wrist_px = pix("aux.object_wrist_pixel", "aux.goal_wrist_pixel")  # (N, 2, 2)
        tokens, mask = text_encoder().encode_tokens(demos.tasks)
        self.tokens, self.mask = torch.from_numpy(tokens), torch.from_numpy(mask)
        self.task = torch.from_numpy(demos.task_index)
        mean, std = norm.image_mean_std()
        self.img_mean = torch.tensor(mean).view(1, 3, 1, 1).to(device)
        self.img_std = torch.tensor(std).view(1, 3, 1, 1).to(device)
        wmean, wstd = norm.image_mean_std(WRIST_KEY)
        self.wrist_mean = torch.tensor(wmean).view(1, 3, 1, 1).to(device)
        self.wrist_std = torch.tensor(wstd).view(1, 3, 1, 1).to(device)
        self.device = device
        self.episode = torch.from_numpy(ep)

    def batch(
        self, idx: torch.Tensor, gen: torch.Generator | None, shift: int, start_noise: float = 0.0
    ) -> dict[str, torch.Tensor]:
        d = self.device
        start = self.start[idx].clone()
        img = self.images[idx].to(d).permute(0, 3, 1, 2).float().contiguous() / 255.0
        wrist = self.wrist[idx].to(d).permute(0, 3, 1, 2).float().contiguous() / 255.0
        static_px = self.static_px[idx].clone()
        if gen is not None:
            b = len(idx)
            if shift > 0:  # the same random shift for the batch; the pixel labels move with it
                pad = F.pad(img, (shift,) * 4, mode="replicate")
                ox, oy = torch.randint(0, 2 * shift + 1, (2,), generator=gen).tolist()
                img = pad[..., oy : oy + img.shape[2], ox : ox + img.shape[3]]
                static_px += torch.tensor([shift - ox, shift - oy], dtype=static_px.dtype)
            # At run time the start is the policy's own estimate: train with errors of that size.
            start += torch.randn(start.shape, generator=gen) * (start_noise / AUX_SCALE)
            for x in (img, wrist):  # brightness/contrast jitter that keeps hues
                scale = 1 + (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.2
                offset = (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.1
                x.mul_(scale.to(d)).add_(offset.to(d)).clamp_(0, 1)
        img = (img - self.img_mean) / self.img_std
        wrist = (wrist - self.wrist_mean) / self.wrist_std
        return {
            "image": img,
            "wrist": wrist,
            "static_px": static_px.to(d),
            "wrist_px": self.wrist_px[idx].to(d),
            "state": self.states[idx].to(d),
            "tokens": self.tokens[self.task[idx]].to(d),
            "mask": self.mask[self.task[idx]].to(d),
            "arm": self.arm[idx].to(d),
            "gripper": self.gripper[idx].to(d),
            "done": self.done[idx].to(d),
            "where": self.where[idx].to(d),
            "start": start.to(d),
        }


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether ``precision`` ("auto", "fp32", "bf16") means bfloat16 autocast on ``device``."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def compute_loss(
    model: VLANet,
    b: dict[str, torch.Tensor],
    done_weight: float,
    aux_weight: float = 1.0,
    heat_weight: float = 0.5,
    bf16: bool = False,
    forward=None,
) -> tuple[torch.Tensor, dict]:
    """The training loss of batch ``b``; ``forward`` runs the model (the DDP wrapper when training
    on several processes; default: ``model``)."""
    with torch.autocast(b["image"].device.type, dtype=torch.bfloat16, enabled=bf16):
        out = (forward or model)(b["image"], b["state"], b["tokens"], b["mask"], b["wrist"], b.get("start"))
    out = {k: v.float() if v is not None else None for k, v in out.items()}  # losses in float32
    if model.cfg.action_head == "bins":
        arm_loss = F.cross_entropy(
            out["arm"].reshape(-1, model.cfg.n_bins), model.bin_targets(b["arm"]).reshape(-1)
        )
    else:
        arm_loss = F.smooth_l1_loss(out["arm"], b["arm"], beta=0.5)
    grip_loss = F.binary_cross_entropy_with_logits(out["gripper"], b["gripper"])
    done_loss = F.binary_cross_entropy_with_logits(out["done"], b["done"])
    known = ~torch.isnan(b["where"])
    where_loss = (
        F.smooth_l1_loss(out["where"][known], b["where"][known], beta=0.1)
        if known.any()
        else out["where"].sum() * 0.0
    )
    size = b["image"].shape[-1], b["wrist"].shape[-1]
    heat_loss = heatmap_loss(out["static_heat"], None, b["static_px"], size[0]) + heatmap_loss(
        out["wrist_heat"], out["wrist_null"], b["wrist_px"], size[1]
    )
    loss = arm_loss + grip_loss + done_weight * done_loss + aux_weight * where_loss + heat_weight * heat_loss
    with torch.no_grad():
        arm_err = (model.decode_arm(out["arm"]) - b["arm"]).abs().mean()
    info = {
        "loss": loss,
        "arm": arm_loss,
        "gripper": grip_loss,
        "done": done_loss,
        "where": where_loss,
        "heat": heat_loss,
        "arm_abs_err": arm_err,
    }
    return loss, {k: v.item() for k, v in info.items()}


def heatmap_loss(heat: torch.Tensor, null: torch.Tensor | None, px: torch.Tensor, size: int) -> torch.Tensor:
    """Cross-entropy of heatmap logits (B, M, R, R) against Gaussians (sigma: one cell) at the
    labelled pixels (B, M, 2) of a ``size`` image. Out-of-view labels (NaN) train the "not in
    view" logit when there is one and are ignored otherwise."""
    b, m, r, _ = heat.shape
    cells = (px + 0.5) * r / size - 0.5  # cell coordinates
    known = ~torch.isnan(cells[..., 0])
    grid = torch.arange(r, device=heat.device, dtype=heat.dtype)
    cx, cy = torch.nan_to_num(cells[..., 0])[..., None], torch.nan_to_num(cells[..., 1])[..., None]
    gx, gy = torch.exp(-0.5 * (grid - cx) ** 2), torch.exp(-0.5 * (grid - cy) ** 2)  # (B, M, R)
    target = (gy[..., :, None] * gx[..., None, :]).flatten(2)
    target = target / target.sum(-1, keepdim=True).clamp(min=1e-8)
    logits = heat.flatten(2)
    if null is not None:
        logits = torch.cat([logits, null[..., None]], dim=-1)
        target = torch.cat([target * known[..., None], (~known).to(heat.dtype)[..., None]], dim=-1)
        weight = torch.ones_like(known, dtype=heat.dtype)
    else:
        weight = known.to(heat.dtype)
    ce = -(target * F.log_softmax(logits, dim=-1)).sum(-1)
    return (ce * weight).sum() / weight.sum().clamp(min=1)


def _save_resume(path: Path, model: VLANet, opt: torch.optim.Optimizer, step: int, stats: dict, cfg) -> None:
    save_checkpoint(path, model, stats, extra={"train": json.loads(cfg.model_dump_json()), "step": step})
    flat = {}
    for pid, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            flat[f"{pid}.{k}"] = v.detach().cpu().contiguous() if torch.is_tensor(v) else torch.tensor(v)
    save_file(flat, str(path / "optimizer.safetensors"))


def _load_resume(path: Path, model: VLANet, opt: torch.optim.Optimizer) -> int:
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    flat = load_file(str(path / "optimizer.safetensors"))
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for key, v in flat.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    sd["state"] = state
    opt.load_state_dict(sd)
    return int(json.loads((path / "config.json").read_text())["step"])


def train(
    cfg: TrainConfig,
    progress: Callable[[int, int, dict], None] | None = None,
    rank: int = 0,
    world: int = 1,
) -> dict:
    """Train and write ``<out>/final`` (and ``<out>/last`` for resuming); return figures.

    With ``world > 1`` this is rank ``rank`` of a ``torch.distributed`` group (``vla.distributed``):
    the model is wrapped in DDP, the rank draws its batches (``batch_size / world`` each, so the
    global batch stays ``batch_size``) from its own shard of the training frames, and rank 0 alone
    reports, validates and writes checkpoints."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads // world))
    device = torch_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", rank % torch.cuda.device_count())
    demos = load_datasets(cfg.dataset if isinstance(cfg.dataset, list) else [cfg.dataset])
    if cfg.init is not None:
        model, norm, _ = load_checkpoint(cfg.init, str(device))
        if (model.cfg.image_size, model.cfg.wrist_size) != (demos.images.shape[1], demos.wrist.shape[1]):
            raise ConfigError(f"--init {cfg.init}: its image sizes differ from the dataset's")
        demos.stats = norm.stats
    else:
        norm = Normalizer(demos.stats)
        size = {"image_size": demos.images.shape[1], "wrist_size": demos.wrist.shape[1]}
        model = VLANet(cfg.model.model_copy(update=size)).to(device)
        model.set_state_stats(norm.stats["observation.state"]["mean"], norm.stats["observation.state"]["std"])
    if cfg.lora_rank:
        if cfg.init is None:
            raise ConfigError("LoRA adapts a trained checkpoint: give the base with init (--checkpoint)")
        apply_lora(model, cfg.lora_rank, cfg.lora_alpha, cfg.lora_targets)
    trainable = [p for p in model.parameters() if p.requires_grad]
    data = Batcher(demos, norm, model.cfg.horizon, device, cfg.open_lead, cfg.open_radius)
    bf16 = use_bf16(cfg.precision, device)
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = 0
    last = cfg.out / "last"
    if (last / "optimizer.safetensors").exists():
        start = _load_resume(last, model, opt)
    # Split by episode so validation frames come from unseen episodes.
    rng = np.random.default_rng(cfg.seed)
    episodes = np.unique(demos.episode_index)
    val_eps = set(rng.choice(episodes, max(1, int(len(episodes) * cfg.val_fraction)), replace=False).tolist())
    is_val = np.isin(demos.episode_index, list(val_eps))
    train_idx = torch.from_numpy(np.flatnonzero(~is_val))[rank::world]  # this rank's shard
    val_idx = torch.from_numpy(np.flatnonzero(is_val))
    gen = torch.Generator().manual_seed(cfg.seed + start + 7919 * rank)
    forward = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    batch_size = max(1, cfg.batch_size // world)
    lead = rank == 0
    sched = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps))  # noqa: E731
    t0, history = time.perf_counter(), []
    model.train()
    for step in range(start, cfg.steps):
        for g in opt.param_groups:
            g["lr"] = cfg.lr * max(sched(step), 0.02)
        idx = train_idx[torch.randint(len(train_idx), (batch_size,), generator=gen)]
        loss, info = compute_loss(
            model,
            data.batch(idx, gen, cfg.shift_px, cfg.start_noise),
            cfg.done_weight,
            cfg.aux_weight,
            cfg.heat_weight,
            bf16,
            forward=forward,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()  # DDP: gradients averaged over the ranks here
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if progress and lead:
            progress(step + 1, cfg.steps, info)
        if ((step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps) and lead:
            val = evaluate_loss(model, data, val_idx, cfg, bf16)
            history.append({"step": step + 1, **info, **{f"val_{k}": v for k, v in val.items()}})
            _save_resume(last, model, opt, step + 1, demos.stats, cfg)
            model.train()
    model.eval()
    if world > 1:  # the DDP wrapper (and its reducer's threads) goes while its process group lives
        del forward
        gc.collect()
    figures = {
        "param_checksum": float(sum(p.double().sum().item() for p in model.parameters())),
        "trainable_parameters": sum(p.numel() for p in trainable),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if not lead:
        return figures
    common = {
        "steps": cfg.steps,
        "resumed_from": start,
        "wall_s": time.perf_counter() - t0,
        "history": history,
    }
    if cfg.lora_rank:
        meta = {
            "rank": cfg.lora_rank,
            "alpha": cfg.lora_alpha,
            "targets": list(cfg.lora_targets),
            "skills": list(cfg.lora_skills),
            "base": str(cfg.init),
            "train": json.loads(cfg.model_dump_json()),
        }
        path = save_lora(cfg.out / "lora.safetensors", model, meta)
        return {**figures, **common, "adapter": str(path), "adapter_bytes": path.stat().st_size}
    final = save_checkpoint(
        cfg.out / "final",
        model,
        demos.stats,
        extra={
            "train": json.loads(cfg.model_dump_json()),
            "step": cfg.steps,
            "dataset_frames": len(demos.states),
            "history": history,
        },
    )
    return {
        **figures,
        "checkpoint": str(final),
        "steps": cfg.steps,
        "resumed_from": start,
        "wall_s": time.perf_counter() - t0,
        "precision": "bf16" if bf16 else "fp32",
        "history": history,
    }


@torch.no_grad()
def evaluate_loss(
    model: VLANet, data: Batcher, idx: torch.Tensor, cfg: TrainConfig, bf16: bool = False
) -> dict:
    model.eval()
    totals: dict[str, float] = {}
    chunks = idx.split(256)
    for c in chunks:
        _, info = compute_loss(
            model, data.batch(c, None, 0), cfg.done_weight, cfg.aux_weight, cfg.heat_weight, bf16
        )
        for k, v in info.items():
            totals[k] = totals.get(k, 0.0) + v / len(chunks)
    return totals
