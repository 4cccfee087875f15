"""``--backend ros``: any ROS 2 arm driven by topics, as an arm driver and a camera of the real path.

The arm (``--arm ros[:CONFIG.yaml]``) subscribes to the measured tool pose (``PoseStamped``) and,
optionally, the joint states and the gripper width; each control step it publishes a target tool
pose (``PoseStamped``, or a ``TwistStamped`` velocity) one shielded step from the measured pose, and
the gripper's opening (``std_msgs/Float64``, metres), then waits for the next state message. The
camera (``--camera ros[:CONFIG.yaml]``) reads colour, aligned depth and ``CameraInfo``.

Everything else is the real path's: the session's shield is configured from the ``RobotSpec`` named
by ``robot`` (its twin, joint limits and box), every plan is rehearsed in that twin first, and the
shield's watchdog sees the **arrival time of the last state message**: a state topic that stalls
makes the observation stale and the shield holds. The driver itself never commands on stale data:
with no fresh state it publishes nothing (a pose controller then keeps its last target).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from vla_agent.agent.real.arms import clip_step
from vla_agent.agent.real.camera import RGBDFrame
from vla_agent.agent.ros.runtime import (
    RosError,
    image_of,
    intrinsics_of,
    joint_names,
    pose_msg,
    pose_of,
    rclpy,
)
from vla_agent.errors import ConfigError, RobotUnavailable
from vla_agent.sim.robots.base import robot_spec
from vla_agent.sim.twin import KinematicTwin


class RosRobotConfig(BaseModel):
    """Topic names, frames and rates of a ROS 2 arm (``--ros-config FILE.yaml``; see
    ``examples/ros/arm.yaml``). The defaults follow common ROS 2 drivers (the RealSense wrapper's
    camera topics, ``/joint_states``, a pose controller on ``/arm_controller/target_pose``)."""

    model_config = ConfigDict(extra="forbid")

    robot: str = "panda"  # the registered RobotSpec of the arm: the shield's twin, limits and box
    frame_id: str = "base_link"  # the frame of commanded poses (the arm's base)
    rate_hz: float = Field(10.0, gt=0, le=1000)  # control rate
    command: Literal["pose", "twist"] = "pose"
    command_topic: str = "/arm_controller/target_pose"  # PoseStamped, or TwistStamped for twist
    gripper_topic: str = "/gripper_controller/command"  # Float64: opening in metres
    state_topic: str = "/arm/pose"  # PoseStamped: the measured tool pose in the base frame ("" = none)
    joint_state_topic: str = "/joint_states"  # JointState ("" = none): the twin's joints; the
    # tool pose by forward kinematics of the spec when there is no state_topic
    joint_names: list[str] = []  # their names in the spec's order (default: ROBOT_joint1..n)
    gripper_state_topic: str = "/gripper/width"  # Float64 metres ("" = assume the command)
    image_topic: str = "/camera/color/image_raw"
    depth_topic: str = "/camera/aligned_depth_to_color/image_raw"
    camera_info_topic: str = "/camera/color/camera_info"
    wrist_image_topic: str = ""  # a wrist camera, when the arm has one
    stale_after_s: float = Field(0.5, gt=0)  # a state or frame older than this is stale
    lost_after_s: float = Field(3.0, gt=0)  # state silent this long: the run ends, the arm holds
    connect_timeout_s: float = Field(10.0, gt=0)  # wait for the first state and frame

    @classmethod
    def load(cls, path: str | Path | None) -> RosRobotConfig:
        if not path:
            return cls()
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"ROS config {p}: no such file")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"ROS config {p}: not YAML ({str(e).splitlines()[0]})") from None
        return cls.model_validate(data)


class _Latest:
    """The last message of a topic and when it arrived (monotonic seconds)."""

    def __init__(self):
        self.msg, self.at, self.count = None, 0.0, 0
        self.cond = threading.Condition()

    def __call__(self, msg) -> None:
        with self.cond:
            self.msg, self.at = msg, time.monotonic()
            self.count += 1
            self.cond.notify_all()

    def wait(self, after: int, timeout: float) -> bool:
        """Until a message newer than the ``after``-th arrives (False: timed out)."""
        with self.cond:
            return self.cond.wait_for(lambda: self.count > after, timeout)


class RosLink:
    """One ROS 2 node for the arm and the camera of this process, spun in a background thread."""

    _shared: dict[str, RosLink] = {}

    def __init__(self, cfg: RosRobotConfig):
        rp = rclpy()
        from rclpy.executors import SingleThreadedExecutor

        self.cfg, self.users = cfg, 0
        self.context = rp.Context()
        rp.init(context=self.context)
        self.node = rp.create_node("vla_agent_robot_link", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True, name="ros-robot-link")
        self.thread.start()

    @classmethod
    def get(cls, cfg: RosRobotConfig) -> RosLink:
        key = cfg.model_dump_json()
        link = cls._shared.get(key)
        if link is None:
            link = cls._shared[key] = cls(cfg)
        link.users += 1
        return link

    def subscribe(self, msg_type, topic: str, depth: int = 5) -> _Latest:
        latest = _Latest()
        self.node.create_subscription(msg_type, topic, latest, depth)
        return latest

    def first(self, latest: _Latest, topic: str) -> None:
        if not latest.wait(0, self.cfg.connect_timeout_s):
            raise RosError(
                f"no message on {topic} within {self.cfg.connect_timeout_s:g} s (is the robot up?)"
            )

    def release(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        self._shared.pop(self.cfg.model_dump_json(), None)
        self.executor.shutdown()
        self.thread.join(5)
        self.node.destroy_node()
        if self.context.ok():
            self.context.shutdown()


class RosArm:
    """An arm driver over ROS 2 topics (see the module docstring)."""

    name = "ros"
    mount = (0.0, 0.0, 0.0)  # states are in the arm's own base frame

    def __init__(self, cfg: RosRobotConfig):
        from geometry_msgs.msg import PoseStamped, TwistStamped
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Float64

        if not (cfg.state_topic or cfg.joint_state_topic):
            raise ConfigError(
                "a ROS arm needs a state_topic (PoseStamped) or a joint_state_topic (JointState)"
            )
        self.cfg = cfg
        self.spec = robot_spec(cfg.robot)
        self.robot, self.dt = self.spec.name, 1.0 / cfg.rate_hz
        self.max_step = self.spec.max_speed * self.dt
        self.max_rot_step = self.spec.max_rot_speed * self.dt
        self.link = RosLink.get(cfg)
        self._Float64, self._Twist = Float64, TwistStamped
        self.pose = self.link.subscribe(PoseStamped, cfg.state_topic) if cfg.state_topic else None
        self.joints = (
            self.link.subscribe(JointState, cfg.joint_state_topic) if cfg.joint_state_topic else None
        )
        self.measured = self.pose or self.joints  # the stream the watchdog and the control tick follow
        self.topic = cfg.state_topic or cfg.joint_state_topic
        self.twin = None if self.pose else KinematicTwin(self.spec, base=(0.0, 0.0, 0.0))
        self.width = (
            self.link.subscribe(Float64, cfg.gripper_state_topic) if cfg.gripper_state_topic else None
        )
        self.wrist = self.link.subscribe(Image, cfg.wrist_image_topic, 2) if cfg.wrist_image_topic else None
        msg_type = PoseStamped if cfg.command == "pose" else TwistStamped
        self.command = self.link.node.create_publisher(msg_type, cfg.command_topic, 10)
        self.gripper = self.link.node.create_publisher(Float64, cfg.gripper_topic, 10)
        self.names = cfg.joint_names or joint_names(self.robot, self.spec.dof)
        self._open: bool | None = None
        self.sent = 0  # commands published
        try:
            self.link.first(self.measured, self.topic)
        except RosError:
            self.close()
            raise

    def measured_at(self) -> float:
        """When the last state message arrived (monotonic): the shield's watchdog reads it."""
        return self.measured.at

    def fresh(self) -> bool:
        return time.monotonic() - self.measured.at <= self.cfg.stale_after_s

    def state(self) -> np.ndarray:
        if self.twin is None:
            x = pose_of(self.pose.msg)
        else:
            q = self._joints(self.joints.msg)
            if q is None:
                raise RosError(f"{self.topic} does not name the joints {self.names} (set joint_names)")
            x = self.twin.pose(q)
        if self.width is not None and self.width.msg is not None:
            w = float(self.width.msg.data)
        else:  # no gripper feedback: the commanded opening
            w = self.spec.max_gripper_width if self._open in (None, True) else 0.0
        return np.concatenate([x, [w]])

    def joint_positions(self) -> np.ndarray | None:
        msg = self.joints.msg if self.joints is not None else None
        if msg is None or time.monotonic() - self.joints.at > self.cfg.stale_after_s:
            return None
        return self._joints(msg)

    def _joints(self, msg) -> np.ndarray | None:
        index = {n: i for i, n in enumerate(msg.name)}
        if not all(n in index for n in self.names):
            return None
        q = np.array([msg.position[index[n]] for n in self.names], np.float64)
        return q if np.all(np.isfinite(q)) else None

    def move(self, action: np.ndarray) -> None:
        a = np.asarray(action, np.float64)
        if a.shape != (7,) or not np.all(np.isfinite(a)):
            raise RosError(f"ROS arm refused a malformed action {a!r}")
        if not self.fresh():  # never command on stale data: the controller keeps its last target
            silent = time.monotonic() - self.measured.at
            if silent > self.cfg.lost_after_s:
                raise RobotUnavailable(f"state topic {self.topic} silent for {silent:.1f} s; the arm holds")
            self.measured.wait(self.measured.count, self.cfg.stale_after_s)
            return
        seen = self.measured.count
        delta = clip_step(a, self.max_step, self.max_rot_step)
        stamp = self.link.node.get_clock().now().to_msg()
        if self.cfg.command == "pose":
            target = self.state()[:6] + delta  # the simulator's convention: deltas on the measured pose
            self.command.publish(pose_msg(target, self.cfg.frame_id, stamp))
        else:
            t = self._Twist()
            t.header.frame_id, t.header.stamp = self.cfg.frame_id, stamp
            v = delta / self.dt
            t.twist.linear.x, t.twist.linear.y, t.twist.linear.z = map(float, v[:3])
            t.twist.angular.x, t.twist.angular.y, t.twist.angular.z = map(float, v[3:])
            self.command.publish(t)
        want_open = bool(a[6] > 0)
        if want_open != self._open:
            width = self.spec.max_gripper_width if want_open else 0.0
            self.gripper.publish(self._Float64(data=float(width)))
            self._open = want_open
        self.sent += 1
        self.measured.wait(seen, self.cfg.stale_after_s)  # one control tick: the arm's next state

    def stop(self) -> None:
        """Hold where it is: the measured pose as the target (nothing when the state is stale)."""
        if self.fresh():
            self.move(np.array([0, 0, 0, 0, 0, 0, 1.0 if self._open in (None, True) else -1.0]))

    def wrist_image(self) -> np.ndarray | None:
        if self.wrist is None or self.wrist.msg is None:
            return None
        return image_of(self.wrist.msg)

    def close(self) -> None:
        if self.twin is not None:
            self.twin.close()
        self.link.release()


class RosCamera:
    """Colour + aligned depth + intrinsics from ROS 2 topics, as an RGB-D camera."""

    def __init__(self, cfg: RosRobotConfig):
        from sensor_msgs.msg import CameraInfo, Image

        self.cfg = cfg
        self.link = RosLink.get(cfg)
        self.image = self.link.subscribe(Image, cfg.image_topic, 2)
        self.depth = self.link.subscribe(Image, cfg.depth_topic, 2)
        self.info = self.link.subscribe(CameraInfo, cfg.camera_info_topic, 2)
        self.serial = f"ros:{cfg.image_topic}"

    def start(self) -> RosCamera:
        for latest, topic in ((self.image, self.cfg.image_topic), (self.depth, self.cfg.depth_topic),
                              (self.info, self.cfg.camera_info_topic)):  # fmt: skip
            self.link.first(latest, topic)
        return self

    def read(self) -> RGBDFrame:
        if self.image.msg is None or self.depth.msg is None or self.info.msg is None:
            self.start()
        age = time.monotonic() - self.image.at
        if age > max(self.cfg.stale_after_s, 2.0 / self.cfg.rate_hz) * 4:
            raise RosError(f"camera topic {self.cfg.image_topic} silent for {age:.1f} s")
        rgb, depth = image_of(self.image.msg), image_of(self.depth.msg)
        if rgb.ndim != 3 or depth.ndim != 2 or rgb.shape[:2] != depth.shape:
            raise RosError(
                f"{self.cfg.depth_topic} must be depth aligned to {self.cfg.image_topic} "
                f"(got {depth.shape} and {rgb.shape})"
            )
        return RGBDFrame(rgb, depth, intrinsics_of(self.info.msg), self.image.at * 1000.0, self.image.count)

    def stop(self) -> None:
        self.link.release()
