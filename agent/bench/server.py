"""``vla-agent bench server --clients N``: one policy server, many robots. Throughput and
latency p50/p99 with 1, 2, 4, ... N clients sending requests at once, the server batching
requests that arrive together (``--batch-window-ms``) or answering each alone; the server runs
in its own process on 127.0.0.1, as ``vla-agent serve`` does."""

from __future__ import annotations

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


class ClientsBenchConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    clients: int = Field(8, ge=1, description="the most clients (measured at 1, 2, 4, ... this)")
    requests: int = Field(60, ge=5, description="requests per client per measurement")
    batch_window_ms: float = Field(2.0, gt=0)
    max_batch: int = Field(8, ge=2)
    checkpoint: Path | None = None
    device: str = "cpu"


def _requests(n: int) -> list[dict]:
    from vla_agent.agent.bench.skills import EVAL_SEED_BASE
    from vla_agent.sim.env import EnvConfig, TabletopEnv
    from vla_agent.types import IMAGE, PROMPT, STATE, WRIST_IMAGE

    env = TabletopEnv(EnvConfig(segmentation=False))
    out = []
    for i in range(n):
        o = env.reset(seed=EVAL_SEED_BASE + i)[0]
        out.append(
            {IMAGE: o[IMAGE], WRIST_IMAGE: o[WRIST_IMAGE], STATE: o[STATE], PROMPT: "pick up the red block"}
        )
    env.close()
    return out


def _server(port: int, cfg: ClientsBenchConfig, window: float) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vla_agent.cli", "serve", "--port", str(port), "--device", cfg.device]
    cmd += ["--batch-window-ms", str(window), "--max-batch", str(cfg.max_batch)]
    if cfg.checkpoint:
        cmd += ["--checkpoint", str(cfg.checkpoint)]
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
    requests = _requests(16)
    rows = {}
    for name, window in (("unbatched", 0.0), ("batched", cfg.batch_window_ms)):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = _server(port, cfg, window)
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
