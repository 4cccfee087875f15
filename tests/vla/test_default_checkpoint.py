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
    assert policy.done_prob < 0.5  # a pick that has not started is not done


def test_unknown_policy_suggests():
    with pytest.raises(ConfigError, match=r"unknown policy 'vlaa' \(did you mean 'vla'\?\)"):
        make_policy("vlaa", None)


@pytest.mark.gpu
def test_the_shipped_vla_acts_the_same_on_cuda(env):
    """On a CUDA machine (``pytest -m gpu``) the shipped VLA's actions match the CPU's."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    obs, _ = env.reset(seed=3, options={"scene": "red block, blue bowl"})
    sg = get_skill("pick").subgoal({"obj": "red block"})
    chunks = []
    for device in ("cpu", "cuda"):
        policy = make_policy("vla", env, device=device)
        policy.reset(sg)
        chunks.append(policy.act(obs))
    np.testing.assert_allclose(chunks[0], chunks[1], atol=2e-3)
