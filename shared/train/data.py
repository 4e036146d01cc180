"""`ResumableBatches`: an endless, resumable, rank-aware iterator over in-memory tensors.

For data sets that fit in memory (sklearn digits, generated tasks, small finetuning sets). Larger
or mixed corpora have their own samplers in shared.data; any sampler with `state_dict()` and
`load_state_dict()` resumes exactly in the trainer.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def _take(data: Any, idx: torch.Tensor) -> Any:
    if isinstance(data, torch.Tensor):
        return data[idx]
    if isinstance(data, Mapping):
        return {k: v[idx] for k, v in data.items()}
    return tuple(v[idx] for v in data)


def _length(data: Any) -> int:
    if isinstance(data, Mapping):
        tensors = list(data.values())
    else:
        tensors = [data] if isinstance(data, torch.Tensor) else list(data)
    lengths = {len(t) for t in tensors}
    if len(lengths) != 1:
        raise ValueError(f"all tensors need the same first dimension, got {sorted(lengths)}")
    return lengths.pop()


class ResumableBatches:
    """Endless micro-batches of `data` (a tensor, tuple of tensors, or dict of tensors, rows on
    dim 0), shuffled per epoch with a generator seeded by (seed, epoch).

    Each draw takes the next micro_batch_size * world_size rows of the epoch's permutation (the
    global micro-batch) and yields rank's contiguous share of micro_batch_size rows, so any
    world size sees the same global batches. An epoch ends when fewer rows than one global
    micro-batch remain (those rows are skipped). State: epoch and position.
    """

    def __init__(self, data: Any, micro_batch_size: int, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0, shuffle: bool = True):
        self.data, self.micro_batch_size = data, micro_batch_size
        self.rank, self.world_size, self.seed, self.shuffle = rank, world_size, seed, shuffle
        self.n = _length(data)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        if micro_batch_size * world_size > self.n:
            raise ValueError(f"a global micro-batch of {micro_batch_size} x {world_size} rows "
                             f"exceeds the {self.n} rows of data")
        self.epoch, self.pos = 0, 0
        self._perm_epoch, self._perm = -1, None

    def __iter__(self) -> ResumableBatches:
        return self

    def _permutation(self) -> torch.Tensor:
        if self._perm_epoch != self.epoch:
            if self.shuffle:
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
                self._perm = torch.randperm(self.n, generator=g)
            else:
                self._perm = torch.arange(self.n)
            self._perm_epoch = self.epoch
        return self._perm

    def __next__(self) -> Any:
        per_draw = self.micro_batch_size * self.world_size
        if self.pos + per_draw > self.n:
            self.epoch, self.pos = self.epoch + 1, 0
        start = self.pos + self.rank * self.micro_batch_size
        idx = self._permutation()[start:start + self.micro_batch_size]
        self.pos += per_draw
        return _take(self.data, idx)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos, "seed": self.seed,
                "micro_batch_size": self.micro_batch_size, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue the saved stream. The position counts rows of the epoch's permutation, so another
        world size or micro-batch size continues at the same row (only the seed must match)."""
        if state["seed"] != self.seed:
            raise ValueError(f"data state has seed={state['seed']}, this iterator has {self.seed}: "
                             "it cannot resume that stream")
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
