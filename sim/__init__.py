"""PyBullet tabletop world: env, catalogue, cameras, ground-truth predicates, video."""

from vla_agent.sim.catalog import COLORS, KINDS, REGIONS, ObjectSpec, SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv

__all__ = ["COLORS", "KINDS", "REGIONS", "EnvConfig", "ObjectSpec", "SceneSpec", "TabletopEnv"]
