"""``vla-agent vla collect``: record scripted-expert rollouts of every skill as demonstrations.

Each subgoal is one episode, labelled with a training paraphrase of its instruction. Scenes are
randomized (object poses, distractors, domain randomization). To teach recovery, the executed
action gets Gaussian noise on some episodes while the *expert's* action is recorded as the label
(DART-style noise injection). Episodes where the expert fails are dropped and counted.

With ``policy`` (a VLA checkpoint), each subgoal starts under the VLA, and after a random number of
steps the expert takes over from wherever the VLA got to (a grasp at the wrong angle, a push begun
beside the block) and finishes it; only the expert's part is recorded. That is recovery data from
the states the policy itself visits (DAgger-style aggregation), which plain demonstrations lack.

With ``policy_setup`` the VLA instead runs the setup pick to its end on its own, as it does inside a
chain, and the expert places the block from the VLA's own grasp (an off-centre or tilted block,
the height the VLA stopped at): demonstrations of placing from the states a chain really starts
from. A task whose setup the VLA fails is skipped and counted (``setup_failed``).

``sloppy_setup`` gets such states without a VLA: the setup pick is the expert's, made imperfect on
purpose (``GraspSlop``: a block turned and off-centre in the fingers, grasped higher or lower, as
the VLA's picks measure), not recorded; the place from it is.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vla_agent.errors import ConfigError
from vla_agent.scale import run_batch
from vla_agent.sim.camera import intrinsics, project
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.skills.experts import ExpertPolicy, GraspSlop
from vla_agent.skills.library import get_skill, skill_names
from vla_agent.skills.rollout import run_subgoal
from vla_agent.skills.tasks import PLACE_VARIANTS, bind_subgoal, episode_rng, sample_task, skill_cycle
from vla_agent.types import IMAGE, STATE, WRIST_IMAGE
from vla_agent.vla.dataset import AUX_KEYS, LeRobotWriter

TRAIN_SEED_OFFSET = 0  # training episodes use seeds [0, 10^6); evaluation uses seeds >= 10^6


class CollectConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    out: Path = Path("data/demos")
    episodes: int = Field(600, ge=1, description="tasks to run; place tasks also record their pick")
    seed: int = 0
    image_size: int = 128
    wrist_size: int = 64
    noise_prob: float = Field(0.5, ge=0, le=1, description="fraction of episodes with action noise")
    noise_std: float = Field(0.008, ge=0, description="metres per step on the executed translation")
    settle_steps: int = 3
    policy: str | None = Field(None, description="VLA checkpoint that drives before the expert takes over")
    takeover_max: int = Field(40, ge=0, description="the expert takes over after 0..takeover_max VLA steps")
    policy_setup: bool = Field(
        False,
        description="with policy: the VLA runs each setup subgoal (the pick before a place) to its end on "
        "its own; a task whose setup it fails is skipped",
    )
    sloppy_setup: bool = Field(
        False,
        description="the expert runs each setup subgoal with a deliberately imperfect grasp (not recorded)",
    )
    skills: tuple[str, ...] | None = Field(None, description="skills of the tasks, cycled (default: all)")
    place_variants: tuple[str, ...] = Field(PLACE_VARIANTS, description="drawn uniformly; repeat to weight")
    crowded: bool = Field(False, description="scenes like bench chains: 4-5 blocks, a bowl and a plate")
    robot: str = Field("panda", description="the simulated robot (a registered RobotSpec)")

    @field_validator("skills", "place_variants")
    @classmethod
    def _known(cls, v, info):
        valid = skill_names() if info.field_name == "skills" else PLACE_VARIANTS
        for name in v or ():
            if name not in valid:
                what = info.field_name[:-1].replace("_", " ")
                raise ValueError(f"unknown {what} {name!r}; valid: {sorted(valid)}")
        return v


def _backfill(goal: np.ndarray) -> np.ndarray:
    """The expert fixes its goal on its first step; earlier NaNs take the first known value."""
    known = np.flatnonzero(~np.isnan(goal[:, 0]))
    if len(known):
        goal[: known[0]] = goal[known[0]]
    return goal


def pixel_labels(points: np.ndarray, K: np.ndarray, T_cam: np.ndarray, size: int) -> np.ndarray:
    """(u, v, depth) of base-frame points in a camera; NaN for points behind it or out of view."""
    out = np.full((len(points), 3), np.nan, np.float32)
    known = ~np.isnan(points[:, 0])
    if not known.any():
        return out
    cam = np.c_[points[known], np.ones(known.sum())] @ np.linalg.inv(T_cam).T
    uv = project(points[known], K, T_cam)
    ok = (cam[:, 2] > 0.01) & (uv >= -0.5).all(1) & (uv <= size - 0.5).all(1)
    rows = np.flatnonzero(known)[ok]
    out[rows, :2], out[rows, 2] = uv[ok], cam[ok, 2]
    return out


def _noise(rng: np.random.Generator, std: float):
    def perturb(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        out[:3] = np.clip(out[:3] + rng.normal(0, std, 3), -0.04, 0.04)
        return out

    return perturb


def _aux_labels(frames: dict[str, list], cfg: CollectConfig, K_wrist: np.ndarray) -> dict[str, np.ndarray]:
    """Training-only labels: object/goal positions and their pixels in both cameras (tool too)."""
    obj, goal = np.stack(frames["obj"]), _backfill(np.stack(frames["goal"]))
    tool = np.stack(frames["state"])[:, :3]
    per_frame = []
    for t, (K, T, T_wrist) in enumerate(frames["cams"]):
        pts = np.stack([obj[t], goal[t], tool[t]])
        static = pixel_labels(pts, K, T, cfg.image_size)
        wrist = pixel_labels(pts[:2], K_wrist, T_wrist, cfg.wrist_size)
        per_frame.append(np.concatenate([static, wrist]))
    px = np.stack(per_frame)  # (n, 5, 3)
    return dict(zip(AUX_KEYS, [obj, goal, px[:, 0], px[:, 1], px[:, 2], px[:, 3], px[:, 4]]))


def _drive(env: TabletopEnv, policy, sg, obs, steps: int):
    """Let ``policy`` run ``sg`` for up to ``steps`` steps; -> (obs, whether it said done)."""
    env.set_prompt(sg.instruction)
    obs = {**obs, "prompt": sg.instruction}
    policy.reset(sg)
    done = 0
    while done < steps and not policy.done:
        for action in np.atleast_2d(policy.act(obs))[: steps - done]:
            obs, *_ = env.step(action)
            done += 1
    return obs, bool(policy.done)


class CollectRunner:
    """Runs collection tasks in its own simulator (an ``EpisodeWorker`` of ``vla_agent.scale``):
    task ``i`` gives its recorded episodes as arrays, the same whichever worker runs it."""

    def __init__(self, cfg: CollectConfig):
        if cfg.policy_setup and cfg.policy is None:
            raise ConfigError("policy_setup needs a policy (the VLA checkpoint that runs the setup)")
        if cfg.policy_setup and cfg.sloppy_setup:
            raise ConfigError(
                "choose one of policy_setup (the VLA picks) and sloppy_setup (a sloppy expert picks)"
            )
        self.cfg = cfg
        self.env = TabletopEnv(
            EnvConfig(
                randomize=True,
                image_size=cfg.image_size,
                wrist_size=cfg.wrist_size,
                segmentation=False,
                robot=cfg.robot,
            )
        )
        self.K_wrist = intrinsics(cfg.wrist_size, cfg.wrist_size, self.env.camera.fov_deg)
        self.expert = ExpertPolicy(self.env)
        self.driver = None
        if cfg.policy is not None:
            from vla_agent.vla.policy import VLAPolicy

            self.driver = VLAPolicy(cfg.policy)

    def close(self) -> None:
        self.env.close()

    def episode(self, i: int) -> dict:
        cfg, env, expert, driver = self.cfg, self.env, self.expert, self.driver
        counts = {"kept": 0, "dropped": 0, "unplaced": 0, "setup_failed": 0}
        recorded: list[dict] = []
        seed = TRAIN_SEED_OFFSET + cfg.seed + i
        rng = episode_rng(seed, 0)
        noise_rng = episode_rng(seed, 1)
        task = sample_task(
            rng,
            skill_cycle(i, cfg.skills),
            split="train",
            place_variants=cfg.place_variants,
            crowded=cfg.crowded,
        )
        try:
            obs, _ = env.reset(seed=seed, options={"scene": task.scene})
        except ConfigError:  # a crowded draw that does not fit on the table
            counts["unplaced"] += 1
            return {**counts, "recorded": recorded}
        perturb = _noise(noise_rng, cfg.noise_std) if noise_rng.random() < cfg.noise_prob else None
        setup_policy = driver if cfg.policy_setup else None
        if cfg.sloppy_setup:
            setup_policy = ExpertPolicy(env, GraspSlop(), episode_rng(seed, 2))

        subgoals = list(task.setup) + [task.subgoal]
        for k, sg in enumerate(subgoals):
            if sg is None:
                sg = bind_subgoal(env, task, rng, split="train")
            if setup_policy is not None and k < len(subgoals) - 1:  # not recorded
                result, obs = run_subgoal(env, setup_policy, sg, obs, settle_steps=0)
                if not result.success:
                    counts["setup_failed"] += 1
                    break
                continue
            frames: dict[str, list] = {
                k: [] for k in ("img", "wrist", "state", "action", "done", "obj", "goal", "cams")
            }

            def on_step(o, a, settling, frames=frames, name=sg.args["obj"]):
                frames["img"].append(o[IMAGE])
                frames["wrist"].append(o[WRIST_IMAGE])
                frames["state"].append(o[STATE])
                frames["action"].append(np.asarray(a, np.float32))
                frames["done"].append(float(settling))
                frames["obj"].append(env.world_state().get(name).position)
                frames["goal"].append(expert.goal if expert.goal is not None else np.full(3, np.nan))
                frames["cams"].append(
                    (env.camera_frame.intrinsics, env.camera_frame.extrinsics, env.wrist_pose())
                )

            if driver is not None:
                obs, finished = _drive(env, driver, sg, obs, int(noise_rng.integers(0, cfg.takeover_max + 1)))
                if finished:  # the VLA said done before the takeover: nothing to record
                    if not env.goal_reached(get_skill(sg.skill).ground("post", sg.args, env.kinds())):
                        break
                    continue
            result, obs = run_subgoal(
                env, expert, sg, obs, on_step=on_step, perturb=perturb, settle_steps=cfg.settle_steps
            )
            if result.success and result.policy_done:
                recorded.append(
                    {
                        "images": np.stack(frames["img"]),
                        "states": np.stack(frames["state"]),
                        "actions": np.stack(frames["action"]),
                        "done": np.array(frames["done"]),
                        "task": sg.instruction,
                        "aux": _aux_labels(frames, cfg, self.K_wrist),
                        "wrist": np.stack(frames["wrist"]),
                    }
                )
                counts["kept"] += 1
            else:
                counts["dropped"] += 1
                if k < len(subgoals) - 1:
                    break  # the rest of this task depends on the failed setup
        return {**counts, "recorded": recorded}


def _save_part(parts: Path, i: int, record: dict) -> dict:
    """The task's recorded arrays to ``parts/task-<i>.npz``; the record keeps the counts and the file."""
    arrays: dict[str, np.ndarray] = {}
    tasks = []
    for j, ep in enumerate(record.pop("recorded")):
        tasks.append(ep["task"])
        for key in ("images", "states", "actions", "done", "wrist"):
            arrays[f"{j}/{key}"] = ep[key]
        for key, value in ep["aux"].items():
            arrays[f"{j}/aux/{key}"] = value
    path = parts / f"task-{i:07d}.npz"
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # a part is there whole or not at all
    return {**record, "part": path.name, "tasks": tasks}


def _load_part(path: Path, tasks: list[str]) -> list[dict]:
    with np.load(path) as z:
        out = []
        for j, task in enumerate(tasks):
            aux = {k.split("/", 2)[2]: z[k] for k in z.files if k.startswith(f"{j}/aux/")}
            out.append({key: z[f"{j}/{key}"] for key in ("images", "states", "actions", "done", "wrist")})
            out[-1].update(task=task, aux=aux)
        return out


def collect(
    cfg: CollectConfig,
    progress: Callable[[int, int], None] | None = None,
    *,
    workers: int = 1,
    ray_address: str | None = None,
) -> dict:
    """Run the expert on ``cfg.episodes`` seeded tasks and write the dataset; return counts.

    Each finished task's recordings go to ``<out>.parts/`` at once (a killed collection resumes
    from there with the same command); the dataset is written from the parts in task order, so
    it is the same for any number of workers, and the parts are removed once it is."""
    t0 = time.perf_counter()
    parts = cfg.out.with_name(cfg.out.name + ".parts")
    records, run = run_batch(
        partial(CollectRunner, cfg),
        range(cfg.episodes),
        json.loads(cfg.model_dump_json()),
        workers=workers,
        ray_address=ray_address,
        out=parts,
        progress=progress,
        store=lambda i, record: _save_part(parts, i, record),
    )
    fps = EnvConfig().control_hz
    writer = LeRobotWriter(
        cfg.out, fps=fps, image_shape=(cfg.image_size, cfg.image_size, 3), robot_type=cfg.robot
    )
    for r in records:
        for ep in _load_part(parts / r["part"], r["tasks"]):
            writer.add_episode(
                ep["images"],
                ep["states"],
                ep["actions"],
                ep["done"],
                ep["task"],
                ep["aux"],
                wrist=ep["wrist"],
            )
    # Nothing kept (say, a weak policy failed every setup): no dataset, the counts still say why.
    root = writer.close() if writer.episodes else None
    shutil.rmtree(parts)
    return {
        "dataset": None if root is None else str(root),
        "episodes_kept": sum(r["kept"] for r in records),
        "episodes_dropped": sum(r["dropped"] for r in records),
        "scenes_unplaced": sum(r["unplaced"] for r in records),
        "setup_failed": sum(r["setup_failed"] for r in records),
        "frames": len(writer.rows["index"]),
        "tasks": len(writer.tasks),
        "resumed_tasks": run["resumed_episodes"],
        "workers": run["workers"],
        "wall_s": time.perf_counter() - t0,
    }
