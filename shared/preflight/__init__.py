"""Preflight: size every training run of a notebook's preset before launch (parameters, FLOPs, memory
per GPU, GPU-hours) and name every error a cluster would hit later (``python -m shared.preflight``).

- ``estimate``: a model's parameters, FLOPs and activations per sample (meta-device builds, traces);
- ``plan``: ``World``, ``TrainingRunPlan``, ``OptimizerPlan``, ``DataRequirement`` (what a paper's
  ``papers/<name>/preflight.py`` returns);
- ``memory``: peak bytes per GPU under DDP / FSDP, with and without activation checkpointing;
- ``gpus``: the cards (memory, bf16 peak);
- ``report``: ``preflight(paper, ...)``, ``check`` (raises), ``format_report``.
"""
from .estimate import ModelCost, bert_cost, gpt_cost, lora_params, traced_cost
from .gpus import GPU, GPUS, gpu
from .memory import MemoryBreakdown, memory_per_gpu
from .plan import DataRequirement, OptimizerPlan, TrainingRunPlan, World, optimizer_of, run_plan, scale_of
from .report import DEFAULT_MFU, HEADROOM, PreflightError, assess, check, format_report, preflight

__all__ = ["DEFAULT_MFU", "DataRequirement", "GPU", "GPUS", "HEADROOM", "MemoryBreakdown", "ModelCost",
           "OptimizerPlan", "PreflightError", "TrainingRunPlan", "World", "assess", "bert_cost", "check",
           "format_report", "gpt_cost", "gpu", "lora_params", "memory_per_gpu", "optimizer_of", "preflight",
           "run_plan", "scale_of", "traced_cost"]
