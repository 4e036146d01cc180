"""The shared trainer: one loop for every model family, with schedules, checkpoints, metrics and
scale-out on torchrun (DDP / FSDP2). See shared/train/README.md."""
from shared.utils.runtime import seed_everything  # re-exported: the one definition is in shared.utils

from .checkpoint import CheckpointError, latest_checkpoint, list_checkpoints, load_model_weights, verify_checkpoint
from .config import TrainConfig
from .data import ResumableBatches
from .distributed import DistInfo, apply_parallelism, init_distributed, rank_slice
from .launch import build_torchrun_command, launch, run_rdzv_id, write_sbatch
from .metrics import History, read_metrics
from .optim import LionW, build_optimizer
from .runner import run_training
from .schedules import interpolate, lr_multiplier
from .throughput import PEAK_FLOPS, mfu, peak_flops
from .trainer import Trainer

__all__ = [
    "CheckpointError", "DistInfo", "History", "LionW", "PEAK_FLOPS", "ResumableBatches",
    "TrainConfig", "Trainer", "apply_parallelism", "build_optimizer", "build_torchrun_command",
    "init_distributed", "interpolate", "latest_checkpoint", "launch", "list_checkpoints",
    "load_model_weights", "lr_multiplier", "mfu", "peak_flops", "rank_slice", "read_metrics",
    "run_rdzv_id", "run_training", "seed_everything", "verify_checkpoint", "write_sbatch",
]
