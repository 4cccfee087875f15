"""``record-sim`` and ``calibrate``: the real-robot tools."""

from __future__ import annotations

import argparse
import json

from vla_agent.cli.common import (
    out,
)


def cmd_record_sim(a: argparse.Namespace) -> int:
    import numpy as np

    from vla_agent.agent.real.calibration import Calibration
    from vla_agent.agent.real.recording import write_recording
    from vla_agent.sim.catalog import SceneSpec
    from vla_agent.sim.env import EnvConfig, TabletopEnv
    from vla_agent.types import DEPTH, IMAGE

    scene = SceneSpec.parse(a.scene)
    if a.targets:  # the calibration sheet: a plate (a flat coloured disc) on each target
        from vla_agent.agent.real.calibration import load_targets
        from vla_agent.sim.catalog import ObjectSpec

        scene = SceneSpec(
            objects=tuple(
                ObjectSpec(kind="plate", color=t.color, position=t.position[:2])
                for t in load_targets(a.targets)
            )
        )
    env = TabletopEnv(EnvConfig(image_size=a.size, randomize=a.randomize))
    try:
        obs, _ = env.reset(seed=a.seed, options={"scene": scene})
        frames = [(obs[IMAGE], obs[DEPTH])]
        hold = np.array([0, 0, 0, 0, 0, 0, 1.0])
        for _ in range(a.frames - 1):
            obs, *_ = env.step(hold)
            frames.append((obs[IMAGE], obs[DEPTH]))
        cam = env.camera_frame
        path = write_recording(a.out, frames, cam.intrinsics, fps=int(env.config.control_hz))
    finally:
        env.close()
    calib = Calibration(
        T_base_camera=cam.extrinsics.tolist(), method="simulator ground truth (record-sim)", residual_mm=0.0
    ).save(path.with_suffix(".calib.yaml"))
    out.print(f"wrote {path} ({len(frames)} frames, {a.size}x{a.size}) and {calib}")
    return 0


def cmd_calibrate(a: argparse.Namespace) -> int:
    from vla_agent.agent.real.calibration import calibrate, load_calibration, load_targets, target_errors_mm
    from vla_agent.agent.real.camera import RealSenseCamera

    targets = load_targets(a.targets)
    with RealSenseCamera(a.camera, hold_last=True) as cam:
        frames = [cam.read() for _ in range(a.frames)]
    if a.action == "create":
        calib = calibrate(frames, targets, serial=cam.serial)
        calib.save(a.calibration)
        errors = target_errors_mm(frames, targets, calib.T)
        result = {"calibration": str(a.calibration), "residual_mm": calib.residual_mm, "errors_mm": errors}
    else:
        calib = load_calibration(a.calibration)
        errors = target_errors_mm(frames, targets, calib.T)
        missing = [t.color for t in targets if t.color not in errors]
        worst = max(errors.values(), default=float("inf"))
        result = {
            "calibration": str(a.calibration),
            "errors_mm": errors,
            "missing": missing,
            "max_mm": worst,
            "ok": worst <= a.tolerance_mm and not missing,
        }
    if a.json:
        print(json.dumps(result))
    else:
        for color, e in errors.items():
            out.print(f"  {color:>8}: {e:6.1f} mm")
        out.print(f"{a.action}: {json.dumps({k: v for k, v in result.items() if k != 'errors_mm'})}")
    return 0 if result.get("ok", True) else 1


# ---------------------------------------------------------------------- parsers
def add_record_sim(sub) -> None:
    rs_ = sub.add_parser(
        "record-sim",
        help="write a RealSense recording (.db3) of a simulated scene, with its calibration",
        description="Render the simulator's camera and record it through pyrealsense2's software device, "
        "as a D4xx would (colour + aligned depth + intrinsics), plus REC.calib.yaml with the true "
        "extrinsics: a recording to try --backend real --camera file:REC.db3 without hardware.",
    )
    rs_.add_argument("out", help="recording path (.db3)")
    rs_.add_argument("--scene", default="red block, blue block, green block, yellow bowl")
    rs_.add_argument("--seed", type=int, default=0)
    rs_.add_argument("--frames", type=int, default=5)
    rs_.add_argument("--size", type=int, default=128, help="image size in pixels (square)")
    rs_.add_argument("--randomize", action="store_true")
    rs_.add_argument(
        "--targets", default=None, help="record a calibration sheet instead: discs at these targets"
    )
    rs_.set_defaults(func=cmd_record_sim)


def add_calibrate(sub) -> None:
    ca = sub.add_parser(
        "calibrate",
        help="camera-to-base extrinsics from coloured targets at known positions (create, check)",
        description="create: find the coloured discs of TARGETS in the camera's RGB-D frames and solve the "
        "camera-to-base transform (Kabsch), written as YAML. check: each target's error in mm with an "
        "existing calibration; exit 1 above --tolerance-mm. See examples/calibration/targets.yaml.",
    )
    ca.add_argument("action", choices=["create", "check"])
    ca.add_argument("--camera", default="", help="serial:NUMBER | file:REC.db3 (default: first RealSense)")
    ca.add_argument("--targets", default="examples/calibration/targets.yaml", help="targets YAML")
    ca.add_argument("--calibration", default="calibration.yaml", help="calibration YAML to write or check")
    ca.add_argument("--frames", type=int, default=5, help="frames to average")
    ca.add_argument("--tolerance-mm", type=float, default=10.0)
    ca.add_argument("--json", action="store_true")
    ca.set_defaults(func=cmd_calibrate)
