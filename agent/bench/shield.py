"""``vla-agent bench shield``: the safety shield against adversarial policies in the simulator.

Each episode resets a random scene and lets one adversary drive the arm through the shield and
the backend for ``steps`` control steps. The adversaries: uniform and huge values, NaN/inf, wrong
shapes and types, wrist-yaw and tilt ramps (fast and slow), drift toward every face and corner
of the workspace box in tiny and in full-size steps, a wrist turn while drifting to a face, and
random walks. The judge is the backend's own audit of the *measured* state after every step
(``StateAudit``), not the shield's view of itself: the promise is that no measured state leaves
the envelope by more than its tolerances, whatever the policy sends.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_agent.agent.backends.sim import SimBackend, StateAudit
from vla_agent.agent.safety.shield import SafetyShield, ShieldConfig
from vla_agent.errors import ActionError
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.types import STATE

SHIELD_SEED_BASE = 3_000_000
Adversary = Callable[[np.random.Generator, np.ndarray, int], object]  # (rng, state, step) -> action

_FACES = [np.eye(3)[i] * s for i in range(3) for s in (-1.0, 1.0)]
_CORNERS = [np.array(c, float) / np.sqrt(3) for c in itertools.product((-1.0, 1.0), repeat=3)]


def _const(move, turn=(0.0, 0.0, 0.0), gripper: float = 1.0) -> Adversary:
    action = np.array([*move, *turn, gripper], float)
    return lambda rng, state, k: action


def _uniform(scale: float) -> Adversary:
    limits = np.array([0.04] * 3 + [0.25] * 3 + [1.0])
    return lambda rng, state, k: rng.uniform(-1, 1, 7) * limits * scale


def _huge(rng: np.random.Generator, state: np.ndarray, k: int):
    choice = k % 4
    if choice == 0:
        return rng.choice([-1.0, 1.0], 7) * 1e6
    if choice == 1:
        return [float(rng.choice([1e38, -1e38, 1e308]))] * 7
    if choice == 2:
        return [10**400, 0, 0, 0, 0, 0, 1]  # a Python int no float holds
    return rng.normal(0, 1e3, 7)


def _nonfinite(rng: np.random.Generator, state: np.ndarray, k: int):
    a = rng.uniform(-0.04, 0.04, 7)
    a[rng.integers(7)] = rng.choice([np.nan, np.inf, -np.inf])
    return a


_MALFORMED = (
    lambda rng: rng.uniform(-0.04, 0.04, 6),
    lambda rng: rng.uniform(-0.04, 0.04, 8),
    lambda rng: rng.uniform(-0.04, 0.04, (2, 7)),
    lambda rng: 0.04,
    lambda rng: "move left",
    lambda rng: None,
    lambda rng: {"dx": 0.04},
    lambda rng: [0.04, "x", 0, 0, 0, 0, 1],
    lambda rng: [[0.04] * 7] * 0,
    lambda rng: np.array([True] * 7),
)


def _malformed(rng: np.random.Generator, state: np.ndarray, k: int):
    return _MALFORMED[k % len(_MALFORMED)](rng)


class _RandomWalk:
    """A persistent direction at full speed, with wrist turns, that changes now and then."""

    def __init__(self):
        self.direction = np.ones(6)

    def __call__(self, rng: np.random.Generator, state: np.ndarray, k: int):
        if k == 0 or rng.random() < 0.05:
            self.direction = rng.normal(0, 1, 6)
        d = self.direction
        return np.array([*(d[:3] / np.abs(d[:3]).max() * 0.04), *(np.tanh(d[3:]) * 0.25), 1.0])


def adversaries() -> dict[str, Adversary]:
    """Every adversary by name; an episode runs one of them."""
    out: dict[str, Adversary] = {
        "uniform": _uniform(1.0),
        "uniform-x10": _uniform(10.0),
        "huge": _huge,
        "nonfinite": _nonfinite,
        "malformed": _malformed,
        "random-walk": _RandomWalk(),
        "yaw-ramp-0.25": _const((0, 0, 0), (0, 0, 0.25)),
        "yaw-ramp-0.05": _const((0, 0, 0), (0, 0, 0.05)),
        "yaw-ramp-neg-0.25": _const((0, 0, 0), (0, 0, -0.25)),
        "roll-ramp-0.25": _const((0, 0, 0), (0.25, 0, 0)),
        "pitch-ramp-0.05": _const((0, 0, 0), (0, -0.05, 0)),
        "tilt-and-yaw": _const((0, 0, 0), (0.25, 0.25, 0.25)),
    }
    names = ["x-", "x+", "y-", "y+", "z-", "z+"]
    for name, face in zip(names, _FACES):
        out[f"drift-{name}-1mm"] = _const(face * 0.001)
        out[f"drift-{name}-4cm"] = _const(face * 0.04)
        out[f"drift-{name}-yaw"] = _const(face * 0.01, (0, 0, 0.25))
    for i, corner in enumerate(_CORNERS):
        out[f"corner-{i}-1mm"] = _const(corner * 0.001)
        out[f"corner-{i}-4cm"] = _const(corner * 0.04)
    return out


class ShieldBenchConfig(BaseModel):
    """``vla-agent bench shield``: ``episodes`` episodes of ``steps`` control steps each."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    episodes: int = Field(500, ge=1)
    steps: int = Field(200, ge=1)
    seed: int = SHIELD_SEED_BASE
    adversary: str | None = Field(None, description="run only this adversary (default: cycle through all)")
    shield: ShieldConfig = ShieldConfig()


def run_shield_bench(cfg: ShieldBenchConfig, progress: Callable[[int, int], None] | None = None) -> dict:
    """Drive the simulator with adversarial policies through the shield; return JSON figures."""
    table = adversaries()
    if cfg.adversary is not None and cfg.adversary not in table:
        from vla_agent.errors import unknown

        raise unknown("adversary", cfg.adversary, table)
    names = [cfg.adversary] if cfg.adversary else list(table)
    env = TabletopEnv(
        EnvConfig(image_size=32, wrist_camera=False, segmentation=False, max_episode_steps=10**9)
    )
    backend = SimBackend(env, audit=SafetyShield(cfg.shield))
    shield = SafetyShield(cfg.shield)
    per = defaultdict(
        lambda: {"episodes": 0, "actions": 0, "interventions": 0, "holds": 0, "unsafe_states": 0, "worst": {}}
    )
    total = StateAudit()
    totals = {"actions": 0, "interventions": 0, "holds": 0, "state_events": 0}
    refused = 0
    shield_s = 0.0
    t0 = time.perf_counter()
    for ep in range(cfg.episodes):
        name = names[ep % len(names)]
        policy = table[name]
        rng = np.random.default_rng(cfg.seed + ep)
        obs = backend.reset(seed=cfg.seed + ep)
        shield.reset(obs)
        backend.states = StateAudit()
        row = per[name]
        row["episodes"] += 1
        for k in range(cfg.steps):
            action = policy(rng, np.asarray(obs[STATE], float), k)
            t = time.perf_counter()
            result = shield.filter(action, obs, now=backend.clock())
            shield_s += time.perf_counter() - t
            try:
                backend.apply(result.action)
            except ActionError:
                refused += 1  # counted by the backend as an unsafe action; nothing moved
            obs = backend.observe()
            row["actions"] += 1
            row["interventions"] += bool(result.violations)
            row["holds"] += result.held
            totals["state_events"] += result.state_event
        row["unsafe_states"] += backend.unsafe_states
        row["worst"] = {k: max(v, row["worst"].get(k, 0.0)) for k, v in backend.states.worst.items()}
        total.absorb(backend.states)
        if progress:
            progress(ep + 1, cfg.episodes)
    wall = time.perf_counter() - t0
    env.close()
    shield.close()
    for row in per.values():
        for key in ("actions", "interventions", "holds"):
            totals[key] += row[key]
    return {
        "benchmark": "shield",
        "episodes": cfg.episodes,
        "actions": totals["actions"],
        "actions_per_s": totals["actions"] / wall,
        "shield_ms_per_action": 1000 * shield_s / max(totals["actions"], 1),
        "interventions": totals["interventions"],
        "holds": totals["holds"],
        "shield_state_events": totals["state_events"],
        "unsafe_actions_reached_backend": backend.unsafe_actions,
        "unsafe_states_reached": total.unsafe_states,
        "worst_state_excursion": total.worst,
        "tolerances": {
            "position_mm": cfg.shield.state_tolerance * 1000,
            "tilt_rad": cfg.shield.tilt_tolerance,
            "joint_rad": cfg.shield.joint_tolerance,
        },
        "per_adversary": dict(per),
        "wall_s": wall,
        "config": json.loads(cfg.model_dump_json()),
    }
