"""The shadow dry run: before a plan moves the real arm, the same plan runs in a PyBullet twin of
the perceived scene (object kinds, colours, positions), with the same policy, detector and shield.
Its predicted outcome and shield interventions are shown; a predicted failure or any unsafe
intervention means nothing moves, and otherwise the user still approves."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vla_agent.agent.backends.sim import SimBackend
from vla_agent.agent.core.executor import Executor, ExecutorConfig
from vla_agent.agent.planning.plan import Plan
from vla_agent.agent.safety.shield import SafetyShield, ShieldConfig
from vla_agent.sim.catalog import ObjectSpec, SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.sim.predicates import WorldState
from vla_agent.types import Scene, SceneObject

# A shield hold (NaN/stale data, IK out of reach, a collision) or a cancelled move into a keep-out
# zone means "the plan would have done something unsafe"; clipping a step to the limits is routine.
KEEP_OUT = "move into keep-out zone"


@dataclass
class ShadowReport:
    status: str  # the twin run's status: success / failed / refused / stopped
    reason: str
    interventions: int  # all shield interventions
    unsafe: list[str] = field(default_factory=list)  # the ones that predict an unsafe plan
    unsafe_reached_backend: int = 0
    unsafe_states: int = 0  # measured twin states outside the envelope
    steps: int = 0
    wall_s: float = 0.0
    outcomes: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.status == "success"
            and not self.unsafe
            and self.unsafe_reached_backend == 0
            and self.unsafe_states == 0
        )

    def verdict(self) -> str:
        if self.ok:
            return f"shadow run: success in {self.steps} steps, {self.interventions} routine shield clips"
        why = self.reason or self.status
        if self.unsafe:
            why = f"{len(self.unsafe)} unsafe shield interventions (first: {self.unsafe[0]})"
        elif self.unsafe_states:
            why = f"the twin arm left the envelope on {self.unsafe_states} steps"
        return f"shadow run predicts {'failure' if self.status != 'success' else 'an unsafe run'}: {why}"

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "status": self.status,
            "reason": self.reason,
            "interventions": self.interventions,
            "unsafe": self.unsafe[:20],
            "unsafe_reached_backend": self.unsafe_reached_backend,
            "unsafe_states": self.unsafe_states,
            "steps": self.steps,
            "wall_s": round(self.wall_s, 3),
            "outcomes": self.outcomes,
        }


class FixedPlanner:
    """Returns the plan under review; no replanning in the shadow."""

    def __init__(self, plan: Plan):
        self._plan = plan

    def plan(self, command: str, scene: Scene) -> Plan:
        return self._plan

    def replan(self, command: str, scene: Scene, history) -> Plan:
        return Plan(refused="the shadow run does not replan")


def twin_scene(objects: list[SceneObject], world: WorldState) -> SceneSpec:
    """The perceived scene as a simulator scene (objects at their perceived table positions)."""
    specs = []
    for o in objects:
        pos = world.objects[o.name].position if o.name in world.objects else None
        specs.append(
            ObjectSpec(
                kind=o.kind, color=o.color, position=None if pos is None else (float(pos[0]), float(pos[1]))
            )
        )
    return SceneSpec(objects=tuple(specs))


def shadow_run(
    plan: Plan,
    command: str,
    objects: list[SceneObject],
    world: WorldState,
    make_policy: Callable[[TabletopEnv], object],
    make_detector: Callable[[TabletopEnv], Callable],
    seed: int = 0,
    max_retries: int = 1,
    home: bool = True,
    shield: ShieldConfig | None = None,
    robot: str = "panda",
    base: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> ShadowReport:
    """Execute ``plan`` in a twin of the perceived scene and report what the real run would do:
    the connected ``robot``, its base at ``base`` (the real arm's frame), the real run's envelope."""
    t0 = time.perf_counter()
    env = TabletopEnv(EnvConfig(robot=robot, base_position=base))
    try:
        envelope = (shield, env.robot_spec, env.base)
        backend = SimBackend(env, audit=SafetyShield(*envelope))
        backend.reset(seed=seed, scene=twin_scene(objects, world))
        executor = Executor(
            backend,
            make_policy(env),
            FixedPlanner(plan),
            make_detector(env),
            shield=SafetyShield(*envelope),
            config=ExecutorConfig(max_retries=max_retries, max_replans=0, home=home),
        )
        interventions: list[dict] = []
        executor.events.subscribe(lambda e: interventions.append(e.data) if e.kind == "shield" else None)
        executor.begin()
        result = executor.run(command)
    finally:
        env.close()
    unsafe = [
        v
        for d in interventions
        for i, v in enumerate(d["violations"])
        if (d["held"] and i == len(d["violations"]) - 1) or v.startswith(KEEP_OUT)
    ]
    return ShadowReport(
        status=result.status,
        reason=result.reason,
        interventions=len(interventions),
        unsafe=unsafe,
        unsafe_reached_backend=backend.unsafe_actions,
        unsafe_states=backend.unsafe_states,
        steps=result.steps,
        wall_s=time.perf_counter() - t0,
        outcomes=[{"instruction": o.subgoal.instruction, "status": o.status.value} for o in result.outcomes],
    )
