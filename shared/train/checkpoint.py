"""Atomic, verified checkpoints with everything exact resume needs.

Layout of one checkpoint, `run_dir/checkpoints/step_00001000/`:

    model.safetensors    model weights (unsharded runs; tied weights stored once)
    optimizer.pt         optimizer state_dict (torch.save)
    dcp/                 FSDP2 runs instead: model + optimizer, sharded (torch.distributed.checkpoint)
    trainer_state.pt     LR scheduler state, step, cumulative tokens/samples, elapsed time
    rank_00000.pt ...    per rank: RNG states (python, numpy, torch CPU, the rank's CUDA device)
                         and data-sampler state
    config.json          the TrainConfig
    manifest.json        written last: size and sha256 of every file above, step, world size

Writing: all files go to a hidden temp dir `.tmp-step_...`; the manifest is written last and
the dir is then renamed to `step_...`. A crash mid-write leaves only a temp dir, which is
ignored, so "latest" is always a complete checkpoint.

Loading: the manifest is checked first (every file present, sizes and sha256 equal); a missing,
truncated or corrupted file raises CheckpointError before anything is loaded. Then all files are
read and checked against the model and optimizer (keys, shapes, group sizes) before any state is
copied, so a failed load leaves the model untouched. (FSDP2 runs load through
torch.distributed.checkpoint, which plans the whole load, key checks included, before copying.)
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import distributed as D

FORMAT = "shared.train.checkpoint/1"
MANIFEST = "manifest.json"
CHECKPOINTS = "checkpoints"


class CheckpointError(RuntimeError):
    """A checkpoint is incomplete, corrupt, or does not match the model it is loaded into."""


def _step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def checkpoint_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints (those with a manifest) of a run, oldest first."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith("step_") and (p / MANIFEST).exists():
            try:
                found.append((int(p.name[5:]), p))
            except ValueError:
                continue
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's manifest, after checking every listed file; CheckpointError otherwise."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a directory")
    mpath = path / MANIFEST
    if not mpath.exists():
        raise CheckpointError(f"checkpoint {path} has no {MANIFEST}: it is incomplete "
                              "(a write that did not finish); refusing to load it")
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path}: {MANIFEST} is unreadable ({e})") from e
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: unknown format {manifest.get('format')!r}")
    for name, info in files.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"checkpoint {path}: file {name} listed in the manifest is missing")
        size = f.stat().st_size
        if size != info["size"]:
            raise CheckpointError(f"checkpoint {path}: {name} has {size} bytes, the manifest says "
                                  f"{info['size']} (truncated or overwritten)")
        if _sha256(f) != info["sha256"]:
            raise CheckpointError(f"checkpoint {path}: {name} fails its sha256 check (corrupt)")
    return manifest


# ---- RNG ----------------------------------------------------------------------------------------

def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = np_state["state"]["key"].tolist()
    state = {"python": random.getstate(), "numpy": np_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # this rank's current device
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = dict(state["numpy"])
    np_state["state"] = dict(np_state["state"], key=np.asarray(np_state["state"]["key"], np.uint32))
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


# ---- model weights (unsharded) --------------------------------------------------------------------

def _dedupe_tied(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Drop exact aliases (tied weights); return (tensors, alias -> kept name)."""
    seen: dict[tuple, str] = {}
    out, aliases = {}, {}
    for name, t in sd.items():
        key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape),
               tuple(t.stride()), t.dtype)
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            out[name] = t.detach().to("cpu", copy=True).contiguous()
    return out, aliases


def save_model_weights(model: nn.Module, path: str | Path) -> None:
    """Model state_dict as safetensors (tied weights stored once, aliases in the metadata)."""
    from safetensors.torch import save_file
    tensors, aliases = _dedupe_tied(D.unwrap(model).state_dict())
    save_file(tensors, str(path), metadata={"aliases": json.dumps(aliases)})


def _read_model_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open(str(path), "pt") as f:
        aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
    sd = load_file(str(path))
    for alias, name in aliases.items():
        sd[alias] = sd[name]
    return sd


def _check_matches(model: nn.Module, sd: dict[str, torch.Tensor], where: Path) -> None:
    expected = D.unwrap(model).state_dict()
    missing, unexpected = sorted(set(expected) - set(sd)), sorted(set(sd) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {where} does not fit the model: missing keys "
                              f"{missing[:5]}, unexpected keys {unexpected[:5]}")
    for k, t in expected.items():
        if tuple(sd[k].shape) != tuple(t.shape):
            raise CheckpointError(f"checkpoint {where}: {k} has shape {tuple(sd[k].shape)}, "
                                  f"the model's is {tuple(t.shape)}")


def _check_optimizer_fits(optimizer: torch.optim.Optimizer, osd: dict, where: Path) -> None:
    groups = osd.get("param_groups", [])
    ours = [len(g["params"]) for g in optimizer.param_groups]
    theirs = [len(g["params"]) for g in groups]
    if ours != theirs:
        raise CheckpointError(f"checkpoint {where}: optimizer has param groups of sizes {theirs}, "
                              f"this optimizer's are {ours}")


def load_model_weights(path: str | Path, model: nn.Module) -> dict[str, Any]:
    """Load only the model weights of a checkpoint (either format) into an unwrapped `model`,
    in this one process, e.g. to evaluate a run's final model in a notebook. Returns the manifest."""
    path = Path(path)
    manifest = verify_checkpoint(path)
    if manifest["sharded"]:
        import torch.distributed.checkpoint as dcp
        sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
        with warnings.catch_warnings():  # "assuming the intent is to load in a single process": yes
            warnings.filterwarnings("ignore", message=".*single process.*")
            dcp.load({"model": sd}, checkpoint_id=str(path / "dcp"), no_dist=True)
    else:
        sd = _read_model_weights(path / "model.safetensors")
    _check_matches(model, sd, path)
    model.load_state_dict(sd, strict=True)
    return manifest


# ---- save ---------------------------------------------------------------------------------------

def _write_manifest(tmp: Path, meta: dict[str, Any]) -> None:
    files = {}
    for f in sorted(p for p in tmp.rglob("*") if p.is_file()):
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
        files[str(f.relative_to(tmp))] = {"size": f.stat().st_size, "sha256": _sha256(f)}
    manifest = dict(meta, format=FORMAT, files=files)
    with open(tmp / MANIFEST, "w") as fh:
        fh.write(json.dumps(manifest, indent=1))
        fh.flush()
        os.fsync(fh.fileno())


def _publish(tmp: Path, final: Path) -> None:
    trash = None
    if final.exists():  # same step written before (e.g. a rerun): swap it out
        trash = final.with_name(f".trash-{final.name}-{uuid.uuid4().hex[:8]}")
        os.replace(final, trash)
    os.replace(tmp, final)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def prune_checkpoints(run_dir: str | Path, keep_last_n: int | None) -> None:
    """Delete all but the newest `keep_last_n` complete checkpoints, and stale temp dirs."""
    root = checkpoint_root(run_dir)
    for p in root.glob(".tmp-*") if root.is_dir() else []:
        shutil.rmtree(p, ignore_errors=True)
    if keep_last_n is None:
        return
    for p in list_checkpoints(run_dir)[:-keep_last_n]:
        shutil.rmtree(p, ignore_errors=True)


def save_checkpoint(run_dir: str | Path, step: int, *, model: nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any, train_data: Any,
                    trainer_state: dict[str, Any], config: dict[str, Any],
                    keep_last_n: int | None = None,
                    extra_writers: Sequence[Callable[[Path], None]] = ()) -> Path:
    """Write the checkpoint of `step` atomically; collective: every rank must call it.

    `extra_writers`: functions called on every rank with the (temporary) checkpoint folder before
    the manifest is written, to add their own files (e.g. EMA weights); those files are then
    covered by the manifest and published atomically with the rest.
    """
    rank, world = D.get_rank(), D.get_world_size()
    sharded = D.is_fsdp(model)
    root = checkpoint_root(run_dir)
    tmp = None
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".tmp-{_step_dir_name(step)}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
    tmp = Path(D.broadcast_object(str(tmp) if tmp else None))
    if sharded:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict
        msd, osd = get_state_dict(model, optimizer)
        dcp.save({"model": msd, "optim": osd}, checkpoint_id=str(tmp / "dcp"))
    elif rank == 0:
        save_model_weights(model, tmp / "model.safetensors")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if rank == 0:
        torch.save({"scheduler": scheduler.state_dict(), "trainer": trainer_state},
                   tmp / "trainer_state.pt")
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
    data_state = train_data.state_dict() if hasattr(train_data, "state_dict") else None
    torch.save({"rng": rng_state(), "data": data_state}, tmp / f"rank_{rank:05d}.pt")
    for write in extra_writers:
        write(tmp)
    D.barrier()
    final = root / _step_dir_name(step)
    if rank == 0:
        _write_manifest(tmp, {"step": step, "world_size": world, "sharded": sharded,
                              "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
        _publish(tmp, final)
        prune_checkpoints(run_dir, keep_last_n)
    D.barrier()
    return final


# ---- load ---------------------------------------------------------------------------------------

def _load_pt(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise CheckpointError(f"cannot read {path}: {e}") from e


def load_checkpoint(path: str | Path, *, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, train_data: Any) -> dict[str, Any]:
    """Restore model, optimizer, scheduler, RNG and data-sampler state; return the trainer state.

    Collective under torchrun. Raises CheckpointError, with nothing loaded, when the checkpoint
    is incomplete, corrupt, or does not fit the model/optimizer. Another world size resumes with a
    warning: weights, optimizer and schedule reshard, the data position is rank 0's (global),
    per-rank RNG states are not restored.
    """
    path = Path(path)
    rank, world = D.get_rank(), D.get_world_size()
    error = None
    if rank == 0:
        try:
            verify_checkpoint(path)
        except CheckpointError as e:
            error = str(e)
    error = D.broadcast_object(error)
    if error is not None:
        raise CheckpointError(error)
    manifest = json.loads((path / MANIFEST).read_text())
    resharded = manifest["world_size"] != world
    if resharded:
        # weights and optimizer state reshard (DCP plans the load for this world size; unsharded
        # files are whole); the data position is global (rank 0's sampler state); per-rank RNG
        # streams cannot be mapped to other ranks and start from this run's seeds instead.
        warnings.warn(f"resuming on {world} ranks from a checkpoint of {manifest['world_size']} ranks ({path}): "
                      "model, optimizer, schedule and data position carry over; per-rank RNG streams start "
                      "fresh (dropout and sampling noise differ from an uninterrupted run)", stacklevel=2)
    # a sharded (DCP) checkpoint loads into any world size, FSDP or not: DCP plans the load from
    # global shapes; an unsharded one needs an unsharded model
    sharded = bool(manifest["sharded"])
    if not sharded and D.is_fsdp(model):
        raise CheckpointError(f"checkpoint {path} is unsharded and the model is sharded (FSDP): resume with "
                              "parallelism 'ddp' or 'none', or start the FSDP run from its weights")
    # read and check everything before touching any state
    trainer = _load_pt(path / "trainer_state.pt")
    per_rank = _load_pt(path / f"rank_{0 if resharded else rank:05d}.pt")
    if not sharded:
        try:
            msd = _read_model_weights(path / "model.safetensors")
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"cannot read {path / 'model.safetensors'}: {e}") from e
        _check_matches(model, msd, path)
        osd = _load_pt(path / "optimizer.pt")
        _check_optimizer_fits(optimizer, osd, path)
    data_state = per_rank.get("data")
    resumable = hasattr(train_data, "load_state_dict")
    # apply; the data sampler first, as its load_state_dict may still refuse the state
    if data_state is not None and resumable:
        train_data.load_state_dict(data_state)
    else:
        warnings.warn("resuming without data-sampler state (the iterator has no state_dict/"
                      "load_state_dict): batches after the resume differ from an uninterrupted run",
                      stacklevel=2)
    if sharded:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
        msd, osd = get_state_dict(model, optimizer)
        state = {"model": msd, "optim": osd}
        dcp.load(state, checkpoint_id=str(path / "dcp"))
        set_state_dict(model, optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optim"])
    else:
        D.unwrap(model).load_state_dict(msd, strict=True)
        optimizer.load_state_dict(osd)
    scheduler.load_state_dict(trainer["scheduler"])
    if not resharded:
        set_rng_state(per_rank["rng"])
    return trainer["trainer"]


CONFIG_STAMP = "pipeline_config.json"


def stamp_config(run_dir: str | Path, config: Any) -> None:
    """Record the config a run dir is trained with (``run_dir/pipeline_config.json``); refuse to reuse
    the dir under another config, whose checkpoints and metrics would silently stand for the new one."""
    run_dir = Path(run_dir)
    stamp = run_dir / CONFIG_STAMP
    text = json.dumps(config, sort_keys=True, indent=1, default=str)
    if stamp.exists() and stamp.read_text() != text:
        raise ValueError(f"{run_dir} was trained with another config ({stamp}); remove that folder to "
                         "retrain, or give the run another out_dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(text)
