"""Check vla-agent datasets against a real LeRobot install (run it with LeRobot's Python).

    python check_with_lerobot.py DS1 DS2 OUT

Loads both datasets with ``LeRobotDataset``, aggregates their stats with LeRobot's
``aggregate_stats``, merges them with ``merge_datasets``, deletes an episode of the merge with
``delete_episodes`` (LeRobot then rewrites ``tasks.parquet`` its own way), and normalises a batch
of every feature with MIN_MAX, MEAN_STD and QUANTILES stats; prints one JSON line of results.
"""

import json
import sys
from pathlib import Path

import numpy as np
from lerobot.datasets.compute_stats import aggregate_stats
from lerobot.datasets.dataset_tools import delete_episodes, merge_datasets
from lerobot.datasets.lerobot_dataset import LeRobotDataset


def main(ds1: str, ds2: str, out: str) -> None:
    a = LeRobotDataset("local/a", root=ds1)
    b = LeRobotDataset("local/b", root=ds2)
    result = {"frames": [len(a), len(b)], "lerobot_sample_keys": sorted(a[0].keys())[:6]}
    stats = aggregate_stats([a.meta.stats, b.meta.stats])
    result["aggregated_features"] = len(stats)
    merged = merge_datasets([a, b], output_repo_id="local/merged", output_dir=Path(out) / "merged")
    result["merged_frames"] = len(merged)
    edited = delete_episodes(
        merged, episode_indices=[0], output_dir=Path(out) / "edited", repo_id="local/edited"
    )
    result["edited_frames"] = len(edited)
    s = merged.meta.stats
    for key in ("observation.state", "action", "observation.image"):
        x = np.asarray(merged[0][key], np.float64)
        q01, q99 = np.asarray(s[key]["q01"]), np.asarray(s[key]["q99"])
        lo, hi = np.asarray(s[key]["min"]), np.asarray(s[key]["max"])
        mean, std = np.asarray(s[key]["mean"]), np.asarray(s[key]["std"])
        for mode, y in (
            ("MIN_MAX", 2 * (x - lo) / np.maximum(hi - lo, 1e-8) - 1),
            ("MEAN_STD", (x - mean) / np.maximum(std, 1e-8)),
            ("QUANTILES", 2 * (x - q01) / np.maximum(q99 - q01, 1e-8) - 1),
        ):
            assert np.all(np.isfinite(y)), (key, mode)
        result[f"normalised_{key}"] = ["MIN_MAX", "MEAN_STD", "QUANTILES"]
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])
