"""Scale presets of the lora_vs_full notebooks: plain literals (a notebook's `overrides` change keys),
each notebook's built into its typed spec (`NOTEBOOKS`, read by `start_run(..., presets=...)`).

smoke: a 2-core CPU in ~4 minutes for the four notebooks. A 2-layer, d_model 128 Llama-shaped base
       (0.95M parameters) pretrained on general prose (fortunes, GCIDE), some CPython code, raw worked
       arithmetic and a memorised made-up fact base; finetuned on generated GSM8K-shaped arithmetic and
       HumanEval-shaped functions in both regimes for 48 steps of 8 examples with LionW.
small: one GPU, < 1 hour: the same data, a 6-layer d_model 512 base, longer finetuning, fuller grid.
full:  the paper's setup: Llama-2-7B from a local folder, StarCoder-Python and OpenWebMath CPT,
       Magicoder-Evol-Instruct-110K and MetaMathQA IFT, GSM8K (5-shot) / HumanEval (pass@1 of 50
       samples), LionW, LoRA ranks 16 / 64 / 256 on attention / MLP (up, down) / all (no gate) with
       alpha = 2r, each setting's own batch, schedule and LR grid; IFT one run per epoch count, CPT one
       20B-token run evaluated along the way, via torchrun.

LoRA ranks scale with the width: the paper's r in {16, 64, 256} at d_model 4096 is r / d_model in
{1/256, 1/64, 1/16}; at d_model 128 that is {0.5, 2, 8} -> ranks {1, 2, 8} (0.5 rounded up), and at
d_model 512 {2, 8, 32}.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from papers.lora_vs_full.finetune import MethodSpec
from papers.lora_vs_full.tasks import ConditionSpec
from shared.experiment import NotebookPresets
from shared.train import TrainConfig
from shared.utils.config import StrictConfig

# ------------------------------------------------------------------------------- the paper's numbers
# Sources: arXiv 2405.09673 (v2) as reprinted section by section on hackernoon.com ("LoRA Falls Short of
# Full Finetuning in Programming and Math Tasks", "Does LoRA Fine-Tuning Help AI Models Forget Less?"),
# the abstract, and a reader's summary of section 4.5 (leonericsson.github.io, 2024-05-20) for the ranks.
# The full presets' hyperparameters: the authors' danbider/lora-tradeoffs@af87f73 README ("Training
# Details", one table per setting), cited row by row in README.md's ## Recipe.
PAPER = {
    "base_model": "Llama-2-7B", "d_model": 4096, "lora_ranks": [16, 64, 256], "lora_alpha": "2r",
    "ift_epochs": [1, 2, 4, 8, 16], "cpt_billion_tokens": [0.25, 0.5, 1, 2, 4, 8, 16, 20],
    "humaneval_best": {"ift": 0.50, "cpt": 0.26},            # best full-finetuning HumanEval (section 4.1)
    "rank90_attention": [1000, 2000],                         # full-FT Delta, 4096 x 4096 (section 4.5)
    "rank90_mlp": [2000, 2800],
    "rank_vs_typical_lora": [10, 100],                        # abstract: "10-100X greater"
    "lora_lr_over_full_lr_ift": 10,                           # appendix B: about an order of magnitude
    "forgetting_metric": "mean of HellaSwag, ARC-Challenge, WinoGrande accuracy",
}

# -------------------------------------------------------------------------------- 01: the base model
_SMOKE_SOURCES = {"fortunes": 0.28, "gcide_general": 0.27, "code_stdlib": 0.10, "arithmetic_text": 0.05,
                  "facts_text": 0.30}
BASE = {
    "smoke": {"pretrain": True, "base_path": None, "sources": _SMOKE_SOURCES,
              "max_docs": {"fortunes": 6000, "gcide_general": 6000, "code_stdlib": 40, "arithmetic_text": 2000,
                           "facts_text": None},
              "tokenizer_docs": {"fortunes": 3000, "gcide_general": 3000, "code_stdlib": 40,
                                 "arithmetic_text": 1500, "functions": 1500, "facts_text": None},
              "vocab_size": 2048, "seq_len": 128, "model": {"n_layer": 2, "n_head": 4, "d_model": 128},
              "train": {"max_steps": 300, "global_batch_size": 16, "micro_batch_size": 16, "optimizer": "adamw",
                        "lr": 3e-3, "warmup_fraction": 0.05, "alpha_f": 0.1, "weight_decay": 0.0,
                        "log_every": 10, "progress_bar": False},
              "eval_docs": 100},
    "small": {"pretrain": True, "base_path": None, "sources": _SMOKE_SOURCES,
              "max_docs": {"fortunes": None, "gcide_general": 60000, "code_stdlib": 400, "arithmetic_text": 20000,
                           "facts_text": None},
              "tokenizer_docs": {"fortunes": 10000, "gcide_general": 10000, "code_stdlib": 200,
                                 "arithmetic_text": 5000, "functions": 5000, "facts_text": None},
              "vocab_size": 8192, "seq_len": 256, "model": {"n_layer": 6, "n_head": 8, "d_model": 512},
              "train": {"max_steps": 4000, "global_batch_size": 64, "micro_batch_size": 64, "optimizer": "adamw",
                        "lr": 1e-3, "warmup_fraction": 0.02, "alpha_f": 0.1, "weight_decay": 0.1,
                        "log_every": 50, "progress_bar": True},
              "eval_docs": 500},
    # full: no pretraining; Llama-2-7B (transformers layout) read from <data_dir>/<base_path>
    "full": {"pretrain": False, "base_path": "Llama-2-7b-hf", "sources": {}, "max_docs": {}, "tokenizer_docs": {},
             "vocab_size": 32000, "seq_len": 4096, "model": "llama2-7b", "train": {}, "eval_docs": 0,
             "needs_data_dir": True},
}

# ------------------------------------------------------------------------- 02: the sweep over methods
_SMOKE_TASK = {"source": "generated", "max_len": 128, "n_train": 384, "n_test": 48, "max_number": 100,
               "source_corpora": {"fortunes": 400, "gcide_general": 400}, "source_windows": 64,
               "cloze_items": 0, "fact_entities": 6}
_SMOKE_TRAIN = {"optimizer": "lionw", "betas": [0.9, 0.99], "global_batch_size": 8, "micro_batch_size": 8,
                "schedule": "constant", "warmup_steps": 4, "grad_clip": 1.0, "weight_decay": 0.0,
                "log_every": 4, "progress_bar": False}
# same_tradeoff_curve's smoke tolerance: 2 x the RMS (0.0073 nats) of the claim's statistic between full-finetuning
# sweeps at seeds 100, 101, 102 (6 ordered pairs; python -m papers.lora_vs_full.calibration --seeds 100 101 102)
TRADEOFF_TOLERANCE_SMOKE = 0.0145
SWEEP = {
    "smoke": {"conditions": ["math-ift", "math-cpt", "code-ift", "code-cpt"], "task": _SMOKE_TASK,
              "task_overrides": {"code-cpt": {"cpt_extra": {"code_stdlib": 12}}},
              "train": _SMOKE_TRAIN, "durations": [12, 24, 48], "duration_mode": "along",
              "full_lrs": [1e-4, 3e-4], "lora_lrs": [1e-3, 3e-3], "lora_main": {"rank": 8, "targets": "all"},
              "lora_variants": [{"rank": 1, "targets": "all"}, {"rank": 8, "targets": "attention"},
                                {"rank": 8, "targets": "mlp"}],
              "variant_conditions": ["math-ift"],
              # AdamW's grid: LionW's x 10 (Lion's paper: its LR is typically 3-10x smaller than AdamW's)
              "optimizer_check": {"condition": "math-ift", "optimizer": "adamw", "betas": [0.9, 0.95],
                                  "full_lrs": [1e-3, 3e-3], "lora_lrs": [1e-2, 3e-2]},
              "spectral_steps": [3, 6, 12, 24, 48], "keep_spectra": True,
              "save_merged": ["math-ift", "code-ift"], "generation_conditions": ["math-ift", "code-ift"],
              "max_new_tokens": 96,
              # twice the RMS of the same statistic between full-finetuning sweeps of two seeds, measured apart
              # (python -m papers.lora_vs_full.calibration --seeds 100 101 102; README, Pre-registration)
              "tradeoff_tolerance": TRADEOFF_TOLERANCE_SMOKE,
              "tradeoff_tolerance_source": "twice the RMS of full FT vs full FT at seeds 100-102 (calibration run)",
              # after the claims: the final models scored by the full preset's harness path on fixture files
              "final_benchmarks": {"tasks": ["hellaswag", "arc_challenge", "winogrande"], "fixture_rows": 4}},
    "small": {"conditions": ["math-ift", "math-cpt", "code-ift", "code-cpt"],
              "task": {**_SMOKE_TASK, "max_len": 256, "n_train": 20000, "n_test": 500,
                       "source_corpora": {"fortunes": 727, "gcide_general": 2000}, "source_windows": 256,
                       "cloze_items": 500},
              "task_overrides": {"code-cpt": {"cpt_extra": {"code_stdlib": 400}}},
              "train": {**_SMOKE_TRAIN, "global_batch_size": 64, "micro_batch_size": 64, "schedule": "cosine",
                        "warmup_steps": 0, "warmup_fraction": 0.05, "alpha_f": 0.1, "progress_bar": True},
              "durations": [156, 312, 625, 1250, 2500], "duration_mode": "separate",
              "full_lrs": [3e-5, 1e-4, 3e-4], "lora_lrs": [3e-4, 1e-3, 3e-3],
              "lora_main": {"rank": 32, "targets": "all"},
              "lora_variants": [{"rank": r, "targets": t} for r in (2, 32) for t in ("attention", "mlp", "all")
                                if (r, t) != (32, "all")] + [{"rank": 8, "targets": "all"}],
              "variant_conditions": ["math-ift", "math-cpt", "code-ift", "code-cpt"],
              "optimizer_check": {"condition": "code-ift", "optimizer": "adamw", "betas": [0.9, 0.95],
                                  "full_lrs": [3e-4, 1e-3, 3e-3], "lora_lrs": [3e-3, 1e-2, 3e-2]},
              "spectral_steps": [39, 78, 156, 312, 625, 1250, 2500], "keep_spectra": True,
              "save_merged": ["math-ift", "code-ift"], "generation_conditions": ["math-ift", "code-ift"],
              "max_new_tokens": 192,
              "final_benchmarks": {"tasks": ["hellaswag", "arc_challenge", "winogrande"], "fixture_rows": 4}},
    # full: the paper's four settings from <data_dir>, each with the hyperparameters of the authors'
    # table (danbider/lora-tradeoffs README, the TMLR camera-ready's appendix): LionW (0.9, 0.95), clip
    # 1, bf16; IFT: cosine to 0.01 x LR after 10% warmup, 1 / 2 / 4 / 8 / 16 epochs, one run each; CPT:
    # one 20B-token run of 192 x 4096 tokens per step, 1000 warmup steps, evaluated at 0.25 ... 20B tokens.
    # The README's card (## Recipe) gives every value's source.
    "full": {"conditions": ["code-cpt", "code-ift", "math-cpt", "math-ift"],
             "task": {"source": "files", "max_len": 4096, "n_test": 10_000, "source_windows": 2000,
                      "cloze_items": 0, "fact_entities": 0, "source_path": "heldout_general",
                      "benchmarks": ["hellaswag", "arc_challenge", "winogrande"], "benchmarks_path": "benchmarks",
                      "benchmark_limit": None},
             "forgetting_accuracy": "source_benchmarks_mean",
             "forgetting_accuracy_label": "HellaSwag / ARC-Challenge / WinoGrande mean",
             "task_overrides": {
                 "code-cpt": {"train_path": "starcoder_python", "text_field": "content", "test_path": None},
                 "math-cpt": {"train_path": "open_web_math", "text_field": "text", "test_path": "gsm8k/test.jsonl"},
                 # code IFT packs 3 whole examples per 4096-token sequence, 6 sequences at a time (llm-foundry's
                 # packing_ratio over one device batch of the authors' 32 GPUs): 193 steps per epoch at 192
                 "code-ift": {"train_path": "magicoder_evol_instruct_110k/data.jsonl", "prompt_field": "instruction",
                              "response_field": "response", "test_path": None,
                              "prompt_template": "@@ Instruction\n{prompt}\n\n@@ Response\n",
                              "packing_ratio": 3.0, "packing_group": 6},
                 "math-ift": {"train_path": "metamathqa/MetaMathQA-395K.json", "prompt_field": "query",
                              "response_field": "response", "max_len": 1024, "test_path": "gsm8k/test.jsonl",
                              "prompt_template": "Question: {prompt}\nAnswer:", "packing_ratio": None}},
             "train": {"optimizer": "lionw", "betas": [0.9, 0.95], "weight_decay_scaling": "schedule",
                       "global_batch_size": 192, "micro_batch_size": 6, "schedule": "cosine",
                       "warmup_fraction": 0.1, "alpha_f": 0.01, "weight_decay": 0.0, "grad_clip": 1.0,
                       "precision": "bf16", "parallelism": "fsdp", "log_every": 10, "checkpoint_every": 500,
                       # the CPT runs (6 x 4096 tokens per micro-batch) exceed an H100 without it (shared.preflight)
                       "activation_checkpointing": True, "progress_bar": True},
             # code IFT: 192 packed sequences of 3 examples per step (193 steps per epoch of 111,183 rows);
             # math IFT: 768 unpacked rows per step
             "condition_overrides": {
                 # constant LR after 1000 warmup steps, then a linear cooldown to 0 over the last 5086 steps
                 # (16B to 20B tokens), so the earlier durations are constant-LR points of the same run
                 "code-cpt": {"train": {"schedule": "constant", "warmup_fraction": None, "warmup_steps": 1000,
                                        "cooldown_steps": 5086, "alpha_f": 0.0, "weight_decay": 1e-6},
                              "full_lrs": [5e-6, 1e-5, 2e-5], "lora_lrs": [5e-6, 1e-5, 2e-5], "duration_mode": "along",
                              "spectral_steps": [318, 636, 1272, 2543, 5086, 10173, 20345, 25431]},
                 "math-cpt": {"train": {"schedule": "constant", "warmup_fraction": None, "warmup_steps": 1000,
                                        "cooldown_steps": 5086, "alpha_f": 0.0},
                              "full_lrs": [5e-6, 1e-5, 2e-5], "lora_lrs": [2e-5, 4e-5, 8e-5], "duration_mode": "along",
                              "spectral_steps": [318, 636, 1272, 2543, 5086, 10173, 20345, 25431]},
                 "code-ift": {"train": {"global_batch_size": 192}, "spectral_steps": [193, 386, 772, 1544, 3088]},
                 "math-ift": {"train": {"global_batch_size": 768, "micro_batch_size": 24},
                              "full_lrs": [5e-6, 1e-5, 2e-5], "lora_lrs": [2e-5, 5e-5, 1e-4, 2e-4],
                              "spectral_steps": [514, 1029, 2057, 4115, 8229]}},
             "durations_by_condition": {"code-ift": [193, 386, 772, 1544, 3088],
                                        "math-ift": [514, 1029, 2057, 4115, 8229],
                                        "code-cpt": [318, 636, 1272, 2543, 5086, 10173, 20345, 25431],
                                        "math-cpt": [318, 636, 1272, 2543, 5086, 10173, 20345, 25431]},
             "durations": [193, 386, 772, 1544, 3088], "duration_mode": "separate",
             "full_lrs": [2e-5, 5e-5, 1e-4], "lora_lrs": [5e-5, 1e-4, 2e-4, 5e-4],
             "lora_main": {"rank": 256, "targets": "all", "gate": False},
             "lora_variants": [{"rank": r, "targets": t, "gate": False} for r in (16, 256)
                               for t in ("attention", "mlp", "all") if (r, t) != (256, "all")]
                              + [{"rank": 64, "targets": "all", "gate": False}],
             "variant_conditions": ["code-cpt", "code-ift", "math-cpt", "math-ift"],
             "optimizer_check": {"condition": "code-ift", "optimizer": "adamw", "betas": [0.9, 0.95],
                                 "full_lrs": [2e-4, 5e-4, 1e-3], "lora_lrs": [5e-4, 1e-3, 2e-3, 5e-3]},
             "spectral_steps": [], "keep_spectra": True,
             "save_merged": ["code-cpt", "code-ift", "math-cpt", "math-ift"],
             "generation_conditions": ["code-cpt", "code-ift", "math-cpt", "math-ift"],
             "tradeoff_tolerance": 0.05,
             "tradeoff_tolerance_source": "assumed: no seed spread measured at full scale (the smoke design's first "
                                          "fixed tolerance, until papers.lora_vs_full.calibration runs at full)",
             "generation_eval": {"gsm8k_shots": 5, "gsm8k_fewshot_path": "gsm8k/train.jsonl", "code_samples": 50,
                                 "code_temperature": 0.2},
             "max_new_tokens": 512,
             # every evaluation of every run scores the benchmarks already (task.benchmarks)
             "final_benchmarks": None},
}

# --------------------------------------------------------------------------------- 03: spectra
SPECTRAL = {
    "smoke": {"fraction": 0.9, "condition": "math-ift", "curve_layer": 1, "random_seed": 0},
    "small": {"fraction": 0.9, "condition": "code-cpt", "curve_layer": 3, "random_seed": 0},
    "full": {"fraction": 0.9, "condition": "code-cpt", "curve_layer": 26, "random_seed": 0},
}

# ------------------------------------------------------- 04: LoRA against weight decay and dropout; diversity
REGULARIZE = {
    "smoke": {"condition": "code-ift", "weight_decays": [1e-4, 1e-3], "dropouts": [0.1],
              "diversity_condition": "code-ift", "diversity_prompts": 16, "diversity_samples": 8,
              "temperature": 1.0, "max_new_tokens": 48},
    "small": {"condition": "code-ift", "weight_decays": [1e-3, 1e-2, 1e-1], "dropouts": [0.05, 0.1],
              "diversity_condition": "code-ift", "diversity_prompts": 100, "diversity_samples": 20,
              "temperature": 1.0, "max_new_tokens": 128},
    "full": {"condition": "code-ift", "weight_decays": [5e-5, 1e-4], "dropouts": [0.05, 0.1],
             "diversity_condition": "code-ift", "diversity_prompts": 164, "diversity_samples": 50,
             "temperature": 0.8, "max_new_tokens": 512},
}


# ------------------------------------------------------------------------------------- typed specs
@dataclass
class BasePreset(StrictConfig):
    """01_pretrain_base: pretrain the tiny Llama-shaped base (papers.lora_vs_full.base.BaseSpec's fields),
    or (pretrain False) read a transformers checkpoint from <data_dir>/<base_path>. model: GPTConfig
    keywords of the base to pretrain, or the flavour (shared.models.flavours) of the checkpoint read."""
    pretrain: bool
    base_path: str | None
    sources: dict[str, float]
    max_docs: dict[str, int | None]
    tokenizer_docs: dict[str, int | None]
    vocab_size: int
    seq_len: int
    model: str | dict[str, Any]
    train: TrainConfig
    eval_docs: int
    needs_data_dir: bool = False

    def __post_init__(self):
        if self.pretrain and not isinstance(self.model, dict):
            raise ValueError("a base to pretrain needs its GPTConfig keywords as `model`")
        if not self.pretrain and not self.base_path:
            raise ValueError("without pretraining, base_path names the checkpoint folder under data_dir")


@dataclass
class LoraSettings(StrictConfig):
    """A LoRA configuration of the sweep: rank and target modules ("attention", "mlp", "all"); gate
    False leaves gate_proj out of "mlp" / "all" (MethodSpec.gate)."""
    rank: int
    targets: str
    gate: bool = True

    def __post_init__(self):
        MethodSpec(method="lora", rank=self.rank, targets=self.targets, gate=self.gate)


@dataclass
class ConditionSettings(StrictConfig):
    """What one condition of the sweep sets for itself (sweep.condition_sweep): TrainConfig fields that
    update the sweep's `train`, and the LR grids, duration mode and spectral steps it replaces."""
    train: dict[str, Any] = field(default_factory=dict)
    full_lrs: tuple[float, ...] | None = None
    lora_lrs: tuple[float, ...] | None = None
    duration_mode: str | None = None
    spectral_steps: tuple[int, ...] | None = None


@dataclass
class GenerationEval(StrictConfig):
    """How the generation metrics are taken (sweep.generation_options): GSM8K after gsm8k_shots worked
    examples (the first problems of <data_dir>/gsm8k_fewshot_path), HumanEval pass@1 estimated from
    code_samples completions per problem at code_temperature."""
    gsm8k_shots: int = 0
    gsm8k_fewshot_path: str | None = None
    code_samples: int = 1
    code_temperature: float = 0.0

    def __post_init__(self):
        if self.gsm8k_shots and not self.gsm8k_fewshot_path:
            raise ValueError("gsm8k_shots > 0 needs gsm8k_fewshot_path (a GSM8K train jsonl under data_dir)")
        if self.code_samples < 1 or (self.code_samples > 1 and self.code_temperature <= 0):
            raise ValueError("code_samples >= 1; several samples need code_temperature > 0")


@dataclass
class FinalBenchmarks(StrictConfig):
    """The paper's forgetting benchmarks (shared.eval.benchmarks names), scored once after the claims on the
    base and on the final merged models of the best full and main-LoRA runs of each save_merged condition,
    by the harness path the full preset scores along training (finetune.BenchmarkEval). fixture_rows > 0:
    read that many rows per evaluation split of small fixture files in the public formats, written into the
    run (shared.eval.benchmark_fixtures); 0: the real files under data_dir/task.benchmarks_path. limit
    caps the questions per task (None: all)."""
    tasks: tuple[str, ...]
    fixture_rows: int = 0
    limit: int | None = None


@dataclass
class OptimizerCheck(StrictConfig):
    """The other optimizer on one condition, full finetuning and the main LoRA config, each over its own
    LR grid of as many LRs as the main sweep's (placed at that optimizer's scale)."""
    condition: str
    optimizer: str
    betas: tuple[float, float]
    full_lrs: tuple[float, ...]
    lora_lrs: tuple[float, ...]


@dataclass
class SweepPreset(StrictConfig):
    """02_learning_forgetting: the conditions ("<domain>-<regime>"), the finetuning data (`task`: common
    ConditionSpec fields, `task_overrides` per condition), the shared TrainConfig fields, training
    durations in optimizer steps, the LR grids, the LoRA configurations and what is recorded."""
    conditions: tuple[str, ...]
    task: dict[str, Any]
    train: TrainConfig
    duration_mode: str
    full_lrs: tuple[float, ...]
    lora_lrs: tuple[float, ...]
    lora_main: LoraSettings
    task_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    durations: tuple[int, ...] = ()
    durations_by_condition: dict[str, tuple[int, ...]] = field(default_factory=dict)
    lora_variants: tuple[LoraSettings, ...] = ()
    variant_conditions: tuple[str, ...] = ()
    optimizer_check: OptimizerCheck | None = None
    spectral_steps: tuple[int, ...] = ()
    keep_spectra: bool = False
    save_merged: tuple[str, ...] = ()
    generation_conditions: tuple[str, ...] = ()
    max_new_tokens: int = 128
    condition_overrides: dict[str, ConditionSettings] = field(default_factory=dict)
    generation_eval: GenerationEval | None = None
    final_benchmarks: FinalBenchmarks | None = None
    # the evals column whose drop measures forgetting, and its name on figures: recall of the base's fact base
    # at smoke / small, the mean of the paper's benchmarks (task.benchmarks) at full
    forgetting_accuracy: str = "source_facts_acc"
    forgetting_accuracy_label: str = "fact recall"
    # same_tradeoff_curve's tolerance (nats of general-text loss at matched target loss) and where it comes from
    tradeoff_tolerance: float = 0.05
    tradeoff_tolerance_source: str = "assumed: no seed spread measured at this scale"

    def __post_init__(self):
        if self.duration_mode not in ("along", "separate"):
            raise ValueError(f"duration_mode={self.duration_mode!r}; valid choices: along, separate")
        for condition, over in self.condition_overrides.items():
            if condition not in self.conditions:
                raise ValueError(f"condition_overrides names {condition!r}, not one of {list(self.conditions)}")
            if over.duration_mode not in (None, "along", "separate"):
                raise ValueError(f"{condition}: duration_mode={over.duration_mode!r}; valid choices: along, separate")
            TrainConfig(**{**self.train.to_dict(), **over.train, "run_dir": None})
        for condition in self.conditions:
            domain, regime = condition.split("-")
            task = {**self.task, **self.task_overrides.get(condition, {}), "domain": domain, "regime": regime}
            if task.get("source") == "files":
                task["data_dir"] = "<data_dir>"          # given at run time
            ConditionSpec.from_dict(task)
            if not (self.durations_by_condition.get(condition) or self.durations):
                raise ValueError(f"no training durations for {condition}")


@dataclass
class SpectralPreset(StrictConfig):
    """03_spectral: the explained-variance fraction, the condition and layer whose spectra are drawn."""
    fraction: float
    condition: str
    curve_layer: int
    random_seed: int


@dataclass
class RegularizePreset(StrictConfig):
    """04_regularization_diversity: full finetuning with weight decay / dropout against LoRA, and the
    diversity of sampled generations."""
    condition: str
    weight_decays: tuple[float, ...]
    dropouts: tuple[float, ...]
    diversity_condition: str
    diversity_prompts: int
    diversity_samples: int
    temperature: float
    max_new_tokens: int


NOTEBOOKS = {
    "01_pretrain_base": NotebookPresets(BasePreset, BASE),
    "02_learning_forgetting": NotebookPresets(SweepPreset, SWEEP),
    "03_spectral": NotebookPresets(SpectralPreset, SPECTRAL),
    "04_regularization_diversity": NotebookPresets(RegularizePreset, REGULARIZE),
}
