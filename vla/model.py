"""The VLA network: a small CNN trained from scratch, FiLM-conditioned on frozen MiniLM
instruction embeddings, with proprioception, an action-chunk head and a "subgoal done" head.

    image (3x128x128) + xy coords -> 4 conv blocks, each FiLM(gamma, beta | instruction)
      -> spatial softmax (keypoints) ──┬─> localization head: object and goal position (6)
    instruction embedding (384) -> MLP ┤                                   │
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
        self.lang = nn.Sequential(nn.Linear(EMBED_DIM, cond), nn.ReLU(), nn.Linear(cond, cond))
        self.stem = nn.Conv2d(5, cfg.channels[0], 5, 2, 2)  # RGB + coord channels
        blocks, cin = [], cfg.channels[0]
        for i, cout in enumerate(cfg.channels):
            blocks.append(FiLMBlock(cin, cout, 1 if i in (0, len(cfg.channels) - 1) else 2, cond))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.pool = SpatialSoftmax()
        self.proprio = nn.Sequential(nn.Linear(7, 64), nn.ReLU())
        self.locate = nn.Sequential(
            nn.Linear(2 * cin + cond, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 6)
        )
        self.trunk = nn.Sequential(
            nn.Linear(2 * cin + 64 + cond + 6, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(),
        )
        h = cfg.horizon
        arm_out = h * 6 * (cfg.n_bins if cfg.action_head == "bins" else 1)
        self.arm = nn.Linear(cfg.hidden, arm_out)
        self.gripper = nn.Linear(cfg.hidden, h)
        self.done = nn.Linear(cfg.hidden, 1)

    def forward(
        self, image: torch.Tensor, state: torch.Tensor, text: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """image (B,3,H,W) normalized float, state (B,7) normalized, text (B,384)."""
        b, _, hgt, wid = image.shape
        ys = torch.linspace(-1, 1, hgt, device=image.device).view(1, 1, hgt, 1).expand(b, 1, hgt, wid)
        xs = torch.linspace(-1, 1, wid, device=image.device).view(1, 1, 1, wid).expand(b, 1, hgt, wid)
        c = self.lang(text)
        x = F.relu(self.stem(torch.cat([image, xs, ys], dim=1)))
        for blk in self.blocks:
            x = blk(x, c)
        keypoints = self.pool(x)
        where = self.locate(torch.cat([keypoints, c], dim=-1))
        z = self.trunk(torch.cat([keypoints, self.proprio(state), c, where], dim=-1))
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
