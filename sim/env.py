"""The PyBullet tabletop world as a ``gymnasium.Env``.

Task description: a robot arm (``EnvConfig.robot``: a registered ``RobotSpec``, the Franka Panda
by default, fixed base at the origin; the xArm 6 is mounted 15 cm closer) faces a table with blocks, bowls and
plates. The environment itself is task-agnostic; a goal (list of predicates) may be given to
``reset`` to get a sparse reward and termination.

Actions: 7-D end-effector delta ``[dx, dy, dz, droll, dpitch, dyaw, gripper]`` in the base frame,
per control step (10 Hz by default, 24 PyBullet substeps at 240 Hz), tracked through IK and joint
position control. Orientation deltas act on the *tool frame* (the grasp frame turned so that
"gripper pointing down" is roll = pitch = 0). ``gripper >= 0`` opens, ``< 0`` closes.
NaN/inf or out-of-range actions raise ``ActionError``: the robot never moves on bad data.

Observations (openpi keys): ``observation/image`` (H,W,3 uint8 static camera),
``observation/depth`` (H,W float32 metres), ``observation/segmentation`` (H,W int32 object index
into ``info["objects"]`` or -1; simulator-only), ``observation/wrist_image`` (a camera on the
hand looking along the fingers, ``wrist_size`` square; off with ``wrist_camera=False``),
``observation/state`` = ``[x, y, z, roll, pitch, yaw, gripper_width]``,
``observation/joint_position`` (the measured arm joint angles, 7 on the Panda and 6 on the xArm;
openpi's DROID key; the safety shield's twin predicts moves from them) and ``prompt``.

Randomizations (``EnvConfig.randomize``): object shades, lighting, camera pose jitter, table
colour. Object positions and yaws are always sampled from the seed unless the scene fixes them.
Success conditions: see ``vla_agent.sim.predicates``.
"""

from __future__ import annotations

import math
import string
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p
from pydantic import BaseModel, ConfigDict, Field

from vla_agent.errors import ActionError, ConfigError
from vla_agent.sim import assets
from vla_agent.sim.camera import (
    VIEWER_EYE,
    VIEWER_TARGET,
    CameraConfig,
    Frame,
    Light,
    caption,
    look_at_extrinsics,
    render,
)
from vla_agent.sim.catalog import (
    COLORS,
    KINDS,
    SceneSpec,
    free_spot,
    random_scene,
)
from vla_agent.sim.predicates import ObjectState, WorldState, evaluate, holds
from vla_agent.sim.robots.base import robot_spec
from vla_agent.types import (
    ACTION_DIM,
    DEPTH,
    IMAGE,
    JOINTS,
    PROMPT,
    SEGMENTATION,
    STATE,
    STATE_DIM,
    WRIST_IMAGE,
    Predicate,
)

_FLIP = p.getQuaternionFromEuler([math.pi, 0.0, 0.0])  # tool frame = grasp frame turned about x
TABLE_COLORS = [(0.62, 0.50, 0.38), (0.55, 0.55, 0.55), (0.72, 0.64, 0.52), (0.45, 0.38, 0.30)]


class EnvConfig(BaseModel):
    """Configuration of ``TabletopEnv``; validated on construction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    control_hz: float = Field(10.0, gt=0, le=60)
    physics_hz: float = Field(240.0, gt=0)
    image_size: int = Field(128, ge=32, le=1024)
    wrist_camera: bool = True  # the VLA uses it; 64x64 costs ~1 ms per step
    wrist_size: int = Field(64, ge=16, le=1024)
    segmentation: bool = True
    randomize: bool = False
    max_episode_steps: int = Field(400, ge=1)
    max_translation: float = Field(0.04, gt=0, description="metres per control step")
    max_rotation: float = Field(0.25, gt=0, description="radians per control step")
    random_objects: tuple[int, int] = (3, 6)  # object count range for scenes sampled from the seed
    video_size: tuple[int, int] = (640, 480)  # width, height of ``render()``: the viewer camera
    caption: bool = True  # ``render()`` writes the prompt (the running subgoal) under the picture
    robot: str = Field("panda", description="a registered robot (vla-agent plugins): panda, xarm6, ...")
    base_position: tuple[float, float, float] | None = Field(
        None, description="where the robot's base stands (default: its spec's mounting in this cell)"
    )

    @property
    def substeps(self) -> int:
        return max(1, round(self.physics_hz / self.control_hz))


class TabletopEnv(gym.Env):
    """PyBullet tabletop with a robot arm from its spec. See the module docstring for the spaces."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, config: EnvConfig | None = None, render_mode: str | None = "rgb_array"):
        self.config = config or EnvConfig()
        self.robot_spec = robot_spec(self.config.robot)
        self.base = tuple(self.config.base_position or self.robot_spec.base_position)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.config.control_hz}
        c, s = self.config, self.config.image_size
        self.action_limits = np.array([c.max_translation] * 3 + [c.max_rotation] * 3 + [1.0])
        self.action_space = gym.spaces.Box(-self.action_limits, self.action_limits, dtype=np.float64)
        state_hi = np.array([2.0, 2.0, 2.0, np.pi, np.pi, np.pi, 0.1], dtype=np.float32)
        self.camera = CameraConfig(width=s, height=s)
        obs_spaces: dict[str, gym.Space] = {
            IMAGE: gym.spaces.Box(0, 255, (s, s, 3), np.uint8),
            DEPTH: gym.spaces.Box(0.0, self.camera.far, (s, s), np.float32),
            STATE: gym.spaces.Box(-state_hi, state_hi, (STATE_DIM,), np.float32),
            JOINTS: gym.spaces.Box(-4.0, 4.0, (self.robot_spec.dof,), np.float32),
            PROMPT: gym.spaces.Text(max_length=512, min_length=0, charset=string.printable),
        }
        if c.segmentation:
            obs_spaces[SEGMENTATION] = gym.spaces.Box(-1, 2**24, (s, s), np.int32)
        if c.wrist_camera:
            w = c.wrist_size
            obs_spaces[WRIST_IMAGE] = gym.spaces.Box(0, 255, (w, w, 3), np.uint8)
        self.observation_space = gym.spaces.Dict(obs_spaces)
        self.cid = p.connect(p.DIRECT)
        self.scene: SceneSpec | None = None
        self.names: list[str] = []
        self.bodies: dict[str, int] = {}
        self.prompt = ""
        self.goal: tuple[Predicate, ...] = ()
        self.steps = 0
        self.render_time_s = 0.0
        self.frames_rendered = 0
        self._reference: dict[str, np.ndarray] = {}
        self._light = Light()
        self._cam_pose = look_at_extrinsics(self.camera.eye, self.camera.target)
        self._last_obs: dict[str, Any] | None = None

    # ------------------------------------------------------------------ episode
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        scene = options.pop("scene", None)
        self.prompt = str(options.pop("prompt", ""))
        self.goal = tuple(Predicate.parse(g) if isinstance(g, str) else g for g in options.pop("goal", ()))
        if options:
            raise ConfigError(f"unknown reset options: {sorted(options)}; valid: scene, prompt, goal")
        if isinstance(scene, str):
            scene = SceneSpec.parse(scene)
        rng = self.np_random
        self.scene = scene or random_scene(rng, *self.config.random_objects)
        self._build(rng)
        self.steps = 0
        self.snapshot()
        obs = self._observe()
        return obs, self._info()

    def _build(self, rng: np.random.Generator) -> None:
        cid, c = self.cid, self.config
        p.resetSimulation(physicsClientId=cid)
        p.setGravity(0, 0, -9.81, physicsClientId=cid)
        p.setPhysicsEngineParameter(
            fixedTimeStep=1.0 / c.physics_hz, numSolverIterations=60, physicsClientId=cid
        )
        table_rgb = TABLE_COLORS[0]
        self._light = Light()
        self._cam_pose = look_at_extrinsics(self.camera.eye, self.camera.target)
        if c.randomize:
            table_rgb = np.clip(
                np.array(TABLE_COLORS[rng.integers(len(TABLE_COLORS))]) + rng.normal(0, 0.03, 3), 0, 1
            )
            d = rng.normal([0.4, -0.3, 1.0], [0.5, 0.5, 0.2])
            self._light = Light(
                direction=tuple(d),
                color=tuple(rng.uniform(0.85, 1.0, 3)),
                ambient=float(rng.uniform(0.45, 0.7)),
                diffuse=float(rng.uniform(0.3, 0.55)),
            )
            eye = np.array(self.camera.eye) + rng.uniform(-0.02, 0.02, 3)
            tgt = np.array(self.camera.target) + rng.uniform(-0.02, 0.02, 3)
            self._cam_pose = look_at_extrinsics(eye, tgt)
        self.table = assets.load_table(cid, (*table_rgb, 1.0))
        rs = self.robot_spec
        self.robot = assets.load_robot(cid, rs, self.base)
        rest = np.array(rs.rest_pose)
        if c.randomize:
            rest = rest + rng.uniform(-0.05, 0.05, rs.dof)
        for j, q in zip(rs.arm_joints, rest):
            p.resetJointState(self.robot, j, q, physicsClientId=cid)
        for j, q in zip(rs.gripper_joints, rs.gripper_open):
            p.resetJointState(self.robot, j, q, physicsClientId=cid)
        self.gripper_open = True
        self.names = self.scene.names
        self.bodies = {}
        placed: list[tuple[float, float, float]] = []
        for name, spec in zip(self.names, self.scene.objects):
            xy = spec.position or free_spot(rng, KINDS[spec.kind].footprint_radius, placed)
            placed.append((xy[0], xy[1], KINDS[spec.kind].footprint_radius))
            yaw = spec.yaw if spec.yaw is not None else float(rng.uniform(-math.pi, math.pi))
            rgb = np.array(COLORS[spec.color])
            if c.randomize:
                rgb = np.clip(rgb + rng.normal(0, 0.035, 3), 0, 1)
            self.bodies[name] = assets.CREATORS[spec.kind](cid, (*rgb, 1.0), xy, yaw)
        self._body_index = {b: i for i, b in enumerate(self.bodies.values())}
        self._seg_lut = None
        pos, rpy = self._tool_pose()
        self._target_pos, self._target_rpy = pos, rpy
        self._command_arm(pos, rpy)
        self._command_gripper(True)
        for _ in range(c.substeps):
            p.stepSimulation(physicsClientId=cid)

    # ------------------------------------------------------------------ control
    def step(self, action):
        a = self.validate_action(action)
        pos, rpy = self._tool_pose()
        # Deltas apply to the measured pose (as on real arms): the dynamics stay Markov in the
        # observation, with no hidden integrator a policy would have to infer.
        self._target_pos, self._target_rpy = pos + a[:3], rpy + a[3:6]
        self._command_arm(self._target_pos, self._target_rpy)
        self._command_gripper(a[6] >= 0.0)
        for _ in range(self.config.substeps):
            p.stepSimulation(physicsClientId=self.cid)
        self.steps += 1
        obs = self._observe()
        reward, terminated = 0.0, False
        if self.goal:
            terminated = self.goal_reached()
            reward = float(terminated)
        truncated = self.steps >= self.config.max_episode_steps
        return obs, reward, terminated, truncated, self._info()

    def validate_action(self, action) -> np.ndarray:
        """Return the action as a float array, or raise ActionError (shape, NaN/inf, range)."""
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            raise ActionError(f"action is not numeric: {action!r}") from None
        if a.shape != (ACTION_DIM,):
            raise ActionError(f"action must have shape ({ACTION_DIM},), got {a.shape}")
        bad = ~np.isfinite(a)
        if bad.any():
            raise ActionError(f"action has NaN/inf at index {int(np.flatnonzero(bad)[0])}: {a.tolist()}")
        over = np.abs(a) > self.action_limits + 1e-9
        if over.any():
            i = int(np.flatnonzero(over)[0])
            names = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]
            raise ActionError(f"action {names[i]}={a[i]:.4f} exceeds its limit +-{self.action_limits[i]:.4f}")
        return a

    def _command_arm(self, pos: np.ndarray, rpy: np.ndarray) -> None:
        rs = self.robot_spec
        orn = assets.link_orientation(rpy)
        q = assets.robot_ik(self.cid, self.robot, rs, pos, orn, rs.ik_iterations, rs.ik_threshold)
        p.setJointMotorControlArray(
            self.robot,
            rs.arm_joints,
            p.POSITION_CONTROL,
            targetPositions=q,
            forces=rs.arm_forces,
            positionGains=[0.2] * rs.dof,
            physicsClientId=self.cid,
        )

    def _command_gripper(self, open_: bool) -> None:
        self.gripper_open = open_
        rs = self.robot_spec
        n = len(rs.gripper_joints)
        p.setJointMotorControlArray(
            self.robot,
            rs.gripper_joints,
            p.POSITION_CONTROL,
            targetPositions=rs.gripper_open if open_ else rs.gripper_closed,
            forces=[rs.gripper_force] * n,
            positionGains=[rs.gripper_gain] * n,
            physicsClientId=self.cid,
        )

    # ------------------------------------------------------------------ sensing
    def _tool_pose(self) -> tuple[np.ndarray, np.ndarray]:
        st = p.getLinkState(
            self.robot, self.robot_spec.tool_link, computeForwardKinematics=True, physicsClientId=self.cid
        )
        orn = p.multiplyTransforms([0, 0, 0], st[5], [0, 0, 0], _FLIP)[1]
        return np.array(st[4]), np.array(p.getEulerFromQuaternion(orn))

    def gripper_width(self) -> float:
        js = p.getJointStates(self.robot, self.robot_spec.gripper_joints, physicsClientId=self.cid)
        return self.robot_spec.gripper_width([j[0] for j in js])

    def joint_positions(self) -> np.ndarray:
        """The measured arm joint angles (rad), as an arm's controller reports them."""
        js = p.getJointStates(self.robot, self.robot_spec.arm_joints, physicsClientId=self.cid)
        return np.array([j[0] for j in js], np.float32)

    def robot_state(self) -> np.ndarray:
        pos, rpy = self._tool_pose()
        return np.concatenate([pos, rpy, [self.gripper_width()]]).astype(np.float32)

    def _render(self, size: int, T_cam, segmentation: bool) -> Frame:
        t0 = time.perf_counter()
        f = render(
            self.cid,
            size,
            size,
            self.camera.fov_deg,
            self.camera.near,
            self.camera.far,
            T_cam,
            self._light,
            segmentation,
        )
        self.render_time_s += time.perf_counter() - t0
        self.frames_rendered += 1
        return f

    def wrist_pose(self) -> np.ndarray:
        st = p.getLinkState(
            self.robot, self.robot_spec.hand_link, computeForwardKinematics=True, physicsClientId=self.cid
        )
        R = np.array(p.getMatrixFromQuaternion(st[5])).reshape(3, 3)
        eye = np.array(st[4]) + R @ np.array(self.robot_spec.wrist_camera)
        return look_at_extrinsics(eye, eye + R @ np.array([0.0, 0.0, 1.0]), up=R @ np.array([1.0, 0.0, 0.0]))

    def _observe(self) -> dict[str, Any]:
        c = self.config
        frame = self._render(c.image_size, self._cam_pose, c.segmentation)
        self.last_frame = frame
        obs: dict[str, Any] = {
            IMAGE: frame.rgb,
            DEPTH: frame.depth,
            STATE: self.robot_state(),
            JOINTS: self.joint_positions(),
            PROMPT: self.prompt,
        }
        if c.segmentation:
            obs[SEGMENTATION] = self._seg_to_index(frame.segmentation)
        if c.wrist_camera:
            self.last_wrist_frame = self._render(c.wrist_size, self.wrist_pose(), False)
            obs[WRIST_IMAGE] = self.last_wrist_frame.rgb
        self._last_obs = obs
        return obs

    def _seg_to_index(self, seg: np.ndarray) -> np.ndarray:
        if self._seg_lut is None:
            n = max(self._body_index, default=0) + 2
            lut = np.full(max(n, self.robot + 2, self.table + 2), -1, np.int32)
            for body, idx in self._body_index.items():
                lut[body] = idx
            self._seg_lut = lut
        lut = self._seg_lut
        return np.where((seg >= 0) & (seg < len(lut)), lut[np.clip(seg, 0, len(lut) - 1)], -1).astype(
            np.int32
        )

    def render(self) -> np.ndarray | None:
        """What a person watches (videos, reports): a viewer camera at ``video_size`` that shows
        the arm and the table from the side, the running subgoal as a caption; separate from the
        cameras the policy sees, and rendered only when asked for."""
        if self.render_mode != "rgb_array":
            return None
        w, h = self.config.video_size
        T = look_at_extrinsics(np.array(VIEWER_EYE), np.array(VIEWER_TARGET))
        rgb = render(self.cid, w, h, 50.0, 0.02, 4.0, T, self._light, False).rgb
        return caption(rgb, self.prompt) if self.config.caption and self.prompt else rgb

    @property
    def camera_frame(self) -> Frame:
        """The last static-camera frame with intrinsics and extrinsics."""
        return self.last_frame

    def set_prompt(self, prompt: str) -> None:
        self.prompt = prompt

    # ------------------------------------------------------------------ ground truth
    def world_state(self) -> WorldState:
        objs = {}
        for name, spec in zip(self.names, self.scene.objects):
            body = self.bodies[name]
            pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=self.cid)
            touching = sum(
                bool(p.getContactPoints(self.robot, body, linkIndexA=f, physicsClientId=self.cid))
                for f in self.robot_spec.finger_links
            )
            yaw = p.getEulerFromQuaternion(orn)[2]
            objs[name] = ObjectState(name, spec.kind, spec.color, np.array(pos), yaw, touching)
        return WorldState(objs, reference=dict(self._reference))

    def kinds(self) -> dict[str, str]:
        """Object name -> kind (block, bowl, plate) of the current scene."""
        return {n: o.kind for n, o in zip(self.names, self.scene.objects)}

    def snapshot(self) -> None:
        """Record object positions as the reference of ``moved(obj, direction)``."""
        self._reference = {
            n: np.array(p.getBasePositionAndOrientation(b, physicsClientId=self.cid)[0])
            for n, b in self.bodies.items()
        }

    def evaluate(self, pred: Predicate | str) -> bool:
        return evaluate(self.world_state(), pred)

    def holds(self) -> list[Predicate]:
        return holds(self.world_state())

    def goal_reached(self, goal: Sequence[Predicate] | None = None) -> bool:
        w = self.world_state()
        return all(evaluate(w, g) for g in (goal if goal is not None else self.goal))

    def _info(self) -> dict[str, Any]:
        return {"objects": list(self.names), "steps": self.steps}

    def close(self) -> None:
        if self.cid is not None and p.isConnected(self.cid):
            p.disconnect(self.cid)
        self.cid = None


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi
