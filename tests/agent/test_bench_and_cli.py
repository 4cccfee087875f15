import json
import subprocess
import sys

from vla_agent.agent.bench.skills import ExpertBenchConfig, run_expert_bench


def test_expert_bench_reports_required_keys():
    r = run_expert_bench(ExpertBenchConfig(episodes=8, seed=500))
    for key in ("success_rate", "per_skill", "render_fps", "steps_per_s", "wall_s_per_episode"):
        assert key in r
    assert set(r["per_skill"]) == {"pick", "place", "place_beside", "push"}  # every registered skill
    assert r["success_rate"] == 1.0, r["failures"]
    assert r["render_fps"] > 0 and r["steps_per_s"] > 0


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "vla_agent.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_help_lists_commands():
    r = _cli("--help")
    assert r.returncode == 0
    for cmd in ("demo", "bench", "scene", "skills"):
        assert cmd in r.stdout


def test_cli_bench_expert_json_on_stdout():
    r = _cli("bench", "expert", "--episodes", "3", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["episodes"] == 3 and data["success_rate"] == 1.0, data["failures"]  # the expert's bar


def test_cli_demo_writes_video_and_summary(tmp_path):
    r = _cli("demo", "--out", str(tmp_path), "--video", "ep.gif", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (tmp_path / "ep.gif").stat().st_size > 1000
    assert "in(red block, yellow bowl)" in summary["holds"]
    assert "on(blue block, green block)" in summary["holds"]


def test_cli_bad_scene_is_one_line_error():
    r = _cli("scene", "--scene", "red blok")
    assert r.returncode == 2
    lines = [x for x in r.stderr.splitlines() if x.strip() and "pybullet build time" not in x]
    assert len(lines) == 1 and "did you mean 'block'" in lines[0]
