"""PyBullet tabletop world: env, catalogue, cameras, ground-truth predicates, video."""

import gymnasium

from vla_agent.sim.catalog import COLORS, KINDS, REGIONS, ObjectSpec, SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv

__all__ = ["ENV_ID", "COLORS", "KINDS", "REGIONS", "EnvConfig", "ObjectSpec", "SceneSpec", "TabletopEnv"]

ENV_ID = "vla_agent/Tabletop-v0"
# The horizon RL libraries read from the spec (the env itself truncates at
# ``EnvConfig.max_episode_steps`` too, the same 400 by default). Vectorised: ``SyncVectorEnv``, or
# ``AsyncVectorEnv(..., shared_memory=False)``: gymnasium's shared memory turns a ``Text`` space
# (the ``prompt``) into '0' characters.
if ENV_ID not in gymnasium.envs.registry:
    gymnasium.register(
        ENV_ID, entry_point="vla_agent.sim.env:TabletopEnv", max_episode_steps=EnvConfig().max_episode_steps
    )
