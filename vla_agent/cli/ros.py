"""``vla-agent ros``: vla-agent as a ROS 2 node, the simulator as a ROS 2 robot, and a client."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

from vla_agent.cli.common import err, out
from vla_agent.cli.options import agent_config, agent_options, real_config, real_options

DDS_NOTE = (
    "DDS discovery follows your ROS 2 environment; to keep it on this machine: "
    "export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOCALHOST_ONLY=1 ROS_DOMAIN_ID=<yours>"
)


def _terminate_as_interrupt() -> None:
    """SIGTERM ends a server like Ctrl-C does (its cleanup and outputs run)."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def cmd_serve(a: argparse.Namespace) -> int:
    from vla_agent.agent.frontends.sessions import open_session
    from vla_agent.agent.ros.node import AgentNode
    from vla_agent.agent.ros.runtime import interfaces

    interfaces()  # build the interfaces before anything slow, so a missing compiler fails first
    real = real_config(a)
    if real is not None and not real.yes:
        err.print("[yellow]warning:[/yellow] without --yes nobody approves plans over ROS: goals are refused")
    session = open_session(agent_config(a), real)
    if real is None:
        session.reset()
    node = AgentNode(session, namespace=a.namespace, out=Path(a.out_root))
    ns = node.node.get_namespace()
    err.print(
        f"[green]serving[/green] {ns}/execute_command (action), {ns}/plan_command, {ns}/stop (services); "
        f"topics {ns}/camera/*, {ns}/state/*, {ns}/events. Ctrl-C to stop."
    )
    _terminate_as_interrupt()
    try:
        node.spin()
    except KeyboardInterrupt:
        pass
    finally:
        node.shutdown()
        session.close()
    return 0


def cmd_sim_robot(a: argparse.Namespace) -> int:
    from vla_agent.agent.ros.robot import RosRobotConfig
    from vla_agent.agent.ros.sim_robot import SimRobot

    cfg = RosRobotConfig.load(a.ros_config)
    robot = SimRobot(
        cfg, scene=a.scene, seed=a.seed, randomize=a.randomize, stall_after_s=a.stall_state_after
    )
    if a.calibration_out:
        err.print(f"calibration: {robot.calibration(Path(a.calibration_out))}")
    err.print(
        f"[green]simulated {cfg.robot}[/green] on {cfg.state_topic}, {cfg.command_topic}, {cfg.image_topic}, "
        f"... at {cfg.rate_hz:g} Hz. Ctrl-C to stop."
    )
    _terminate_as_interrupt()
    robot.spin(truth_out=Path(a.truth_out) if a.truth_out else None)
    return 0


def cmd_send(a: argparse.Namespace) -> int:
    from vla_agent.agent.ros.client import send_command

    def show(f: dict) -> None:
        if not a.json and f["kind"] != "progress":
            err.print(
                f"[dim]{f['kind']}[/dim] {f['subgoal']} step {f['step']} {f['status']}", highlight=False
            )

    from vla_agent.errors import ConfigError

    try:
        options = json.loads(a.options) if a.options else None
    except json.JSONDecodeError as e:
        raise ConfigError(f"--options is not JSON ({e.msg} at column {e.colno})") from None
    result = send_command(a.command, a.namespace, options, show, a.cancel_after, a.timeout)
    if a.json:
        print(json.dumps(result))
    else:
        out.print(f"[b]{result['status']}[/b] {result['reason']}")
        if result.get("goals"):
            out.print(f"goals: {', '.join(result['goals'])}")
    return 0 if result["status"] == "success" else 1


def cmd_plan(a: argparse.Namespace) -> int:
    from vla_agent.agent.ros.client import plan_command

    result = plan_command(a.command, a.namespace)
    if a.json:
        print(json.dumps(result))
    else:
        out.print(f"[b]{result['status']}[/b] {result['message']}")
        for i, s in enumerate(result["subgoals"], 1):
            out.print(f"  {i}. {s}")
    return 0 if result["status"] == "plan" else 1


def cmd_build(a: argparse.Namespace) -> int:
    from vla_agent.agent.ros.runtime import build_interfaces, interfaces

    prefix = build_interfaces(force=a.force)
    interfaces()
    out.print(f"vla_agent_msgs built and loadable: {prefix}")
    return 0


def add_ros(sub) -> None:
    ros = sub.add_parser(
        "ros",
        help="ROS 2: serve vla-agent as a node, run the simulator as a ROS robot, send commands",
        description="ROS 2 from PyPI wheels (pip install 'vla-agent[ros]'). " + DDS_NOTE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  vla-agent ros serve --policy expert            the simulator as a ROS 2 action server\n"
        "  vla-agent ros send 'put the red block in the bowl'\n"
        "  vla-agent ros sim-robot --calibration-out cal.yaml   the simulator behind robot topics\n"
        "  vla-agent run 'put the red block in the bowl' --backend ros --calibration cal.yaml --yes",
    )
    rs = ros.add_subparsers(dest="ros_command", metavar="SUBCOMMAND", required=True)

    s = rs.add_parser("serve", help="vla-agent as a ROS 2 node: execute_command action, plan/stop services")
    agent_options(s)
    real_options(s)
    s.add_argument("--namespace", default="vla_agent", help="the node's namespace (default vla_agent)")
    s.add_argument("--out-root", default="runs/ros", help="one report folder per goal under this folder")
    s.set_defaults(func=cmd_serve)

    r = rs.add_parser("sim-robot", help="the PyBullet cell behind ROS 2 topics, as a robot driver would be")
    r.add_argument("--scene", default="red block, blue bowl", help="objects on the table")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--randomize", action="store_true")
    r.add_argument("--ros-config", default="", help="topics, frames, rate, robot (YAML; default: built-in)")
    r.add_argument("--calibration-out", default=None, help="write the camera-to-base calibration here")
    r.add_argument("--truth-out", default=None, help="write the world's ground truth here on exit")
    r.add_argument("--stall-state-after", type=float, default=None, help="stop the state topics S s in")
    r.set_defaults(func=cmd_sim_robot)

    for name, fn, text in (("send", cmd_send, "send a command to a node's execute_command action"),
                           ("plan", cmd_plan, "ask a node's plan_command service for a plan")):  # fmt: skip
        c = rs.add_parser(name, help=text)
        c.add_argument("command")
        c.add_argument("--namespace", default="/vla_agent")
        c.add_argument("--json", action="store_true")
        if name == "send":
            c.add_argument(
                "--options", default=None, help='goal options JSON, e.g. \'{"seed": 3, "reset": true}\''
            )
            c.add_argument("--cancel-after", type=float, default=None, help="cancel (e-stop) after S seconds")
            c.add_argument("--timeout", type=float, default=600.0)
        c.set_defaults(func=fn)

    b = rs.add_parser("build", help="build the vla_agent_msgs interfaces now (otherwise done on first use)")
    b.add_argument("--force", action="store_true")
    b.set_defaults(func=cmd_build)
