"""Planners by name (``--planner``): ``offline`` (rules, no network), ``llm`` (any LangChain chat
model), and whatever other packages register under the ``vla_agent.planners`` entry-point group.

A planner factory is ``factory(arg, cfg) -> Planner`` (``cfg``: the session's ``AgentConfig``,
for the LLM options); the planner implements ``vla_agent.interfaces.Planner``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vla_agent.agent.planning.offline import OfflinePlanner
from vla_agent.errors import VlaAgentError
from vla_agent.registry import registry

if TYPE_CHECKING:
    from vla_agent.agent.core.session import AgentConfig

PLANNERS = registry("planner", "vla_agent.planners")


@PLANNERS.register("offline", help="rules for everyday tabletop language; no network (default)")
def _offline(arg: str, cfg: AgentConfig):
    return OfflinePlanner()


@PLANNERS.register("llm", help="any LangChain chat model (--llm-model, --llm-base-url), validated")
def _llm(arg: str, cfg: AgentConfig):
    from vla_agent.agent.planning.llm import LLMPlanner

    # a local server on a CPU answers in tens of seconds (a 1.5B model: ~33 s); a cloud one in a few
    timeout = cfg.llm_timeout or (120.0 if cfg.llm_base_url else 30.0)
    planner = LLMPlanner(
        cfg.llm_model,
        base_url=cfg.llm_base_url,
        timeout=timeout,
        fallback=OfflinePlanner() if cfg.llm_fallback else None,
    )
    if cfg.llm_warm_up:
        planner.warm_up()  # the first request of a local server loads its model: not the user's
    return planner


class HybridPlanner:
    """The offline planner first (milliseconds, no network); a command it cannot read or ground
    goes to the LLM, and an LLM failure ends in the offline planner's refusal. Questions and
    safety refusals of the offline planner stand. Each plan says which planner produced it."""

    name = "hybrid"

    def __init__(self, offline: OfflinePlanner, llm):
        self.offline, self.llm = offline, llm

    def plan(self, command: str, scene):
        return self._either(lambda p: p.plan(command, scene))

    def replan(self, command: str, scene, history):
        return self._either(lambda p: p.replan(command, scene, history))

    def _either(self, call):
        from vla_agent.agent.planning.plan import PlanError

        try:
            return call(self.offline)
        except PlanError as e:
            why = str(e)
        try:
            plan = call(self.llm)
        except VlaAgentError as e:
            raise PlanError([f"{why} (the LLM could not plan it either: {e})"]) from None
        plan.fallback = plan.fallback or f"the offline planner could not: {why}"
        return plan


@PLANNERS.register("hybrid", help="offline first; what it cannot read goes to the LLM (--llm-model, ...)")
def _hybrid(arg: str, cfg: AgentConfig):
    return HybridPlanner(OfflinePlanner(), _llm(arg, cfg.model_copy(update={"llm_fallback": False})))


def make_planner(cfg: AgentConfig):
    """The planner ``cfg.planner`` names; an unknown name raises with suggestions."""
    return PLANNERS.create(cfg.planner, cfg)
