"""Cameras by name (``--camera``): a live RealSense, one by serial number, or a recording. Other
packages add theirs under the ``vla_agent.cameras`` entry point group: a factory
``factory(arg) -> Camera`` (``start``/``read``/``stop``, ``read()`` an RGB-D frame with intrinsics)."""

from __future__ import annotations

from vla_agent.agent.real.camera import RealSenseCamera
from vla_agent.interfaces import Camera
from vla_agent.registry import registry

CAMERAS = registry("camera", "vla_agent.cameras")


@CAMERAS.register("realsense", form="realsense[:SERIAL]", help="a live Intel RealSense (default: the first)")
def _realsense(arg: str) -> Camera:
    return RealSenseCamera(f"serial:{arg}" if arg else "")


@CAMERAS.register("serial", form="serial:NUMBER", help="a live Intel RealSense by serial number")
def _serial(arg: str) -> Camera:
    return RealSenseCamera(f"serial:{arg}")


@CAMERAS.register(
    "file", form="file:REC.db3|.bag", help="a RealSense recording (a still scene: last frame held)"
)
def _file(arg: str) -> Camera:
    return RealSenseCamera(f"file:{arg}", hold_last=True)


@CAMERAS.register(
    "ros", form="ros[:CONFIG.yaml]", help="colour + aligned depth + CameraInfo from ROS 2 topics"
)
def _ros(arg: str) -> Camera:
    from vla_agent.agent.ros.robot import RosCamera, RosRobotConfig

    return RosCamera(RosRobotConfig.load(arg))


def make_camera(spec: str) -> Camera:
    """The camera ``spec`` names; empty: the first RealSense connected."""
    return CAMERAS.create(spec or "realsense")
