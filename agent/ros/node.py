"""vla-agent as a ROS 2 node over any session (the simulator, a RealSense + arm, or a ROS arm).

Under the node's namespace (default ``/vla_agent``):

- action ``execute_command`` (``vla_agent_msgs/action/ExecuteCommand``): the goal is a command and
  optional JSON options (``scene``, ``seed``, ``reset``); feedback carries every event of the run
  (the plan, each subgoal's start and end, detector verdicts, shield interventions, retries,
  replans) plus the running subgoal's step and status five times a second; the result carries the
  status, the reason, the goals that hold and the run's JSON summary. **Cancelling is an e-stop**:
  the executor holds the arm at its next control tick. One goal at a time: a goal that arrives while
  one runs is rejected (a robot arm is not a queue; the caller decides what to send next).
- services ``plan_command`` (``vla_agent_msgs/srv/PlanCommand``: plan without moving; the plan, a
  question or a refusal) and ``stop`` (``std_srvs/srv/Trigger``: the same e-stop as a cancel);
- topics ``camera/image_raw`` and ``camera/depth`` (``sensor_msgs/Image``), ``camera/camera_info``
  (``CameraInfo``), ``state/pose`` (``geometry_msgs/PoseStamped``, the tool in the base frame),
  ``state/joints`` (``sensor_msgs/JointState``) and ``events`` (``std_msgs/String``, one JSON event
  per message, as in ``trace.jsonl``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from vla_agent.agent.core.events import Event
from vla_agent.agent.ros.runtime import (
    camera_info_msg,
    image_msg,
    interfaces,
    joint_state_msg,
    pose_msg,
    rclpy,
)
from vla_agent.types import DEPTH, IMAGE, JOINTS, STATE

BASE_FRAME, CAMERA_FRAME = "base_link", "camera_color_optical_frame"


class GoalOptions(BaseModel):
    """The goal's ``options_json``."""

    model_config = ConfigDict(extra="forbid")

    scene: str | None = None  # rebuild the simulated scene first ("red block, blue bowl")
    seed: int | None = None
    reset: bool = False  # reset the scene (same scene, or ``scene``) before running


class AgentNode:
    """The ROS 2 face of ``session``. ``spin()`` serves until ``shutdown()``."""

    def __init__(
        self, session, namespace: str = "vla_agent", out: Path = Path("runs/ros"), rate_hz: float = 10.0
    ):
        rp = rclpy()
        from geometry_msgs.msg import PoseStamped
        from rclpy.action import ActionServer, CancelResponse, GoalResponse
        from rclpy.callback_groups import ReentrantCallbackGroup
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        self.msgs = interfaces()
        self.session, self.out = session, Path(out)
        self._responses = (GoalResponse, CancelResponse)
        self.context = rp.Context()
        rp.init(context=self.context)
        self.node = rp.create_node("vla_agent", namespace=namespace, context=self.context)
        group = ReentrantCallbackGroup()
        self._lock = threading.Lock()
        self._goal = None  # the running goal's handle
        self._feedback_lock = threading.Lock()
        self._finished = False  # the running goal's "finished" feedback is out
        self._goals = 0
        self._cancel_at: int | None = None  # arm moves when the cancel arrived
        self._stops = 0  # e-stops (cancels and the stop service) so far
        self._stops_at_accept = 0
        self.action = ActionServer(
            self.node,
            self.msgs.ExecuteCommand,
            "execute_command",
            execute_callback=self._execute,
            goal_callback=self._accept,
            cancel_callback=self._cancel,
            callback_group=group,
            feedback_pub_qos_profile=QoSProfile(depth=100),  # a burst of events is not dropped
        )
        self.node.create_service(self.msgs.PlanCommand, "plan_command", self._plan, callback_group=group)
        self.node.create_service(Trigger, "stop", self._stop, callback_group=group)
        pub = self.node.create_publisher
        self.pubs = {
            "image": pub(Image, "camera/image_raw", 2),
            "depth": pub(Image, "camera/depth", 2),
            "info": pub(CameraInfo, "camera/camera_info", 2),
            "pose": pub(PoseStamped, "state/pose", 10),
            "joints": pub(JointState, "state/joints", 10),
            "events": pub(String, "events", 100),
        }
        self._String = String
        self.node.create_timer(1.0 / rate_hz, self._publish_state, callback_group=group)
        self.node.create_timer(0.2, self._progress, callback_group=group)
        session.events.subscribe(self._on_event)
        # states in the arm's base frame: the simulated cell mounts the base at ``env.base``
        env, arm = getattr(session, "env", None), getattr(session, "arm", None)
        mount = env.base if env is not None else getattr(arm, "mount", (0.0, 0.0, 0.0))
        self._mount = np.asarray(mount, np.float64)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.executor.add_node(self.node)

    # ------------------------------------------------------------------ serving
    def spin(self) -> None:
        self.executor.spin()

    def shutdown(self) -> None:
        self.session.executor.stop()
        self.executor.shutdown()
        self.node.destroy_node()
        if self.context.ok():
            self.context.shutdown()

    # ------------------------------------------------------------------ the action
    def _accept(self, request):
        GoalResponse, _ = self._responses
        with self._lock:
            if self._goal is not None:
                self.node.get_logger().warning(f"rejected {request.command!r}: a command is running")
                return GoalResponse.REJECT
            self._goal = True  # reserved until the execute callback takes it
            self._stops_at_accept = self._stops
            self.session.executor.clear_stop()  # a new goal is the go-ahead after an e-stop
        return GoalResponse.ACCEPT

    def _cancel(self, goal_handle):
        _, CancelResponse = self._responses
        self._cancel_at = self.session.backend.applied
        self._stops += 1
        self.session.executor.stop()  # the arm holds at its next control tick
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle):
        Result = self.msgs.ExecuteCommand.Result
        with self._lock:
            self._goal, self._cancel_at, self._finished = goal_handle, None, False
            self._goals += 1
            n = self._goals
        try:
            try:
                opts = GoalOptions.model_validate(json.loads(goal_handle.request.options_json or "{}"))
            except (ValueError, ValidationError) as e:
                goal_handle.abort()
                why = (
                    "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
                    if isinstance(e, ValidationError)
                    else str(e).splitlines()[0]
                )
                return Result(status="error", reason=f"bad options_json ({why}); nothing moved")
            try:
                if opts.reset or opts.scene is not None or opts.seed is not None:
                    self.session.reset(seed=opts.seed, scene=opts.scene)
                if self._stops != self._stops_at_accept:  # stopped before it started: nothing moves
                    if goal_handle.is_cancel_requested:
                        goal_handle.canceled()
                    else:
                        goal_handle.abort()
                    return Result(status="stopped", reason="emergency stop before it started; nothing moved")
                summary = self.session.run(goal_handle.request.command, out=self.out / f"goal-{n:03d}")
            except Exception as e:  # a bad scene, a failed session: the arm holds (its handlers stop it)
                goal_handle.abort()
                return Result(status="error", reason=f"{type(e).__name__}: {e}".splitlines()[0])
            if self._cancel_at is not None:
                summary["moves_after_cancel"] = self.session.backend.applied - self._cancel_at
            goals = [g for g in summary.get("goals", []) if g not in summary.get("goals_unmet", [])]
            result = Result(
                status=summary["status"],
                reason=summary.get("reason") or "",
                goals=goals,
                summary_json=json.dumps(summary, default=str),
            )
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
            elif summary["status"] == "success":
                goal_handle.succeed()
            else:
                goal_handle.abort()
            return result
        finally:
            with self._lock:
                self._goal = None

    def _feedback(self, kind: str, data: dict) -> None:
        with self._feedback_lock:  # the progress timer's thread too: "finished" is the last word
            goal = self._goal
            if goal is None or goal is True or self._finished:
                return
            goal.publish_feedback(self._feedback_msg(kind, data))
            self._finished = kind == "finished"

    def _feedback_msg(self, kind: str, data: dict):
        p = self.session.executor.progress
        if "index" in data and data["index"] != p.get("index"):  # a new subgoal: no progress yet
            p = {"index": data["index"], "instruction": data.get("instruction", ""), "step": 0}
        return self.msgs.ExecuteCommand.Feedback(
            kind=kind,
            subgoal=str(data.get("instruction", p.get("instruction", ""))),
            subgoal_index=int(p.get("index", -1)),
            step=int(data.get("step", data.get("steps", p.get("step", 0)))),
            status=str(data.get("status", p.get("status", ""))),
            event_json=json.dumps(data, default=str),
        )

    def _on_event(self, ev: Event) -> None:
        self.pubs["events"].publish(self._String(data=json.dumps(ev.to_json(), default=str)))
        self._feedback(ev.kind, ev.data)

    def _progress(self) -> None:
        if self.session.executor.progress and not self.session.executor.stopping:
            self._feedback("progress", {})

    # ------------------------------------------------------------------ services
    def _plan(self, request, response):
        if self._goal is not None:
            response.status, response.message = "busy", "a command is running; plan it when it ends"
            return response
        plan = self.session.plan(request.command)
        response.plan_json = json.dumps(plan, default=str)
        if "refused" in plan:
            response.status, response.message = "refused", str(plan["refused"])
        elif plan.get("question"):
            response.status, response.message = "question", str(plan["question"])
        else:
            response.status = "plan"
            response.subgoals = [s["instruction"] for s in plan.get("subgoals", [])]
        return response

    def _stop(self, request, response):
        running = self._goal is not None
        self._stops += 1
        self.session.executor.stop()
        response.success = True
        response.message = "stopping: the arm holds at its next control tick" if running else "idle"
        return response

    # ------------------------------------------------------------------ topics
    def _publish_state(self) -> None:
        backend = self.session.backend
        try:
            obs = backend.observe()
            cam = backend.camera
        except Exception:  # nothing observed yet (before the first reset)
            return
        stamp = self.node.get_clock().now().to_msg()
        rgb = obs[IMAGE]
        self.pubs["image"].publish(image_msg(rgb, CAMERA_FRAME, stamp))
        if DEPTH in obs:
            self.pubs["depth"].publish(image_msg(obs[DEPTH], CAMERA_FRAME, stamp))
        self.pubs["info"].publish(camera_info_msg(cam.K, rgb.shape[1], rgb.shape[0], CAMERA_FRAME, stamp))
        state = np.asarray(obs[STATE], np.float64)
        local = np.concatenate([state[:3] - self._mount, state[3:6]])
        self.pubs["pose"].publish(pose_msg(local, BASE_FRAME, stamp))
        if JOINTS in obs:
            robot = getattr(self.session.cfg, "robot", "robot")
            self.pubs["joints"].publish(joint_state_msg(robot, obs[JOINTS], BASE_FRAME, stamp))
