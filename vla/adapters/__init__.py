"""Policy adapters: the conventions of hosted VLAs, as data.

A policy server trained elsewhere expects its own inputs (camera keys, image size and rotation,
a state layout, a prompt key, extra fields) and sends its own outputs (delta or absolute poses,
a rotation representation, a gripper sign and range, its control rate, chunks of some length).
An ``AdapterConfig`` says all of that; ``convention.encode``/``decode`` apply it. Presets:

- ``vla-agent``: our own server (``vla-agent serve``), nothing to convert.
- ``openpi-libero``: the π0 / π0-FAST / π0.5 LIBERO checkpoints behind openpi's ``serve_policy``
  (openpi ``examples/libero/main.py`` and ``policies/libero_policy.py``): 224 px images resized
  with padding after a 180° rotation, ``observation/image`` + ``observation/wrist_image``, an 8-D
  state (end-effector position, axis-angle, two finger positions), ``prompt``; replies
  ``{"actions": (10, 7)}`` for robosuite's OSC_POSE controller at 20 Hz: deltas in [-1, 1]
  scaled by 0.05 m and 0.5 rad (robosuite ``controllers/config/osc_pose.json``), rotations as
  axis-angle, gripper -1 open / +1 closed (LIBERO's dummy action ``[0]*6 + [-1]``); openpi's
  example replans every 5 steps (2 of our ticks).
- ``openvla-bridge``: OpenVLA behind ``vla-scripts/deploy.py`` (REST ``POST /act`` with
  json-numpy arrays ``{"image", "instruction", "unnorm_key"}``, one 7-D action back) with the
  Bridge statistics: metres and radians (roll/pitch/yaw deltas) per step at 5 Hz, gripper in
  [0, 1] with 1 open (``experiments/robot/robot_utils.py``: the RLDS loader's 0 = close,
  1 = open).

Write ``--adapter NAME`` for a preset, ``--adapter NAME:field=value,...`` to override fields of
one (``openpi-libero:gripper_open=1,gripper_closed=-1``), or ``--adapter file.yaml`` for your own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vla_agent.errors import ConfigError
from vla_agent.registry import Registry, registry
from vla_agent.types import IMAGE, PROMPT, STATE, WRIST_IMAGE


class AdapterConfig(BaseModel):
    """How one hosted policy wants its observations and sends its actions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    transport: Literal["openpi-ws", "openvla-rest"] = Field(
        "openpi-ws", description="openpi's websocket protocol or OpenVLA's REST /act"
    )
    # inputs
    image_key: str = IMAGE
    wrist_key: str | None = Field(WRIST_IMAGE, description="None: no wrist image is sent")
    image_size: int | None = Field(None, ge=8, description="resize with padding to this square")
    wrist_size: int | None = Field(None, ge=8, description="default: image_size")
    rotate_180: bool = False
    state_key: str | None = STATE
    state_layout: Literal["xyz_rpy_width", "xyz_axisangle_fingers"] = "xyz_rpy_width"
    prompt_key: str = PROMPT
    lowercase_prompt: bool = False
    extra: dict[str, Any] = Field(default_factory=dict, description="fields sent with every request")
    send_object_start: bool = False
    # outputs
    actions_key: str = Field("actions", description="'' for a reply that is the action array itself")
    action: Literal["delta", "absolute"] = "delta"
    rotation: Literal["euler", "axisangle"] = "euler"
    translation_scale: float = Field(1.0, gt=0, description="metres per unit of the policy's action")
    rotation_scale: float = Field(1.0, gt=0, description="radians per unit")
    gripper_open: float = Field(1.0, description="the policy's gripper value for open")
    gripper_closed: float = Field(-1.0, description="... and for closed (the midpoint decides)")
    control_hz: float = Field(10.0, gt=0, description="the rate the policy's steps are meant for")
    execute: int = Field(2, ge=1, description="our control ticks executed per chunk (synchronous mode)")
    extras: bool = Field(False, description="read vla-agent's reply fields (gripper_prob, done_prob, ...)")

    def model_post_init(self, _: Any) -> None:
        if self.gripper_open == self.gripper_closed:
            raise ValueError("gripper_open and gripper_closed must differ")
        ratio = self.control_hz / 10.0
        whole = ratio if ratio >= 1 else 1 / ratio
        if abs(whole - round(whole)) > 1e-6:
            raise ValueError(f"control_hz {self.control_hz} is not a whole multiple or fraction of our 10 Hz")


ADAPTERS: Registry[AdapterConfig] = registry("adapter", "vla_agent.adapters")

ADAPTERS.register(
    "vla-agent",
    AdapterConfig(name="vla-agent", send_object_start=True, extras=True),
    help="vla-agent's own server: 128/64 px images, 7-D state, deltas with +1 = open",
)
ADAPTERS.register(
    "openpi-libero",
    AdapterConfig(
        name="openpi-libero",
        image_size=224,
        rotate_180=True,
        state_layout="xyz_axisangle_fingers",
        rotation="axisangle",
        translation_scale=0.05,
        rotation_scale=0.5,
        gripper_open=-1.0,
        gripper_closed=1.0,
        control_hz=20.0,
        execute=2,
    ),
    help="openpi's LIBERO checkpoints (pi0, pi0-FAST, pi0.5) behind serve_policy",
)
ADAPTERS.register(
    "openvla-bridge",
    AdapterConfig(
        name="openvla-bridge",
        transport="openvla-rest",
        image_key="image",
        wrist_key=None,
        image_size=256,
        state_key=None,
        prompt_key="instruction",
        extra={"unnorm_key": "bridge_orig"},
        actions_key="",
        gripper_open=1.0,
        gripper_closed=0.0,
        control_hz=5.0,
        execute=2,
    ),
    help="OpenVLA's REST server (deploy.py) with the Bridge statistics",
)


def load_adapter(spec: str | AdapterConfig | None) -> AdapterConfig:
    """A preset name, ``name:field=value,...`` overrides, or a YAML/JSON file."""
    if spec is None:
        return ADAPTERS.get("vla-agent")[0]
    if isinstance(spec, AdapterConfig):
        return spec
    path = Path(spec)
    if path.suffix in (".yaml", ".yml", ".json") and not path.exists():
        raise ConfigError(f"adapter file {path} not found")
    try:
        if path.suffix in (".yaml", ".yml", ".json"):
            import yaml

            data = (
                yaml.safe_load(path.read_text()) if path.suffix != ".json" else json.loads(path.read_text())
            )
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: an adapter file is a mapping of fields")
            base = ADAPTERS.get(data.pop("preset"))[0] if "preset" in data else AdapterConfig()
            return AdapterConfig.model_validate({**base.model_dump(), "name": path.stem, **data})
        name, _, rest = spec.partition(":")
        base = ADAPTERS.get(name)[0]
        if not rest:
            return base
        updates: dict[str, Any] = {}
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            if not eq:
                raise ConfigError(f"adapter override {item!r}: write field=value")
            import yaml

            updates[key.strip()] = yaml.safe_load(value)
        return AdapterConfig.model_validate({**base.model_dump(), **updates})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "adapter"
        raise ConfigError(f"adapter {spec!r}: {where}: {first['msg']}") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"adapter {spec!r}: {e}") from None
