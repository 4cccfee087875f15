"""The agent's command line as a user runs it: run --json, plan --json, replay, bench chains."""

import json
import re

import pytest

from vla_agent.cli import main


def test_run_json_reports_outcomes_and_ground_truth(tmp_path, capsys):
    rc = main(
        [
            "run",
            "put the red block in the bowl",
            "--scene",
            "red block, green block, blue bowl",
            "--policy",
            "expert",
            "--seed",
            "3",
            "--json",
            "--out",
            str(tmp_path),
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["status"] == "success"
    assert "in(red block, blue bowl)" in data["holds"]
    assert data["goals"] == ["in(red block, blue bowl)"] and data["goals_unmet"] == []
    assert [o["status"] for o in data["outcomes"]] == ["done", "done"]
    assert (tmp_path / "trace.jsonl").exists() and (tmp_path / "episode.mp4").stat().st_size > 0
    rc = main(["replay", str(tmp_path / "trace.jsonl"), "--json", "--video", str(tmp_path / "replay.gif")])
    replay = json.loads(capsys.readouterr().out)
    assert rc == 0 and replay["final"]["status"] == "success" and (tmp_path / "replay.gif").exists()


def test_plan_json_and_refusals(capsys):
    assert (
        main(
            ["plan", "stack the blue block on the green one", "--scene", "blue block, green block", "--json"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out.pop("planner") == "offline" and "fallback" not in out and out.pop("plan_latency_ms") < 1000
    assert len(out.pop("predicted_success")["subgoals"]) == 2  # one prediction per subgoal
    assert out == {
        "subgoals": [
            {"skill": "pick", "args": {"obj": "blue block"}, "instruction": "pick up the blue block"},
            {
                "skill": "place",
                "args": {"obj": "blue block", "target": "green block"},
                "instruction": "put the blue block on the green block",
            },
        ]
    }
    assert (
        main(["plan", "put the purple block in the bowl", "--scene", "red block, blue bowl", "--json"]) == 2
    )
    assert "purple" in json.loads(capsys.readouterr().out)["refused"]


def test_bench_chains_expert_small(capsys, tmp_path):
    assert main(["bench", "chains", "--episodes", "2", "--policy", "expert", "--json"]) == 0
    printed = capsys.readouterr().out
    r = json.loads(printed)
    for key in (
        "avg_len",
        "chain_success",
        "per_position",
        "unsafe_actions_reached_backend",
        "overhead_ms_per_step",
    ):
        assert key in r
    assert r["unsafe_actions_reached_backend"] == 0 and len(r["per_position"]) == 5
    assert r["avg_len"] >= 4.0 and r["planner_accuracy"] == 1.0
    # every judged subgoal is counted under its skill variant; complete chains stop nowhere
    assert sum(v["subgoals"] for v in r["per_skill"].values()) == r["detector"]["subgoals_judged"]
    assert set(r["per_skill"]) <= {"pick", "push", "place/bowl", "place/plate", "place/block", "place/region"}
    assert sum(r["broken_at"].values()) == round(2 * (1 - r["chain_success"]))
    # its charts: one bar per subgoal position, as long as the share of chains still whole
    (tmp_path / "chains.json").write_text(printed)
    assert main(["bench", "plot", str(tmp_path / "chains.json")]) == 0
    page = (tmp_path / "chains.html").read_text()
    first = re.search(r"<svg.*?</svg>", page).group(0)
    widths = [float(w) for w in re.findall(r'<rect x="150" y="[\d.]+" width="([\d.]+)"', first)]
    assert widths == pytest.approx([360 * share for share in r["per_position"]], abs=0.06)


def test_bench_plot_refuses_what_it_cannot_draw(tmp_path, capsys):
    (tmp_path / "planner.json").write_text(json.dumps({"benchmark": "planner", "accuracy": 1.0}))
    (tmp_path / "skills.json").write_text(json.dumps({"benchmark": "skills", "per_skill": {}}))
    (tmp_path / "cut.json").write_text('{"benchmark": "ski')
    for files, says in (
        (["planner.json"], "no charts for benchmark 'planner'"),
        (["skills.json", "planner.json"], "one benchmark"),
        (["cut.json"], "not JSON"),
        (["missing.json"], "No such file"),
    ):
        assert main(["bench", "plot", *(str(tmp_path / f) for f in files)]) != 0
        assert says in capsys.readouterr().err
    assert not list(tmp_path.glob("*.html"))


def test_bench_chains_redraws_a_scene_that_does_not_fit(capsys):
    # Chain 2000062's first draw cannot be placed on the table: the benchmark must draw a new
    # scene *and* new placements, and phrase the command for the scene it actually built.
    args = ["bench", "chains", "--episodes", "1", "--seed", "2000062", "--policy", "expert", "--json"]
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["setup_redraws"] >= 1
    assert r["planner_accuracy"] == 1.0, r["examples"]
    assert "to the forward" not in r["examples"][0]["command"]
