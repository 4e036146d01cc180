"""The one training loop of the repository, for every model family.

    trainer = Trainer(model, loss_fn, train_data, TrainConfig(max_steps=200, lr=3e-4, run_dir=...),
                      eval_fns={"val": val_fn})
    history = trainer.fit()

- `loss_fn(model, batch) -> (loss, metrics)`: `loss` a scalar tensor (mean over the micro-batch),
  `metrics` a dict of scalars (floats or 0-d tensors) averaged over the global batch into the
  log. Two optional keys are counts, not averaged: `num_tokens` and `num_samples` of the
  micro-batch. Without them the trainer counts samples as the first dim of the batch's first
  tensor, and tokens as the numel of a 2-D integer batch or of batch["input_ids"].
  The batch reaches loss_fn already on the training device; `model` is the wrapped module (call
  it, not `.module`, so DDP/FSDP hooks run).
- `train_data`: an iterator of micro-batches (or an iterable; `iter()` is taken) that never runs
  out. Exact resume needs `state_dict()` / `load_state_dict()` on it (on the object passed in):
  without them a resumed run restarts the data stream and sees different batches than an
  uninterrupted run would (a warning says so). Under torchrun each rank's iterator yields that
  rank's share of the global batch.
- `eval_fns`: {name: fn(model) -> {metric: float}} (or a list; names from `fn.__name__`), run in
  eval mode under no_grad every `eval_every` steps and at the end; logged as "name/metric". They
  run on every rank (FSDP needs every rank in the forward); rank 0's values are logged.
- `callbacks`: objects with any of `on_fit_start(trainer)`, `on_step_end(trainer, record)`
  (after the optimizer step; record None on steps that are not logged), `on_eval_end(trainer,
  record)`, `on_checkpoint(trainer, path)`, `on_fit_end(trainer, history)`. Setting
  `trainer.should_stop = True` (on every rank) ends the fit after the current step, with a
  checkpoint. A callback with `state_dict()`/`load_state_dict()` (small replicated state: counters,
  masks) is checkpointed: rank 0's state (tensors and plain Python values) is saved and restored
  on resume, matched by position and class name. A callback that writes its own files (EMA
  weights, possibly sharded) defines `on_save_checkpoint(trainer, folder)`, called on every rank
  with the checkpoint's temporary folder before its manifest is written (so the files are
  verified and published atomically with the rest), and `on_load_checkpoint(trainer, folder)`,
  called on resume after the trainer's own state is restored.

Gradient accumulation divides each micro-batch loss by grad_accum, so with equal micro-batches
the update equals that of one batch of the global size (DDP/FSDP average over ranks).

Precision "amp_fp16": each micro-batch's loss is multiplied by the loss scale before its backward;
after the last one the gradients are unscaled (divided by the scale, and checked for inf/nan over
every rank), then clipped, then the optimizer steps unless they held inf/nan. A skipped step still
counts as a step (it advances `step` and the LR schedule, as Composer and torch's AMP recipe do);
the log records `skipped_steps` (so far in the run) and `loss_scale`, and checkpoints hold the
scaler's state, so a resumed run skips and scales as the uninterrupted one would.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shared.utils.runtime import seed_everything

from . import distributed as D
from .checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .metrics import METRICS_FILE, History, MetricsLogger
from .optim import build_optimizer
from .rehearsal_preemption import KINDS_DIR_ENV, claim_kind, kind_keys, preempted_for_kind
from .schedules import build_lr_scheduler
from .throughput import mfu, model_flops_per_token, peak_flops

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "amp_fp16": torch.float16}
REHEARSAL_CRASH_ENV = "SHARED_REHEARSAL_CRASH"
REHEARSAL_CRASH_MARKER = "rehearsal_crashed"

log = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, Mapping[str, Any]]]
EvalFn = Callable[[nn.Module], Mapping[str, float]]
# restored from a checkpoint's optimizer and LR scheduler states, whatever the new config says
RESTORED_FROM_CHECKPOINT = ("optimizer", "lr", "betas", "eps", "weight_decay", "weight_decay_scaling",
                            "decay_norm_and_bias", "schedule", "warmup_steps", "warmup_fraction",
                            "alpha_f", "max_steps")


def to_device(batch: Any, device: torch.device) -> Any:
    """`batch` with every tensor (nested in dicts, lists, tuples) moved to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device) for k, v in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _first_tensor(batch: Any) -> torch.Tensor | None:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, Mapping):
        batch = list(batch.values())
    for v in batch if isinstance(batch, (list, tuple)) else ():
        t = _first_tensor(v)
        if t is not None:
            return t
    return None


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype the forward autocasts to: bf16 on CUDA only (CPU runs fp32), fp16 on every device."""
    if precision == "bf16" and device.type != "cuda":
        return None
    return AUTOCAST_DTYPES.get(precision)


def count_batch(batch: Any) -> tuple[int | None, int | None]:
    """(samples, tokens) of a micro-batch by its shapes; None where unknown."""
    first = _first_tensor(batch)
    samples = int(first.shape[0]) if first is not None and first.ndim > 0 else None
    ids = batch.get("input_ids") if isinstance(batch, Mapping) else batch
    tokens = None
    if isinstance(ids, torch.Tensor) and ids.ndim == 2 and not ids.is_floating_point():
        tokens = ids.numel()
    return samples, tokens


def rehearsal_crash(run_dir: str | Path, step: int) -> None:
    """A preemption for the full-scale CPU rehearsal (ci/rehearsal.py sets SHARED_REHEARSAL_CRASH=1): under
    torchrun, or in a job of shared.train.jobs (SHARED_JOB_RESTART_COUNT / SHARED_JOB_MAX_RESTARTS), with a
    restart left, every rank exits right after the run's first periodic checkpoint, once per run
    (``run_dir/rehearsal_crashed`` holds the step), so the restart and the resume from that checkpoint run as
    they would after a node failure; with SHARED_REHEARSAL_KIND_KEYS, only the first run of each kind
    (``shared.train.rehearsal_preemption``). A no-op otherwise."""
    if os.environ.get(REHEARSAL_CRASH_ENV) != "1":
        return
    if "TORCHELASTIC_RUN_ID" in os.environ:
        restarts, budget = "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS"
    elif "SHARED_JOB_RESTART_COUNT" in os.environ:      # shared.train.jobs.RESTART_COUNT_ENV, MAX_RESTARTS_ENV
        restarts, budget = "SHARED_JOB_RESTART_COUNT", "SHARED_JOB_MAX_RESTARTS"
    else:
        return
    if int(os.environ.get(restarts, 0)) >= int(os.environ.get(budget, 0)):
        return
    marker = Path(run_dir) / REHEARSAL_CRASH_MARKER
    if marker.exists():
        return
    keys, kinds_dir = kind_keys(), os.environ.get(KINDS_DIR_ENV)
    D.barrier()                 # every rank has written its part of the checkpoint
    if keys is not None and kinds_dir:           # one run per kind (shared.train.rehearsal_preemption)
        if D.is_main_process():
            claim_kind(run_dir, keys, kinds_dir)
        D.barrier()
        if not preempted_for_kind(run_dir, keys, kinds_dir):
            return
    if D.is_main_process():
        marker.write_text(f"{step}\n")
    D.barrier()
    log.warning("rehearsal: exiting every rank after the checkpoint of step %d (its launcher restarts them)", step)
    os._exit(43)


class Trainer:
    """Runs `loss_fn` over `train_data` for config.max_steps optimizer updates.

    Attributes after construction: `model` (the user's module, on its device), `wrapped` (what
    forward is called on: DDP wrapper, FSDP module or the model), `optimizer`, `scheduler`,
    `scaler` (the torch.amp.GradScaler of amp_fp16 runs, else None), `dist` (DistInfo), `device`,
    `grad_accum`, `step` (updates done, skipped ones included).

    optimizer_factory(model, config) -> Optimizer replaces the default `build_optimizer`; it is
    called after parallelism is applied. `blocks` selects the modules FSDP shards one by one
    (default: model.blocks).
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, train_data: Iterable, config: TrainConfig,
                 eval_fns: Mapping[str, EvalFn] | Sequence[EvalFn] | None = None,
                 callbacks: Sequence[Any] | None = None, *,
                 optimizer_factory: Callable[[nn.Module, TrainConfig], torch.optim.Optimizer] | None = None,
                 blocks: D.BlocksSpec = None):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.dist = D.init_distributed(config.device)
        self.device = self.dist.device
        world = self.dist.world_size
        if world > 1 and config.parallelism == "none":
            raise ValueError(f"{world} processes with parallelism='none' would train diverging "
                             "replicas; choose parallelism 'ddp' or 'fsdp'")
        self.grad_accum = config.resolve_grad_accum(world)
        self.amp_dtype = autocast_dtype(config.precision, self.device)
        self.precision = config.precision if self.amp_dtype is not None else "fp32"
        # dynamic loss scaling for fp16 (bf16 has fp32's exponent range and needs none)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        # a model built on the meta device is materialised by apply_parallelism (after FSDP sharding)
        self.model = model if D.has_meta_parameters(model) else model.to(self.device)
        if config.activation_checkpointing:
            D.apply_activation_checkpointing(self.model, blocks)
        self.wrapped = D.apply_parallelism(self.model, config.parallelism, blocks=blocks,
                                           device=self.device, param_dtype=self.amp_dtype,
                                           compile=config.compile, compile_dynamic=config.compile_dynamic)
        self.optimizer = (optimizer_factory or build_optimizer)(self.model, config)
        self.scheduler = build_lr_scheduler(self.optimizer, config)
        self.loss_fn = loss_fn
        self.train_data = train_data
        self._batches = train_data if hasattr(train_data, "__next__") else iter(train_data)
        if isinstance(eval_fns, Mapping):
            self.eval_fns = dict(eval_fns)
        else:
            self.eval_fns = {getattr(f, "__name__", f"eval{i}"): f for i, f in enumerate(eval_fns or [])}
        self.callbacks = list(callbacks or [])
        self.resumable_data = hasattr(train_data, "state_dict") and hasattr(train_data, "load_state_dict")
        if config.run_dir is not None and not self.resumable_data:
            warnings.warn("train_data has no state_dict()/load_state_dict(): a resumed run will not "
                          "see the batches an uninterrupted run would (exact resume impossible)",
                          stacklevel=2)
        self.flops_per_token = model_flops_per_token(self.model, config.flops_per_token)
        # 16-bit tensor-core peaks: fp16's equals bf16's on the GPUs throughput.py lists
        self.peak_flops = peak_flops(self.device, "fp32" if self.amp_dtype is None else "bf16")
        self.step = 0
        self.should_stop = False
        self._restored = False
        self._counts = torch.zeros(2, dtype=torch.float64, device=self.device)  # tokens, samples
        self._skipped = torch.zeros((), dtype=torch.float64, device=self.device)  # steps skipped on inf/nan
        self._elapsed = 0.0
        self._tokens_known = True
        main_log = config.run_dir is not None and self.dist.is_main
        self.logger = MetricsLogger(f"{config.run_dir}/{METRICS_FILE}" if main_log else None)
        self.history = History()

    # ---- public -------------------------------------------------------------------------------
    def fit(self, until_step: int | None = None) -> History:
        """Train to config.max_steps (or stop early at `until_step`, checkpointing there, as a
        preempted job would); resume first per config.resume. Returns the run's History,
        including records of earlier, resumed-from segments."""
        cfg = self.config
        if not self._restored:  # later fit() calls continue from the state in memory
            self._restore()
            self._restored = True
        self.should_stop = False
        stop_at = cfg.max_steps if until_step is None else min(until_step, cfg.max_steps)
        if self.step >= stop_at:
            return self.history
        self._call("on_fit_start", self)
        bar = self._progress_bar()
        if cfg.eval_at_start and self.step == 0 and self.eval_fns:
            self.evaluate()
        interval_start, interval_counts = time.perf_counter(), self._counts.clone()
        while self.step < stop_at and not self.should_stop:
            t0 = time.perf_counter()
            out = self._train_step()
            self.step += 1
            self._elapsed += time.perf_counter() - t0
            record = None
            if (cfg.log_every and self.step % cfg.log_every == 0) or self.step in (stop_at, cfg.max_steps):
                record = self._log_train(out, time.perf_counter() - interval_start,
                                         self._counts - interval_counts, bar)
            bar.update(1)
            self._call("on_step_end", self, record)
            paused = time.perf_counter()
            done = self.step >= stop_at or self.should_stop
            if self.eval_fns and ((cfg.eval_every and self.step % cfg.eval_every == 0)
                                  or self.step == cfg.max_steps):
                self.evaluate()
            periodic = cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0
            final = done and (self.step < cfg.max_steps or cfg.checkpoint_at_end)
            if cfg.run_dir is not None and (periodic or final):
                self.save_checkpoint()
                if periodic and not done:
                    rehearsal_crash(cfg.run_dir, self.step)
            if record is not None:
                interval_start, interval_counts = time.perf_counter(), self._counts.clone()
            else:
                interval_start += time.perf_counter() - paused
        bar.close()
        self._call("on_fit_end", self, self.history)
        return self.history

    @torch.no_grad()
    def evaluate(self) -> dict[str, Any]:
        """Run every eval fn now; log and return the "eval" record."""
        self.wrapped.eval()
        results: dict[str, Any] = {}
        try:
            with self._autocast():
                for name, fn in self.eval_fns.items():
                    for k, v in dict(fn(self.wrapped)).items():
                        results[f"{name}/{k}"] = float(v)
        finally:
            self.wrapped.train()
        record = self._record({"kind": "eval", "step": self.step, **results})
        self._call("on_eval_end", self, record)
        return record

    def save_checkpoint(self):
        if self.config.run_dir is None:
            raise ValueError("save_checkpoint needs config.run_dir")
        path = save_checkpoint(self.config.run_dir, self.step, model=self.model,
                               optimizer=self.optimizer, scheduler=self.scheduler,
                               train_data=self.train_data,
                               trainer_state=dict(self._state(), callbacks=self._callback_states(),
                                                  **self._scaler_state()),
                               config=self.config.to_dict(), keep_last_n=self.config.keep_last_n,
                               extra_writers=[functools.partial(cb.on_save_checkpoint, self)
                                              for cb in self.callbacks if hasattr(cb, "on_save_checkpoint")])
        self._call("on_checkpoint", self, path)
        return path

    # ---- internals ----------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        tokens, samples = self._counts.tolist()
        return {"step": self.step, "tokens": tokens, "samples": samples, "elapsed_s": self._elapsed}

    def _scaler_state(self) -> dict[str, Any]:
        """The loss scaler's state and skipped-step count (amp_fp16 runs; nothing otherwise)."""
        if self.scaler is None:
            return {}
        return {"grad_scaler": self.scaler.state_dict(), "skipped_steps": int(self._skipped.item())}

    def _stateful_callbacks(self) -> dict[str, Any]:
        stateful = [cb for cb in self.callbacks
                    if hasattr(cb, "state_dict") and hasattr(cb, "load_state_dict")]
        return {f"{i}:{type(cb).__name__}": cb for i, cb in enumerate(stateful)}

    def _callback_states(self) -> dict[str, Any]:
        return {k: cb.state_dict() for k, cb in self._stateful_callbacks().items()}

    def _restore(self) -> None:
        cfg = self.config
        path = None
        if cfg.resume == "latest":
            path = latest_checkpoint(cfg.run_dir) if cfg.run_dir is not None else None
        elif cfg.resume is not None:
            path = cfg.resume
        elif cfg.run_dir is not None and list_checkpoints(cfg.run_dir):
            raise ValueError(f"run_dir {cfg.run_dir} already holds checkpoints and resume=None: the "
                             "new run would mix with them; use resume='latest', or a new run_dir")
        if path is None:
            if self.step == 0:
                self.logger.reset()
                seed_everything(cfg.seed + self.dist.rank)
            return
        state = load_checkpoint(path, model=self.model, optimizer=self.optimizer,
                                scheduler=self.scheduler, train_data=self.train_data)
        self._warn_config_changes(Path(path))
        self.step = int(state["step"])
        self._counts = torch.tensor([state["tokens"], state["samples"]], dtype=torch.float64,
                                    device=self.device)
        self._elapsed = float(state["elapsed_s"])
        if self.scaler is not None:
            if "grad_scaler" in state:
                self.scaler.load_state_dict(state["grad_scaler"])
                self._skipped.fill_(float(state["skipped_steps"]))
            else:
                warnings.warn(f"{path} holds no loss-scaler state (a run in another precision): the loss "
                              "scale starts again from its initial value", stacklevel=3)
        saved, ours = state.get("callbacks", {}), self._stateful_callbacks()
        if set(saved) != set(ours):
            warnings.warn(f"stateful callbacks {sorted(ours)} differ from the checkpoint's "
                          f"{sorted(saved)}; only those in both are restored", stacklevel=3)
        for key in set(saved) & set(ours):
            ours[key].load_state_dict(saved[key])
        self._call("on_load_checkpoint", self, Path(path))
        self.history = History(self.logger.truncate_after(self.step))
        log.info("resumed from %s at step %d", path, self.step)

    def _warn_config_changes(self, path: Path) -> None:
        saved = json.loads((path / "config.json").read_text())
        now = self.config.to_dict()
        changed = sorted(k for k in RESTORED_FROM_CHECKPOINT if saved.get(k) != now.get(k))
        if changed:
            warnings.warn(f"resuming from {path} with a config that differs in {changed}: the "
                          "optimizer hyperparameters and LR schedule saved in the checkpoint stay "
                          "in force (this config sets batch, clipping, logging, eval, checkpoints)",
                          stacklevel=3)

    def _next_batch(self) -> Any:
        try:
            return next(self._batches)
        except StopIteration:
            raise RuntimeError(f"train_data ran out at step {self.step}: pass an iterator that "
                               "never ends (loop over epochs inside it)") from None

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _train_step(self) -> dict[str, Any]:
        """One optimizer update over grad_accum micro-batches; values stay on device."""
        self.wrapped.train()
        accum, ddp = self.grad_accum, hasattr(self.wrapped, "no_sync")
        fsdp = hasattr(self.wrapped, "set_requires_gradient_sync")   # FSDP2 (fully_shard) module
        loss_sum = torch.zeros((), device=self.device)
        metric_sums: dict[str, torch.Tensor] = {}
        counts = torch.zeros(2, dtype=torch.float64, device=self.device)
        for i in range(accum):
            batch = to_device(self._next_batch(), self.device)
            skip_sync = ddp and i < accum - 1  # DDP all-reduces only on the last micro-batch
            if fsdp:   # FSDP2 likewise reduce-scatters only on the last (unsharded grads accumulate meanwhile)
                self.wrapped.set_requires_gradient_sync(i == accum - 1)
            with self.wrapped.no_sync() if skip_sync else contextlib.nullcontext():
                with self._autocast():
                    loss, metrics = self.loss_fn(self.wrapped, batch)
                scaled = loss / accum
                (scaled if self.scaler is None else self.scaler.scale(scaled)).backward()
            loss_sum += loss.detach().float()
            metrics = dict(metrics or {})
            counts += self._micro_counts(batch, metrics)
            for k, v in metrics.items():
                v = torch.as_tensor(v, dtype=torch.float32).detach().to(self.device)
                metric_sums[k] = metric_sums.get(k, 0) + v
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)       # clip (and report) the true gradients
        max_norm = self.config.grad_clip if self.config.grad_clip else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        if hasattr(grad_norm, "full_tensor"):  # FSDP2 returns a DTensor
            grad_norm = grad_norm.full_tensor()
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scaler is None:
            self.optimizer.step()
            self.scheduler.step()
        else:
            self._scaled_step()
        self.optimizer.zero_grad(set_to_none=True)
        self._counts += D.all_reduce_sum(counts)
        return {"loss": loss_sum / accum, "lr": lr, "grad_norm": grad_norm,
                "metrics": {k: v / accum for k, v in metric_sums.items()}}

    def _scaled_step(self) -> None:
        """Optimizer step unless unscale_ found inf/nan (the flag, already reduced over ranks, stays on
        device), then the loss-scale update and the LR schedule's step."""
        found_inf = sum(v.double() for v in self.scaler._found_inf_per_device(self.optimizer).values())
        self._skipped += (found_inf > 0).double()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with warnings.catch_warnings():     # a skipped first step: the schedule advances all the same
            warnings.filterwarnings("ignore", message=".*lr_scheduler.step\\(\\)` before `optimizer.step")
            self.scheduler.step()

    def _micro_counts(self, batch: Any, metrics: dict[str, Any]) -> torch.Tensor:
        samples, tokens = count_batch(batch)
        if "num_samples" in metrics:
            samples = int(metrics.pop("num_samples"))
        if "num_tokens" in metrics:
            tokens = int(metrics.pop("num_tokens"))
        mbs = self.config.micro_batch_size
        if mbs is not None and samples is not None and samples != mbs:
            raise ValueError(f"a micro-batch has {samples} samples, config.micro_batch_size is {mbs}")
        if tokens is None:
            self._tokens_known = False
        return torch.tensor([tokens or 0, samples or 0], dtype=torch.float64, device=self.device)

    def _log_train(self, out: dict[str, Any], seconds: float, interval_counts: torch.Tensor,
                   bar) -> dict[str, Any]:
        names = sorted(out["metrics"])
        vec = torch.stack([out["loss"].float()] + [out["metrics"][k].float() for k in names])
        vec = D.all_reduce_mean(vec).tolist()
        tokens, samples = interval_counts.tolist()
        total_tokens, total_samples = self._counts.tolist()
        seconds = max(seconds, 1e-9)
        tok_s = tokens / seconds if self._tokens_known else None
        rec = {"kind": "train", "step": self.step, "loss": vec[0], "lr": out["lr"],
               "grad_norm": float(out["grad_norm"]),
               "tokens_per_s": tok_s, "samples_per_s": samples / seconds,
               "mfu": mfu(self.flops_per_token, tok_s, self.peak_flops, self.dist.world_size)
               if tok_s is not None else None,
               "tokens": int(total_tokens) if self._tokens_known else None,
               "samples": int(total_samples), "elapsed_s": self._elapsed}
        if self.scaler is not None:
            rec.update(loss_scale=self.scaler.get_scale(), skipped_steps=int(self._skipped.item()))
        rec.update(zip(names, vec[1:]))
        if bar is not None:
            post = {"loss": f"{rec['loss']:.4f}", "lr": f"{rec['lr']:.2e}"}
            if tok_s is not None:
                post["tok/s"] = f"{tok_s:,.0f}"
            bar.set_postfix(post, refresh=False)
        return self._record(rec)

    def _record(self, rec: dict[str, Any]) -> dict[str, Any]:
        rec = self.logger.log(rec)
        self.history.records.append(rec)
        return rec

    def _progress_bar(self):
        from tqdm import tqdm
        return tqdm(total=self.config.max_steps, initial=self.step, dynamic_ncols=True,
                    disable=not (self.config.progress_bar and self.dist.is_main), desc="train")

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)

