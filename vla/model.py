"""The VLA network: two small CNNs trained from scratch (the static camera and the wrist camera),
FiLM-conditioned on frozen MiniLM instruction features, language-conditioned heatmaps that say
*where* the named object and its goal are, proprioception, an action-chunk head and a
"subgoal done" head.

    static 3x128x128 (+xy) -> stem -> FiLM 32x32 ─┬─> heatmaps 64x64: object, goal, tool  ─> soft-argmax
                                                  └─> FiLM 16x16 x2 -> spatial softmax keypoints
    wrist  3x64x64   (+xy) -> stem -> FiLM 32x32 ─┬─> heatmaps 32x32 (+ "not in view"): object, goal
                                                  └─> FiLM 16x16 x2 -> spatial softmax keypoints
    instruction tokens -> learned queries cross-attend -> c (FiLM conditioning, trunk input)
    soft-argmax coordinates + keypoints + state -> localization head: object/goal position (metres)
    start memory: where the object was when the subgoal began (the policy's own estimate from
        its first frames, kept by the caller) and (object now - start)
    everything, and (object - tool), (goal - tool) in metres, and the memory -> MLP trunk
        -> arm deltas (H x 6), gripper logits (H), done logit

Heatmaps are trained with cross-entropy against Gaussian targets at the pixels where the
simulator projects the object, goal and tool (auxiliary labels, training only). Cross-entropy on a
dense map is what makes "find the *green* block" learnable from ~1.5k demonstrations: every pixel
gets a gradient, and the network is translation-equivariant. At run time all of it is computed from
pixels, proprioception and the instruction only.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn
from torch.nn import functional as F

from vla_agent.vla.text import EMBED_DIM

AUX_CENTER = (0.5, 0.0, 0.05)  # normalization of the localization targets (metres)
AUX_SCALE = 0.15
STATIC_MAPS = ("object", "goal", "tool")
WRIST_MAPS = ("object", "goal")


class VLAConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    image_size: int = 128
    wrist_size: int = 64
    horizon: int = 4  # actions predicted per chunk
    channels: tuple[int, ...] = (16, 32, 64, 64)
    hidden: int = 256
    action_head: str = "continuous"  # or "bins" (256-way classification per dimension, RT-2 style)
    n_bins: int = 256
    bin_range: float = 3.0  # bins span +-bin_range standard deviations of the normalized action
    # Episodic memory of where the named object was when the subgoal began (the policy's own
    # estimate from its first frames): "push it 10 cm" and "done" depend on how far the object
    # has moved since then, which no single frame shows.
    start_memory: bool = True


class FiLMBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, cond: int, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation)
        self.norm = nn.GroupNorm(8 if cout % 8 == 0 else 1, cout)
        self.film = nn.Linear(cond, 2 * cout)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(c).chunk(2, dim=-1)
        x = self.norm(self.conv(x))
        return F.relu(x * (1 + gamma[..., None, None]) + beta[..., None, None])


def spatial_softmax(x: torch.Tensor) -> torch.Tensor:
    """Expected (x, y) image coordinates in [-1, 1] per channel (B, 2C)."""
    b, c, h, w = x.shape
    attn = F.softmax(x.flatten(2), dim=-1).view(b, c, h, w)
    return torch.cat([expected_xy(attn)[..., 0], expected_xy(attn)[..., 1]], dim=-1)


def expected_xy(prob: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) probabilities -> (B, C, 2) expected cell-centre coordinates in [-1, 1]."""
    h, w = prob.shape[-2:]
    xs = torch.linspace(-1, 1, w, device=prob.device)
    ys = torch.linspace(-1, 1, h, device=prob.device)
    return torch.stack([(prob.sum(-2) * xs).sum(-1), (prob.sum(-1) * ys).sum(-1)], dim=-1)


def with_coords(img: torch.Tensor) -> torch.Tensor:
    b, _, h, w = img.shape
    ys = torch.linspace(-1, 1, h, device=img.device).view(1, 1, h, 1).expand(b, 1, h, w)
    xs = torch.linspace(-1, 1, w, device=img.device).view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([img, xs, ys], dim=1)


class CameraStream(nn.Module):
    """Stem + FiLM blocks for one camera: heatmap logits at the stem's resolution (half the image),
    a "not in view" logit per map when ``null``, and spatial-softmax keypoints of the deep features."""

    def __init__(self, channels: tuple[int, ...], cond: int, maps: int, mid_stride: int, null: bool):
        super().__init__()
        c0, c1, c2, c3 = channels
        self.stem = nn.Conv2d(5, c0, 5, 2, 2)
        self.mid = nn.ModuleList(
            [FiLMBlock(c0, c1, mid_stride, cond), FiLMBlock(c1, c1, 1, cond, dilation=2)]
        )
        # 1x1 convs as matmuls (their backward is ~20x faster on CPU); the deep features are
        # projected first and then upsampled, which equals upsampling first (both are linear).
        self.heat_deep = nn.Linear(c1, maps)
        self.heat_stem = nn.Linear(c0, maps, bias=False)
        self.null = nn.Linear(c1 + cond, maps) if null else None
        self.deep = nn.ModuleList([FiLMBlock(c1, c2, 2, cond), FiLMBlock(c2, c3, 1, cond)])
        self.upsample = mid_stride == 2  # heatmaps at the stem's resolution

    def forward(
        self, img: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        s = F.relu(self.stem(with_coords(img)))
        x = s
        for blk in self.mid:
            x = blk(x, c)
        heat = self.heat_deep(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        if self.upsample:
            heat = F.interpolate(heat, size=s.shape[-2:], mode="bilinear", align_corners=False)
        heat = heat + self.heat_stem(s.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        null = None
        if self.null is not None:
            null = self.null(torch.cat([x.mean((2, 3)), c], dim=-1))
        for blk in self.deep:
            x = blk(x, c)
        return heat, null, spatial_softmax(x)


def heat_probs(heat: torch.Tensor, null: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-map cell probabilities (B, M, H, W) and the probability of being in view (B, M)."""
    b, m, h, w = heat.shape
    flat = heat.flatten(2)
    if null is not None:
        flat = torch.cat([flat, null[..., None]], dim=-1)
    p = F.softmax(flat, dim=-1)
    cells = p[..., : h * w]
    visible = cells.sum(-1)
    cells = cells / visible.clamp(min=1e-6)[..., None]
    return cells.view(b, m, h, w), visible


class VLANet(nn.Module):
    def __init__(self, cfg: VLAConfig):
        super().__init__()
        self.cfg = cfg
        cond = 128
        self.token_proj = nn.Linear(EMBED_DIM, cond)
        self.text_queries = nn.Parameter(torch.randn(4, cond) * 0.1)
        self.lang = nn.Sequential(nn.Linear(EMBED_DIM + 4 * cond, cond), nn.ReLU(), nn.Linear(cond, cond))
        ch = cfg.channels
        self.static = CameraStream(ch, cond, len(STATIC_MAPS), mid_stride=2, null=False)
        self.wrist = CameraStream(ch, cond, len(WRIST_MAPS), mid_stride=1, null=True)
        # Raw-state stats (set from the dataset at training time, saved with the weights) so the
        # localization can be compared with the tool position in metres.
        self.register_buffer("state_mean", torch.zeros(7))
        self.register_buffer("state_std", torch.ones(7))
        # The localization units' origin, built once (not saved: a constant of the code).
        self.register_buffer("aux_center", torch.tensor(AUX_CENTER, dtype=torch.float32), persistent=False)
        n_static = 2 * len(STATIC_MAPS) + 4  # coordinates + (object - tool), (goal - tool)
        n_wrist = 3 * len(WRIST_MAPS)  # coordinates + in-view probability
        n_memory = 6 if cfg.start_memory else 0  # start position, (object now - start)
        self.proprio = nn.Sequential(nn.Linear(7, 64), nn.ReLU())
        self.locate = nn.Sequential(
            nn.Linear(4 * ch[3] + n_static + n_wrist + 64 + cond, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, 6),
        )
        self.trunk = nn.Sequential(
            nn.Linear(4 * ch[3] + n_static + n_wrist + 64 + cond + 6 + 6 + n_memory, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(),
        )
        h = cfg.horizon
        arm_out = h * 6 * (cfg.n_bins if cfg.action_head == "bins" else 1)
        self.arm = nn.Linear(cfg.hidden, arm_out)
        self.gripper = nn.Linear(cfg.hidden, h)
        self.done = nn.Linear(cfg.hidden, 1)

    def set_state_stats(self, mean, std) -> None:
        self.state_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.state_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp(min=1e-4))

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(tokens.dtype)
        sentence = (tokens * m).sum(1) / m.sum(1).clamp(min=1)
        keys = self.token_proj(tokens)  # (B, L, cond)
        scores = torch.einsum("qc,blc->bql", self.text_queries, keys) / keys.shape[-1] ** 0.5
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        attended = torch.einsum("bql,blc->bqc", F.softmax(scores, dim=-1), keys).flatten(1)
        return self.lang(torch.cat([sentence, attended], dim=-1))

    def forward(
        self,
        image: torch.Tensor,
        state: torch.Tensor,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        wrist: torch.Tensor,
        start: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """image (B,3,H,W) and wrist (B,3,h,w) normalized float, state (B,7) normalized, MiniLM
        token features (B,L,384) with their mask (B,L); ``start`` (B,3): where the object was when
        the subgoal began, in the localization head's units (``(metres - AUX_CENTER) /
        AUX_SCALE``); None means "now" (the first frames of a subgoal)."""
        b = image.shape[0]
        c = self.encode_text(tokens, mask)
        s_heat, _, s_keys = self.static(image, c)
        w_heat, w_null, w_keys = self.wrist(wrist, c)
        s_prob, _ = heat_probs(s_heat, None)
        w_prob, w_vis = heat_probs(w_heat, w_null)
        s_xy = expected_xy(s_prob)  # (B, 3, 2): object, goal, tool
        w_xy = expected_xy(w_prob) * w_vis[..., None]  # (B, 2, 2), zero when out of view
        static_feats = torch.cat([s_xy.flatten(1), s_xy[:, 0] - s_xy[:, 2], s_xy[:, 1] - s_xy[:, 2]], dim=-1)
        wrist_feats = torch.cat([w_xy.flatten(1), w_vis], dim=-1)
        prop = self.proprio(state)
        feats = torch.cat([s_keys, w_keys, static_feats, wrist_feats, prop, c], dim=-1)
        where = self.locate(feats)
        tool = (state[:, :3] * self.state_std[:3] + self.state_mean[:3] - self.aux_center) / AUX_SCALE
        rel = where - tool.repeat(1, 2)
        parts = [feats, where, rel]
        if self.cfg.start_memory:
            start = where[:, :3].detach() if start is None else start
            parts += [start, where[:, :3] - start]
        z = self.trunk(torch.cat(parts, dim=-1))
        arm = self.arm(z)
        h = self.cfg.horizon
        arm = arm.view(b, h, 6, self.cfg.n_bins) if self.cfg.action_head == "bins" else arm.view(b, h, 6)
        return {
            "arm": arm,
            "gripper": self.gripper(z),
            "done": self.done(z).squeeze(-1),
            "where": where,
            "static_heat": s_heat,
            "wrist_heat": w_heat,
            "wrist_null": w_null,
        }

    def decode_arm(self, arm: torch.Tensor) -> torch.Tensor:
        """Normalized arm deltas (B,H,6) from the head's output."""
        if self.cfg.action_head != "bins":
            return arm
        centers = torch.linspace(-self.cfg.bin_range, self.cfg.bin_range, self.cfg.n_bins, device=arm.device)
        return centers[arm.argmax(-1)]

    def bin_targets(self, arm_norm: torch.Tensor) -> torch.Tensor:
        r, n = self.cfg.bin_range, self.cfg.n_bins
        return ((arm_norm.clamp(-r, r) + r) / (2 * r) * (n - 1)).round().long()
