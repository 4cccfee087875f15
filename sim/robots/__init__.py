"""Robot embodiments as ``RobotSpec`` records, registered by name (``panda``, ``xarm6``; plugins
add theirs through the ``vla_agent.robots`` entry point group)."""

from vla_agent.sim.robots.base import ROBOTS, RobotSpec, robot_spec
from vla_agent.sim.robots.panda import PANDA
from vla_agent.sim.robots.xarm6 import XARM6

__all__ = ["PANDA", "ROBOTS", "XARM6", "RobotSpec", "robot_spec"]
