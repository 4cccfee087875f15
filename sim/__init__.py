"""PyBullet tabletop world: env, catalogue, cameras, ground-truth predicates, video."""

import gymnasium

from vla_agent.sim.catalog import COLORS, KINDS, REGIONS, ObjectSpec, SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv

__all__ = ["ENV_ID", "COLORS", "KINDS", "REGIONS", "EnvConfig", "ObjectSpec", "SceneSpec", "TabletopEnv"]

ENV_ID = "vla_agent/Tabletop-v0"
if ENV_ID not in gymnasium.envs.registry:
    gymnasium.register(ENV_ID, entry_point="vla_agent.sim.env:TabletopEnv")
