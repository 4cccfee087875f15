"""Episode videos: MP4 (H.264 through the ffmpeg binary shipped by imageio-ffmpeg) or GIF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from vla_agent.errors import ConfigError

VIDEO_FORMATS = (".mp4", ".gif")


def write_video(frames: Sequence[np.ndarray], path: str | Path, fps: float = 10.0) -> Path:
    """Write RGB uint8 frames (H,W,3) to ``path`` (.mp4 or .gif); return the path."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_FORMATS:
        raise ConfigError(f"video {path.name!r}: unsupported format; use one of {', '.join(VIDEO_FORMATS)}")
    if not frames:
        raise ConfigError(f"video {path.name!r}: no frames to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [np.asarray(f, dtype=np.uint8) for f in frames]
    if path.suffix.lower() == ".gif":
        imageio.mimsave(path, frames, duration=1000.0 / fps, loop=0)
    else:
        with imageio.get_writer(
            path, fps=fps, codec="libx264", quality=7, macro_block_size=16, ffmpeg_log_level="error"
        ) as w:
            for f in frames:
                w.append_data(f)
    return path
