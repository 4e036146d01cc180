"""Optimizers, schedules, config validation, throughput/MFU, the batch iterator, torchrun commands."""
from __future__ import annotations


import pytest
import torch

from shared.train import (LionW, ResumableBatches, TrainConfig, build_optimizer,
                          build_torchrun_command, interpolate, lr_multiplier, mfu, peak_flops,
                          rank_slice)
from shared.train.schedules import build_lr_scheduler
from shared.train.throughput import device_key, model_flops_per_token


# ---- LionW ----------------------------------------------------------------------------------------

def test_lionw_matches_update_rule_by_hand():
    """Chen et al. 2023 Alg. 2 on 3 numbers, 3 steps, computed by hand in plain Python."""
    lr, b1, b2, wd = 0.1, 0.9, 0.99, 0.5
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = LionW([p], lr=lr, betas=(b1, b2), weight_decay=wd)
    grads = [[0.3, -0.1, 0.0], [-0.5, 0.2, 0.05], [0.1, 0.4, -0.2]]
    theta, m = [1.0, -2.0, 0.5], [0.0, 0.0, 0.0]
    sign = lambda v: (v > 0) - (v < 0)  # noqa: E731
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        c = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        theta = [t - lr * (sign(ci) + wd * t) for t, ci in zip(theta, c)]
        m = [b2 * mi + (1 - b2) * gi for mi, gi in zip(m, g)]
        assert torch.allclose(p.detach(), torch.tensor(theta), atol=1e-6), (p, theta)
        assert torch.allclose(opt.state[p]["exp_avg"], torch.tensor(m), atol=1e-7)
    assert theta[0] != 1.0


@pytest.mark.parametrize("optimizer", ["adamw", "lionw"])
def test_weight_decay_scaling_modes(optimizer):
    """With zero gradients only the decay acts: "schedule" decays by wd*lr_t/lr_peak per step,
    "lr" by wd*lr_t. Biases (1-D) are not decayed."""
    for scaling, expected_rate in (("schedule", lambda lr_t, lr0, wd: wd * lr_t / lr0),
                                   ("lr", lambda lr_t, lr0, wd: wd * lr_t)):
        lin = torch.nn.Linear(2, 2)
        with torch.no_grad():
            lin.weight.fill_(1.0)
            lin.bias.fill_(1.0)
        cfg = TrainConfig(max_steps=4, lr=0.5, optimizer=optimizer, weight_decay=0.1,
                          weight_decay_scaling=scaling, schedule="linear", alpha_f=0.0)
        opt = build_optimizer(lin, cfg)
        sched = build_lr_scheduler(opt, cfg)
        w = 1.0
        for step in range(4):
            lr_t = opt.param_groups[0]["lr"]
            assert lr_t == pytest.approx(0.5 * lr_multiplier(step, 4, "linear"))
            lin.weight.grad = torch.zeros_like(lin.weight)
            lin.bias.grad = torch.zeros_like(lin.bias)
            opt.step()
            sched.step()
            w *= 1 - expected_rate(lr_t, 0.5, 0.1)
            assert lin.weight[0, 0].item() == pytest.approx(w, rel=1e-6)
            assert lin.bias[0].item() == 1.0


def test_frozen_params_excluded():
    lin = torch.nn.Linear(3, 3)
    lin.bias.requires_grad_(False)
    opt = build_optimizer(lin, TrainConfig(weight_decay=0.1))
    assert sum(len(g["params"]) for g in opt.param_groups) == 1


# ---- schedules ------------------------------------------------------------------------------------

def test_lr_schedules():
    T, W = 110, 10
    assert lr_multiplier(0, T, "cosine", W) == pytest.approx(0.1)
    assert lr_multiplier(W - 1, T, "cosine", W) == 1.0
    assert lr_multiplier(W, T, "cosine", W) == 1.0
    assert lr_multiplier(W + 50, T, "cosine", W, alpha_f=0.2) == pytest.approx(0.6)
    assert lr_multiplier(T, T, "cosine", W, alpha_f=0.2) == pytest.approx(0.2)
    assert lr_multiplier(T - 1, T, "cosine", W) > 0  # no update at LR 0
    assert lr_multiplier(W + 25, T, "linear", W, alpha_f=0.0) == pytest.approx(0.75)
    assert lr_multiplier(T - 1, T, "constant", W) == 1.0
    assert lr_multiplier(4 * W - 1, T, "inv_sqrt", W) == pytest.approx(0.5)


def test_constant_schedule_with_a_cooldown():
    T, W, C = 110, 10, 20
    assert lr_multiplier(T - C - 1, T, "constant", W, cooldown_steps=C) == 1.0        # the last constant update
    assert lr_multiplier(T - C + 10, T, "constant", W, alpha_f=0.0, cooldown_steps=C) == pytest.approx(0.5)
    assert lr_multiplier(T, T, "constant", W, alpha_f=0.1, cooldown_steps=C) == pytest.approx(0.1)
    assert lr_multiplier(T - 1, T, "constant", W, cooldown_steps=C) > 0
    with pytest.raises(ValueError, match="goes with schedule 'constant' only"):
        TrainConfig(max_steps=T, schedule="cosine", cooldown_steps=C)
    assert lr_multiplier(0, 10, "constant", 0, cooldown_steps=C) < 1.0     # longer than the run: decays throughout
    assert lr_multiplier(10**6, T, "inv_sqrt", W, alpha_f=0.1) == 0.1
    with pytest.raises(ValueError, match="cosine"):
        lr_multiplier(0, T, "step")
    assert interpolate(0.3, 0.15, 0.5) == pytest.approx(0.225)
    assert interpolate(0.3, 0.15, 1.0, "cosine") == pytest.approx(0.15)
    assert interpolate(0.3, 0.15, 0.7, "constant") == 0.3


def test_warmup_fraction():
    assert TrainConfig(max_steps=200, warmup_fraction=0.05).resolve_warmup_steps() == 10


# ---- config ---------------------------------------------------------------------------------------

def test_config_validation_and_round_trip(tmp_path):
    with pytest.raises(ValueError, match="adamw"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="fsdp"):
        TrainConfig(parallelism="zero3")
    with pytest.raises(ValueError, match="unknown TrainConfig key"):
        TrainConfig.from_dict({"max_step": 3})
    with pytest.raises(ValueError, match="not both"):
        TrainConfig(warmup_steps=3, warmup_fraction=0.1)
    cfg = TrainConfig(global_batch_size=64, micro_batch_size=8, betas=[0.9, 0.98])
    assert cfg.resolve_grad_accum(world_size=2) == 4 and cfg.betas == (0.9, 0.98)
    with pytest.raises(ValueError, match="not a multiple"):
        cfg.resolve_grad_accum(world_size=3)
    cfg.to_json(tmp_path / "c.json")
    assert TrainConfig.from_json(tmp_path / "c.json") == cfg


# ---- throughput -----------------------------------------------------------------------------------

def test_mfu_and_peaks():
    assert device_key("NVIDIA H100 80GB HBM3") == "H100-SXM"
    assert device_key("NVIDIA H100 PCIe") == "H100-PCIe"
    assert device_key("NVIDIA H200") == "H200"
    assert device_key("NVIDIA A100-SXM4-80GB") == "A100"
    assert device_key("NVIDIA GeForce RTX 4090") is None
    assert peak_flops("cpu", "bf16") is None
    assert mfu(6e9, 50_000, 989.4e12, world_size=2) == pytest.approx(6e9 * 5e4 / (2 * 989.4e12))
    assert mfu(None, 1e5, 1e15) is None and mfu(1e9, 1e5, None) is None

    class M(torch.nn.Module):
        def flops_per_token(self):
            return 123.0
    assert model_flops_per_token(M()) == 123.0
    assert model_flops_per_token(torch.nn.Linear(2, 2)) is None
    assert model_flops_per_token(torch.nn.Linear(2, 2), override=7) == 7.0


# ---- data, launch commands ------------------------------------------------------------------------

def test_resumable_batches_ranks_and_state():
    rows = torch.arange(40)
    whole = ResumableBatches(rows, 8, seed=1)
    ranks = [ResumableBatches(rows, 4, rank=r, world_size=2, seed=1) for r in range(2)]
    for _ in range(12):  # crosses epoch boundaries
        assert torch.equal(next(whole), torch.cat([next(r) for r in ranks]))
    state = whole.state_dict()
    expected = [next(whole) for _ in range(5)]
    other = ResumableBatches(rows, 8, seed=1)
    other.load_state_dict(state)
    assert all(torch.equal(a, next(other)) for a in expected)
    with pytest.raises(ValueError, match="seed"):
        ResumableBatches(rows, 8, seed=2).load_state_dict(state)
    assert rank_slice(8, 1, 2) == slice(4, 8)


def test_torchrun_commands():
    single = build_torchrun_command("train.py", ["--x", 1], nproc_per_node=4)
    assert "--standalone" in single and single[-3:] == ["train.py", "--x", "1"]
    multi = build_torchrun_command("shared.train.worker", module=True, nproc_per_node=8, nnodes=2,
                                   rdzv_endpoint="node0:29500", rdzv_id="job7")
    joined = " ".join(multi)
    assert "--rdzv-backend c10d --rdzv-endpoint node0:29500 --rdzv-id job7" in joined
    assert "--nnodes 2" in joined and "-m shared.train.worker" in joined
    with pytest.raises(ValueError, match="rdzv_endpoint"):
        build_torchrun_command("t.py", nnodes=2)
