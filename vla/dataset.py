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


def stats_of(x: np.ndarray, axis=0) -> dict:
    return {
        "min": x.min(axis).tolist(),
        "max": x.max(axis).tolist(),
        "mean": x.mean(axis).tolist(),
        "std": x.std(axis).tolist(),
        "count": [int(x.shape[0])],
    }


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
        self._image_sum = np.zeros(3)
        self._image_sq = np.zeros(3)
        self._image_min = np.full(3, 255.0)
        self._image_max = np.zeros(3)
        self._wrist_moments = np.zeros((3, 3))  # per channel: sum, sum of squares, pixel count

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
            wpx = wrist.reshape(-1, 3).astype(np.float64) / 255.0
            self._wrist_moments += [wpx.sum(0), (wpx**2).sum(0), np.full(3, len(wpx))]
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
        px = images.reshape(-1, 3).astype(np.float64) / 255.0
        self._image_sum += px.sum(0)
        self._image_sq += (px**2).sum(0)
        self._image_min = np.minimum(self._image_min, px.min(0))
        self._image_max = np.maximum(self._image_max, px.max(0))
        self.episodes.append(
            {
                "episode_index": ep,
                "tasks": [task],
                "length": n,
                "dataset_from_index": start,
                "dataset_to_index": start + n,
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
        npx = n * h * w
        mean = self._image_sum / npx
        std = np.sqrt(np.maximum(self._image_sq / npx - mean**2, 0))
        as_img = lambda v: [[[float(x)]] for x in v]  # noqa: E731  (3,1,1) as LeRobot stores image stats
        stats = {
            IMAGE_KEY: {
                "min": as_img(self._image_min),
                "max": as_img(self._image_max),
                "mean": as_img(mean),
                "std": as_img(std),
                "count": [n],
            },
            STATE_KEY: stats_of(np.concatenate(self._states)),
            ACTION_KEY: stats_of(np.concatenate(self._actions)),
        }
        if self.wrist_shape:
            s1, s2, cnt = self._wrist_moments
            wmean = s1 / cnt
            stats[WRIST_KEY] = {
                "mean": as_img(wmean),
                "std": as_img(np.sqrt(np.maximum(s2 / cnt - wmean**2, 0))),
                "count": [n],
            }
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
