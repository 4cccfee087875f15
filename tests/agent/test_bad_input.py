"""Bad input gets one line and exit 2, nothing moves, and nothing already recorded is lost; a
plan that does not match the command never runs; a dead policy server ends a run once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vla_agent.agent.core.session import AgentConfig, Session
from vla_agent.agent.frontends.taskfile import run_task_files
from vla_agent.cli import main
from vla_agent.errors import PolicyUnavailable
from vla_agent.types import Subgoal

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "two_commands.yaml"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d, "not a file"),
        (lambda d: _write(d, b"\x89PNG\r\n\x1a\n\xff\xfe\x00"), "UTF-8"),
        (lambda d: _write(d, 'scene: "red block"\nseed: -1\ncommands: [x]\n'), "seed"),
        (
            lambda d: _write(d, 'scene: "red block"\ncommands: [x]\noptions:\n  time_limit_s: .inf\n'),
            "time_limit",
        ),
        (
            lambda d: _write(d, 'scene: "red block"\ncommands:\n' + "  - pick up the red block\n" * 51),
            "commands",
        ),
        (lambda d: _write(d, "scene: x\n" + "#" * 300_000), "bytes"),
    ],
)
def test_bad_task_files_are_one_line_exit_2_and_nothing_runs(tmp_path, capsys, make, message):
    bad = make(tmp_path)
    out = tmp_path / "reports"
    assert main(["task", str(EXAMPLE), str(bad), "--out", str(out)]) == 2
    assert message in one_line_error(capsys)
    assert not out.exists()  # nothing ran, not even the good file


def _write(d: Path, content: str | bytes) -> Path:
    f = d / "task.yaml"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    return f


def test_a_file_that_fails_while_running_keeps_the_others_results(tmp_path):
    task = 'scene: "red block, blue bowl"\ncommands: [put the red block in the bowl]\n'
    good = tmp_path / "good.yaml"
    good.write_text(task + "expect: ['in(red block, blue bowl)']\noptions:\n  policy: expert\n")
    dead = tmp_path / "dead.yaml"
    dead.write_text(task + "options:\n  policy: ws://127.0.0.1:9\n")
    result = run_task_files([good, dead, good], {"video": False}, tmp_path / "r")
    assert [f["passed"] for f in result["files"]] == [True, False, True]
    assert "unreachable" in result["files"][1]["problems"][0]


def test_run_with_a_negative_seed_is_one_line(capsys):
    assert main(["run", "--seed", "-1", "--policy", "expert", "--no-video"]) == 2
    assert "seed" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"\x00\x01\x02\xff\xfe binary", b"[1, 2, 3]\n"])
def test_replay_of_something_that_is_not_a_trace_is_one_line(tmp_path, capsys, content):
    f = tmp_path / "trace.jsonl"
    f.write_bytes(content)
    assert main(["replay", str(f)]) == 2
    one_line_error(capsys)
    assert main(["replay", str(tmp_path)]) == 2
    assert "folder" in one_line_error(capsys)


def test_a_killed_run_is_shown_as_interrupted_with_its_last_state(tmp_path, capsys):
    out = tmp_path / "run"
    command = "put the red block in the bowl, then stack the blue block on the green one"
    code = (
        "import os, sys\n"
        "from vla_agent.agent.core.session import AgentConfig, Session\n"
        "s = Session(AgentConfig(policy='expert', video=False))\n"
        "s.reset()\n"
        "s.events.subscribe(lambda ev: ev.kind == 'subgoal_end' and os._exit(9))\n"
        f"s.run({command!r}, out=__import__('pathlib').Path({str(out)!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == 9  # killed right after the first subgoal ended
    assert (out / "trace.jsonl").exists() and not (out / "summary.json").exists()
    assert main(["replay", str(out / "trace.jsonl"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["final"]["status"] == "interrupted"
    assert re.match(r"interrupted at step \d+", summary["final"]["reason"])
    assert len(summary["final"]["last_state"]) == 7
    recovered = json.loads((out / "summary.json").read_text())
    assert recovered["status"] == "interrupted" and recovered["steps"] == summary["steps"] > 0


class _PlanYellow:
    """An LLM-like planner that moves the yellow block whatever it is asked."""

    def plan(self, command, scene):
        from vla_agent.agent.planning.plan import validate_plan

        return validate_plan(
            [
                Subgoal("pick", {"obj": "yellow block"}),
                Subgoal("place", {"obj": "yellow block", "target": "purple bowl"}),
            ],
            scene,
        )


@pytest.fixture(scope="module")
def session():
    s = Session(AgentConfig(policy="expert", video=False))
    yield s
    s.close()


def test_a_plan_that_moves_an_object_the_command_did_not_name_never_runs(session):
    session.reset()
    planner = session.executor.planner
    session.executor.planner = _PlanYellow()
    try:
        applied = session.backend.applied
        result = session.executor.run("put the red block in the bowl")
    finally:
        session.executor.planner = planner
    assert result.status == "refused" and "yellow block" in result.reason and "does not name" in result.reason
    assert session.backend.applied == applied  # nothing moved


def test_the_offline_planner_never_acts_on_an_excluded_block(session):
    session.reset()
    result = session.executor.run("put the block that is not green in the bowl")
    moved = {o.subgoal.args.get("obj") for o in result.outcomes}
    assert "green block" not in moved


class _DeadServer:
    done = False
    skills = None

    def reset(self, subgoal):
        pass

    def act(self, obs):
        from vla_agent.vla.client import PolicyServerError

        raise PolicyServerError("policy server ws://127.0.0.1:9: no reply within 10.0 s")


def test_a_dead_policy_server_ends_the_run_once(session):
    session.reset()
    policy = session.executor.policy
    session.executor.policy = _DeadServer()
    try:
        t0 = time.perf_counter()
        result = session.executor.run(
            "put the red block in the bowl, then stack the blue block on the green one"
        )
    finally:
        session.executor.policy = policy
    assert result.status == "error" and "no reply within" in result.reason
    assert len(result.outcomes) == 1 and result.replans == 0  # no retries, no replans
    assert time.perf_counter() - t0 < 5
    assert isinstance(PolicyUnavailable("x"), Exception) and session.events.of("error")


def test_api_key_from_the_environment_reaches_run(tmp_path, capsys, monkeypatch):
    from vla_agent.vla.server import BackgroundServer, PolicyService, ServeConfig

    with BackgroundServer(ServeConfig(port=0, api_key="k3y"), PolicyService(None, "cpu")) as srv:
        uri = f"ws://127.0.0.1:{srv.port}"
        monkeypatch.delenv("VLA_AGENT_API_KEY", raising=False)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
        args = [
            "run",
            "pick up the red block",
            "--policy",
            uri,
            "--no-video",
            "--json",
            "--out",
            str(tmp_path / "r"),
        ]
        assert main(args) == 2
        assert "refused the connection" in capsys.readouterr().err  # no key: HTTP 401, one line
        monkeypatch.setenv("VLA_AGENT_API_KEY", "k3y")
        assert main(args) == 0
        assert json.loads(capsys.readouterr().out)["status"] == "success"
        key_file = tmp_path / "key"
        key_file.write_text("k3y\n")
        monkeypatch.delenv("VLA_AGENT_API_KEY")
        assert main([*args, "--api-key-file", str(key_file)]) == 0
        capsys.readouterr()
        (tmp_path / "cfg" / "vla-agent").mkdir(parents=True)
        (tmp_path / "cfg" / "vla-agent" / "api_key").write_text("k3y")
        assert main(args) == 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vla_agent.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import urllib.request

    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("policy server did not start")


def test_a_chat_session_survives_a_policy_server_restart(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    port = _free_port()
    env = {**os.environ, "VLA_AGENT_API_KEY": "k3y", "XDG_CONFIG_HOME": str(tmp_path)}
    server = _serve(port, env)
    try:
        args = ["-m", "vla_agent.cli", "chat", "--yes", "--no-video", "--policy", f"ws://127.0.0.1:{port}"]
        child = pexpect.spawn(
            sys.executable,
            [*args, "--history", str(tmp_path / "hist"), "--out", str(tmp_path / "runs")],
            env={**env, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", "COLUMNS": "140"},
            encoding="utf-8",
            timeout=120,
            dimensions=(50, 140),
        )
        child.expect("vla-agent>")
        child.sendline("pick up the red block")
        child.expect("success")
        child.expect("vla-agent>")
        server.terminate()
        server.wait(10)
        server = _serve(port, env)  # the same address, a new process
        child.sendline("put the red block in the bowl")
        child.expect("success")
        child.expect("vla-agent>")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        server.kill()


def test_every_policy_takes_the_session_options(env):
    from vla_agent.agent.core.policies import make_policy

    for spec in ("vla", "expert"):  # the remote-only options are not forwarded to local policies
        assert make_policy(spec, env, checkpoint=None, device="cpu", api_key_file=None) is not None


def test_an_llm_plan_that_moves_the_wrong_block_is_refused_and_nothing_moves(tmp_path, capsys):
    pytest.importorskip("langchain_openai")
    from fake_openai import FakeOpenAI

    wrong = (
        '{"subgoals": [{"skill": "pick", "args": {"obj": "yellow block"}},'
        ' {"skill": "place", "args": {"obj": "yellow block", "target": "purple bowl"}}]}'
    )
    with FakeOpenAI([wrong, wrong]) as srv:
        common = ["--planner", "llm", "--llm-base-url", srv.base_url, "--no-llm-fallback", "--json"]
        assert main(["plan", "put the red block in the bowl", *common]) == 2  # refused
        assert "yellow block" in json.loads(capsys.readouterr().out)["refused"]
        out = tmp_path / "run"
        args = ["run", "put the red block in the bowl", *common, "--policy", "expert", "--no-video"]
        assert main([*args, "--out", str(out)]) == 2
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "refused" and "does not name" in summary["reason"]
    assert summary["steps"] == 0 and not summary["outcomes"]  # nothing moved


def test_the_shield_of_a_session_is_the_cell_s_from_a_yaml_file(tmp_path, capsys):
    from vla_agent.agent.safety.shield import load_shield_config

    cell = Path(__file__).resolve().parents[2] / "examples" / "shield" / "cell.yaml"
    cfg = load_shield_config(cell)
    assert cfg.max_translation == 0.03 and cfg.keep_out[0].name == "camera mast"
    s = Session(AgentConfig(policy="expert", video=False, shield=cfg))
    try:
        assert s.executor.shield.config == cfg and s.backend.audit.config == cfg
        assert s.executor.shield is not s.backend.audit  # the backend's audit stays independent
    finally:
        s.close()
    bad = tmp_path / "shield.yaml"
    bad.write_text("workspace_min: [0.5, 0, 0]\nworkspace_max: [0.4, 1, 1]\n")
    assert main(["run", "put the red block in the bowl", "--policy", "expert", "--shield", str(bad)]) == 2
    assert "workspace_min must be below workspace_max" in one_line_error(capsys)
