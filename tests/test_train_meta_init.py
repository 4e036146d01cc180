"""Models built on the meta device: the trainer materialises them (after FSDP2 sharding on several
ranks, so no rank ever holds the whole model unsharded) and initialises them with reset_parameters."""
import math
from pathlib import Path

import pytest
import torch

from shared.models.gpt import GPT, GPTConfig
from shared.train import TrainConfig, Trainer, run_training
from shared.train.distributed import has_meta_parameters, materialize

TOY = Path(__file__).with_name("_train_toy.py")
CFG = dict(vocab_size=64, n_layer=2, n_head=2, d_model=32, max_seq_len=32, position="rope")


def test_materialize_initialises_weights_tables_and_keeps_ties():
    with torch.device("meta"):
        model = GPT(GPTConfig(**CFG, tie_embeddings=True))
    assert has_meta_parameters(model)
    materialize(model, torch.device("cpu"))
    reference = GPT(GPTConfig(**CFG, tie_embeddings=True))
    assert not has_meta_parameters(model) and model.lm_head.weight is model.wte.weight
    assert torch.equal(model.rope_cos, reference.rope_cos) and torch.equal(model.rope_sin, reference.rope_sin)
    w = model.blocks[0].attn.qkv.weight
    assert w.std().item() == pytest.approx(model.cfg.init_std, rel=0.2)


def test_trainer_takes_a_meta_model_in_one_process():
    torch.manual_seed(0)
    with torch.device("meta"):
        model = GPT(GPTConfig(**CFG))
    ids = torch.randint(0, 64, (32, 17), generator=torch.Generator().manual_seed(0))
    history = Trainer(model, lambda m, b: (m(b[:, :-1], targets=b[:, 1:]).loss, {}), iter([ids[:8]] * 4),
                      TrainConfig(max_steps=3, lr=1e-3, progress_bar=False, checkpoint_at_end=False)).fit()
    assert not has_meta_parameters(model)
    assert abs(history.losses[0] - math.log(64)) < 0.5       # a real initialisation, not garbage memory


@pytest.mark.slow   # one torchrun launch
def test_fsdp_materialises_shards_after_sharding(tmp_path):
    train = dict(max_steps=4, lr=1e-3, parallelism="fsdp", progress_bar=False, keep_last_n=1, warmup_steps=0)
    history = run_training(f"{TOY}:meta_gpt_entry", {"train": train, "micro_batch_size": 4}, run_dir=tmp_path,
                           nproc_per_node=2, timeout=300)
    losses = history.losses
    assert len(losses) == 4 and abs(losses[0] - math.log(64)) < 0.5 and all(math.isfinite(x) for x in losses)
    assert (tmp_path / "checkpoints").exists()
