"""ROS 2 from PyPI wheels: the one place that imports ``rclpy``, builds vla-agent's interfaces
(``vla_agent_msgs``: the ``ExecuteCommand`` action, the ``PlanCommand`` service) and converts
between ROS messages and the arrays the rest of vla-agent uses.

Why generated interfaces and not standard messages with JSON: an action server needs an action
type, and no ROS 2 wheel on PyPI carries one that fits (only ``test_msgs``' Fibonacci). The
``rosidl`` generators do come as wheels, so the interfaces are built once, on first use, into a
cache folder (``VLA_AGENT_ROS_CACHE``, default ``~/.cache/vla-agent/ros``; about 10 s, needs a C/C++
compiler), and loaded from there. Any ROS 2 client that has the same ``.action``/``.srv`` files
(shipped in ``agent/ros/interfaces``) calls the node.

Conventions on the wire: poses are ROS tool frames (z along the approach: pointing down is a roll of
pi) in the arm's base frame, metres and quaternions; the simulator's tool frame is turned about x
from it (``to_ros``/``from_ros``). Images are ``rgb8``; depth ``32FC1`` metres (``16UC1`` millimetres
is read too, as the RealSense ROS driver publishes it).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from scipy.spatial.transform import Rotation

from vla_agent.errors import VlaAgentError

INSTALL_HINT = "pip install 'vla-agent[ros]'"
_FLIP = Rotation.from_euler("x", np.pi)  # the simulator's tool frame = the ROS tool frame turned about x


class RosError(VlaAgentError):
    """ROS 2 is missing, the interfaces could not be built, or a topic went quiet."""


def rclpy():
    """The ``rclpy`` module, or a one-line error saying how to install it."""
    try:
        import rclpy as module
    except ImportError as e:
        raise RosError(f"ROS 2 support needs the ROS 2 wheels: {INSTALL_HINT}") from e
    return module


# ---------------------------------------------------------------------------- interfaces
def _sources() -> Path:
    return Path(str(files("vla_agent.agent.ros") / "interfaces" / "vla_agent_msgs"))


def _build_dir() -> Path:
    """One cache folder per interface text, ROS wheels, Python and environment."""
    src = _sources()
    h = hashlib.sha256()
    for f in sorted(src.rglob("*")):
        if f.is_file():
            h.update(f.relative_to(src).as_posix().encode() + f.read_bytes())
    h.update(f"{importlib.metadata.version('ros-rclpy')} {sys.version} {sys.prefix}".encode())
    root = Path(os.environ.get("VLA_AGENT_ROS_CACHE", Path.home() / ".cache" / "vla-agent" / "ros"))
    return root / h.hexdigest()[:16]


def _cmake() -> str:
    found = shutil.which("cmake")
    if found:
        return found
    with contextlib.suppress(ImportError):
        import cmake  # the PyPI cmake wheel (in the [ros] extra)

        return str(Path(cmake.CMAKE_BIN_DIR) / "cmake")
    raise RosError(f"building the ROS 2 interfaces needs cmake: {INSTALL_HINT}")


def build_interfaces(force: bool = False) -> Path:
    """Build ``vla_agent_msgs`` with the rosidl wheels (once; ``force`` rebuilds); its install folder."""
    rclpy()
    out = _build_dir()
    prefix = out / "install"
    if (out / "ok").exists() and not force:
        return prefix
    if not (shutil.which("c++") or shutil.which("g++")) or not (shutil.which("cc") or shutil.which("gcc")):
        raise RosError("building the ROS 2 interfaces needs a C/C++ compiler (e.g. apt-get install g++)")
    out.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(out / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same folder
        if (out / "ok").exists() and not force:
            return prefix
        env = {**os.environ, "AMENT_PREFIX_PATH": os.pathsep.join(filter(None, [sys.prefix, _ament()]))}
        cmake, build, log = _cmake(), out / "build", out / "build.log"
        steps = [
            [cmake, "-S", str(_sources()), "-B", str(build), f"-DCMAKE_PREFIX_PATH={sys.prefix}",
             f"-DPython3_EXECUTABLE={sys.executable}", f"-DCMAKE_INSTALL_PREFIX={prefix}",
             "-DBUILD_TESTING=OFF"],
            [cmake, "--build", str(build), "-j", str(max(1, os.cpu_count() or 1))],
            [cmake, "--install", str(build)],
        ]  # fmt: skip
        with open(log, "w") as f:
            for step in steps:
                if subprocess.run(step, stdout=f, stderr=subprocess.STDOUT, env=env).returncode:
                    raise RosError(
                        f"building the ROS 2 interfaces failed at `{' '.join(step[:2])}`: see {log}"
                    )
        (out / "ok").write_text(str(prefix))
    return prefix


def _ament() -> str:
    return os.environ.get("AMENT_PREFIX_PATH", "")


def interfaces() -> SimpleNamespace:
    """``ExecuteCommand`` and ``PlanCommand``, built if needed and loaded into this process."""
    try:
        module = importlib.import_module("vla_agent_msgs")
    except ImportError:
        prefix = build_interfaces()
        os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(filter(None, [str(prefix), _ament()]))
        pending = sorted((prefix / "lib").glob("lib*.so"))
        while pending:  # load each library once its dependencies are loaded (the order is not known)
            left = []
            for lib in pending:
                try:
                    ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
                except OSError:
                    left.append(lib)
            if len(left) == len(pending):
                raise RosError(f"cannot load the built ROS 2 interfaces: {left[0]}") from None
            pending = left
        sys.path.insert(0, str(next((prefix / "lib").glob("python*/site-packages"))))
        module = importlib.import_module("vla_agent_msgs")
    action = importlib.import_module(f"{module.__name__}.action")
    srv = importlib.import_module(f"{module.__name__}.srv")
    return SimpleNamespace(ExecuteCommand=action.ExecuteCommand, PlanCommand=srv.PlanCommand)


# ---------------------------------------------------------------------------- conversions
def stamp_of(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def to_ros(state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Our ``[x, y, z, roll, pitch, yaw, ...]`` (simulator tool frame) -> position, ROS quaternion xyzw."""
    s = np.asarray(state, np.float64)
    return s[:3], (Rotation.from_euler("xyz", s[3:6]) * _FLIP).as_quat()


def from_ros(position, quaternion) -> np.ndarray:
    """A ROS tool pose -> our ``[x, y, z, roll, pitch, yaw]``."""
    rpy = (Rotation.from_quat(np.asarray(quaternion, np.float64)) * _FLIP).as_euler("xyz")
    return np.concatenate([np.asarray(position, np.float64), rpy])


def pose_msg(state: np.ndarray, frame_id: str, stamp):
    from geometry_msgs.msg import PoseStamped

    pos, q = to_ros(state)
    m = PoseStamped()
    m.header.frame_id, m.header.stamp = frame_id, stamp
    m.pose.position.x, m.pose.position.y, m.pose.position.z = map(float, pos)
    m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w = map(float, q)
    return m


def pose_of(msg) -> np.ndarray:
    """``PoseStamped`` -> our ``[x, y, z, roll, pitch, yaw]``."""
    p, o = msg.pose.position, msg.pose.orientation
    return from_ros([p.x, p.y, p.z], [o.x, o.y, o.z, o.w])


def image_msg(pixels: np.ndarray, frame_id: str, stamp):
    """``rgb8`` for (H, W, 3) uint8, ``32FC1`` for (H, W) float metres."""
    from sensor_msgs.msg import Image

    a = np.ascontiguousarray(pixels)
    m = Image()
    m.header.frame_id, m.header.stamp = frame_id, stamp
    m.height, m.width = a.shape[:2]
    if a.ndim == 3:
        a = a.astype(np.uint8)
        m.encoding, m.step = "rgb8", a.shape[1] * 3
    else:
        a = a.astype(np.float32)
        m.encoding, m.step = "32FC1", a.shape[1] * 4
    m.is_bigendian = 0
    m.data = a.tobytes()
    return m


_COLOR = {"rgb8": (3, False), "bgr8": (3, True), "rgba8": (4, False), "bgra8": (4, True)}


def image_of(msg) -> np.ndarray:
    """An ``Image`` -> (H, W, 3) uint8 RGB, or (H, W) float32 metres for depth encodings."""
    h, w, enc = msg.height, msg.width, msg.encoding.lower()
    data = np.frombuffer(bytes(msg.data), np.uint8)
    if enc in _COLOR:
        n, bgr = _COLOR[enc]
        rgb = data.reshape(h, msg.step)[:, : w * n].reshape(h, w, n)[..., :3]
        return np.ascontiguousarray(rgb[..., ::-1] if bgr else rgb)
    if enc == "32fc1":
        return (
            data.view(np.float32 if not msg.is_bigendian else ">f4").reshape(h, -1)[:, :w].astype(np.float32)
        )
    if enc in ("16uc1", "mono16"):
        mm = data.view(np.uint16 if not msg.is_bigendian else ">u2").reshape(h, -1)[:, :w]
        return mm.astype(np.float32) / 1000.0
    raise RosError(f"image encoding {msg.encoding!r} is not supported (rgb8, bgr8, rgba8, 32FC1, 16UC1)")


def camera_info_msg(K: np.ndarray, width: int, height: int, frame_id: str, stamp):
    from sensor_msgs.msg import CameraInfo

    m = CameraInfo()
    m.header.frame_id, m.header.stamp = frame_id, stamp
    m.width, m.height = int(width), int(height)
    m.distortion_model, m.d = "plumb_bob", [0.0] * 5
    m.k = [float(v) for v in np.asarray(K, np.float64).ravel()]
    m.r = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    P = np.zeros((3, 4))
    P[:, :3] = K
    m.p = [float(v) for v in P.ravel()]
    return m


def joint_names(robot: str, n: int) -> list[str]:
    """The default ``JointState`` names of a robot's arm joints: ``ROBOT_joint1..n``."""
    return [f"{robot}_joint{i + 1}" for i in range(n)]


def joint_state_msg(robot: str, positions, frame_id: str, stamp):
    """A ``JointState`` of the arm's joints under their default names."""
    from sensor_msgs.msg import JointState

    q = [float(v) for v in positions]
    m = JointState(name=joint_names(robot, len(q)), position=q)
    m.header.frame_id, m.header.stamp = frame_id, stamp
    return m


def intrinsics_of(msg) -> np.ndarray:
    return np.asarray(msg.k, np.float64).reshape(3, 3)
