"""Sessions: the agent around one robot, built from one config (backend, policy, planner, detector,
one shield), driven by every front-end (``run``, ``plan``, ``chat``, ``voice``, ``task``) through
the ``AgentSession`` interface. ``Session`` is the simulated robot; ``RealSession``
(``agent/real/session.py``) the real arm, its plans gated by a shadow run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from vla_agent.agent.backends.sim import SimBackend
from vla_agent.agent.core.events import Event
from vla_agent.agent.core.executor import Executor, ExecutorConfig, RunResult
from vla_agent.agent.core.experience import Experience, default_path
from vla_agent.agent.core.policies import make_policy
from vla_agent.agent.core.report import write_report
from vla_agent.agent.core.trace import TraceWriter
from vla_agent.agent.perception.detectors import DETECTORS
from vla_agent.agent.planning.intent import check_plan_intent
from vla_agent.agent.planning.llm import DEFAULT_MODEL
from vla_agent.agent.planning.plan import PlanError
from vla_agent.agent.planning.planners import make_planner
from vla_agent.agent.safety.guard import check_command, normalize
from vla_agent.agent.safety.shield import SafetyShield, ShieldConfig
from vla_agent.errors import VlaAgentError
from vla_agent.sim.catalog import SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.sim.video import write_video
from vla_agent.skills.library import get_skill
from vla_agent.types import Status, StepOutcome

DEFAULT_COMMAND = "put the red block in the bowl, then stack the blue block on the green one"
DEFAULT_SCENE = "red block, blue block, green block, yellow block, purple bowl"


class AgentConfig(BaseModel):
    """Everything ``run``/``plan``/``chat``/``task`` need; every field has a working default."""

    model_config = ConfigDict(extra="forbid")

    scene: str | None = DEFAULT_SCENE
    seed: int = Field(0, ge=0, lt=2**32)
    randomize: bool = False
    policy: str = "vla"
    robot: str = Field("panda", description="the simulated robot: a registered RobotSpec (panda, xarm6)")
    checkpoint: Path | None = None
    lora: Path | None = Field(None, description="a LoRA adapter on top of the VLA checkpoint")
    device: str = "cpu"
    api_key_file: Path | None = Field(None, description="file holding a policy server's API key")
    adapter: str | None = Field(
        None, description="a policy server's convention (vla.adapters preset or file)"
    )
    chunks: Literal["sync", "async", "hybrid"] = Field(
        "sync",
        description="a policy server's chunks: wait, overlap, or overlap but wait from grasp to release",
    )
    realtime: bool = Field(False, description="a dry run counts a policy server's latency in control ticks")
    shield: ShieldConfig = Field(default_factory=ShieldConfig, description="the safety envelope of the cell")
    planner: str = "offline"
    llm_model: str = DEFAULT_MODEL
    llm_base_url: str | None = None
    llm_timeout: float | None = Field(
        None,
        gt=0,
        description="seconds per LLM request (default 30 for a cloud model, 120 for --llm-base-url)",
    )
    llm_fallback: bool = True
    llm_warm_up: bool = Field(
        False, description="one tiny request at start: a local server loads its model then"
    )
    detector: str = "perception"
    max_retries: int = Field(1, ge=0)
    max_replans: int = Field(2, ge=0)
    home: bool = Field(True, description="return the arm to its start pose before each pick or push")
    out: Path | None = None
    video: bool = True

    def policy_options(self) -> dict:
        """What ``make_policy`` is given from this config (each factory takes what it needs)."""
        return {
            "checkpoint": self.checkpoint,
            "lora": self.lora,
            "device": self.device,
            "api_key_file": self.api_key_file,
            "adapter": self.adapter,
            "chunks": self.chunks,
            "realtime": self.realtime,
        }


class AgentSession(Protocol):
    """What a front-end drives, whatever the backend: the simulator or a real arm."""

    cfg: AgentConfig
    executor: Executor
    frames: list  # video frames of the session so far
    fps: float
    seed: int
    truth: str  # what ``holds``/``evaluate`` read: "ground truth" (simulator) or "perceived" (camera)

    def reset(self, seed: int | None = None, scene: str | None = None) -> None: ...
    def run(self, command: str, out: Path | None = None, approve: Callable | None = None) -> dict: ...
    def plan(self, command: str) -> dict: ...
    def holds(self) -> list[str]: ...
    def evaluate(self, predicate: str) -> bool: ...
    def close(self) -> None: ...


def plan_only(executor: Executor, planner, command: str) -> dict:
    """Plan ``command`` without moving: ``{"subgoals": [...]}`` or ``{"refused": reason}``."""
    reason = check_command(command)
    if reason is not None:
        return {"refused": reason}
    text, scene = normalize(command), executor.scene()
    try:
        plan = planner.plan(text, scene)
    except (PlanError, VlaAgentError) as e:
        return {"refused": str(e)}
    asked_or_refused = plan.refused is not None or plan.question is not None
    mismatch = None if asked_or_refused else check_plan_intent(text, scene, plan.subgoals)
    if mismatch is not None:
        return {"refused": mismatch, "planner": plan.planner}
    if executor.predict is not None and plan.subgoals:
        plan.predicted = executor.predict(plan.subgoals)
    return {**plan.to_json(), **plan.provenance(), "latency_ms": round(plan.latency_ms, 3)}


def detector_factory(name: str, env: TabletopEnv | None = None) -> Callable:
    """``make(perception, policy) -> SuccessDetector`` for the detector ``name``."""
    return DETECTORS.create(name, env)


class Session:
    """A simulated robot with the agent around it: reset scenes, run commands, keep a video."""

    truth = "ground truth"

    def __init__(self, cfg: AgentConfig, listeners: list[Callable[[Event], None]] | None = None):
        DETECTORS.get(cfg.detector)  # an unknown name fails before anything is built
        self.cfg = cfg
        self.env = TabletopEnv(EnvConfig(randomize=cfg.randomize, robot=cfg.robot))
        robot, base = self.env.robot_spec, self.env.base
        self.backend = SimBackend(self.env, audit=SafetyShield(cfg.shield, robot, base))  # independent audit
        self.policy = make_policy(cfg.policy, self.env, **cfg.policy_options())
        self.planner = make_planner(cfg)
        self.experience = Experience(default_path(), robot=cfg.robot, policy=cfg.policy)
        if hasattr(self.planner, "experience"):
            self.planner.experience = self.experience  # the likelier of equivalent plans
        self.frames: list = []
        self.executor = Executor(
            self.backend,
            self.policy,
            self.planner,
            detector_factory(cfg.detector, self.env),
            shield=SafetyShield(cfg.shield, robot, base),
            config=ExecutorConfig(max_retries=cfg.max_retries, max_replans=cfg.max_replans, home=cfg.home),
            on_frame=self._frame if cfg.video else None,
        )
        for fn in listeners or []:
            self.executor.events.subscribe(fn)
        self.executor.predict = lambda subgoals: self.experience.predict_plan(subgoals, self.env.kinds())
        self.fps = self.env.config.control_hz
        self.seed = cfg.seed

    def holds(self) -> list[str]:
        return [str(p) for p in self.env.holds()]

    def evaluate(self, predicate: str) -> bool:
        return bool(self.env.evaluate(predicate))

    @property
    def events(self):
        return self.executor.events

    def reset(self, seed: int | None = None, scene: str | None = None) -> None:
        seed = self.cfg.seed if seed is None else seed
        scene = self.cfg.scene if scene is None else scene
        self.backend.reset(seed=seed, scene=SceneSpec.parse(scene) if scene else None)
        self.executor.begin()
        self.events.history.clear()
        self.seed = seed
        self.frames = [self.env.render()] if self.cfg.video else []

    def _frame(self) -> None:
        self.frames.append(self.env.render())

    def run(self, command: str, out: Path | None = None, approve: Callable | None = None) -> dict:
        """Execute ``command``; write the dry-run report folder ``out`` (trace, video, summary,
        report.html); return the JSON summary. ``approve(plan)`` may veto the plan before it runs."""
        out = out or self.cfg.out or Path("runs") / time.strftime("run-%Y%m%d-%H%M%S")
        out.mkdir(parents=True, exist_ok=True)
        trace = TraceWriter(
            out / "trace.jsonl",
            {
                "command": command,
                "scene": self.env.scene.describe(),
                "seed": self.seed,
                "randomize": self.cfg.randomize,
                "policy": self.cfg.policy,
                "planner": self.cfg.planner,
                "detector": self.cfg.detector,
                "objects": self.env.names,
            },
        )
        self.executor.trace = trace
        self.events.subscribe(trace.event)
        try:
            result = self.executor.run(command, approve=approve)
            self.remember(result)
        finally:
            self.events.unsubscribe(trace.event)
            self.executor.trace = None
            trace.close()
        summary = self.summary(result)
        summary["trace"] = str(out / "trace.jsonl")
        if self.cfg.video and len(self.frames) > 1:
            summary["video"] = str(
                write_video(self.frames, out / "episode.mp4", fps=self.env.config.control_hz)
            )
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        summary["report"] = str(write_report(out, summary))
        return summary

    def remember(self, result: RunResult) -> None:
        """Add the run's subgoal outcomes to the experience store (predicted success)."""
        kinds = self.env.kinds()
        for o in result.outcomes:
            self.experience.record(o.subgoal, kinds, o.status is Status.DONE, o.steps)

    def summary(self, r: RunResult) -> dict:
        plan = r.plan.to_json() if r.plan is not None else {"refused": r.reason}
        return {
            "command": r.command,
            "status": r.status,
            "reason": r.reason,
            "scene": self.env.scene.describe(),
            "seed": self.seed,
            **plan,
            **(r.plan.provenance() if r.plan is not None else {}),
            "outcomes": [
                {
                    "skill": o.subgoal.skill,
                    "args": dict(o.subgoal.args),
                    "instruction": o.subgoal.instruction,
                    "status": o.status.value,
                    "attempts": o.attempts,
                    "steps": o.steps,
                    "reason": o.reason,
                }
                for o in r.outcomes
            ],
            "replans": r.replans,
            "shield_interventions": r.interventions,
            "tally": r.tally(),
            "holds": [str(p) for p in self.env.holds()],
            # The dry run can check the agent's claims: where it says it put things, by ground truth.
            "goals": (goals := placed_goals(r.outcomes)),
            "goals_unmet": [g for g in goals if not self.env.evaluate(g)],
            "unsafe_actions_reached_backend": self.backend.unsafe_actions,
            "unsafe_states_reached": self.backend.unsafe_states,
            "steps": r.steps,
            "wall_s": round(r.wall_s, 3),
        }

    def plan(self, command: str) -> dict:
        """Plan only: ``{"subgoals": [...]}`` or ``{"refused": reason}``."""
        return plan_only(self.executor, self.planner, command)

    def close(self) -> None:
        self.executor.shield.close()
        self.backend.close()


def placed_goals(outcomes: list[StepOutcome]) -> list[str]:
    """The lasting effects the agent claims at the end of a run: where each object it placed
    ended up (its last place judged done), unless a later subgoal it judged done (a pick, a push)
    took the object from there. Picks and pushes leave nothing else to check at the end."""
    where: dict[str, str] = {}
    for o in outcomes:
        if o.status is not Status.DONE or "obj" not in o.subgoal.args:
            continue
        obj = o.subgoal.args["obj"]
        where.pop(obj, None)
        if o.subgoal.skill == "place":
            where[obj] = str(get_skill("place").ground("post", o.subgoal.args)[0])
    return list(where.values())
