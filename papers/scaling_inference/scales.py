"""Scale presets of the scaling_inference notebooks (plain literals; notebooks override keys).

analytic:  every scale computes the same numbers (the paper's formulas); larger scales only draw finer
           curves.
empirical: builds into empirical.EmpiricalSpec (a GridConfig plus the analysis thresholds and the
           smoke-scale corpora). smoke: one CPU thread, about 2.5 minutes of training; small: one GPU,
           the same tiny sizes to 1000 tokens/param on all offline corpora (both: non-embedding N, held-out
           loss); full: the paper's grid (the authors' trainingresults.csv) on data_dir, total N and the
           smoothed final training loss, as the paper counts them.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.experiment import NotebookPresets
from shared.utils.config import StrictConfig

from .empirical import EmpiricalSpec


@dataclass
class AnalyticSpec(StrictConfig):
    """analytic: x-ranges of the curves, the request split, the quality levels drawn, the coefficient
    sets (shared.scaling.COEFFICIENTS) and hardware preset (shared.scaling.HARDWARE_PRESETS)."""
    inference_tokens: tuple[float, float]
    requests: tuple[float, float]
    input_tokens_per_request: int
    output_tokens_per_request: int
    quality_params: tuple[float, ...]
    coefficients: str
    extension_coefficients: str
    hardware: str
    grid_points: int


# ------------------------------------------------------------------------------------------ analytic
ANALYTIC_BASE = {"inference_tokens": [1e8, 1e15],            # x-range of the FLOP-ratio curves (tokens)
                 "requests": [1e6, 1e13],                    # x-range of the cost-ratio curves (requests)
                 "input_tokens_per_request": 70, "output_tokens_per_request": 215,   # paper §3 (LMSYS averages)
                 "quality_params": [7e9, 13e9, 30e9, 70e9],  # "Chinchilla-<N> quality" levels drawn
                 "coefficients": "hoffmann", "extension_coefficients": "besiroglu", "hardware": "paper"}
ANALYTIC = {"smoke": ANALYTIC_BASE | {"grid_points": 120}, "small": ANALYTIC_BASE | {"grid_points": 400},
            "full": ANALYTIC_BASE | {"grid_points": 1000}}


# ----------------------------------------------------------------------------------------- empirical
def size(name, n_layer, d_model, n_head, global_batch_size, lr, ratios=None, micro_batch_size=None) -> dict:
    """One model size of the grid (empirical.ModelSize fields)."""
    return {"name": name, "n_layer": n_layer, "d_model": d_model, "n_head": n_head,
            "global_batch_size": global_batch_size, "lr": lr, "tokens_per_param": ratios,
            "micro_batch_size": micro_batch_size}


ANALYSIS = {"ref_ratio": 100.0,        # "typical" reference ratio; loss at the largest ratio is compared with it
            "typical_cutoff": 100.0,   # the ablation fits on ratios <= this, extrapolates above
            "fit_min_ratio": 10.0,     # fits use ratios >= this (the paper's smallest); below, runs are a few steps
            "noise_sigmas": 2.0}       # "beyond seed noise": more than this many seed standard deviations
TINY = {"seq_len": 64, "vocab_size": 512, "tokenizer_docs": 100, "param_count": "non_embedding",
        "tokens_per_param": [1, 3, 10, 30, 100, 300, 1000], "warmup_fraction": 0.1, "max_warmup_steps": 100,
        "alpha_f": 0.1, "eval_sequences": 128, "needs_data_dir": False}
# lr 1e-2 for every size: best of {3e-3, 1e-2, 3e-2} for xs at 100 and m at 30 tokens/param (pilot, not per ratio).
TINY_SIZES = [size("xs", 1, 16, 1, 16, 1e-2), size("s", 2, 16, 1, 16, 1e-2), size("m", 2, 24, 2, 32, 1e-2),
              size("l", 2, 32, 2, 32, 1e-2)]
EMPIRICAL = {
    # one CPU thread, ~2.5 minutes of training: each run below 7e11 FLOPs, so xs and s reach 1000 tokens/param,
    # m 100, l 30; 2 extra seeds at (xs, 100) and (s, 100) measure seed noise.
    "smoke": ANALYSIS | TINY | {"corpora": {"python_docs": None, "code_stdlib": None}, "sizes": TINY_SIZES,
                                "max_run_flops": 7e11, "noise_runs": [["xs", 100], ["s", 100]], "noise_seeds": 2},
    # one GPU: the same sizes, every size to 1000 tokens/param on a denser grid, all offline corpora (more unique
    # tokens than the largest run reads), noise at a typical and an extreme ratio.
    "small": ANALYSIS | TINY | {
        "corpora": {"python_docs": None, "code_stdlib": None, "gcide": None, "wordnet": None, "fortunes": None,
                    "debian_reference": None},
        "sizes": TINY_SIZES, "tokens_per_param": [1, 3, 10, 15, 20, 30, 50, 75, 100, 250, 500, 1000],
        "max_run_flops": None, "noise_runs": [["xs", 100], ["xs", 1000], ["m", 100], ["m", 1000]], "noise_seeds": 2},
    # the paper's grid (authors' CSV: sizes, ratios per size, batch sizes in sequences) on data_dir (tokenizer/ =
    # EleutherAI/gpt-neox-20b, train/, val/), seq 2048, N = total parameters, runs analysed by their smoothed final
    # training loss as the CSV is. Shapes: MPT-style, ours, with total parameter counts within 1.2% of the CSV's
    # (151M, 367M, 749M, 1.26B, 2.46B, 6.05B); peak LRs, warmup (100 batches), alpha_f 0.1, betas, weight decay,
    # clipping and precision from llm-foundry's MPT yamls (README ## Recipe).
    "full": ANALYSIS | {
        "seq_len": 2048, "param_count": "total", "fit_loss": "train_loss_smoothed",
        "arch": {"position": "alibi", "norm": "layernorm", "mlp": "gelu", "bias": False, "tie_embeddings": True},
        "warmup_fraction": 1.0, "max_warmup_steps": 100, "alpha_f": 0.1, "betas": [0.9, 0.95], "weight_decay": 0.0,
        "grad_clip": 1.0, "precision": "bf16", "log_every": 10,
        "eval_sequences": 1000, "eval_batch_size": 8, "parallelism": "fsdp", "checkpoint_every": 1000,
        "checkpoint_at_end": True, "needs_data_dir": True, "max_run_flops": None, "noise_runs": [["150M", 100]],
        "noise_seeds": 2,
        "sizes": [size("150M", 16, 768, 12, 160, 6e-4, [10, 15, 20, 30, 50, 75, 100, 250, 500, 1000, 5000, 10000], 4),
                  size("370M", 25, 1024, 16, 320, 3e-4, [10, 15, 20, 30, 50, 75, 100, 250, 500, 1000], 4),
                  size("750M", 24, 1536, 12, 480, 2.5e-4, [10, 15, 20, 30, 50, 75, 100, 250, 500], 4),
                  size("1.3B", 23, 2048, 16, 960, 2e-4, [10, 15, 20, 30, 50, 75, 100, 250], 4),
                  size("2.5B", 30, 2560, 20, 960, 1.6e-4, [10, 15, 20, 50, 100, 250, 500], 2),
                  size("6B", 33, 3840, 30, 960, 1.2e-4, [20], 2)]},
}

NOTEBOOKS = {
    "analytic": NotebookPresets(AnalyticSpec, ANALYTIC),
    "empirical": NotebookPresets(EmpiricalSpec, EMPIRICAL),
}
