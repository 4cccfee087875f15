"""The executor's configuration and what a run returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from vla_agent.agent.planning.plan import Plan
from vla_agent.errors import VlaAgentError
from vla_agent.types import Status, StepOutcome


class ExecutorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_retries: int = Field(1, ge=0, description="extra attempts of a failed subgoal")
    max_replans: int = Field(2, ge=0, description="new plans after a subgoal fails for good")
    budget_scale: float = Field(1.0, gt=0, description="multiplies each skill's step budget")
    no_progress_steps: int = Field(30, ge=5, description="steps without hand motion that count as stuck")
    verify_steps: int = Field(6, ge=0, description="steps lifting the hand to look when the policy ends")
    home: bool = Field(
        True,
        description="before a subgoal that needs an empty hand (pick, push), move the arm back to the "
        "pose it had at begin() with the gripper open: the pose skills start from in their training",
    )
    home_steps: int = Field(40, ge=1, description="most control steps the move home may take")


@dataclass
class RunResult:
    command: str
    status: str  # "success" | "failed" | "refused" | "stopped" | "error"
    plan: Plan | None = None
    outcomes: list[StepOutcome] = field(default_factory=list)
    reason: str = ""
    steps: int = 0
    replans: int = 0
    wall_s: float = 0.0
    overhead_ms: list[float] = field(default_factory=list)
    interventions: int = 0  # shield interventions (changed or held actions) during the run
    holds: int = 0  # of which the shield held the arm still

    @property
    def completed(self) -> int:
        """Subgoals that ended done, in order, before the first failure."""
        n = 0
        for o in self.outcomes:
            if o.status is not Status.DONE:
                break
            n += 1
        return n

    def tally(self) -> str:
        """The run in one line: subgoals done, retries, replans, shield interventions, wall time."""
        done = sum(o.status is Status.DONE for o in self.outcomes)
        retries = sum(max(0, o.attempts - 1) for o in self.outcomes)
        return (
            f"{self.status}: {done}/{len(self.outcomes)} subgoals done, {retries} retries, {self.replans} "
            f"replans, {self.interventions} shield interventions ({self.holds} holds), {self.wall_s:.1f} s"
        )


class Stopped(VlaAgentError):
    """The e-stop was pressed."""
