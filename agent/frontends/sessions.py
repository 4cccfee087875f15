"""One way for every front-end to open its session: the simulator, or a real arm behind a camera
(``real``), both ``AgentSession``s."""

from __future__ import annotations

from collections.abc import Callable

from vla_agent.agent.core.session import AgentConfig, AgentSession, Session


def open_session(
    cfg: AgentConfig,
    real=None,
    listeners: list[Callable] | None = None,
    confirm: Callable[[str], bool] | None = None,
) -> AgentSession:
    """A simulated session, or with ``real`` (a ``RealConfig``) a session on the real arm, its
    plans gated by the shadow run and ``confirm`` (or the front-end's own approval)."""
    if real is None:
        return Session(cfg, listeners)
    from vla_agent.agent.real.session import RealSession

    return RealSession(cfg, real, confirm=confirm, listeners=listeners)
