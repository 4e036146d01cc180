"""GLUE-style finetuning of an encoder: task specs, the GLUE metrics, readers of the real GLUE
files, encoding of single sentences and sentence pairs, and finetuning over several seeds on the
shared Trainer.

    tasks = read_glue_tasks(data_dir, ["cola", "sst2", "mrpc", "stsb", ...])   # real GLUE files
    results = finetune_tasks(encoder, tokenizer, tasks, FinetuneConfig(...), seeds=[0, 1, 2])
    glue_average(results)                   # mean over tasks of each task's score (mean over seeds)

Scores are in percent. A task's score is the mean of its metrics (the GLUE leaderboard's convention:
MRPC and QQP average F1 and accuracy, STS-B Pearson and Spearman; CoLA is Matthews correlation;
MNLI is matched accuracy). ``mosaicml_scoring(tasks, data_dir)`` switches to the convention of
MosaicML's GLUE runner (mosaicml/examples v0.0.4 ``examples/bert/glue.py``): MNLI is the mean of the
matched and mismatched accuracies, STS-B is Spearman only. ``finetune_tasks`` also takes per-task
recipes, per-task seeds and tasks that start from another task's finetuned model (the runner
finetunes RTE, MRPC and STS-B from the MNLI checkpoint). Offline stand-in tasks for smoke scale are
in ``glue_standins.py``; small files in the public GLUE formats, which smoke runs read and score
through this same path, are written by ``glue_fixtures.py``.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.data.formats import read_jsonl, read_parquet
from shared.data.mlm import SpecialIds
from shared.models.bert import Bert, BertForMaskedLM, BertForSequenceClassification
from shared.train.config import TrainConfig
from shared.train.data import ResumableBatches
from shared.train.trainer import Trainer
from shared.utils.config import StrictConfig

METRICS = ("accuracy", "f1", "matthews", "pearson", "spearman")


@dataclass(frozen=True)
class GlueTaskSpec:
    """What a task is: its text fields (1 or 2), labels (num_labels 1 = regression), metrics."""
    name: str
    text_fields: tuple[str, ...]
    num_labels: int
    metrics: tuple[str, ...]
    label_field: str = "label"
    eval_split: str = "validation"
    label_names: tuple[str, ...] = ()     # textual labels of the original GLUE tsv files, in id order
    stands_for: str = ""                  # stand-in tasks: the GLUE task it plays the role of

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1


GLUE_TASKS: dict[str, GlueTaskSpec] = {t.name: t for t in [
    GlueTaskSpec("cola", ("sentence",), 2, ("matthews",)),
    GlueTaskSpec("sst2", ("sentence",), 2, ("accuracy",)),
    GlueTaskSpec("mrpc", ("sentence1", "sentence2"), 2, ("f1", "accuracy")),
    GlueTaskSpec("qqp", ("question1", "question2"), 2, ("f1", "accuracy")),
    GlueTaskSpec("stsb", ("sentence1", "sentence2"), 1, ("pearson", "spearman")),
    GlueTaskSpec("mnli", ("premise", "hypothesis"), 3, ("accuracy",), eval_split="validation_matched",
                 label_names=("entailment", "neutral", "contradiction")),
    GlueTaskSpec("qnli", ("question", "sentence"), 2, ("accuracy",), label_names=("entailment", "not_entailment")),
    GlueTaskSpec("rte", ("sentence1", "sentence2"), 2, ("accuracy",), label_names=("entailment", "not_entailment")),
]}

# training examples of each task (GLUE's train splits), for step counts of epoch-based recipes
GLUE_TRAIN_SIZES = {"cola": 8551, "sst2": 67349, "mrpc": 3668, "qqp": 363846, "stsb": 5749, "mnli": 392702,
                    "qnli": 104743, "rte": 2490}

# MosaicML's GLUE finetuning (mosaicml/examples v0.0.4, examples/bert/src/glue/finetuning_jobs.py), shared by the
# MosaicBERT and masking-rate papers: the MNLI recipe, each task's own over it, and each task's seeds
# the authors' results notebook (mosaicml/examples@427724ff, examples/bert/results/glue-best-results.ipynb,
# `min_task_acc`) leaves out a finetuning run's metric below these floors before averaging (failed runs)
MOSAICML_GLUE_MIN_METRIC = {"cola": {"matthews": 45.0}, "mnli": {"accuracy": 75.0, "accuracy_mismatched": 75.0},
                            "mrpc": {"f1": 82.0, "accuracy": 75.0}, "qnli": {"accuracy": 80.0},
                            "qqp": {"f1": 75.0, "accuracy": 80.0}, "rte": {"accuracy": 65.0},
                            "sst2": {"accuracy": 80.0}, "stsb": {"spearman": 75.0}}
MOSAICML_GLUE_TASKS = ("mnli", "qnli", "qqp", "sst2", "cola", "stsb", "mrpc", "rte")
MOSAICML_GLUE_FINETUNE = {"epochs": 3, "lr": 5e-5, "micro_batch_size": 48, "seq_len": 256, "dropout": 0.1,
                          "weight_decay": 5e-6, "warmup_fraction": 0.06,
                          "extra_train": {"grad_clip": None, "decay_norm_and_bias": True, "precision": "bf16"}}
MOSAICML_GLUE_PER_TASK = {"rte": {"epochs": 3, "micro_batch_size": 16, "lr": 1e-5, "weight_decay": 1e-5},
                          "qqp": {"epochs": 5, "micro_batch_size": 16, "lr": 3e-5, "weight_decay": 3e-6},
                          "cola": {"epochs": 10, "micro_batch_size": 32, "lr": 5e-5, "weight_decay": 5e-6},
                          "mrpc": {"epochs": 10, "micro_batch_size": 32, "lr": 8e-5, "weight_decay": 8e-6},
                          "qnli": {"epochs": 10, "micro_batch_size": 16, "lr": 1e-5, "weight_decay": 1e-6},
                          "sst2": {"epochs": 3, "micro_batch_size": 16, "lr": 3e-5, "weight_decay": 3e-6},
                          "stsb": {"epochs": 10, "micro_batch_size": 32, "lr": 3e-5, "weight_decay": 3e-6}}
MOSAICML_GLUE_SEEDS = [19, 8364, 717, 10536, 90166]
MOSAICML_GLUE_TASK_SEEDS = {"rte": MOSAICML_GLUE_SEEDS, "stsb": MOSAICML_GLUE_SEEDS, "mrpc": MOSAICML_GLUE_SEEDS,
                            "sst2": MOSAICML_GLUE_SEEDS[:3], "cola": MOSAICML_GLUE_SEEDS[:4]}

# ---- metrics ---------------------------------------------------------------------------------


def compute_metric(name: str, preds: np.ndarray, labels: np.ndarray) -> float:
    """One GLUE metric, as a fraction (accuracy, F1 of class 1, Matthews) or a correlation."""
    preds, labels = np.asarray(preds), np.asarray(labels)
    if name == "accuracy":
        return float((preds == labels).mean())
    if name == "f1":
        tp = float(((preds == 1) & (labels == 1)).sum())
        fp = float(((preds == 1) & (labels != 1)).sum())
        fn = float(((preds != 1) & (labels == 1)).sum())
        return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)
    if name == "matthews":
        tp = float(((preds == 1) & (labels == 1)).sum()); tn = float(((preds == 0) & (labels == 0)).sum())
        fp = float(((preds == 1) & (labels == 0)).sum()); fn = float(((preds == 0) & (labels == 1)).sum())
        denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return 0.0 if denom == 0 else (tp * tn - fp * fn) / denom
    if name in ("pearson", "spearman"):
        from scipy import stats
        if np.std(preds) == 0 or np.std(labels) == 0:
            return 0.0
        fn_ = stats.pearsonr if name == "pearson" else stats.spearmanr
        return float(fn_(preds, labels)[0])
    raise ValueError(f"unknown metric {name!r}; valid choices: {', '.join(METRICS)}")


def task_metrics(spec: GlueTaskSpec, preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """{metric: value in percent, ..., "score": mean of them}."""
    out = {m: 100.0 * compute_metric(m, preds, labels) for m in spec.metrics}
    out["score"] = float(np.mean([out[m] for m in spec.metrics]))
    return out

# ---- data ------------------------------------------------------------------------------------


@dataclass
class TaskData:
    """Examples of one split: texts (one list per text field) and labels (int, or float for regression)."""
    texts: list[list[str]]
    labels: list[float]

    def __post_init__(self):
        if not self.texts or any(len(t) != len(self.labels) for t in self.texts):
            raise ValueError("every text field needs one entry per label")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None, seed: int = 0) -> TaskData:
        if n is None or n >= len(self):
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return TaskData([[col[i] for i in keep] for col in self.texts], [self.labels[i] for i in keep])


@dataclass
class Task:
    """A task's train and eval splits; ``extra_evals``: further eval splits (name -> data) whose
    metrics are reported with the split name appended and enter the task's score."""
    spec: GlueTaskSpec
    train: TaskData
    eval: TaskData
    extra_evals: dict[str, TaskData] = field(default_factory=dict)


# original GLUE distribution: folder names and tsv columns (0-based index when the file has no header)
GLUE_DIRS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B", "mnli": "MNLI",
             "qnli": "QNLI", "rte": "RTE"}
_TSV_COLUMNS = {"cola": {"sentence": 3, "label": 1}, "mrpc": {"sentence1": "#1 String", "sentence2": "#2 String",
                "label": "Quality"}, "qqp": {"label": "is_duplicate"}, "stsb": {"label": "score"},
                "mnli": {"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"}}
TSV_SPLITS = {"train": "train", "validation": "dev", "validation_matched": "dev_matched",
              "validation_mismatched": "dev_mismatched"}


def _convert_label(spec: GlueTaskSpec, value: Any) -> float:
    if spec.is_regression:
        return float(value)
    if isinstance(value, str) and spec.label_names and value in spec.label_names:
        return spec.label_names.index(value)
    return int(value)


def _read_tsv(path: Path, spec: GlueTaskSpec) -> TaskData:
    cols = _TSV_COLUMNS.get(spec.name, {})
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = None if spec.name == "cola" else rows[0]
    body = rows if header is None else rows[1:]
    fields = (*spec.text_fields, "label")

    def index(name: str) -> int:
        key = cols.get(name, name)
        if isinstance(key, int):
            return key
        if key not in header:
            raise ValueError(f"{path}: no column {key!r} for {spec.name}.{name}; columns are {header}")
        return header.index(key)

    idx = [index(n) for n in fields]
    body = [r for r in body if len(r) > max(idx)]
    return TaskData([[r[i] for r in body] for i in idx[:-1]], [_convert_label(spec, r[idx[-1]]) for r in body])


def _records(folder: Path, split: str) -> list[dict[str, Any]] | None:
    """Rows of ``<split>.jsonl``, ``<split>.parquet`` or the Hugging Face Hub's parquet shards
    ``<split>-00000-of-0000N.parquet`` (nyu-mll/glue), in shard order; None when there are none."""
    for suffix, reader in ((".jsonl", read_jsonl), (".parquet", read_parquet)):
        path = folder / f"{split}{suffix}"
        if path.exists():
            return list(reader(path))
    shards = sorted(folder.glob(f"{split}-[0-9]*-of-[0-9]*.parquet"))
    if shards:
        return [r for shard in shards for r in read_parquet(shard)]
    return None


def read_task_split(data_dir: str | Path, spec: GlueTaskSpec, split: str) -> TaskData:
    """One split of a task from ``data_dir``: ``<task>/<split>.jsonl|.parquet`` or the Hub's
    ``<task>/<split>-0000K-of-0000N.parquet`` shards (Hugging Face field names), or the original
    GLUE ``<GLUE dir>/<train|dev|dev_matched|dev_mismatched>.tsv``."""
    data_dir = Path(data_dir)
    for folder in (data_dir / spec.name, data_dir / GLUE_DIRS.get(spec.name, spec.name)):
        records = _records(folder, split)
        if records is not None:
            return TaskData([[str(r[f]) for r in records] for f in spec.text_fields],
                            [_convert_label(spec, r[spec.label_field]) for r in records])
        tsv = folder / f"{TSV_SPLITS.get(split, split)}.tsv"
        if tsv.exists():
            return _read_tsv(tsv, spec)
    raise FileNotFoundError(f"no {spec.name} {split} split under {data_dir} (looked for {spec.name}/{split}.jsonl, "
                            f".parquet and {GLUE_DIRS.get(spec.name, spec.name)}/{TSV_SPLITS.get(split, split)}.tsv)")


def read_glue_tasks(data_dir: str | Path, names: Sequence[str] = tuple(GLUE_TASKS)) -> list[Task]:
    unknown = sorted(set(names) - set(GLUE_TASKS))
    if unknown:
        raise ValueError(f"unknown GLUE task(s) {unknown}; valid: {', '.join(GLUE_TASKS)}")
    return [Task(GLUE_TASKS[n], read_task_split(data_dir, GLUE_TASKS[n], "train"),
                 read_task_split(data_dir, GLUE_TASKS[n], GLUE_TASKS[n].eval_split)) for n in names]


def mosaicml_scoring(tasks: Sequence[Task], data_dir: str | Path) -> list[Task]:
    """``tasks`` scored as MosaicML's GLUE runner scores them: MNLI also on validation_mismatched
    (the score averages both accuracies), STS-B by Spearman correlation only."""
    out = []
    for task in tasks:
        if task.spec.name == "mnli" and "mismatched" not in task.extra_evals:
            task = Task(task.spec, task.train, task.eval,
                        {**task.extra_evals, "mismatched": read_task_split(data_dir, task.spec, "validation_mismatched")})
        elif task.spec.name == "stsb":
            task = Task(dataclasses.replace(task.spec, metrics=("spearman",)), task.train, task.eval, task.extra_evals)
        out.append(task)
    return out


def encode_task(data: TaskData, tokenizer, seq_len: int, special: SpecialIds) -> dict[str, torch.Tensor]:
    """[CLS] a [SEP] (b [SEP]), longest-first truncation to seq_len, token types 0 for a, 1 for b.

    Returns input_ids, attention_mask (bool), token_type_ids (N, seq_len) and labels (N,)."""
    enc = [tokenizer(col, add_special_tokens=False)["input_ids"] for col in data.texts]
    n = len(data)
    ids = torch.full((n, seq_len), special.pad, dtype=torch.long)
    types = torch.zeros((n, seq_len), dtype=torch.long)
    mask = torch.zeros((n, seq_len), dtype=torch.bool)
    budget = seq_len - 1 - len(enc)                 # [CLS] and one [SEP] per segment
    for i in range(n):
        parts = [list(col[i]) for col in enc]
        while sum(map(len, parts)) > budget:
            longest = max(range(len(parts)), key=lambda j: len(parts[j]))
            parts[longest].pop()
        row, tt = [special.cls], [0]
        for j, p in enumerate(parts):
            row += p + [special.sep]
            tt += [j] * (len(p) + 1)
        ids[i, :len(row)] = torch.tensor(row)
        types[i, :len(row)] = torch.tensor(tt)
        mask[i, :len(row)] = True
    dtype = torch.float32 if isinstance(data.labels[0], float) else torch.long
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
            "labels": torch.tensor(data.labels, dtype=dtype)}

# ---- finetuning ------------------------------------------------------------------------------


@dataclass
class FinetuneConfig(StrictConfig):
    """Finetuning recipe (MosaicBERT's GLUE yaml: linear warmup 6%, decay to 0, AdamW);
    ``FinetuneConfig.from_dict(d)`` builds one strictly from a preset's dict."""
    max_steps: int = 100
    epochs: float | None = None           # set: train this many epochs, ceil(n / micro_batch_size) steps each
    micro_batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 5e-6
    warmup_fraction: float = 0.06
    seq_len: int = 128
    dropout: float = 0.1
    eval_batch_size: int = 128
    train_limit: int | None = None        # use at most this many training examples
    extra_train: dict[str, Any] = field(default_factory=dict)   # further TrainConfig fields

    def steps(self, n_train: int) -> int:
        """Optimizer steps for ``n_train`` examples: ``max_steps``, or ``epochs`` full passes."""
        if self.epochs is None:
            return self.max_steps
        return max(1, math.ceil(self.epochs * math.ceil(n_train / min(self.micro_batch_size, n_train))))


def classification_loss(model, batch):
    out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], labels=batch["labels"])
    return out.loss, {}


@torch.no_grad()
def predict(model: BertForSequenceClassification, data: dict[str, torch.Tensor], batch_size: int) -> np.ndarray:
    """Predicted class ids (or regression values) for every row of an encoded split."""
    model.eval()
    device = next(model.parameters()).device
    outs = []
    for s in range(0, len(data["labels"]), batch_size):
        logits = model(*(data[k][s:s + batch_size].to(device)
                         for k in ("input_ids", "attention_mask", "token_type_ids"))).logits   # (B, num_labels)
        outs.append(logits.squeeze(-1).float().cpu() if model.num_labels == 1 else logits.argmax(-1).cpu())
    return torch.cat(outs).numpy()


def _as_encoder(model) -> Bert:
    if isinstance(model, Bert):
        return model
    if isinstance(model, (BertForMaskedLM, BertForSequenceClassification)):
        return model.bert
    raise TypeError(f"expected a Bert, BertForMaskedLM or BertForSequenceClassification, got {type(model).__name__}")


def _finetune_model(encoder, spec: GlueTaskSpec, train: dict[str, torch.Tensor], cfg: FinetuneConfig, seed: int,
                    device: str | None = None,
                    start: BertForSequenceClassification | None = None) -> BertForSequenceClassification:
    """A finetuned copy of ``encoder`` (or of ``start``'s encoder and pooler, with a fresh head)."""
    torch.manual_seed(seed)
    source = _as_encoder(encoder if start is None else start)
    model = BertForSequenceClassification.from_encoder(source, spec.num_labels, dropout=cfg.dropout)
    if start is not None:
        model.pooler.load_state_dict(start.pooler.state_dict())
    n = len(train["labels"])
    max_steps = cfg.steps(n)
    tcfg = TrainConfig(max_steps=max_steps, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=cfg.weight_decay,
                       schedule="linear", warmup_fraction=cfg.warmup_fraction, alpha_f=0.0, seed=seed,
                       progress_bar=False, log_every=max(max_steps, 1), device=device, **cfg.extra_train)
    rows = ResumableBatches(train, min(cfg.micro_batch_size, n), seed=seed)
    Trainer(model, classification_loss, rows, tcfg).fit()
    return model


def _scores(model, spec: GlueTaskSpec, evaluation: dict[str, torch.Tensor], extra: dict[str, dict[str, torch.Tensor]],
            batch_size: int) -> dict[str, float]:
    out = task_metrics(spec, predict(model, evaluation, batch_size), evaluation["labels"].numpy())
    if extra:
        values = [out[m] for m in spec.metrics]
        for name, data in extra.items():
            more = task_metrics(spec, predict(model, data, batch_size), data["labels"].numpy())
            out.update({f"{m}_{name}": more[m] for m in spec.metrics})
            values += [more[m] for m in spec.metrics]
        out["score"] = float(np.mean(values))
    return out


def finetune(encoder, spec: GlueTaskSpec, train: dict[str, torch.Tensor], evaluation: dict[str, torch.Tensor],
             cfg: FinetuneConfig, seed: int, device: str | None = None) -> dict[str, float]:
    """Finetune a copy of ``encoder`` (Bert or a model holding one) on an encoded task; returns
    the eval metrics in percent and "score"."""
    model = _finetune_model(encoder, spec, train, cfg, seed, device)
    return _scores(model, spec, evaluation, {}, cfg.eval_batch_size)


def finetune_tasks(encoder, tokenizer, tasks: Sequence[Task], cfg: FinetuneConfig, seeds: Sequence[int] = (0,),
                   configs: dict[str, FinetuneConfig] | None = None,
                   seeds_by_task: dict[str, Sequence[int]] | None = None,
                   start_from: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every task x seed; rows {"task", "seed", metrics..., "score"}. configs: per-task recipes;
    seeds_by_task: per-task seeds (else ``seeds``); start_from: task -> source task whose model
    finetuned with its first seed is the starting point (encoder and pooler; a fresh head)."""
    special = SpecialIds.of(tokenizer)
    start_from = dict(start_from or {})
    sources = set(start_from.values())
    order = sorted(tasks, key=lambda t: t.spec.name in start_from) if start_from else tasks
    finetuned: dict[str, BertForSequenceClassification] = {}
    rows = []
    for task in order:
        name = task.spec.name
        c = (configs or {}).get(name, cfg)
        train = encode_task(task.train.subset(c.train_limit), tokenizer, c.seq_len, special)
        evaluation = encode_task(task.eval, tokenizer, c.seq_len, special)
        extra = {k: encode_task(v, tokenizer, c.seq_len, special) for k, v in task.extra_evals.items()}
        start = None
        if name in start_from:
            if start_from[name] not in finetuned:
                raise ValueError(f"{name} starts from {start_from[name]!r}, which is not among the tasks finetuned "
                                 f"before it ({', '.join(finetuned) or 'none'})")
            start = finetuned[start_from[name]]
        for i, seed in enumerate((seeds_by_task or {}).get(name, seeds)):
            model = _finetune_model(encoder, task.spec, train, c, seed, start=start)
            rows.append({"task": name, "seed": seed,
                         **_scores(model, task.spec, evaluation, extra, c.eval_batch_size)})
            if i == 0 and name in sources:
                finetuned[name] = model
    return rows


def glue_average(rows: Sequence[dict[str, Any]], floors: Mapping[str, Mapping[str, float]] | None = None
                 ) -> dict[str, Any]:
    """{"average": mean over tasks of the seed-mean score, "tasks": {task: mean}, "spread": {task: stdev}}.

    floors: {task: {metric: floor}} (e.g. MOSAICML_GLUE_MIN_METRIC): a run's metric below its floor is left
    out, as a failed finetuning run, before averaging; a task's score is then the mean over its metrics of
    each metric's mean over the runs kept (NaN when none is kept), and "dropped" counts the values left out
    per task. Tasks without floors average their rows' scores as without ``floors``."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    scores: dict[str, list[float]] = {}
    dropped: dict[str, int] = {}
    means: dict[str, float] = {}
    for task, runs in by_task.items():
        floor = (floors or {}).get(task)
        if not floor:
            scores[task] = [r["score"] for r in runs]
            means[task] = statistics.fmean(scores[task])
            continue
        kept = {m: [r[m] for r in runs if r[m] >= f] for m, f in floor.items()}
        dropped[task] = sum(len(runs) - len(v) for v in kept.values())
        metric_means = [statistics.fmean(v) for v in kept.values() if v]
        means[task] = statistics.fmean(metric_means) if len(metric_means) == len(kept) else float("nan")
        scores[task] = [statistics.fmean(r[m] for m in floor) for r in runs
                        if all(r[m] >= f for m, f in floor.items())]
    spread = {t: statistics.stdev(v) if len(v) > 1 else 0.0 for t, v in scores.items()}
    out = {"average": statistics.fmean(means.values()) if means else float("nan"), "tasks": means, "spread": spread}
    if floors is not None:
        out["dropped"] = dropped
    return out
