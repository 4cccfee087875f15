"""A ROS 2 client of the node: what ``vla-agent ros send`` and ``ros plan`` use (any ROS 2 program
can do the same with ``rclpy.action.ActionClient`` and the ``vla_agent_msgs`` interfaces)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from vla_agent.agent.ros.runtime import RosError, interfaces, rclpy


class _Client:
    def __init__(self, name: str):
        rp = rclpy()
        self.msgs = interfaces()
        self.context = rp.Context()
        rp.init(context=self.context)
        self.node = rp.create_node(name, context=self.context)
        from rclpy.executors import SingleThreadedExecutor

        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, future, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > end:
                raise RosError(f"no answer within {timeout:g} s")
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        if self.context.ok():
            self.context.shutdown()


def send_command(
    command: str,
    namespace: str = "/vla_agent",
    options: dict | None = None,
    on_feedback: Callable[[dict], None] | None = None,
    cancel_after_s: float | None = None,
    timeout_s: float = 600.0,
    connect_timeout_s: float = 15.0,
) -> dict:
    """Send ``command`` to ``NAMESPACE/execute_command``; the result as a dict (``accepted`` False
    when the node rejected it). ``cancel_after_s``: cancel the goal (an e-stop) that long after it
    was accepted."""
    from rclpy.action import ActionClient

    c = _Client("vla_agent_send")
    try:
        client = ActionClient(c.node, c.msgs.ExecuteCommand, f"{namespace.rstrip('/')}/execute_command")
        if not client.wait_for_server(timeout_sec=connect_timeout_s):
            raise RosError(
                f"no execute_command action server under {namespace} (is `vla-agent ros serve` up?)"
            )

        finished = [False]  # the last feedback so far said "finished"

        def feedback(msg) -> None:
            finished[0] = msg.feedback.kind == "finished"
            if on_feedback is not None:
                f = msg.feedback
                on_feedback(
                    {
                        "kind": f.kind,
                        "subgoal": f.subgoal,
                        "subgoal_index": f.subgoal_index,
                        "step": f.step,
                        "status": f.status,
                        "event": json.loads(f.event_json or "{}"),
                    }
                )

        goal = c.msgs.ExecuteCommand.Goal(command=command, options_json=json.dumps(options or {}))
        sent = client.send_goal_async(goal, feedback_callback=feedback)
        c.spin_until(sent, connect_timeout_s)
        handle = sent.result()
        if not handle.accepted:
            return {"accepted": False, "status": "busy", "reason": "the node is running another command"}
        result = handle.get_result_async()
        if cancel_after_s is not None:
            end = time.monotonic() + cancel_after_s
            while time.monotonic() < end and not result.done():
                c.executor.spin_once(timeout_sec=0.02)
            if not result.done():
                c.spin_until(handle.cancel_goal_async(), connect_timeout_s)
        c.spin_until(result, timeout_s)
        # Feedback travels apart from the result: its last messages may come just after it.
        end = time.monotonic() + 1.0
        while on_feedback is not None and not finished[0] and time.monotonic() < end:
            c.executor.spin_once(timeout_sec=0.02)
        r = result.result().result
        return {
            "accepted": True,
            "status": r.status,
            "reason": r.reason,
            "goals": list(r.goals),
            "summary": json.loads(r.summary_json or "{}"),
        }
    finally:
        c.close()


def plan_command(command: str, namespace: str = "/vla_agent", timeout_s: float = 60.0) -> dict:
    """Ask ``NAMESPACE/plan_command`` for a plan without moving."""
    c = _Client("vla_agent_plan")
    try:
        client = c.node.create_client(c.msgs.PlanCommand, f"{namespace.rstrip('/')}/plan_command")
        if not client.wait_for_service(timeout_sec=15.0):
            raise RosError(f"no plan_command service under {namespace} (is `vla-agent ros serve` up?)")
        future = client.call_async(c.msgs.PlanCommand.Request(command=command))
        c.spin_until(future, timeout_s)
        r = future.result()
        return {"status": r.status, "message": r.message, "subgoals": list(r.subgoals),
                "plan": json.loads(r.plan_json or "{}")}  # fmt: skip
    finally:
        c.close()
