"""LoRA or full finetuning of a transformers causal LM, with learning / forgetting evals and the spectra
of the weight change over training (Biderman et al. 2024, "LoRA Learns Less and Forgets Less").

    spec = FinetuneRunSpec(base="runs/.../01_pretrain_base/base/hf", task=ConditionSpec("math", "ift").to_dict(),
                           method=MethodSpec("lora", rank=8, targets="all").to_dict(),
                           train=dict(max_steps=64, lr=1e-3, optimizer="lionw", global_batch_size=16,
                                      micro_batch_size=16), eval_steps=[16, 32], spectral_steps=[16, 64])
    run_training("papers.lora_vs_full.finetune:finetune_main", spec.to_dict(), run_dir=out / "math_ift_lora")
    result = read_run(out / "math_ift_lora")      # evals by step, delta spectra by step, final metrics

Why the transformers model and not our GPT: peft puts one adapter on each of q_proj, k_proj, v_proj,
o_proj, gate_proj, up_proj, down_proj, as in the paper; our GPT fuses q/k/v and gate/up into single
matrices, where one LoRA would share its input projection across them. The base is a local
LlamaForCausalLM folder (ours exported by papers.lora_vs_full.base, or Llama-2-7B), both
methods train the same module, and the loss is computed here from its logits.

Methods (MethodSpec): "full" trains every parameter; "lora" freezes the base and trains rank-r
adapters with alpha = 2r by default (the paper's recommendation) on "attention" (q, k, v, o), "mlp"
(gate, up, down) or "all"; `gate=False` leaves gate_proj out of "mlp" / "all", as the paper did
(its MLP targets are up and down only). `dropout` adds dropout on each sublayer output (before the
residual add) and on attention probabilities: the classic regularizer the paper compares LoRA with
(with TrainConfig.weight_decay the other one).

Spectra: at `spectral_steps`, Delta = W_now - W_base of every q/k/v/o/gate/up/down matrix (for LoRA,
the adapter's scale * B A) goes through shared.eval.spectral: the rank explaining 90% of its squared
singular values, beside the base matrix's and a random matrix's. The records are callback state, so
they survive a resume.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from papers.lora_vs_full.base import load_base
from papers.lora_vs_full.packing import PackedPairBatches
from papers.lora_vs_full.tasks import (
    ConditionSpec,
    batch_rows,
    cloze_accuracy,
    cpt_dataset,
    encode_pairs,
    source_cloze_sets,
    source_windows,
    task_material,
)
from shared.data.mixture import Mixture
from shared.eval.benchmarks import HarnessEval
from shared.eval.code import evaluate_completions, sample_completions
from shared.eval.generation import evaluate_gsm8k
from shared.eval.perplexity import evaluate_perplexity
from shared.eval.spectral import DEFAULT_FRACTION, SpectrumCache, matrix_spectrum_row
from shared.train import ResumableBatches, TrainConfig, Trainer, read_metrics
from shared.train.distributed import barrier, full_state_dict, init_distributed
from shared.train.lm import hf_lm_loss
from shared.utils.runtime import default_device
from shared.utils.config import StrictConfig

METHODS = ("full", "lora")
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
TARGETS = {"attention": ATTENTION, "mlp": MLP, "all": ATTENTION + MLP}
GENERATION = ("none", "final")
SPEC_FILE = "spec.json"
SPECTRA_FILE = "spectra.json"
FINAL_FILE = "final_metrics.json"
MERGED_DIR = "merged"


@dataclass
class MethodSpec(StrictConfig):
    """How the model is finetuned. rank / alpha / targets / lora_dropout / gate apply to LoRA; alpha
    None means 2 * rank; gate False drops gate_proj from the "mlp" and "all" targets. dropout (either
    method) is residual + attention-probability dropout."""
    method: str = "full"
    rank: int = 8
    alpha: float | None = None
    targets: str = "all"
    lora_dropout: float = 0.0
    dropout: float = 0.0
    gate: bool = True

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"MethodSpec.method={self.method!r}; valid choices: {', '.join(METHODS)}")
        if self.targets not in TARGETS:
            raise ValueError(f"MethodSpec.targets={self.targets!r}; valid choices: {', '.join(TARGETS)}")
        if self.rank < 1 or not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"need rank >= 1 and dropouts in [0, 1); got {self}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict; `gate` only when False, so specs written before it existed still match."""
        out = super().to_dict()
        if self.gate:
            out.pop("gate")
        return out

    @property
    def target_modules(self) -> tuple[str, ...]:
        """The module names LoRA adapts (TARGETS[targets], without gate_proj when gate is False)."""
        return tuple(m for m in TARGETS[self.targets] if self.gate or m != "gate_proj")

    @property
    def lora_alpha(self) -> float:
        return 2.0 * self.rank if self.alpha is None else float(self.alpha)

    @property
    def label(self) -> str:
        if self.method == "full":
            return "full"
        return f"lora_r{self.rank}_{self.targets}"


@dataclass
class FinetuneRunSpec(StrictConfig):
    """One finetuning run, JSON round-trippable (it travels to torchrun workers).

    base: folder of the base transformers model (and tokenizer). task: ConditionSpec fields. method:
    MethodSpec fields. train: TrainConfig fields (not run_dir). eval_steps: extra steps to evaluate
    at (max_steps always is; eval_at_start adds step 0). spectral_steps: steps to record the delta
    spectra at (keep_spectra: also every singular value of each Delta). generation "final": exact
    match / pass@1 after training (one process only; otherwise see evaluate_merged). save_merged:
    write the merged finetuned model to run_dir/merged.
    base_dtype: load the base in this torch dtype (e.g. "bfloat16" for a frozen 7B base under LoRA).
    """
    base: str
    task: dict[str, Any]
    method: dict[str, Any]
    train: dict[str, Any]
    eval_steps: list[int] = field(default_factory=list)
    eval_at_start: bool = True
    spectral_steps: list[int] = field(default_factory=list)
    spectral_fraction: float = DEFAULT_FRACTION
    keep_spectra: bool = False
    generation: str = "none"
    max_new_tokens: int = 128
    eval_batch_size: int = 32
    save_merged: bool = False
    base_dtype: str | None = None
    seed: int = 0

    def __post_init__(self):
        if self.generation not in GENERATION:
            raise ValueError(f"FinetuneRunSpec.generation={self.generation!r}; valid choices: {', '.join(GENERATION)}")
        ConditionSpec.from_dict(self.task)
        MethodSpec(**self.method)
        if "run_dir" in self.train:
            raise ValueError("FinetuneRunSpec.train must not set run_dir (run_training gives it)")


# ------------------------------------------------------------------------------------------- model
def clean_name(name: str) -> str:
    """Module name without peft's wrapper prefix and base_layer suffix ("model.layers.0.mlp.up_proj")."""
    name = name.removeprefix("base_model.model.")
    return name.removesuffix(".base_layer")


def target_linears(model: nn.Module, targets: str = "all") -> dict[str, nn.Linear]:
    """{clean name: nn.Linear} of the q/k/v/o/gate/up/down projections (the frozen base_layer under LoRA)."""
    kinds = TARGETS[targets]
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and clean_name(name).split(".")[-1] in kinds:
            out[clean_name(name)] = module
    if not out:
        raise ValueError(f"no {kinds} linear layers found: is this a Llama-style transformers model?")
    return out


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The transformer layers (what FSDP shards one by one), through any peft wrapper."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return list(inner.model.layers)


def add_dropout(model: nn.Module, p: float) -> list:
    """Dropout p on each attention and MLP output (before the residual add) and on attention
    probabilities; returns the hook handles. Active only in train mode."""
    handles = []
    for layer in decoder_layers(model):
        layer.self_attn.attention_dropout = p
        for sub in (layer.self_attn.o_proj, layer.mlp.down_proj):
            handles.append(sub.register_forward_hook(
                lambda module, args, out: F.dropout(out, p, module.training)))
    return handles


def build_model(base: nn.Module, method: MethodSpec) -> nn.Module:
    """The model to train: `base` itself with every parameter trainable (full), or wrapped by peft
    with LoRA adapters (base frozen; embeddings, norms and LM head frozen too, as in the paper)."""
    if method.method == "full":
        model = base
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        from peft import LoraConfig, get_peft_model
        config = LoraConfig(r=method.rank, lora_alpha=method.lora_alpha, lora_dropout=method.lora_dropout,
                            target_modules=list(method.target_modules), bias="none", task_type="CAUSAL_LM")
        model = get_peft_model(base, config)
    if method.dropout > 0:
        add_dropout(model, method.dropout)
    return model


def merged_copy(model: nn.Module) -> nn.Module:
    """A plain transformers model with the finetuned weights (LoRA merged into a copy)."""
    if hasattr(model, "merge_and_unload"):
        return copy.deepcopy(model).merge_and_unload()
    return model


def gathered_model(spec: FinetuneRunSpec, method: MethodSpec, state: dict[str, torch.Tensor]) -> nn.Module:
    """A plain transformers model on CPU with the weights of a trained run whose full state dict was
    gathered from its shards (``shared.train.distributed.full_state_dict``): the base rebuilt with the
    run's method, the state loaded, LoRA merged."""
    base, _ = load_base(spec.base, dtype=spec.base_dtype)
    model = build_model(base, method)
    model.load_state_dict(state)
    return merged_copy(model)


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t


@torch.no_grad()
def lora_deltas(model: nn.Module) -> dict[str, torch.Tensor]:
    """{clean name: scale * B @ A} of every LoRA-adapted linear layer (the default adapter)."""
    from peft.tuners.lora import LoraLayer
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and "default" in module.lora_A:
            a, b = _full(module.lora_A["default"].weight), _full(module.lora_B["default"].weight)
            out[clean_name(name)] = (b.float() @ a.float()) * module.scaling["default"]
    return out


# --------------------------------------------------------------------------------------- callbacks
class EvalAtSteps:
    """Run the trainer's evals at given steps (the trainer itself evaluates at max_steps)."""

    def __init__(self, steps):
        self.steps = set(int(s) for s in steps)

    def on_step_end(self, trainer, record):
        if trainer.step in self.steps and trainer.step != trainer.config.max_steps:
            trainer.evaluate()


class DeltaSpectra:
    """At given steps, the rank-for-variance of every target matrix's change from the base
    (shared.eval.spectral). `records`: [{"step", "rows": [matrix_spectrum_row ...]}]."""

    def __init__(self, steps, method: MethodSpec, fraction: float = DEFAULT_FRACTION, seed: int = 0,
                 keep_spectra: bool = False):
        self.steps = sorted(set(int(s) for s in steps))
        self.method, self.fraction, self.keep_spectra = method, fraction, keep_spectra
        self.cache = SpectrumCache(fraction, seed)
        self.records: list[dict] = []
        self.base: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def capture_base(self, model: nn.Module, is_main: bool = True) -> None:
        """Keep W_base of every target matrix (on CPU, on the main rank). Call it before training and
        before a resume loads a checkpoint, i.e. before Trainer(...).fit()."""
        if is_main and self.steps:
            self.base = {n: m.weight.detach().to("cpu", copy=True) for n, m in target_linears(model).items()}

    @torch.no_grad()
    def on_step_end(self, trainer, record):
        if trainer.step not in self.steps or any(r["step"] == trainer.step for r in self.records):
            return
        main = trainer.dist.is_main
        if self.method.method == "lora":
            deltas = lora_deltas(trainer.model)
        else:
            deltas = {}
            for n, m in target_linears(trainer.model).items():
                w = _full(m.weight).detach()                 # collective under FSDP
                if main:                                     # the SVDs run where the weights are (a GPU at scale)
                    deltas[n] = w.double() - self.base[n].to(w.device).double()
        if main:
            rows = [matrix_spectrum_row(n, self.base[n].to(d.device), delta=d, fraction=self.fraction,
                                        cache=self.cache, keep_spectrum=self.keep_spectra)
                    for n, d in sorted(deltas.items())]
            self.records.append({"step": trainer.step, "rows": rows})

    def state_dict(self):
        return {"records": self.records}

    def load_state_dict(self, state):
        self.records = list(state["records"])


# ------------------------------------------------------------------------------------------- evals
def target_loss_eval(batches, neutral_batches=None):
    """eval_fn: mean loss on the held-out responses (the learning metric by likelihood), "loss"; with
    neutral_batches also "neutral_loss", the same responses after a format-neutral prompt
    (TaskMaterial.neutral_pairs). Batches: dicts of (B, T) input_ids / targets / loss_mask."""
    def target(model):
        sets = {"t": batches} if neutral_batches is None else {"t": batches, "n": neutral_batches}
        res = evaluate_perplexity(model, sets)
        return {"loss": res["t"].mean_loss} | ({} if neutral_batches is None else {"neutral_loss": res["n"].mean_loss})
    return target


def source_eval(windows: dict[str, torch.Tensor], cloze: dict[str, list], batch_size: int,
                benchmarks: BenchmarkEval | None = None):
    """eval_fn of forgetting: loss on held-out general text per corpus and token-weighted over all,
    the accuracy of each cloze set (finetune_tasks.source_cloze_sets: prose, facts), and with
    ``benchmarks`` the harness-scored benchmarks (``BenchmarkEval``)."""
    def source(model):
        res = evaluate_perplexity(model, windows, batch_size=batch_size)
        total = sum(r.mean_loss * r.tokens for r in res.values()) / sum(r.tokens for r in res.values())
        out = {"loss": total, **{f"{n}_loss": r.mean_loss for n, r in res.items()}}
        for name, items in cloze.items():
            out[f"{name}_acc"] = cloze_accuracy(model, items, batch_size)
        if benchmarks is not None:
            out.update(benchmarks(model))
        return out
    return source


@dataclass
class BenchmarkEval:
    """The paper's forgetting benchmarks, scored by lm-evaluation-harness (shared.eval.benchmarks.HarnessEval)
    on the model being trained: ``{task}_acc`` and ``{task}_acc_norm`` per task and ``benchmarks_mean``, the
    mean of each task's leaderboard metric (acc_norm where the harness reports it, as for HellaSwag and
    ARC-Challenge; acc for WinoGrande). Under torchrun only rank 0 returns values (the trainer logs rank 0's)."""
    tasks: tuple[str, ...]
    data_dir: str
    tokenizer: Any
    batch_size: int = 16
    limit: int | None = None

    def __call__(self, model) -> dict[str, float]:
        out = HarnessEval(self.tasks, self.data_dir, self.tokenizer, batch_size=self.batch_size, limit=self.limit)(model)
        if not out:              # ranks other than 0
            return {}
        out = {k: v for k, v in out.items() if k.endswith(("_acc", "_acc_norm"))}
        out["benchmarks_mean"] = sum(out.get(f"{t}_acc_norm", out[f"{t}_acc"]) for t in self.tasks) / len(self.tasks)
        return out


def generation_metrics(model, tokenizer, task: ConditionSpec, problems, max_new_tokens: int = 128,
                       batch_size: int = 32, fewshot=(), code_samples: int = 1, code_temperature: float = 0.0,
                       seed: int = 0) -> dict[str, float]:
    """Greedy exact match (math, GSM8K format, after the `fewshot` MathProblems as worked examples) or
    pass@1 (code, sandboxed; the unbiased estimate from `code_samples` completions per problem at
    `code_temperature`, greedy by default), model in eval mode."""
    if task.domain == "math":
        res = evaluate_gsm8k(model, tokenizer, problems, fewshot=list(fewshot), max_new_tokens=max_new_tokens,
                             batch_size=batch_size)
        return {"exact_match": res.accuracy, "n": res.n}
    completions = sample_completions(model, tokenizer, problems, n=code_samples, temperature=code_temperature,
                                     max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
    res = evaluate_completions(problems, completions, ks=(1,))
    return {"pass@1": res.pass_at_k["pass@1"], "n": len(problems)}


def generation_model(model: nn.Module) -> nn.Module:
    """The transformers model to call generate on (LoRA layers stay active inside a peft model)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def build_evals(task: ConditionSpec, tokenizer, material, batch_size: int) -> dict:
    """The trainer's eval_fns: "target" (learning, held-out response loss) and "source" (forgetting)."""
    neutral = material.neutral_pairs or material.test_pairs
    return {"target": target_loss_eval(batch_rows(encode_pairs(tokenizer, material.test_pairs, task.max_len),
                                                  batch_size),
                                       batch_rows(encode_pairs(tokenizer, neutral, task.max_len), batch_size)),
            "source": source_eval(source_windows(task, tokenizer), source_cloze_sets(task, tokenizer), batch_size,
                                  benchmark_eval(task, tokenizer, batch_size))}


def benchmark_eval(task: ConditionSpec, tokenizer, batch_size: int) -> BenchmarkEval | None:
    """The condition's forgetting benchmarks (None when it names none)."""
    if not task.benchmarks:
        return None
    if task.data_dir is None:
        raise ValueError(f"benchmarks {list(task.benchmarks)} are read from data_dir/{task.benchmarks_path}; "
                         "this condition has no data_dir")
    return BenchmarkEval(tuple(task.benchmarks), str(Path(task.data_dir) / task.benchmarks_path), tokenizer,
                         batch_size, task.benchmark_limit)


@torch.no_grad()
def evaluate_base(config: dict[str, Any]) -> dict[str, float]:
    """The evals of a FinetuneRunSpec on its untrained base model, keyed like the trainer logs them
    ("target/loss", "source/loss", ...): the step-0 point every run of that condition shares."""
    spec = FinetuneRunSpec.from_dict(config)
    task = ConditionSpec.from_dict(spec.task)
    model, tok = load_base(spec.base)
    model.eval()
    out = {}
    for name, fn in build_evals(task, tok, task_material(task), spec.eval_batch_size).items():
        out.update({f"{name}/{k}": float(v) for k, v in fn(model).items()})
    return out


# -------------------------------------------------------------------------------------- entry point
def build_train_data(task: ConditionSpec, tokenizer, material, cfg, rank: int, world_size: int):
    """IFT: endless shuffled batches of the encoded pairs, one right-padded example per row or (the task's
    packing_ratio) packed sequences of max_len tokens; CPT: a one-stream Mixture of packed text."""
    micro = cfg.micro_batch_size or (cfg.global_batch_size or 1) // world_size
    if task.regime == "ift":        # the order of the data follows the training seed, the data the task's
        pairs = encode_pairs(tokenizer, material.train_pairs, task.max_len)
        if task.packing_ratio is not None:
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            return PackedPairBatches(pairs, task.packing_ratio, task.packing_group, task.max_len, micro,
                                     rank=rank, world_size=world_size, seed=cfg.seed, pad_id=pad)
        return ResumableBatches(pairs, micro, rank=rank, world_size=world_size, seed=cfg.seed)
    ds = cpt_dataset(task, tokenizer, material)
    gbs = cfg.global_batch_size or micro * world_size * (cfg.grad_accum or 1)
    return Mixture({"cpt": ds}, {"cpt": 1.0}, global_batch_size=gbs, total_steps=cfg.max_steps,
                   seed=cfg.seed, rank=rank, world_size=world_size, micro_batch_size=micro)


def finetune_main(config: dict[str, Any], run_dir: str) -> None:
    """Entry point for shared.train.run_training: one finetuning run (module docstring)."""
    spec = FinetuneRunSpec.from_dict(config)
    task, method = ConditionSpec.from_dict(spec.task), MethodSpec(**spec.method)
    dist = init_distributed(spec.train.get("device"))
    cfg = TrainConfig(**{"seed": spec.seed, "keep_last_n": 1, "checkpoint_at_end": False,
                         "eval_at_start": spec.eval_at_start, **spec.train, "run_dir": run_dir})
    if dist.rank == 0:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / SPEC_FILE).write_text(json.dumps(spec.to_dict(), indent=1))
    torch.manual_seed(spec.seed)
    base, tok = load_base(spec.base, dtype=spec.base_dtype)
    model = build_model(base, method)
    material = task_material(task)
    if dist.rank == 0 and task.regime == "cpt":
        cpt_dataset(task, tok, material)                  # rank 0 packs; the others read the cache
    barrier()
    data = build_train_data(task, tok, material, cfg, dist.rank, dist.world_size)
    evals = build_evals(task, tok, material, spec.eval_batch_size)
    spectra = DeltaSpectra(spec.spectral_steps, method, spec.spectral_fraction, spec.seed, spec.keep_spectra)
    spectra.capture_base(model, dist.rank == 0)
    trainer = Trainer(model, hf_lm_loss, data, cfg, eval_fns=evals,
                      callbacks=[EvalAtSteps(spec.eval_steps), spectra], blocks=decoder_layers)
    trainer.fit()
    # a sharded model's weights are gathered on rank 0 (every rank enters the collective)
    merged_state = full_state_dict(model) if spec.save_merged and dist.world_size > 1 else None
    if dist.rank == 0:
        out = Path(run_dir)
        (out / SPECTRA_FILE).write_text(json.dumps(spectra.records))
        final = {"trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                 "total_params": sum(p.numel() for p in model.parameters())}
        if spec.generation == "final" and dist.world_size == 1:
            final.update(generation_metrics(generation_model(model), tok, task, material.problems,
                                            spec.max_new_tokens, spec.eval_batch_size))
        (out / FINAL_FILE).write_text(json.dumps(final))
        if spec.save_merged:
            merged = merged_copy(model) if merged_state is None else gathered_model(spec, method, merged_state)
            merged.save_pretrained(str(out / MERGED_DIR))
            tok.save_pretrained(str(out / MERGED_DIR))
    barrier()


def evaluate_merged(run_dir: str | Path, generation: bool = True, device: str | None = None,
                    **options) -> dict[str, float]:
    """Generation metrics of a finished run's merged model (one process, on `device`, default a GPU if
    there is one; e.g. after a torchrun run), merged into run_dir/final_metrics.json and returned.
    options: generation_metrics keywords (fewshot, code_samples, code_temperature, seed)."""
    run_dir = Path(run_dir)
    spec = FinetuneRunSpec.from_dict(json.loads((run_dir / SPEC_FILE).read_text()))
    task = ConditionSpec.from_dict(spec.task)
    device = str(device or default_device())
    model, tok = load_base(run_dir / MERGED_DIR, dtype=torch.bfloat16 if device.startswith("cuda") else None,
                           device=device)
    final_path = run_dir / FINAL_FILE
    final = json.loads(final_path.read_text()) if final_path.exists() else {}
    if generation:
        final.update(generation_metrics(model.eval(), tok, task, task_material(task).problems,
                                        spec.max_new_tokens, spec.eval_batch_size, **options))
    final_path.write_text(json.dumps(final))
    return final


@dataclass
class RunResult:
    """A finished run read back: its spec, eval records by step ({"step", "target/loss",
    "source/loss", ...}), delta-spectra records, final metrics, and the train-loss curve."""
    spec: dict[str, Any]
    evals: list[dict]
    spectra: list[dict]
    final: dict[str, Any]
    train: list[dict]


def read_run(run_dir: str | Path) -> RunResult:
    """Read a run_dir written by finetune_main."""
    run_dir = Path(run_dir)
    if not (run_dir / SPEC_FILE).exists():
        raise FileNotFoundError(f"{run_dir} is not a finetuning run (no {SPEC_FILE})")
    records = read_metrics(run_dir)
    evals = [r for r in records if r.get("kind") == "eval"]
    train = [{k: r[k] for k in ("step", "loss", "lr") if k in r} for r in records if r.get("kind") == "train"]

    def load(name, default):
        path = run_dir / name
        return json.loads(path.read_text()) if path.exists() else default
    return RunResult(spec=load(SPEC_FILE, {}), evals=evals, spectra=load(SPECTRA_FILE, []),
                     final=load(FINAL_FILE, {}), train=train)
