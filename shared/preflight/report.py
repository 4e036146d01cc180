"""Size every training run of a paper's notebooks before launch, and name every error it would hit.

    report = preflight("biomedlm", world=World(8, 4), gpu="h100-80gb", data_dir="/data")
    print(format_report(report)); sys.exit(1 if report["errors"] else 0)

Per run: params, trainable_params, tokens or samples, flops, parallelism, activation_checkpointing,
peak_memory_gib_per_gpu (weights, gradients, optimizer states, activations, buffers), fits,
gpu_hours at the stated MFU, the optimizer (name, lr, weight_decay_per_step) and the resolved
preset. Errors: a global batch that micro_batch_size x world size does not divide, a run over the
card's usable memory (even with activation checkpointing), data_dir entries that are missing or
malformed, checkpoints the run reads that are not there.

Warnings (printed, exit status unchanged): a weight decay of more than ``MAX_DECAY_PER_STEP`` of
each weight per step at peak LR.

Usable memory is the card's memory less ``HEADROOM`` (10%: the CUDA context, NCCL's buffers and the
caching allocator's fragmentation). Activation checkpointing left unset by the run (None) is turned
on where the run does not fit without it; set off (TrainConfig's default) on a run that does not fit,
the error says what it would take with it on. GPU-hours = FLOPs / (peak bf16 FLOP/s x MFU) / 3600 at
``DEFAULT_MFU`` = 0.40 unless given (MosaicML's published MPT-7B and BERT runs report 0.4-0.5 on A100s).

The paper's plans come from ``papers.<paper>.preflight`` and its presets from
``papers.<paper>.scales.NOTEBOOKS``, looked up by name (importlib): the user names the paper.
"""
from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .gpus import GPU, gpu as gpu_named
from .memory import GIB, memory_per_gpu
from .plan import DataRequirement, TrainingRunPlan, World
from .recipe_card import RecipeRow, check_card, lookup, paper_card

HEADROOM = 0.10
DEFAULT_MFU = 0.40
# a weight decay that removes more than this fraction of each weight per step halves the weights in
# under 700 steps: almost always a coupled value (e.g. AdamW's 0.01) under decoupled scaling
MAX_DECAY_PER_STEP = 1e-3


class PreflightError(RuntimeError):
    """A preflight found errors (the message lists them)."""


def batch_errors(run: TrainingRunPlan, world: World) -> list[str]:
    """Why the run's batch cannot be split over the world (empty when it can)."""
    if run.global_batch_size is None:
        return []
    per_step = run.micro_batch_size * world.size
    if run.global_batch_size % per_step:
        return [f"{run.name}: global_batch_size {run.global_batch_size} is not a multiple of micro_batch_size "
                f"{run.micro_batch_size} x world size {world.size} = {per_step}"]
    return []


def assess(run: TrainingRunPlan, world: World, card: GPU, mfu: float = DEFAULT_MFU,
           notebook: str = "") -> dict[str, Any]:
    """The report of one run under ``world`` on ``card`` (module docstring), with its errors."""
    usable = card.memory_bytes * (1.0 - HEADROOM)
    without = memory_per_gpu(run, world.size, activation_checkpointing=False)
    checkpointing = bool(run.activation_checkpointing)
    if run.activation_checkpointing is None:
        checkpointing = without.total > usable
    memory = memory_per_gpu(run, world.size, checkpointing) if checkpointing else without
    fits = memory.total <= usable
    errors = batch_errors(run, world)
    if not fits:
        hint = ""
        if not checkpointing:
            with_ckpt = memory_per_gpu(run, world.size, activation_checkpointing=True).total
            hint = (f"; with train.activation_checkpointing = true: {with_ckpt / GIB:.1f} GiB"
                    + (" (fits)" if with_ckpt <= usable else ""))
        errors.append(f"{run.name}: {memory.total / GIB:.1f} GiB per GPU > {usable / GIB:.1f} GiB usable on "
                      f"{card.name} (activation checkpointing {'on' if checkpointing else 'off'}, "
                      f"{run.parallelism} over {world.size}{hint})")
    warnings = []
    if run.optimizer.weight_decay_per_step > MAX_DECAY_PER_STEP:
        warnings.append(f"{run.name}: weight decay removes {run.optimizer.weight_decay_per_step:.3g} of each weight "
                        f"per step at peak LR (weight_decay {run.optimizer.weight_decay:g}, scaling "
                        f"{run.optimizer.weight_decay_scaling!r}; shared.train.optim)")
    gpu_hours = run.flops / (card.bf16_flops * mfu) / 3600.0
    size = {"tokens": run.tokens} if run.tokens is not None else {"samples": run.samples}
    return {"notebook": notebook, "name": run.name, "count": run.count, "params": run.model.params,
            "trainable_params": run.model.trainable_params, **size, "max_steps": run.max_steps,
            "global_batch_size": run.global_batch_size, "micro_batch_size": run.micro_batch_size,
            "flops": run.flops, "parallelism": run.parallelism, "precision": run.precision,
            "activation_checkpointing": checkpointing,
            "activation_checkpointing_needed": checkpointing and run.activation_checkpointing is None,
            "peak_memory_gib_per_gpu": memory.gib(),
            "peak_memory_gib_without_checkpointing": round(without.total / GIB, 3),
            "fits": fits, "gpu_hours": gpu_hours, "gpu_hours_all": gpu_hours * run.count,
            "optimizer": run.optimizer.as_dict(), "counted_by": run.model.counted_by, "note": run.note,
            "run_config": run.config, "errors": errors, "warnings": warnings}


# --------------------------------------------------------------------------------------- data checks
def resolve_path(path: str, data_dir: str | Path) -> Path:
    """``path`` with "{data_dir}" filled in; relative paths are under data_dir."""
    filled = Path(str(path).replace("{data_dir}", str(data_dir)))
    return filled if filled.is_absolute() else Path(data_dir) / filled


def requirement_error(req: DataRequirement, data_dir: str | Path) -> str | None:
    """Why ``req`` is not met under ``data_dir`` (None when it is). A path "a|b" is met by either."""
    if "|" in req.path:
        errors = [requirement_error(DataRequirement(p, req.kind, req.what), data_dir) for p in req.path.split("|")]
        return None if None in errors else " and ".join(errors)
    path = resolve_path(req.path, data_dir)
    what = f" ({req.what})" if req.what else ""
    if not path.exists():
        return f"missing {req.kind} {path}{what}"
    if req.kind == "dir":
        if not path.is_dir() or not any(path.iterdir()):
            return f"{path}{what} is not a non-empty directory"
    elif req.kind in ("file", "jsonl", "json"):
        if not path.is_file() or path.stat().st_size == 0:
            return f"{path}{what} is not a non-empty file"
        if req.kind != "file":
            try:
                with path.open() as f:
                    value = json.loads(f.readline() if req.kind == "jsonl" else f.read())
            except (ValueError, UnicodeDecodeError) as e:
                return f"{path}{what} is malformed {req.kind}: {e}"
            if req.kind == "jsonl" and not isinstance(value, dict):
                return f"{path}{what}: the first line is not a JSON object"
    elif req.kind == "hf_checkpoint":
        if not (path / "config.json").is_file():
            return f"{path}{what} has no config.json"
        if not any(any(path.glob(p)) for p in ("*.safetensors", "*.bin", "*.pt")):
            return f"{path}{what} has no weight files (*.safetensors / *.bin)"
    elif req.kind == "tokenizer":
        if not any((path / n).is_file() for n in ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model")):
            return f"{path}{what} has no tokenizer.json / vocab.txt / vocab.json / tokenizer.model"
    return None


def data_errors(requirements: Sequence[DataRequirement], data_dir: str | Path | None) -> list[str]:
    if data_dir is None:
        return []
    if not Path(data_dir).is_dir():
        return [f"data_dir {data_dir} is not a directory"]
    return [e for e in (requirement_error(r, data_dir) for r in requirements) if e]


# ------------------------------------------------------------------------------------------- a paper
def paper_modules(paper: str) -> tuple[Mapping[str, Any], Any]:
    """(papers.<paper>.scales.NOTEBOOKS, papers.<paper>.preflight), looked up by the paper's name."""
    try:
        scales = importlib.import_module(f"papers.{paper}.scales")
        module = importlib.import_module(f"papers.{paper}.preflight")
    except ModuleNotFoundError as e:
        raise ValueError(f"no preflight for paper {paper!r}: {e}") from e
    return scales.NOTEBOOKS, module


def preflight(paper: str, notebooks: Sequence[str] | None = None, *, scale: str = "full",
              world: World | None = None, gpu: str | GPU = "h100-80gb", data_dir: str | Path | None = None,
              mfu: float = DEFAULT_MFU, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The report of every training run of ``notebooks`` (default: all) of ``paper`` at ``scale``
    under ``world`` (default: one GPU)."""
    world = world or World()
    presets, module = paper_modules(paper)
    card = gpu if isinstance(gpu, GPU) else gpu_named(gpu)
    unknown = sorted(set(notebooks or ()) - set(presets))
    if unknown:
        raise ValueError(f"unknown notebook(s) {unknown} of {paper}; notebooks: {', '.join(presets)}")
    runs, errors, checked, recipe = [], [], {}, {}
    recipe_card, card_warnings = _card(paper)
    for name in notebooks or list(presets):
        config = presets[name].resolve(scale, overrides)
        spec = presets[name].build_config(config, where=scale)
        for run in module.plan(name, spec, world):
            runs.append(assess(run, world, card, mfu, notebook=name) | {"config": config})
        requirements = module.requirements(name, spec) if hasattr(module, "requirements") else []
        notebook_errors = data_errors(requirements, data_dir)
        checked[name] = {"requirements": [r.path for r in requirements], "errors": notebook_errors}
        errors += [f"{name}: {e}" for e in notebook_errors]
        if scale == "full" and recipe_card is not None:
            recipe[name] = recipe_values(recipe_card, name, config)
    if scale == "full" and recipe_card is not None:
        card_warnings += [f"recipe card: {p}" for p in check_card(recipe_card, presets, scale)]
    errors = [f"{r['notebook']}/{e}" for r in runs for e in r["errors"]] + errors
    warnings = [f"{r['notebook']}/{w}" for r in runs for w in r["warnings"]] + card_warnings
    return {"paper": paper, "scale": scale, "gpu": card.name, "gpu_memory_gib": round(card.memory_gib, 2),
            "gpu_bf16_tflops": card.bf16_flops / 1e12, "nproc_per_node": world.nproc_per_node,
            "nnodes": world.nnodes, "world_size": world.size, "mfu": mfu, "headroom": HEADROOM,
            "data_dir": None if data_dir is None else str(data_dir),
            "data_checked": data_dir is not None, "data": checked, "runs": runs,
            "recipe": recipe, "gpu_hours_total": sum(r["gpu_hours_all"] for r in runs),
            "wall_hours_if_serial": sum(r["gpu_hours_all"] for r in runs) / world.size, "errors": errors,
            "warnings": warnings}


def _card(paper: str) -> tuple[list[RecipeRow] | None, list[str]]:
    try:
        return paper_card(paper), []
    except ValueError as e:
        return None, [f"no usable recipe card (values are shown without sources): {e}"]


def recipe_values(card: list[RecipeRow], notebook: str, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each row of the card for ``notebook``: key, the value the run uses, status, the source's value and the
    source (the value comes from ``config``, so an override shows beside the card's source)."""
    values = []
    for row in card:
        if notebook not in row.notebooks:
            continue
        try:
            value = lookup(config, row.key)
        except KeyError:
            value = "(not in preset)"
        values.append({"key": row.key, "value": value, "status": row.status, "source_value": row.source_value,
                       "source": row.source})
    return values


def check(paper: str, notebook: str, **kwargs: Any) -> dict[str, Any]:
    """The preflight of one notebook; raises PreflightError listing its errors (for a notebook at full scale)."""
    report = preflight(paper, [notebook], **kwargs)
    if report["errors"]:
        raise PreflightError(f"preflight of {paper}/{notebook} found {len(report['errors'])} error(s):\n  "
                             + "\n  ".join(report["errors"]))
    return report


# ------------------------------------------------------------------------------------------ printing
def _si(x: float | None) -> str:
    if x is None:
        return "-"
    for unit, scale in (("Y", 1e24), ("Z", 1e21), ("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale * 0.9995:      # 999,968 prints as 1M, not 1e+03k
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def format_report(report: Mapping[str, Any], show_config: bool = False) -> str:
    """A readable table: one line per run, then the errors."""
    head = (f"preflight {report['paper']} at {report['scale']}: {report['nnodes']} node(s) x "
            f"{report['nproc_per_node']} {report['gpu']} ({report['gpu_memory_gib']:.1f} GiB, "
            f"{report['gpu_bf16_tflops']:.0f} bf16 TFLOP/s), MFU {report['mfu']:.2f}, headroom "
            f"{report['headroom']:.0%}; data {'checked in ' + report['data_dir'] if report['data_checked'] else 'not checked (no --data-dir)'}")
    cols = ("notebook/run", "n", "params", "trainable", "tokens|samples", "flops", "par", "ckpt",
            "GiB/GPU (w+g+o+a+b)", "fits", "gpu_h", "optimizer (lr, wd/step)")
    rows = []
    for r in report["runs"]:
        m = r["peak_memory_gib_per_gpu"]
        size = _si(r["tokens"]) + " tok" if "tokens" in r else _si(r["samples"]) + " smp"
        ckpt = ("yes*" if r["activation_checkpointing_needed"] else "yes") if r["activation_checkpointing"] else "no"
        parts = "+".join(f"{m[k]:.1f}" for k in ("weights", "gradients", "optimizer_states", "activations", "buffers"))
        opt = r["optimizer"]
        rows.append((f"{r['notebook']}/{r['name']}", str(r["count"]), _si(r["params"]), _si(r["trainable_params"]),
                     size, _si(r["flops"]), r["parallelism"], ckpt, f"{m['total']:.1f} ({parts})",
                     "yes" if r["fits"] else "NO", f"{r['gpu_hours']:.3g}",
                     f"{opt['name']} ({opt['lr']:.3g}, {opt['weight_decay_per_step']:.3g})"))
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))   # noqa: E731
    out = [head, line(cols), line(["-" * w for w in widths])] + [line(row) for row in rows]
    if not rows:
        out.append("(no training runs)")
    out.append(f"gpu_hours: per run at MFU {report['mfu']:.2f}; n identical runs each; total "
               f"{report['gpu_hours_total']:.4g} GPU-hours = {report['wall_hours_if_serial']:.4g} h on "
               f"{report['world_size']} GPUs. ckpt yes* = activation checkpointing needed to fit.")
    out += _recipe_lines(report.get("recipe", {}), everything=show_config)
    if show_config:
        out += [f"config {r['notebook']}/{r['name']}: {json.dumps(r['config'], default=str)}" for r in report["runs"]]
    if report.get("warnings"):
        out.append(f"warnings ({len(report['warnings'])}):")
        out += [f"  - {w}" for w in report["warnings"]]
    out.append(f"errors ({len(report['errors'])}):" if report["errors"] else "errors: none")
    out += [f"  - {e}" for e in report["errors"]]
    return "\n".join(out)


# the optimizer's and the schedule's values, printed with their sources in every report
OPTIMIZER_KEYS = frozenset({"optimizer", "lr", "weight_decay", "weight_decay_scaling", "betas", "eps", "momentum",
                            "schedule", "warmup_fraction", "warmup_steps", "alpha_f", "global_batch_size",
                            "max_steps", "grad_clip", "precision", "ema"})


def _recipe_lines(recipe: Mapping[str, list[dict[str, Any]]], everything: bool) -> list[str]:
    """Per notebook: how many values are sourced / deviate / assumed, then the optimizer's values (every value
    with ``everything``), each with its status and source."""
    out = []
    for notebook, values in recipe.items():
        counts = {s: sum(v["status"] == s for v in values) for s in ("sourced", "deviates", "assumed")}
        out.append(f"recipe {notebook}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        for v in values:
            if everything or v["key"].split(".")[-1] in OPTIMIZER_KEYS:
                source = "" if v["status"] == "assumed" else f" (source: {json.dumps(v['source_value'], default=str)})"
                out.append(f"  {v['key']} = {json.dumps(v['value'], default=str)}  [{v['status']}{source}] "
                           f"{v['source']}")
    return out


__all__ = ["DEFAULT_MFU", "OPTIMIZER_KEYS", "HEADROOM", "MAX_DECAY_PER_STEP", "PreflightError", "assess", "batch_errors", "check", "data_errors",
           "format_report", "paper_modules", "preflight", "recipe_values", "requirement_error", "resolve_path"]
