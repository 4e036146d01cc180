"""Worked examples printed by Sardana et al. (arXiv 2401.00448) and its code's README, as checkable data.

Each PrintedNumber says how the source printed a number (``rule``) so that ours can be rounded the same
way and compared exactly: "dp:K" = rounded to K decimals, "sig:K" = K significant figures. The numbers
are the sources' text; everything in ``compute`` is derived from the scaling law by shared.scaling.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

from shared.scaling.costs import Hardware, InferenceDemand, compare_cost, total_cost, training_cost
from shared.scaling.laws import get_coefficients
from shared.scaling.optimal import chinchilla_for_params, compare_flops, quality_loss, total_flops

PAPER = "Sardana, Portes, Doubov, Frankle 2024, arXiv 2401.00448"
REPO_README = "github.com/nikhilsardana/beyond-chinchilla README.md"


@dataclass(frozen=True)
class PrintedNumber:
    quantity: str        # key of the example's computed quantities
    printed: float       # the number as the source prints it
    rule: str            # "dp:K" or "sig:K"
    label: str           # what the number is, in words


@dataclass(frozen=True)
class WorkedExample:
    id: str
    source: str
    statement: str
    numbers: tuple[PrintedNumber, ...]
    compute: Callable[[], dict]      # -> {quantity: value} computed by this package
    note: str = ""


def as_printed(value: float, rule: str) -> float:
    """``value`` rounded the way ``rule`` says the source printed it."""
    kind, _, digits = rule.partition(":")
    k = int(digits)
    if kind == "dp":
        return round(float(value), k)
    if kind == "sig":
        return float(f"{float(value):.{k - 1}e}")
    raise ValueError(f"unknown rounding rule {rule!r}; use 'dp:K' or 'sig:K'")


def matches(value: float, number: PrintedNumber) -> bool:
    return as_printed(value, number.rule) == as_printed(number.printed, number.rule)


def _flops_example(quality_params: float | None, inference_tokens: float, loss: float | None = None) -> Callable[[], dict]:
    def compute() -> dict:
        target = quality_loss(quality_params) if loss is None else loss
        cmp = compare_flops(target, inference_tokens, "hoffmann")
        return {"loss": target, "params": cmp.optimal.params, "params_billions": cmp.optimal.params / 1e9,
                "train_tokens": cmp.optimal.train_tokens,
                "train_tokens_ratio": cmp.optimal.train_tokens / cmp.chinchilla.train_tokens,
                "params_percent": 100 * cmp.optimal.params / cmp.chinchilla.params,
                "train_tokens_percent": 100 * cmp.optimal.train_tokens / cmp.chinchilla.train_tokens,
                "flops_percent": 100 * cmp.total_flops / cmp.chinchilla_total_flops,
                "saved_flops": cmp.saved_flops, "saving_percent": 100 * cmp.saving,
                "chinchilla_params": cmp.chinchilla.params, "chinchilla_train_tokens": cmp.chinchilla.train_tokens,
                "total_flops": cmp.total_flops, "chinchilla_total_flops": cmp.chinchilla_total_flops}
    return compute


def _readme_cost_optimal() -> dict:
    hw = Hardware(train_gpu="A100-80GB", train_price_per_hour=1.40, train_mfu=0.5, inference_gpu="A100-40GB",
                  inference_dtype="int8", inference_price_per_hour=0.60, input_mfu=0.4, output_mfu=0.2)
    cmp = compare_cost(1.947, InferenceDemand.from_requests(1e10, 1000, 250), hw, "hoffmann")
    return {"params": cmp.optimal.params, "train_tokens": cmp.optimal.train_tokens,
            "params_percent": 100 * cmp.optimal.params / cmp.chinchilla.params,
            "train_tokens_percent": 100 * cmp.optimal.train_tokens / cmp.chinchilla.train_tokens,
            "cost_percent": 100 * cmp.total_cost / cmp.chinchilla_total_cost}


def _readme_cost_calculator() -> dict:
    # cost_calculator.py builds its per-FLOP prices without the --train_gpu_cost / --inference_gpu_cost it
    # parses, so the README's printed output is at the default $2.00/h (H100) and $1.10/h (A100-40GB).
    hw = Hardware(train_gpu="H100", inference_gpu="A100-40GB", inference_dtype="int8")
    model = chinchilla_for_params(30e9, "hoffmann")
    demand = InferenceDemand.from_requests(1e9, 500, 100)
    return {"train_tokens": model.train_tokens, "loss": model.loss,
            "train_cost": training_cost(model.params, model.train_tokens, hw), "train_flops": model.train_flops,
            "total_flops": total_flops(model.params, model.train_tokens, demand.total_tokens),
            "total_cost": total_cost(model.params, model.train_tokens, demand, hw)}


PAPER_EXAMPLES: tuple[WorkedExample, ...] = (
    WorkedExample(
        "fig1", f"{PAPER}, Figure 1 caption",
        "A developer seeking a 13B model who expects 2T tokens of inference demand can cut total compute by "
        "1.7e22 FLOPs (17%) by instead training a 7B model on more data.",
        (PrintedNumber("params_billions", 7, "dp:0", "parameters of the inference-optimal model (B)"),
         PrintedNumber("saved_flops", 1.7e22, "sig:2", "FLOPs saved"),
         PrintedNumber("saving_percent", 17, "dp:0", "share of total FLOPs saved (%)")),
        _flops_example(13e9, 2e12)),
    WorkedExample(
        "sec2_7b", f"{PAPER}, Section 2 (discussion of the FLOP-ratio figure; wording recalled, not checked against the PDF here)",
        "For a Chinchilla-7B-quality model with an inference demand of 1e11 tokens, the compute-optimal choice "
        "is a 6B-parameter model trained on 1.18x the original data.",
        (PrintedNumber("params_billions", 6, "dp:0", "parameters of the inference-optimal model (B)"),
         PrintedNumber("train_tokens_ratio", 1.18, "dp:2", "training tokens relative to Chinchilla-7B")),
        _flops_example(7e9, 1e11)),
    WorkedExample(
        "sec2_30b", f"{PAPER}, Section 2 (discussion of the FLOP-ratio figure; wording recalled, not checked against the PDF here)",
        "A developer who expects a 30B-Chinchilla-quality model to see 1e13 inference tokens can cut total FLOPs "
        "by 28% by training a 13.6B model on 2.84x the data.",
        (PrintedNumber("saving_percent", 28, "dp:0", "share of total FLOPs saved (%)"),
         PrintedNumber("params_billions", 13.6, "dp:1", "parameters of the inference-optimal model (B)"),
         PrintedNumber("train_tokens_ratio", 2.84, "dp:2", "training tokens relative to Chinchilla-30B")),
        _flops_example(30e9, 1e13)),
)

REPO_EXAMPLES: tuple[WorkedExample, ...] = (
    WorkedExample(
        "readme_model_calculator", f"{REPO_README}, model_calculator.py example",
        "A 70B model trained on 1T tokens has loss 1.947.",
        (PrintedNumber("loss", 1.947, "dp:3", "predicted loss"),),
        lambda: {"loss": get_coefficients("hoffmann").loss(70e9, 1e12)}),
    WorkedExample(
        "readme_compute_optimal", f"{REPO_README}, compute_optimal.py example",
        "Loss 1.947 with 2e12 inference tokens: a 2.418e10-parameter model on 2.657e12 tokens; 70.96% of the "
        "parameters, 146.77% of the tokens and 95.22% of the FLOPs of the equal-quality Chinchilla model.",
        (PrintedNumber("params", 2.418e10, "sig:4", "parameters"),
         PrintedNumber("train_tokens", 2.657e12, "sig:4", "training tokens"),
         PrintedNumber("params_percent", 70.96, "dp:2", "% of Chinchilla parameters"),
         PrintedNumber("train_tokens_percent", 146.77, "dp:2", "% of Chinchilla tokens"),
         PrintedNumber("flops_percent", 95.22, "dp:2", "% of Chinchilla lifetime FLOPs")),
        _flops_example(None, 2e12, loss=1.947)),
    WorkedExample(
        "readme_cost_optimal", f"{REPO_README}, cost_optimal.py example",
        "Loss 1.947, 1e10 requests of 1000 input + 250 output tokens, training on A100-80GB at $1.40/h (50% MFU), "
        "INT8 inference on A100-40GB at $0.60/h (40% prefill, 20% decode MFU): a 2.053e10-parameter model on "
        "3.302e12 tokens; 60.23% of the parameters, 182.41% of the tokens, 88.76% of the cost of Chinchilla's.",
        (PrintedNumber("params", 2.053e10, "sig:4", "parameters"),
         PrintedNumber("train_tokens", 3.302e12, "sig:4", "training tokens"),
         PrintedNumber("params_percent", 60.23, "dp:2", "% of Chinchilla parameters"),
         PrintedNumber("train_tokens_percent", 182.41, "dp:2", "% of Chinchilla tokens"),
         PrintedNumber("cost_percent", 88.76, "dp:2", "% of Chinchilla lifetime cost")),
        _readme_cost_optimal),
    WorkedExample(
        "readme_cost_calculator", f"{REPO_README}, cost_calculator.py example",
        "A Chinchilla-optimal 30B model (1.556e12 tokens) trained on H100s and serving 1e9 requests of 500 + 100 "
        "tokens on INT8 A100-40GBs: train cost $3.146e5, train FLOPs 2.801e23, total FLOPs 3.161e23, total "
        "cost $6.378e5.",
        (PrintedNumber("train_tokens", 1.556e12, "sig:4", "training tokens"),
         PrintedNumber("train_cost", 3.146e5, "sig:4", "training cost ($)"),
         PrintedNumber("train_flops", 2.801e23, "sig:4", "training FLOPs"),
         PrintedNumber("total_flops", 3.161e23, "sig:4", "training + inference FLOPs"),
         PrintedNumber("total_cost", 6.378e5, "sig:4", "training + inference cost ($)")),
        _readme_cost_calculator,
        note="The README passes $1.50/h and $0.60/h, but cost_calculator.py ignores both flags; its printed numbers "
             "are at the default $2.00/h (H100) and $1.10/h (A100-40GB), which is what we compute with."),
)


def check(example: WorkedExample) -> list[dict]:
    """One row per printed number: the printed value, ours, ours rounded as printed, and whether they match."""
    ours = example.compute()
    return [{"example": example.id, "quantity": n.quantity, "label": n.label, "printed": n.printed,
             "ours": float(ours[n.quantity]), "ours_as_printed": as_printed(ours[n.quantity], n.rule),
             "rule": n.rule, "match": matches(ours[n.quantity], n), "source": example.source}
            for n in example.numbers]


__all__ = ["PrintedNumber", "WorkedExample", "PAPER_EXAMPLES", "REPO_EXAMPLES", "as_printed", "matches", "check"]
