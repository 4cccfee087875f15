"""Predicted success from experience: outcomes recorded by runs and benchmarks, predictions on
plans (plan --json), and the planner choosing the likelier of two equivalent plans."""

from __future__ import annotations

import json
import os
from pathlib import Path

from vla_agent.agent.core.experience import Experience
from vla_agent.agent.planning.offline import OfflinePlanner
from vla_agent.cli import main
from vla_agent.types import Scene, SceneObject, Subgoal

SCENE = Scene(
    tuple(SceneObject(n, n.split()[1], n.split()[0]) for n in ("red block", "blue bowl", "green plate"))
)
KINDS = SCENE.kinds()


def _place(target: str) -> Subgoal:
    return Subgoal("place", {"obj": "red block", "target": target}, "")


def test_predictions_are_smoothed_rates_per_skill_and_target_kind(tmp_path):
    store = Experience(tmp_path / "x.jsonl", robot="panda", policy="vla")
    assert store.predict("place", "bowl") == (0.5, 0)  # no experience: even odds
    for ok in (True,) * 8 + (False,) * 2:
        store.record(_place("blue bowl"), KINDS, ok, 40)
    assert store.predict("place", "bowl") == (9 / 12, 10) and store.predict("place", "plate")[1] == 0
    again = Experience(tmp_path / "x.jsonl", robot="panda", policy="vla")  # read back from the file
    assert again.predict("place", "bowl") == (9 / 12, 10)
    assert Experience(tmp_path / "x.jsonl", robot="xarm6", policy="vla").predict("place", "bowl")[1] == 0
    (tmp_path / "x.jsonl").write_text((tmp_path / "x.jsonl").read_text() + "{not json\n")
    assert Experience(tmp_path / "x.jsonl").predict("place", "bowl")[1] == 10  # a bad line costs itself


def test_the_planner_picks_the_likelier_of_two_equivalent_plans(tmp_path):
    store = Experience(tmp_path / "x.jsonl")
    for _ in range(10):
        store.record(_place("blue bowl"), KINDS, True, 30)
        store.record(_place("green plate"), KINDS, False, 30)
    planner = OfflinePlanner()
    command = "put the red block on the plate or in the bowl"
    assert planner.plan(command, SCENE).subgoals[-1].args["target"] == "green plate"  # no store: as said
    planner.experience = store
    assert planner.plan(command, SCENE).subgoals[-1].args["target"] == "blue bowl"
    worse = Experience(tmp_path / "y.jsonl")
    for _ in range(10):
        worse.record(_place("blue bowl"), KINDS, False, 30)
        worse.record(_place("green plate"), KINDS, True, 30)
    planner.experience = worse
    assert planner.plan(command, SCENE).subgoals[-1].args["target"] == "green plate"
    plan = planner.plan(command, SCENE)
    predicted = worse.predict_plan(plan.subgoals, KINDS)
    assert predicted["subgoals"] == [0.5, round(11 / 12, 3)] and predicted["samples"] == [0, 10]


def test_plan_json_shows_predicted_success_after_a_benchmark_filled_the_store(capsys):
    store = os.environ["VLA_AGENT_EXPERIENCE"]  # the tests' private store (conftest)
    assert main(["bench", "chains", "--episodes", "1", "--policy", "expert", "--json"]) == 0
    capsys.readouterr()
    rows = [json.loads(line) for line in Path(store).read_text().splitlines()]
    assert any(r["skill"] == "pick" and r["policy"] == "expert" for r in rows)
    assert main(["plan", "put the red block in the bowl", "--policy", "expert", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    predicted = out["predicted_success"]
    assert len(predicted["subgoals"]) == len(out["subgoals"]) == 2
    assert predicted["samples"][0] > 0 and 0 < predicted["plan"] <= 1  # pick: seen in the benchmark
