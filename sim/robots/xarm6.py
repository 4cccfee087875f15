"""UFactory xArm 6 with the xArm gripper (pybullet_data's ``xarm/xarm6_with_gripper.urdf``), the
arm the real ``xarm:`` driver talks to.

The URDF is derived once: the arm's links are drawn with their convex collision meshes (the
visual meshes cost ~4x more per rendered frame), and a ``tcp`` link is added midway between the
fingertips (15.4 cm below the flange, 1.1 cm above the fingertips, as the Panda's
grasp target). The real gripper is a four-bar linkage per finger that keeps the pads parallel;
here each finger is a prismatic jaw (see ``xarm6_urdf``), coupled to the other as the Panda's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pybullet_data

from vla_agent.sim.robots.base import ROBOTS, RobotSpec, cached_urdf

TCP_OFFSET = 0.154  # metres from the flange along the tool axis: 1.1 cm above the fingertips
# Finger geometry of the xArm gripper (its URDF): the knuckle pivot's distance from the axis and
# the knuckle-to-finger offset.
_PIVOT, _KNUCKLE_Y, _FINGER_Z = 0.035, 0.035465, 0.059098 + 0.042039
OPEN_WIDTH = 0.087  # between the pads (their collision hulls), measured
FINGER_TRAVEL = OPEN_WIDTH / 2


def xarm6_urdf() -> str:
    data = Path(pybullet_data.getDataPath()) / "xarm"
    text = (data / "xarm6_with_gripper.urdf").read_text()
    text = text.replace("meshes/xarm6/visual/link6.stl", "meshes/xarm6/collision/link6_vhacd.obj")
    for link in ("base", "link1", "link2", "link3", "link4", "link5"):
        vhacd = "link2_vhacd2" if link == "link2" else f"{link}_vhacd"
        text = text.replace(f"meshes/xarm6/visual/{link}.stl", f"meshes/xarm6/collision/{vhacd}.obj")
    text = text.replace("package://", f"{data}/")
    # the base is the root (a fixed "world" link without inertia only makes PyBullet warn)
    text = re.sub(r'\s*<link name="world"/>\s*<joint name="world_joint".*?</joint>', "", text, flags=re.S)
    # The fingers as two parallel prismatic jaws (PyBullet ignores URDF mimic tags and cannot close
    # the four-bar loops: driven joint by joint, the pads tilt and squeeze a block out). The
    # knuckles stay at their open angle; each finger slides from its open pose toward the axis.
    for joint in (
        "drive_joint",
        "left_inner_knuckle_joint",
        "right_outer_knuckle_joint",
        "right_inner_knuckle_joint",
    ):
        text = _replace_joint(text, joint, lambda block: block.replace('type="revolute"', 'type="fixed"'))
    for joint, side in (("left_finger_joint", 1), ("right_finger_joint", -1)):
        jaw = (
            f'<joint name="{joint}" type="prismatic">'
            '<parent link="xarm_gripper_base_link"/>'
            f'<child link="{"left" if side > 0 else "right"}_finger"/>'
            f'<origin rpy="0 0 0" xyz="0 {side * (_PIVOT + _KNUCKLE_Y):.6f} {_FINGER_Z:.6f}"/>'
            f'<axis xyz="0 {-side} 0"/>'
            f'<limit effort="50" lower="0" upper="{FINGER_TRAVEL}" velocity="0.2"/>'
            "</joint>"
        )
        text = _replace_joint(text, joint, lambda _block, jaw=jaw: jaw)
    tcp = (
        '  <link name="tcp"><inertial><mass value="1e-4"/>'
        '<inertia ixx="1e-9" ixy="0" ixz="0" iyy="1e-9" iyz="0" izz="1e-9"/></inertial></link>\n'
        '  <joint name="tcp_joint" type="fixed">\n'
        '    <parent link="xarm_gripper_base_link"/>\n'
        '    <child link="tcp"/>\n'
        f'    <origin rpy="0 0 0" xyz="0 0 {TCP_OFFSET}"/>\n'
        "  </joint>\n"
    )
    text = text.replace("</robot>", tcp + "</robot>")
    return cached_urdf("xarm6", text)


def _replace_joint(text: str, name: str, fn) -> str:
    pattern = re.compile(rf'<joint name="{name}" type="revolute">.*?</joint>', re.S)
    if not pattern.search(text):
        raise RuntimeError(f"pybullet_data's xArm URDF has no joint {name!r}")
    return pattern.sub(lambda m: fn(m.group(0)), text, count=1)


def _width(q: Sequence[float]) -> float:
    """Metres between the pads for the two fingers' travel (0 = 8.2 cm open)."""
    return max(0.0, OPEN_WIDTH - float(q[0]) - float(q[1]))


_WHITE, _GREY, _DARK = (0.93, 0.93, 0.92, 1), (0.75, 0.76, 0.78, 1), (0.18, 0.18, 0.19, 1)

XARM6 = RobotSpec(
    name="xarm6",
    description="UFactory xArm 6 with the xArm gripper (6 joints, 8.7 cm stroke)",
    urdf=xarm6_urdf,
    arm_joints=(0, 1, 2, 3, 4, 5),
    joint_lower=(-6.283, -2.059, -3.927, -6.283, -1.693, -6.283),
    joint_upper=(6.283, 2.094, 0.192, 6.283, 3.142, 6.283),
    rest_pose=(0.0, -0.2, -1.0, 0.0, 1.2, 0.0),  # replaced below by the IK home
    arm_forces=(87.0, 87.0, 87.0, 87.0, 12.0, 12.0),  # the Panda's: with less the simulated wrist sags
    tool_link=13,
    hand_link=6,
    wrist_camera=(0.07, 0.0, 0.03),
    gripper_joints=(8, 11),
    gripper_open=(0.0, 0.0),
    gripper_closed=(FINGER_TRAVEL, FINGER_TRAVEL),
    gripper_force=40.0,
    gripper_gain=0.05,
    finger_links=(8, 11),
    gripper_width=_width,
    max_gripper_width=OPEN_WIDTH,
    # The xArm 6 reaches 70 cm: mounted 15 cm further toward the table than the Panda, it reaches
    # every region of the table with the tool pointing down.
    couple_fingers=True,
    ik_iterations=200,  # PyBullet's damped least squares converges ~5x slower on the xArm than the Panda
    base_position=(0.15, 0.0, 0.0),
    workspace_min=(0.07, -0.40, 0.012),
    workspace_max=(0.67, 0.40, 0.45),
    max_speed=0.5,
    max_rot_speed=1.0,
    link_colors={
        **dict.fromkeys(range(-1, 6), _WHITE),
        6: _GREY,
        **dict.fromkeys(range(7, 13), _DARK),
    },
)

ROBOTS.register("xarm6", lambda _arg="": XARM6, help=XARM6.description)
