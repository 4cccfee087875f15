"""Demonstrations in the LeRobotDataset v3.0 layout, written with pyarrow:

    meta/info.json  meta/stats.json  meta/tasks.parquet  meta/episodes/chunk-000/file-000.parquet
    data/chunk-000/file-000.parquet   (images stored inline as PNG: {"bytes", "path"} structs)

so the LeRobot toolchain can load our demonstrations and fine-tune large VLAs on them. Reading
them back (one dataset or several as one, filtering by task) is ``vla/demos.py``.
Extra per-frame columns: ``subgoal.done`` (1 on the frames after the expert finished the subgoal).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from vla_agent.errors import ConfigError

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
IMAGE_KEY = "observation.image"
WRIST_KEY = "observation.images.wrist"
STATE_KEY = "observation.state"
ACTION_KEY = "action"
DONE_KEY = "subgoal.done"
# Training-only labels from the simulator (never policy inputs): where the subgoal's object is and
# where it is headed, in the base frame, and where they (and the tool) appear in the two cameras as
# (u, v, depth) pixels, NaN when out of view. They supervise the auxiliary localization heads.
AUX_KEYS = (
    "aux.object_position",
    "aux.goal_position",
    "aux.object_pixel",
    "aux.goal_pixel",
    "aux.tool_pixel",
    "aux.object_wrist_pixel",
    "aux.goal_wrist_pixel",
)
STATE_NAMES = ["x", "y", "z", "roll", "pitch", "yaw", "gripper_width"]
ACTION_NAMES = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}  # LeRobot v3.0's


def stats_of(x: np.ndarray, axis=0) -> dict:
    """A feature's stats as LeRobot v3.0 keeps them: min, max, mean, std, count and the quantiles
    its QUANTILES normalisation (pi0, pi0.5) reads; NaN entries (unknown labels) are skipped."""
    x = np.asarray(x, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    known = x.copy()
    known[:, np.isnan(x).all(axis=0)] = 0.0  # a column never known: zeros, not NaN in the JSON
    out = {
        "min": np.nanmin(known, axis).tolist(),
        "max": np.nanmax(known, axis).tolist(),
        "mean": np.nanmean(known, axis).tolist(),
        "std": np.nanstd(known, axis).tolist(),
        "count": [int(x.shape[0])],
    }
    out |= {k: np.nanquantile(known, q, axis=axis).tolist() for k, q in QUANTILES.items()}
    return out


class ImageStats:
    """Per-channel pixel histograms of a camera over a dataset, and its stats from them (in [0, 1],
    shaped (3, 1, 1) per statistic as LeRobot stores image stats)."""

    def __init__(self):
        self.hist = np.zeros((3, 256), np.int64)
        self.frames = 0

    @classmethod
    def of(cls, images: np.ndarray) -> ImageStats:
        acc = cls()
        px = images.reshape(-1, 3)
        for c in range(3):
            acc.hist[c] = np.bincount(px[:, c], minlength=256)
        acc.frames = len(images)
        return acc

    def absorb(self, other: ImageStats) -> None:
        """Add ``other``'s pixels (an episode's, into the dataset's)."""
        self.hist += other.hist
        self.frames += other.frames

    def stats(self) -> dict:
        v = np.arange(256) / 255.0
        n = self.hist.sum(1)
        mean = (self.hist * v).sum(1) / n
        std = np.sqrt(np.maximum((self.hist * v**2).sum(1) / n - mean**2, 0.0))
        cum = np.cumsum(self.hist, 1) / n[:, None]
        nonzero = self.hist > 0
        per_channel = {
            "min": v[nonzero.argmax(1)],
            "max": v[255 - nonzero[:, ::-1].argmax(1)],
            "mean": mean,
            "std": std,
            **{k: v[np.array([np.searchsorted(cum[c], q) for c in range(3)])] for k, q in QUANTILES.items()},
        }
        out = {k: [[[float(x)]] for x in a] for k, a in per_channel.items()}
        return {**out, "count": [self.frames]}


class LeRobotWriter:
    """Accumulates episodes in memory and writes the dataset on ``close()``."""

    def __init__(
        self, root: str | Path, fps: float, image_shape: tuple[int, int, int], robot_type: str = "panda"
    ):
        self.root = Path(root)
        if (self.root / "meta" / "info.json").exists():
            raise ConfigError(f"dataset {self.root} already exists; choose another --out or delete it")
        self.fps, self.image_shape, self.robot_type = fps, image_shape, robot_type
        self.wrist_shape: tuple[int, int, int] | None = None
        self.rows: dict[str, list] = {
            k: []
            for k in (
                IMAGE_KEY,
                WRIST_KEY,
                STATE_KEY,
                ACTION_KEY,
                DONE_KEY,
                *AUX_KEYS,
                "timestamp",
                "frame_index",
                "episode_index",
                "index",
                "task_index",
            )
        }
        self.episodes: list[dict] = []
        self.tasks: dict[str, int] = {}
        self._states: list[np.ndarray] = []
        self._actions: list[np.ndarray] = []
        self._image_stats, self._wrist_stats = ImageStats(), ImageStats()

    def add_episode(
        self,
        images: np.ndarray,
        states: np.ndarray,
        actions: np.ndarray,
        done: np.ndarray,
        task: str,
        aux: dict[str, np.ndarray] | None = None,
        wrist: np.ndarray | None = None,
    ) -> None:
        n = len(images)
        if not (len(states) == len(actions) == len(done) == n) or n == 0:
            raise ConfigError("episode arrays must be non-empty and of equal length")
        if (wrist is None) != (self.wrist_shape is None) and self.episodes:
            raise ConfigError("every episode of a dataset must have a wrist image, or none")
        if wrist is not None:
            if len(wrist) != n:
                raise ConfigError("wrist images must match the episode length")
            self.wrist_shape = tuple(wrist.shape[1:])
            self.rows[WRIST_KEY] += [{"bytes": _png(im), "path": None} for im in wrist]
        ep = len(self.episodes)
        start = len(self.rows["index"])
        ti = self.tasks.setdefault(task, len(self.tasks))
        self.rows[IMAGE_KEY] += [{"bytes": _png(im), "path": None} for im in images]
        self.rows[STATE_KEY] += [s.astype(np.float32).tolist() for s in states]
        self.rows[ACTION_KEY] += [a.astype(np.float32).tolist() for a in actions]
        self.rows[DONE_KEY] += [float(d) for d in done]
        for k in AUX_KEYS:
            v = (aux or {}).get(k, np.full((n, 3), np.nan))
            self.rows[k] += [x.astype(np.float32).tolist() for x in np.asarray(v)]
        self.rows["timestamp"] += [i / self.fps for i in range(n)]
        self.rows["frame_index"] += list(range(n))
        self.rows["episode_index"] += [ep] * n
        self.rows["index"] += list(range(start, start + n))
        self.rows["task_index"] += [ti] * n
        self._states.append(states)
        self._actions.append(actions)
        # per-episode stats, as LeRobot keeps them in meta/episodes: its episode editing
        # (delete_episodes, merge) recomputes the dataset's stats from these columns; the
        # dataset's image stats are the sum of the episodes' histograms
        ep_images = ImageStats.of(images)
        self._image_stats.absorb(ep_images)
        ep_stats = {IMAGE_KEY: ep_images.stats(), STATE_KEY: stats_of(states), ACTION_KEY: stats_of(actions)}
        if wrist is not None:
            ep_wrist = ImageStats.of(wrist)
            self._wrist_stats.absorb(ep_wrist)
            ep_stats[WRIST_KEY] = ep_wrist.stats()
        self.episodes.append(
            {
                "episode_index": ep,
                "tasks": [task],
                "length": n,
                "dataset_from_index": start,
                "dataset_to_index": start + n,
                **{f"stats/{k}/{s}": v for k, st in ep_stats.items() for s, v in st.items()},
            }
        )

    def close(self) -> Path:
        if not self.episodes:
            raise ConfigError("no episodes recorded")
        root = self.root
        (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
        (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
        h, w, c = self.image_shape
        image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        wrist = {WRIST_KEY: pa.array(self.rows[WRIST_KEY], type=image_type)} if self.wrist_shape else {}
        table = pa.table(
            {
                IMAGE_KEY: pa.array(self.rows[IMAGE_KEY], type=image_type),
                **wrist,
                STATE_KEY: pa.array(self.rows[STATE_KEY], type=pa.list_(pa.float32(), 7)),
                ACTION_KEY: pa.array(self.rows[ACTION_KEY], type=pa.list_(pa.float32(), 7)),
                DONE_KEY: pa.array(self.rows[DONE_KEY], type=pa.float32()),
                **{k: pa.array(self.rows[k], type=pa.list_(pa.float32(), 3)) for k in AUX_KEYS},
                "timestamp": pa.array(self.rows["timestamp"], type=pa.float32()),
                **{
                    k: pa.array(self.rows[k], type=pa.int64())
                    for k in ("frame_index", "episode_index", "index", "task_index")
                },
            }
        )
        pq.write_table(table, root / DATA_PATH.format(chunk_index=0, file_index=0))
        eps = {k: [e[k] for e in self.episodes] for k in self.episodes[0]}
        eps.update(
            {
                "data/chunk_index": [0] * len(self.episodes),
                "data/file_index": [0] * len(self.episodes),
                "meta/episodes/chunk_index": [0] * len(self.episodes),
                "meta/episodes/file_index": [0] * len(self.episodes),
            }
        )
        pq.write_table(pa.table(eps), root / EPISODES_PATH.format(chunk_index=0, file_index=0))
        tasks = sorted(self.tasks, key=self.tasks.get)
        pandas_meta = {
            "index_columns": ["task"],
            "column_indexes": [],
            "columns": [
                {
                    "name": "task",
                    "field_name": "task",
                    "pandas_type": "unicode",
                    "numpy_type": "object",
                    "metadata": None,
                },
                {
                    "name": "task_index",
                    "field_name": "task_index",
                    "pandas_type": "int64",
                    "numpy_type": "int64",
                    "metadata": None,
                },
            ],
            "creator": {"library": "vla-agent"},
            "pandas_version": "2.2.0",
        }
        t = pa.table(
            {"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())}
        )
        t = t.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
        pq.write_table(t, root / "meta" / "tasks.parquet")
        n = len(self.rows["index"])
        col = lambda k: np.asarray(self.rows[k], np.float64)  # noqa: E731
        counters = ("timestamp", "frame_index", "episode_index", "index", "task_index")
        stats = {
            IMAGE_KEY: self._image_stats.stats(),
            STATE_KEY: stats_of(np.concatenate(self._states)),
            ACTION_KEY: stats_of(np.concatenate(self._actions)),
            DONE_KEY: stats_of(col(DONE_KEY)),
            **{k: stats_of(col(k)) for k in AUX_KEYS},
            **{k: stats_of(col(k)) for k in counters},
        }
        if self.wrist_shape:
            stats[WRIST_KEY] = self._wrist_stats.stats()
        (root / "meta" / "stats.json").write_text(json.dumps(stats, indent=2))
        features = {
            IMAGE_KEY: {"dtype": "image", "shape": [h, w, c], "names": ["height", "width", "channels"]},
            **(
                {
                    WRIST_KEY: {
                        "dtype": "image",
                        "shape": list(self.wrist_shape),
                        "names": ["height", "width", "channels"],
                    }
                }
                if self.wrist_shape
                else {}
            ),
            STATE_KEY: {"dtype": "float32", "shape": [7], "names": STATE_NAMES},
            ACTION_KEY: {"dtype": "float32", "shape": [7], "names": ACTION_NAMES},
            DONE_KEY: {"dtype": "float32", "shape": [1], "names": None},
            **{k: {"dtype": "float32", "shape": [3], "names": ["x", "y", "z"]} for k in AUX_KEYS},
            **{
                k: {"dtype": "int64", "shape": [1], "names": None}
                for k in ("frame_index", "episode_index", "index", "task_index")
            },
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        }
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": len(self.episodes),
            "total_frames": n,
            "total_tasks": len(tasks),
            "chunks_size": 1000,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 500,
            "fps": self.fps,
            "splits": {"train": f"0:{len(self.episodes)}"},
            "data_path": DATA_PATH,
            "video_path": None,
            "features": features,
        }
        (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
        return root
