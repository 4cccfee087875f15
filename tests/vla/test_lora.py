"""LoRA adapters: a small file of low-rank updates trained on a frozen base and loaded on top."""

import numpy as np
import pytest
import torch

from vla_agent.errors import ConfigError
from vla_agent.vla.checkpoint import load_checkpoint
from vla_agent.vla.demos import load_dataset
from vla_agent.vla.lora import apply_lora, load_lora
from vla_agent.vla.model import VLAConfig
from vla_agent.vla.policy import VLAPolicy
from vla_agent.vla.train import TrainConfig, train

SMALL = VLAConfig(channels=(8, 16, 16, 16), hidden=64, horizon=4)


@pytest.fixture(scope="module")
def base(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora-base")
    return train(TrainConfig(dataset=tiny_dataset[0], out=out, steps=2, batch_size=8, model=SMALL))[
        "checkpoint"
    ]


def _act(policy: VLAPolicy, d) -> np.ndarray:
    from vla_agent.skills.library import get_skill

    policy.reset(get_skill("pick").subgoal({"obj": "red block"}))
    return policy.infer(d.images[0], d.states[0], d.wrist[0]).actions


def test_a_fresh_adapter_changes_nothing_and_trains_a_small_fraction(base, tiny_dataset):
    model, _, _ = load_checkpoint(base)
    x = [torch.randn(1, 3, 64, 64), torch.randn(1, 7), torch.randn(1, 24, 384), torch.ones(1, 24, dtype=bool)]
    w = torch.randn(1, 3, SMALL.wrist_size, SMALL.wrist_size)
    with torch.no_grad():
        before = model(*x, w)["arm"]
        names = apply_lora(model, rank=2)
        after = model(*x, w)["arm"]
    assert torch.equal(before, after) and "trunk.0" in names  # B starts at zero
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < trainable < 0.1 * sum(p.numel() for p in model.parameters())


def test_finetune_writes_a_small_adapter_that_loads_on_the_unchanged_base(base, tiny_dataset, tmp_path):
    d = load_dataset(tiny_dataset[0])
    base_actions = _act(VLAPolicy(base), d)
    cfg = TrainConfig(
        dataset=tiny_dataset[0],
        out=tmp_path / "lora",
        steps=3,
        batch_size=8,
        lr=0.05,
        init=base,
        lora_rank=2,
        lora_skills=("place_beside",),
    )
    result = train(cfg)
    assert result["adapter_bytes"] < 1_000_000 and result["trainable_parameters"] < result["parameters"] / 10
    assert np.array_equal(_act(VLAPolicy(base), d), base_actions)  # the base checkpoint is untouched
    adapted = VLAPolicy(base, lora=result["adapter"])
    assert "place_beside" in adapted.skills and "pick" in adapted.skills
    assert not np.allclose(_act(adapted, d), base_actions)  # the adapter's updates are applied
    with pytest.raises(ConfigError, match="no LoRA adapter"):
        VLAPolicy(base, lora=tmp_path / "missing.safetensors")
    with pytest.raises(ConfigError, match="adapts a trained checkpoint"):
        train(cfg.model_copy(update={"init": None}))


def test_an_adapter_for_another_model_is_refused(base, tmp_path, tiny_dataset):
    cfg = TrainConfig(
        dataset=tiny_dataset[0], out=tmp_path / "l", steps=1, batch_size=8, init=base, lora_rank=2
    )
    path = train(cfg)["adapter"]
    other, _, _ = load_checkpoint(base)
    other.trunk[0] = torch.nn.Linear(other.trunk[0].in_features, 32)  # not the same architecture
    with pytest.raises(ConfigError, match="do not fit|size mismatch"):
        load_lora(other, path)


def test_the_shipped_place_beside_adapter_loads_by_name_under_1_mb():
    from vla_agent.vla.checkpoint import DEFAULT_CHECKPOINT

    policy = VLAPolicy(lora="place_beside")
    assert "place_beside" in policy.skills
    assert (DEFAULT_CHECKPOINT.parent / "lora-place_beside" / "lora.safetensors").stat().st_size < 1_000_000
