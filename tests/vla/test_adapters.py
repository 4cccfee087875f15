"""Policy adapters: the conventions of hosted VLAs, proved against stand-in servers that speak
each project's protocol, and by the arm failing when the adapter is wrong."""

import json

import numpy as np
import pytest

from vla_agent.agent.core.session import AgentConfig, Session
from vla_agent.errors import ConfigError
from vla_agent.vla.adapters import ADAPTERS, load_adapter
from vla_agent.vla.adapters.convention import (
    axisangle_to_matrix,
    decode,
    encode,
    encode_actions,
    euler_to_matrix,
    matrix_to_axisangle,
    matrix_to_euler,
    resize_with_pad,
)

SCENE = "red block, blue bowl, green block"
COMMAND = "put the red block in the blue bowl"  # two subgoals: pick, place


def _run(policy: str, adapter: str | None = None, **cfg) -> tuple[dict, Session]:
    session = Session(AgentConfig(scene=SCENE, policy=policy, adapter=adapter, video=False, **cfg))
    session.reset()
    return session.run(COMMAND), session


def test_rotations_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(200):
        rpy = rng.uniform([-np.pi, -1.4, -np.pi], [np.pi, 1.4, np.pi])
        R = euler_to_matrix(rpy)
        assert np.allclose(euler_to_matrix(matrix_to_euler(R)), R, atol=1e-9)
        assert np.allclose(axisangle_to_matrix(matrix_to_axisangle(R)), R, atol=1e-6)
    half_turn = euler_to_matrix([np.pi, 0, 0])  # the tool pointing down in robosuite's frame
    assert np.isclose(np.linalg.norm(matrix_to_axisangle(half_turn)), np.pi)


@pytest.mark.parametrize("name", ["vla-agent", "openpi-libero", "openvla-bridge"])
def test_encoding_then_decoding_gives_our_actions_back(name):
    cfg, rng = load_adapter(name), np.random.default_rng(1)
    for _ in range(100):
        state = np.concatenate([rng.uniform(-0.5, 0.5, 3), rng.uniform(-0.5, 0.5, 3), [0.05]])
        ours = np.concatenate(
            [rng.uniform(-0.04, 0.04, 3), rng.uniform(-0.25, 0.25, 3), [rng.choice([-1, 1])]]
        )
        theirs = encode_actions(cfg, np.repeat(ours[None], 4, axis=0), state)
        reply = {"actions": theirs} if cfg.actions_key else theirs[0]
        chunk = decode(cfg, reply, state)
        assert np.allclose(chunk.actions[0], ours, atol=1e-9)
        assert chunk.p_open[0] == (ours[6] > 0)


def test_presets_follow_the_projects_conventions():
    libero = load_adapter("openpi-libero")
    # robosuite OSC_POSE at 20 Hz: 1.0 = 5 cm per step; LIBERO's gripper -1 = open
    action = np.array([[1.0, 0, 0, 0, 0, 0, -1.0]] * 2)
    chunk = decode(libero, {"actions": action}, np.array([0.4, 0, 0.2, 0, 0, 0, 0.08]))
    assert chunk.actions.shape == (1, 7) and np.isclose(chunk.actions[0, 0], 0.10)  # two steps, one tick
    assert chunk.actions[0, 6] == 1.0  # open
    bridge = load_adapter("openvla-bridge")
    one = decode(bridge, np.array([0.02, 0, 0, 0, 0, 0.1, 0.0]), np.zeros(7))  # 5 Hz, 0 = closed
    assert (
        one.actions.shape == (2, 7)
        and np.allclose(one.actions[:, 0], 0.01)
        and (one.actions[:, 6] == -1).all()
    )
    obs = {
        "observation/image": np.arange(128 * 128 * 3, dtype=np.uint8).reshape(128, 128, 3),
        "observation/wrist_image": np.zeros((64, 64, 3), np.uint8),
        "observation/state": np.array([0.4, 0.1, 0.2, 0.0, 0.0, 0.5, 0.08], np.float32),
    }
    req = encode(libero, obs, "pick up the red block")
    assert set(req) == {"observation/image", "observation/wrist_image", "observation/state", "prompt"}
    assert req["observation/image"].shape == (224, 224, 3) and req["observation/image"].dtype == np.uint8
    assert np.array_equal(
        req["observation/image"], resize_with_pad(obs["observation/image"][::-1, ::-1], 224)
    )
    assert np.allclose(req["observation/state"], [0.4, 0.1, 0.2, 0, 0, 0.5, 0.04, -0.04], atol=1e-6)
    req = encode(bridge, obs, "pick up the red block")
    assert set(req) == {"image", "instruction", "unnorm_key"} and req["unnorm_key"] == "bridge_orig"


def test_resize_with_pad_keeps_the_aspect_and_pads_with_zeros():
    img = np.full((100, 200, 3), 255, np.uint8)
    out = resize_with_pad(img, 224)
    assert out.shape == (224, 224, 3)
    assert (out[:50] == 0).all() and (out[-50:] == 0).all() and (out[60:160] == 255).all()


def test_adapter_specs_overrides_files_and_errors(tmp_path):
    flipped = load_adapter("openpi-libero:gripper_open=1,gripper_closed=-1")
    assert (flipped.gripper_open, flipped.gripper_closed, flipped.image_size) == (1, -1, 224)
    path = tmp_path / "mine.yaml"
    path.write_text("preset: openvla-bridge\nextra: {unnorm_key: my_robot}\ncontrol_hz: 10\n")
    mine = load_adapter(str(path))
    assert (
        mine.name == "mine" and mine.extra == {"unnorm_key": "my_robot"} and mine.transport == "openvla-rest"
    )
    with pytest.raises(ConfigError, match="did you mean 'openpi-libero'"):
        load_adapter("openpi-libro")
    with pytest.raises(ConfigError, match="gripper_sign"):
        load_adapter("openpi-libero:gripper_sign=1")
    with pytest.raises(ConfigError, match="control_hz"):
        load_adapter("openpi-libero:control_hz=15")
    with pytest.raises(ConfigError, match="not found"):
        load_adapter(str(tmp_path / "missing.yaml"))
    assert "openvla-bridge" in ADAPTERS.names()


def test_our_json_numpy_codec_matches_the_real_package():
    json_numpy = pytest.importorskip("json_numpy")
    from vla_agent.vla.adapters.rest import dumps, loads

    payload = {
        "image": np.arange(12, dtype=np.uint8).reshape(2, 2, 3),
        "instruction": "go",
        "x": np.float32(2.5),
    }
    theirs = json_numpy.loads(dumps(payload))
    assert np.array_equal(theirs["image"], payload["image"]) and theirs["image"].dtype == np.uint8
    assert theirs["x"] == np.float32(2.5)
    action = np.linspace(-1, 1, 7)
    assert np.array_equal(loads(json_numpy.dumps(action)), action)
    assert loads(json.dumps("error")) == "error"


@pytest.mark.parametrize("standin", ["openpi-libero", "openvla-bridge"])
def test_a_command_completes_through_each_stand_in_and_its_preset(standin):
    pytest.importorskip("json_numpy")
    result, session = _run(f"standin:{standin}")
    assert result["status"] == "success", result.get("reason")
    assert session.evaluate("in(red block, blue bowl)")
    assert session.executor.policy.standin.requests > 5  # the actions came through the server


def test_a_flipped_gripper_convention_visibly_fails():
    result, session = _run(
        "standin:openpi-libero", "openpi-libero:gripper_open=1,gripper_closed=-1", max_replans=0
    )
    assert result["status"] != "success"
    assert not session.evaluate("in(red block, blue bowl)")


def test_wrong_inputs_are_refused_by_the_server_and_nothing_moves():
    result, session = _run("standin:openpi-libero", "openpi-libero:rotate_180=false")
    assert result["status"] == "error" and "not rotated 180 degrees" in result["reason"]
    result, session = _run("standin:openpi-libero", "vla-agent")
    assert result["status"] == "error" and "(224, 224, 3)" in result["reason"]


def test_async_chunks_through_a_slow_server_idle_less_and_still_complete():
    outcomes = {}
    for chunks in ("sync", "async", "hybrid"):
        result, session = _run("standin:openpi-libero,latency_ms=150", chunks=chunks, realtime=True)
        assert result["status"] == "success", (chunks, result.get("reason"))
        assert session.evaluate("in(red block, blue bowl)")
        outcomes[chunks] = session.executor.policy.idle_ticks
    assert outcomes["sync"] > 10 and outcomes["async"] < outcomes["sync"] / 3, outcomes
    # hybrid waits only while the block is in the hand
    assert outcomes["async"] < outcomes["hybrid"] < outcomes["sync"], outcomes


def test_the_run_command_line_through_a_stand_in(tmp_path, capsys):
    from vla_agent.cli import main

    argv = [
        "run",
        COMMAND,
        "--scene",
        SCENE,
        "--policy",
        "standin:openpi-libero",
        "--adapter",
        "openpi-libero",
    ]
    code = main([*argv, "--no-video", "--json", "--out", str(tmp_path / "run")])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and summary["status"] == "success" and "in(red block, blue bowl)" in summary["holds"]
