import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vla_agent.errors import ConfigError
from vla_agent.vla.dataset import LeRobotWriter
from vla_agent.vla.demos import load_dataset


def test_lerobot_v3_layout(tiny_dataset):
    root, result = tiny_dataset
    for rel in (
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "data/chunk-000/file-000.parquet",
    ):
        assert (root / rel).exists(), rel
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == result["episodes_kept"] > 0
    assert info["total_frames"] == result["frames"]
    assert info["features"]["observation.image"]["dtype"] == "image"
    assert info["features"]["action"]["shape"] == [7]
    eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert sum(e["length"] for e in eps) == info["total_frames"]
    assert eps[-1]["dataset_to_index"] == info["total_frames"]
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    stats = json.loads((root / "meta/stats.json").read_text())
    assert np.asarray(stats["observation.image"]["mean"]).shape == (3, 1, 1)
    assert len(stats["action"]["std"]) == 7


def test_round_trip(tiny_dataset):
    root, result = tiny_dataset
    d = load_dataset(root)
    assert d.images.shape == (result["frames"], 64, 64, 3) and d.images.dtype == np.uint8
    assert d.actions.shape == (result["frames"], 7)
    assert set(np.unique(d.actions[:, 6])) <= {-1.0, 1.0}
    assert np.abs(d.actions[:, :3]).max() <= 0.04 + 1e-6
    # each episode ends with "done" frames (the hold after the expert finished)
    ends = np.r_[np.flatnonzero(np.diff(d.episode_index)), len(d.done) - 1]
    assert d.done[ends].min() == 1.0 and 0 < d.done.mean() < 0.5
    assert all(t in d.tasks for t in d.tasks) and len(d.tasks) == result["tasks"]


def test_writer_refuses_existing_dataset_and_empty(tiny_dataset, tmp_path):
    root, _ = tiny_dataset
    with pytest.raises(ConfigError, match="already exists"):
        LeRobotWriter(root, fps=10, image_shape=(64, 64, 3))
    with pytest.raises(ConfigError, match="no episodes"):
        LeRobotWriter(tmp_path / "empty", fps=10, image_shape=(64, 64, 3)).close()


def test_load_rejects_non_dataset(tmp_path):
    with pytest.raises(ConfigError, match="not a LeRobot dataset"):
        load_dataset(tmp_path)


def test_load_several_datasets_as_one(tiny_dataset):
    from vla_agent.vla.demos import load_datasets

    root, result = tiny_dataset
    one = load_dataset(root)
    two = load_datasets([root, root])
    assert len(two.states) == 2 * len(one.states)
    assert two.tasks == one.tasks  # same sentences are one task
    assert two.episode_index.max() == 2 * (one.episode_index.max() + 1) - 1
    np.testing.assert_allclose(two.stats["action"]["mean"], one.stats["action"]["mean"], atol=1e-6)
    np.testing.assert_allclose(
        two.stats["observation.image"]["std"], one.stats["observation.image"]["std"], atol=1e-6
    )


def test_filter_keeps_the_episodes_of_the_chosen_skills(tiny_dataset, tmp_path):
    from vla_agent.skills.library import skill_of_instruction
    from vla_agent.vla.demos import filter_dataset

    root, result = tiny_dataset
    src = load_dataset(root)
    skill = {t: skill_of_instruction(t) for t in src.tasks}
    assert set(skill.values()) == {"pick", "place", "place_beside", "push"}  # every registered skill
    out = filter_dataset(root, tmp_path / "no-push", lambda t: skill[t] != "push")
    d = load_dataset(tmp_path / "no-push")
    keep = np.array([skill[src.tasks[i]] != "push" for i in src.task_index])
    assert out["frames"] == len(d.states) == keep.sum() and 0 < keep.sum() < len(keep)
    assert out["episodes_kept"] + out["episodes_dropped"] == result["episodes_kept"]
    assert {skill_of_instruction(t) for t in d.tasks} == {"pick", "place", "place_beside"}
    np.testing.assert_array_equal(d.states, src.states[keep])
    np.testing.assert_array_equal(d.images, src.images[keep])
    np.testing.assert_array_equal(d.wrist, src.wrist[keep])
    np.testing.assert_array_equal(np.unique(d.episode_index), np.arange(out["episodes_kept"]))
    np.testing.assert_allclose(d.stats["observation.state"]["mean"], src.states[keep].mean(0), atol=1e-5)
    with pytest.raises(ConfigError, match="no episode"):
        filter_dataset(root, tmp_path / "none", lambda t: False)


def test_recovery_data_starts_the_expert_where_the_vla_left_off(tmp_path):
    from vla_agent.vla.checkpoint import DEFAULT_CHECKPOINT
    from vla_agent.vla.collect import CollectConfig, collect

    plain = collect(CollectConfig(out=tmp_path / "plain", episodes=3, seed=321, noise_prob=0.0))
    rec = collect(
        CollectConfig(
            out=tmp_path / "rec", episodes=3, seed=321, noise_prob=0.0, policy=str(DEFAULT_CHECKPOINT)
        )
    )
    assert rec["episodes_kept"] > 0

    def starts(root):
        d = load_dataset(root)
        firsts = np.r_[0, np.flatnonzero(np.diff(d.episode_index)) + 1]
        return d.states[firsts, :3]

    home = starts(plain["dataset"])
    # The expert's recorded part begins where the VLA handed over, not where episodes start.
    moved = [np.min(np.linalg.norm(home - s, axis=1)) > 0.01 for s in starts(rec["dataset"])]
    assert any(moved)


def test_policy_setup_records_only_places_from_the_vlas_own_grasp(tmp_path):
    import pydantic

    from vla_agent.vla.checkpoint import DEFAULT_CHECKPOINT
    from vla_agent.vla.collect import CollectConfig, collect

    cfg = CollectConfig(
        out=tmp_path / "setup",
        episodes=3,
        seed=321,
        noise_prob=0.0,
        skills=("place",),
        place_variants=("bowl",),
        policy=str(DEFAULT_CHECKPOINT),
        policy_setup=True,
        takeover_max=0,
    )
    result = collect(cfg)
    # Every task either had its pick done by the VLA (and then one place recorded) or was skipped.
    assert result["episodes_kept"] + result["episodes_dropped"] + result["setup_failed"] == 3
    assert result["episodes_kept"] > 0
    d = load_dataset(result["dataset"])
    assert all(t.count("bowl") == 1 for t in d.tasks)  # no pick instructions were recorded
    firsts = np.r_[0, np.flatnonzero(np.diff(d.episode_index)) + 1]
    assert (d.states[firsts, 6] < 0.06).all()  # each place starts with the block in closed fingers
    with pytest.raises(ValueError, match="policy_setup needs a policy"):
        collect(cfg.model_copy(update={"policy": None, "out": tmp_path / "none"}))
    with pytest.raises(pydantic.ValidationError):
        CollectConfig(takeover_max=-1)


def test_collect_cycles_the_chosen_skills_and_place_targets(tmp_path):
    import pydantic

    from vla_agent.vla.collect import CollectConfig, collect

    result = collect(
        CollectConfig(
            out=tmp_path / "focus", episodes=2, seed=77, skills=("place",), place_variants=("region",)
        )
    )
    tasks = load_dataset(result["dataset"]).tasks
    # Two place tasks, each recording its pick; the places are onto table sides, never into a
    # bowl, onto a plate or onto another block.
    assert result["episodes_kept"] + result["episodes_dropped"] >= 3
    assert any(any(w in t for w in ("left", "right", "front", "back", "centre")) for t in tasks)
    assert not any("bowl" in t or "plate" in t or t.count("block") > 1 for t in tasks)
    with pytest.raises(pydantic.ValidationError, match="unknown skill 'jump'"):
        CollectConfig(skills=("place", "jump"))
    with pytest.raises(pydantic.ValidationError, match="unknown place variant 'shelf'"):
        CollectConfig(place_variants=("shelf",))


def test_reproduce_runs_every_stage_of_the_recipe_and_resumes(tmp_path):
    """The shipped recipe end to end at toy scale: every collection stage (the last one placing
    from sloppy grasps, recording only the places), training from scratch on all of it, the
    fine-tune from that; a second run with the same --out collects nothing again."""
    from vla_agent.cli import main
    from vla_agent.skills.library import skill_of_instruction
    from vla_agent.vla.checkpoint import load_checkpoint
    from vla_agent.vla.demos import load_dataset
    from vla_agent.vla.recipes import RECIPE

    args = ["vla", "reproduce", "--out", str(tmp_path), "--workers", "1", "--scale", "0.002"]
    args += ["--steps", "2", "--finetune-steps", "1"]
    assert main(args) == 0
    infos = {}
    for name, *_ in RECIPE:
        infos[name] = tmp_path / name / "part-0" / "meta" / "info.json"
        assert infos[name].exists(), name
    places = load_dataset(tmp_path / "places" / "part-0")
    assert {skill_of_instruction(t) for t in places.tasks} == {"place"}
    _, _, config = load_checkpoint(tmp_path / "finetune" / "final", "cpu")
    assert config["train"]["init"].endswith("train/final") and config["step"] == 1
    assert len(config["train"]["dataset"]) == len(RECIPE)
    report = json.loads((tmp_path / "reproduce.json").read_text())
    assert report["checkpoint"].endswith("finetune/final") and report["wall_s"]["collect"] > 0

    stamps = {n: p.stat().st_mtime_ns for n, p in infos.items()}
    assert main(args) == 0
    assert stamps == {n: p.stat().st_mtime_ns for n, p in infos.items()}


def test_filter_cli(tiny_dataset, tmp_path, capsys):
    from vla_agent.cli import main

    root, _ = tiny_dataset
    cmd = ["vla", "filter", "--dataset", str(root), "--out"]
    rc = main([*cmd, str(tmp_path / "p"), "--skills", "push", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["episodes_kept"] > 0 and out["episodes_dropped"] > 0
    assert main([*cmd, str(tmp_path / "q"), "--skills", "shove"]) == 2
    assert "unknown skill 'shove'" in capsys.readouterr().err and not (tmp_path / "q").exists()


def test_stats_are_the_full_lerobot_v3_set_for_every_feature(tiny_dataset):
    """min, max, mean, std, count and q01-q99 for every feature, images as (3, 1, 1) in [0, 1]:
    what LeRobot's aggregate/merge check and its MIN_MAX and QUANTILES normalisations read."""
    root, _ = tiny_dataset
    stats = json.loads((root / "meta" / "stats.json").read_text())
    info = json.loads((root / "meta" / "info.json").read_text())
    keys = {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    assert set(info["features"]) <= set(stats)
    for name, feature in info["features"].items():
        s = stats[name]
        assert set(s) == keys, name
        assert np.asarray(s["count"]).shape == (1,) and s["count"][0] > 0
        values = {k: np.asarray(v, float) for k, v in s.items() if k != "count"}
        assert all(np.all(np.isfinite(v)) for v in values.values()), name
        if feature["dtype"] in ("image", "video"):
            assert all(v.shape == (3, 1, 1) for v in values.values()), name
            assert all(((v >= 0) & (v <= 1)).all() for v in values.values()), name
        lo, hi = values["min"], values["max"]
        for q in ("q01", "q10", "q50", "q90", "q99"):
            assert np.all(lo - 1e-6 <= values[q]) and np.all(values[q] <= hi + 1e-6), (name, q)
        assert np.all(values["q01"] <= values["q99"] + 1e-9)


def test_tasks_written_the_lerobot_way_are_read(tiny_dataset, tmp_path):
    """LeRobot keeps each task string as the pandas index of ``tasks.parquet`` (an unnamed index:
    the ``__index_level_0__`` column), not as a ``task`` column."""
    import shutil

    from vla_agent.vla.demos import load_dataset

    root, _ = tiny_dataset
    copy = tmp_path / "lerobot-edited"
    shutil.copytree(root, copy)
    ours = load_dataset(root)
    order = list(range(len(ours.tasks)))[::-1]  # rows in another order: task_index decides
    table = pa.table(
        {
            "task_index": pa.array(order, pa.int64()),
            "__index_level_0__": pa.array([ours.tasks[i] for i in order], pa.string()),
        }
    )
    meta = {"index_columns": ["__index_level_0__"], "columns": [], "pandas_version": "2.2.3"}
    pq.write_table(
        table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()}), copy / "meta" / "tasks.parquet"
    )
    theirs = load_dataset(copy)
    assert theirs.tasks == ours.tasks and len(theirs.states) == len(ours.states)


def test_a_dataset_whose_stats_an_editor_emptied_still_loads_and_trains(tiny_dataset, tmp_path):
    """LeRobot's ``delete_episodes`` leaves ``stats.json`` empty for datasets without per-episode
    stats: the reader recomputes what training reads from the data."""
    import shutil

    from vla_agent.vla.demos import load_dataset

    root, _ = tiny_dataset
    copy = tmp_path / "edited"
    shutil.copytree(root, copy)
    (copy / "meta" / "stats.json").write_text("{}")
    full, emptied = load_dataset(root), load_dataset(copy)
    for key in ("observation.state", "action", "observation.image"):
        np.testing.assert_allclose(
            np.asarray(emptied.stats[key]["mean"]), np.asarray(full.stats[key]["mean"]), atol=1e-5
        )
