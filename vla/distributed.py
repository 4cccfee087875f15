"""``vla-agent vla train --nproc N``: data-parallel training on N processes with torch DDP.

Why plain ``torch.distributed`` with ``torch.multiprocessing`` rather than Accelerate or a
``torchrun`` launcher: nothing to install beyond torch and the same ``train`` function runs on
every rank. Backend gloo on CPU (its connections on loopback), NCCL on CUDA (one GPU per rank);
the rendezvous is a file store in a temporary folder. Every rank reads the dataset and draws its
batches from its own shard of the training frames; DDP averages the gradients, so the ranks'
weights stay identical (each returns a checksum of them; rank 0 reports them all)."""

from __future__ import annotations

import gc
import os
import queue
import shutil
import tempfile
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vla_agent.vla.train import TrainConfig, train


def run_rank(rank: int, cfg: TrainConfig, world: int, rendezvous: str, out: mp.Queue | None) -> dict:
    """Rank ``rank`` of ``world``: join the group at ``rendezvous`` (an init method URL), train."""
    backend = "nccl" if cfg.device.startswith("cuda") else "gloo"
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo's own connections stay on loopback
    dist.init_process_group(backend, init_method=rendezvous, rank=rank, world_size=world)
    try:

        def progress(step: int, total: int, info: dict) -> None:
            if out is not None:
                out.put(("progress", step, total, info))

        result = train(cfg, progress if rank == 0 else None, rank=rank, world=world)
        sums: list = [None] * world
        dist.all_gather_object(sums, result["param_checksum"])
        if rank == 0:
            result["rank_param_checksums"] = sums
            if out is not None:
                out.put(("result", result))
        gc.collect()  # nothing that holds the process group outlives it
        dist.barrier()  # no rank tears its connections down while another still uses them
        return result
    finally:
        dist.destroy_process_group()


def _spawned(rank: int, cfg: TrainConfig, world: int, rendezvous: str, out: mp.Queue) -> None:
    torch.set_num_threads(max(1, cfg.threads // world))
    run_rank(rank, cfg, world, rendezvous, out)


def train_ddp(cfg: TrainConfig, nproc: int, progress: Callable[[int, int, dict], None] | None = None) -> dict:
    """Train on ``nproc`` processes; rank 0's figures plus every rank's weight checksum."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    # The rendezvous is a file (a FileStore): no rank hosts a store server that the others still
    # talk to while it exits; the ranks' own gloo connections are on loopback.
    folder = tempfile.mkdtemp(prefix="vla-ddp-")
    rendezvous = f"file://{os.path.join(folder, 'store')}"
    procs = mp.start_processes(
        _spawned, args=(cfg, nproc, rendezvous, out), nprocs=nproc, join=False, start_method="spawn"
    )
    result: dict = {}

    def drain() -> None:
        while True:
            try:
                item = out.get_nowait()
            except queue.Empty:
                return
            if item[0] == "progress" and progress is not None:
                progress(*item[1:])
            elif item[0] == "result":
                result.update(item[1])

    try:
        while not procs.join(timeout=0.2):
            drain()
        drain()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {**result, "nproc": nproc, "backend": "nccl" if cfg.device.startswith("cuda") else "gloo"}
