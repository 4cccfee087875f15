"""The VLA network: a small CNN trained from scratch, FiLM-conditioned on frozen MiniLM
instruction embeddings, with proprioception, an action-chunk head and a "subgoal done" head.

    image (3x128x128) + xy coords -> 4 conv blocks, each FiLM(gamma, beta | instruction)
      -> spatial softmax (keypoints) ──┬─> localization head: object and goal position (6)
    instruction tokens -> cross-attn ──┤                                   │
    state (7, normalized)      -> MLP ─┴───────────────> MLP trunk <───────┘
                                        -> arm deltas (H x 6), gripper logits (H), done logit

The localization head is supervised during training with the simulator's positions (an
auxiliary loss); at run time it is computed from pixels only, like every other input.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn
from torch.nn import functional as F

from vla_agent.vla.text import EMBED_DIM

AUX_CENTER = (0.5, 0.0, 0.05)  # normalization of the localization targets (metres)
AUX_SCALE = 0.15


class VLAConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    image_size: int = 128
    horizon: int = 4  # actions predicted per chunk
    channels: tuple[int, ...] = (16, 32, 64, 64)
    hidden: int = 256
    action_head: str = "continuous"  # or "bins" (256-way classification per dimension, RT-2 style)
    n_bins: int = 256
    bin_range: float = 3.0  # bins span +-bin_range standard deviations of the normalized action


class FiLMBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, cond: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1)
        self.norm = nn.GroupNorm(8, cout)
        self.film = nn.Linear(cond, 2 * cout)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(c).chunk(2, dim=-1)
        x = self.norm(self.conv(x))
        return F.relu(x * (1 + gamma[..., None, None]) + beta[..., None, None])


class SpatialSoftmax(nn.Module):
    """Expected (x, y) image coordinates per channel: a compact, position-aware feature."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        attn = F.softmax(x.flatten(2), dim=-1).view(b, c, h, w)
        ys = torch.linspace(-1, 1, h, device=x.device)
        xs = torch.linspace(-1, 1, w, device=x.device)
        ex = (attn.sum(2) * xs).sum(-1)
        ey = (attn.sum(3) * ys).sum(-1)
        return torch.cat([ex, ey], dim=-1)


class VLANet(nn.Module):
    def __init__(self, cfg: VLAConfig):
        super().__init__()
        self.cfg = cfg
        cond = 128
        # Language: learned queries cross-attend over frozen MiniLM token features, plus the
        # mean-pooled sentence vector.
        self.token_proj = nn.Linear(EMBED_DIM, cond)
        self.text_queries = nn.Parameter(torch.randn(4, cond) * 0.1)
        self.lang = nn.Sequential(nn.Linear(EMBED_DIM + 4 * cond, cond), nn.ReLU(), nn.Linear(cond, cond))
        self.stem = nn.Conv2d(5, cfg.channels[0], 5, 2, 2)  # RGB + coord channels
        blocks, cin = [], cfg.channels[0]
        for i, cout in enumerate(cfg.channels):
            blocks.append(FiLMBlock(cin, cout, 1 if i in (0, len(cfg.channels) - 1) else 2, cond))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.pool = SpatialSoftmax()
        # Language-conditioned spatial attention on the high-resolution stem features: two queries
        # from the instruction (the object, the goal) pick pixels; their expected image coordinates
        # are a direct, cheap-to-learn "where" signal.
        self.keys = nn.Conv2d(cfg.channels[0], 32, 1)
        self.queries = nn.Linear(cond, 2 * 32)
        self.proprio = nn.Sequential(nn.Linear(7, 64), nn.ReLU())
        self.locate = nn.Sequential(
            nn.Linear(2 * cin + cond + 4, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 6)
        )
        self.trunk = nn.Sequential(
            nn.Linear(2 * cin + 64 + cond + 6 + 4, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(),
        )
        h = cfg.horizon
        arm_out = h * 6 * (cfg.n_bins if cfg.action_head == "bins" else 1)
        self.arm = nn.Linear(cfg.hidden, arm_out)
        self.gripper = nn.Linear(cfg.hidden, h)
        self.done = nn.Linear(cfg.hidden, 1)

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(tokens.dtype)
        sentence = (tokens * m).sum(1) / m.sum(1).clamp(min=1)
        keys = self.token_proj(tokens)  # (B, L, cond)
        scores = torch.einsum("qc,blc->bql", self.text_queries, keys) / keys.shape[-1] ** 0.5
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        attended = torch.einsum("bql,blc->bqc", F.softmax(scores, dim=-1), keys).flatten(1)
        return self.lang(torch.cat([sentence, attended], dim=-1))

    def forward(
        self, image: torch.Tensor, state: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """image (B,3,H,W) normalized float, state (B,7) normalized, MiniLM token features
        (B,L,384) with their mask (B,L)."""
        b, _, hgt, wid = image.shape
        ys = torch.linspace(-1, 1, hgt, device=image.device).view(1, 1, hgt, 1).expand(b, 1, hgt, wid)
        xs = torch.linspace(-1, 1, wid, device=image.device).view(1, 1, 1, wid).expand(b, 1, hgt, wid)
        c = self.encode_text(tokens, mask)
        x = F.relu(self.stem(torch.cat([image, xs, ys], dim=1)))
        keys = self.keys(F.avg_pool2d(x, 2))  # 32x32 is enough for a 4 cm block
        q = self.queries(c).view(b, 2, -1)
        logits = torch.einsum("bkhw,bqk->bqhw", keys, q) / keys.shape[1] ** 0.5
        attn = F.softmax(logits.flatten(2), dim=-1).view_as(logits)
        gy = torch.linspace(-1, 1, attn.shape[2], device=x.device)
        gx = torch.linspace(-1, 1, attn.shape[3], device=x.device)
        attended = torch.cat([(attn.sum(2) * gx).sum(-1), (attn.sum(3) * gy).sum(-1)], dim=-1)  # (B, 4)
        for blk in self.blocks:
            x = blk(x, c)
        keypoints = self.pool(x)
        where = self.locate(torch.cat([keypoints, c, attended], dim=-1))
        z = self.trunk(torch.cat([keypoints, self.proprio(state), c, where, attended], dim=-1))
        arm = self.arm(z)
        h = self.cfg.horizon
        arm = arm.view(b, h, 6, self.cfg.n_bins) if self.cfg.action_head == "bins" else arm.view(b, h, 6)
        return {"arm": arm, "gripper": self.gripper(z), "done": self.done(z).squeeze(-1), "where": where}

    def decode_arm(self, arm: torch.Tensor) -> torch.Tensor:
        """Normalized arm deltas (B,H,6) from the head's output."""
        if self.cfg.action_head != "bins":
            return arm
        centers = torch.linspace(-self.cfg.bin_range, self.cfg.bin_range, self.cfg.n_bins, device=arm.device)
        return centers[arm.argmax(-1)]

    def bin_targets(self, arm_norm: torch.Tensor) -> torch.Tensor:
        r, n = self.cfg.bin_range, self.cfg.n_bins
        return ((arm_norm.clamp(-r, r) + r) / (2 * r) * (n - 1)).round().long()
