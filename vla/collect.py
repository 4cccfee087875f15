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

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vla_agent.errors import ConfigError
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


def collect(cfg: CollectConfig, progress: Callable[[int, int], None] | None = None) -> dict:
    """Run the expert on ``cfg.episodes`` seeded tasks and write the dataset; return counts."""
    env = TabletopEnv(
        EnvConfig(
            randomize=True,
            image_size=cfg.image_size,
            wrist_size=cfg.wrist_size,
            segmentation=False,
            robot=cfg.robot,
        )
    )
    K_wrist = intrinsics(cfg.wrist_size, cfg.wrist_size, env.camera.fov_deg)
    writer = LeRobotWriter(
        cfg.out,
        fps=env.config.control_hz,
        image_shape=(cfg.image_size, cfg.image_size, 3),
        robot_type=cfg.robot,
    )
    expert = ExpertPolicy(env)
    driver = None
    if cfg.policy is not None:
        from vla_agent.vla.policy import VLAPolicy

        driver = VLAPolicy(cfg.policy)
    if cfg.policy_setup and driver is None:
        raise ConfigError("policy_setup needs a policy (the VLA checkpoint that runs the setup)")
    if cfg.policy_setup and cfg.sloppy_setup:
        raise ConfigError(
            "choose one of policy_setup (the VLA picks) and sloppy_setup (a sloppy expert picks)"
        )
    kept, dropped, unplaced, setup_failed, t0 = 0, 0, 0, 0, time.perf_counter()
    for i in range(cfg.episodes):
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
            unplaced += 1
            if progress:
                progress(i + 1, cfg.episodes)
            continue
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
                    setup_failed += 1
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
                writer.add_episode(
                    np.stack(frames["img"]),
                    np.stack(frames["state"]),
                    np.stack(frames["action"]),
                    np.array(frames["done"]),
                    sg.instruction,
                    _aux_labels(frames, cfg, K_wrist),
                    wrist=np.stack(frames["wrist"]),
                )
                kept += 1
            else:
                dropped += 1
                if k < len(subgoals) - 1:
                    break  # the rest of this task depends on the failed setup
        if progress:
            progress(i + 1, cfg.episodes)
    # Nothing kept (say, a weak policy failed every setup): no dataset, the counts still say why.
    root = writer.close() if writer.episodes else None
    env.close()
    return {
        "dataset": None if root is None else str(root),
        "episodes_kept": kept,
        "episodes_dropped": dropped,
        "scenes_unplaced": unplaced,
        "setup_failed": setup_failed,
        "frames": len(writer.rows["index"]),
        "tasks": len(writer.tasks),
        "wall_s": time.perf_counter() - t0,
    }
