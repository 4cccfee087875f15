"""A plugin adds a skill and an arm driver through entry points only (``examples/plugin``): once
installed, the registries list them, the offline planner plans the skill and the agent runs it end
to end with the scripted expert, its effect checked by ground truth."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(ROOT / "examples" / "plugin", src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp / "site"), str(src)]
    if importlib.util.find_spec("setuptools") is not None:
        cmd.insert(4, "--no-build-isolation")  # build with the setuptools at hand (no download)
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return str(tmp / "site")


def _cli(plugin_path: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([plugin_path, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-m", "vla_agent.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_an_installed_plugin_adds_a_skill_and_an_arm(plugin_path):
    parts = _cli(plugin_path, "plugins", "--json")
    origin = {(p["kind"], p["name"]): p["origin"] for p in parts["parts"]}
    assert origin[("skill", "place_behind")] == "vla-agent-example-plugin"
    assert origin[("arm", "logged")] == "vla-agent-example-plugin"
    assert not parts["errors"]
    skills = _cli(plugin_path, "skills", "--json")
    assert skills["place_behind"]["effects"] == ["behind({obj}, {target})", "hand_empty()"]
    assert skills["place_behind"]["origin"] == "vla-agent-example-plugin"


def test_the_plugin_skill_runs_end_to_end_with_the_expert(plugin_path, tmp_path):
    r = _cli(
        plugin_path,
        "run",
        "put the red block behind the blue bowl",
        "--scene",
        "red block, green block, blue bowl",
        "--policy",
        "expert",
        "--json",
        "--no-video",
        "--out",
        str(tmp_path),
    )
    assert [s["skill"] for s in r["subgoals"]] == ["pick", "place_behind"]
    assert r["status"] == "success" and "behind(red block, blue bowl)" in r["holds"]
