"""Planners by name (``--planner``): ``offline`` (rules, no network), ``llm`` (any LangChain chat
model), and whatever other packages register under the ``vla_agent.planners`` entry-point group.

A planner factory is ``factory(arg, cfg) -> Planner`` (``cfg``: the session's ``AgentConfig``,
for the LLM options); the planner implements ``vla_agent.interfaces.Planner``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vla_agent.agent.planning.offline import OfflinePlanner
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

    return LLMPlanner(
        cfg.llm_model,
        base_url=cfg.llm_base_url,
        timeout=cfg.llm_timeout,
        fallback=OfflinePlanner() if cfg.llm_fallback else None,
    )


def make_planner(cfg: AgentConfig):
    """The planner ``cfg.planner`` names; an unknown name raises with suggestions."""
    return PLANNERS.create(cfg.planner, cfg)
