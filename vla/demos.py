"""Demonstrations read back from LeRobotDataset v3.0 folders (``vla/dataset.py`` writes them): one
dataset or several as one, with combined statistics, and a filter that writes a subset."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from vla_agent.errors import ConfigError
from vla_agent.vla.dataset import (
    ACTION_KEY,
    AUX_KEYS,
    CODEBASE_VERSION,
    DONE_KEY,
    IMAGE_KEY,
    STATE_KEY,
    WRIST_KEY,
    ImageStats,
    LeRobotWriter,
    stats_of,
)


@dataclass
class Demonstrations:
    """A loaded dataset as arrays (frames in order)."""

    images: np.ndarray  # (N, H, W, 3) uint8
    states: np.ndarray  # (N, 7) float32
    actions: np.ndarray  # (N, 7) float32
    done: np.ndarray  # (N,) float32
    episode_index: np.ndarray  # (N,) int64
    task_index: np.ndarray  # (N,) int64
    aux: dict[str, np.ndarray]  # AUX_KEYS -> (N, 3) float32, NaN when unknown
    tasks: list[str]
    wrist: np.ndarray | None  # (N, h, w, 3) uint8 when the dataset has a wrist camera
    stats: dict
    info: dict


def load_dataset(root: str | Path) -> Demonstrations:
    """Load a dataset written by ``LeRobotWriter`` (or any v3.0 dataset with the same features)."""
    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.exists():
        raise ConfigError(f"{root} is not a LeRobot dataset (no meta/info.json)")
    info = json.loads(info_path.read_text())
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise ConfigError(
            f"{root}: codebase_version {info.get('codebase_version')!r}, expected {CODEBASE_VERSION}"
        )
    missing = {IMAGE_KEY, STATE_KEY, ACTION_KEY} - set(info["features"])
    if missing:
        raise ConfigError(f"{root}: dataset lacks features {sorted(missing)}")
    files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    images = _decode(table.column(IMAGE_KEY).to_pylist())
    wrist = _decode(table.column(WRIST_KEY).to_pylist()) if WRIST_KEY in table.column_names else None
    col = lambda k: np.asarray(table.column(k).to_pylist())  # noqa: E731
    tasks = read_tasks(root / "meta" / "tasks.parquet")
    done = (
        col(DONE_KEY).astype(np.float32)
        if DONE_KEY in table.column_names
        else np.zeros(len(images), np.float32)
    )
    aux = {
        k: col(k).astype(np.float32)
        if k in table.column_names
        else np.full((len(images), 3), np.nan, np.float32)
        for k in AUX_KEYS
    }
    states, actions = col(STATE_KEY).astype(np.float32), col(ACTION_KEY).astype(np.float32)
    stats_path = root / "meta" / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    stats = complete_stats(stats, images, states, actions, wrist)
    return Demonstrations(
        images, states, actions, done, col("episode_index"), col("task_index"), aux, tasks, wrist, stats, info
    )


def complete_stats(stats: dict, images, states, actions, wrist) -> dict:
    """``stats`` with what training reads recomputed from the data where a file lacks it (LeRobot's
    episode editing may leave ``stats.json`` empty when per-episode stats are absent)."""
    stats = dict(stats)
    for key, x in ((STATE_KEY, states), (ACTION_KEY, actions)):
        if "mean" not in stats.get(key, {}):
            stats[key] = stats_of(x)
    for key, imgs in ((IMAGE_KEY, images), (WRIST_KEY, wrist)):
        if imgs is not None and "mean" not in stats.get(key, {}):
            stats[key] = ImageStats.of(imgs).stats()
    return stats


def _decode(pngs: list[dict]) -> np.ndarray:
    return np.stack([np.asarray(Image.open(io.BytesIO(x["bytes"])).convert("RGB")) for x in pngs])


def read_tasks(path: Path) -> list[str]:
    """Task strings by task index, from a ``tasks.parquet`` with a ``task`` column (ours) or with
    the task as the pandas index (what LeRobot writes: the column named in the file's pandas
    metadata, ``__index_level_0__`` when the index has no name)."""
    t = pq.read_table(path)
    name = "task"
    if name not in t.column_names:
        meta = json.loads((t.schema.metadata or {}).get(b"pandas", b"{}"))
        index = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
        name = index[0] if index else ""
    if name not in t.column_names or "task_index" not in t.column_names:
        raise ConfigError(f"{path}: no task strings (a 'task' column or a pandas index) and task_index")
    order = np.argsort(t.column("task_index").to_numpy())
    texts = t.column(name).to_pylist()
    return [texts[i] for i in order]


def load_datasets(roots: list[str | Path]) -> Demonstrations:
    """Several datasets as one: episodes and tasks re-indexed, state/action stats recomputed over
    the union, image stats combined by frame-weighted moments."""
    parts = [load_dataset(r) for r in roots]
    if len(parts) == 1:
        return parts[0]
    tasks: list[str] = []
    index: dict[str, int] = {}
    ep_offset, episodes, task_idx = 0, [], []
    for d in parts:
        remap = np.array([index.setdefault(t, len(index)) for t in d.tasks])
        task_idx.append(remap[d.task_index])
        episodes.append(d.episode_index + ep_offset)
        ep_offset += int(d.episode_index.max()) + 1
    tasks = sorted(index, key=index.get)
    states = np.concatenate([d.states for d in parts])
    actions = np.concatenate([d.actions for d in parts])
    w = np.array([len(d.states) for d in parts], np.float64)
    w /= w.sum()
    stats = {
        **_combine_imagestats_of(parts, w),
        STATE_KEY: stats_of(states),
        ACTION_KEY: stats_of(actions),
    }
    images = _concat_releasing(parts, "images")
    wrist = None if any(d.wrist is None for d in parts) else _concat_releasing(parts, "wrist")
    return Demonstrations(
        images,
        states,
        actions,
        np.concatenate([d.done for d in parts]),
        np.concatenate(episodes),
        np.concatenate(task_idx),
        {k: np.concatenate([d.aux[k] for d in parts]) for k in AUX_KEYS},
        tasks,
        wrist,
        stats,
        parts[0].info,
    )


def _concat_releasing(parts: list[Demonstrations], field: str) -> np.ndarray:
    """``np.concatenate`` of one image field of ``parts`` that drops each part's array once
    copied: the peak is the union plus one part, not twice the union (10+ GB datasets)."""
    arrays = [getattr(d, field) for d in parts]
    out = np.empty((sum(len(a) for a in arrays), *arrays[0].shape[1:]), arrays[0].dtype)
    offset = 0
    for i, d in enumerate(parts):
        n = len(arrays[i])
        out[offset : offset + n] = arrays[i]
        offset += n
        setattr(d, field, None)
        arrays[i] = None
    return out


def _combine_imagestats_of(parts: list[Demonstrations], weights: np.ndarray) -> dict:
    """Image mean/std of a union of datasets from each part's frame-weighted moments."""
    out = {}
    for key in (IMAGE_KEY, WRIST_KEY):
        if not all(key in d.stats for d in parts):
            continue
        img = [d.stats[key] for d in parts]
        mean = sum(wi * np.asarray(s["mean"]) for wi, s in zip(weights, img))
        sq = sum(wi * (np.asarray(s["std"]) ** 2 + np.asarray(s["mean"]) ** 2) for wi, s in zip(weights, img))
        out[key] = {**img[0], "mean": mean.tolist(), "std": np.sqrt(np.maximum(sq - mean**2, 0)).tolist()}
    return out


def filter_dataset(src: str | Path, out: str | Path, keep: Callable[[str], bool]) -> dict:
    """Write the episodes of ``src`` whose instruction ``keep`` accepts as a new dataset at ``out``
    (re-indexed, stats recomputed over what is kept), like LeRobot's episode deletion.
    Returns counts of kept and dropped episodes and frames."""
    d = load_dataset(src)
    robot = d.info.get("robot_type", "panda")
    writer = LeRobotWriter(out, fps=d.info["fps"], image_shape=tuple(d.images.shape[1:]), robot_type=robot)
    kept = dropped = frames = 0
    bounds = np.flatnonzero(np.diff(d.episode_index)) + 1
    for idx in np.split(np.arange(len(d.states)), bounds):
        task = d.tasks[int(d.task_index[idx[0]])]
        if not keep(task):
            dropped += 1
            continue
        writer.add_episode(
            d.images[idx],
            d.states[idx],
            d.actions[idx],
            d.done[idx],
            task,
            aux={k: v[idx] for k, v in d.aux.items()},
            wrist=None if d.wrist is None else d.wrist[idx],
        )
        kept += 1
        frames += len(idx)
    if not kept:
        raise ConfigError(f"{src}: no episode passes the filter; nothing written")
    writer.close()
    return {"dataset": str(out), "episodes_kept": kept, "episodes_dropped": dropped, "frames": frames}
