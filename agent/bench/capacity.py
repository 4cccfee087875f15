"""``vla-agent bench capacity``: how many blocks our bowls and plates really hold.

The scripted expert puts blocks into one container, one after another, in seeded randomized
scenes; after each placement ground truth checks that every block put there so far still counts
as in/on it. A container holds ``k`` blocks when that is true after the k-th placement in at
least ``threshold`` of the episodes. Plan validation reads the measured figures from
``skills/capacity.json`` (``--write`` updates it), so "every block in the bowl" is refused only
when the bowls here really cannot take them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from vla_agent.sim.catalog import COLORS, ObjectSpec, SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.skills.experts import ExpertPolicy
from vla_agent.skills.library import get_skill
from vla_agent.skills.rollout import run_subgoal
from vla_agent.skills.symbolic import CAPACITY_FILE
from vla_agent.types import Predicate


class CapacityBenchConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    episodes: int = Field(10, ge=1, description="episodes per container kind")
    seed: int = Field(4_000_000, ge=0)
    most: int = Field(4, ge=1, le=6, description="blocks tried per container")
    threshold: float = Field(0.9, gt=0, le=1, description="share of episodes in which k blocks must hold")
    robot: str = "panda"


def run_capacity_bench(cfg: CapacityBenchConfig, progress: Callable[[int, int], None] | None = None) -> dict:
    env = TabletopEnv(EnvConfig(randomize=True, robot=cfg.robot))
    expert = ExpertPolicy(env)
    held: dict[str, list[int]] = {"bowl": [], "plate": []}
    total, done, t0 = 2 * cfg.episodes, 0, time.perf_counter()
    colors = list(COLORS)[: cfg.most + 1]
    for kind in held:
        for i in range(cfg.episodes):
            seed = cfg.seed + i
            objs = [ObjectSpec(kind="block", color=c) for c in colors[: cfg.most]]
            scene = SceneSpec(objects=(*objs, ObjectSpec(kind=kind, color=colors[cfg.most])))
            obs, _ = env.reset(seed=seed, options={"scene": scene})
            names, kinds = env.names, env.kinds()
            container, rel = names[-1], "in" if kind == "bowl" else "on"
            count = 0
            for j, block in enumerate(names[: cfg.most]):
                for skill, args in (("pick", {"obj": block}), ("place", {"obj": block, "target": container})):
                    _, obs = run_subgoal(env, expert, get_skill(skill).subgoal(args, kinds=kinds), obs)
                if not env.goal_reached([Predicate(rel, (b, container)) for b in names[: j + 1]]):
                    break
                count = j + 1
            held[kind].append(count)
            done += 1
            if progress:
                progress(done, total)
    env.close()
    capacity = {
        kind: max(
            [k for k in range(1, cfg.most + 1) if sum(c >= k for c in counts) >= cfg.threshold * len(counts)],
            default=0,
        )
        for kind, counts in held.items()
    }
    return {
        "benchmark": "capacity",
        "capacity": capacity,
        "held_per_episode": held,
        "share_holding_k": {
            kind: {k: sum(c >= k for c in counts) / len(counts) for k in range(1, cfg.most + 1)}
            for kind, counts in held.items()
        },
        "wall_s": time.perf_counter() - t0,
        "config": cfg.model_dump(),
    }


def write_capacity(result: dict, path: Path = CAPACITY_FILE) -> None:
    """Store the measured capacities where plan validation reads them."""
    data = {
        **result["capacity"],
        "block": 1,
        "measured_by": "vla-agent bench capacity --write",
        "config": result["config"],
        "share_holding_k": result["share_holding_k"],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
