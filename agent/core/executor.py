"""The executor: command -> safety check -> plan -> for each subgoal, the control loop

    observe -> policy chunk -> shield -> backend -> success detector -> done / failed

with bounded retries per subgoal and bounded replanning from the perceived scene. An emergency
``stop()`` from any thread makes the loop hold the robot at its next tick. Everything that happens
is an event on ``self.events``; a ``TraceWriter`` may listen and also gets every control step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from vla_agent.agent.core.events import EventBus
from vla_agent.agent.core.homing import go_home
from vla_agent.agent.core.judging import can_retry, conclude
from vla_agent.agent.core.records import ExecutorConfig, RunResult, Stopped  # noqa: F401 - re-exported
from vla_agent.agent.core.trace import TraceWriter
from vla_agent.agent.perception.detectors import SuccessDetector
from vla_agent.agent.perception.objects import Perception
from vla_agent.agent.planning.intent import check_plan_intent
from vla_agent.agent.planning.plan import Plan, PlanError
from vla_agent.agent.safety.guard import check_command, normalize
from vla_agent.agent.safety.shield import SafetyShield
from vla_agent.errors import PolicyUnavailable, RobotUnavailable, VlaAgentError
from vla_agent.sim.predicates import holds
from vla_agent.skills.library import get_skill
from vla_agent.types import STATE, Scene, SceneObject, Status, StepOutcome, Subgoal


class Executor:
    def __init__(
        self,
        backend,
        policy,
        planner,
        detector_factory: Callable[[Perception, object], SuccessDetector],
        shield: SafetyShield | None = None,
        config: ExecutorConfig | None = None,
        events: EventBus | None = None,
        trace: TraceWriter | None = None,
        on_frame: Callable[[], None] | None = None,
    ):
        self.backend = backend
        self.policy = policy
        self.planner = planner
        self.detector_factory = detector_factory
        # one envelope: the backend's (its robot, its cell), unless the caller brings a shield
        self.shield = shield or SafetyShield(backend.audit.config, backend.audit.robot, backend.audit.base)
        self.config = config or ExecutorConfig()
        self.events = events or EventBus()
        self.trace = trace
        if trace is not None:
            self.events.subscribe(trace.event)
        self.on_frame = on_frame  # called after every applied action (video capture)
        self._stop = threading.Event()
        self.home_pose: np.ndarray | None = None  # end-effector xyz + rpy at begin()
        self.perception: Perception | None = None
        self.detector: SuccessDetector | None = None
        # Live status for front-ends that poll (a REPL spinner): the subgoal running, its step
        # count and the detector's latest confidence. Replaced, never mutated, so reads are safe.
        self.progress: dict = {}
        self._run_events = 0  # index in the event history where the current run began
        # Asks a person a yes/no question (True, False, or None: no answer) when the detector
        # cannot tell whether a subgoal succeeded; None: unattended, it counts as not done.
        self.ask: Callable[[str], bool | None] | None = None
        self.predict: Callable[[list[Subgoal]], dict] | None = None  # predicted success of a plan

    # ------------------------------------------------------------------ e-stop
    def stop(self) -> None:
        """Emergency stop from any thread: the loop holds the robot at its next control tick."""
        self._stop.set()

    def clear_stop(self) -> None:
        """Release the e-stop (a front-end does this when the user gives a new command)."""
        self._stop.clear()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ scene
    def begin(self, objects: list[SceneObject] | None = None) -> None:
        """Set up perception for the objects in view (call after every backend reset)."""
        self._stop.clear()
        objs = objects if objects is not None else self.backend.scene_objects()
        self.perception = Perception(objs, self.backend.camera)
        self.detector = self.detector_factory(self.perception, self.policy)
        obs = self.backend.observe()
        self.perception.world(obs)
        self.home_pose = np.asarray(obs[STATE], float)[:6].copy()

    def scene(self) -> Scene:
        """The scene as perceived now: objects with estimated positions and relations."""
        if self.perception is None:
            self.begin()
        w = self.perception.world(self.backend.observe())
        objs = tuple(
            SceneObject(
                o.name,
                o.kind,
                o.color,
                tuple(map(float, w.objects[o.name].position)) if o.name in w.objects else None,
            )
            for o in self.perception.objects
        )
        return Scene(objs, tuple(holds(w)))

    def _untrained(self, plan: Plan) -> str | None:
        """A plan step whose skill the policy cannot run (a VLA trained on other skills): refused
        before anything moves rather than handed to a policy that never saw it. A policy states
        its skills in ``skills`` (None: any)."""
        skills = self.policy.skills
        if skills is None:
            return None
        missing = sorted({sg.skill for sg in plan.subgoals} - set(skills))
        if not missing:
            return None
        return (
            f"the policy was not trained on {', '.join(missing)} (it runs {', '.join(skills)}); "
            "use --policy expert in simulation, or a policy trained on it"
        )

    # ------------------------------------------------------------------ run
    def run(self, command: str, approve: Callable[[Plan], bool | str] | None = None) -> RunResult:
        """Check, plan, validate and execute ``command``. ``approve`` (a REPL prompt, a voice
        confirmation) sees the validated plan before anything moves; False refuses the run."""
        t0 = time.perf_counter()
        if self.perception is None:
            self.begin()
        ev = self.events
        self._run_events = len(ev.history)  # where this run's events start (the tally counts them)
        ev.emit("command", text=command)
        res = RunResult(command, "failed")
        reason = check_command(command)
        if reason is not None:
            ev.emit("refused", reason=reason, stage="safety")
            res.status, res.reason = "refused", reason
            return self._finish(res, t0)
        scene = self.scene()
        text = normalize(command)  # planners read what the guard read
        try:
            plan = self.planner.plan(text, scene)
        except (PlanError, VlaAgentError) as e:
            ev.emit("refused", reason=str(e), stage="planner")
            res.status, res.reason = "refused", str(e)
            return self._finish(res, t0)
        res.plan = plan
        if plan.question is not None:  # asked, not guessed: the front-end brings the answer back
            ev.emit("question", question=plan.question, options=list(plan.options), about=plan.about)
            res.status, res.reason = "question", plan.question
            return self._finish(res, t0)
        if plan.refused is not None:
            ev.emit("refused", reason=plan.refused, stage="planner")
            res.status, res.reason = "refused", plan.refused
            return self._finish(res, t0)
        mismatch = check_plan_intent(text, scene, plan.subgoals)
        if mismatch is not None:
            reason = f"{mismatch}; nothing moved (rephrase the command, or name the objects)"
            ev.emit("refused", reason=reason, stage="intent")
            res.status, res.reason = "refused", reason
            return self._finish(res, t0)
        untrained = self._untrained(plan)
        if untrained is not None:
            ev.emit("refused", reason=f"{untrained}; nothing moved", stage="policy")
            res.status, res.reason = "refused", f"{untrained}; nothing moved"
            return self._finish(res, t0)
        if self.predict is not None:
            plan.predicted = self.predict(plan.subgoals)
        predicted = {"predicted": plan.predicted} if plan.predicted is not None else {}
        ev.emit(
            "plan",
            subgoals=plan.to_json()["subgoals"],
            **plan.provenance(),
            latency_ms=plan.latency_ms,
            **predicted,
        )
        verdict = approve(plan) if approve is not None else True
        if verdict is not True:  # False, or the reason for refusing
            reason = verdict if isinstance(verdict, str) and verdict else "not approved by the user"
            ev.emit("refused", reason=reason, stage="user")
            res.status, res.reason = "refused", reason
            return self._finish(res, t0)
        queue = list(plan.subgoals)
        index = 0
        try:
            while queue:
                sg = queue.pop(0)
                outcome = self._attempts(index, sg, res)
                res.outcomes.append(outcome)
                index += 1
                if outcome.status is Status.DONE:
                    continue
                if res.replans >= self.config.max_replans:
                    res.reason = f"{sg.instruction!r} failed: {outcome.reason}"
                    return self._finish(res, t0)
                res.replans += 1
                now_scene = self.scene()
                try:
                    new = self.planner.replan(text, now_scene, res.outcomes)
                except (PlanError, VlaAgentError) as e:
                    res.reason = f"replanning failed: {e}"
                    return self._finish(res, t0)
                if new.refused is not None:
                    res.reason = f"replanning refused: {new.refused}"
                    return self._finish(res, t0)
                mismatch = check_plan_intent(text, now_scene, new.subgoals, first=False)
                mismatch = mismatch or self._untrained(new)
                if mismatch is not None:
                    res.reason = f"replanning refused: {mismatch}"
                    return self._finish(res, t0)
                ev.emit(
                    "replan", subgoals=new.to_json()["subgoals"], after=sg.instruction, reason=outcome.reason
                )
                queue = list(new.subgoals)
        except Stopped:
            res.status, res.reason = "stopped", "emergency stop"
            return self._finish(res, t0)
        except (PolicyUnavailable, RobotUnavailable) as e:
            self.events.emit(
                "subgoal_end",
                index=index,
                instruction=sg.instruction,
                status=Status.FAILED.value,
                steps=0,
                attempts=1,
                reason=str(e),
            )
            res.outcomes.append(StepOutcome(sg, Status.FAILED, 1, 0, str(e)))
            res.status, res.reason = "error", str(e)
            return self._finish(res, t0)
        res.status = "success"
        return self._finish(res, t0)

    def _finish(self, res: RunResult, t0: float) -> RunResult:
        res.wall_s = time.perf_counter() - t0
        shield = [e for e in self.events.history[self._run_events :] if e.kind == "shield"]
        res.interventions, res.holds = len(shield), sum(bool(e.data.get("held")) for e in shield)
        self.events.emit(
            "finished",
            tally=res.tally(),
            status=res.status,
            reason=res.reason,
            completed=res.completed,
            subgoals=len(res.outcomes),
            replans=res.replans,
            steps=res.steps,
            wall_s=res.wall_s,
        )
        return res

    # ------------------------------------------------------------------ one subgoal
    def _attempts(self, index: int, sg: Subgoal, res: RunResult) -> StepOutcome:
        attempts = 0
        total = 0
        while True:
            attempts += 1
            self.events.emit(
                "subgoal_start",
                index=index,
                instruction=sg.instruction,
                skill=sg.skill,
                args=dict(sg.args),
                attempt=attempts,
            )
            try:
                go_home(self, index, sg, res)
            except Stopped:
                raise
            except VlaAgentError as e:  # the backend refused a move: fail the attempt, never crash
                status, steps, reason = Status.FAILED, 0, f"moving home: {e}"
            else:
                status, steps, reason = self._execute(index, sg, res)
            total += steps
            if status is Status.DONE or attempts > self.config.max_retries or not can_retry(self, sg):
                out = StepOutcome(sg, status, attempts, total, reason)
                self.events.emit(
                    "subgoal_end",
                    index=index,
                    instruction=sg.instruction,
                    status=status.value,
                    steps=total,
                    attempts=attempts,
                    reason=reason,
                )
                return out
            self.events.emit(
                "retry", index=index, instruction=sg.instruction, attempt=attempts + 1, reason=reason
            )

    def _execute(self, index: int, sg: Subgoal, res: RunResult) -> tuple[Status, int, str]:
        cfg = self.config
        budget = int(get_skill(sg.skill).step_budget * cfg.budget_scale)
        obs = self.backend.observe()
        obs = {**obs, "prompt": sg.instruction}
        self.policy.reset(sg)
        self.detector.reset(sg, obs)
        self.shield.reset(obs)
        steps = 0
        history: list[np.ndarray] = []
        last_status = Status.RUNNING
        verifying = 0
        while True:
            self._check_stop()
            t_pol = time.perf_counter()
            if self.policy.done and steps > 0:
                if verifying >= cfg.verify_steps:
                    return conclude(
                        self, index, sg, obs, steps, "the policy finished but the effects are not seen"
                    )
                verifying += 1
                chunk = np.array([[0, 0, 0.02, 0, 0, 0, self.shield.last_gripper]])  # lift to look
            else:
                try:
                    chunk = np.atleast_2d(np.asarray(self.policy.act(obs), dtype=np.float64))
                except Exception as e:  # dead server, NaN-producing model, ...: hold and fail the subgoal
                    self.backend.stop()
                    msg = f"policy error: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                    self.events.emit("error", index=index, reason=msg)
                    if isinstance(e, PolicyUnavailable):  # no retry or replan can help: end the run
                        raise PolicyUnavailable(msg) from None
                    return Status.FAILED, steps, msg
            issued = self._clock()
            policy_ms = (time.perf_counter() - t_pol) * 1000
            for action in chunk:
                self._check_stop()
                t0 = time.perf_counter()
                result = self.shield.filter(action, obs, issued_at=issued, now=self._clock())
                if result.violations:
                    if result.safety_event and hasattr(self.policy, "interrupt"):
                        self.policy.interrupt()  # chunks planned before the event are void
                    self.events.emit(
                        "shield",
                        index=index,
                        violations=list(result.violations),
                        held=result.held,
                        step=steps,
                    )
                t_shield = time.perf_counter()
                try:
                    self.backend.apply(result.action)
                except VlaAgentError as e:
                    self.events.emit("error", index=index, reason=str(e))
                    self.backend.stop()
                    if isinstance(e, RobotUnavailable):  # no retry or replan can help: end the run
                        raise
                    return Status.FAILED, steps, str(e)
                t_apply = time.perf_counter()
                if self.on_frame is not None:
                    self.on_frame()
                t_frame = time.perf_counter()
                obs = {**self.backend.observe(), "prompt": sg.instruction}
                steps += 1
                res.steps += 1
                verdict = self.detector.check(sg, obs)
                if verdict.status is not last_status:
                    self.events.emit(
                        "verdict",
                        index=index,
                        status=verdict.status.value,
                        confidence=verdict.confidence,
                        reason=verdict.reason,
                        step=steps,
                    )
                    last_status = verdict.status
                self.progress = {
                    "index": index,
                    "instruction": sg.instruction,
                    "step": steps,
                    "budget": budget,
                    "status": verdict.status.value,
                    "confidence": verdict.confidence,
                }
                state = np.asarray(obs[STATE], float)
                history.append(state[:3])
                t_end = time.perf_counter()
                overhead = ((t_shield - t0) + (t_end - t_frame)) * 1000
                res.overhead_ms.append(overhead)
                if self.trace is not None:
                    self.trace.step(
                        index=index,
                        step=steps,
                        action_policy=np.asarray(action, float),
                        action_sent=result.action,
                        violations=list(result.violations),
                        verdict=verdict.status.value,
                        confidence=round(verdict.confidence, 3),
                        state=state,
                        timing_ms={
                            "policy": round(policy_ms, 3),
                            "shield": round((t_shield - t0) * 1000, 3),
                            "backend": round((t_apply - t_shield) * 1000, 3),
                            "overhead": round(overhead + (time.perf_counter() - t_end) * 1000, 3),
                        },
                    )
                    policy_ms = 0.0
                if verdict.status is Status.DONE:
                    return Status.DONE, steps, verdict.reason
                if verdict.status is Status.FAILED:
                    return Status.FAILED, steps, verdict.reason
                if steps >= budget:
                    return conclude(self, index, sg, obs, steps, f"step budget of {budget} used up")
                n = cfg.no_progress_steps
                if len(history) > n and np.ptp(np.array(history[-n:]), axis=0).max() < 0.005:
                    return Status.FAILED, steps, f"no progress in {n} steps"
                if self.policy.done and not verifying:
                    break

    def _clock(self) -> float:
        """The backend's clock (simulated time in a dry run), the one its observations carry."""
        return self.backend.clock()

    def _check_stop(self) -> None:
        if self._stop.is_set():
            self.backend.stop()
            self.events.emit("stopped", reason="emergency stop")
            raise Stopped("emergency stop")
