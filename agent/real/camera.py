"""Intel RealSense RGB-D through pyrealsense2: colour + depth aligned to colour, intrinsics, device
selection by serial, warm-up, bounded frame waits, reconnects; and playback of recordings
(``file:PATH``: ``.db3`` as pyrealsense2 2.59 records, or ``.bag``).

``write_recording`` makes a recording without hardware (pyrealsense2's software device and
recorder), e.g. of simulated frames, so the whole real path can be exercised in tests.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_agent.errors import VlaAgentError

RECORDING_SUFFIXES = (".db3", ".bag")


class CameraError(VlaAgentError):
    """No frames: no device, a dead device after reconnects, or an unreadable recording."""


def _rs():
    try:
        import pyrealsense2 as rs
    except ImportError as e:  # pragma: no cover - depends on the install
        raise CameraError("the RealSense camera needs pyrealsense2: pip install 'vla-agent[real]'") from e
    return rs


@dataclass(frozen=True)
class RGBDFrame:
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres, aligned to colour; 0 where unknown
    K: np.ndarray  # (3, 3) colour intrinsics
    timestamp_ms: float
    number: int


def parse_source(source: str) -> tuple[str, str]:
    """``""`` (first device), ``serial:NUMBER`` or ``file:PATH`` -> (kind, value)."""
    if not source or source in ("realsense", "live"):
        return "live", ""
    kind, _, value = source.partition(":")
    if kind == "serial" and value:
        return "serial", value
    if kind == "file" and value:
        path = Path(value)
        if path.suffix not in RECORDING_SUFFIXES:
            raise CameraError(f"camera file:{value}: expected a {' or '.join(RECORDING_SUFFIXES)} recording")
        if not path.exists():
            raise CameraError(f"camera file:{value}: no such recording")
        return "file", str(path)
    raise CameraError(
        f"camera {source!r}: use serial:NUMBER, file:PATH.db3|.bag, or nothing for the first device"
    )


class RealSenseCamera:
    """``read()`` -> ``RGBDFrame``. A recording plays frame by frame (not in real time); after its
    last frame it raises ``CameraError``, or with ``hold_last`` keeps returning the last frame (a
    recording of a still scene standing in for a live camera)."""

    def __init__(
        self,
        source: str = "",
        width: int = 640,
        height: int = 480,
        fps: int = 30,
        warmup: int = 15,
        timeout_ms: int = 1000,
        reconnects: int = 3,
        hold_last: bool = False,
    ):
        self.kind, self.value = parse_source(source)
        self.width, self.height, self.fps = width, height, fps
        self.warmup, self.timeout_ms, self.reconnects = warmup, timeout_ms, reconnects
        self.hold_last = hold_last
        self.depth_scale = 0.0
        self.serial = ""
        self._pipe = None
        self._playback = None
        self._align = None
        self._last: RGBDFrame | None = None
        self._ended = False

    @property
    def is_playback(self) -> bool:
        return self.kind == "file"

    def start(self) -> RealSenseCamera:
        rs = _rs()
        cfg = rs.config()
        if self.kind == "file":
            cfg.enable_device_from_file(self.value, repeat_playback=False)
        else:
            if self.kind == "serial":
                cfg.enable_device(self.value)
            cfg.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, self.fps)
            cfg.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8, self.fps)
        pipe = rs.pipeline()
        try:
            profile = pipe.start(cfg)
        except RuntimeError as e:
            where = (
                f"recording {self.value}" if self.is_playback else f"device {self.value or '(first found)'}"
            )
            raise CameraError(f"RealSense {where}: {e}") from e
        device = profile.get_device()
        self._playback = None
        if self.is_playback:  # every frame, as fast as it is read
            # Playback starts in real time with the pipeline; rewind once it reads frame by frame,
            # or the first frames may already have been dropped.
            import datetime

            self._playback = device.as_playback()
            self._playback.pause()
            self._playback.set_real_time(False)
            self._playback.seek(datetime.timedelta(0))
            self._playback.resume()
        self.serial = (
            device.get_info(rs.camera_info.serial_number)
            if device.supports(rs.camera_info.serial_number)
            else ""
        )
        self.depth_scale = float(device.first_depth_sensor().get_depth_scale())
        if not self.depth_scale > 0:
            raise CameraError(f"RealSense {self.value or 'device'} reports depth scale {self.depth_scale}")
        self._pipe, self._align, self._ended = pipe, None, False
        if not _already_aligned(rs, profile):  # align depth to colour (D4xx: separate sensors)
            self._align = rs.align(rs.stream.color)
        if not self.is_playback:
            for _ in range(self.warmup):  # auto-exposure settles
                self._wait()
        return self

    def _wait(self):
        ok, frames = self._pipe.try_wait_for_frames(self.timeout_ms)
        return frames if ok else None

    def read(self) -> RGBDFrame:
        if self._pipe is None:
            self.start()
        if self._ended:
            return self._end()
        for attempt in range(self.reconnects + 1):
            frames = self._wait()
            if frames is not None:
                frame = self._convert(frames)
                if frame is not None:
                    self._last = frame
                    return frame
                continue
            if self.is_playback:
                if self._playback_running() and attempt < self.reconnects:
                    continue  # a slow start, not the end
                self._ended = True
                return self._end()
            if attempt < self.reconnects:  # a live camera stalled: restart the pipeline
                self.stop()
                time.sleep(0.2)
                self.start()
        raise CameraError(
            f"RealSense {self.value or 'device'}: no frames within {self.timeout_ms} ms "
            f"after {self.reconnects} reconnects"
        )

    def _playback_running(self) -> bool:
        rs = _rs()
        try:
            return self._playback.current_status() != rs.playback_status.stopped
        except RuntimeError:
            return False

    def _end(self) -> RGBDFrame:
        if self.hold_last and self._last is not None:
            return self._last
        raise CameraError(
            f"recording {self.value} ended" + ("" if self._last else " without a colour+depth frame")
        )

    def _convert(self, frames) -> RGBDFrame | None:
        aligned = self._align.process(frames) if self._align is not None else frames
        color, depth = aligned.get_color_frame(), aligned.get_depth_frame()
        if not color or not depth:
            return None
        rgb = np.asanyarray(color.get_data())
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise CameraError(f"RealSense colour frames must be RGB8, got shape {rgb.shape}")
        fmt = str(color.profile.format())
        if fmt.endswith("bgr8"):
            rgb = rgb[..., ::-1]
        d = np.asanyarray(depth.get_data()).astype(np.float32) * self.depth_scale
        intr = color.profile.as_video_stream_profile().intrinsics
        K = np.array([[intr.fx, 0, intr.ppx], [0, intr.fy, intr.ppy], [0, 0, 1]], np.float64)
        return RGBDFrame(
            np.ascontiguousarray(rgb), d, K, float(color.get_timestamp()), int(color.get_frame_number())
        )

    def stop(self) -> None:
        if self._pipe is not None:
            with contextlib.suppress(RuntimeError):
                self._pipe.stop()
            self._pipe = None

    def __enter__(self) -> RealSenseCamera:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _already_aligned(rs, profile) -> bool:
    """Depth already in the colour camera's pixels (same intrinsics, identity extrinsics): aligning
    again would only punch holes at depth edges."""
    try:
        d = profile.get_stream(rs.stream.depth).as_video_stream_profile()
        c = profile.get_stream(rs.stream.color).as_video_stream_profile()
        di, ci, ex = d.get_intrinsics(), c.get_intrinsics(), d.get_extrinsics_to(c)
    except RuntimeError:
        return False
    same = (di.width, di.height, di.fx, di.fy, di.ppx, di.ppy) == (
        ci.width,
        ci.height,
        ci.fx,
        ci.fy,
        ci.ppx,
        ci.ppy,
    )
    return same and np.allclose(ex.rotation, np.eye(3).ravel()) and np.allclose(ex.translation, 0.0)


def write_recording(
    path: str | Path,
    frames: Iterable[tuple[np.ndarray, np.ndarray]],
    K: np.ndarray,
    fps: int = 30,
    depth_units: float = 0.001,
) -> Path:
    """Record (rgb uint8 HxWx3, depth metres HxW) pairs as a RealSense recording through the SDK's
    software device and recorder: what a D4xx would have written, readable by ``RealSenseCamera``
    and by Intel's own tools (pyrealsense2 2.59 writes ``.db3`` only; older ``.bag`` files play)."""
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
    intr = rs.intrinsics()
    intr.width, intr.height = w, h
    intr.fx, intr.fy, intr.ppx, intr.ppy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
    profiles = {}
    for uid, (name, stream, fmt, bpp) in enumerate(
        (("depth", rs.stream.depth, rs.format.z16, 2), ("color", rs.stream.color, rs.format.rgb8, 3))
    ):
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid, vs.width, vs.height = stream, 0, uid, w, h
        vs.fps, vs.bpp, vs.fmt, vs.intrinsics = fps, bpp, fmt, intr
        profiles[name] = sensors[name].add_video_stream(vs)
    sensors["depth"].add_read_only_option(rs.option.depth_units, depth_units)
    identity = rs.extrinsics()
    identity.rotation, identity.translation = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], [0.0, 0.0, 0.0]
    profiles["depth"].register_extrinsics_to(profiles["color"], identity)
    dev.create_matcher(rs.matchers.default)
    recorder = rs.recorder(str(path), dev)
    sync = rs.syncer()
    for name, s in sensors.items():
        s.open(profiles[name])
        s.start(sync)
    # Playback delivers the first depth frame alone (its colour arrives after it): lead with a copy
    # of the first frame so that every given frame comes out as a colour + depth pair.
    for i, (rgb, depth_m) in enumerate([frames[0], *frames]):
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
