"""The options every session command shares (scene, planner, policy, robot, detector, envelope)
and the typed ``AgentConfig`` they make."""

from __future__ import annotations

import argparse
from pathlib import Path

from vla_agent.cli.common import default_llm, names


def agent_config(a: argparse.Namespace):
    """The typed ``AgentConfig`` of the session options."""
    from vla_agent.agent.core.session import AgentConfig
    from vla_agent.agent.safety.shield import ShieldConfig, load_shield_config

    return AgentConfig(
        scene=a.scene,
        seed=a.seed,
        randomize=a.randomize,
        policy=getattr(a, "policy", "vla"),
        robot=getattr(a, "robot", "panda"),
        checkpoint=getattr(a, "checkpoint", None),
        lora=getattr(a, "lora", None),
        device=getattr(a, "device", "cpu"),
        api_key_file=getattr(a, "api_key_file", None),
        adapter=getattr(a, "adapter", None),
        chunks=getattr(a, "chunks", "sync"),
        realtime=getattr(a, "realtime", False),
        shield=load_shield_config(a.shield) if getattr(a, "shield", None) else ShieldConfig(),
        planner=a.planner,
        llm_model=a.llm_model,
        llm_base_url=a.llm_base_url,
        llm_timeout=a.llm_timeout,
        llm_fallback=not a.no_llm_fallback,
        llm_warm_up=a.llm_warm_up,
        detector=getattr(a, "detector", "perception"),
        max_retries=getattr(a, "retries", 1),
        max_replans=getattr(a, "replans", 2),
        home=not getattr(a, "no_home", False),
        out=Path(a.out) if getattr(a, "out", None) else None,
        video=not getattr(a, "no_video", False),
    )


def agent_options(p: argparse.ArgumentParser, policy: bool = True) -> None:
    """Add the session options to ``p`` (``policy=False``: only what planning needs)."""
    from vla_agent.agent.core.session import DEFAULT_SCENE as AGENT_SCENE

    p.add_argument(
        "--scene", default=AGENT_SCENE, help="objects to place by the seed, e.g. 'red block, blue bowl'"
    )
    p.add_argument("--seed", type=int, default=0, help="scene seed (object poses)")
    p.add_argument(
        "--randomize", action="store_true", help="domain randomization (lighting, colours, camera)"
    )
    p.add_argument("--planner", default="offline", help=f"{names('planner')} (default offline)")
    p.add_argument("--llm-model", default=default_llm(), help="LangChain provider:model")
    p.add_argument(
        "--llm-base-url", default=None, help="OpenAI-compatible server, e.g. http://localhost:11434/v1"
    )
    p.add_argument(
        "--llm-timeout",
        type=float,
        default=None,
        help="seconds per LLM request (30; 120 with --llm-base-url)",
    )
    p.add_argument(
        "--llm-warm-up",
        action="store_true",
        help="send one tiny request first (a local server loads its model)",
    )
    p.add_argument("--no-llm-fallback", action="store_true", help="fail instead of using the offline planner")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    if policy:
        p.add_argument("--policy", default="vla", help=f"{names('policy')} (default vla)")
        p.add_argument(
            "--robot",
            default="panda",
            help=f"the simulated robot: {names('robot')} (a real arm names its own; default panda)",
        )
        p.add_argument("--checkpoint", default=None, help="VLA checkpoint folder (default: the shipped one)")
        p.add_argument("--lora", default=None, help="a LoRA adapter on top of it (vla finetune --lora)")
        p.add_argument("--device", default="cpu", help="cpu | cuda")
        p.add_argument(
            "--api-key-file",
            default=None,
            help="file with the policy server's API key (else VLA_AGENT_API_KEY, "
            "then ~/.config/vla-agent/api_key)",
        )
        remote_policy_options(p)
        p.add_argument("--detector", default="perception", help=f"{names('detector')} (default perception)")
        p.add_argument(
            "--shield",
            default=None,
            metavar="FILE",
            help="YAML of the safety envelope (workspace_min/max, keep_out, max_translation, "
            "max_tilt, ...; see agent/safety/envelope.py ShieldConfig)",
        )
        p.add_argument("--retries", type=int, default=1, help="extra attempts per failed subgoal")
        p.add_argument("--replans", type=int, default=2, help="new plans after a subgoal fails for good")
        p.add_argument(
            "--no-home",
            action="store_true",
            help="do not bring the arm back to its start pose before each pick or push",
        )
        p.add_argument("--out", default=None, help="report folder (default runs/run-DATE-TIME)")
        p.add_argument("--no-video", action="store_true", help="skip the video")


def remote_policy_options(p: argparse.ArgumentParser) -> None:
    """How a policy server's inputs, outputs and chunks are handled (``--policy ws://...``)."""
    p.add_argument(
        "--adapter",
        default=None,
        help=f"the policy server's convention: {names('adapter')}, NAME:field=value,... or a YAML file "
        "(default: vla-agent; openvla-bridge for openvla+http://)",
    )
    p.add_argument(
        "--chunks",
        default="sync",
        choices=["sync", "async", "hybrid"],
        help="sync: wait for each chunk; async: request the next while one executes; hybrid: async, "
        "but sync from a forecast grasp until the object is released (chunks planned at rest where "
        "grasping and placing are precise)",
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help="dry run: the policy server's latency costs control ticks, as on a robot",
    )


def real_options(p: argparse.ArgumentParser, yes: bool = True) -> None:
    """The real-robot options (``--backend real``); ``yes=False`` when the command has its own --yes."""
    real = p.add_argument_group(
        "real robot (--backend real|ros)",
        "A RealSense camera (or a recording) and an arm driver. Every plan first runs in the PyBullet "
        "twin of the perceived scene (the shadow run); a predicted failure or unsafe intervention means "
        "nothing moves; otherwise you approve (or --yes). --scene lists the objects on the table.",
    )
    real.add_argument(
        "--backend",
        default="sim",
        choices=["sim", "real", "ros"],
        help="sim (default), real (--camera/--arm), or ros: any ROS 2 arm by topics (--ros-config)",
    )
    real.add_argument("--camera", default="", help=f"{names('camera')} (default: the first RealSense)")
    real.add_argument("--arm", default="twin", help=f"{names('arm')} (default twin: a PyBullet stand-in)")
    real.add_argument("--calibration", default=None, help="camera-to-base YAML (default: REC.calib.yaml)")
    real.add_argument(
        "--ros-config",
        default="",
        help="--backend ros: topics, frames, rates, robot (YAML; see examples/ros)",
    )
    real.add_argument("--no-shadow", action="store_true", help="skip the shadow dry run (not recommended)")
    if yes:
        real.add_argument("--yes", action="store_true", help="approve a successful shadow run without asking")


def real_config(a: argparse.Namespace):
    """The ``RealConfig`` of the real-robot options, or None for the simulator."""
    backend = getattr(a, "backend", "sim")
    if backend == "sim":
        return None
    from vla_agent.agent.real.session import RealConfig

    camera, arm = a.camera, a.arm
    if backend == "ros":  # the camera and the arm are topics of one ROS 2 robot
        camera = arm = f"ros:{a.ros_config}" if a.ros_config else "ros"
    return RealConfig(
        camera=camera,
        arm=arm,
        calibration=a.calibration,
        shadow=not a.no_shadow,
        yes=getattr(a, "yes", False),
    )


def real_confirm(question: str) -> bool:
    """Move the real arm? (Enter: no; no terminal: no.)"""
    from vla_agent.cli.common import ask_yes, err

    return ask_yes(question, default=False, console=err)
