"""``write_recording``: RGB-D frames (e.g. simulated ones) recorded as a RealSense recording
through pyrealsense2's software device and recorder, as a D4xx would record them: colour, depth
aligned to colour (or a separate depth camera with its extrinsics), intrinsics. What the tests
and ``vla-agent record-sim`` use to exercise the real path without hardware."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from vla_agent.agent.real.camera import CameraError, _rs


def write_recording(
    path: str | Path,
    frames: Iterable[tuple[np.ndarray, np.ndarray]],
    K: np.ndarray,
    fps: int = 30,
    depth_units: float = 0.001,
    depth_K: np.ndarray | None = None,
    depth_to_color: np.ndarray | None = None,
) -> Path:
    """Record (rgb uint8 HxWx3, depth metres HxW) pairs as a RealSense recording through the SDK's
    software device and recorder: what a D4xx would have written, readable by ``RealSenseCamera``
    and by Intel's own tools (pyrealsense2 2.59 writes ``.db3`` only; older ``.bag`` files play).
    Depth is in the colour camera's pixels unless ``depth_K`` / ``depth_to_color`` (4x4, depth camera
    to colour camera) say that it comes from a separate depth camera, as on a D4xx."""
    rs = _rs()
    path = Path(path)
    if path.suffix != ".db3":
        raise CameraError(f"{path}: pyrealsense2 records .db3 files")
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = list(frames)
    if not frames:
        raise CameraError("write_recording needs at least one frame")
    h, w = frames[0][1].shape
    dev = rs.software_device()
    sensors = {"depth": dev.add_sensor("Depth"), "color": dev.add_sensor("Color")}

    def intrinsics(K):
        intr = rs.intrinsics()
        intr.width, intr.height = w, h
        intr.fx, intr.fy = float(K[0, 0]), float(K[1, 1])
        intr.ppx, intr.ppy = float(K[0, 2]), float(K[1, 2])
        intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
        return intr

    intr = {"depth": intrinsics(K if depth_K is None else depth_K), "color": intrinsics(K)}
    profiles = {}
    for uid, (name, stream, fmt, bpp) in enumerate(
        (("depth", rs.stream.depth, rs.format.z16, 2), ("color", rs.stream.color, rs.format.rgb8, 3))
    ):
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid, vs.width, vs.height = stream, 0, uid, w, h
        vs.fps, vs.bpp, vs.fmt, vs.intrinsics = fps, bpp, fmt, intr[name]
        profiles[name] = sensors[name].add_video_stream(vs)
    sensors["depth"].add_read_only_option(rs.option.depth_units, depth_units)
    T = np.eye(4) if depth_to_color is None else np.asarray(depth_to_color, np.float64)
    extr = rs.extrinsics()  # librealsense stores the rotation column-major
    extr.rotation, extr.translation = T[:3, :3].T.ravel().tolist(), T[:3, 3].tolist()
    profiles["depth"].register_extrinsics_to(profiles["color"], extr)
    dev.create_matcher(rs.matchers.default)
    recorder = rs.recorder(str(path), dev)
    sync = rs.syncer()
    for name, s in sensors.items():
        s.open(profiles[name])
        s.start(sync)
    for i, (rgb, depth_m) in enumerate(frames):
        z16 = np.clip(np.nan_to_num(np.asarray(depth_m, np.float64), nan=0.0) / depth_units, 0, 65535).astype(
            np.uint16
        )
        for name, pixels, bpp in (("depth", z16, 2), ("color", np.ascontiguousarray(rgb, np.uint8), 3)):
            f = rs.software_video_frame()
            f.pixels, f.bpp, f.stride = pixels, bpp, w * bpp
            f.timestamp, f.domain, f.frame_number = i * 1000.0 / fps, rs.timestamp_domain.hardware_clock, i
            f.profile = profiles[name].as_video_stream_profile()
            if name == "depth":
                f.depth_units = depth_units
            sensors[name].on_video_frame(f)
        sync.try_wait_for_frames(100)
    for s in sensors.values():
        s.stop()
        s.close()
    del recorder  # flushes the file
    return path
