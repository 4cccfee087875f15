"""Quantized inference of the shipped VLA: int8 on CPU, fp16 on CUDA (gpu-marked)."""

import numpy as np
import pytest
import torch

from vla_agent.errors import ConfigError
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.skills.library import get_skill
from vla_agent.types import IMAGE, STATE, WRIST_IMAGE
from vla_agent.vla.policy import VLAPolicy


@pytest.fixture(scope="module")
def observation():
    env = TabletopEnv(EnvConfig())
    obs, _ = env.reset(seed=3)
    env.close()
    return obs


def _chunk(policy: VLAPolicy, obs) -> np.ndarray:
    policy.reset(get_skill("pick").subgoal({"obj": "red block"}))
    return policy.infer(obs[IMAGE], obs[STATE], obs[WRIST_IMAGE]).actions


def test_int8_quantizes_the_linear_layers_and_stays_close(observation):
    full, int8 = VLAPolicy(), VLAPolicy(quantize="int8")
    assert any("quantized" in type(m).__module__ for m in int8.model.modules())
    a, b = _chunk(full, observation), _chunk(int8, observation)
    assert np.abs(a[:, :6] - b[:, :6]).max() < 0.01  # metres / radians per tick (limits 0.04 / 0.25)
    assert (a[:, 6] == b[:, 6]).all()


def test_precisions_that_do_not_fit_the_device_are_refused():
    with pytest.raises(ConfigError, match="needs --device cuda"):
        VLAPolicy(quantize="fp16")
    with pytest.raises(ConfigError, match="none, int8 or fp16"):
        VLAPolicy(quantize="int4")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_fp16_on_cuda_stays_close(observation):
    a = _chunk(VLAPolicy(device="cuda"), observation)
    b = _chunk(VLAPolicy(device="cuda", quantize="fp16"), observation)
    assert np.abs(a[:, :6] - b[:, :6]).max() < 0.01


def test_the_server_serves_an_int8_model_with_a_lora_adapter(observation):
    from vla_agent.vla.client import RemotePolicy
    from vla_agent.vla.server import BackgroundServer, ServeConfig

    with BackgroundServer(ServeConfig(port=0, quantize="int8", lora="place_beside")) as srv:
        policy = RemotePolicy(f"ws://127.0.0.1:{srv.port}")
        policy.reset(get_skill("pick").subgoal({"obj": "red block"}))
        action = policy.act(observation)
        policy.close()
    assert action.shape == (1, 7) and np.all(np.abs(action[0, :3]) <= 0.04)
