"""The VLA's inputs and outputs do not depend on torch's thread count, so an episode's record is
the same on any machine and in a serial run as on a Ray worker (one thread each)."""

import subprocess
import sys

import numpy as np

# A fresh process per thread count: with torch 2.13 the count in force at a process's first
# product is the one that counts (switching it later changed nothing), so one process cannot show
# the difference.
SCRIPT = """
import sys
import numpy as np
import torch
torch.set_num_threads(int(sys.argv[1]))
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.skills.library import get_skill
from vla_agent.types import IMAGE, STATE, WRIST_IMAGE
from vla_agent.vla.policy import VLAPolicy
from vla_agent.vla.text import text_encoder

features, _ = text_encoder().encode_tokens(["pick the cyan block up", "nudge the orange block backward"])
env, policy, out = TabletopEnv(EnvConfig()), VLAPolicy(), [features.ravel()]
for seed in range(2):
    obs, _ = env.reset(seed=seed)
    policy.reset(get_skill("pick").subgoal({"obj": "red block"}))
    pred = policy.infer(obs[IMAGE], obs[STATE], obs[WRIST_IMAGE])
    out += [pred.actions.ravel(), pred.gripper_prob, [pred.done_prob]]
np.save(sys.argv[2], np.concatenate(out))
"""


def _outputs(threads: int, tmp_path) -> np.ndarray:
    path = tmp_path / f"{threads}.npy"
    subprocess.run([sys.executable, "-c", SCRIPT, str(threads), str(path)], check=True, capture_output=True)
    return np.load(path)


def test_token_features_and_chunks_are_the_same_on_one_thread_and_on_two(tmp_path):
    """MiniLM's products over a sentence's tokens sum in another order on several threads: without
    the encoder's one-thread rule the features' last bits differ, and a borderline episode with them."""
    assert np.array_equal(_outputs(1, tmp_path), _outputs(2, tmp_path))
