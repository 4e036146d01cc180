"""Exponential moving average (EMA) of a model's trainable weights, as a `Trainer` callback.

    ema = EMA(model, half_life_steps=50, update_every=1, start_step=0)
    Trainer(model, loss_fn, data, cfg, callbacks=[ema]).fit()
    with ema.applied(model):          # the averaged weights swapped in for evaluation / sampling
        images = generate(model, ...)

After each optimizer step s >= start_step with s % update_every == 0:
    w_ema <- d * w_ema + (1 - d) * w,   d = 2 ** (-update_every / half_life_steps)
so the half life is measured in steps whatever the update interval (the convention of MosaicML
Composer's EMA). "Scheduled EMA" starts late (`start_step`, the shadow copy is taken then) and/or
updates every k steps, which is how the diffusion recipe saves its cost; `update_every=0` is off.

The shadow weights travel with the trainer's checkpoints (`ema.safetensors` in the step folder,
or a torch.distributed.checkpoint folder `ema_dcp` for FSDP-sharded parameters) and are restored
when a run resumes.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from .checkpoint import latest_checkpoint

EMA_FILE = "ema.safetensors"
EMA_DCP_DIR = "ema_dcp"


def _is_dtensor(t: torch.Tensor) -> bool:
    return type(t).__name__ == "DTensor"


class EMA:
    """EMA of ``model``'s parameters that require grad (frozen parts never change)."""

    def __init__(self, model: nn.Module, half_life_steps: float = 100.0, update_every: int = 1, start_step: int = 0):
        if half_life_steps <= 0:
            raise ValueError(f"half_life_steps must be > 0, got {half_life_steps}")
        if update_every < 0 or start_step < 0:
            raise ValueError("update_every and start_step must be >= 0 (update_every=0 turns EMA off)")
        self.half_life_steps, self.update_every, self.start_step = half_life_steps, update_every, start_step
        self.decay = 2.0 ** (-max(update_every, 1) / half_life_steps)
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.shadow: dict[str, torch.Tensor] | None = None
        self.num_updates = 0
        if start_step == 0:
            self.reset(model)

    # ---- core --------------------------------------------------------------------------------
    def _params(self, model: nn.Module) -> list[torch.Tensor]:
        params = dict(model.named_parameters())
        return [params[n] for n in self.names]

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Start the average at the model's current weights."""
        self.shadow = {n: p.detach().clone() for n, p in zip(self.names, self._params(model))}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards the model's current weights."""
        if self.shadow is None:
            self.reset(model)
        shadow = [self.shadow[n] for n in self.names]
        params = [p.detach() for p in self._params(model)]
        if any(_is_dtensor(p) for p in params):
            for s, p in zip(shadow, params):
                s.lerp_(p, 1.0 - self.decay)
        else:
            torch._foreach_lerp_(shadow, params, 1.0 - self.decay)
        self.num_updates += 1

    def should_update(self, step: int) -> bool:
        return self.update_every > 0 and step >= self.start_step and step % self.update_every == 0

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Swap the EMA weights into ``model`` for the duration of the block (then swap back)."""
        if self.shadow is None:
            yield model
            return
        params = self._params(model)
        with torch.no_grad():
            backup = [p.detach().clone() for p in params]
            for p, n in zip(params, self.names):
                p.copy_(self.shadow[n])
        try:
            yield model
        finally:
            with torch.no_grad():
                for p, b in zip(params, backup):
                    p.copy_(b)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Write the EMA weights into ``model`` for good."""
        for p, n in zip(self._params(model), self.names):
            p.copy_(self.shadow[n])

    # ---- trainer callback --------------------------------------------------------------------
    def on_fit_start(self, trainer) -> None:
        if self.shadow is not None:
            params = self._params(trainer.model)
            if any(_is_dtensor(p) != _is_dtensor(self.shadow[n]) for n, p in zip(self.names, params)):
                # the trainer sharded the parameters (FSDP2) after this EMA was made
                if self.num_updates:
                    raise RuntimeError("the model's parameters were sharded after EMA updates began")
                self.reset(trainer.model)
        if trainer.step > 0 and trainer.config.run_dir is not None:
            # resumed: the shadow comes from the checkpoint the trainer loaded
            path = trainer.config.resume if trainer.config.resume not in (None, "latest") else \
                latest_checkpoint(trainer.config.run_dir)
            if path is not None:
                self.load(path, trainer.model)

    def on_step_end(self, trainer, record) -> None:
        step = trainer.step
        if self.update_every > 0 and step == self.start_step and self.start_step > 0:
            self.reset(trainer.model)
        elif self.should_update(step):
            self.update(trainer.model)

    def on_save_checkpoint(self, trainer, folder) -> None:
        # written into the checkpoint's temporary folder before its manifest, so the EMA weights
        # are verified and published atomically with the rest of the checkpoint
        self.save(folder)

    # ---- persistence -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"shadow": self.shadow, "num_updates": self.num_updates}

    def save(self, folder: str | Path) -> None:
        if self.shadow is None:
            return
        folder = Path(folder)
        if any(_is_dtensor(t) for t in self.shadow.values()):
            import torch.distributed.checkpoint as dcp
            dcp.save(dict(self.shadow), checkpoint_id=str(folder / EMA_DCP_DIR))
            return
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
            return
        from safetensors.torch import save_file
        save_file({n: t.contiguous().cpu() for n, t in self.shadow.items()}, str(folder / EMA_FILE),
                  metadata={"num_updates": str(self.num_updates)})

    def load(self, folder: str | Path, model: nn.Module) -> None:
        folder = Path(folder)
        if (folder / EMA_DCP_DIR).exists():
            if self.shadow is None:
                self.reset(model)
            import torch.distributed as dist
            import torch.distributed.checkpoint as dcp
            single = not (dist.is_available() and dist.is_initialized())
            dcp.load(self.shadow, checkpoint_id=str(folder / EMA_DCP_DIR), no_dist=single)
            return
        if not (folder / EMA_FILE).exists():
            return   # the checkpoint predates the EMA start
        from safetensors import safe_open
        with safe_open(str(folder / EMA_FILE), framework="pt") as f:
            self.num_updates = int((f.metadata() or {}).get("num_updates", 0))
            device = self._params(model)[0].device
            self.shadow = {n: f.get_tensor(n).to(device) for n in self.names}
