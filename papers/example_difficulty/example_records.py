"""Per-example, per-evaluation records during training: logits, loss and correctness of every
example of a fixed set, plus gradient-based scores at chosen steps.

    rec = ExampleRecorder(train_set.x, train_set.y, every=steps_per_epoch, grand_at=(2 * steps_per_epoch,))
    Trainer(model, loss_fn, batches, config, callbacks=[rec]).fit()
    rec.logits      # [T, N, C] float32, T evaluations (step 0 included when record_at_start)
    rec.loss        # [T, N]; rec.correct [T, N] bool; rec.steps [T]
    rec.vog()       # [N] variance of input gradients over the recorded evaluations
    rec.grand       # {step: [N]} GraNd scores at the steps asked for

Evaluations run in eval mode under no_grad (batch norm uses running statistics), on the examples
in their fixed order, so records of different runs line up example by example.

store: a file the logits are appended to instead of being held in memory (float32, [T, N, C] in
evaluation order). A full-scale run records 50,000 CIFAR examples x 100 classes at 160 evaluations,
3.2 GB: in memory that is 3.2 GB per job, and in every checkpoint another 3.2 GB written. With a store
a checkpoint records only how many evaluations the file held at that step, and a resumed run cuts the
file back to them (evaluations recorded after the checkpoint are recorded again).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .difficulty import OnlineVoG, grand_scores, input_gradients


class ExampleRecorder:
    """Trainer callback recording every example of (x [N, ...], y [N]) every `every` steps.

    record_at_start: also record before the first step (step 0).
    vog: accumulate input gradients of the true-class logit at each evaluation (for VoG).
    grand_at: steps at which to compute GraNd (per-example parameter-gradient norms), over chunks of
    grand_batch_size examples (each holds a full parameter gradient per example in memory).
    store: append the logits to this file instead of holding them in memory (module docstring); a
    fit that starts at step 0 empties it, one resumed from a checkpoint cuts it back to that checkpoint.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, every: int, record_at_start: bool = False,
                 vog: bool = True, grand_at: Sequence[int] = (), batch_size: int = 1024,
                 grand_batch_size: int = 256, store: str | Path | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} examples, y has {len(y)}")
        self.x, self.y, self.every = x, y, every
        self.record_at_start, self.batch_size = record_at_start, batch_size
        self.grand_at = set(int(s) for s in grand_at)
        self.grand_batch_size = grand_batch_size
        self._vog = OnlineVoG() if vog else None
        self._logits: list[torch.Tensor] = []
        self.steps: list[int] = []
        self.grand: dict[int, torch.Tensor] = {}
        self.store = None if store is None else Path(store)
        if self.store is not None:
            self.store.parent.mkdir(parents=True, exist_ok=True)

    # ---- trainer hooks ------------------------------------------------------------------------
    def on_fit_start(self, trainer) -> None:
        if self.store is not None and trainer.step == 0:
            self.store.write_bytes(b"")             # a fresh run: nothing of an earlier one is kept
        if self.record_at_start and trainer.step == 0:
            self.record(trainer.model, 0)

    def on_step_end(self, trainer, record) -> None:
        if trainer.step % self.every == 0:
            self.record(trainer.model, trainer.step)
        if trainer.step in self.grand_at:
            self.grand[trainer.step] = self._on_device(
                trainer.model, lambda m, x, y: grand_scores(m, x, y, batch_size=self.grand_batch_size))

    def _on_device(self, model: nn.Module, fn):
        device = next(model.parameters()).device
        return fn(model, self.x.to(device), self.y.to(device)).cpu()

    # ---- recording ----------------------------------------------------------------------------
    @torch.no_grad()
    def _predict(self, model: nn.Module) -> torch.Tensor:
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        try:
            out = [model(self.x[s:s + self.batch_size].to(device)).logits.float().cpu()
                   for s in range(0, len(self.x), self.batch_size)]
        finally:
            model.train(was_training)
        return torch.cat(out)

    def record(self, model: nn.Module, step: int) -> None:
        """Record the model's logits on every example now (and its input gradients for VoG)."""
        logits = self._predict(model)                               # [N, C] float32
        if self.store is None:
            self._logits.append(logits)
        else:
            with open(self.store, "ab") as f:
                f.write(logits.numpy().tobytes())
        self.steps.append(int(step))
        if self._vog is not None:
            self._vog.add(self._on_device(model, input_gradients))

    # ---- checkpointing (the trainer saves and restores this with its checkpoints) ------------------
    def state_dict(self) -> dict:
        """Everything recorded so far: logits [T, N, C], steps, the VoG accumulators, GraNd by step."""
        vog = None if self._vog is None else {"n": self._vog.n, "mean": self._vog.mean, "m2": self._vog.m2}
        # with a store, its size says how many evaluations of the file this checkpoint covers
        logits = None if self.store is not None or not self._logits else torch.stack(self._logits)
        return {"logits": logits, "steps": list(self.steps), "vog": vog,
                "grand": {int(k): v for k, v in self.grand.items()},
                "store_bytes": None if self.store is None else self.store.stat().st_size}

    def load_state_dict(self, state: dict) -> None:
        self.steps = [int(s) for s in state["steps"]]
        if self.store is None:
            if state["logits"] is None and state["steps"]:
                raise ValueError("the checkpoint's logits are in a store file; resume it with that store")
            self._logits = list(state["logits"].unbind(0)) if state["logits"] is not None else []
        else:
            size = state.get("store_bytes")
            if size is None:
                raise ValueError("the checkpoint holds the logits themselves; resume it with store=None")
            if self.store.stat().st_size < size:
                raise ValueError(f"{self.store} holds {self.store.stat().st_size} bytes, fewer than the "
                                 f"{len(self.steps)} evaluations the checkpoint recorded ({size} bytes)")
            with open(self.store, "r+b") as f:
                f.truncate(size)                # evaluations after the checkpoint are recorded again
        if self._vog is not None and state["vog"] is not None:
            self._vog.n, self._vog.mean, self._vog.m2 = state["vog"]["n"], state["vog"]["mean"], state["vog"]["m2"]
        self.grand = {int(k): v for k, v in state["grand"].items()}

    # ---- results ------------------------------------------------------------------------------
    @property
    def logits(self) -> torch.Tensor:
        """[T, N, C] float32 (read from the store, when there is one)."""
        if not self.steps:
            raise ValueError("nothing recorded yet")
        if self.store is None:
            return torch.stack(self._logits)
        flat = torch.from_numpy(np.fromfile(self.store, dtype=np.float32))
        return flat.reshape(len(self.steps), len(self.x), -1)

    @property
    def loss(self) -> torch.Tensor:
        z = self.logits
        return F.cross_entropy(z.flatten(0, 1), self.y.repeat(len(z)), reduction="none").reshape(z.shape[:2])

    @property
    def correct(self) -> torch.Tensor:
        return self.logits.argmax(-1) == self.y

    def vog(self) -> torch.Tensor:
        if self._vog is None:
            raise ValueError("this recorder was built with vog=False")
        return self._vog.get()

    def save(self, path: str | Path) -> Path:
        """Write logits, steps, labels, VoG and GraNd to a .npz file."""
        arrays = {"logits": self.logits.numpy(), "steps": np.array(self.steps), "labels": self.y.numpy()}
        if self._vog is not None and self._vog.n >= 2:
            arrays["vog"] = self.vog().numpy()
        for step, g in self.grand.items():
            arrays[f"grand_step{step}"] = g.numpy()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        return path
