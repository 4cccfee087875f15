"""``vla collect|train|filter|reproduce``: demonstrations and training of the VLA."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vla_agent.cli.common import (
    csv_tuple,
    err,
    names,
    out,
    progress,
    scale_args,
    scale_options,
)


def cmd_vla_collect(a: argparse.Namespace) -> int:
    from vla_agent.skills.tasks import PLACE_VARIANTS
    from vla_agent.vla.collect import CollectConfig, collect

    cfg = CollectConfig(
        out=Path(a.out),
        episodes=a.episodes,
        seed=a.seed,
        image_size=a.image_size,
        noise_prob=a.noise_prob,
        policy=a.policy,
        takeover_max=a.takeover_max,
        policy_setup=a.policy_setup,
        sloppy_setup=a.sloppy_setup,
        skills=csv_tuple(a.skills),
        place_variants=csv_tuple(a.place_variants) or PLACE_VARIANTS,
        crowded=a.crowded,
        robot=a.robot,
    )
    with progress() as prog:
        what = "recovery demonstrations" if cfg.policy else "expert demonstrations"
        task = prog.add_task(what, total=cfg.episodes)
        result = collect(
            cfg, progress=lambda i, n: prog.update(task, completed=i), **scale_args(a, out=False)
        )
    if result["dataset"] is None:
        err.print(
            f"[red]error:[/red] no episodes kept: {result['episodes_dropped']} failed expert episodes, "
            f"{result['setup_failed']} setups the policy failed, "
            f"{result['scenes_unplaced']} scenes did not fit",
            highlight=False,
        )
        return 1
    print(
        json.dumps(result)
        if a.json
        else f"{result['episodes_kept']} episodes ({result['frames']} frames) -> {result['dataset']}; "
        f"{result['episodes_dropped']} failed expert episodes dropped"
    )
    return 0


def _train_config(a: argparse.Namespace, **fields):
    """The ``TrainConfig`` of the options ``train`` and ``finetune`` share, plus ``fields``."""
    from vla_agent.vla.train import TrainConfig

    datasets = [Path(x) for x in a.dataset.split(",")]
    return TrainConfig(
        dataset=datasets if len(datasets) > 1 else datasets[0],
        out=Path(a.out),
        steps=a.steps,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        device=a.device,
        precision=a.precision,
        save_every=a.save_every,
        **fields,
    )


def cmd_vla_train(a: argparse.Namespace) -> int:
    from vla_agent.vla.model import VLAConfig
    from vla_agent.vla.train import train

    init = Path(a.init) if a.init else None
    cfg = _train_config(a, init=init, model=VLAConfig(action_head=a.action_head))
    with progress() as prog:
        task = prog.add_task("training", total=cfg.steps)

        def update(step, total, info):
            prog.update(task, completed=step, description=f"training loss {info['loss']:.3f}")

        if a.nproc > 1:
            from vla_agent.vla.distributed import train_ddp

            result = train_ddp(cfg, a.nproc, progress=update)
        else:
            result = train(cfg, progress=update)
    print(json.dumps(result) if a.json else f"checkpoint: {result['checkpoint']} ({result['wall_s']:.0f} s)")
    return 0


def cmd_vla_finetune(a: argparse.Namespace) -> int:
    from vla_agent.skills.library import get_skill
    from vla_agent.vla.checkpoint import DEFAULT_CHECKPOINT
    from vla_agent.vla.train import train

    skills = csv_tuple(a.skills) or ()
    for name in skills:
        get_skill(name)  # unknown names: one-line error with suggestions
    cfg = _train_config(
        a,
        init=Path(a.checkpoint) if a.checkpoint else DEFAULT_CHECKPOINT,
        lora_rank=a.rank if a.lora else 0,
        lora_skills=skills,
        **({"lora_targets": csv_tuple(a.targets)} if a.targets else {}),
    )
    with progress() as prog:
        task = prog.add_task("fine-tuning", total=cfg.steps)
        result = train(
            cfg,
            progress=lambda s, n, info: prog.update(
                task, completed=s, description=f"loss {info['loss']:.3f}"
            ),
        )
    if a.json:
        print(json.dumps(result))
    else:
        what = result.get("adapter") or result["checkpoint"]
        out.print(
            f"{what}: {result['trainable_parameters']} of {result['parameters']} parameters trained "
            f"in {result['wall_s']:.0f} s"
        )
    return 0


def cmd_vla_filter(a: argparse.Namespace) -> int:
    from vla_agent.skills.library import get_skill, skill_of_instruction
    from vla_agent.vla.demos import filter_dataset

    skills = set(csv_tuple(a.skills) or ())
    for name in skills:
        get_skill(name)  # unknown names: one-line error with suggestions
    with progress() as prog:
        prog.add_task(f"filtering {a.dataset}", total=None)
        result = filter_dataset(a.dataset, Path(a.out), lambda task: skill_of_instruction(task) in skills)
    print(
        json.dumps(result)
        if a.json
        else f"{result['episodes_kept']} episodes ({result['frames']} frames) -> {result['dataset']}; "
        f"{result['episodes_dropped']} dropped"
    )
    return 0


def cmd_vla_reproduce(a: argparse.Namespace) -> int:
    from vla_agent.vla.recipes import ReproduceConfig, reproduce

    fields = (
        "out",
        "workers",
        "scale",
        "steps",
        "finetune_steps",
        "finetune_lr",
        "device",
        "precision",
        "install",
    )
    cfg = ReproduceConfig(**{k: getattr(a, k) for k in fields})
    with progress() as prog:
        tasks: dict[str, int] = {}

        def show(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = prog.add_task(stage, total=total)
            prog.update(tasks[stage], completed=done)

        result = reproduce(cfg, show, log=out.print)
    times = result["wall_s"]
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in times.items() if k != "total")
    out.print(f"reproduced in {times['total']:.0f} s ({stages}): {result['checkpoint']}")
    return 0


# ---------------------------------------------------------------------- parsers
def add_vla(sub) -> None:
    v = sub.add_parser("vla", help="demonstrations and training of the VLA skill policy")
    vsub = v.add_subparsers(dest="vla", metavar="ACTION", required=True)
    vc = vsub.add_parser("collect", help="record expert demonstrations (LeRobotDataset v3.0 layout)")
    vc.add_argument(
        "--out",
        default="data/demos",
        help="dataset folder (must not exist); finished tasks wait in OUT.parts/: the same command resumes",
    )
    scale_options(vc, out=False, what="collection tasks")
    vc.add_argument("--episodes", type=int, default=1200, help="tasks to run (place tasks add their pick)")
    vc.add_argument("--seed", type=int, default=0)
    vc.add_argument("--robot", default="panda", help=f"{names('robot')} (default panda)")
    vc.add_argument("--image-size", type=int, default=128)
    vc.add_argument("--noise-prob", type=float, default=0.5, help="fraction of episodes with action noise")
    vc.add_argument(
        "--policy",
        metavar="CHECKPOINT",
        help="recovery data: this VLA drives each subgoal first, the expert takes over and is recorded",
    )
    vc.add_argument("--takeover-max", type=int, default=40, help="with --policy: VLA steps before takeover")
    vc.add_argument(
        "--policy-setup",
        action="store_true",
        help="with --policy: the VLA runs the pick before a place to its end on its own and the expert "
        "places from the VLA's grasp; tasks whose pick the VLA fails are skipped",
    )
    vc.add_argument(
        "--sloppy-setup",
        action="store_true",
        help="the expert makes the pick before a place imperfect on purpose (block turned and off-centre "
        "in the fingers, like the VLA's picks; not recorded) and places from that grasp; no VLA needed",
    )
    vc.add_argument(
        "--skills", metavar="LIST", help="skills of the tasks, cycled, e.g. place,push (default: all)"
    )
    vc.add_argument(
        "--place-variants",
        metavar="LIST",
        help="place targets drawn from, repeat one to weight it, e.g. block,region,block,region,bowl,plate "
        "(default: bowl,plate,block,region)",
    )
    vc.add_argument(
        "--crowded",
        action="store_true",
        help="scenes like bench chains: 4-5 blocks and both a bowl and a plate (default: 1-3 distractors)",
    )
    vc.add_argument("--json", action="store_true")
    vc.set_defaults(func=cmd_vla_collect)
    vt = vsub.add_parser("train", help="train the VLA on a dataset (resumes from OUT/last)")
    vt.add_argument("--dataset", default="data/demos", help="dataset folder(s), comma-separated")
    vt.add_argument("--out", default="runs/train")
    vt.add_argument("--steps", type=int, default=10000)
    vt.add_argument("--batch-size", type=int, default=64)
    vt.add_argument("--lr", type=float, default=1e-3)
    vt.add_argument("--seed", type=int, default=0)
    vt.add_argument("--device", default="cpu", help="cpu | cuda")
    vt.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="bf16: forward pass under bfloat16 autocast; auto: bf16 where the CPU/GPU has it natively",
    )
    vt.add_argument("--save-every", type=int, default=1000, help="steps between checkpoints and validation")
    vt.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="data-parallel processes (torch DDP: gloo on CPU, NCCL a GPU each); global batch = --batch-size",
    )
    vt.add_argument("--action-head", default="continuous", choices=["continuous", "bins"])
    vt.add_argument("--init", metavar="CHECKPOINT", help="fine-tune from this checkpoint (keeps its stats)")
    vt.add_argument("--json", action="store_true")
    vt.set_defaults(func=cmd_vla_train)

    vft = vsub.add_parser(
        "finetune",
        help="adapt the VLA to new data: --lora writes a small adapter, else a full checkpoint",
        description="Fine-tune a trained checkpoint (default: the shipped one) on new demonstrations. With "
        "--lora only rank-R updates of its language and trunk layers are trained (~1%% of the weights) and "
        "saved as OUT/lora.safetensors, loaded with --checkpoint BASE --lora OUT; mix in some demonstrations "
        "of the old skills so they stay as good.",
    )
    vft.add_argument("--dataset", required=True, help="dataset folder(s), comma-separated")
    vft.add_argument("--checkpoint", default=None, help="the base (default: the shipped checkpoint)")
    vft.add_argument("--lora", action="store_true", help="train a low-rank adapter, not every weight")
    vft.add_argument("--rank", type=int, default=2, help="LoRA rank (2: 1.2%% of the weights)")
    vft.add_argument(
        "--targets",
        default=None,
        metavar="LIST",
        help="linear layers to adapt, fnmatch patterns (default: vla.lora.DEFAULT_TARGETS; '*': all)",
    )
    vft.add_argument(
        "--skills", default=None, metavar="LIST", help="skills the adapter adds, e.g. place_beside"
    )
    vft.add_argument("--out", default="runs/finetune")
    vft.add_argument("--steps", type=int, default=1500)
    vft.add_argument("--batch-size", type=int, default=64)
    vft.add_argument("--lr", type=float, default=3e-3, help="(LoRA likes a higher rate than full training)")
    vft.add_argument("--seed", type=int, default=0)
    vft.add_argument("--device", default="cpu", help="cpu | cuda")
    vft.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    vft.add_argument("--save-every", type=int, default=500)
    vft.add_argument("--json", action="store_true")
    vft.set_defaults(func=cmd_vla_finetune)

    vf = vsub.add_parser(
        "filter",
        help="copy a dataset keeping only the episodes of some skills",
        description="Copy a dataset keeping only the episodes whose instruction belongs to one of --skills "
        "(re-indexed, stats recomputed), e.g. to retire demonstrations of a skill whose expert changed.",
    )
    vf.add_argument("--dataset", required=True, help="source dataset folder")
    vf.add_argument("--skills", required=True, metavar="LIST", help="skills to keep, e.g. pick,place")
    vf.add_argument("--out", required=True, help="new dataset folder (must not exist)")
    vf.add_argument("--json", action="store_true")
    vf.set_defaults(func=cmd_vla_filter)

    vr = vsub.add_parser(
        "reproduce",
        help="the shipped checkpoint from nothing: collect the expert data, train, fine-tune",
        description="Collect the shipped checkpoint's data with the scripted expert (picks, places, "
        "pushes, plain and crowded scenes, places from deliberately sloppy grasps; ~268 k frames with the "
        "defaults), train one model from scratch on all of it, fine-tune it briefly at a lower rate. "
        "Re-running with the same --out resumes. Needs ~20 GB of RAM at full scale.",
    )
    vr.add_argument("--out", default="runs/reproduce")
    vr.add_argument("--workers", type=int, default=2, help="parallel collectors (disjoint seeds)")
    vr.add_argument(
        "--scale", type=float, default=1.0, help="multiply every stage's tasks (e.g. 0.1 for a quick look)"
    )
    vr.add_argument("--steps", type=int, default=16000, help="training steps from scratch (batch 64)")
    vr.add_argument("--finetune-steps", type=int, default=2000, help="then fine-tuning steps; 0: none")
    vr.add_argument("--finetune-lr", type=float, default=3e-4)
    vr.add_argument("--device", default="cpu", help="cpu | cuda")
    vr.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    vr.add_argument(
        "--install", action="store_true", help="copy the result over the shipped default checkpoint"
    )
    vr.set_defaults(func=cmd_vla_reproduce)
