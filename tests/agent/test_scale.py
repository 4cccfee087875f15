"""Episodes at scale: the same per-episode records in-process and on Ray workers, results written
as they finish, resumed after a kill, and a worker killed mid-run on a two-node loopback cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from vla_agent.errors import ConfigError
from vla_agent.scale import EpisodeLog, run_episodes

MACHINE = {"wall_s", "overhead_ms", "episode"}  # timings: the only fields a machine changes


def records(folder: Path) -> dict[int, dict]:
    lines = (folder / "episodes.jsonl").read_text().splitlines()[1:]
    return {r["episode"]: {k: v for k, v in r.items() if k not in MACHINE} for r in map(json.loads, lines)}


def chains(out: Path, *extra: str, episodes: int = 3) -> subprocess.Popen:
    args = ["bench", "chains", "--episodes", str(episodes), "--policy", "expert", "--json", "--out", str(out)]
    return subprocess.Popen(
        [sys.executable, "-m", "vla_agent.cli", *args, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        text=True,
    )


class Square:
    def episode(self, i: int) -> dict:
        return {"value": i * i}

    def close(self) -> None:
        pass


def test_the_log_resumes_and_refuses_another_configuration(tmp_path):
    log = EpisodeLog(tmp_path / "episodes.jsonl", {"n": 1})
    assert [r["value"] for r in run_episodes(Square, range(3), log_to=log)] == [0, 1, 4]
    with (tmp_path / "episodes.jsonl").open("a") as f:
        f.write('{"episode": 7, "val')  # a record cut short by a kill
    again = EpisodeLog(tmp_path / "episodes.jsonl", {"n": 1})
    assert sorted(again.records) == [0, 1, 2]
    ran = []

    class Counting(Square):
        def episode(self, i):
            ran.append(i)
            return super().episode(i)

    assert [r["value"] for r in run_episodes(Counting, range(5), log_to=again)] == [0, 1, 4, 9, 16]
    assert ran == [3, 4] and again.resumed == 3
    with pytest.raises(ConfigError, match="another configuration"):
        EpisodeLog(tmp_path / "episodes.jsonl", {"n": 2})


def test_two_ray_workers_give_the_serial_records(tmp_path):
    pytest.importorskip("ray")
    serial, parallel = chains(tmp_path / "serial"), chains(tmp_path / "two", "--workers", "2")
    for p in (serial, parallel):
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
    assert records(tmp_path / "serial") == records(tmp_path / "two")
    result = json.loads(out)
    assert result["workers"] == 2 and result["episodes"] == 3


def _descendants() -> set[int]:
    parent = {}
    for d in Path("/proc").iterdir():
        try:
            parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not shutil.which("ss"), reason="needs iproute2's ss")
def test_a_runs_own_cluster_listens_on_loopback_only_and_ends_with_the_run():
    """``--workers`` starts a cluster for the run: while it runs, every socket its processes (and
    this driver) listen on is on 127.0.0.1; when the run ends, none of its processes is left."""
    pytest.importorskip("ray")
    from vla_agent.agent.bench.chains import ChainBenchConfig, ChainRunner

    make = partial(ChainRunner, ChainBenchConfig(episodes=3, policy="expert"))  # importable by workers
    mid_run: dict[str, object] = {}

    def look(done: int, total: int) -> None:
        if done == 1:  # the cluster is up, episodes are still running
            pids = _descendants()
            listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
            mid_run["pids"] = pids
            mid_run["ports"] = [
                line.split()[3]
                for line in listening.splitlines()
                if any(f"pid={p}," in line for p in pids | {os.getpid()})
            ]

    assert [r["episode"] for r in run_episodes(make, range(3), workers=2, progress=look)] == [0, 1, 2]
    ports = mid_run["ports"]
    assert ports and all(p.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")) for p in ports), ports
    assert not [p for p in mid_run["pids"] if _alive(p)], "the run's cluster outlived it"


def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "run"
    p = chains(out, episodes=4)
    log = out / "episodes.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.2)
    p.send_signal(signal.SIGKILL)  # two episodes written, the third cut off
    p.wait()
    done_before = set(records(out))
    assert 2 <= len(done_before) < 4
    q = chains(out, episodes=4)
    result = json.loads(q.communicate(timeout=300)[0])
    assert result["resumed_episodes"] == len(done_before) and result["episodes"] == 4
    assert sorted(records(out)) == [0, 1, 2, 3]
    fresh = chains(tmp_path / "fresh", episodes=4)
    fresh.communicate(timeout=300)
    assert records(out) == records(tmp_path / "fresh")


@pytest.mark.slow
def test_a_worker_killed_on_a_two_node_loopback_cluster_loses_no_episode(tmp_path, monkeypatch):
    """A two-node cluster on loopback (``ray start --head`` with one CPU, a second node with one
    CPU joined by ``ray_node.py``), joined with --ray-address: the two workers run one on each
    node; the worker on the second node is killed mid-run: Ray restarts it and retries its episode,
    the JSON is complete and every record is the serial one."""
    pytest.importorskip("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env["RAY_AUTH_MODE"] = "disabled"  # loopback only
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    start = [*ray, "start", "--head", "--port", "6391", "--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run(
        [*start, "--include-dashboard", "false"], env=env, check=True, capture_output=True, timeout=120
    )
    try:
        joined = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("ray_node.py")), "127.0.0.1:6391", "1"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        second_raylet = joined.stdout.split()[-1]
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        run = chains(tmp_path / "cluster", "--ray-address", "127.0.0.1:6391", "--workers", "2", episodes=6)
        log = tmp_path / "cluster" / "episodes.jsonl"
        while not log.exists() or len(log.read_text().splitlines()) < 2:
            time.sleep(0.2)
        on_second = subprocess.run(
            ["pgrep", "-P", second_raylet, "-f", "ray::_Actor"], capture_output=True, text=True
        ).stdout.split()
        assert on_second, "no worker ran on the second node"
        os.kill(int(on_second[0]), signal.SIGKILL)
        result = json.loads(run.communicate(timeout=300)[0])
        assert run.returncode == 0 and result["episodes"] == 6
        if shutil.which("ss"):  # iproute2: every Ray server of both nodes listens on loopback only
            listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout.splitlines()
            ray_ports = [line.split()[3] for line in listening if "raylet" in line or "gcs_server" in line]
            assert ray_ports and all("127.0.0.1" in port for port in ray_ports), ray_ports
        serial = chains(tmp_path / "serial", episodes=6)
        serial.communicate(timeout=300)
        assert records(tmp_path / "cluster") == records(tmp_path / "serial")
    finally:
        subprocess.run([*ray, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_collect_on_two_workers_writes_the_serial_dataset_and_resumes(tmp_path):
    """`vla collect --workers 2` writes byte for byte the dataset a serial run writes; a collection
    cut short resumes from its parts folder and still writes that dataset."""
    pytest.importorskip("ray")
    from vla_agent.vla.collect import CollectConfig, collect

    serial = collect(CollectConfig(out=tmp_path / "serial", episodes=4))
    two = collect(CollectConfig(out=tmp_path / "two", episodes=4), workers=2)
    assert serial["episodes_kept"] == two["episodes_kept"] > 0
    files = sorted(
        p.relative_to(tmp_path / "serial") for p in (tmp_path / "serial").rglob("*") if p.is_file()
    )
    for f in files:
        assert (tmp_path / "serial" / f).read_bytes() == (tmp_path / "two" / f).read_bytes(), f
    # a run killed after two tasks: their parts are on disk, the same command resumes from them
    from vla_agent.scale import EpisodeLog
    from vla_agent.vla.collect import CollectRunner, _save_part

    parts = tmp_path / "cut.parts"
    log = EpisodeLog(
        parts / "episodes.jsonl",
        json.loads(CollectConfig(out=tmp_path / "cut", episodes=4).model_dump_json()),
    )
    runner = CollectRunner(CollectConfig(out=tmp_path / "cut", episodes=4))
    for i in range(2):
        log.append({**_save_part(parts, i, runner.episode(i)), "episode": i})
    runner.close()
    resumed = collect(CollectConfig(out=tmp_path / "cut", episodes=4))
    assert resumed["resumed_tasks"] == 2 and not parts.exists()
    for f in files:
        assert (tmp_path / "serial" / f).read_bytes() == (tmp_path / "cut" / f).read_bytes(), f


def test_task_files_on_two_workers_and_resumed(tmp_path, capsys):
    pytest.importorskip("ray")
    from vla_agent.cli import main

    files = sorted(str(p) for p in Path("examples/tasks").glob("*.yaml"))
    args = ["task", *files, "--policy", "expert", "--no-video", "--json", "--out"]
    assert main([*args, str(tmp_path / "serial")]) == 0
    serial = json.loads(capsys.readouterr().out)
    assert main([*args, str(tmp_path / "two"), "--workers", "2"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert [f["holds"] for f in serial["files"]] == [f["holds"] for f in two["files"]]
    assert two["passed"] == len(files)
    assert main([*args, str(tmp_path / "two"), "--resume"]) == 0  # nothing left to run
    again = json.loads(capsys.readouterr().out)
    assert again == two


def test_the_server_batches_requests_that_arrive_together():
    """Four clients at once: their requests go through the model together (the reply says the
    batch size) and each client gets the reply it would get alone."""
    from vla_agent.types import IMAGE, PROMPT, STATE, WRIST_IMAGE
    from vla_agent.vla.client import WebsocketClientPolicy
    from vla_agent.vla.server import BackgroundServer, PolicyService, ServeConfig

    rng = np.random.default_rng(0)
    requests = [
        {
            IMAGE: rng.integers(0, 255, (128, 128, 3), dtype=np.uint8),
            WRIST_IMAGE: rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
            STATE: np.array([0.5, 0.0, 0.2, np.pi, 0.0, 0.0, 0.08]),
            PROMPT: ["pick up the red block", "push the blue block left"][k % 2],
        }
        for k in range(4)
    ]
    service = PolicyService(None, "cpu")
    alone = [service.infer(r)["actions"] for r in requests]
    with BackgroundServer(ServeConfig(port=0, batch_window_ms=50, max_batch=4), service) as srv:
        clients = [WebsocketClientPolicy(f"ws://127.0.0.1:{srv.port}") for _ in requests]
        replies: list = [None] * len(requests)
        go = threading.Barrier(len(requests))

        def ask(k: int) -> None:
            go.wait()
            replies[k] = clients[k].infer(requests[k])

        threads = [threading.Thread(target=ask, args=(k,)) for k in range(len(requests))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for c in clients:
            c.close()
    assert max(r["server_timing"]["batch"] for r in replies) > 1
    for got, want in zip(replies, alone):
        assert np.allclose(got["actions"], want, atol=1e-5)


def test_without_ray_workers_say_how_to_install_it(monkeypatch, capsys):
    from vla_agent.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ConfigError, match=r"pip install 'vla-agent\[scale\]'"):
        run_episodes(Square, range(3), workers=2)
    assert run_episodes(Square, range(3)) == [{"value": v, "episode": i} for i, v in enumerate((0, 1, 4))]
    assert main(["bench", "expert", "--episodes", "2", "--workers", "2", "--json"]) == 2
    assert "vla-agent[scale]" in capsys.readouterr().err
