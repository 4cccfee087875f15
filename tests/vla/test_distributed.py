"""Training on two processes (torch DDP, gloo on CPU, rendezvous on 127.0.0.1): the ranks stay in
sync and rank 0 writes a checkpoint the policy loads."""

from __future__ import annotations

from vla_agent.vla.model import VLAConfig
from vla_agent.vla.train import TrainConfig

SMALL = VLAConfig(channels=(8, 16, 16, 16), hidden=64, horizon=4)


def test_two_cpu_ranks_stay_in_sync(tiny_dataset, tmp_path):
    from vla_agent.vla.distributed import train_ddp
    from vla_agent.vla.policy import VLAPolicy

    seen = []
    cfg = TrainConfig(
        dataset=tiny_dataset[0],
        out=tmp_path / "ddp",
        steps=4,
        batch_size=8,
        save_every=2,
        threads=2,
        model=SMALL,
    )
    result = train_ddp(cfg, 2, progress=lambda step, total, info: seen.append(step))
    sums = result["rank_param_checksums"]
    assert result["nproc"] == 2 and result["backend"] == "gloo" and len(sums) == 2
    assert abs(sums[0] - sums[1]) < 1e-9 * max(1.0, abs(sums[0]))  # the same weights on both ranks
    assert seen == [1, 2, 3, 4]  # rank 0's progress reached the parent
    assert len(result["history"]) == 2  # validation at steps 2 and 4, on rank 0
    VLAPolicy(result["checkpoint"])  # a checkpoint the policy loads
