"""``RosArm`` against a ``SimRobot`` (both in this process, each on its own ROS context): prints
what the test asserts as one JSON object. Run in a subprocess so the test process never starts
DDS. ``argv[1]``: pose | twist | joints (motion, joints, gripper, a NaN refused; joints: no pose topic,
the tool pose by forward kinematics) or stale (the watchdog)."""

import json
import sys
import threading
import time

import numpy as np

from vla_agent.agent.ros.robot import RosArm, RosRobotConfig
from vla_agent.agent.ros.runtime import RosError
from vla_agent.agent.ros.sim_robot import SimRobot
from vla_agent.errors import RobotUnavailable
from vla_agent.types import STATE

mode = sys.argv[1]
topics = {
    k: f"/t/{k}"
    for k in (
        "state_topic",
        "command_topic",
        "gripper_topic",
        "gripper_state_topic",
        "joint_state_topic",
        "image_topic",
        "depth_topic",
        "camera_info_topic",
    )
}
cfg = RosRobotConfig(command="twist" if mode == "twist" else "pose", lost_after_s=1.0, **topics)
if mode == "joints":
    cfg = cfg.model_copy(update={"state_topic": ""})
robot = SimRobot(cfg, scene="red block, blue bowl", seed=1)
spinner = threading.Thread(target=robot.spin, daemon=True)
spinner.start()
arm = RosArm(cfg)
out = {}
try:
    if mode in ("pose", "twist", "joints"):
        start = arm.state()
        end = time.monotonic() + 5
        while arm.joint_positions() is None and time.monotonic() < end:
            time.sleep(0.05)
        q = arm.joint_positions()
        out["start_width"], out["joints"] = float(start[6]), None if q is None else len(q)
        for _ in range(5):
            arm.move(np.array([0.02, 0, 0, 0, 0, 0, 1.0]))
        out["moved"] = (arm.state()[:3] - start[:3]).tolist()
        time.sleep(0.3)  # the arm settles; measured against the simulator's own tool pose
        out["pose_error_mm"] = float(np.abs(arm.state()[:3] - np.asarray(robot.obs[STATE][:3])).max() * 1000)
        try:
            arm.move(np.array([np.nan, 0, 0, 0, 0, 0, 1.0]))
        except RosError as e:
            out["nan"] = str(e)
        time.sleep(0.3)
        sent = robot.commands
        arm.move(np.array([0, 0, 0, 0, 0, 0, -1.0]))  # close
        time.sleep(0.5)
        out["closed_width"], out["close_commands"] = float(arm.state()[6]), robot.commands - sent
    else:
        arm.move(np.array([0.01, 0, 0, 0, 0, 0, 1.0]))
        time.sleep(0.3)
        sent = robot.commands
        robot.stall_after_s, robot.first_command_at = 0.0, time.monotonic() - 1  # the state topic stops
        time.sleep(0.7)
        out["fresh"] = arm.fresh()
        arm.move(np.array([0.01, 0, 0, 0, 0, 0, 1.0]))  # stale: nothing is published
        arm.stop()
        time.sleep(0.6)
        try:
            arm.move(np.array([0.01, 0, 0, 0, 0, 0, 1.0]))
        except RobotUnavailable as e:
            out["lost"] = str(e)
        out["sent_before"], out["sent_after"] = sent, robot.commands
finally:
    arm.close()
    robot.context.shutdown()
    spinner.join(10)
print(json.dumps(out))
