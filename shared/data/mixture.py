"""A deterministic, resumable sampler over named data streams whose proportions change in training.

    mix = Mixture(streams={"web": web_ds, "math": math_ds},
                  schedule=domain_upsampling({"web": 0.95, "math": 0.05}, {"web": 0.5, "math": 0.5}, 0.2),
                  global_batch_size=32, total_steps=500, seed=0, rank=rank, world_size=world_size)
    for step in range(500):
        batch = next(mix)          # {"input_ids", "targets", "doc_ids": LongTensor (b, T),
                                   #  "loss_mask": BoolTensor (b, T), "stream_ids": LongTensor (b,)}
    ckpt["data"] = mix.state_dict();  mix.load_state_dict(ckpt["data"])

Progress. Global batch b (0-based) is drawn with the schedule's weights at progress b / total_steps.
After total_steps the iterator goes on with the weights at progress 1; the trainer decides when to stop.

Allocation. Each global batch has `global_batch_size` slots; a slot is given to a stream either
- "exact" (default): smooth weighted round robin (the credit scheme nginx uses for weighted upstreams):
  before each slot every stream's credit grows by its weight, the stream with the most credit takes
  the slot and pays 1. Credit = expected - realised count; over thousands of random schedules (K
  streams, weights changing every step) we measured |credit| <= (K-1)/2, so realised counts track the
  requested proportions to within a sample or two over any stretch of training, however small the
  batch (tests/test_data_mixture.py asserts 2(K-1) per phase); or
- "random": each slot drawn independently from the weights (multinomial), from a per-batch Generator.
The slots are then shuffled (per-batch Generator), so every rank's slice mixes the streams.

Samples. Stream k is read in epochs: epoch e is a permutation of the stream seeded by (seed, name, e),
and the stream's i-th drawn sample is permutation[i mod len] of epoch i // len. Nothing is drawn twice
within an epoch of a stream.

Ranks. Every rank computes the same global batch and keeps slots [rank*b, (rank+1)*b) with
b = global_batch_size / world_size, so the data seen is identical for any world size at the same
global batch. With `micro_batch_size`, each rank's slice is further yielded in consecutive micro
batches (gradient accumulation); the step advances after the last one.

State. `state_dict()` holds the step, the micro batch within it, each stream's draw count and the
allocation credit: a loaded sampler continues exactly where the saved one stood, also under another
world size (between whole steps).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from shared.data.rng import rng_for

ALLOCATIONS = ("exact", "random")


# ------------------------------------------------------------------------------------------ schedules
def _normalise(weights: Mapping[str, float]) -> dict[str, float]:
    bad = {k: v for k, v in weights.items() if not (v >= 0.0 and np.isfinite(v))}
    if bad:
        raise ValueError(f"mixture weights must be finite and >= 0, got {bad}")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError(f"mixture weights must not all be zero, got {dict(weights)}")
    return {k: float(v) / total for k, v in weights.items()}


class Schedule(Protocol):
    def weights(self, progress: float) -> dict[str, float]:
        """Normalised stream weights at training progress in [0, 1]."""


@dataclass(frozen=True)
class ConstantSchedule:
    mix: Mapping[str, float]

    def weights(self, progress: float) -> dict[str, float]:
        return _normalise(self.mix)


@dataclass(frozen=True)
class PiecewiseSchedule:
    """Step function: `phases = [(start, weights), ...]`, the first starting at 0, starts increasing.
    At progress p the phase with the largest start <= p applies."""
    phases: Sequence[tuple[float, Mapping[str, float]]]

    def __post_init__(self):
        starts = [s for s, _ in self.phases]
        if not starts or starts[0] != 0.0 or any(b <= a for a, b in zip(starts, starts[1:])) or starts[-1] > 1:
            raise ValueError(f"phase starts must begin at 0.0 and increase within [0, 1], got {starts}")

    def weights(self, progress: float) -> dict[str, float]:
        current = self.phases[0][1]
        for start, w in self.phases:
            if progress >= start - 1e-12:
                current = w
        return _normalise(current)


@dataclass(frozen=True)
class LinearSchedule:
    """Piecewise-linear interpolation between `points = [(progress, weights), ...]` (progress
    increasing); constant before the first and after the last point. Weights are interpolated, then
    normalised."""
    points: Sequence[tuple[float, Mapping[str, float]]]

    def __post_init__(self):
        xs = [p for p, _ in self.points]
        if not xs or any(b <= a for a, b in zip(xs, xs[1:])):
            raise ValueError(f"points' progress values must be strictly increasing, got {xs}")

    def weights(self, progress: float) -> dict[str, float]:
        pts = self.points
        if progress <= pts[0][0]:
            return _normalise(pts[0][1])
        if progress >= pts[-1][0]:
            return _normalise(pts[-1][1])
        for (x0, w0), (x1, w1) in zip(pts, pts[1:]):
            if x0 <= progress <= x1:
                a = (progress - x0) / (x1 - x0)
                names = set(w0) | set(w1)
                return _normalise({n: (1 - a) * w0.get(n, 0.0) + a * w1.get(n, 0.0) for n in names})
        raise AssertionError("unreachable")


def domain_upsampling(base: Mapping[str, float], upsampled: Mapping[str, float],
                      fraction: float) -> PiecewiseSchedule:
    """The base mix, then `upsampled` for the last `fraction` of training (fraction 0: base only;
    1: upsampled from the start), as in "Does your data spark joy?" (Blakeney et al., 2024)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    if fraction == 0.0:
        return PiecewiseSchedule([(0.0, base)])
    if fraction == 1.0:
        return PiecewiseSchedule([(0.0, upsampled)])
    return PiecewiseSchedule([(0.0, base), (1.0 - fraction, upsampled)])


def as_schedule(schedule: Schedule | Mapping[str, float]) -> Schedule:
    return ConstantSchedule(dict(schedule)) if isinstance(schedule, Mapping) else schedule


# -------------------------------------------------------------------------------------------- sampler
class Stream(Protocol):
    """What Mixture needs from a stream (PackedDataset has it)."""

    def __len__(self) -> int: ...

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]: ...


@dataclass
class _Plan:
    """The global batch of one step: stream and in-stream sample index per slot, and the state after."""
    stream: np.ndarray          # (B,) int64 stream index per slot
    sample: np.ndarray          # (B,) int64 sample index within that stream
    counts_after: np.ndarray
    credit_after: np.ndarray


class Mixture:
    """Iterator of batch dicts drawn from named streams with scheduled proportions (module docstring)."""

    def __init__(self, streams: Mapping[str, Stream], schedule: Schedule | Mapping[str, float],
                 global_batch_size: int, total_steps: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 micro_batch_size: int | None = None, allocation: str = "exact"):
        if not streams:
            raise ValueError("streams must not be empty")
        empty = [n for n, s in streams.items() if len(s) == 0]
        if empty:
            raise ValueError(f"streams with no sequences: {empty}")
        if allocation not in ALLOCATIONS:
            raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
        if total_steps < 1 or global_batch_size < 1:
            raise ValueError(f"total_steps and global_batch_size must be >= 1, got {total_steps}, "
                             f"{global_batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        if global_batch_size % world_size:
            raise ValueError(f"global_batch_size {global_batch_size} is not divisible by world_size {world_size}")
        self.local_batch_size = global_batch_size // world_size
        self.micro_batch_size = micro_batch_size or self.local_batch_size
        if self.local_batch_size % self.micro_batch_size:
            raise ValueError(f"micro_batch_size {self.micro_batch_size} does not divide the per-rank batch "
                             f"{self.local_batch_size}")
        self.names = list(streams)
        self.streams = [streams[n] for n in self.names]
        self.schedule = as_schedule(schedule)
        unknown = set(self.schedule.weights(0.0)) - set(self.names)
        if unknown:
            raise ValueError(f"schedule names unknown streams {sorted(unknown)}; streams are {self.names}")
        self.global_batch_size, self.total_steps, self.seed = global_batch_size, total_steps, seed
        self.rank, self.world_size, self.allocation = rank, world_size, allocation
        self.micro_per_step = self.local_batch_size // self.micro_batch_size
        self.step = 0
        self.micro = 0
        self.counts = np.zeros(len(self.names), dtype=np.int64)
        self.credit = np.zeros(len(self.names), dtype=np.float64)
        self._plan: _Plan | None = None
        self._perms: dict[tuple[int, int], np.ndarray] = {}

    # ---------------------------------------------------------------------------------- schedule view
    @property
    def progress(self) -> float:
        """Training progress of the next global batch, step / total_steps, clipped to [0, 1]."""
        return min(self.step / self.total_steps, 1.0)

    def weights(self, step: int | None = None) -> dict[str, float]:
        """Stream weights used for global batch `step` (default: the next one); zeros filled in."""
        step = self.step if step is None else step
        w = self.schedule.weights(min(step / self.total_steps, 1.0))
        return {n: w.get(n, 0.0) for n in self.names}

    # ---------------------------------------------------------------------------------------- drawing
    def _allocate(self, step: int, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B,) stream index per slot (before shuffling) and the credit after this step."""
        B = self.global_batch_size
        credit = self.credit.copy()
        if self.allocation == "random":
            return rng_for(self.seed, "alloc", step).choice(len(w), size=B, p=w), credit
        slots = np.empty(B, dtype=np.int64)
        eligible = np.where(w > 0, 0.0, -np.inf)        # zero-weight streams never take a slot
        for i in range(B):
            credit += w
            k = int(np.argmax(credit + eligible))
            slots[i] = k
            credit[k] -= 1.0
        return slots, credit

    def _perm(self, k: int, epoch: int) -> np.ndarray:
        key = (k, epoch)
        if key not in self._perms:
            if len(self._perms) > 2 * len(self.names):       # keep memory bounded: current epochs only
                self._perms = {kk: v for kk, v in self._perms.items() if kk[0] != k}
            self._perms[key] = rng_for(self.seed, "perm", self.names[k], epoch).permutation(len(self.streams[k]))
        return self._perms[key]

    def _make_plan(self) -> _Plan:
        w_dict = self.weights(self.step)
        w = np.array([w_dict[n] for n in self.names])
        slots, credit_after = self._allocate(self.step, w)
        slots = slots[rng_for(self.seed, "order", self.step).permutation(len(slots))]
        samples = np.empty(len(slots), dtype=np.int64)
        counts = self.counts.copy()
        for k in range(len(self.names)):
            pos = np.nonzero(slots == k)[0]
            if pos.size == 0:
                continue
            draws = counts[k] + np.arange(pos.size)          # this stream's running draw numbers
            n = len(self.streams[k])
            epochs, offsets = draws // n, draws % n
            for e in np.unique(epochs):
                sel = epochs == e
                samples[pos[sel]] = self._perm(k, int(e))[offsets[sel]]
            counts[k] += pos.size
        return _Plan(stream=slots, sample=samples, counts_after=counts, credit_after=credit_after)

    def _gather(self, streams: np.ndarray, samples: np.ndarray) -> dict[str, torch.Tensor]:
        parts: dict[str, list] = {}
        order = []
        for k in np.unique(streams):
            pos = np.nonzero(streams == k)[0]
            batch = self.streams[int(k)].get_batch(samples[pos])
            for name, tensor in batch.items():
                parts.setdefault(name, []).append(tensor)
            order.append(pos)
        inverse = torch.from_numpy(np.argsort(np.concatenate(order), kind="stable"))
        out = {name: torch.cat(ts)[inverse] for name, ts in parts.items()}
        out["stream_ids"] = torch.from_numpy(streams.astype(np.int64))
        return out

    def __iter__(self) -> Mixture:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self._plan is None:                   # the global batch is planned once per step
            self._plan = self._make_plan()
        plan = self._plan
        start = self.rank * self.local_batch_size + self.micro * self.micro_batch_size
        sl = slice(start, start + self.micro_batch_size)
        batch = self._gather(plan.stream[sl], plan.sample[sl])
        self.micro += 1
        if self.micro == self.micro_per_step:
            self.counts, self.credit = plan.counts_after, plan.credit_after
            self.step += 1
            self.micro = 0
            self._plan = None
        return batch

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Plain-Python state (JSON- and torch.save-able)."""
        return {"step": self.step, "micro": self.micro, "counts": self.counts.tolist(),
                "credit": self.credit.tolist(), "streams": list(self.names), "seed": self.seed,
                "global_batch_size": self.global_batch_size, "total_steps": self.total_steps,
                "allocation": self.allocation, "layout": [self.world_size, self.micro_batch_size]}

    def load_state_dict(self, state: dict) -> None:
        mine = {"streams": list(self.names), "seed": self.seed, "global_batch_size": self.global_batch_size,
                "total_steps": self.total_steps, "allocation": self.allocation}
        for key, value in mine.items():
            saved = list(state[key]) if key == "streams" else state[key]
            if saved != value:
                raise ValueError(f"cannot resume: saved {key}={saved!r}, this sampler has {value!r}")
        if state["micro"] and list(state["layout"]) != [self.world_size, self.micro_batch_size]:
            raise ValueError("cannot resume in the middle of a step under another world size or micro "
                             f"batch size (saved layout {state['layout']})")
        self.step, self.micro = int(state["step"]), int(state["micro"])
        self.counts = np.array(state["counts"], dtype=np.int64)
        self.credit = np.array(state["credit"], dtype=np.float64)
        self._plan = None
