"""Scale-out on PyTorch's own engines: torchrun, DDP and FSDP2 (`fully_shard`).

Model files hold no distributed code; this module applies parallelism from outside.

One process (world size 1) runs in the caller's process, unwrapped. More processes are launched
with torchrun; inside each worker `init_distributed()` joins the process group (gloo on CPU,
nccl on CUDA) and `apply_parallelism(model, "ddp" | "fsdp", blocks=...)` wraps the model:

- "ddp": `DistributedDataParallel`; every rank holds the whole model and optimizer state.
- "fsdp": FSDP2; `fully_shard` on each block (e.g. transformer layers) and then on the root, so
  parameters, gradients and optimizer state are sharded and each block is gathered only while
  it runs. Rank 0's initial weights are broadcast first, so all ranks start from the same model.

Each rank draws its own slice of the global batch: the data sampler takes rank and world_size
(`rank_slice` gives the rows of a global batch that belong to a rank).

Launch commands (`build_torchrun_command` builds them; `launch` runs one):

    # one node, 8 GPUs (torchrun picks a free port)
    python -m torch.distributed.run --standalone --nproc-per-node 8 -m shared.train.worker ...
    # several nodes: the same command on every node, c10d rendezvous on one host:port
    python -m torch.distributed.run --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d \
        --rdzv-endpoint node0:29500 --rdzv-id myrun -m shared.train.worker ...

SLURM (one task per node; torchrun starts the per-GPU workers):

    #SBATCH --nodes=4 --ntasks-per-node=1 --gpus-per-node=8
    head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
    srun python -m torch.distributed.run --nnodes "$SLURM_NNODES" --nproc-per-node 8 \
        --rdzv-backend c10d --rdzv-endpoint "$head:29500" --rdzv-id "$SLURM_JOB_ID" \
        -m shared.train.worker --entry-point papers.x.train:main --config cfg.json --run-dir runs/x

The run_dir must be on a file system every node sees (checkpoints are written by all ranks).
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from shared.utils.runtime import default_device  # noqa: F401 (re-exported)

from .config import PARALLELISMS

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


def init_distributed(device: str | torch.device | None = None) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); else world size 1.

    Backend: nccl on CUDA, gloo on CPU. Idempotent: returns the current group if already set up.
    """
    dev = default_device(device)
    env_world = int(os.environ.get("WORLD_SIZE", 1))
    if env_world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
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


def _broadcast_from_rank0(model: nn.Module) -> None:
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)


def apply_parallelism(model: nn.Module, parallelism: str, *, blocks: BlocksSpec = None,
                      device: torch.device | None = None, bf16_params: bool = False,
                      compile: bool = False, ddp_kwargs: dict | None = None) -> nn.Module:
    """Wrap `model` (already on its device) for data parallel training; return the module to
    call forward on. world size 1 or parallelism "none": the model itself.

    "ddp": DistributedDataParallel(model). "fsdp": FSDP2 in place (fully_shard on each block,
    then the root; the returned object is `model`, now an FSDPModule). `bf16_params` (CUDA bf16
    runs) makes FSDP gather parameters in bf16 and reduce gradients in fp32. `compile` applies
    torch.compile in place (Module.compile, so state_dict names are unchanged): to the wrapped
    module, or for FSDP to each block before it is sharded.
    """
    if parallelism not in PARALLELISMS:
        raise ValueError(f"parallelism={parallelism!r} is not valid; choose one of {list(PARALLELISMS)}")
    if parallelism == "none" or get_world_size() == 1:
        if compile:
            model.compile()
        return model
    device = device or next(model.parameters()).device
    if parallelism == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [device.index] if device.type == "cuda" else None
        wrapped = DDP(model, device_ids=ids, **(ddp_kwargs or {}))
        if compile:
            wrapped.compile()
        return wrapped
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    mp = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
          if bf16_params else MixedPrecisionPolicy())
    _broadcast_from_rank0(model)
    for block in resolve_blocks(model, blocks):
        if compile:
            block.compile()
        fully_shard(block, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    return model


def is_fsdp(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule
    return isinstance(model, FSDPModule)


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside a DDP wrapper (FSDP2 and Module.compile() work in place)."""
    return getattr(model, "module", model)

# ---------------------------------------------------------------------------------------------
# torchrun
# ---------------------------------------------------------------------------------------------


def build_torchrun_command(target: str, args: Sequence[str] = (), *, nproc_per_node: int = 1,
                           nnodes: int = 1, module: bool = False,
                           rdzv_endpoint: str | None = None, rdzv_id: str = "shared-train",
                           max_restarts: int = 0) -> list[str]:
    """argv of `python -m torch.distributed.run ... target args`.

    target: a script path, or a module name with module=True. nnodes == 1 without an endpoint:
    `--standalone` (local rendezvous on a free port). Otherwise c10d rendezvous at
    `rdzv_endpoint` ("host:port"), which every node must reach.
    """
    if nproc_per_node < 1 or nnodes < 1:
        raise ValueError("nproc_per_node and nnodes must be >= 1")
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    if nnodes == 1 and rdzv_endpoint is None:
        cmd += ["--standalone"]
    else:
        if rdzv_endpoint is None:
            raise ValueError("multi-node runs need rdzv_endpoint='host:port' (a host every node reaches)")
        cmd += ["--nnodes", str(nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint,
                "--rdzv-id", rdzv_id]
    cmd += ["--nproc-per-node", str(nproc_per_node), "--max-restarts", str(max_restarts)]
    if module:
        cmd += ["-m"]
    return cmd + [target, *map(str, args)]


def launch(target: str, args: Sequence[str] = (), *, nproc_per_node: int = 1, nnodes: int = 1,
           module: bool = False, rdzv_endpoint: str | None = None, rdzv_id: str = "shared-train",
           env: dict[str, str] | None = None, log_file: str | Path | None = None,
           check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `target` under torchrun on this node and wait. On other nodes of a multi-node run, start
    the same command (see the module docstring for SLURM).

    The child env gets OMP_NUM_THREADS=1 unless set, and this repository on PYTHONPATH. Output
    goes to `log_file` if given (else captured); with check, a failure raises RuntimeError with
    the output's tail.
    """
    cmd = build_torchrun_command(target, args, nproc_per_node=nproc_per_node, nnodes=nnodes,
                                 module=module, rdzv_endpoint=rdzv_endpoint, rdzv_id=rdzv_id)
    child_env = dict(os.environ)
    child_env.setdefault("OMP_NUM_THREADS", "1")
    repo_root = str(Path(__file__).resolve().parents[2])
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (repo_root, child_env.get("PYTHONPATH")) if p)
    child_env.update(env or {})
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "w") as f:
            proc = subprocess.run(cmd, env=child_env, stdout=f, stderr=subprocess.STDOUT,
                                  timeout=timeout)
        output = Path(log_file).read_text()
    else:
        proc = subprocess.run(cmd, env=child_env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)
        output = proc.stdout
    if check and proc.returncode != 0:
        raise RuntimeError(f"torchrun exited with {proc.returncode}: {' '.join(cmd)}\n"
                           f"--- output tail ---\n{output[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, output, None)
