"""Scale-out on PyTorch's own engines: torchrun, DDP and FSDP2 (`fully_shard`).

Model files hold no distributed code; this module applies parallelism from outside.

One process (world size 1) runs in the caller's process, unwrapped. More processes are launched
with torchrun; inside each worker `init_distributed()` joins the process group (gloo on CPU,
nccl on CUDA) and `apply_parallelism(model, "ddp" | "fsdp" | "fsdp_grad_op", blocks=...)` wraps the model:

- "ddp": `DistributedDataParallel`; every rank holds the whole model and optimizer state.
- "fsdp": FSDP2; `fully_shard` on each block (e.g. transformer layers) and then on the root, so
  parameters, gradients and optimizer state are sharded and each block is gathered only while
  it runs. Rank 0's initial weights are broadcast first, so all ranks start from the same model.
- "fsdp_grad_op" (ZeRO-2, FSDP1's SHARD_GRAD_OP): the same sharding, but `reshard_after_forward=False`:
  a block gathered for the forward stays unsharded until its backward has run (no second
  all-gather; every block's full parameters are held at the peak). Gradients and optimizer state
  stay sharded.

Loss scaling (precision "amp_fp16") needs no wrapper here: under FSDP2 the gradients are DTensors
and torch.amp.GradScaler's unscale (`_amp_foreach_non_finite_check_and_unscale_`) all-reduces its
inf/nan flag over the mesh in DTensor's dispatch (pytorch/pytorch#132816), so every rank skips the
same steps; under DDP the gradients are all-reduced before the check, so every rank sees the same.

Each rank draws its own slice of the global batch: the data sampler takes rank and world_size
(`rank_slice` gives the rows of a global batch that belong to a rank).

Launching (torchrun on one node or several, SLURM, logs, restarts) is `shared.train.launch`.
The run_dir must be on a file system every node sees (checkpoints are written by all ranks).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.utils.checkpoint
from torch import nn

from shared.utils.runtime import default_device  # noqa: F401 (re-exported)

from .config import PARALLELISMS, SHARDED_PARALLELISMS

# ---------------------------------------------------------------------------------------------
# process group
# ---------------------------------------------------------------------------------------------


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if get_world_size() > 1:
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """`obj` of rank `src` on every rank (picklable objects)."""
    if get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of `t` over ranks (a new tensor; `t` is unchanged)."""
    if get_world_size() == 1:
        return t.clone()
    out = t.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / get_world_size()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if get_world_size() == 1:
        return t.clone()
    out = t.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def process_group_timeout_s() -> float:
    """Seconds a collective may wait before the job fails (SHARED_PG_TIMEOUT_S, default 1800): longer
    than NCCL's 10-minute default so a rank-0-only step (an export, an evaluation) does not kill the
    job, short enough that a dead rank ends it within the hour."""
    value = float(os.environ.get("SHARED_PG_TIMEOUT_S", 1800))
    if value <= 0:
        raise ValueError(f"SHARED_PG_TIMEOUT_S must be > 0, got {value}")
    return value


def init_distributed(device: str | torch.device | None = None) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); else world size 1.

    Backend: nccl on CUDA, gloo on CPU. Idempotent: returns the current group if already set up.
    """
    dev = default_device(device)
    env_world = int(os.environ.get("WORLD_SIZE", 1))
    if env_world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo",
                                timeout=timedelta(seconds=process_group_timeout_s()))
    return DistInfo(rank=get_rank(), local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                    world_size=get_world_size(), device=dev)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_slice(global_batch_size: int, rank: int, world_size: int) -> slice:
    """Rows of a global batch that belong to `rank` (contiguous, equal shares)."""
    if global_batch_size % world_size:
        raise ValueError(f"global batch {global_batch_size} does not split over {world_size} ranks")
    per = global_batch_size // world_size
    return slice(rank * per, (rank + 1) * per)

# ---------------------------------------------------------------------------------------------
# parallelism
# ---------------------------------------------------------------------------------------------


BlocksSpec = Sequence[nn.Module] | Callable[[nn.Module], Iterable[nn.Module]] | None


def resolve_blocks(model: nn.Module, blocks: BlocksSpec = None) -> list[nn.Module]:
    """Modules to shard one by one: `blocks` (a list, or a callable of the model), else the
    model's `blocks` attribute (e.g. an nn.ModuleList of transformer layers)."""
    if callable(blocks) and not isinstance(blocks, nn.Module):
        found = list(blocks(model))
    elif blocks is not None:
        found = list(blocks)
    else:
        found = list(getattr(model, "blocks", None) or [])
    if not found:
        raise ValueError("FSDP needs the block modules to shard: pass blocks=[...] or a callable "
                         "model -> modules, or give the model a `blocks` attribute")
    return found


def apply_activation_checkpointing(model: nn.Module, blocks: BlocksSpec = None) -> list[nn.Module]:
    """Recompute each block in backward instead of keeping its activations (in place: each block's
    ``forward`` becomes a non-reentrant ``torch.utils.checkpoint`` of the original, so state_dict names
    do not change). Apply before parallelism. Returns the blocks it wrapped. A transformers model
    (or a peft model around one) without explicit ``blocks`` uses its own
    ``gradient_checkpointing_enable`` instead (returns [])."""
    if blocks is None and getattr(model, "blocks", None) is None and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return []
    found = resolve_blocks(model, blocks)
    for block in found:
        if getattr(block, "_activation_checkpointed", False):
            continue
        original = block.forward

        def checkpointed(*args, _forward=original, **kwargs):
            return torch.utils.checkpoint.checkpoint(_forward, *args, use_reentrant=False, **kwargs)

        block.forward = checkpointed
        block._activation_checkpointed = True
    return found


def has_meta_parameters(model: nn.Module) -> bool:
    """Whether the model was built on the meta device (shapes only, no storage)."""
    return any(t.is_meta for t in list(model.parameters()) + list(model.buffers()))


def materialize(model: nn.Module, device: torch.device) -> nn.Module:
    """Give a meta-device model storage on ``device`` and initialise it with its ``reset_parameters()``
    (weights and non-persistent tables). Under FSDP2, call it after sharding: each rank then
    allocates and initialises only its shards. Every rank must be seeded alike."""
    if not hasattr(model, "reset_parameters"):
        raise TypeError(f"{type(model).__name__} was built on the meta device but has no reset_parameters() "
                        "to initialise it after materialisation")
    tied = [(m, n, p) for m in model.modules() for n, p in m.named_parameters(recurse=False)]
    model.to_empty(device=device)
    # to_empty gives each module its own new Parameter: tie the ones that were shared again
    # (e.g. a language model's input embedding and output head)
    first: dict[int, nn.Parameter] = {}
    for m, n, p in tied:
        if id(p) in first:
            setattr(m, n, first[id(p)])
        else:
            first[id(p)] = getattr(m, n)
    with torch.no_grad():
        model.reset_parameters()
    return model


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor] | None:
    """The model's whole state dict, on CPU, on rank 0 (None on the other ranks). Under FSDP2 the shards
    are gathered, a collective every rank must enter; an unsharded model gives its own tensors. For saving
    or exporting a trained model from inside a launched job."""
    if is_fsdp(model) and get_world_size() > 1:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return state if get_rank() == 0 else None
    if get_rank() != 0:
        return None
    return {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}


def _broadcast_from_rank0(model: nn.Module) -> None:
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)


def apply_parallelism(model: nn.Module, parallelism: str, *, blocks: BlocksSpec = None,
                      device: torch.device | None = None, bf16_params: bool = False,
                      param_dtype: torch.dtype | None = None, compile: bool = False,
                      compile_dynamic: bool | None = None,
                      ddp_kwargs: dict | None = None) -> nn.Module:
    """Wrap `model` (on its device, or on the meta device) for data parallel training; return the
    module to call forward on. world size 1 or parallelism "none": the model itself. A meta-device
    model is materialised on `device` (see `materialize`): after sharding under FSDP, before
    wrapping otherwise.

    "ddp": DistributedDataParallel(model). "fsdp": FSDP2 in place (fully_shard on each block,
    then the root; the returned object is `model`, now an FSDPModule). "fsdp_grad_op": the same
    with reshard_after_forward=False (ZeRO-2). `param_dtype` (the autocast dtype of bf16 / fp16
    runs; `bf16_params` is param_dtype=torch.bfloat16) makes FSDP gather parameters in that dtype
    and reduce gradients in fp32 (Composer's FSDP mixed_precision "DEFAULT"). `compile` applies
    torch.compile in place (Module.compile, so state_dict names are unchanged): to the wrapped
    module, or for FSDP to each block before it is sharded; `compile_dynamic` is torch.compile's
    `dynamic` (TrainConfig.compile_dynamic).
    """
    if parallelism not in PARALLELISMS:
        raise ValueError(f"parallelism={parallelism!r} is not valid; choose one of {list(PARALLELISMS)}")
    meta = has_meta_parameters(model)
    if meta and device is None:
        raise ValueError("a model on the meta device needs the device to materialise it on")
    device = device or next(model.parameters()).device
    if meta and (parallelism not in SHARDED_PARALLELISMS or get_world_size() == 1):
        materialize(model, device)            # unsharded: every rank holds the whole model anyway
        meta = False
    if parallelism == "none" or get_world_size() == 1:
        if compile:
            model.compile(dynamic=compile_dynamic)
        return model
    if parallelism == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [device.index] if device.type == "cuda" else None
        wrapped = DDP(model, device_ids=ids, **(ddp_kwargs or {}))
        if compile:
            wrapped.compile(dynamic=compile_dynamic)
        return wrapped
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    param_dtype = param_dtype or (torch.bfloat16 if bf16_params else None)
    mp = (MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
          if param_dtype is not None else MixedPrecisionPolicy())
    # None: FSDP2's default (reshard each block after its forward, keep the root unsharded)
    reshard = False if parallelism == "fsdp_grad_op" else None
    if not meta:
        _broadcast_from_rank0(model)
    for block in resolve_blocks(model, blocks):
        if compile:
            block.compile(dynamic=compile_dynamic)
        fully_shard(block, mp_policy=mp, reshard_after_forward=reshard)
    fully_shard(model, mp_policy=mp, reshard_after_forward=reshard)
    if meta:                                  # each rank allocates and initialises its own shards only
        materialize(model, device)
    return model


def is_fsdp(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule
    return isinstance(model, FSDPModule)


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside a DDP wrapper (FSDP2 and Module.compile() work in place)."""
    return getattr(model, "module", model)
