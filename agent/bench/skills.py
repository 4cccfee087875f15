"""Benchmarks that print JSON figures. Judges are always the simulator's ground-truth predicates."""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_agent.agent.bench.server import served_vla
from vla_agent.agent.core.experience import Experience, default_path
from vla_agent.agent.core.policies import make_policy
from vla_agent.agent.core.stats import p50_p99
from vla_agent.scale import run_batch, save_result
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.skills.experts import ExpertPolicy
from vla_agent.skills.rollout import run_subgoal
from vla_agent.skills.tasks import bind_subgoal, episode_rng, sample_task, skill_cycle
from vla_agent.types import STATE
from vla_agent.vla import TRAINED_SKILLS

Progress = Callable[[int, int], None]


def jerk(path: list[np.ndarray], hz: float) -> float | None:
    """Mean magnitude of the third difference of the tool path (m/s^3): how jerky the motion is."""
    if len(path) < 4:
        return None
    d3 = np.diff(np.asarray(path, np.float64), n=3, axis=0) * hz**3
    return float(np.linalg.norm(d3, axis=1).mean())


class ExpertBenchConfig(BaseModel):
    """``vla-agent bench expert``: the scripted experts on seeded single-skill tasks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    episodes: int = Field(60, ge=1)
    seed: int = 0
    randomize: bool = True
    image_size: int = 128
    setup_retries: int = Field(3, ge=1)
    robot: str = "panda"


FULL_SCENE = (
    "red block, orange block, yellow block, green block, cyan block, blue block, purple block, "
    "pink block, white bowl, brown plate"
)


def measure_render_fps(image_size: int = 128, frames: int = 200, seed: int = 0) -> float:
    """Static-camera frames/s (RGB + depth + segmentation) with a full scene: the Panda, 8 blocks,
    a bowl and a plate, domain randomization on."""
    env = TabletopEnv(EnvConfig(randomize=True, image_size=image_size))
    env.reset(seed=seed, options={"scene": FULL_SCENE})
    env.render_time_s, env.frames_rendered = 0.0, 0
    for _ in range(frames):
        env._observe()
    fps = env.frames_rendered / env.render_time_s
    env.close()
    return fps


class ExpertRunner:
    """Expert episodes in its own simulator (an ``EpisodeWorker`` of ``vla_agent.scale``)."""

    def __init__(self, cfg: ExpertBenchConfig):
        self.cfg = cfg
        self.env = TabletopEnv(EnvConfig(randomize=cfg.randomize, image_size=cfg.image_size, robot=cfg.robot))
        self.expert = ExpertPolicy(self.env)
        self.experience = Experience(default_path(), robot=cfg.robot, policy="expert")

    def close(self) -> None:
        self.env.close()

    def episode(self, i: int) -> dict:
        env, cfg = self.env, self.cfg
        seed = cfg.seed + i
        skill = skill_cycle(i)
        t0 = time.perf_counter()
        frames0, render0 = env.frames_rendered, env.render_time_s
        ok, steps, setup_ok, setup_failures = False, 0, False, 0
        for attempt in range(cfg.setup_retries):
            rng = episode_rng(seed, attempt)
            task = sample_task(rng, skill)
            obs, _ = env.reset(seed=seed * 100 + attempt, options={"scene": task.scene})
            setup_ok = True
            for sg in task.setup:
                r, obs = run_subgoal(env, self.expert, sg, obs)
                steps += r.steps
                setup_ok = setup_ok and r.success
            if setup_ok:
                break
            setup_failures += 1
        instruction = ""
        if setup_ok:
            subgoal = bind_subgoal(env, task, rng)
            result, obs = run_subgoal(env, self.expert, subgoal, obs)
            ok, steps, instruction = result.success, steps + result.steps, subgoal.instruction
            self.experience.record(subgoal, env.kinds(), ok, result.steps)
        return {
            "seed": seed,
            "skill": skill,
            "variant": task.variant,
            "success": bool(ok),
            "instruction": instruction,
            "steps": steps,
            "setup_failures": setup_failures,
            "frames": env.frames_rendered - frames0,
            "render_s": env.render_time_s - render0,
            "wall_s": time.perf_counter() - t0,
        }


def run_expert_bench(
    cfg: ExpertBenchConfig,
    progress: Progress | None = None,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    out: Path | None = None,
) -> dict:
    """Run the expert on ``cfg.episodes`` tasks cycling over all skills; return the JSON figures."""
    t_start = time.perf_counter()
    records, run = run_batch(
        partial(ExpertRunner, cfg),
        range(cfg.episodes),
        json.loads(cfg.model_dump_json()),
        workers=workers,
        ray_address=ray_address,
        out=out,
        progress=progress,
    )
    by_skill: dict[str, list[bool]] = defaultdict(list)
    by_variant: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        by_skill[r["skill"]].append(r["success"])
        by_variant[r["variant"]].append(r["success"])
    walls = [r["wall_s"] for r in records]
    outcomes = [r["success"] for r in records]
    result = {
        "benchmark": "expert",
        "episodes": cfg.episodes,
        "success_rate": sum(outcomes) / len(outcomes),
        "per_skill": {k: sum(v) / len(v) for k, v in sorted(by_skill.items())},
        "per_variant": {k: sum(v) / len(v) for k, v in sorted(by_variant.items())},
        "render_fps": measure_render_fps(cfg.image_size),
        "render_fps_in_episodes": sum(r["frames"] for r in records)
        / max(sum(r["render_s"] for r in records), 1e-9),
        "steps_per_s": sum(r["steps"] for r in records) / max(sum(walls), 1e-9),
        "wall_s_per_episode": {
            "mean": statistics.fmean(walls),
            "p50": statistics.median(walls),
            "max": max(walls),
        },
        "setup_failures": sum(r["setup_failures"] for r in records),
        "failures": [
            {"seed": r["seed"], "instruction": r["instruction"]} for r in records if not r["success"]
        ][:20],
        "total_wall_s": time.perf_counter() - t_start,
        **run,
        "config": cfg.model_dump(),
    }
    save_result(out, result)
    return result


EVAL_SEED_BASE = 1_000_000  # disjoint from the collection seeds [0, 10^6)


class SkillBenchConfig(BaseModel):
    """``vla-agent bench skills``: closed-loop rollouts of a skill policy on unseen seeds and
    held-out instruction paraphrases."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: str = "vla"
    checkpoint: Path | None = None
    device: str = "cpu"
    episodes_per_skill: int = Field(50, ge=1)
    seed: int = EVAL_SEED_BASE
    execute: int = Field(2, ge=1, description="actions executed per predicted chunk")
    randomize: bool = True
    robot: str = "panda"
    skills: tuple[str, ...] = Field(TRAINED_SKILLS, description="the skills to measure (default: the VLA's)")
    adapter: str | None = Field(None, description="a policy server's convention (vla.adapters)")
    chunks: Literal["sync", "async", "hybrid"] = "sync"
    realtime: bool = Field(False, description="a policy server's latency costs control ticks")
    server_latency_ms: float | None = Field(
        None, ge=0, description="serve the VLA locally, replies this late, and measure through it"
    )
    quantize: Literal["none", "int8", "fp16"] = Field("none", description="the in-process VLA's precision")
    lora: Path | None = Field(
        None, description="a LoRA adapter on top of the checkpoint (vla finetune --lora)"
    )


class SkillRunner:
    """Skill episodes of one policy in its own simulator (an ``EpisodeWorker``); episode ``i`` is
    the ``i % n``-th of skill ``i // n`` (skills sorted, ``n`` episodes per skill)."""

    def __init__(self, cfg: SkillBenchConfig):
        self.cfg = cfg
        self.env = TabletopEnv(EnvConfig(randomize=cfg.randomize, segmentation=False, robot=cfg.robot))
        kwargs: dict = {}
        if cfg.policy == "vla":
            kwargs = {"checkpoint": cfg.checkpoint, "device": cfg.device, "execute": cfg.execute}
            kwargs.update(quantize=cfg.quantize, lora=cfg.lora)
        elif cfg.policy != "expert":  # a policy server; the API key: VLA_AGENT_API_KEY or its files
            kwargs = {"execute": cfg.execute, "adapter": cfg.adapter, "chunks": cfg.chunks}
            kwargs["realtime"] = cfg.realtime or cfg.server_latency_ms is not None
        self.policy = make_policy(cfg.policy, self.env, **kwargs)
        self.expert = ExpertPolicy(self.env)
        self.experience = Experience(default_path(), robot=cfg.robot, policy=cfg.policy)

    def close(self) -> None:
        self.env.close()

    def episode(self, i: int) -> dict:
        from vla_agent.vla.chunking import ChunkedPolicy

        env, cfg = self.env, self.cfg
        k, j = divmod(i, cfg.episodes_per_skill)
        skill = sorted(cfg.skills)[k]
        seed = cfg.seed + 10_000 * k + j
        rng = episode_rng(seed, 0)
        task = sample_task(rng, skill, split="heldout")
        obs, _ = env.reset(seed=seed, options={"scene": task.scene})
        timed = isinstance(self.policy, ChunkedPolicy)  # the expert: no inference to time
        lat0 = len(self.policy.latencies_ms) if timed else 0
        idle0 = getattr(self.policy, "idle_ticks", 0)
        path: list[np.ndarray] = []
        setup_ok = True
        for sg in task.setup:
            r, obs = run_subgoal(env, self.expert, sg, obs)
            setup_ok = setup_ok and r.success
        ok, steps, instruction = False, None, ""
        if setup_ok:
            sg = bind_subgoal(env, task, rng, split="heldout")

            def on_step(o, a, settling: bool) -> None:
                if not settling:
                    path.append(o[STATE][:3])

            result, obs = run_subgoal(env, self.policy, sg, obs, on_step=on_step)
            ok, steps, instruction = result.success, result.steps, sg.instruction
            self.experience.record(sg, env.kinds(), ok, result.steps)  # predicted success learns from it
        return {
            "seed": seed,
            "skill": skill,
            "variant": task.variant,
            "success": bool(ok),
            "steps": steps,
            "instruction": instruction,
            "latency_ms": list(self.policy.latencies_ms[lat0:]) if timed else [],
            "idle_ticks": getattr(self.policy, "idle_ticks", 0) - idle0,
            "jerk": jerk(path, env.config.control_hz),
        }


def run_skill_bench(
    cfg: SkillBenchConfig,
    progress: Progress | None = None,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    out: Path | None = None,
) -> dict:
    """Per-skill success of ``cfg.policy`` judged by ground truth; setups (e.g. the pick before a
    place) are done by the scripted expert so each skill is measured on its own."""
    t0 = time.perf_counter()
    with served_vla(cfg) as served:
        records, run = run_batch(
            partial(SkillRunner, served),
            range(cfg.episodes_per_skill * len(cfg.skills)),
            json.loads(cfg.model_dump_json()),
            workers=workers,
            ray_address=ray_address,
            out=out,
            progress=progress,
        )
    by_skill: dict[str, list[bool]] = defaultdict(list)
    by_variant: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        by_skill[r["skill"]].append(r["success"])
        by_variant[r["variant"]].append(r["success"])
    steps = [r["steps"] for r in records if r["steps"] is not None]
    measured = [x for r in records for x in r["latency_ms"]]
    lat = np.array(measured or [0.0])
    rates = {k: sum(v) / len(v) for k, v in sorted(by_skill.items())}
    result = {
        "benchmark": "skills",
        "policy": cfg.policy,
        "episodes_per_skill": cfg.episodes_per_skill,
        "success_rate": float(np.mean(list(rates.values()))),
        "per_skill": rates,
        "per_variant": {k: sum(v) / len(v) for k, v in sorted(by_variant.items())},
        "steps_per_episode": float(np.mean(steps)) if steps else 0.0,
        "latency_ms": {**p50_p99(lat), "n": len(measured)},
        "idle_ticks_per_episode": float(np.mean([r.get("idle_ticks", 0) for r in records])),
        "idle_fraction": sum(r.get("idle_ticks", 0) for r in records) / max(sum(steps), 1),
        "jerk_m_s3": float(np.mean([r["jerk"] for r in records if r.get("jerk") is not None] or [0.0])),
        "failures": [
            {"seed": r["seed"], "instruction": r["instruction"]}
            for r in records
            if r["instruction"] and not r["success"]
        ][:20],
        "wall_s": time.perf_counter() - t0,
        **run,
        "config": json.loads(cfg.model_dump_json()),
    }
    save_result(out, result)
    return result
