"""Tiny models, data and a training entry point for the trainer tests (not collected by pytest)."""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributed.tensor import DTensor

from shared.train import ResumableBatches, Trainer, TrainConfig, init_distributed
from shared.train.distributed import barrier

D_IN, N_CLASSES, N_ROWS = 8, 4, 256


class Block(nn.Module):
    """Pre-norm residual MLP block: x + W2 dropout(gelu(W1 LN(x))); x: (B, d)."""

    def __init__(self, d: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.drop(F.gelu(self.fc1(self.norm(x)))))


class ToyNet(nn.Module):
    """(B, D_IN) features -> (B, N_CLASSES) logits; `blocks` is what FSDP shards."""

    def __init__(self, d: int = 32, n_blocks: int = 2, dropout: float = 0.0):
        super().__init__()
        self.inp = nn.Linear(D_IN, d)
        self.blocks = nn.ModuleList(Block(d, dropout) for _ in range(n_blocks))
        self.head = nn.Linear(d, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class TinyLM(nn.Module):
    """(B, T) token ids -> (B, T, V) logits, with tied input/output embeddings."""

    def __init__(self, vocab: int = 16, d: int = 16):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.mix = nn.Linear(d, d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        self.flops_per_token = 6 * sum(p.numel() for p in self.parameters())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(torch.tanh(self.mix(self.wte(ids))))


def make_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N_ROWS, D_IN) and labels (N_ROWS,) of a fixed random linear teacher."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N_ROWS, D_IN, generator=g)
    teacher = torch.randn(D_IN, N_CLASSES, generator=g)
    return x, (x @ teacher).argmax(-1)


def classify_loss(model: nn.Module, batch) -> tuple[torch.Tensor, dict]:
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits, y), {"acc": (logits.argmax(-1) == y).float().mean()}


def lm_loss(model: nn.Module, ids: torch.Tensor) -> tuple[torch.Tensor, dict]:
    logits = model(ids[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1)), {}


class _InfGradient(torch.autograd.Function):
    """Returns `loss` unchanged; its backward gives `target` an inf gradient (an fp16 overflow)."""

    @staticmethod
    def forward(ctx, loss: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return loss.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, torch.full((), float("inf"), dtype=grad.dtype, device=grad.device)


class InfGradientAt:
    """classify_loss, but at optimizer step `step` the first element of ToyNet's head bias gets an inf
    gradient (the logged loss is unchanged). Set `.trainer` once the Trainer exists."""

    def __init__(self, step: int):
        self.step, self.trainer = step, None

    def __call__(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict]:
        loss, metrics = classify_loss(model, batch)
        if self.trainer.step + 1 == self.step:
            loss = _InfGradient.apply(loss, getattr(model, "module", model).head.bias[0])
        return loss, metrics


class Preempted(Exception):
    """What PreemptAtCheckpoint raises: a job stopped as a preemption would stop it."""


class PreemptAtCheckpoint:
    """Trainer callback: raises Preempted right after the checkpoint of step `step` is written."""

    def __init__(self, step: int):
        self.step = step

    def on_checkpoint(self, trainer, path) -> None:
        if trainer.step == self.step:
            raise Preempted


def entry(config: dict, run_dir: str) -> None:
    """run_training entry point: ToyNet on make_data(), this rank's share of each global batch.

    config: {"train": TrainConfig fields, "micro_batch_size": int, "dropout": float,
             "until_step": int | None, "crash_once_at": int | None (the first attempt checkpoints at
             that step and exits 1 on every rank, as a preempted or failed job would), "say": str | None
             (printed with the rank, for the log tests), "inf_grad": [step, rank] | None (InfGradientAt
             on that rank only), "probe_sharding": bool (rank 0 writes sharding_probe.json: whether a
             block's parameters are still unsharded after a training forward)}
    """
    info = init_distributed()
    if config.get("say"):
        print(f"{config['say']} from rank {info.rank}", flush=True)
    torch.manual_seed(1234)
    model = ToyNet(dropout=config.get("dropout", 0.0))
    data = ResumableBatches(make_data(), config["micro_batch_size"], rank=info.rank,
                            world_size=info.world_size, seed=7)
    cfg = TrainConfig(**config["train"], run_dir=run_dir)
    marker = Path(run_dir) / "crashed_once"
    if config.get("crash_once_at") and not marker.exists():
        Trainer(model, classify_loss, data, cfg).fit(until_step=config["crash_once_at"])
        if info.rank == 0:
            marker.touch()
        barrier()               # the marker exists before any rank exits
        raise SystemExit(1)
    inf_step, inf_rank = config.get("inf_grad") or (None, None)
    loss_fn = InfGradientAt(inf_step) if inf_rank == info.rank else classify_loss
    trainer = Trainer(model, loss_fn, data, cfg)
    if isinstance(loss_fn, InfGradientAt):
        loss_fn.trainer = trainer
    trainer.fit(until_step=config.get("until_step"))
    if config.get("probe_sharding"):
        x, y = make_data()
        loss = F.cross_entropy(trainer.wrapped(x[:4]), y[:4])
        unsharded = not isinstance(model.blocks[0].fc1.weight, DTensor)   # between forward and backward
        loss.backward()
        trainer.optimizer.zero_grad(set_to_none=True)
        if info.rank == 0:
            (Path(run_dir) / "sharding_probe.json").write_text(json.dumps({"unsharded_after_forward": unsharded}))


META_GPT = dict(vocab_size=64, n_layer=2, n_head=2, d_model=32, max_seq_len=32, position="rope", tie_embeddings=True)


def meta_gpt_entry(config: dict, run_dir: str) -> None:
    """run_training entry point: a small GPT built on the meta device, materialised by the trainer
    (after FSDP sharding when parallelism is fsdp), trained on random tokens.

    config: {"train": TrainConfig fields, "micro_batch_size": int}
    """
    from shared.models.gpt import GPT, GPTConfig

    info = init_distributed()
    torch.manual_seed(1234)
    with torch.device("meta"):
        model = GPT(GPTConfig(**META_GPT))
    ids = torch.randint(0, META_GPT["vocab_size"], (256, 17), generator=torch.Generator().manual_seed(5))
    data = ResumableBatches(ids, config["micro_batch_size"], rank=info.rank, world_size=info.world_size, seed=7)

    def loss(model, batch):
        return model(batch[:, :-1], targets=batch[:, 1:]).loss, {}

    Trainer(model, loss, data, TrainConfig(**config["train"], run_dir=run_dir)).fit()
    if model.lm_head.weight is not model.wte.weight:
        raise RuntimeError("materialising the meta model untied the embedding and the output head")
