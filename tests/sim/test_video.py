import numpy as np
import pytest

from vla_agent.errors import ConfigError
from vla_agent.sim.video import write_video


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_write_video(tmp_path, suffix):
    frames = [np.full((64, 64, 3), i * 20, np.uint8) for i in range(8)]
    path = write_video(frames, tmp_path / f"ep{suffix}", fps=10)
    assert path.exists() and path.stat().st_size > 100


def test_video_errors(tmp_path):
    with pytest.raises(ConfigError, match="unsupported format"):
        write_video([np.zeros((8, 8, 3), np.uint8)], tmp_path / "ep.avi")
    with pytest.raises(ConfigError, match="no frames"):
        write_video([], tmp_path / "ep.mp4")
