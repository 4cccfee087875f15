"""``--policy`` resolution: ``vla`` (in-process), ``expert`` (scripted oracle), and later
``ws://host:port`` (a remote policy server). A registry, not an if/elif chain."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vla_agent.errors import unknown
from vla_agent.sim.env import TabletopEnv

PolicyFactory = Callable[..., object]


def _vla(env: TabletopEnv, checkpoint: Path | None = None, device: str = "cpu", **kw):
    from vla_agent.vla.policy import VLAPolicy

    return VLAPolicy(checkpoint, device=device, **kw)


def _expert(env: TabletopEnv, **_):
    from vla_agent.skills.experts import ExpertPolicy

    return ExpertPolicy(env)


POLICIES: dict[str, PolicyFactory] = {"vla": _vla, "expert": _expert}


def _remote(
    env: TabletopEnv,
    uri: str,
    api_key: str | None = None,
    api_key_file: Path | None = None,
    execute: int = 2,
    **_,
):
    from vla_agent.vla.auth import resolve_api_key
    from vla_agent.vla.client import RemotePolicy

    return RemotePolicy(uri, api_key=resolve_api_key(api_key, api_key_file), execute=execute)


def make_policy(spec: str, env: TabletopEnv, **kwargs):
    """Build the policy named by ``spec`` (``vla``, ``expert`` or ``ws://host:port``); unknown
    names raise with suggestions. A remote policy's API key comes from ``api_key``, a key file,
    ``VLA_AGENT_API_KEY`` or the config file (``vla_agent.vla.auth``)."""
    if spec.startswith(("ws://", "wss://")):
        return _remote(env, spec, **kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("api_key", "api_key_file")}  # remote only
    factory = POLICIES.get(spec)
    if factory is None:
        raise unknown("policy", spec, list(POLICIES) + ["ws://HOST:PORT"])
    return factory(env, **kwargs)
