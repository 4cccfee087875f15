"""A scripted dry run: the expert executes a fixed sequence of subgoals in the sim and leaves a
video and a JSON summary. (The agent's ``run`` command supersedes it once the planner exists.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from vla_agent.sim.catalog import SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.sim.video import write_video
from vla_agent.skills.experts import ExpertPolicy
from vla_agent.skills.library import get_skill
from vla_agent.skills.rollout import run_subgoal

DEFAULT_SCENE = "red block, blue block, green block, orange block, yellow bowl, pink plate"
DEFAULT_STEPS = (
    ("pick", {"obj": "red block"}),
    ("place", {"obj": "red block", "target": "yellow bowl"}),
    ("pick", {"obj": "blue block"}),
    ("place", {"obj": "blue block", "target": "green block"}),
    ("pick", {"obj": "orange block"}),
    ("place", {"obj": "orange block", "target": "pink plate"}),
)


class DemoConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    scene: str = DEFAULT_SCENE
    seed: int = 0
    out: Path = Path("runs/demo")
    video: str = "episode.mp4"
    randomize: bool = False


def run_demo(cfg: DemoConfig, log=print) -> dict:
    """Execute the default subgoal sequence with the scripted expert; return the summary."""
    scene = SceneSpec.parse(cfg.scene)
    env = TabletopEnv(EnvConfig(randomize=cfg.randomize))
    obs, _ = env.reset(seed=cfg.seed, options={"scene": scene})
    expert = ExpertPolicy(env)
    frames = [env.render()]
    outcomes = []
    t0 = time.perf_counter()
    for name, args in DEFAULT_STEPS:
        sg = get_skill(name).subgoal(args)
        result, obs = run_subgoal(env, expert, sg, obs, record=True)
        frames += result.frames[1:]
        outcomes.append({"instruction": sg.instruction, "success": result.success, "steps": result.steps})
        log(f"{'ok ' if result.success else 'FAIL'} {sg.instruction} ({result.steps} steps)")
    cfg.out.mkdir(parents=True, exist_ok=True)
    video = write_video(frames, cfg.out / cfg.video, fps=env.config.control_hz)
    summary = {
        "scene": scene.describe(),
        "seed": cfg.seed,
        "subgoals": outcomes,
        "holds": [str(x) for x in env.holds()],
        "video": str(video),
        "wall_s": time.perf_counter() - t0,
    }
    (cfg.out / "summary.json").write_text(json.dumps(summary, indent=2))
    env.close()
    return summary
