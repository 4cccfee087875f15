"""``vla-agent bench detector``: precision and recall of the perception success detector against
the simulator's predicates, per control step and per subgoal."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_agent.agent.bench.chains import CHAIN_SEED_BASE
from vla_agent.agent.core.stats import p50_p99
from vla_agent.sim.predicates import evaluate
from vla_agent.skills.library import get_skill
from vla_agent.skills.tasks import bind_subgoal, episode_rng
from vla_agent.types import SceneObject


class DetectorBenchConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    episodes: int = Field(60, ge=1)
    seed: int = CHAIN_SEED_BASE + 500_000
    policy: str = Field("mixed", description="expert | vla | mixed (alternate: successes and failures)")
    randomize: bool = True
    robot: str = "panda"


def run_detector_bench(cfg: DetectorBenchConfig, progress: Callable[[int, int], None] | None = None) -> dict:
    """Precision/recall of the perception detector against the simulator's predicates: per control
    step ("are the subgoal's effects true now?") and per subgoal ("did it end done?")."""
    from vla_agent.agent.core.policies import make_policy
    from vla_agent.agent.perception.detectors import PerceptionDetector
    from vla_agent.agent.perception.objects import CameraModel, Perception
    from vla_agent.sim.env import EnvConfig, TabletopEnv
    from vla_agent.skills.experts import ExpertPolicy
    from vla_agent.skills.rollout import run_subgoal
    from vla_agent.skills.tasks import sample_task, skill_cycle
    from vla_agent.types import Status

    env = TabletopEnv(EnvConfig(randomize=cfg.randomize, segmentation=False, robot=cfg.robot))
    expert = ExpertPolicy(env)
    vla = make_policy("vla", env) if cfg.policy in ("vla", "mixed") else None
    step = np.zeros((2, 2), int)  # [ground truth, detector]
    verdict = np.zeros((2, 2), int)
    check_ms: list[float] = []
    abstained: list[dict] = []
    t0 = time.perf_counter()
    for i in range(cfg.episodes):
        seed = cfg.seed + i
        rng = episode_rng(seed, 0)
        task = sample_task(rng, skill_cycle(i), split="heldout")
        obs, _ = env.reset(seed=seed, options={"scene": task.scene})
        for sg in task.setup:
            _, obs = run_subgoal(env, expert, sg, obs)
        sg = bind_subgoal(env, task, rng, split="heldout")
        use_vla = cfg.policy == "vla" or (cfg.policy == "mixed" and i % 2 == 1)
        policy = vla if use_vla else expert
        objects = [SceneObject(n, o.kind, o.color) for n, o in zip(env.names, env.scene.objects)]
        f = env.camera_frame
        det = PerceptionDetector(Perception(objects, CameraModel(f.intrinsics, f.extrinsics)))
        kinds = env.kinds()
        effects = get_skill(sg.skill).ground("post", sg.args, kinds)
        det.reset(sg, obs)
        said_done = [False]

        def hook(o, a, settling, det=det, sg=sg, effects=effects, said_done=said_done):
            t = time.perf_counter()
            v = det.check(sg, o)
            check_ms.append((time.perf_counter() - t) * 1000)
            truth = all(evaluate(env.world_state(), p) for p in effects)
            step[int(truth), int(det.effects_hold)] += 1
            said_done[0] = said_done[0] or v.status is Status.DONE

        result, obs = run_subgoal(env, policy, sg, obs, on_step=hook)
        v = det.check(sg, obs)
        done = said_done[0] or v.status is Status.DONE
        last = det.conclude(sg, obs) if not done else v  # the executor's last look
        if last.status is Status.UNSURE:  # it cannot tell: no verdict, counted apart
            abstained.append({"success": bool(result.success), "reason": last.reason})
        else:
            verdict[int(result.success), int(done or last.status is Status.DONE)] += 1
        if progress:
            progress(i + 1, cfg.episodes)
    env.close()

    def pr(m: np.ndarray) -> dict[str, float]:
        tp, fp, fn = m[1, 1], m[0, 1], m[1, 0]
        return {
            "precision": float(tp / max(tp + fp, 1)),
            "recall": float(tp / max(tp + fn, 1)),
            "positives": int(m[1].sum()),
            "negatives": int(m[0].sum()),
        }

    ms = np.array(check_ms or [0.0])
    return {
        "benchmark": "detector",
        "episodes": cfg.episodes,
        "policy": cfg.policy,
        "per_subgoal": pr(verdict),  # over the subgoals it gave a verdict on
        "abstention_rate": len(abstained) / cfg.episodes,
        "abstained": abstained[:20],
        "per_step": pr(step),
        "check_ms": p50_p99(ms),
        "wall_s": time.perf_counter() - t0,
        "config": json.loads(cfg.model_dump_json()),
    }
