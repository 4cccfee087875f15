"""A plain rclpy program in its own process, calling vla-agent's node as any ROS 2 client would:
the ExecuteCommand action (feedback, result, a rejected second goal, a cancel) and the PlanCommand
service. Prints one JSON object. Only the interface types come from vla-agent (a ROS user would
source the built vla_agent_msgs package instead)."""

import json
import sys
import time

import rclpy
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile

from vla_agent.agent.ros.runtime import interfaces

msgs = interfaces()
ExecuteCommand, PlanCommand = msgs.ExecuteCommand, msgs.PlanCommand
rclpy.init()
node = rclpy.create_node("test_action_client")
ex = SingleThreadedExecutor()
ex.add_node(node)


def wait(future, timeout=120.0):
    end = time.monotonic() + timeout
    while not future.done():
        assert time.monotonic() < end, "timed out"
        ex.spin_once(timeout_sec=0.05)
    return future.result()


from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402

seen = {}


def count(topic, msg):
    if topic not in seen:
        seen[topic] = {"n": 0}
        if isinstance(msg, Image):
            seen[topic].update(size=[msg.height, msg.width], encoding=msg.encoding)
        if isinstance(msg, CameraInfo):
            seen[topic].update(fx=msg.k[0])
    seen[topic]["n"] += 1


for msg_type, topic in (
    (Image, "camera/image_raw"),
    (Image, "camera/depth"),
    (CameraInfo, "camera/camera_info"),
    (PoseStamped, "state/pose"),
    (JointState, "state/joints"),
    (String, "events"),
):
    node.create_subscription(msg_type, f"/vla_agent/{topic}", lambda m, t=topic: count(t, m), 100)

out = {}
plan = node.create_client(PlanCommand, "/vla_agent/plan_command")
assert plan.wait_for_service(timeout_sec=60.0), "no plan_command service"
r = wait(plan.call_async(PlanCommand.Request(command=sys.argv[1])))
out["plan"] = {"status": r.status, "subgoals": list(r.subgoals)}
r = wait(plan.call_async(PlanCommand.Request(command="put the purple block in the bowl")))
out["plan_unknown"] = {"status": r.status, "message": r.message}

client = ActionClient(
    node, ExecuteCommand, "/vla_agent/execute_command", feedback_sub_qos_profile=QoSProfile(depth=1000)
)
assert client.wait_for_server(timeout_sec=60.0), "no execute_command action server"
feedback = []
goal = ExecuteCommand.Goal(command=sys.argv[1], options_json=json.dumps({"reset": True, "seed": 0}))
handle = wait(
    client.send_goal_async(
        goal,
        feedback_callback=lambda m: feedback.append(
            {
                "kind": m.feedback.kind,
                "subgoal": m.feedback.subgoal,
                "index": m.feedback.subgoal_index,
                "step": m.feedback.step,
                "status": m.feedback.status,
            }
        ),
    )
)
second = wait(client.send_goal_async(ExecuteCommand.Goal(command=sys.argv[1])))  # while the first runs
result = wait(handle.get_result_async())
end = time.monotonic() + 2.0  # feedback travels apart from the result: the last may come after it
while not (feedback and feedback[-1]["kind"] == "finished") and time.monotonic() < end:
    ex.spin_once(timeout_sec=0.02)
out["first"] = {
    "accepted": handle.accepted,
    "status": result.result.status,
    "reason": result.result.reason,
    "goals": list(result.result.goals),
    "summary": json.loads(result.result.summary_json),
    "feedback": feedback,
    "action_status": result.status,
}
out["second_accepted"] = second.accepted

# cancel mid-run: an e-stop
busy = {"scene": "red block, green block, yellow block, blue bowl", "reset": True}
goal = ExecuteCommand.Goal(command="put all the blocks in the bowl", options_json=json.dumps(busy))
handle = wait(client.send_goal_async(goal))
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    ex.spin_once(timeout_sec=0.01)
wait(handle.cancel_goal_async())
result = wait(handle.get_result_async())
out["cancelled"] = {
    "status": result.result.status,
    "summary": json.loads(result.result.summary_json or "{}"),
    "action_status": result.status,
}
# the stop service: the same e-stop, from any ROS program
from std_srvs.srv import Trigger  # noqa: E402

stop = node.create_client(Trigger, "/vla_agent/stop")
assert stop.wait_for_service(timeout_sec=30.0)
handle = wait(client.send_goal_async(goal))
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    ex.spin_once(timeout_sec=0.01)
answer = wait(stop.call_async(Trigger.Request()))
result = wait(handle.get_result_async())
out["stopped"] = {"answer": answer.message, "status": result.result.status, "action_status": result.status}
out["topics"] = seen
print(json.dumps(out))
node.destroy_node()
rclpy.shutdown()
