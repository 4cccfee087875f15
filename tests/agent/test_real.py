"""The real-robot path without hardware: RealSense recordings made with pyrealsense2's software
device and recorder, played back through the camera class; calibration from a recorded target sheet;
the whole agent loop on recorded frames with the twin arm; the shadow run gating the arm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

# Without Debian's libusb-1.0-0 pyrealsense2 is installed but cannot load (an ImportError, not a
# missing module): skip with the reason instead of failing the whole run (.ci/run installs it).
pytest.importorskip(
    "pyrealsense2", reason="pyrealsense2 cannot load (apt-get install libusb-1.0-0)", exc_type=ImportError
)

from vla_agent.agent.core.session import AgentConfig  # noqa: E402
from vla_agent.agent.real.arms import ArmError, TwinArm, XArmDriver  # noqa: E402
from vla_agent.agent.real.calibration import calibrate, load_calibration, load_targets, target_errors_mm  # noqa: E402
from vla_agent.agent.real.camera import CameraError, RealSenseCamera  # noqa: E402
from vla_agent.agent.real.recording import write_recording  # noqa: E402
from vla_agent.agent.real.session import RealConfig, RealSession  # noqa: E402
from vla_agent.agent.safety.shield import SafetyShield  # noqa: E402
from vla_agent.cli import main  # noqa: E402
from vla_agent.errors import ConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ROOT / "examples" / "calibration" / "targets.yaml"
SCENE = "red block, blue bowl, green block"


def _frames(n=4, h=48, w=64):
    rng = np.random.default_rng(0)
    return [
        (rng.integers(0, 255, (h, w, 3), dtype=np.uint8), rng.uniform(0.3, 2.0, (h, w)).astype(np.float32))
        for _ in range(n)
    ]


def test_recording_plays_back_frames_depth_scale_and_intrinsics(tmp_path):
    frames = _frames()
    K = np.array([[55.0, 0, 31.5], [0, 56.0, 23.5], [0, 0, 1]])
    path = write_recording(tmp_path / "rec.db3", frames, K)
    cam = RealSenseCamera(f"file:{path}")
    got = []
    with pytest.raises(CameraError, match="ended"):
        while True:
            got.append(cam.read())
    assert cam.depth_scale == pytest.approx(0.001)
    # Every recorded frame, once, in order: playback does not drop what is read slowly.
    index = [next(i for i, (rgb, _) in enumerate(frames) if np.array_equal(g.rgb, rgb)) for g in got]
    assert index == list(range(len(frames)))
    for g, i in zip(got, index):
        assert np.abs(g.depth - frames[i][1]).max() <= 0.001  # z16 millimetres
        assert np.allclose(g.K, K, atol=1e-4)
    cam.stop()
    held = RealSenseCamera(f"file:{path}", hold_last=True)
    last = [held.read() for _ in range(len(frames) + 5)][-1]
    assert np.array_equal(last.rgb, frames[-1][0])  # a still recording stands in for a live camera
    held.stop()


def test_depth_from_a_separate_depth_camera_is_aligned_to_colour(tmp_path):
    h, w = 48, 64
    K = np.array([[55.0, 0, 31.5], [0, 55.0, 23.5], [0, 0, 1]])
    depth_K = np.array([[50.0, 0, 30.0], [0, 50.0, 24.0], [0, 0, 1]])
    depth = np.full((h, w), 1.0, np.float32)  # a wall 1 m away with a box 0.8 m away
    depth[20:30, 24:36] = 0.8
    T = np.eye(4)
    T[0, 3] = 0.05  # the colour camera 5 cm to the depth camera's left: points move right in it
    path = write_recording(
        tmp_path / "d4xx.db3", [(np.zeros((h, w, 3), np.uint8), depth)], K, depth_K=depth_K, depth_to_color=T
    )
    with RealSenseCamera(f"file:{path}") as cam:
        got = cam.read().depth
    # Where the box's centre lands in colour pixels: deproject with depth_K, shift, project with K.
    x = (29.5 - depth_K[0, 2]) / depth_K[0, 0] * 0.8 + 0.05
    y = (24.5 - depth_K[1, 2]) / depth_K[1, 1] * 0.8
    v, u = np.nonzero(np.isclose(got, 0.8, atol=0.002))
    assert abs(u.mean() - (K[0, 0] * x / 0.8 + K[0, 2])) < 1.0
    assert abs(v.mean() - (K[1, 1] * y / 0.8 + K[1, 2])) < 1.0
    assert np.isclose(np.median(got[got > 0]), 1.0, atol=0.002)


@pytest.mark.parametrize(
    "source, match",
    [
        ("file:/nonexistent.db3", "no such recording"),
        ("file:x.mp4", "expected a .db3"),
        ("usb:3", "use serial"),
    ],
)
def test_bad_camera_sources_fail_in_one_line(source, match):
    with pytest.raises(CameraError, match=match):
        RealSenseCamera(source)


def test_calibration_from_a_recorded_target_sheet(tmp_path):
    rec = tmp_path / "sheet.db3"
    assert main(["record-sim", str(rec), "--targets", str(TARGETS)]) == 0
    truth = load_calibration(rec.with_suffix(".calib.yaml")).T
    with RealSenseCamera(f"file:{rec}", hold_last=True) as cam:
        frames = [cam.read() for _ in range(3)]
    targets = load_targets(TARGETS)
    calib = calibrate(frames, targets)
    T = calib.T
    angle = np.degrees(np.arccos(np.clip((np.trace(T[:3, :3].T @ truth[:3, :3]) - 1) / 2, -1, 1)))
    assert np.linalg.norm(T[:3, 3] - truth[:3, 3]) < 0.015 and angle < 1.5
    assert calib.residual_mm < 5
    assert max(target_errors_mm(frames, targets, T).values()) < 10
    out = tmp_path / "cal.yaml"
    calibrate_args = ["--camera", f"file:{rec}", "--targets", str(TARGETS), "--calibration", str(out)]
    assert main(["calibrate", "create", *calibrate_args]) == 0
    assert np.allclose(load_calibration(out).T, T, atol=1e-6)
    assert main(["calibrate", "check", *calibrate_args]) == 0


def test_malformed_calibration_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"T_base_camera": [[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]})
    )
    with pytest.raises(ConfigError, match="not a rotation"):
        load_calibration(bad)
    with pytest.raises(ConfigError, match="no such file"):
        load_calibration(tmp_path / "missing.yaml")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    rec = tmp_path_factory.mktemp("rec") / "scene.db3"
    assert main(["record-sim", str(rec), "--scene", SCENE, "--seed", "3"]) == 0
    return rec


def test_run_backend_real_on_a_recording_with_the_twin_arm(recording, tmp_path, capsys):
    code = main(
        [
            "run",
            "put the red block in the blue bowl",
            "--backend",
            "real",
            "--camera",
            f"file:{recording}",
            "--arm",
            "twin",
            "--scene",
            SCENE,
            "--policy",
            "expert",
            "--yes",
            "--retries",
            "0",
            "--replans",
            "0",
            "--no-video",
            "--out",
            str(tmp_path / "run"),
            "--json",
        ]
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["backend"] == "real"
    assert summary["shadow"]["ok"] and summary["shadow"]["status"] == "success"
    assert summary["subgoals"][0]["skill"] == "pick"
    assert summary["arm_moves"] > 0  # the twin arm was driven through the shield
    assert summary["unsafe_actions_reached_backend"] == 0
    # The frames are a recording of the scene before the run: the detector cannot see the block
    # move, so the honest outcome is a failure, found by perception on recorded frames.
    assert summary["status"] == "failed" and code == 1
    assert "at(red block" in " ".join(summary["perceived_holds"])
    kinds = [json.loads(line).get("kind") for line in Path(summary["trace"]).read_text().splitlines()]
    assert "shadow" in kinds and "subgoal_end" in kinds


class NaNPolicy:
    done = False
    skills = None

    def reset(self, subgoal):
        pass

    def act(self, obs):
        return np.full((2, 7), np.nan)


class CountingTwin(TwinArm):
    pass


def _session(recording, policy_factory=None, **real):
    cfg = AgentConfig(scene=SCENE, policy="expert", video=False, max_retries=0, max_replans=0)
    arm = CountingTwin()
    s = RealSession(
        cfg,
        RealConfig(camera=f"file:{recording}", **real),
        arm=arm,
        policy_factory=policy_factory,
        confirm=lambda q: False,
    )
    return s, arm


def test_a_predicted_unsafe_plan_never_reaches_the_arm(recording, tmp_path):
    session, arm = _session(recording, policy_factory=lambda env: NaNPolicy(), yes=True)
    moves = arm.moves
    summary = session.run("put the red block in the blue bowl", out=tmp_path)
    session.close()
    assert summary["status"] == "refused"
    assert "shadow run predicts" in summary["reason"]
    assert summary["shadow"]["unsafe"] and not summary["shadow"]["ok"]
    assert arm.moves == moves and summary["arm_moves"] == 0


def test_without_approval_nothing_moves(recording, tmp_path):
    session, arm = _session(recording)  # confirm answers no; no --yes
    moves = arm.moves
    summary = session.run("put the red block in the blue bowl", out=tmp_path)
    session.close()
    assert summary["shadow"]["ok"]
    assert summary["status"] == "refused" and summary["reason"] == "not approved by the user"
    assert arm.moves == moves


class SpyXArm:
    """Stands in for ``xarm.wrapper.XArmAPI`` (no controller to talk to here): records the calls
    with the SDK's signatures and return conventions."""

    def __init__(self, fail_on=None):
        self.calls, self.fail_on = [], fail_on
        self.axis = 6
        self.pose = [400.0, 0.0, 200.0, np.pi, 0.0, 0.0]

    def __getattr__(self, name):
        def call(*args, **kw):
            self.calls.append((name, args, kw))
            if name == self.fail_on:
                return 9
            if name == "get_position":
                return 0, list(self.pose)
            if name == "get_gripper_position":
                return 0, 850
            return 0

        return call


def test_xarm_driver_units_limits_and_errors():
    api = SpyXArm()
    arm = XArmDriver("192.168.1.200", api=api)
    assert [c[0] for c in api.calls][:5] == [
        "clean_error",
        "motion_enable",
        "set_tcp_offset",
        "set_mode",
        "set_state",
    ]
    assert api.calls[2][1][0] == [0, 0, pytest.approx(154.0), 0, 0, 0]  # the spec's tool point
    assert arm.robot == "xarm6" and arm.mount == (0.0, 0.0, 0.0)
    # pointing down is roll = pi for the xArm and roll = 0 in the simulator's tool convention
    assert np.allclose(arm.state(), [0.4, 0.0, 0.2, 0.0, 0.0, 0.0, 0.085], atol=1e-9)
    arm.move(np.array([0.05, 0, 0, 0, 0, 0, 1.0]))  # 5 cm asked; 0.05 m/s * 0.1 s = 5 mm allowed
    ((name, _, kw),) = [c for c in api.calls if c[0] == "set_position"]
    assert kw["x"] == pytest.approx(405.0) and kw["y"] == pytest.approx(0.0) and not kw["relative"]
    assert kw["speed"] == pytest.approx(50.0)
    assert abs(abs(kw["roll"]) - np.pi) < 1e-9 and abs(kw["pitch"]) < 1e-9  # back in the xArm's frame
    arm.move(np.array([0, 0, 0, 0, 0, 0, 1.0]))
    arm.move(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    grips = [c[1][0] for c in api.calls if c[0] == "set_gripper_position"]
    assert grips == [850.0, 0.0]  # sent only when the command flips
    # a tool-frame turn reads back as the same turn in the simulator's convention
    for turn in ([0, 0, 0.02], [0.02, 0, 0], [0, 0.02, 0]):  # within 0.3 rad/s
        api.calls.clear()
        arm.move(np.array([0, 0, 0, *turn, 1.0]))
        ((_, _, kw),) = [c for c in api.calls if c[0] == "set_position"]
        api.pose = [kw[k] for k in ("x", "y", "z", "roll", "pitch", "yaw")]
        assert np.allclose(arm.state()[3:6], turn, atol=1e-9)
        api.pose = [400.0, 0.0, 200.0, np.pi, 0.0, 0.0]
    with pytest.raises(ArmError, match="malformed"):
        arm.move(np.array([np.nan, 0, 0, 0, 0, 0, 1.0]))
    failing = SpyXArm(fail_on="set_position")
    arm = XArmDriver("192.168.1.200", api=failing)
    with pytest.raises(ArmError, match="set_position failed with code 9"):
        arm.move(np.zeros(7))
    assert failing.calls[-1][0] == "emergency_stop"


def test_the_shield_twin_and_envelope_are_the_connected_arms(recording):
    """An xArm 6 reaches about 70 cm, a Panda 85 cm: connected to an xArm (in its own base frame),
    the session's shield, the backend's audit and the shadow run judge by the xArm, not a Panda."""
    session = RealSession(
        AgentConfig(scene=SCENE, video=False),
        RealConfig(camera=f"file:{recording}"),
        arm=XArmDriver("192.168.1.200", api=SpyXArm()),
        policy_factory=lambda env: NaNPolicy(),
        confirm=lambda q: False,
    )
    down = np.zeros(3)
    far = np.array([0.75, 0.0, 0.05])  # a Panda reaches it, an xArm 6 does not
    near = np.array([0.20, 0.0, 0.10])  # beside the xArm's base: out of a Panda's reach
    try:
        shield, audit = session.executor.shield, session.backend.audit
        assert shield.robot.name == audit.robot.name == session.robot.name == "xarm6"
        assert shield.config.workspace_max[0] == pytest.approx(0.67)  # the xArm's box, its frame
        assert "out of reach" in shield.twin.check(far, down, 0.01, 0.002).error
        assert shield.twin.check(near, down, 0.01, 0.002).error == ""
    finally:
        session.close()
    panda = SafetyShield()
    assert panda.twin.check(far, down, 0.01, 0.002).error == ""
    assert "out of reach" in panda.twin.check(near, down, 0.01, 0.002).error


def test_task_files_and_chat_drive_the_real_backend_too(recording, tmp_path, capsys):
    """One session interface: a task file and a chat run on the real path (recorded camera, twin
    arm, shadow run first); expectations are checked on the perceived scene, and say so."""
    task = tmp_path / "real.yaml"
    task.write_text(
        yaml.safe_dump(
            {
                "scene": SCENE,
                "commands": ["put the red block in the blue bowl"],
                "expect": ["in(red block, blue bowl)"],
                "options": {"policy": "expert"},
            }
        )
    )
    real = ["--backend", "real", "--camera", f"file:{recording}", "--arm", "twin"]
    code = main(["task", str(task), *real, "--yes", "--out", str(tmp_path / "tasks"), "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (file,) = result["files"]
    assert file["truth"] == "perceived" and file["commands"][0]["status"] in ("success", "failed")
    # recorded frames do not change, so the perceived end state is the recorded one: an honest FAIL
    assert code == 1 and file["expect"] == {"in(red block, blue bowl)": False}

    import subprocess
    import sys

    chat = subprocess.run(
        [sys.executable, "-m", "vla_agent.cli", "chat", "--scene", SCENE, "--policy", "expert", "--yes",
         "--no-video", "--out", str(tmp_path / "chat"), *real],
        input="pick up the red block\n/quit\n", capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert "shadow run" in chat.stdout + chat.stderr and "pick up the red block" in chat.stdout


@pytest.mark.hardware
def test_a_live_realsense_gives_aligned_rgbd_frames():
    """With a RealSense connected (``pytest -m hardware``): frames, depth in metres, intrinsics."""
    import pyrealsense2 as rs

    if not rs.context().query_devices().size():
        pytest.skip("no RealSense connected")
    with RealSenseCamera("") as cam:
        f = cam.read()
    assert f.rgb.ndim == 3 and f.depth.shape == f.rgb.shape[:2] and f.K[0, 0] > 0
    assert np.nanmax(f.depth) < 20.0  # metres, not millimetres
