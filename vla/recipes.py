"""The recipe of the shipped checkpoint: what ``vla-agent vla reproduce`` collects and trains on."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

# The data of the shipped checkpoint, all from the scripted expert: per collector, the stage's
# folder, its tasks and how they are drawn. Stacking and regions are weighted up where the policy
# did worst; the last stage places from deliberately imperfect grasps, like the VLA's own.
FOCUS_PLACE_VARIANTS = ("block", "region", "block", "region", "bowl", "plate")

STACK_PLACE_VARIANTS = ("block", "block", "block", "region", "bowl", "plate")

RECIPE: tuple[tuple[str, int, dict], ...] = (
    ("demos", 500, dict(skills=("pick", "place"))),
    ("focus", 400, dict(skills=("place",), place_variants=FOCUS_PLACE_VARIANTS)),
    ("crowded", 667, dict(skills=("pick", "place"), crowded=True, place_variants=FOCUS_PLACE_VARIANTS)),
    ("push", 1100, dict(skills=("push",))),
    ("push-crowded", 1100, dict(skills=("push",), crowded=True)),
    (
        "places",
        700,
        dict(skills=("place",), crowded=True, sloppy_setup=True, place_variants=STACK_PLACE_VARIANTS),
    ),
)


class ReproduceConfig(BaseModel):
    """``vla-agent vla reproduce``: the shipped checkpoint from nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    out: Path = Path("runs/reproduce")
    workers: int = Field(2, ge=1, description="parallel collectors (disjoint seeds)")
    scale: float = Field(1.0, gt=0, description="multiply every stage's tasks (0.1 for a quick look)")
    steps: int = Field(16000, ge=1, description="training steps from scratch (batch 64)")
    finetune_steps: int = Field(2000, ge=0, description="then fine-tuning steps; 0: none")
    finetune_lr: float = Field(3e-4, gt=0)
    device: str = "cpu"
    precision: str = "auto"
    install: bool = Field(False, description="copy the result over the shipped default checkpoint")


# progress(stage, done, total) and log(line): how a front-end shows the work (both optional)
Progress = Callable[[str, int, int], None]


def reproduce(
    cfg: ReproduceConfig, progress: Progress | None = None, log: Callable[[str], None] = print
) -> dict:
    """The expert's demonstrations (``RECIPE``, ``cfg.workers`` collectors on disjoint seeds), one
    training run from scratch on all of them, a short fine-tune at a lower learning rate.
    Resumable: a finished dataset part is kept, and training resumes from its last checkpoint."""
    from vla_agent.vla.checkpoint import DEFAULT_CHECKPOINT
    from vla_agent.vla.collect import CollectConfig, collect
    from vla_agent.vla.train import TrainConfig, train

    t0 = time.perf_counter()
    root = Path(cfg.out)
    times: dict[str, float] = {}
    parts, seed = [], 0  # every part on fresh seeds, all below the benchmarks' 10^6
    for name, tasks, kw in RECIPE:
        n = max(1, round(tasks * cfg.scale))
        for k in range(cfg.workers):
            parts.append(CollectConfig(out=root / name / f"part-{k}", episodes=n, seed=seed, **kw))
            seed += n
    todo = []
    for part in parts:
        if (part.out / "meta" / "info.json").exists():
            continue  # collected by an earlier run
        shutil.rmtree(part.out, ignore_errors=True)  # an interrupted part starts over
        todo.append(part)
    t = time.perf_counter()
    stage = f"expert demonstrations ({cfg.workers} collectors)"
    with ProcessPoolExecutor(cfg.workers) as pool:
        for i, r in enumerate(pool.map(collect, todo)):
            if progress:
                progress(stage, i + 1, len(todo))
            log(
                f"  {r['dataset']}: {r['episodes_kept']} episodes kept, {r['episodes_dropped']} dropped, "
                f"{r['frames']} frames, {r['wall_s']:.0f} s"
            )
    times["collect"] = time.perf_counter() - t
    datasets = [part.out for part in parts if (part.out / "meta" / "info.json").exists()]

    def fit(name: str, steps: int, **kw) -> Path:
        t = time.perf_counter()
        tc = TrainConfig(
            dataset=datasets,
            out=root / name,
            steps=steps,
            device=cfg.device,
            precision=cfg.precision,
            save_every=max(1, steps // 4),
            **kw,
        )
        result = train(tc, progress=lambda s, n, info: progress(name, s, tc.steps) if progress else None)
        times[name] = time.perf_counter() - t
        return Path(result["checkpoint"])

    final = fit("train", cfg.steps)
    if cfg.finetune_steps:
        final = fit("finetune", cfg.finetune_steps, init=final, lr=cfg.finetune_lr)
    if cfg.install:
        DEFAULT_CHECKPOINT.mkdir(parents=True, exist_ok=True)
        for f in ("model.safetensors", "config.json", "stats.json"):
            shutil.copy2(final / f, DEFAULT_CHECKPOINT / f)
        log(f"installed as the default checkpoint: {DEFAULT_CHECKPOINT}")
    times["total"] = time.perf_counter() - t0
    (root / "reproduce.json").write_text(json.dumps({"checkpoint": str(final), "wall_s": times}, indent=2))
    return {"checkpoint": str(final), "wall_s": times}
