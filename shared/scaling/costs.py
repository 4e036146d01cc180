"""Dollar cost of training and serving a model, and the lifetime cost-optimal model (arXiv 2401.00448, §3).

Each FLOP is priced at its hardware's hourly price divided by the FLOPs that hardware delivers in an hour:
peak FLOP/s for the data type (quantisation raises the peak) times the model FLOPs utilisation (MFU) of
the phase. Training, prefill (input tokens) and generation (output tokens) each have their own MFU:

    cost = 6·N·D_tr · p_tr / (3600·peak_tr·MFU_tr)
         + 2·N·(D_in / MFU_in + D_out / MFU_out) · p_inf / (3600·peak_inf)

Minimising it at a fixed loss is the FLOPs problem with inference weight
w = 2·p_inf/peak_inf·(D_in/MFU_in + D_out/MFU_out) / (6·p_tr/(peak_tr·MFU_tr)) (see optimal.lifetime_optimal).

Constants: peak FLOP/s and default hourly prices are those of the authors' code
(nikhilsardana/beyond-chinchilla, cost_calculator.py); the paper cites Lambda Labs (2023) for A100
prices. The `paper` hardware preset (train on A100-80GB in BF16 at 50% MFU; serve on A100-40GB in INT8 at
50% MFU for input tokens and 1% for output tokens) and the request shape of 70 input + 215 output tokens
(the LMSYS-Chat-1M averages, Zheng et al. 2023) are the paper's cost-figure settings; the same MFUs and
request shape are the defaults of the authors' cost_optimal.py, whose default GPU is the H100 (`repo-h100`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .laws import ChinchillaCoefficients, _scalar, get_coefficients
from .optimal import (
    INFERENCE_FLOPS_PER_PARAM_TOKEN,
    TRAIN_FLOPS_PER_PARAM_TOKEN,
    Allocation,
    chinchilla_for_loss,
    lifetime_optimal,
    total_flops,
)

SECONDS_PER_HOUR = 3600.0

# Dense peak FLOP/s by data type, and the default price in dollars per GPU-hour.
GPU_PEAK_FLOPS: dict[str, dict[str, float]] = {
    "A100-40GB": {"bf16": 3.12e14, "fp16": 3.12e14, "int8": 6.24e14},
    "A100-80GB": {"bf16": 3.12e14, "fp16": 3.12e14, "int8": 6.24e14},
    "H100": {"bf16": 9.89e14, "fp16": 9.89e14, "fp8": 1.978e15, "int8": 1.978e15},
}
GPU_PRICE_PER_HOUR: dict[str, float] = {"A100-40GB": 1.10, "A100-80GB": 1.50, "H100": 2.00}

# Average tokens per request in LMSYS-Chat-1M (69.5 prompt, 214.5 response; Zheng et al. 2023), as rounded
# by the paper and its code.
INPUT_TOKENS_PER_REQUEST = 70
OUTPUT_TOKENS_PER_REQUEST = 215


@dataclass(frozen=True)
class Hardware:
    """Where and how efficiently training and inference run. Prices None: the GPU's default price."""
    train_gpu: str = "A100-80GB"
    train_dtype: str = "bf16"
    train_mfu: float = 0.5
    train_price_per_hour: float | None = None
    inference_gpu: str = "A100-40GB"
    inference_dtype: str = "int8"
    input_mfu: float = 0.5       # prefill: all input tokens of a request in parallel
    output_mfu: float = 0.01     # generation: one token at a time, memory-bandwidth bound
    inference_price_per_hour: float | None = None

    def __post_init__(self):
        for phase in ("train", "inference"):
            gpu, dtype = getattr(self, f"{phase}_gpu"), getattr(self, f"{phase}_dtype")
            if gpu not in GPU_PEAK_FLOPS:
                raise ValueError(f"unknown {phase} GPU {gpu!r}; valid: {', '.join(GPU_PEAK_FLOPS)}")
            if dtype not in GPU_PEAK_FLOPS[gpu]:
                raise ValueError(f"{gpu} has no {dtype!r} peak; valid: {', '.join(GPU_PEAK_FLOPS[gpu])}")
            price = getattr(self, f"{phase}_price_per_hour")
            if price is not None and not (math.isfinite(price) and price > 0):
                raise ValueError(f"{phase} price per hour must be > 0; got {price!r}")
        for name in ("train_mfu", "input_mfu", "output_mfu"):
            mfu = getattr(self, name)
            if not (math.isfinite(mfu) and 0 < mfu <= 1):
                raise ValueError(f"{name} must be in (0, 1]; got {mfu!r}")

    @property
    def train_price(self) -> float:
        return GPU_PRICE_PER_HOUR[self.train_gpu] if self.train_price_per_hour is None else self.train_price_per_hour

    @property
    def inference_price(self) -> float:
        return (GPU_PRICE_PER_HOUR[self.inference_gpu] if self.inference_price_per_hour is None
                else self.inference_price_per_hour)

    @property
    def dollars_per_train_flop(self) -> float:
        """Dollars per model FLOP of training, utilisation included."""
        peak = GPU_PEAK_FLOPS[self.train_gpu][self.train_dtype]
        return self.train_price / (SECONDS_PER_HOUR * peak * self.train_mfu)

    @property
    def dollars_per_peak_inference_flop(self) -> float:
        """Dollars per inference FLOP at 100% utilisation (divide by the phase's MFU)."""
        return self.inference_price / (SECONDS_PER_HOUR * GPU_PEAK_FLOPS[self.inference_gpu][self.inference_dtype])

    def as_dict(self) -> dict:
        return asdict(self) | {"train_price_per_hour": self.train_price, "inference_price_per_hour": self.inference_price}


HARDWARE_PRESETS: dict[str, Hardware] = {
    "paper": Hardware(),
    "repo-h100": Hardware(train_gpu="H100", train_dtype="bf16", inference_gpu="H100", inference_dtype="fp8"),
}


def get_hardware(hardware: str | Hardware = "paper") -> Hardware:
    if isinstance(hardware, Hardware):
        return hardware
    try:
        return HARDWARE_PRESETS[hardware]
    except (KeyError, TypeError):
        raise ValueError(f"unknown hardware preset {hardware!r}; valid: {', '.join(HARDWARE_PRESETS)}") from None


@dataclass(frozen=True)
class InferenceDemand:
    """Lifetime inference tokens, split into input (prefill) and output (generated) tokens."""
    input_tokens: np.ndarray | float
    output_tokens: np.ndarray | float

    def __post_init__(self):
        for name in ("input_tokens", "output_tokens"):
            x = np.asarray(getattr(self, name), dtype=float)
            if not np.all(np.isfinite(x)) or np.any(x < 0):
                raise ValueError(f"{name} must be finite and >= 0; got {x.tolist()}")

    @property
    def total_tokens(self):
        return _scalar(np.asarray(self.input_tokens, dtype=float) + np.asarray(self.output_tokens, dtype=float))

    @classmethod
    def from_requests(cls, requests, input_per_request: float = INPUT_TOKENS_PER_REQUEST,
                      output_per_request: float = OUTPUT_TOKENS_PER_REQUEST) -> InferenceDemand:
        requests = np.asarray(requests, dtype=float)
        _check_request_shape(input_per_request, output_per_request)
        return cls(_scalar(requests * input_per_request), _scalar(requests * output_per_request))

    @classmethod
    def from_tokens(cls, tokens, input_per_request: float = INPUT_TOKENS_PER_REQUEST,
                    output_per_request: float = OUTPUT_TOKENS_PER_REQUEST) -> InferenceDemand:
        """Split a token total in the proportion input_per_request : output_per_request."""
        _check_request_shape(input_per_request, output_per_request)
        return cls.from_requests(np.asarray(tokens, dtype=float) / (input_per_request + output_per_request),
                                 input_per_request, output_per_request)


def _check_request_shape(input_per_request, output_per_request) -> None:
    if not (input_per_request >= 0 and output_per_request >= 0 and input_per_request + output_per_request > 0
            and math.isfinite(input_per_request + output_per_request)):
        raise ValueError(f"tokens per request must be >= 0 and not both 0; got input={input_per_request!r}, "
                         f"output={output_per_request!r}")


def training_cost(params, train_tokens, hardware: str | Hardware = "paper"):
    """Dollars to train an N-parameter model on D_tr tokens."""
    hw = get_hardware(hardware)
    return _scalar(TRAIN_FLOPS_PER_PARAM_TOKEN * np.asarray(params, dtype=float)
                   * np.asarray(train_tokens, dtype=float) * hw.dollars_per_train_flop)


def inference_cost(params, demand: InferenceDemand, hardware: str | Hardware = "paper"):
    """Dollars to serve ``demand`` with an N-parameter model."""
    hw = get_hardware(hardware)
    mfu_weighted = (np.asarray(demand.input_tokens, dtype=float) / hw.input_mfu
                    + np.asarray(demand.output_tokens, dtype=float) / hw.output_mfu)
    return _scalar(INFERENCE_FLOPS_PER_PARAM_TOKEN * np.asarray(params, dtype=float) * mfu_weighted
                   * hw.dollars_per_peak_inference_flop)


def total_cost(params, train_tokens, demand: InferenceDemand, hardware: str | Hardware = "paper"):
    return _scalar(np.asarray(training_cost(params, train_tokens, hardware))
                   + np.asarray(inference_cost(params, demand, hardware)))


def cost_optimal(loss, demand: InferenceDemand, hardware: str | Hardware = "paper",
                 coefficients: str | ChinchillaCoefficients = "hoffmann") -> Allocation:
    """The (N, D_tr) of least lifetime dollars at ``loss`` serving ``demand`` (arXiv 2401.00448, §3)."""
    hw = get_hardware(hardware)
    per_param_inference = inference_cost(1.0, demand, hw)              # dollars per parameter
    per_param_token_training = training_cost(1.0, 1.0, hw)             # dollars per parameter-token
    return lifetime_optimal(loss, np.asarray(per_param_inference) / per_param_token_training, coefficients)


@dataclass(frozen=True)
class CostComparison:
    """The cost-optimal model against the Chinchilla-optimal one of the same loss, serving the same demand."""
    optimal: Allocation
    chinchilla: Allocation
    demand: InferenceDemand
    hardware: Hardware

    def _cost(self, model: Allocation, part: str = "total"):
        if part == "train":
            return training_cost(model.params, model.train_tokens, self.hardware)
        if part == "inference":
            return inference_cost(model.params, self.demand, self.hardware)
        return total_cost(model.params, model.train_tokens, self.demand, self.hardware)

    @property
    def total_cost(self):
        return self._cost(self.optimal)

    @property
    def chinchilla_total_cost(self):
        return self._cost(self.chinchilla)

    @property
    def train_cost(self):
        return self._cost(self.optimal, "train")

    @property
    def inference_cost(self):
        return self._cost(self.optimal, "inference")

    @property
    def chinchilla_train_cost(self):
        return self._cost(self.chinchilla, "train")

    @property
    def chinchilla_inference_cost(self):
        return self._cost(self.chinchilla, "inference")

    @property
    def saving(self):
        """Fraction of the Chinchilla model's lifetime dollars saved."""
        return _scalar(1.0 - np.asarray(self.total_cost) / np.asarray(self.chinchilla_total_cost))

    @property
    def total_flops(self):
        return total_flops(self.optimal.params, self.optimal.train_tokens, self.demand.total_tokens)

    @property
    def chinchilla_total_flops(self):
        return total_flops(self.chinchilla.params, self.chinchilla.train_tokens, self.demand.total_tokens)


def compare_cost(loss, demand: InferenceDemand, hardware: str | Hardware = "paper",
                 coefficients: str | ChinchillaCoefficients = "hoffmann") -> CostComparison:
    """Lifetime-cost-optimal vs Chinchilla-optimal at ``loss`` (broadcast with the demand's arrays)."""
    c, hw = get_coefficients(coefficients), get_hardware(hardware)
    optimal = cost_optimal(loss, demand, hw, c)
    loss_b = np.broadcast_to(np.asarray(loss, dtype=float), np.shape(optimal.params))
    return CostComparison(optimal=optimal, chinchilla=chinchilla_for_loss(_scalar(loss_b), c), demand=demand,
                          hardware=hw)


__all__ = ["GPU_PEAK_FLOPS", "GPU_PRICE_PER_HOUR", "INPUT_TOKENS_PER_REQUEST", "OUTPUT_TOKENS_PER_REQUEST", "Hardware",
           "HARDWARE_PRESETS", "get_hardware", "InferenceDemand", "training_cost", "inference_cost", "total_cost",
           "cost_optimal", "CostComparison", "compare_cost"]
