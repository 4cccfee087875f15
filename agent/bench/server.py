"""``vla-agent bench server``: the policy server measured from outside, in its own process on
127.0.0.1 as ``vla-agent serve`` runs.

- ``run_server_bench``: the same observations answered in-process and over the loopback
  websocket (the protocol's overhead), then beside clients flooding the server with bad requests.
- ``run_clients_bench`` (``--clients N``): one server, many robots. Throughput and latency p50/p99
  with 1, 2, 4, ... N clients sending requests at once, the server batching requests that arrive
  together (``--batch-window-ms``) or answering each alone."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_agent.agent.core.stats import p50_p99
from vla_agent.errors import ConfigError


class ClientsBenchConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    clients: int = Field(8, ge=1, description="the most clients (measured at 1, 2, 4, ... this)")
    requests: int = Field(60, ge=5, description="requests per client per measurement")
    batch_window_ms: float = Field(2.0, gt=0)
    max_batch: int = Field(8, ge=2)
    checkpoint: Path | None = None
    device: str = "cpu"


def observations(n: int) -> list[dict]:
    """``n`` policy requests from seeded evaluation scenes (static and wrist images, state, the
    pick sentence)."""
    from vla_agent.agent.bench.skills import EVAL_SEED_BASE
    from vla_agent.sim.env import EnvConfig, TabletopEnv
    from vla_agent.skills.library import get_skill
    from vla_agent.types import IMAGE, PROMPT, STATE, WRIST_IMAGE

    prompt = get_skill("pick").subgoal({"obj": "red block"}).instruction
    env = TabletopEnv(EnvConfig(segmentation=False))
    out = []
    for i in range(n):
        o = env.reset(seed=EVAL_SEED_BASE + i)[0]
        out.append({IMAGE: o[IMAGE], WRIST_IMAGE: o[WRIST_IMAGE], STATE: o[STATE], PROMPT: prompt})
    env.close()
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, checkpoint: Path | None, device: str, *options: str) -> subprocess.Popen:
    """``vla-agent serve`` in its own process on 127.0.0.1:``port``, once its /healthz answers."""
    cmd = [sys.executable, "-m", "vla_agent.cli", "serve", "--port", str(port), "--device", device, *options]
    if checkpoint:
        cmd += ["--checkpoint", str(checkpoint)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the policy server did not come up within 60 s") from None
            time.sleep(0.2)


@contextlib.contextmanager
def served_vla(cfg):
    """A bench config as it runs: with ``server_latency_ms`` set, the VLA behind ``vla-agent serve
    --latency-ms`` on a free loopback port for the ``with`` block, and the config's policy its
    ``ws://`` address; otherwise the config itself."""
    if cfg.server_latency_ms is None:
        yield cfg
        return
    if cfg.policy != "vla":
        raise ConfigError("--server-latency-ms serves the VLA locally: use it with --policy vla")
    port = free_port()
    device = getattr(cfg, "device", "cpu")
    proc = start_server(port, cfg.checkpoint, device, "--latency-ms", str(cfg.server_latency_ms))
    try:
        yield cfg.model_copy(update={"policy": f"ws://127.0.0.1:{port}"})
    finally:
        proc.terminate()
        proc.wait(10)


def _measure(port: int, clients: int, requests: list[dict], per_client: int) -> dict:
    from vla_agent.vla.client import WebsocketClientPolicy

    conns = [WebsocketClientPolicy(f"ws://127.0.0.1:{port}") for _ in range(clients)]
    for c in conns:
        c.infer(requests[0])  # warm-up
    latencies: list[list[float]] = [[] for _ in range(clients)]
    batches: list[int] = []
    start = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        start.wait()
        for j in range(per_client):
            t0 = time.perf_counter()
            reply = conns[k].infer(requests[(k + j) % len(requests)])
            latencies[k].append((time.perf_counter() - t0) * 1000)
            batches.append(int(reply["server_timing"].get("batch", 1)))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    every = np.array([x for lat in latencies for x in lat])
    return {
        "requests_per_s": len(every) / wall,
        "latency_ms": p50_p99(every),
        "mean_batch": float(np.mean(batches)),
    }


def run_clients_bench(cfg: ClientsBenchConfig) -> dict:
    counts = sorted({min(2**k, cfg.clients) for k in range(cfg.clients.bit_length() + 1)})
    requests = observations(16)
    rows = {}
    for name, window in (("unbatched", 0.0), ("batched", cfg.batch_window_ms)):
        port = free_port()
        options = ("--batch-window-ms", str(window), "--max-batch", str(cfg.max_batch))
        proc = start_server(port, cfg.checkpoint, cfg.device, *options)
        try:
            rows[name] = {str(n): _measure(port, n, requests, cfg.requests) for n in counts}
        finally:
            proc.terminate()
            proc.wait(10)
    return {
        "benchmark": "server-clients",
        "clients": counts,
        "unbatched": rows["unbatched"],
        "batched": rows["batched"],
        "throughput_gain": {
            str(n): rows["batched"][str(n)]["requests_per_s"] / rows["unbatched"][str(n)]["requests_per_s"]
            for n in counts
        },
        "config": cfg.model_dump(mode="json"),
    }


class ServerBenchConfig(BaseModel):
    """``vla-agent bench server``: in-process inference vs. a loopback round trip."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint: Path | None = None
    device: str = "cpu"
    requests: int = Field(200, ge=10)
    flooders: int = Field(2, ge=0, description="hostile clients beside the measured one in the last pass")


def _flood(uri: str, stop, prompt_chars: int = 100_000) -> None:
    """A hostile client: map bombs, an over-long prompt, garbage and absurd numbers, as fast as
    the server answers them."""
    import msgpack

    from vla_agent.types import OBJECT_START, PROMPT, STATE
    from vla_agent.vla import msgpack_numpy
    from vla_agent.vla.client import _connect

    state = np.array([0.5, 0, 0.3, 0, 0, 0, 0.08], np.float32)
    frames = [
        msgpack.packb([{}] * 200_000),
        msgpack_numpy.packb({STATE: state, PROMPT: "x" * prompt_chars}),
        b"\xc1 garbage",
        msgpack_numpy.packb({STATE: state, PROMPT: "pick", OBJECT_START: np.array([1e38, 0.0, 0.0])}),
    ]
    k = 0
    while not stop.is_set():  # reconnect whenever the server cuts the connection off
        try:
            ws = _connect(uri, open_timeout=5, max_size=2**24, compression=None)
            ws.recv(timeout=5)
            while not stop.is_set():
                ws.send(frames[k % len(frames)])
                ws.recv(timeout=10)
                k += 1
            ws.close()
        except Exception:  # noqa: BLE001 - closed on us: come back, as an attacker would
            time.sleep(0.01)


def run_server_bench(cfg: ServerBenchConfig) -> dict:
    """Latency of the same observations answered in-process and by ``vla-agent serve`` running in
    its own process on 127.0.0.1; the difference is the protocol overhead (msgpack, websocket)."""
    from vla_agent.vla.client import WebsocketClientPolicy
    from vla_agent.vla.server import PolicyService

    requests = (observations(10) * (cfg.requests // 10 + 1))[: cfg.requests]
    service = PolicyService(cfg.checkpoint, cfg.device)
    for r in requests[:10]:  # warm-up
        service.infer(r)
    local = []
    for r in requests:
        t0 = time.perf_counter()
        service.infer(r)
        local.append((time.perf_counter() - t0) * 1000)
    port = free_port()
    proc = start_server(port, cfg.checkpoint, cfg.device)
    try:
        client = WebsocketClientPolicy(f"ws://127.0.0.1:{port}")
        for r in requests[:10]:
            client.infer(r)
        remote, server_side = [], []
        for r in requests:
            t0 = time.perf_counter()
            reply = client.infer(r)
            remote.append((time.perf_counter() - t0) * 1000)
            server_side.append(float(reply["server_timing"]["infer_ms"]))
        flooded = []
        if cfg.flooders:
            stop = threading.Event()
            threads = [
                threading.Thread(target=_flood, args=(f"ws://127.0.0.1:{port}", stop), daemon=True)
                for _ in range(cfg.flooders)
            ]
            for t in threads:
                t.start()
            time.sleep(0.5)
            for r in requests:
                t0 = time.perf_counter()
                client.infer(r)
                flooded.append((time.perf_counter() - t0) * 1000)
            stop.set()
            for t in threads:
                t.join(10)
        client.close()
    finally:
        proc.terminate()
        proc.wait(10)
    lp, rp = p50_p99(local), p50_p99(remote)
    return {
        "benchmark": "server",
        "requests": cfg.requests,
        "in_process_ms": lp,
        "loopback_ms": rp,
        "server_infer_ms": p50_p99(server_side),
        "overhead_ms": {"p50": rp["p50"] - lp["p50"], "p99": rp["p99"] - lp["p99"]},
        "flooders": cfg.flooders,
        "loopback_flooded_ms": p50_p99(flooded) if flooded else None,
        "flooded_p99_over_idle": p50_p99(flooded)["p99"] / rp["p99"] if flooded else None,
        "device": cfg.device,
    }
