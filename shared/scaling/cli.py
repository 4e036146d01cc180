"""`python -m shared.scaling optimal (--quality-params N | --loss L) --inference-tokens T [...]`

Prints the lifetime-optimal model (FLOPs or dollars) beside the Chinchilla-optimal model of the same loss
serving the same demand; --json prints one JSON object. For --objective cost the inference tokens split
into input and output tokens in the proportion --input-tokens-per-request : --output-tokens-per-request
(default 70 : 215, the LMSYS-Chat-1M averages the paper uses). Bad input: a one-line reason on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys

from .costs import HARDWARE_PRESETS, INPUT_TOKENS_PER_REQUEST, OUTPUT_TOKENS_PER_REQUEST, InferenceDemand, compare_cost
from .laws import COEFFICIENTS, get_coefficients
from .optimal import INFERENCE_FLOPS_PER_PARAM_TOKEN, compare_flops, quality_loss

_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}


class _Parser(argparse.ArgumentParser):
    def error(self, message):   # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_number(text: str) -> float:
    """'13e9', '2e12', '7000000000', '13B', '2T' -> float; finite values only."""
    s = text.strip().replace("_", "").replace(",", "")
    scale = 1.0
    if s and s[-1].lower() in _SUFFIXES:
        s, scale = s[:-1], _SUFFIXES[s[-1].lower()]
    try:
        value = float(s) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _nonnegative(text: str) -> float:
    value = parse_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _positive(text: str) -> float:
    value = parse_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m shared.scaling", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("optimal", help="lifetime-optimal model size and training length vs Chinchilla")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--quality-params", type=_positive, metavar="N",
                        help="target the loss of an N-parameter model trained Chinchilla-optimally (e.g. 13e9)")
    target.add_argument("--loss", type=parse_number, metavar="L", help="target pre-training loss (> E)")
    p.add_argument("--inference-tokens", type=_nonnegative, required=True, metavar="T",
                   help="lifetime inference tokens, input + output (e.g. 2e12)")
    p.add_argument("--objective", choices=("flops", "cost"), default="flops",
                   help="minimise lifetime FLOPs (paper §2) or dollars (paper §3); default flops")
    p.add_argument("--coefficients", default="hoffmann", metavar="NAME",
                   help=f"Chinchilla coefficient set: {', '.join(COEFFICIENTS)} (default hoffmann)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    cost = p.add_argument_group("cost objective")
    cost.add_argument("--hardware", default="paper", metavar="PRESET",
                      help=f"hardware preset: {', '.join(HARDWARE_PRESETS)} (default paper: A100-80GB BF16 "
                           f"training, A100-40GB INT8 inference)")
    cost.add_argument("--input-tokens-per-request", type=_nonnegative, default=INPUT_TOKENS_PER_REQUEST, metavar="K",
                      help=f"input share of the inference tokens (default {INPUT_TOKENS_PER_REQUEST})")
    cost.add_argument("--output-tokens-per-request", type=_nonnegative, default=OUTPUT_TOKENS_PER_REQUEST,
                      metavar="K", help=f"output share of the inference tokens (default {OUTPUT_TOKENS_PER_REQUEST})")
    for name, what in (("train-mfu", "training"), ("input-mfu", "prefill (input tokens)"),
                       ("output-mfu", "generation (output tokens)")):
        cost.add_argument(f"--{name}", type=_positive, metavar="U", help=f"override the preset's {what} MFU")
    cost.add_argument("--train-price", type=_positive, metavar="USD", help="override the training GPU $/hour")
    cost.add_argument("--inference-price", type=_positive, metavar="USD", help="override the inference GPU $/hour")
    return parser


def solve(args: argparse.Namespace) -> dict:
    """The JSON-able result of `optimal`; ValueError on bad input."""
    c = get_coefficients(args.coefficients)
    loss = quality_loss(args.quality_params, c) if args.quality_params is not None else c.check_loss(args.loss)
    loss = float(loss)
    out = {"objective": args.objective, "coefficients": c.as_dict(), "loss": loss,
           "quality_params": args.quality_params, "inference_tokens": args.inference_tokens}
    if args.objective == "flops":
        cmp = compare_flops(loss, args.inference_tokens, c)
        out.update(_models(cmp, args.inference_tokens))
        out.update(total_flops=cmp.total_flops, chinchilla_total_flops=cmp.chinchilla_total_flops,
                   saved_flops=cmp.saved_flops, saving=cmp.saving)
        return out
    hw = HARDWARE_PRESETS.get(args.hardware)
    if hw is None:
        raise ValueError(f"unknown hardware preset {args.hardware!r}; valid: {', '.join(HARDWARE_PRESETS)}")
    changes = {k: v for k, v in {"train_mfu": args.train_mfu, "input_mfu": args.input_mfu,
                                 "output_mfu": args.output_mfu, "train_price_per_hour": args.train_price,
                                 "inference_price_per_hour": args.inference_price}.items() if v is not None}
    hw = dataclasses.replace(hw, **changes)
    demand = InferenceDemand.from_tokens(args.inference_tokens, args.input_tokens_per_request,
                                         args.output_tokens_per_request)
    cmp = compare_cost(loss, demand, hw, c)
    out.update(_models(cmp, args.inference_tokens))
    out.update(input_tokens=demand.input_tokens, output_tokens=demand.output_tokens, hardware=hw.as_dict(),
               total_flops=cmp.total_flops, chinchilla_total_flops=cmp.chinchilla_total_flops,
               train_cost_usd=cmp.train_cost, inference_cost_usd=cmp.inference_cost, total_cost_usd=cmp.total_cost,
               chinchilla_train_cost_usd=cmp.chinchilla_train_cost,
               chinchilla_inference_cost_usd=cmp.chinchilla_inference_cost,
               chinchilla_total_cost_usd=cmp.chinchilla_total_cost,
               saved_usd=cmp.chinchilla_total_cost - cmp.total_cost, saving=cmp.saving)
    return out


def _models(cmp, inference_tokens: float) -> dict:
    o, ch = cmp.optimal, cmp.chinchilla
    return {"params": o.params, "train_tokens": o.train_tokens, "tokens_per_param": o.tokens_per_param,
            "train_flops": o.train_flops,
            "inference_flops": INFERENCE_FLOPS_PER_PARAM_TOKEN * o.params * inference_tokens,
            "chinchilla_params": ch.params, "chinchilla_train_tokens": ch.train_tokens,
            "chinchilla_tokens_per_param": ch.tokens_per_param, "chinchilla_train_flops": ch.train_flops,
            "chinchilla_inference_flops": INFERENCE_FLOPS_PER_PARAM_TOKEN * ch.params * inference_tokens,
            "params_ratio": o.params / ch.params, "train_tokens_ratio": o.train_tokens / ch.train_tokens}


def format_table(r: dict) -> str:
    c = r["coefficients"]
    target = (f"quality of a {r['quality_params']:.4g}-parameter Chinchilla-optimal model"
              if r["quality_params"] is not None else "given")
    lines = [f"objective: lifetime {r['objective']}   coefficients: {c['name']} (A={c['A']:.4g}, B={c['B']:.4g}, "
             f"E={c['E']:.4g}, alpha={c['alpha']:.4g}, beta={c['beta']:.4g})",
             f"target loss: {r['loss']:.5f} ({target})   inference demand: {r['inference_tokens']:.4g} tokens"]
    if r["objective"] == "cost":
        hw = r["hardware"]
        lines.append(f"demand split: {r['input_tokens']:.4g} input + {r['output_tokens']:.4g} output tokens;  "
                     f"train {hw['train_gpu']} {hw['train_dtype']} ${hw['train_price_per_hour']:.2f}/h MFU "
                     f"{hw['train_mfu']:.0%}; serve {hw['inference_gpu']} {hw['inference_dtype']} "
                     f"${hw['inference_price_per_hour']:.2f}/h MFU in {hw['input_mfu']:.0%} out {hw['output_mfu']:.0%}")
    rows = [("parameters", "chinchilla_params", "params"), ("training tokens", "chinchilla_train_tokens", "train_tokens"),
            ("tokens / parameter", "chinchilla_tokens_per_param", "tokens_per_param"),
            ("training FLOPs", "chinchilla_train_flops", "train_flops"),
            ("inference FLOPs", "chinchilla_inference_flops", "inference_flops"),
            ("total FLOPs", "chinchilla_total_flops", "total_flops")]
    if r["objective"] == "cost":
        rows += [("training cost ($)", "chinchilla_train_cost_usd", "train_cost_usd"),
                 ("inference cost ($)", "chinchilla_inference_cost_usd", "inference_cost_usd"),
                 ("total cost ($)", "chinchilla_total_cost_usd", "total_cost_usd")]
    lines.append(f"{'':20s}{'Chinchilla-optimal':>20s}{r['objective'] + '-optimal':>20s}{'ratio':>10s}")
    for label, chin, opt in rows:
        ratio = r[opt] / r[chin] if r[chin] else float("nan")
        lines.append(f"{label:20s}{r[chin]:>20.4g}{r[opt]:>20.4g}{ratio:>10.2%}")
    what = "lifetime FLOPs" if r["objective"] == "flops" else "lifetime cost"
    lines.append(f"saving: {r['saving']:.2%} of the Chinchilla model's {what}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = solve(args)
    except ValueError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


__all__ = ["build_parser", "parse_number", "solve", "format_table", "main"]
