"""Masked-language-model pretraining and checkpoint evaluation (MosaicBERT, masking-rate schedules).

A run is one ``MLMPretrainConfig`` (StrictConfig; JSON round-trippable, it travels to torchrun workers):

    config = MLMPretrainConfig.from_dict({
        "model": "mosaicbert-base" | {"flavour": "bert-base", **BertConfig overrides} | {BertConfig fields}
                 | {"transformers": config_dir, **transformers BertConfig fields},
                                   # vocab_size always comes from the tokenizer; the last form trains
                                   # transformers' own BertForMaskedLM (the Hugging Face BERT baseline)
        "train": {TrainConfig fields},                     # run_dir is set by the pipeline
        "masking": {"kind": "linear", "p_i": 0.3, "p_f": 0.15},          # MaskingSchedule fields
        "data": {"kind": "corpora", "corpora": [...], "vocab_size": V, "seq_len": S, "max_docs": N,
                 "eval_docs": M}                            # offline (smoke / small), or
                {"kind": "cache", "train_dir": ..., "eval_dir": ..., "tokenizer_dir": ...},
                                   # full scale: folders of shared.data.mlm_cache, a saved tokenizer
        "micro_batch_size": 32, "eval_rate": 0.15, "eval_batch_size": 64, "eval_samples": 256})
    history, rows = pretrain_and_finetune(config, run_dir, tokenizer, tasks, finetune_cfg, seeds=[0])

``pretrain_mlm`` is the entry point (world size 1 in-process, or every torchrun rank): it writes the
Trainer's metrics.jsonl and checkpoints under run_dir, ``model_config.json`` and ``process_time.jsonl``
(the process CPU time of training, shared.train.process_clock). ``evaluate_checkpoints`` finetunes
every checkpoint of a run on downstream tasks (shared.eval.glue; a transformers run's checkpoints
are converted to our encoder with the same weights, shared.models.bert_hf). ``glue_fixture_eval``
runs the real-GLUE evaluation path (a ``GlueFixtureCheck``) on small GLUE files in the public formats,
so smoke runs exercise the reading and scoring that full scale uses. ``MLMBatches`` is the resumable
sampler with dynamic masking at the scheduled rate.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from shared.data.corpora import load_corpus
from shared.data.mlm import MaskingSchedule, SpecialIds, encode_for_mlm, fixed_rate_batches, mask_generator, mask_tokens
from shared.data.mlm_cache import INDEX, load_mlm_cache, prepare_mlm_cache
from shared.data.tokenizer import ENCODER_SPECIAL_TOKENS, corpus_tokenizer
from shared.eval.glue import (
    GLUE_TASKS,
    GLUE_TRAIN_SIZES,
    FinetuneConfig,
    Task,
    finetune_tasks,
    glue_average,
    mosaicml_scoring,
)
from shared.eval.glue_fixtures import FORMATS, write_glue_fixtures
from shared.eval.glue_standins import downstream_tasks
from shared.models.bert import BertConfig, BertForMaskedLM
from shared.models.bert_hf import mlm_from_hf
from shared.models.output import ModelOutput
from shared.models.flavours import resolve_model_config
from shared.train import distributed as D
from shared.train.checkpoint import latest_checkpoint, list_checkpoints, load_model_weights, stamp_config
from shared.train.config import TrainConfig
from shared.train.data import ResumableBatches
from shared.train.metrics import History
from shared.train.process_clock import ProcessClock, read_process_time
from shared.train.runner import run_training
from shared.train.trainer import Trainer
from shared.utils.config import StrictConfig, to_dict
from shared.utils.runtime import seed_everything

EVAL_RATE = 0.15
ENTRY_POINT = "shared.pipelines.mlm_pretrain:pretrain_mlm"
DATA_KINDS = ("corpora", "cache")
TRANSFORMERS = "transformers"          # model spec key: the folder of a transformers BertConfig
# transformers' BertForMaskedLM at BERT's two published sizes (Devlin et al. 2019): the fields set over the
# bert-base-uncased config.json of the spec's folder (bert-large-uncased's config.json differs from it in
# exactly the large entry's size fields); max_position_embeddings 512 and attention dropout 0.1 as published
HF_BERT_SIZES = {"base": {"num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 512,
                          "attention_probs_dropout_prob": 0.1},
                 "large": {"num_hidden_layers": 24, "num_attention_heads": 16, "hidden_size": 1024,
                           "intermediate_size": 4096, "max_position_embeddings": 512,
                           "attention_probs_dropout_prob": 0.1}}
SCORINGS = ("glue", "mosaicml")

# ---- specs -------------------------------------------------------------------------------------


def bert_config(model: str | Mapping[str, Any], **overrides: Any) -> BertConfig:
    """The BertConfig of a flavour name (shared.models.flavours), ``{"flavour": name, **fields}``
    or plain BertConfig fields, with ``overrides`` applied; unknown fields raise naming the valid ones."""
    return resolve_model_config(model, "bert", **overrides)


def is_transformers_spec(model: Any) -> bool:
    """Whether a model spec names transformers' BertForMaskedLM ({"transformers": config_dir, ...})."""
    return isinstance(model, Mapping) and TRANSFORMERS in model


def check_model_spec(model: Any) -> None:
    """ValueError for a spec that names no model (an unknown flavour or field)."""
    if is_transformers_spec(model):
        bad = sorted(k for k, v in model.items() if k != TRANSFORMERS and not isinstance(v, (int, float, str, bool)))
        if bad:
            raise ValueError(f"transformers BertConfig fields {bad} must be plain values")
        return
    bert_config(model)


# transformers BertConfig field -> our BertConfig field (for cost estimates of a transformers spec)
_HF_FIELDS = {"num_hidden_layers": "n_layer", "num_attention_heads": "n_head", "hidden_size": "d_model",
              "intermediate_size": "d_ff", "max_position_embeddings": "max_seq_len",
              "hidden_dropout_prob": "dropout", "attention_probs_dropout_prob": "attn_dropout"}


def planning_spec(model: str | Mapping[str, Any]) -> str | dict[str, Any]:
    """A bert flavour spec of the same shape, for cost estimates: a transformers spec as the bert-base
    flavour with its size fields mapped (its config folder is read only at run time); others as given."""
    if not is_transformers_spec(model):
        return model
    return {"flavour": "bert-base", **{_HF_FIELDS[k]: v for k, v in model.items() if k in _HF_FIELDS}}


def hf_bert_spec(size: str, config_dir: str) -> dict[str, Any]:
    """The model spec of transformers' BertForMaskedLM at ``size`` ("base" or "large", HF_BERT_SIZES),
    built from the BertConfig in ``config_dir`` (e.g. "{data_dir}/bert-base-uncased"), randomly initialised."""
    if size not in HF_BERT_SIZES:
        raise ValueError(f"unknown BERT size {size!r}; valid: {', '.join(HF_BERT_SIZES)}")
    return {TRANSFORMERS: config_dir, **HF_BERT_SIZES[size]}


def glue_fixture_check(finetune: Mapping[str, Any], max_steps: int = 20) -> dict[str, Any]:
    """A preset's ``eval.glue_fixtures`` entry (GlueFixtureCheck) shaped like the full GLUE recipe: MNLI and
    CoLA from GLUE's TSVs, STS-B and MRPC from the Hub's parquet, CoLA by epochs, MRPC at two seeds, MRPC
    and STS-B started from the MNLI model, MosaicML's scoring; each task ``max_steps`` of ``finetune``."""
    return {"tasks": ["mnli", "cola", "stsb", "mrpc"], "rows": 48, "formats": {"stsb": "parquet", "mrpc": "parquet"},
            "finetune": {**finetune, "max_steps": max_steps}, "per_task": {"cola": {"epochs": 2}}, "seeds": [0],
            "task_seeds": {"mrpc": [0, 1]}, "start_from": {"mrpc": "mnli", "stsb": "mnli"}, "scoring": "mosaicml"}


def model_with(model: str | Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """A model spec (flavour name or dict) as a dict with ``fields`` added (e.g. recipe switches)."""
    return {**({"flavour": model} if isinstance(model, str) else dict(model)), **fields}


@dataclass(frozen=True)
class MLMDataSpec(StrictConfig):
    """Where the pretraining samples come from (see the module docstring)."""
    kind: str
    seq_len: int | None = None
    corpora: tuple[str, ...] = ()
    vocab_size: int | None = None
    max_docs: int | None = None
    eval_docs: int | None = None
    tokenizer_seed: int = 0
    tokenizer_max_docs: int | None = None
    data_seed: int = 0
    train_dir: str | None = None          # "cache": token caches and tokenizer folder
    eval_dir: str | None = None
    tokenizer_dir: str | None = None
    source_train: str | None = None       # "cache": raw documents the caches are built from, once
    source_eval: str | None = None

    def __post_init__(self):
        if self.kind not in DATA_KINDS:
            raise ValueError(f"data.kind={self.kind!r}; valid choices: {', '.join(DATA_KINDS)}")
        need = (("corpora", "vocab_size", "seq_len") if self.kind == "corpora"
                else ("train_dir", "eval_dir", "tokenizer_dir"))
        missing = [k for k in need if not getattr(self, k)]
        if missing:
            raise ValueError(f"a {self.kind!r} data spec needs {missing}")


@dataclass(frozen=True)
class MLMPretrainConfig(StrictConfig):
    """One pretraining run: model, trainer, masking schedule, data, sampler and MLM evaluation."""
    model: str | dict[str, Any]
    train: TrainConfig
    masking: MaskingSchedule
    data: MLMDataSpec
    micro_batch_size: int
    eval_rate: float = EVAL_RATE
    eval_batch_size: int = 64
    eval_samples: int | None = None

    def __post_init__(self):
        check_model_spec(self.model)                  # an unknown flavour or field fails here
        if self.train.micro_batch_size not in (None, self.micro_batch_size):
            raise ValueError(f"train.micro_batch_size={self.train.micro_batch_size} differs from "
                             f"micro_batch_size={self.micro_batch_size}")


@dataclass(frozen=True)
class DownstreamSpec(StrictConfig):
    """Finetuning evaluation of pretrained encoders: real GLUE tasks read from ``glue_dir``, else
    the offline stand-ins (shared.eval.glue_standins); at most task_train / task_eval examples.
    ``seeds``: finetuning seeds (None: the caller's, e.g. each pretraining run's own seed).
    ``per_task``: task -> FinetuneConfig fields over ``finetune``; ``task_seeds``: task -> its own
    seeds; ``start_from``: task -> the task whose finetuned model it starts from; ``scoring``:
    "glue" (leaderboard metrics) or "mosaicml" (MNLI matched and mismatched, STS-B Spearman;
    real GLUE only); ``glue_fixtures``: the real-GLUE path run on fixture files too (GlueFixtureCheck;
    smoke and small, whose tasks are stand-ins); ``min_metric``: {task: {metric: floor}}, a finetuning
    run's metric below its floor is left out of the average as a failed run (shared.eval.glue.glue_average).
    See shared.eval.glue.finetune_tasks."""
    tasks: tuple[str, ...]
    finetune: FinetuneConfig
    task_train: int | None = None
    task_eval: int | None = None
    glue_dir: str | None = None
    seeds: tuple[int, ...] | None = (0,)
    per_task: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    task_seeds: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    start_from: dict[str, str] = dataclasses.field(default_factory=dict)
    scoring: str = "glue"
    glue_fixtures: GlueFixtureCheck | None = None
    min_metric: dict[str, dict[str, float]] | None = None

    def __post_init__(self):
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring={self.scoring!r}; valid choices: {', '.join(SCORINGS)}")
        if self.scoring != "glue" and not self.glue_dir:
            raise ValueError(f"scoring={self.scoring!r} scores real GLUE tasks: set glue_dir")
        unknown = sorted((set(self.per_task) | set(self.task_seeds) | set(self.start_from)
                          | set(self.start_from.values()) | set(self.min_metric or {})) - set(self.tasks))
        if unknown:
            raise ValueError(f"per_task / task_seeds / start_from / min_metric name task(s) {unknown} not among "
                             f"tasks {list(self.tasks)}")
        for over in self.per_task.values():
            dataclasses.replace(self.finetune, **over)        # an unknown field fails here

    def load_tasks(self, seed: int = 0) -> list[Task]:
        tasks = downstream_tasks(list(self.tasks), self.glue_dir, self.task_train, self.task_eval, seed=seed)
        return mosaicml_scoring(tasks, self.glue_dir) if self.scoring == "mosaicml" else tasks

    def finetune_options(self) -> dict[str, Any]:
        """Keyword arguments of finetune_tasks beyond the shared recipe (empty when there are none)."""
        options: dict[str, Any] = {}
        if self.per_task:
            options["configs"] = {t: dataclasses.replace(self.finetune, **o) for t, o in self.per_task.items()}
        if self.task_seeds:
            options["seeds_by_task"] = {t: tuple(s) for t, s in self.task_seeds.items()}
        if self.start_from:
            options["start_from"] = dict(self.start_from)
        return options

    def finetune_runs(self, default_seeds: int = 1) -> list[tuple[str, FinetuneConfig, int]]:
        """(task, its recipe with max_steps fixed, seeds) per task, for cost estimates: an epoch-based
        recipe of a GLUE task gets the steps of its training set (GLUE_TRAIN_SIZES)."""
        options = self.finetune_options()
        runs = []
        for task in self.tasks:
            cfg = options.get("configs", {}).get(task, self.finetune)
            if cfg.epochs is not None and task in GLUE_TRAIN_SIZES:
                cfg = dataclasses.replace(cfg, max_steps=cfg.steps(GLUE_TRAIN_SIZES[task]), epochs=None)
            seeds = options.get("seeds_by_task", {}).get(task, self.seeds)
            runs.append((task, cfg, len(seeds) if seeds else default_seeds))
        return runs


@dataclass(frozen=True)
class GlueFixtureCheck(StrictConfig):
    """The real-GLUE evaluation path (reading GLUE's files, per-task recipes and seeds, tasks started
    from another task's model, the scoring) run briefly on small files in the public GLUE formats
    (shared.eval.glue_fixtures), which a run writes under its run dir: smoke runs, whose scored tasks
    are stand-ins, exercise the code full scale runs on the real GLUE. ``rows`` / ``eval_rows``:
    examples per training / evaluation split; ``formats``: task -> "tsv" (the original GLUE release)
    or "parquet" (the Hub's nyu-mll/glue), tsv when not named; ``data_seed``: the files' generation;
    the other fields as in DownstreamSpec."""
    tasks: tuple[str, ...]
    finetune: FinetuneConfig
    rows: int = 48
    eval_rows: int | None = None
    formats: dict[str, str] = dataclasses.field(default_factory=dict)
    data_seed: int = 0
    seeds: tuple[int, ...] = (0,)
    per_task: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    task_seeds: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    start_from: dict[str, str] = dataclasses.field(default_factory=dict)
    scoring: str = "mosaicml"

    def __post_init__(self):
        unknown = sorted(set(self.tasks) - set(GLUE_TASKS))
        if unknown:
            raise ValueError(f"glue_fixtures.tasks {unknown} are not GLUE tasks; valid: {', '.join(GLUE_TASKS)}")
        bad = {t: f for t, f in self.formats.items() if t not in self.tasks or f not in FORMATS}
        if bad:
            raise ValueError(f"glue_fixtures.formats {bad}: name tasks among {list(self.tasks)} and formats among "
                             f"{', '.join(FORMATS)}")
        self.downstream("glue_fixtures")                   # per_task / start_from / scoring errors fail here

    def downstream(self, glue_dir: str) -> DownstreamSpec:
        """The DownstreamSpec that reads the fixture files in ``glue_dir``, as full scale reads GLUE."""
        return DownstreamSpec(tasks=self.tasks, finetune=self.finetune, glue_dir=glue_dir, seeds=self.seeds,
                              per_task=self.per_task, task_seeds=self.task_seeds, start_from=self.start_from,
                              scoring=self.scoring)


def fill_data_dir(obj: Any, data_dir: str | None) -> Any:
    """A preset (dicts, lists, tuples, dataclasses) with "{data_dir}" in its strings replaced (full
    scale reads prepared data there); ValueError when a string needs it and data_dir is None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: fill_data_dir(getattr(obj, f.name), data_dir)
                                           for f in dataclasses.fields(obj) if f.init})
    if isinstance(obj, dict):
        return {k: fill_data_dir(v, data_dir) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(fill_data_dir(v, data_dir) for v in obj)
    if isinstance(obj, str) and "{data_dir}" in obj:
        if data_dir is None:
            raise ValueError(f"this scale reads {obj!r}: pass data_dir")
        return obj.replace("{data_dir}", data_dir)
    return obj

# ---- data ----------------------------------------------------------------------------------------


def encoder_tokenizer(corpora: Sequence[str], vocab_size: int, seed: int = 0, max_docs: int | None = None):
    """A byte-level BPE with [MASK]/[CLS]/[SEP]/[PAD] trained on the offline corpora (cached)."""
    return corpus_tokenizer(list(corpora), vocab_size, seed=seed, max_docs=max_docs,
                            special_tokens=ENCODER_SPECIAL_TOKENS)


@functools.lru_cache(maxsize=4)
def _corpora_data(key: str):
    spec = MLMDataSpec.from_dict(json.loads(key))
    tok = encoder_tokenizer(spec.corpora, spec.vocab_size, spec.tokenizer_seed, spec.tokenizer_max_docs)
    special = SpecialIds.of(tok)
    train, test = [], []
    for name in spec.corpora:
        train += load_corpus(name, "train", max_docs=spec.max_docs, seed=spec.data_seed)
        test += load_corpus(name, "test", max_docs=spec.eval_docs, seed=spec.data_seed)
    return tok, encode_for_mlm(train, tok, spec.seq_len, special), encode_for_mlm(test, tok, spec.seq_len, special)


def _as_data_spec(spec: MLMDataSpec | Mapping[str, Any]) -> MLMDataSpec:
    return spec if isinstance(spec, MLMDataSpec) else MLMDataSpec.from_dict(spec)


def load_mlm_data(spec: MLMDataSpec | Mapping[str, Any]):
    """(tokenizer, train rows, eval rows) for a data spec; rows are {"input_ids": (N, S) long,
    "attention_mask": (N, S) bool}. Offline corpora are tokenized once per process."""
    spec = _as_data_spec(spec)
    if spec.kind == "corpora":
        return _corpora_data(json.dumps(spec.to_dict(), sort_keys=True))
    from transformers import AutoTokenizer  # third-party, slow to import
    tok = AutoTokenizer.from_pretrained(spec.tokenizer_dir, local_files_only=True)
    return tok, load_mlm_cache(spec.train_dir), load_mlm_cache(spec.eval_dir)


def ensure_mlm_data(spec: MLMDataSpec | Mapping[str, Any]) -> None:
    """Full scale: tokenize the raw corpus into the token caches a "cache" data spec names, once
    (needs source_train, source_eval, seq_len). Offline corpora need nothing."""
    spec = _as_data_spec(spec)
    if spec.kind != "cache":
        return
    from transformers import AutoTokenizer
    for split in ("train", "eval"):
        if not (Path(getattr(spec, f"{split}_dir")) / INDEX).exists():
            tok = AutoTokenizer.from_pretrained(spec.tokenizer_dir, local_files_only=True)
            prepare_mlm_cache(getattr(spec, f"source_{split}"), tok, spec.seq_len, getattr(spec, f"{split}_dir"))


class MLMBatches:
    """Endless, resumable micro-batches {"input_ids", "attention_mask", "labels"} (B, S) with dynamic
    masking at the scheduled rate. Rows come from ``ResumableBatches`` (shuffled per epoch, the
    rank's share of each global micro-batch); masks from ``mask_generator(seed, rank, draw)``.
    State: the row sampler's, the draw count, progress. The trainer's step reaches the schedule
    through ``progress_callback()``, so the micro-batches of update s use p(s / max_steps), with
    any gradient accumulation or resume.
    """

    def __init__(self, data: dict[str, torch.Tensor], micro_batch_size: int, schedule: MaskingSchedule,
                 special: SpecialIds, *, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.rows = ResumableBatches({"input_ids": data["input_ids"], "attention_mask": data["attention_mask"]},
                                     micro_batch_size, rank=rank, world_size=world_size, seed=seed)
        self.schedule, self.special, self.seed, self.rank = schedule, special, seed, rank
        self.replacement_ids = special.replacement_ids()
        self.draws, self.progress = 0, 0.0

    def __iter__(self) -> MLMBatches:
        return self

    @property
    def rate(self) -> float:
        """The masking rate the next batch is drawn with."""
        return self.schedule(self.progress)

    def set_progress(self, step: int, max_steps: int) -> None:
        self.progress = step / max_steps

    def __next__(self) -> dict[str, torch.Tensor]:
        rows = next(self.rows)
        ids, labels = mask_tokens(rows["input_ids"], rows["attention_mask"], self.rate, self.special,
                                  mask_generator(self.seed, self.rank, self.draws), self.replacement_ids)
        self.draws += 1
        return {"input_ids": ids, "attention_mask": rows["attention_mask"], "labels": labels}

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows.state_dict(), "draws": self.draws, "progress": self.progress}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows.load_state_dict(state["rows"])
        self.draws, self.progress = int(state["draws"]), float(state["progress"])

    def progress_callback(self) -> ProgressCallback:
        return ProgressCallback(self)


class ProgressCallback:
    """Trainer callback telling ``target.set_progress(step, max_steps)`` the updates done, at the
    start of a fit (0, or the step resumed from) and after every update."""

    def __init__(self, target):
        self.target = target

    def on_fit_start(self, trainer) -> None:
        self.target.set_progress(trainer.step, trainer.config.max_steps)

    def on_step_end(self, trainer, record) -> None:
        self.target.set_progress(trainer.step, trainer.config.max_steps)

# ---- loss, evaluation, entry point ---------------------------------------------------------------


def mlm_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
    """Trainer loss_fn: cross-entropy at the masked tokens; logs masked accuracy, the realised
    masking rate, and counts real (non-padding) tokens as the tokens of the batch.
    batch: input_ids, attention_mask, labels (B, S)."""
    out = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"])
    targets = batch["labels"][batch["labels"] != -100]          # (M,), the rows of out.logits (M, V)
    real = batch["attention_mask"].sum()
    with torch.no_grad():
        acc = (out.logits.argmax(-1) == targets).float().mean() if targets.numel() else torch.zeros(())
    return out.loss, {"masked_accuracy": acc, "mask_rate": targets.numel() / real.clamp(min=1),
                      "num_tokens": int(real)}


def mlm_evaluator(batches: list[dict[str, torch.Tensor]]):
    """eval fn(model) -> {"loss", "accuracy"}: token-weighted over fixed, pre-masked batches."""
    def mlm_eval(model) -> dict[str, float]:
        device = next(model.parameters()).device
        total = correct = count = 0.0
        for b in batches:
            labels = b["labels"].to(device)
            out = model(b["input_ids"].to(device), b["attention_mask"].to(device), labels=labels)
            targets = labels[labels != -100]                    # (M,), the rows of out.logits (M, V)
            n = targets.numel()
            total += float(out.loss) * n
            correct += float((out.logits.argmax(-1) == targets).sum())
            count += n
        return {"loss": total / max(count, 1), "accuracy": correct / max(count, 1)}
    return mlm_eval


class TransformersMLM(torch.nn.Module):
    """transformers' BertForMaskedLM (``.hf``) behind our MLM interface: forward(input_ids (B, S),
    attention_mask (B, S), labels (B, S)) -> ModelOutput(logits (M, V) at the M labelled tokens,
    loss). The loss is transformers' own (logits over every token, cross-entropy at the labels)."""

    def __init__(self, hf_config):
        super().__init__()
        from transformers import BertForMaskedLM as HFBertForMaskedLM
        self.hf = HFBertForMaskedLM(hf_config)
        self.blocks = self.hf.bert.encoder.layer

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], vocab_size: int) -> TransformersMLM:
        from transformers import BertConfig as HFBertConfig
        fields = {k: v for k, v in spec.items() if k != TRANSFORMERS}
        return cls(HFBertConfig.from_pretrained(spec[TRANSFORMERS], vocab_size=vocab_size, **fields))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> ModelOutput:
        mask = None if attention_mask is None else attention_mask.long()
        out = self.hf(input_ids=input_ids, attention_mask=mask, labels=labels)
        logits = out.logits if labels is None else out.logits[labels != -100]
        return ModelOutput(logits, out.loss)


def build_mlm_model(model: str | Mapping[str, Any], vocab_size: int) -> BertForMaskedLM | TransformersMLM:
    if is_transformers_spec(model):
        return TransformersMLM.from_spec(model, vocab_size)
    return BertForMaskedLM(bert_config(model, vocab_size=vocab_size))


def as_encoder_mlm(model: BertForMaskedLM | TransformersMLM) -> BertForMaskedLM:
    """Our BertForMaskedLM with the model's weights (transformers' converted by shared.models.bert_hf)."""
    if isinstance(model, TransformersMLM):
        return mlm_from_hf(model.hf)
    return model


def _model_config_json(model) -> dict[str, Any]:
    if isinstance(model, TransformersMLM):
        return {TRANSFORMERS: model.hf.config.to_dict()}
    return dataclasses.asdict(model.cfg)


def pretrain_mlm(config: MLMPretrainConfig | Mapping[str, Any], run_dir: str) -> None:
    """Entry point (world size 1 in-process, or every torchrun rank): pretrain and checkpoint."""
    cfg = config if isinstance(config, MLMPretrainConfig) else MLMPretrainConfig.from_dict(config)
    tok, train_rows, eval_rows = load_mlm_data(cfg.data)
    special = SpecialIds.of(tok)
    seed_everything(cfg.train.seed)        # the initial weights depend on the seed only, not on what ran before
    model = build_mlm_model(cfg.model, len(tok))
    tcfg = dataclasses.replace(cfg.train, run_dir=run_dir)
    rank, world = D.get_rank(), D.get_world_size()
    batches = MLMBatches(train_rows, cfg.micro_batch_size, cfg.masking, special, seed=tcfg.seed, rank=rank,
                         world_size=world)
    n_eval = min(len(eval_rows["input_ids"]), cfg.eval_samples if cfg.eval_samples is not None else 10**9)
    idx = torch.arange(n_eval)
    eval_data = {k: v[idx] for k, v in eval_rows.items()}
    evals = {"mlm15": mlm_evaluator(fixed_rate_batches(eval_data, cfg.eval_rate, special, cfg.eval_batch_size))}
    if rank == 0:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / "model_config.json").write_text(json.dumps(_model_config_json(model), indent=1))
    Trainer(model, mlm_loss, batches, tcfg, eval_fns=evals,
            callbacks=[batches.progress_callback(), ProcessClock(run_dir)]).fit()


def load_pretrained_mlm(run_dir: str | Path, step: int | None = None) -> BertForMaskedLM:
    """The model of a pretraining run: its last checkpoint, or the one at ``step`` (a transformers
    run's converted to our BertForMaskedLM, same weights)."""
    run_dir = Path(run_dir)
    saved = json.loads((run_dir / "model_config.json").read_text())
    if TRANSFORMERS in saved:
        from transformers import BertConfig as HFBertConfig
        model = TransformersMLM(HFBertConfig.from_dict(saved[TRANSFORMERS]))
    else:
        model = BertForMaskedLM(BertConfig(**saved))
    if step is None:
        path = latest_checkpoint(run_dir)
    else:
        path = next((p for p in list_checkpoints(run_dir) if p.name == f"step_{step:08d}"), None)
    if path is None:
        raise FileNotFoundError(f"no checkpoint{'' if step is None else f' at step {step}'} under {run_dir}")
    load_model_weights(path, model)
    return as_encoder_mlm(model)


def checkpoint_steps(run_dir: str | Path) -> list[int]:
    return [int(p.name.split("_")[-1]) for p in list_checkpoints(run_dir)]


def evaluate_checkpoints(run_dir: str | Path, tokenizer, tasks: Sequence[Task], finetune_cfg: FinetuneConfig,
                         seeds: Sequence[int] = (0,), steps: list[int] | None = None,
                         finetune_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Finetune the checkpoints of a pretraining run (all, or ``steps``) on ``tasks``
    (``finetune_options``: further keyword arguments of finetune_tasks, DownstreamSpec.finetune_options).

    Rows {"step", "elapsed_s" (pretraining wall-clock to that step, eval and checkpoint time
    excluded), "cpu_s" (the same in process CPU seconds), "mlm15_loss" (eval at that step, if
    logged), "task", "seed", metrics..., "score"}."""
    history = History.from_run_dir(run_dir)
    elapsed = {r["step"]: r["elapsed_s"] for r in history.train}
    mlm = {r["step"]: r.get("mlm15/loss") for r in history.eval}
    cpu = read_process_time(run_dir)
    rows = []
    for step in steps if steps is not None else checkpoint_steps(run_dir):
        model = load_pretrained_mlm(run_dir, step)
        for r in finetune_tasks(model, tokenizer, tasks, finetune_cfg, seeds=seeds, **(finetune_options or {})):
            rows.append({"step": step, "elapsed_s": elapsed.get(step), "cpu_s": cpu.get(step),
                         "mlm15_loss": mlm.get(step), **r})
    return rows


def glue_fixture_eval(check: GlueFixtureCheck, run_dir: str | Path, tokenizer, folder: str | Path
                      ) -> dict[str, Any]:
    """Write ``check``'s GLUE fixture files under ``folder``, read them through DownstreamSpec.load_tasks
    (the real-GLUE readers and scoring), finetune the last checkpoint of the pretraining run in ``run_dir``
    with the check's recipes (evaluate_checkpoints) and average as glue_average does.

    Returns {"glue_dir", "files" (task -> paths under glue_dir), "step", "average", "tasks", "spread"
    (glue_average), "runs" (evaluate_checkpoints rows), "seconds" (wall-clock of the whole check)}."""
    start = time.perf_counter()
    folder = Path(folder)
    written = write_glue_fixtures(folder, check.tasks, check.rows, check.eval_rows, check.data_seed, check.formats)
    spec = check.downstream(str(folder))
    steps = checkpoint_steps(run_dir)[-1:]
    if not steps:
        raise FileNotFoundError(f"no checkpoint under {run_dir} to finetune on the GLUE fixtures")
    runs = evaluate_checkpoints(run_dir, tokenizer, spec.load_tasks(check.data_seed), spec.finetune, seeds=spec.seeds,
                                steps=steps, finetune_options=spec.finetune_options())
    return {"glue_dir": str(folder), "files": {t: [str(p.relative_to(folder)) for p in ps] for t, ps in written.items()},
            "step": steps[0], **glue_average(runs), "runs": runs, "seconds": time.perf_counter() - start}


def pretrain_and_finetune(config: MLMPretrainConfig, run_dir: str | Path, tokenizer, tasks: Sequence[Task],
                          finetune_cfg: FinetuneConfig, seeds: Sequence[int] = (0,), *, nproc_per_node: int = 1,
                          nnodes: int = 1, finetune_options: Mapping[str, Any] | None = None,
                          final_only: bool = False) -> tuple[History, list[dict[str, Any]]]:
    """Pretrain one run (this process at world size 1, torchrun beyond), then finetune each of its
    checkpoints on ``tasks`` (rows as ``evaluate_checkpoints``). Returns (history, rows). A run_dir
    already trained under another config is refused (``stamp_config``), not silently reused.
    final_only: finetune the final checkpoint alone (the periodic ones a long run keeps for resuming
    are not results)."""
    stamp_config(run_dir, to_dict(config))
    history = run_training(ENTRY_POINT, to_dict(config), run_dir=run_dir, nproc_per_node=nproc_per_node,
                           nnodes=nnodes)
    steps = checkpoint_steps(run_dir)[-1:] if final_only else None
    return history, evaluate_checkpoints(run_dir, tokenizer, tasks, finetune_cfg, seeds=seeds, steps=steps,
                                         finetune_options=finetune_options)


__all__ = ["DownstreamSpec", "EVAL_RATE", "GlueFixtureCheck", "HF_BERT_SIZES", "MLMBatches", "MLMDataSpec", "MLMPretrainConfig",
           "ProgressCallback", "TransformersMLM", "as_encoder_mlm", "bert_config", "build_mlm_model",
           "check_model_spec", "checkpoint_steps", "encoder_tokenizer", "ensure_mlm_data", "evaluate_checkpoints",
           "fill_data_dir", "glue_fixture_check", "glue_fixture_eval", "hf_bert_spec", "is_transformers_spec", "load_mlm_data", "load_pretrained_mlm",
           "mlm_evaluator", "mlm_loss", "model_with", "planning_spec", "pretrain_and_finetune", "pretrain_mlm"]
