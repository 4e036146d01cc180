"""Scaling laws and the model sizes they recommend.

- laws: the Chinchilla loss L(N, D) = E + A/N^alpha + B/D^beta and coefficient sets
  (`hoffmann` as used by Sardana et al. 2024, `hoffmann_tex`, `hoffmann_rounded`, `besiroglu`);
- optimal: Chinchilla (compute-optimal) allocations for a loss, a model size or a FLOP budget, and the
  lifetime optimum minimising 6·N·D_tr + 2·N·D_inf at a fixed loss (arXiv 2401.00448);
- costs: the same in dollars, with per-phase MFU, GPU prices and quantisation;
- cli: `python -m shared.scaling optimal ...`;
- fit (import it): fit the law to measured (N, D, loss) points, Hoffmann et al.'s Huber / L-BFGS procedure.

Pure arithmetic (layer 0: imports nothing else of ``shared``). The paper's worked examples, its
empirical grid of trained decoders and the extreme-ratio checks live in ``papers/scaling_inference/``.
"""
from .costs import (
                    GPU_PEAK_FLOPS,
                    GPU_PRICE_PER_HOUR,
                    HARDWARE_PRESETS,
                    CostComparison,
                    Hardware,
                    InferenceDemand,
                    compare_cost,
                    cost_optimal,
                    get_hardware,
                    inference_cost,
                    total_cost,
                    training_cost,
)
from .laws import COEFFICIENTS, ChinchillaCoefficients, get_coefficients
from .optimal import (
                    INFERENCE_FLOPS_PER_PARAM_TOKEN,
                    TRAIN_FLOPS_PER_PARAM_TOKEN,
                    Allocation,
                    FlopsComparison,
                    chinchilla_for_compute,
                    chinchilla_for_loss,
                    chinchilla_for_params,
                    compare_flops,
                    inference_optimal,
                    lifetime_optimal,
                    quality_loss,
                    total_flops,
)

__all__ = ["COEFFICIENTS", "ChinchillaCoefficients", "get_coefficients", "Allocation", "FlopsComparison",
           "TRAIN_FLOPS_PER_PARAM_TOKEN", "INFERENCE_FLOPS_PER_PARAM_TOKEN", "total_flops", "chinchilla_for_loss",
           "chinchilla_for_params", "chinchilla_for_compute", "quality_loss", "lifetime_optimal", "inference_optimal",
           "compare_flops", "GPU_PEAK_FLOPS", "GPU_PRICE_PER_HOUR", "HARDWARE_PRESETS", "Hardware", "get_hardware",
           "InferenceDemand", "training_cost", "inference_cost", "total_cost", "cost_optimal", "CostComparison",
           "compare_cost"]
