"""The preflight (shared.preflight): parameter counts of published models, memory against what the
trainer really allocates and saves on a CPU at small shapes, the errors it must name, and its CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from shared.models.diffusion import build_unet
from shared.models.flavours import model_config
from shared.models.gpt import GPT, GPTConfig
from shared.preflight import (DataRequirement, OptimizerPlan, PreflightError, World, check, gpt_cost, lora_params,
                              memory_per_gpu, preflight, run_plan)
from shared.preflight.cli import main
from shared.preflight.estimate import bert_cost, distinct_params, gpt_flops_per_token, on_meta
from shared.preflight.report import batch_errors, requirement_error
from shared.train.optim import LionW

PAPERS = sorted(p.parent.name for p in Path(__file__).resolve().parents[1].glob("papers/*/scales.py"))


# ------------------------------------------------------------------------------------ known sizes
@pytest.mark.parametrize("flavour, published, tolerance", [
    ("llama2-7b", 6.74e9, 0.01),      # Touvron et al. 2023: 6,738,415,616
    ("mpt-7b", 6.65e9, 0.01),         # MosaicML MPT-7B model card: 6.7B (6,649M counted by transformers)
    ("biomedlm-2.7b", 2.7e9, 0.05),   # named 2.7B; the GPT-2 shape with vocab 28,896 counts 2.59B
])
def test_decoder_parameter_counts(flavour, published, tolerance):
    cost = gpt_cost(model_config(flavour), 128)
    assert abs(cost.params - published) / published < tolerance
    assert cost.trainable_params == cost.params


@pytest.mark.parametrize("flavour, published, tolerance", [
    ("bert-base", 110e6, 0.02),        # Devlin et al. 2019
    ("mosaicbert-base", 137e6, 0.02),  # Portes et al. 2023, Table S1
])
def test_encoder_parameter_counts(flavour, published, tolerance):
    cost = bert_cost(model_config(flavour), 128)
    assert abs(cost.params - published) / published < tolerance


@pytest.mark.slow
def test_sd2_unet_parameter_count():
    unet = on_meta(lambda: build_unet(model_config("sd2-unet")))
    assert abs(distinct_params(unet) - 865e6) / 865e6 < 0.01     # SD2 UNet: 865,910,724


def test_lora_parameters_match_peft_count():
    # peft's print_trainable_parameters for Llama-2-7B, r=16 on q/k/v/o: 16,777,216
    assert lora_params(model_config("llama2-7b"), 16, "attention") == 16_777_216
    cfg = model_config("llama2-7b")
    per_layer_mlp = 16 * 3 * (cfg.d_model + cfg.d_ff)
    assert lora_params(cfg, 16, "all") == 16_777_216 + cfg.n_layer * per_layer_mlp


def test_flops_follow_the_models_own_accounting():
    cfg = GPTConfig(vocab_size=1000, n_layer=3, n_head=4, d_model=64, max_seq_len=256)
    assert gpt_flops_per_token(cfg, 200) == GPT(cfg).flops_per_token(200)
    cost = gpt_cost(cfg, 200)
    assert cost.flops_per_sample == pytest.approx(200 * GPT(cfg).flops_per_token(200))
    lora = gpt_cost(cfg, 200, lora=(4, "all"))
    assert lora.flops_per_sample < cost.flops_per_sample and lora.trainable_params == lora_params(cfg, 4, "all")


# ------------------------------------------------------------------------------- memory on a CPU
def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t) and t.dim() > 0)


@pytest.mark.parametrize("optimizer", ["adamw", "lionw"])
def test_weights_gradients_and_optimizer_states_exactly(optimizer):
    cfg = GPTConfig(vocab_size=300, n_layer=2, n_head=4, d_model=64, max_seq_len=32, tie_embeddings=True)
    model = GPT(cfg)
    ids = torch.randint(0, cfg.vocab_size, (2, 32))
    model(ids, targets=ids).loss.backward()
    opt = (torch.optim.AdamW(model.parameters(), lr=1e-3) if optimizer == "adamw"
           else LionW(model.parameters(), lr=1e-4))
    opt.step()
    params = list({id(p): p for p in model.parameters()}.values())
    states = [t for s in opt.state.values() for t in s.values()]
    run = run_plan("tiny", gpt_cost(cfg, 32), {"max_steps": 1, "micro_batch_size": 2, "optimizer": optimizer,
                                                "lr": 1e-3, "precision": "fp32", "parallelism": "none"})
    memory = memory_per_gpu(run, world_size=1, activation_checkpointing=False)
    assert memory.weights == _tensor_bytes(params)
    assert memory.gradients == _tensor_bytes(p.grad for p in params)
    assert memory.optimizer_states == _tensor_bytes(states)
    assert memory.buffers == 0.0


def _saved_activation_bytes(model: torch.nn.Module, ids: torch.Tensor) -> int:
    """Bytes of the distinct storages the training forward saves for the backward (parameters left out)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params and t.is_floating_point():
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(ids, targets=ids).loss.backward()
    return sum(saved.values())


@pytest.mark.parametrize("shape", [dict(mlp="gelu", norm="layernorm", position="learned"),
                                   dict(mlp="swiglu", norm="rmsnorm", position="rope"),
                                   dict(mlp="swiglu", norm="rmsnorm", position="rope", n_kv_head=2)])
def test_activation_estimate_matches_saved_tensors(shape):
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=512, n_layer=4, n_head=4, d_model=128, max_seq_len=128, **shape)
    batch, seq = 4, 128
    measured = _saved_activation_bytes(GPT(cfg), torch.randint(0, cfg.vocab_size, (batch, seq)))
    estimated = batch * gpt_cost(cfg, seq).activation_bytes(4, checkpointing=False)
    assert abs(estimated - measured) / measured < 0.05, (estimated, measured)


def test_checkpointing_and_sharding_cut_memory():
    cost = gpt_cost(model_config("mpt-7b"), 2048)
    train = {"max_steps": 10, "global_batch_size": 256, "micro_batch_size": 8, "optimizer": "adamw", "lr": 1e-4,
             "parallelism": "fsdp"}
    run = run_plan("mpt", cost, train)
    full = memory_per_gpu(run, 32, activation_checkpointing=False)
    ckpt = memory_per_gpu(run, 32, activation_checkpointing=True)
    assert ckpt.activations < full.activations / 5
    assert full.activations / 2**30 > 60        # the issue's ~73 GB of activations at 8 x 2048
    one = memory_per_gpu(run, 1, activation_checkpointing=False)
    assert full.weights == pytest.approx(one.weights / 32)
    assert full.optimizer_states == pytest.approx(one.optimizer_states / 32)


def test_zero2_holds_every_parameter_unsharded_at_the_peak():
    """fsdp_grad_op (ZeRO-2) shards weights, gradients and optimizer states as fsdp does; at the end of the
    forward it holds all parameters gathered in the compute dtype (2 bytes under bf16 or amp_fp16, where
    fsdp holds two blocks), plus one block's fp32 gradient."""
    cost = gpt_cost(model_config("mpt-7b"), 2048)
    train = {"max_steps": 10, "global_batch_size": 256, "micro_batch_size": 8, "optimizer": "adamw", "lr": 1e-4}
    memory = {(p, precision): memory_per_gpu(run_plan("mpt", cost, {**train, "parallelism": p,
                                                                     "precision": precision}), 32, False)
              for p in ("fsdp", "fsdp_grad_op") for precision in ("bf16", "amp_fp16", "fp32")}
    zero3, zero2 = memory["fsdp", "bf16"], memory["fsdp_grad_op", "bf16"]
    for part in ("weights", "gradients", "optimizer_states", "activations"):
        assert getattr(zero2, part) == getattr(zero3, part)
    assert zero2.buffers == pytest.approx(2.0 * cost.params + 4.0 * cost.block_params)
    assert zero3.buffers == pytest.approx(8.0 * cost.block_params)
    assert memory["fsdp_grad_op", "amp_fp16"] == zero2                     # fp16: the bytes of bf16
    assert memory["fsdp_grad_op", "fp32"].buffers == pytest.approx(4.0 * cost.params + 4.0 * cost.block_params)
    assert memory["fsdp_grad_op", "fp32"].activations == 2 * zero2.activations
    # one process: nothing is sharded, whichever FSDP form the config names
    one = {p: memory_per_gpu(run_plan("mpt", cost, {**train, "parallelism": p}), 1, False) for p in ("fsdp", "fsdp_grad_op")}
    assert one["fsdp"] == one["fsdp_grad_op"]


def test_weight_decay_per_step():
    assert OptimizerPlan("adamw", 1e-4, 0.1, "lr").weight_decay_per_step == pytest.approx(1e-5)
    assert OptimizerPlan("adamw", 1e-4, 1e-5, "schedule").weight_decay_per_step == pytest.approx(1e-5)


# ------------------------------------------------------------------------------------------ errors
def test_indivisible_batch_is_an_error():
    run = run_plan("r", gpt_cost(GPTConfig(), 64), {"max_steps": 1, "global_batch_size": 192, "micro_batch_size": 4})
    assert batch_errors(run, World(8, 4)) and "not a multiple" in batch_errors(run, World(8, 4))[0]
    assert batch_errors(run, World(8, 6)) == []


def test_data_requirements(tmp_path):
    (tmp_path / "ok.jsonl").write_text('{"a": 1}\n')
    (tmp_path / "bad.jsonl").write_text("not json\n")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    assert requirement_error(DataRequirement("ok.jsonl", "jsonl"), tmp_path) is None
    assert "malformed" in requirement_error(DataRequirement("{data_dir}/bad.jsonl", "jsonl"), tmp_path)
    assert "missing" in requirement_error(DataRequirement("nope", "dir"), tmp_path)
    assert "no weight files" in requirement_error(DataRequirement("ckpt", "hf_checkpoint"), tmp_path)
    assert requirement_error(DataRequirement("nope.jsonl|ok.jsonl", "jsonl"), tmp_path) is None


# --------------------------------------------------------------------------------------------- CLI
def _biomedlm_data(root: Path) -> Path:
    for sub in ("pubmed/train/abstracts", "pubmed/train/central", "pubmed/test", "general/train", "general/test"):
        (root / sub).mkdir(parents=True)
        (root / sub / "part-0.jsonl").write_text('{"text": "x"}\n')
    return root


def test_cli_exits_1_on_a_missing_data_entry_and_an_indivisible_batch(tmp_path, capsys):
    rc = main(["biomedlm", "--notebook", "02_pretrain", "--nproc-per-node", "3", "--data-dir", str(tmp_path),
               "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert any("not a multiple" in e for e in report["errors"])
    assert any("missing dir" in e and "pubmed/train" in e for e in report["errors"])


def test_cli_exits_0_when_the_launch_is_sound(tmp_path, capsys):
    rc = main(["biomedlm", "--notebook", "02_pretrain", "--nproc-per-node", "8", "--nnodes", "4",
               "--gpu", "h100-80gb", "--data-dir", str(_biomedlm_data(tmp_path))])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "02_pretrain/pretrain-biomedical" in out and "errors: none" in out


def test_check_raises_listing_the_errors():
    with pytest.raises(PreflightError, match="not a multiple"):
        check("biomedlm", "02_pretrain", world=World(3, 1))


@pytest.mark.slow
@pytest.mark.parametrize("paper", PAPERS)
def test_every_paper_plans_its_smoke_preset_without_errors(paper):
    report = preflight(paper, scale="smoke", world=World(1, 1))
    assert report["errors"] == [], report["errors"]


@pytest.mark.slow
@pytest.mark.parametrize("paper", PAPERS)
def test_cli_runs_every_paper_at_full_scale(paper, capsys):
    rc = main([paper, "--scale", "full", "--nproc-per-node", "8", "--nnodes", "4", "--gpu", "h100-80gb", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == (1 if report["errors"] else 0)
    for run in report["runs"]:
        assert run["params"] > 0 and run["flops"] > 0 and run["gpu_hours"] > 0
        assert set(run["peak_memory_gib_per_gpu"]) >= {"weights", "gradients", "optimizer_states", "activations"}
        assert {"name", "lr", "weight_decay_per_step"} <= set(run["optimizer"])
