"""openpi's own client drives ``vla-agent serve`` for a whole episode: ``openpi_client``'s
``WebsocketClientPolicy`` wrapped in its ``ActionChunkBroker``, from PyPI in a venv of its own (it
pins numpy < 2), no code of it copied here. The simulator runs in this process and hands each
observation to the openpi process through a pipe; the broker answers one action per step from the
server's chunks, exactly as an openpi robot runtime would use it.

Slow (it builds a venv from PyPI): ``pytest -m slow tests/vla/test_openpi_interop.py``."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.skills.library import get_skill
from vla_agent.types import IMAGE, PROMPT, STATE, WRIST_IMAGE
from vla_agent.vla import msgpack_numpy
from vla_agent.vla.server import BackgroundServer, ServeConfig

pytestmark = pytest.mark.slow

DRIVER = textwrap.dedent(
    """
    import struct, sys
    from openpi_client import action_chunk_broker, msgpack_numpy, websocket_client_policy

    policy = websocket_client_policy.WebsocketClientPolicy(host="127.0.0.1", port=int(sys.argv[1]))
    horizon = policy.get_server_metadata()["action_horizon"]
    broker = action_chunk_broker.ActionChunkBroker(policy, action_horizon=horizon)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = inp.read(4)
        if len(head) < 4:
            break
        obs = msgpack_numpy.unpackb(inp.read(struct.unpack("<I", head)[0]))
        step = broker.infer(obs)
        reply = msgpack_numpy.packb({"action": step["actions"], "gripper_prob": step["gripper_prob"],
                                     "done_prob": step["done_prob"], "horizon": horizon})
        out.write(struct.pack("<I", len(reply)) + reply)
        out.flush()
    """
)


@pytest.fixture(scope="module")
def openpi_python(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("openpi") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "openpi-client", "typing_extensions"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0:
        pytest.skip(f"openpi-client could not be installed from PyPI: {r.stderr.strip().splitlines()[-1:]}")
    return py


def test_openpis_client_and_action_chunk_broker_run_a_whole_episode(openpi_python, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = TabletopEnv(EnvConfig())
    sg = get_skill("pick").subgoal({"obj": "red block"})
    obs, _ = env.reset(seed=1000003, options={"scene": "red block, blue bowl, green block"})
    with BackgroundServer(ServeConfig(port=0)) as server:
        proc = subprocess.Popen(
            [str(openpi_python), str(driver), str(server.port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        steps, done, horizon = 0, False, 0
        try:
            while steps < get_skill("pick").step_budget and not done:
                request = {k: obs[k] for k in (IMAGE, WRIST_IMAGE, STATE)} | {PROMPT: sg.instruction}
                packed = msgpack_numpy.packb(request)
                proc.stdin.write(struct.pack("<I", len(packed)) + packed)
                proc.stdin.flush()
                size = struct.unpack("<I", proc.stdout.read(4))[0]
                reply = msgpack_numpy.unpackb(proc.stdout.read(size))
                action = np.asarray(reply["action"], np.float64)
                horizon = int(reply["horizon"])
                assert action.shape == (7,) and np.all(np.isfinite(action))
                action = np.clip(action, -env.action_limits, env.action_limits)
                action[6] = 1.0 if float(reply["gripper_prob"]) >= 0.5 else -1.0  # P(open), per step
                obs, *_ = env.step(action)
                steps += 1
                done = float(reply["done_prob"]) >= 0.5 and steps >= 12
            picked = env.evaluate("holding(red block)")
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)
            env.close()
    print(f"openpi broker episode: {steps} steps, horizon {horizon}, picked: {picked}")
    assert proc.returncode == 0
    assert horizon > 1 and steps >= horizon  # several chunks, each handed out step by step
    assert picked  # the shipped VLA, through openpi's broker (all 4 actions of each chunk): done
