import asyncio
import socket
import time
import urllib.request

import msgpack
import numpy as np
import pytest

from vla_agent.errors import ConfigError
from vla_agent.skills.library import get_skill
from vla_agent.types import IMAGE, PROMPT, STATE, WRIST_IMAGE
from vla_agent.vla import msgpack_numpy
from vla_agent.vla.checkpoint import save_checkpoint
from vla_agent.vla.client import PolicyServerError, RemotePolicy, WebsocketClientPolicy
from vla_agent.vla.demos import load_dataset
from vla_agent.vla.model import VLAConfig, VLANet
from vla_agent.vla.policy import VLAPolicy
from vla_agent.vla.server import BackgroundServer, PolicyService, ServeConfig, serve_async


@pytest.fixture(scope="module")
def checkpoint(tiny_dataset, tmp_path_factory):
    d = load_dataset(tiny_dataset[0])
    model = VLANet(VLAConfig(image_size=64, channels=(8, 16, 16, 16), hidden=64)).eval()
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "ck", model, d.stats), d


@pytest.fixture(scope="module")
def server(checkpoint):
    with BackgroundServer(ServeConfig(checkpoint=checkpoint[0], port=0)) as srv:
        yield srv


def _obs(d, i=0, prompt="pick up the red block"):
    return {IMAGE: d.images[i], WRIST_IMAGE: d.wrist[i], STATE: d.states[i], PROMPT: prompt}


def test_msgpack_numpy_round_trip_and_refuses_objects():
    x = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.int64(3), "s": "text"}
    y = msgpack_numpy.unpackb(msgpack_numpy.packb(x))
    np.testing.assert_array_equal(y["a"], x["a"])
    assert y["b"] == 3 and y["s"] == "text"
    with pytest.raises(TypeError, match="refusing"):
        msgpack_numpy.packb({"o": np.array([object()])})
    # string keys (as some clients send) decode too
    raw = msgpack.packb({"__ndarray__": True, "data": b"\x01\x02", "dtype": "|u1", "shape": [2]})
    np.testing.assert_array_equal(msgpack_numpy.unpackb(raw), [1, 2])


def test_loopback_matches_in_process(server, checkpoint):
    path, d = checkpoint
    client = WebsocketClientPolicy(f"ws://127.0.0.1:{server.port}")
    assert client.metadata["action_horizon"] == 4 and client.metadata["action_dim"] == 7
    local = VLAPolicy(path)
    local.reset(get_skill("pick").subgoal({"obj": "red block"}))
    for i in (0, 5):
        reply = client.infer(_obs(d, i))
        expected = local.infer(d.images[i], d.states[i], d.wrist[i])
        np.testing.assert_allclose(reply["actions"], expected.actions, atol=1e-5)
        np.testing.assert_allclose(reply["gripper_prob"], expected.gripper_prob, atol=1e-5)
        assert reply["done_prob"] == pytest.approx(expected.done_prob, abs=1e-5)
        assert reply["server_timing"]["infer_ms"] > 0
    client.close()


def test_remote_policy_acts_like_the_in_process_policy(server, checkpoint):
    # Several chunks, so the start memory (kept by the client, sent back as object_start) is used.
    path, d = checkpoint
    subgoal = get_skill("pick").subgoal({"obj": "red block"})
    remote, local = RemotePolicy(f"ws://127.0.0.1:{server.port}", execute=2), VLAPolicy(path, execute=2)
    remote.reset(subgoal)
    local.reset(subgoal)
    for i in range(5):
        obs = {IMAGE: d.images[i], WRIST_IMAGE: d.wrist[i], STATE: d.states[i]}
        want = local.act(obs)
        np.testing.assert_allclose(np.concatenate([remote.act(obs), remote.act(obs)]), want, atol=1e-5)
    assert local.memory.start is not None
    np.testing.assert_allclose(remote.memory.start, local.memory.start, atol=1e-5)


def test_start_memory_input_changes_the_prediction(checkpoint):
    path, d = checkpoint
    policy = VLAPolicy(path)
    policy.reset(get_skill("push").subgoal({"obj": "red block", "direction": "left"}))
    now = policy.infer(d.images[0], d.states[0], d.wrist[0])
    same = policy.infer(d.images[0], d.states[0], d.wrist[0], now.object_position)
    moved = policy.infer(d.images[0], d.states[0], d.wrist[0], now.object_position + [0.1, 0.0, 0.0])
    np.testing.assert_allclose(same.actions, now.actions, atol=1e-5)  # None means "where it is now"
    assert not np.allclose(moved.actions[:, :6], now.actions[:, :6], atol=1e-6)


def test_malformed_request_gets_error_and_server_keeps_serving(server, checkpoint):
    _, d = checkpoint
    a = WebsocketClientPolicy(f"ws://127.0.0.1:{server.port}")
    b = WebsocketClientPolicy(f"ws://127.0.0.1:{server.port}")
    with pytest.raises(PolicyServerError, match="lacks"):
        a.infer({PROMPT: "pick up the red block"})
    with pytest.raises(PolicyServerError, match="uint8 array"):
        a.infer({**_obs(d), IMAGE: np.zeros((3, 3), np.float32)})
    with pytest.raises(PolicyServerError, match="object_start"):
        a.infer({**_obs(d), "object_start": np.array([np.nan, 0.0, 0.0])})
    a.ws.send(b"\xc1 not msgpack")
    assert "bad request" in a.ws.recv(timeout=5)
    assert a.infer(_obs(d))["actions"].shape == (4, 7)  # same connection still works
    assert b.infer(_obs(d))["actions"].shape == (4, 7)  # and other clients too
    a.close()
    b.close()


def test_healthz(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5) as r:
        assert r.status == 200


def test_dead_server_fails_fast():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(PolicyServerError, match="unreachable|refused"):
        WebsocketClientPolicy(f"ws://127.0.0.1:{port}", connect_timeout_s=2)
    assert time.perf_counter() - t0 < 3


def test_silent_server_times_out():
    """A TCP listener that never answers the handshake: the connect timeout bounds the wait."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        t0 = time.perf_counter()
        with pytest.raises(PolicyServerError):
            WebsocketClientPolicy(f"ws://127.0.0.1:{s.getsockname()[1]}", connect_timeout_s=1)
        assert time.perf_counter() - t0 < 3


def test_api_key_required_beyond_loopback_and_checked(checkpoint):
    with pytest.raises(ConfigError, match="needs an API key"):
        asyncio.run(serve_async(ServeConfig(host="0.0.0.0", port=0), service=object()))
    path, d = checkpoint
    service = PolicyService(path, "cpu")
    with BackgroundServer(ServeConfig(port=0, api_key="s3cret"), service) as srv:
        with pytest.raises(PolicyServerError, match="refused"):
            WebsocketClientPolicy(f"ws://127.0.0.1:{srv.port}")
        client = WebsocketClientPolicy(f"ws://127.0.0.1:{srv.port}", api_key="s3cret")
        assert client.infer(_obs(d))["actions"].shape == (4, 7)
        client.close()


def test_remote_policy_broker_drops_queue_on_new_subgoal(server, checkpoint):
    _, d = checkpoint
    policy = RemotePolicy(f"ws://127.0.0.1:{server.port}", execute=3)
    policy.reset(get_skill("pick").subgoal({"obj": "red block"}))
    first = policy.act({IMAGE: d.images[0], WRIST_IMAGE: d.wrist[0], STATE: d.states[0]})
    assert first.shape == (1, 7) and len(policy.stream.queue) == 2 and len(policy.latencies_ms) == 1
    policy.reset(get_skill("pick").subgoal({"obj": "blue block"}))
    assert len(policy.stream.queue) == 0
    policy.act({IMAGE: d.images[0], WRIST_IMAGE: d.wrist[0], STATE: d.states[0]})
    assert len(policy.latencies_ms) == 2


def _openpi_broker_step(reply, step: int):
    """openpi_client.ActionChunkBroker's rule (action_chunk_broker.py): every np.ndarray leaf of
    the reply is indexed by the step in the chunk; lists, dicts and scalars are walked or kept."""
    if isinstance(reply, np.ndarray):
        return reply[step, ...]
    if isinstance(reply, dict):
        return {k: _openpi_broker_step(v, step) for k, v in reply.items()}
    if isinstance(reply, (list, tuple)):
        return type(reply)(_openpi_broker_step(v, step) for v in reply)
    return reply


def test_replies_survive_openpis_action_chunk_broker(server, checkpoint):
    _, d = checkpoint
    client = WebsocketClientPolicy(f"ws://127.0.0.1:{server.port}")
    horizon = client.metadata["action_horizon"]
    reply = client.infer(_obs(d))
    for step in range(horizon):  # the broker hands out one step per call, up to the horizon
        out = _openpi_broker_step(reply, step)
        np.testing.assert_array_equal(out["actions"], reply["actions"][step])
        assert len(out["object_position"]) == 3
    client.close()


def test_other_camera_sizes_are_resized_with_padding_as_openpi_does(server, checkpoint):
    """The metadata says what the model sees (state dim, each camera's shape and dtype); images of
    other sizes, CHW or float in [0, 1] are resized with padding instead of refused."""
    from vla_agent.vla.server import as_model_image

    _, d = checkpoint
    client = WebsocketClientPolicy(f"ws://127.0.0.1:{server.port}")
    meta = client.metadata
    size = meta["image_shapes"][IMAGE][0]
    assert meta["state_dim"] == 7 and meta["image_shapes"][IMAGE] == [size, size, 3]
    assert meta["image_dtype"] == "uint8"
    img = d.images[0]
    big = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)  # the same view at twice the resolution
    back = as_model_image(IMAGE, big, size)
    assert np.abs(back.astype(int) - img.astype(int)).mean() < 4  # the same picture
    wide = np.full((30, 60, 3), 200, np.uint8)  # 2:1: fitted to the width, black bands above and below
    fitted = as_model_image(IMAGE, wide, 32)
    assert fitted[8:24].min() == 200 and fitted[:7].max() == 0 and fitted[25:].max() == 0
    chw_float = np.transpose(big.astype(np.float32) / 255, (2, 0, 1))
    for image in (big, chw_float):
        reply = client.infer({**_obs(d), IMAGE: image})
        assert reply["actions"].shape == (meta["action_horizon"], 7)
    client.close()
