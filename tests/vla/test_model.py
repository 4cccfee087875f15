import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vla_agent.errors import ConfigError
from vla_agent.skills.library import get_skill
from vla_agent.types import IMAGE, STATE, WRIST_IMAGE
from vla_agent.vla.checkpoint import load_checkpoint, save_checkpoint
from vla_agent.vla.demos import load_dataset
from vla_agent.vla.model import VLAConfig, VLANet
from vla_agent.vla.normalize import Normalizer
from vla_agent.vla.policy import VLAPolicy
from vla_agent.vla.train import Batcher, TrainConfig, compute_loss, train, use_bf16

SMALL = VLAConfig(channels=(8, 16, 16, 16), hidden=64, horizon=4)


def test_normalizer_round_trip_and_missing_stats(tiny_dataset):
    d = load_dataset(tiny_dataset[0])
    norm = Normalizer(d.stats)
    np.testing.assert_allclose(norm.unaction(norm.action(d.actions)), d.actions, atol=1e-6)
    assert np.all(norm.action(d.actions)[:, 6] == d.actions[:, 6])  # gripper untouched
    bad = {k: v for k, v in d.stats.items() if k != "action"}
    with pytest.raises(ConfigError, match="lack action.mean"):
        Normalizer(bad)
    bad = {**d.stats, "observation.state": {"mean": d.stats["observation.state"]["mean"]}}
    with pytest.raises(ConfigError, match="observation.state.std"):
        Normalizer(bad)


def test_bins_round_trip_within_half_a_bin():
    m = VLANet(VLAConfig(action_head="bins", channels=(8, 8, 8, 8), hidden=32))
    x = torch.linspace(-2.9, 2.9, 101).view(1, 101, 1).expand(1, 101, 6)
    logits = torch.nn.functional.one_hot(m.bin_targets(x), m.cfg.n_bins).float()
    step = 2 * m.cfg.bin_range / (m.cfg.n_bins - 1)
    assert (m.decode_arm(logits) - x).abs().max() <= step / 2 + 1e-6


@pytest.mark.slow  # training to convergence: ~20-50 s per head on 2 cores
@pytest.mark.parametrize("head", ["continuous", "bins"])
def test_overfits_one_batch(tiny_dataset, head):
    torch.manual_seed(0)
    d = load_dataset(tiny_dataset[0])
    norm = Normalizer(d.stats)
    model = VLANet(SMALL.model_copy(update={"action_head": head}))
    data = Batcher(d, norm, model.cfg.horizon, torch.device("cpu"))
    batch = data.batch(torch.arange(16), None, 0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(200):
        loss, info = compute_loss(model, batch, 0.5)
        first = first or info
        opt.zero_grad()
        loss.backward()
        opt.step()
    # The action terms fit; the heatmap term keeps the entropy of its Gaussian targets.
    assert info["arm"] < 0.3 * first["arm"] and info["gripper"] < 0.2 * first["gripper"], (first, info)
    assert info["loss"] < first["loss"]


def test_bf16_autocast_matches_float32_and_keeps_float32_weights(tiny_dataset):
    torch.manual_seed(0)
    d = load_dataset(tiny_dataset[0])
    model = VLANet(SMALL)
    batch = Batcher(d, Normalizer(d.stats), model.cfg.horizon, torch.device("cpu")).batch(
        torch.arange(16), None, 0
    )
    loss32, _ = compute_loss(model, batch, 0.5)
    loss16, info = compute_loss(model, batch, 0.5, bf16=True)
    assert loss16.dtype == torch.float32 and abs(loss16.item() - loss32.item()) < 0.02 * loss32.item(), info
    loss16.backward()
    assert all(
        p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
        for p in model.parameters()
        if p.grad is not None
    )
    assert use_bf16("bf16", torch.device("cpu")) and not use_bf16("fp32", torch.device("cpu"))


def test_train_checkpoint_resume_and_policy(tiny_dataset, tmp_path):
    cfg = TrainConfig(
        dataset=tiny_dataset[0], out=tmp_path / "run", steps=6, batch_size=8, save_every=3, model=SMALL
    )
    r = train(cfg)
    assert r["resumed_from"] == 0 and len(r["history"]) == 2
    r2 = train(cfg.model_copy(update={"steps": 9}))  # resumes from run/last at step 6
    assert r2["resumed_from"] == 6
    model, norm, config = load_checkpoint(r2["checkpoint"])
    assert config["step"] == 9
    policy = VLAPolicy(r2["checkpoint"], execute=3)
    policy.reset(get_skill("pick").subgoal({"obj": "red block"}))
    d = load_dataset(tiny_dataset[0])
    chunk = policy.act({IMAGE: d.images[0], WRIST_IMAGE: d.wrist[0], STATE: d.states[0]})
    assert chunk.shape == (3, 7)
    assert np.all(np.abs(chunk[:, :3]) <= 0.04) and set(np.unique(chunk[:, 6])) <= {-1.0, 1.0}
    assert 0.0 <= policy.done_prob <= 1.0 and len(policy.latencies_ms) == 1


def test_fine_tune_from_a_checkpoint_keeps_its_stats(tiny_dataset, tmp_path):
    cfg = TrainConfig(dataset=tiny_dataset[0], out=tmp_path / "base", steps=2, batch_size=8, model=SMALL)
    base = train(cfg)
    _, base_norm, _ = load_checkpoint(base["checkpoint"])
    base_norm.stats["action"]["mean"][0] += 0.5  # stats that differ from the dataset's own
    (Path(base["checkpoint"]) / "stats.json").write_text(json.dumps(base_norm.stats))
    tuned = train(
        TrainConfig(
            dataset=tiny_dataset[0], out=tmp_path / "tuned", steps=2, batch_size=8, init=base["checkpoint"]
        )
    )
    _, norm, _ = load_checkpoint(tuned["checkpoint"])
    assert norm.stats["action"]["mean"] == base_norm.stats["action"]["mean"]


def test_checkpoint_save_load_identical_outputs(tmp_path, tiny_dataset):
    d = load_dataset(tiny_dataset[0])
    model = VLANet(SMALL).eval()
    path = save_checkpoint(tmp_path / "ck", model, d.stats)
    loaded, _, _ = load_checkpoint(path)
    x, s, t = torch.randn(2, 3, 64, 64), torch.randn(2, 7), torch.randn(2, 24, 384)
    w = torch.randn(2, 3, SMALL.wrist_size, SMALL.wrist_size)
    m = torch.arange(24).expand(2, 24) < torch.tensor([[5], [9]])
    with torch.no_grad():
        a, b = model(x, s, t, m, w), loaded(x, s, t, m, w)
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    (path / "stats.json").unlink()
    with pytest.raises(ConfigError, match="missing stats.json"):
        load_checkpoint(path)


def test_policy_act_before_reset_raises(tmp_path, tiny_dataset):
    d = load_dataset(tiny_dataset[0])
    path = save_checkpoint(tmp_path / "ck", VLANet(SMALL), d.stats)
    with pytest.raises(ConfigError, match="before reset"):
        VLAPolicy(path).act({IMAGE: d.images[0], WRIST_IMAGE: d.wrist[0], STATE: d.states[0]})
