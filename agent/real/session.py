"""``--backend real``: the agent on a RealSense camera (live or a recording) and an arm driver,
every plan gated by a shadow dry run in the PyBullet twin of the perceived scene, then by the user.
``RealSession`` is an ``AgentSession``: run, chat, voice and task files drive it as they drive the
simulator (``holds``/``evaluate`` read the perceived scene)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from vla_agent.agent.backends.real import RealBackend
from vla_agent.agent.core.executor import Executor, ExecutorConfig
from vla_agent.agent.core.policies import make_policy
from vla_agent.agent.core.report import write_report
from vla_agent.agent.core.session import AgentConfig, detector_factory, placed_goals
from vla_agent.agent.core.trace import TraceWriter
from vla_agent.agent.perception.objects import Perception
from vla_agent.agent.planning.plan import Plan
from vla_agent.agent.planning.planners import make_planner
from vla_agent.agent.real.arms import ArmDriver, TwinArm, make_arm
from vla_agent.agent.real.calibration import load_calibration
from vla_agent.agent.real.cameras import CAMERAS, make_camera
from vla_agent.agent.real.shadow import ShadowReport, shadow_run, twin_scene
from vla_agent.agent.safety.shield import SafetyShield
from vla_agent.errors import ConfigError
from vla_agent.sim.catalog import SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.sim.predicates import evaluate, holds
from vla_agent.sim.robots.base import robot_spec
from vla_agent.sim.video import write_video
from vla_agent.types import SceneObject


class RealConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera: str = ""  # "" first device | serial:NUMBER | file:PATH.db3/.bag
    arm: str = "twin"  # twin | xarm:IP | ros[:CONFIG.yaml]
    calibration: Path | None = None  # camera-to-base YAML (default: next to a recording)
    shadow: bool = True  # rehearse every plan in the twin first
    yes: bool = False  # approve a successful shadow run without asking


def scene_objects(scene: str) -> list[SceneObject]:
    spec = SceneSpec.parse(scene)
    return [SceneObject(n, o.kind, o.color) for n, o in zip(spec.names, spec.objects)]


def default_calibration(camera: str) -> Path:
    """``file:rec.db3`` -> ``rec.calib.yaml`` beside it (what ``vla-agent record-sim`` writes)."""
    if camera.startswith("file:"):
        return Path(camera[5:]).with_suffix(".calib.yaml")
    if camera.split(":")[0] == "ros":
        raise ConfigError("--backend ros needs --calibration FILE (`vla-agent ros sim-robot` writes one)")
    raise ConfigError("a live camera needs --calibration FILE (make one with `vla-agent calibrate create`)")


class RealSession:
    truth = "perceived"

    def __init__(
        self,
        cfg: AgentConfig,
        real: RealConfig,
        confirm: Callable[[str], bool] | None = None,
        arm: ArmDriver | None = None,
        policy_factory: Callable[[TabletopEnv], object] | None = None,
        listeners: list[Callable] | None = None,
    ):
        if not cfg.scene:
            raise ConfigError(
                "the real backend needs --scene: the objects on the table, e.g. 'red block, blue bowl'"
            )
        if cfg.detector == "ground-truth":
            raise ConfigError("the ground-truth detector exists only in the simulator")
        CAMERAS.get(real.camera or "realsense")  # a misspelt camera fails first, with a suggestion
        self.cfg, self.real, self.confirm = cfg, real, confirm
        self.objects = scene_objects(cfg.scene)
        self.calibration = load_calibration(real.calibration or default_calibration(real.camera))
        camera = make_camera(real.camera)
        self.arm = arm or make_arm(real.arm)
        if policy_factory is None:
            if cfg.policy == "expert" and not isinstance(self.arm, TwinArm):
                raise ConfigError(
                    "the expert reads simulator state; on a real arm use --policy vla or ws://HOST:PORT"
                )

            def policy_factory(env: TabletopEnv):
                return make_policy(cfg.policy, env, **cfg.policy_options())

        self.policy_factory = policy_factory
        # the envelope of the connected arm: its twin, joint limits and box, in its frame
        self.robot = robot_spec(self.arm.robot)
        envelope = (cfg.shield, self.robot, self.arm.mount)
        audit = SafetyShield(*envelope)
        self.backend = RealBackend(camera, self.arm, self.calibration, self.objects, audit=audit)
        self.frames: list = []
        self.shadow: ShadowReport | None = None
        self.backend.reset()
        if isinstance(self.arm, TwinArm):  # the twin arm's world is the perceived scene
            self.arm.set_scene(twin_scene(self.objects, self._perceive()), cfg.seed)
            self.backend.reset()
        policy_env = (
            self.arm.env
            if isinstance(self.arm, TwinArm)
            else TabletopEnv(EnvConfig(robot=self.robot.name, base_position=self.arm.mount))
        )
        policy = policy_factory(policy_env)
        if hasattr(policy, "stream"):  # a remote policy: its chunks arrive in wall-clock time here
            policy.stream.simulated = False
        self.executor = Executor(
            self.backend,
            policy,
            make_planner(cfg),
            detector_factory(cfg.detector),
            shield=SafetyShield(*envelope),
            config=ExecutorConfig(max_retries=cfg.max_retries, max_replans=cfg.max_replans, home=cfg.home),
            on_frame=(lambda: self.frames.append(self.backend.render())) if cfg.video else None,
        )
        for fn in listeners or []:
            self.executor.events.subscribe(fn)
        self.executor.begin(self.objects)
        self.fps, self.seed = 10.0, cfg.seed
        self._approve: Callable | None = None

    @property
    def events(self):
        return self.executor.events

    def reset(self, seed: int | None = None, scene: str | None = None) -> None:
        """Re-read the world (the real scene is whatever is on the table; ``seed`` and ``scene``
        are the simulator's and only recorded)."""
        self.backend.reset()
        self.executor.begin(self.objects)
        self.events.history.clear()
        self.seed = self.cfg.seed if seed is None else seed
        self.frames = [self.backend.render()] if self.cfg.video else []

    def plan(self, command: str) -> dict:
        from vla_agent.agent.core.session import plan_only

        return plan_only(self.executor, self.executor.planner, command)

    def holds(self) -> list[str]:
        return [str(p) for p in holds(self._perceive())]

    def evaluate(self, predicate: str) -> bool:
        return bool(evaluate(self._perceive(), predicate))

    def _perceive(self):
        return Perception(self.objects, self.backend.camera).world(self.backend.observe())

    def approve(self, plan: Plan) -> bool | str:
        """The gate: shadow run first (unless disabled), then the user (or ``--yes``); True or
        the reason for refusing."""
        ev = self.executor.events
        if self.real.shadow:
            self.shadow = shadow_run(
                plan,
                self._command,
                self.objects,
                self._perceive(),
                self.policy_factory,
                lambda env: detector_factory(self.cfg.detector, env),
                seed=self.cfg.seed,
                max_retries=self.cfg.max_retries,
                home=self.cfg.home,
                shield=self.cfg.shield,
                robot=self.robot.name,
                base=self.arm.mount,
            )
            ev.emit("shadow", **self.shadow.to_json(), verdict=self.shadow.verdict())
            if not self.shadow.ok:
                return self.shadow.verdict()
        question = (self.shadow.verdict() + "; " if self.shadow else "no shadow run; ") + "move the real arm?"
        if self.real.yes:
            return True
        if self._approve is not None:  # the front-end's own question (a chat prompt, a voice confirmation)
            verdict = self._approve(plan)
            return verdict if verdict is not True else True
        if self.confirm is None or not self.confirm(question):
            return "not approved by the user"
        return True

    def run(self, command: str, out: Path | None = None, approve: Callable | None = None) -> dict:
        """Execute ``command`` after the shadow run and the approval (``approve(plan)``, else the
        session's ``confirm``); write the report folder; return the JSON summary."""
        self._approve = approve
        out = out or self.cfg.out or Path("runs") / time.strftime("real-%Y%m%d-%H%M%S")
        out.mkdir(parents=True, exist_ok=True)
        self._command = command
        moves_before = self.backend.applied
        trace = TraceWriter(
            out / "trace.jsonl",
            {
                "command": command,
                "backend": "real",
                "camera": self.real.camera or "first device",
                "arm": self.real.arm,
                "calibration": self.calibration.model_dump(),
                "policy": self.cfg.policy,
                "planner": self.cfg.planner,
                "detector": self.cfg.detector,
                "objects": [o.name for o in self.objects],
            },
        )
        self.executor.trace = trace
        self.executor.events.subscribe(trace.event)
        self.frames = [self.backend.render()] if self.cfg.video else []
        try:
            result = self.executor.run(command, approve=self.approve)
        finally:
            self.executor.events.unsubscribe(trace.event)
            self.executor.trace = None
            trace.close()
        world = self._perceive()
        summary = {
            "command": command,
            "backend": "real",
            "status": result.status,
            "reason": result.reason,
            "scene": ", ".join(o.name for o in self.objects),
            **(result.plan.to_json() if result.plan is not None else {"refused": result.reason}),
            "shadow": self.shadow.to_json() if self.shadow else None,
            "outcomes": [
                {
                    "instruction": o.subgoal.instruction,
                    "status": o.status.value,
                    "attempts": o.attempts,
                    "steps": o.steps,
                    "reason": o.reason,
                }
                for o in result.outcomes
            ],
            "perceived_holds": (perceived := [str(p) for p in holds(world)]),
            "holds": perceived,
            # where the agent says it put things, checked on the perceived scene
            "goals": (goals := placed_goals(result.outcomes)),
            "goals_unmet": [g for g in goals if not evaluate(world, g)],
            "truth": self.truth,
            "arm_moves": self.backend.applied - moves_before,
            "unsafe_actions_reached_backend": self.backend.unsafe_actions,
            "unsafe_states_reached": self.backend.unsafe_states,
            "steps": result.steps,
            "wall_s": round(result.wall_s, 3),
            "trace": str(out / "trace.jsonl"),
        }
        if self.cfg.video and len(self.frames) > 1:
            summary["video"] = str(write_video(self.frames, out / "episode.mp4", fps=10))
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        summary["report"] = str(write_report(out, summary))
        return summary

    def close(self) -> None:
        self.backend.close()
