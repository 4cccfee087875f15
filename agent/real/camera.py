"""Intel RealSense RGB-D through pyrealsense2: colour + depth aligned to colour, intrinsics, device
selection by serial, warm-up, bounded frame waits, reconnects; and playback of recordings
(``file:PATH``: ``.db3`` as pyrealsense2 2.59 records, or ``.bag``).

``agent/real/recording.py`` makes a recording without hardware (pyrealsense2's software device
and recorder), e.g. of simulated frames, so the whole real path can be exercised in tests.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
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
        self._ended = False
        if self.is_playback:
            self._playback = _PlaybackReader(self.value, self.timeout_ms).start()
            self.serial, self.depth_scale = self._playback.serial, self._playback.depth_scale
            return self
        cfg = rs.config()
        if self.kind == "serial":
            cfg.enable_device(self.value)
        cfg.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, self.fps)
        cfg.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8, self.fps)
        pipe = rs.pipeline()
        try:
            profile = pipe.start(cfg)
        except RuntimeError as e:
            raise CameraError(f"RealSense device {self.value or '(first found)'}: {e}") from e
        device = profile.get_device()
        self.serial = _serial(rs, device)
        self.depth_scale = float(device.first_depth_sensor().get_depth_scale())
        if not self.depth_scale > 0:
            raise CameraError(f"RealSense {self.value or 'device'} reports depth scale {self.depth_scale}")
        self._pipe, self._align = pipe, None
        if not _already_aligned(rs, profile):  # align depth to colour (D4xx: separate sensors)
            self._align = rs.align(rs.stream.color)
        for _ in range(self.warmup):  # auto-exposure settles
            self._wait()
        return self

    def _wait(self):
        ok, frames = self._pipe.try_wait_for_frames(self.timeout_ms)
        return frames if ok else None

    def read(self) -> RGBDFrame:
        if self._pipe is None and self._playback is None:
            self.start()
        if self._ended:
            return self._end()
        if self._playback is not None:
            frame = self._playback.next()
            if frame is None:
                self._ended = True
                return self._end()
            self._last = frame
            return frame
        for attempt in range(self.reconnects + 1):
            frames = self._wait()
            if frames is not None:
                frame = self._convert(frames)
                if frame is not None:
                    self._last = frame
                    return frame
                continue
            if attempt < self.reconnects:  # a live camera stalled: restart the pipeline
                self.stop()
                time.sleep(0.2)
                self.start()
        raise CameraError(
            f"RealSense {self.value or 'device'}: no frames within {self.timeout_ms} ms "
            f"after {self.reconnects} reconnects"
        )

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
        rgb = _rgb(np.asanyarray(color.get_data()), color.profile)
        d = np.asanyarray(depth.get_data()).astype(np.float32) * self.depth_scale
        K = _K(color.profile.as_video_stream_profile().intrinsics)
        return RGBDFrame(rgb, d, K, float(color.get_timestamp()), int(color.get_frame_number()))

    def stop(self) -> None:
        if self._pipe is not None:
            with contextlib.suppress(RuntimeError):
                self._pipe.stop()
            self._pipe = None
        if self._playback is not None:
            self._playback.stop()
            self._playback = None

    def __enter__(self) -> RealSenseCamera:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _serial(rs, device) -> str:
    info = rs.camera_info.serial_number
    return device.get_info(info) if device.supports(info) else ""


def _rgb(pixels: np.ndarray, profile) -> np.ndarray:
    """A colour frame's pixels as contiguous RGB (BGR8 streams are flipped)."""
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise CameraError(f"RealSense colour frames must be RGB8, got shape {pixels.shape}")
    rgb = pixels[..., ::-1] if str(profile.format()).endswith("bgr8") else pixels
    return np.ascontiguousarray(rgb)


def _K(intr) -> np.ndarray:
    return np.array([[intr.fx, 0, intr.ppx], [0, intr.fy, intr.ppy], [0, 0, 1]], np.float64)


class _PlaybackReader:
    """Every colour + depth pair of a recording, in order, none dropped.

    The SDK's pipeline starts a recording in real time and drops what is not read in time (so the
    first frames could be gone before the first read). Here the playback device is opened directly,
    switched to non-real-time before any sensor starts, and its callbacks block on a small queue, so
    the recording advances only as fast as frames are read. Colour is paired with the depth frame
    nearest in time (within half a frame period); depth that is not already in the colour camera's
    pixels is aligned to colour (pinhole reprojection with the recorded extrinsics, nearest surface
    wins)."""

    def __init__(self, path: str, timeout_ms: int = 1000):
        self.path, self.timeout_s = path, timeout_ms / 1000.0
        self.serial, self.depth_scale = "", 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._stopping = threading.Event()
        self._sensors: list = []
        self._pending: dict[bool, list] = {True: [], False: []}  # is_color -> frames not yet paired

    def start(self) -> _PlaybackReader:
        rs = _rs()
        try:
            self._device = rs.context().load_device(self.path)
        except RuntimeError as e:
            raise CameraError(f"RealSense recording {self.path}: {e}") from e
        self._pb = self._device.as_playback()
        self._pb.set_real_time(False)
        self.serial = _serial(rs, self._device)
        wanted = {rs.stream.depth: None, rs.stream.color: None}
        for sensor in self._device.query_sensors():
            chosen = []
            for prof in sensor.get_stream_profiles():
                st = prof.stream_type()
                if st in wanted and wanted[st] is None and prof.is_video_stream_profile():
                    wanted[st] = prof
                    chosen.append(prof)
                    if st == rs.stream.depth:
                        self.depth_scale = float(sensor.as_depth_sensor().get_depth_scale())
            if chosen:
                self._sensors.append((sensor, chosen))
        missing = [str(st).split(".")[-1] for st, prof in wanted.items() if prof is None]
        if missing:
            raise CameraError(f"RealSense recording {self.path}: no {' or '.join(missing)} stream")
        if not self.depth_scale > 0:
            raise CameraError(f"RealSense recording {self.path}: depth scale {self.depth_scale}")
        d, c = (wanted[st].as_video_stream_profile() for st in (rs.stream.depth, rs.stream.color))
        self._period_ms = 1000.0 / max(c.fps(), 1)
        di, ci = d.get_intrinsics(), c.get_intrinsics()
        extr = d.get_extrinsics_to(c)
        self._to_color = None if _same_pixels(di, ci, extr) else (_K(di), _K(ci), extr, ci)
        for sensor, profiles in self._sensors:
            sensor.open(profiles)
        self._pb.pause()  # playback runs from the first sensor's start: hold it until all listen
        for sensor, _ in self._sensors:
            sensor.start(self._on_frame)
        self._pb.resume()
        return self

    def _on_frame(self, frame) -> None:  # SDK thread: copy out, then wait for room (back-pressure)
        rs = _rs()
        prof = frame.get_profile()
        item = (
            prof.stream_type() == rs.stream.color,
            float(frame.get_timestamp()),
            int(frame.get_frame_number()),
            np.array(frame.get_data(), copy=True),
            prof.as_video_stream_profile(),
        )
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> RGBDFrame | None:
        """The next pair, or None at the end of the recording."""
        rs = _rs()
        idle_since = time.monotonic()
        while True:
            try:
                is_color, ts, number, data, prof = self._queue.get(timeout=0.05)
            except queue.Empty:
                stopped = self._pb.current_status() == rs.playback_status.stopped
                if stopped and time.monotonic() - idle_since > 0.2:
                    return None
                if time.monotonic() - idle_since > max(self.timeout_s, 0.2) * 10:
                    raise CameraError(f"RealSense recording {self.path}: playback stalled") from None
                continue
            idle_since = time.monotonic()
            # The two sensors call back from their own threads, so a colour frame may come before
            # or after its depth: pair each arrival with the nearest waiting frame of the other kind.
            item = (ts, number, data, prof)
            others = self._pending[not is_color]
            match = min(others, key=lambda o: abs(o[0] - ts), default=None)
            if match is None or abs(match[0] - ts) > self._period_ms / 2:
                self._pending[is_color] = [*self._pending[is_color][-7:], item]
                continue
            del others[: others.index(match) + 1]  # older unpaired frames never will be
            self._pending[is_color] = [p for p in self._pending[is_color] if p[0] > ts]
            (ts, number, data, prof), (_, _, z16, _) = (item, match) if is_color else (match, item)
            depth = z16.astype(np.float32) * self.depth_scale
            if self._to_color is not None:
                depth = _align_depth(depth, *self._to_color)
            return RGBDFrame(_rgb(data, prof), depth, _K(prof.get_intrinsics()), ts, number)

    def stop(self) -> None:
        self._stopping.set()
        for sensor, _ in self._sensors:
            with contextlib.suppress(RuntimeError):
                sensor.stop()
            with contextlib.suppress(RuntimeError):
                sensor.close()
        self._sensors = []


def _align_depth(depth: np.ndarray, Kd: np.ndarray, Kc: np.ndarray, extr, color_intr) -> np.ndarray:
    """Depth (metres, depth camera pixels) -> depth in the colour camera's pixels; 0 where unseen."""
    h, w = depth.shape
    v, u = np.nonzero(depth > 0)
    z = depth[v, u]
    pts = np.stack([(u - Kd[0, 2]) / Kd[0, 0] * z, (v - Kd[1, 2]) / Kd[1, 1] * z, z])
    R = np.asarray(extr.rotation, np.float64).reshape(3, 3).T  # librealsense: column-major
    pts = R @ pts + np.asarray(extr.translation, np.float64)[:, None]
    zc = pts[2]
    ok = zc > 0
    uc = np.round(Kc[0, 0] * pts[0, ok] / zc[ok] + Kc[0, 2]).astype(int)
    vc = np.round(Kc[1, 1] * pts[1, ok] / zc[ok] + Kc[1, 2]).astype(int)
    zc = zc[ok]
    W, H = color_intr.width, color_intr.height
    inside = (uc >= 0) & (uc < W) & (vc >= 0) & (vc < H)
    uc, vc, zc = uc[inside], vc[inside], zc[inside]
    out = np.full((H, W), np.inf, np.float32)
    np.minimum.at(out, (vc, uc), zc.astype(np.float32))
    out[np.isinf(out)] = 0.0
    return out


def _same_pixels(di, ci, ex) -> bool:
    same = (di.width, di.height, di.fx, di.fy, di.ppx, di.ppy) == (
        ci.width,
        ci.height,
        ci.fx,
        ci.fy,
        ci.ppx,
        ci.ppy,
    )
    return same and np.allclose(ex.rotation, np.eye(3).ravel()) and np.allclose(ex.translation, 0.0)


def _already_aligned(rs, profile) -> bool:
    """Depth already in the colour camera's pixels (same intrinsics, identity extrinsics): aligning
    again would only punch holes at depth edges."""
    try:
        d = profile.get_stream(rs.stream.depth).as_video_stream_profile()
        c = profile.get_stream(rs.stream.color).as_video_stream_profile()
        return _same_pixels(d.get_intrinsics(), c.get_intrinsics(), d.get_extrinsics_to(c))
    except RuntimeError:
        return False
