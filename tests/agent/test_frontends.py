"""Front-ends as a person uses them: task files, the chat REPL in a pseudo-terminal, a spoken
command synthesized with espeak-ng, and the dry-run report. The scripted expert is the skill
policy so the end state is deterministic; the ground-truth predicates judge it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vla_agent.agent.frontends.taskfile import load_task_file, run_task_files
from vla_agent.cli import main
from vla_agent.errors import ConfigError

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "tasks").glob("*.yaml"))


def test_example_task_files_pass_with_the_expert(tmp_path):
    assert len(EXAMPLES) >= 3
    result = run_task_files(EXAMPLES, {"policy": "expert", "video": False}, tmp_path)
    assert result["failed"] == 0, [f["problems"] for f in result["files"]]
    for f in result["files"]:
        assert f["expect"] and all(f["expect"].values())
        assert f["unsafe_actions_reached_backend"] == 0
        assert all(Path(c["report"]).exists() for c in f["commands"])


@pytest.mark.parametrize(
    "text, message",
    [
        ('scene: "red block, blue bowl"\ncommands:\n  - put it in the bowl\n  - 3\n', r":4: commands\[1\]: "),
        (
            'scene: "red block, blue bowl"\ncommands: [x]\nexpect:\n  - in(green block, blue bowl)\n',
            r":4: expect\[0\]: 'green block' is not in the scene",
        ),
        (
            'scene: "red block, blue bowl"\ncommands: [x]\nexpect: ["in(red block, blue bowl"]\n',
            r":3: expect\[0\]: ",
        ),
        ('scene: "red blok"\ncommands: [x]\n', r":1: scene: .*did you mean 'block'"),
        ('scene: "red block"\ncommands: [x]\noptions:\n  time_limit_s: -1\n', r":4: options.time_limit_s: "),
        ('scene: "red block"\ncommands: [x]\ncolour: red\n', r":3: colour: Extra inputs"),
        ("scene: [\n", r"not valid YAML"),
    ],
)
def test_malformed_task_file_is_one_line_naming_file_line_and_field(tmp_path, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message) as e:
        load_task_file(f)
    assert str(e.value).startswith(str(f)) and "\n" not in str(e.value)


def test_task_cli_runs_nothing_when_one_file_is_malformed(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text('scene: "red block"\n')
    assert main(["task", str(EXAMPLES[0]), str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "bad.yaml:1: commands: Field required" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing ran
    good = [
        "task",
        str(EXAMPLES[0]),
        "--policy",
        "expert",
        "--no-video",
        "--json",
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(good) == 0
    assert json.loads(capsys.readouterr().out)["passed"] == 1


def test_task_file_expectation_failure_exits_1(tmp_path, capsys):
    f = tmp_path / "wrong.yaml"
    f.write_text(
        'scene: "red block, blue block, purple bowl"\ncommands: [put the red block in the bowl]\n'
        "expect:\n  - in(blue block, purple bowl)\n"
    )
    assert (
        main(["task", str(f), "--policy", "expert", "--no-video", "--json", "--out", str(tmp_path / "r")])
        == 1
    )
    r = json.loads(capsys.readouterr().out)["files"][0]
    assert not r["passed"] and r["problems"] == ["expected in(blue block, purple bowl)"]
    assert "in(red block, purple bowl)" in r["holds"]


def test_run_writes_an_html_report_with_plan_timeline_and_end_state(tmp_path, capsys):
    assert (
        main(["run", "put the red block in the bowl", "--policy", "expert", "--out", str(tmp_path), "--json"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    page = Path(summary["report"]).read_text()
    assert "<svg" in page and "pick up the red block" in page and "in(red block, purple bowl)" in page
    assert 'src="episode.mp4"' in page and (tmp_path / "episode.mp4").exists()


def _spawn_chat(tmp_path, *extra):
    pexpect = pytest.importorskip("pexpect")
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", "COLUMNS": "140"}
    args = [
        "-m",
        "vla_agent.cli",
        "chat",
        "--policy",
        "expert",
        "--no-video",
        "--history",
        str(tmp_path / "hist"),
        "--out",
        str(tmp_path / "chat"),
        *extra,
    ]
    child = pexpect.spawn(sys.executable, args, env=env, encoding="utf-8", timeout=60, dimensions=(50, 140))
    child.expect("vla-agent>")
    return child


def test_chat_repl_in_a_pty_plans_confirms_and_finishes(tmp_path):
    child = _spawn_chat(tmp_path)
    child.sendline("/plan stack the blue block on the green one")
    child.expect("put the blue block on the green block")
    child.expect("vla-agent>")
    child.sendline("put the red block in the bowl")
    child.expect("execute this plan")
    child.sendline("y")
    child.expect("success")
    child.expect("vla-agent>")
    assert "in(red block, purple bowl)" in " ".join(
        re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", child.before).split()
    )
    child.sendline("/scene")
    child.expect("relations: in\\(red block, purple bowl\\)")
    child.sendline("/quit")
    child.expect(__import__("pexpect").EOF)
    assert (tmp_path / "hist").read_text().count("put the red block in the bowl") == 1


def test_chat_ctrl_c_is_an_estop_and_the_session_goes_on(tmp_path):
    child = _spawn_chat(tmp_path, "--yes")
    child.sendline("stack the blue block on the green one, then push the yellow block to the left")
    child.expect("plan \\(offline")
    child.sendintr()
    child.expect("e-stop")
    child.expect("stopped")
    child.expect("vla-agent>")
    child.sendline("put the red block in the bowl")
    child.expect("success")
    child.sendline("/quit")
    child.expect(__import__("pexpect").EOF)


ESPEAK = shutil.which("espeak-ng")


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng not installed (.ci/run installs it)")
def test_spoken_command_from_a_wav_file_runs_to_the_right_end_state(tmp_path, capsys):
    pytest.importorskip("pocketsphinx")
    wav = tmp_path / "command.wav"
    subprocess.run(
        [ESPEAK, "-v", "en-us+f2", "-w", str(wav), "put the red block in the purple bowl"], check=True
    )
    args = [
        "voice",
        "--wav",
        str(wav),
        "--policy",
        "expert",
        "--yes",
        "--json",
        "--no-video",
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["transcript"] == "put the red block in the purple bowl"
    assert r["subgoals"][0] == {
        "skill": "pick",
        "args": {"obj": "red block"},
        "instruction": "pick up the red block",
    }
    assert "in(red block, purple bowl)" in r["holds"]


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng not installed (.ci/run installs it)")
def test_spoken_stop_is_an_estop_and_nothing_moves(tmp_path, capsys):
    pytest.importorskip("pocketsphinx")
    wav = tmp_path / "stop.wav"
    subprocess.run([ESPEAK, "-v", "en-us+f2", "-w", str(wav), "stop"], check=True)
    assert main(["voice", "--wav", str(wav), "--policy", "expert", "--yes", "--json", "--no-video"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["transcript"] == "stop" and r["status"] == "stopped" and "holds" not in r


def test_voice_rejects_a_bad_audio_file_before_anything_is_built(tmp_path, capsys):
    f = tmp_path / "x.wav"
    f.write_text("not audio")
    assert main(["voice", "--wav", str(f), "--policy", "expert"]) == 2
    assert "not a PCM WAV file" in capsys.readouterr().err


def test_chat_asks_which_object_and_runs_with_the_answer(tmp_path):
    """An ambiguous command gets a question with the options, not a guess or a refusal; the
    answer completes the plan and the object the answer named ends where the command said."""
    child = _spawn_chat(tmp_path, "--yes")
    child.sendline("put the block in the bowl")  # four blocks in the default scene
    child.expect("or a name")
    child.sendline("the green one")
    child.expect("put the green block in the bowl")
    child.expect("success")
    child.expect("vla-agent>")
    child.sendline("/scene")
    child.expect("relations: in\\(green block, purple bowl\\)")
    child.sendline("/quit")
    child.expect(__import__("pexpect").EOF)


def test_a_task_file_fails_with_the_question_in_one_line(tmp_path, capsys):
    task = tmp_path / "ambiguous.yaml"
    task.write_text("scene: red block, blue block, pink plate\ncommands: [move the cube onto the plate]\n")
    assert (
        main(["task", str(task), "--policy", "expert", "--no-video", "--out", str(tmp_path / "o"), "--json"])
        == 1
    )
    (result,) = json.loads(capsys.readouterr().out)["files"]
    assert "asks: which one do you mean by 'the cube': red block or blue block?" in " ".join(
        result["problems"]
    )


def test_chat_asks_the_person_when_the_detector_cannot_tell(tmp_path):
    """A strict detector allowing for 30 cm of perception error can never be sure that a block is on
    the left side of the table (a region 20 cm wide): it abstains when the policy has finished,
    the chat asks the person, and the answer is the verdict (recorded in the run's events)."""
    child = _spawn_chat(tmp_path, "--yes", "--detector", "perception:margin=0.3,strict=1")
    child.sendline("put the red block on the left side of the table")
    child.expect("the detector cannot tell: did the red block end up on the left side of the table\\?")
    child.sendline("y")
    child.expect("detector unsure")
    child.expect("success")
    child.expect("vla-agent>")
    child.sendline("/quit")
    child.expect(__import__("pexpect").EOF)
    events = [json.loads(line) for f in tmp_path.rglob("trace.jsonl") for line in f.read_text().splitlines()]
    unsure = [e for e in events if e.get("kind") == "unsure"]
    assert unsure and unsure[0]["answer"] is True, unsure


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng not installed (.ci/run installs it)")
def test_voice_speaks_the_question_and_runs_with_the_spoken_answer(tmp_path, capsys):
    """Two bowls: "the bowl" is ambiguous. The robot says the question (espeak-ng, saved in the
    run folder), hears the answer from the next recording and puts the block where it said."""
    pytest.importorskip("pocketsphinx")
    command, answer = tmp_path / "command.wav", tmp_path / "answer.wav"
    subprocess.run(
        [ESPEAK, "-v", "en-us+f2", "-w", str(command), "put the red block in the bowl"], check=True
    )
    subprocess.run([ESPEAK, "-v", "en-us+f2", "-w", str(answer), "the blue bowl"], check=True)
    scene = "red block, green block, blue bowl, purple bowl"
    args = [
        "voice",
        "--wav",
        str(command),
        "--answer-wav",
        str(answer),
        "--scene",
        scene,
        "--policy",
        "expert",
    ]
    args += ["--yes", "--json", "--no-video", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["transcript"] == "put the red block in the bowl"
    assert r["dialogue"][0]["question"].startswith("which one do you mean by 'the bowl'")
    assert r["dialogue"][0]["heard"] == "the blue bowl"
    assert "in(red block, blue bowl)" in r["holds"]
    assert (tmp_path / "r" / "question-1.wav").stat().st_size > 1000  # what the robot said
