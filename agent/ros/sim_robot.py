"""The simulator behind ROS 2 topics: a robot-side process for ``--backend ros`` with no robot.

``vla-agent ros sim-robot`` runs the PyBullet cell at its control rate in wall-clock time, as a
robot's driver would: it publishes the measured tool pose, joint states, gripper width, colour,
aligned depth and ``CameraInfo`` on the topics of a ``RosRobotConfig``, and moves toward the latest
target pose (or twist) and gripper opening it receives, within the simulator's per-step limits.
It writes the camera's calibration (camera-to-base, the simulator's ground truth) for the agent,
and on exit (SIGINT/SIGTERM) the ground truth of its world: what the agent's claims are checked on.
``stall_after_s`` stops the state topics that long after the first command, to exercise the
agent's watchdog.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from vla_agent.agent.ros.robot import RosRobotConfig
from vla_agent.agent.ros.runtime import camera_info_msg, image_msg, joint_state_msg, pose_msg, pose_of, rclpy
from vla_agent.sim.catalog import SceneSpec
from vla_agent.sim.env import EnvConfig, TabletopEnv
from vla_agent.types import DEPTH, IMAGE, JOINTS, STATE, WRIST_IMAGE


class SimRobot:
    def __init__(
        self,
        cfg: RosRobotConfig,
        scene: str | None = None,
        seed: int = 0,
        randomize: bool = False,
        stall_after_s: float | None = None,
    ):
        rp = rclpy()
        from geometry_msgs.msg import PoseStamped, TwistStamped
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from std_msgs.msg import Float64

        self.cfg, self.stall_after_s = cfg, stall_after_s
        self.env = TabletopEnv(EnvConfig(robot=cfg.robot, randomize=randomize, control_hz=cfg.rate_hz))
        options = {"scene": SceneSpec.parse(scene)} if scene else None
        self.obs, _ = self.env.reset(seed=seed, options=options)
        self.base = np.asarray(self.env.base, np.float64)
        self.context = rp.Context()
        rp.init(context=self.context)
        self.node = rp.create_node("vla_agent_sim_robot", context=self.context)
        pub = self.node.create_publisher
        self.pubs = {
            "image": pub(Image, cfg.image_topic, 2),
            "depth": pub(Image, cfg.depth_topic, 2),
            "info": pub(CameraInfo, cfg.camera_info_topic, 2),
        }
        if cfg.state_topic:
            self.pubs["pose"] = pub(PoseStamped, cfg.state_topic, 10)
        if cfg.joint_state_topic:
            self.pubs["joints"] = pub(JointState, cfg.joint_state_topic, 10)
        if cfg.gripper_state_topic:
            self.pubs["width"] = pub(Float64, cfg.gripper_state_topic, 10)
        if cfg.wrist_image_topic:
            self.pubs["wrist"] = pub(Image, cfg.wrist_image_topic, 2)
        self._Float64 = Float64
        command_type = PoseStamped if cfg.command == "pose" else TwistStamped
        self.node.create_subscription(command_type, cfg.command_topic, self._on_command, 10)
        self.node.create_subscription(Float64, cfg.gripper_topic, self._on_gripper, 10)
        self._lock = threading.Lock()
        self.target: np.ndarray | None = None  # our [x, y, z, roll, pitch, yaw], world frame
        self.velocity: np.ndarray | None = None
        self.gripper_open = True
        self.commands = 0
        self.commands_after_stall = 0  # the one in flight when the state stopped may arrive after
        self.commands_on_stale_state = 0
        self.first_command_at: float | None = None
        self.ticks = 0
        self.node.create_timer(1.0 / cfg.rate_hz, self._tick)

    # ------------------------------------------------------------------ commands
    def _on_command(self, msg) -> None:
        with self._lock:
            self.commands += 1
            if self.first_command_at is None:
                self.first_command_at = time.monotonic()
            if self.stalled:
                self.commands_after_stall += 1
                if self._stalled_for() > self.cfg.stale_after_s:  # sent after its last state went stale
                    self.commands_on_stale_state += 1
            if self.cfg.command == "pose":
                target = pose_of(msg)
                target[:3] += self.base  # base frame -> the simulator's world
                self.target, self.velocity = target, None
            else:
                lin, ang = msg.twist.linear, msg.twist.angular
                self.velocity, self.target = np.array([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z]), None

    def _on_gripper(self, msg) -> None:
        with self._lock:
            self.gripper_open = float(msg.data) > 0.5 * self.env.robot_spec.max_gripper_width

    @property
    def stalled(self) -> bool:
        return self._stalled_for() > 0

    def _stalled_for(self) -> float:
        s, t = self.stall_after_s, self.first_command_at
        return -1.0 if s is None or t is None else time.monotonic() - t - s

    def _action(self) -> np.ndarray:
        """One simulator step toward the target (a pose controller) or along the twist."""
        limits = self.env.action_limits[:6]
        state = np.asarray(self.obs[STATE], np.float64)
        with self._lock:
            target, velocity, open_ = self.target, self.velocity, self.gripper_open
            self.velocity = None  # a twist holds for one tick
        if target is not None:
            d = target - state[:6]
            d[3:] = (d[3:] + np.pi) % (2 * np.pi) - np.pi
        elif velocity is not None:
            d = velocity / self.cfg.rate_hz
        else:
            d = np.zeros(6)
        return np.concatenate([np.clip(d, -limits, limits), [1.0 if open_ else -1.0]])

    def _tick(self) -> None:
        self.obs, *_ = self.env.step(self._action())
        self.ticks += 1
        self.publish()

    # ------------------------------------------------------------------ topics
    def publish(self) -> None:
        stamp = self.node.get_clock().now().to_msg()
        obs, cfg = self.obs, self.cfg
        if not self.stalled:
            state = np.asarray(obs[STATE], np.float64)
            local = np.concatenate([state[:3] - self.base, state[3:6]])
            if "pose" in self.pubs:
                self.pubs["pose"].publish(pose_msg(local, cfg.frame_id, stamp))
            if "joints" in self.pubs:
                robot = self.env.robot_spec.name
                self.pubs["joints"].publish(joint_state_msg(robot, obs[JOINTS], cfg.frame_id, stamp))
            if "width" in self.pubs:
                self.pubs["width"].publish(self._Float64(data=float(state[6])))
        frame = "camera_color_optical_frame"
        rgb = obs[IMAGE]
        self.pubs["image"].publish(image_msg(rgb, frame, stamp))
        self.pubs["depth"].publish(image_msg(obs[DEPTH], frame, stamp))
        K = self.env.camera_frame.intrinsics
        self.pubs["info"].publish(camera_info_msg(K, rgb.shape[1], rgb.shape[0], frame, stamp))
        if "wrist" in self.pubs and WRIST_IMAGE in obs:
            self.pubs["wrist"].publish(image_msg(obs[WRIST_IMAGE], "wrist_camera", stamp))

    def calibration(self, path: Path) -> Path:
        """The camera-to-base transform (simulator ground truth) as a calibration YAML."""
        from vla_agent.agent.real.calibration import Calibration

        T = np.array(self.env.camera_frame.extrinsics, np.float64)
        T[:3, 3] -= self.base
        return Calibration(T_base_camera=T.tolist(), method="simulator ground truth (ros sim-robot)",
                           residual_mm=0.0).save(path)  # fmt: skip

    def truth(self) -> dict:
        return {
            "holds": [str(p) for p in self.env.holds()],
            "scene": self.env.scene.describe(),
            "ticks": self.ticks,
            "commands": self.commands,
            "commands_after_stall": self.commands_after_stall,
            "commands_on_stale_state": self.commands_on_stale_state,
            "stalled": self.stalled,
        }

    def spin(self, truth_out: Path | None = None) -> None:
        """Serve until interrupted; then write the ground truth to ``truth_out``."""
        from rclpy.executors import ExternalShutdownException

        try:
            self._spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            if truth_out is not None:
                Path(truth_out).write_text(json.dumps(self.truth(), indent=2))
            self.close()

    def _spin(self) -> None:
        from rclpy.executors import SingleThreadedExecutor

        ex = SingleThreadedExecutor(context=self.context)
        ex.add_node(self.node)
        try:
            ex.spin()
        finally:
            ex.shutdown()

    def close(self) -> None:
        self.node.destroy_node()
        if self.context.ok():
            self.context.shutdown()
        self.env.close()
