"""Skill policies by name (``--policy``): ``vla`` (in-process), ``expert`` (the scripted oracle),
``ws://HOST:PORT`` (a policy server speaking the openpi protocol), and whatever other packages
register under the ``vla_agent.policies`` entry-point group.

A policy factory is ``factory(arg, env, **options) -> SkillPolicy``: ``arg`` is the text after
``name:`` in the spec (the whole URL for ``ws://``), ``env`` the simulator (None on a real robot
without a twin), ``options`` what the session knows (``checkpoint``, ``device``, ``api_key_file``,
``execute``); a factory takes what it needs and ignores the rest.
"""

from __future__ import annotations

from pathlib import Path

from vla_agent.errors import ConfigError
from vla_agent.interfaces import SkillPolicy
from vla_agent.registry import registry
from vla_agent.sim.env import TabletopEnv

POLICIES = registry("policy", "vla_agent.policies")


@POLICIES.register("vla", help="the shipped VLA, in-process (--checkpoint DIR for other weights)")
def _vla(arg: str, env: TabletopEnv | None, checkpoint: Path | None = None, device: str = "cpu", **kw):
    from vla_agent.vla.policy import VLAPolicy

    options = {k: v for k, v in kw.items() if k in ("execute", "quantize", "lora") and v is not None}
    return VLAPolicy(checkpoint, device=device, **options)


@POLICIES.register("expert", help="the scripted expert (reads the simulator's object poses)")
def _expert(arg: str, env: TabletopEnv | None, **_):
    from vla_agent.skills.experts import ExpertPolicy

    return ExpertPolicy(env)


def _remote(
    uri: str,
    env: TabletopEnv | None,
    api_key: str | None = None,
    api_key_file: Path | None = None,
    execute: int | None = None,
    adapter: str | None = None,
    chunks: str = "sync",
    realtime: bool = False,
    simulated: bool | None = None,
    **_,
):
    from vla_agent.vla.auth import resolve_api_key
    from vla_agent.vla.client import RemotePolicy

    if adapter is None and uri.startswith("openvla+"):
        adapter = "openvla-bridge"
    return RemotePolicy(
        uri,
        api_key=resolve_api_key(api_key, api_key_file),
        execute=execute,
        adapter=adapter,
        chunks=chunks,
        realtime=realtime,
        simulated=env is not None if simulated is None else simulated,
        **(
            {
                "open_width": env.robot_spec.max_gripper_width,
                "dt": 1.0 / env.config.control_hz,
                "limits": (env.config.max_translation, env.config.max_rotation),
            }
            if env is not None
            else {}
        ),
    )


POLICIES.register("ws", _remote, form="ws://HOST:PORT", help="a policy server (openpi websocket protocol)")
POLICIES.register("wss", _remote, form="wss://HOST:PORT", help="a policy server over TLS")
POLICIES.register(
    "openvla+http", _remote, form="openvla+http://HOST:PORT", help="an OpenVLA REST server (deploy.py)"
)


@POLICIES.register(
    "standin",
    form="standin:openpi-libero|openvla-bridge[,latency_ms=L]",
    help="a loopback stand-in server of that convention, driven by the scripted expert (try adapters)",
)
def _standin(arg: str, env: TabletopEnv | None, adapter: str | None = None, **options):
    from vla_agent.vla.adapters.standins import start_standin

    if env is None:
        raise ConfigError("a stand-in server is driven by the simulator's expert: it needs the simulator")
    name, _, rest = arg.partition(",")
    if rest and not rest.startswith("latency_ms="):
        raise ConfigError(f"stand-in option {rest!r}: the only one is latency_ms=MILLISECONDS")
    try:
        latency = float(rest.split("=", 1)[1]) if rest else 0.0
    except ValueError:
        raise ConfigError(f"stand-in option {rest!r}: latency_ms takes a number") from None
    server = start_standin(name or "openpi-libero", env, latency_ms=latency)
    policy = _remote(server.uri, env, adapter=adapter or server.adapter, **options)
    policy.standin = server  # lives as long as the policy
    return policy


def make_policy(spec: str, env: TabletopEnv | None, **options):
    """Build the policy named by ``spec``; an unknown name raises with suggestions. A remote
    policy's API key comes from ``api_key``, a key file, ``VLA_AGENT_API_KEY`` or the config file
    (``vla_agent.vla.auth``)."""
    policy = POLICIES.create(spec, env, **options)
    if not isinstance(policy, SkillPolicy):  # a plugin's policy: say what it lacks, before any use
        missing = [m for m in ("reset", "act", "done", "skills") if not hasattr(policy, m)]
        raise ConfigError(f"policy {spec!r} does not implement SkillPolicy (missing: {', '.join(missing)})")
    return policy
