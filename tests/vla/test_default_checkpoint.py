"""The shipped checkpoint loads offline and yields valid actions (its success rate is measured by
``vla-agent bench skills``, not here)."""

import numpy as np
import pytest

from vla_agent.agent.core.policies import make_policy
from vla_agent.errors import ConfigError
from vla_agent.skills.library import get_skill
from vla_agent.vla.checkpoint import DEFAULT_CHECKPOINT


def test_default_checkpoint_is_shipped_small_and_valid(env):
    files = {p.name: p.stat().st_size for p in DEFAULT_CHECKPOINT.iterdir()}
    assert {"model.safetensors", "config.json", "stats.json"} <= set(files)
    assert sum(files.values()) < 30 * 2**20
    policy = make_policy("vla", env)
    obs, _ = env.reset(seed=3, options={"scene": "red block, blue bowl"})
    policy.reset(get_skill("pick").subgoal({"obj": "red block"}))
    chunk = policy.act(obs)
    assert chunk.shape == (2, 7) and np.all(np.isfinite(chunk))
    env.validate_action(chunk[0])  # inside the action space
    assert 0.0 <= policy.done_prob <= 1.0


def test_unknown_policy_suggests():
    with pytest.raises(ConfigError, match=r"unknown policy 'vlaa' \(did you mean 'vla'\?\)"):
        make_policy("vlaa", None)
