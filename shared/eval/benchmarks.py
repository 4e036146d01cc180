"""Language-model benchmarks scored by lm-evaluation-harness, read from local files in the public row formats.

    python -m shared.eval.benchmarks --model PATH --tasks hellaswag,arc_challenge --data-dir D [--num-fewshot K] [--json]

    results = evaluate_benchmarks(lm, ["hellaswag", "mmlu"], data_dir)   # {task: {metric: value}}

The harness itself scores (``lm_eval``: its prompts, target delimiter, few-shot sampling, acc / acc_norm,
GSM8K's answer-extraction filters); this module only points each of its tasks at local files and wraps
our models as its ``LM``:

- Data: task ``T`` reads ``D/<dir>/<split>.jsonl`` (or ``.parquet``) for every split the harness's task
  config names (``training_split``, ``validation_split``, ``test_split``, ``fewshot_split``), rows as in
  the public dataset the harness loads (``hellaswag/validation.jsonl`` rows of Rowan/hellaswag,
  ``arc_challenge/test.jsonl`` rows of allenai/ai2_arc ARC-Challenge, ``mmlu/test.jsonl`` and
  ``mmlu/dev.jsonl`` rows of cais/mmlu "all", with their ``subject`` column). Splits without a file are
  dropped; a missing evaluation split is an error naming the path. ``BENCHMARKS`` maps our task names
  to the harness's and to the folder.
- MMLU: ``mmlu`` is the 57 ``mmlu_<subject>`` tasks of the harness (shots: the first ``K`` rows of each
  subject's dev split, as the harness does), each reading the rows of its subject; ``mmlu`` itself is
  their size-weighted mean, as the harness's ``mmlu`` group aggregates. ``mmlu_<subject>`` is one subject.
- Models: a transformers checkpoint folder runs as the harness's own ``HFLM``; a run folder of ours
  (``model.json``, checkpoints, ``tokenizer/``: ``shared.train.model_files.load_pretrained``) runs
  through ``CausalLMAdapter``, which also takes any in-memory causal LM with a tokenizer.
- Inside a launched job (``torch.distributed`` initialised), the harness shards requests over ranks and
  gathers them on rank 0 (``CausalLMAdapter.all_gather`` / ``gather_object``); only rank 0 gets results.

The Mosaic Eval Gauntlet's categories are scored over these tasks by ``shared.eval.gauntlet`` (its own CLI,
``python -m shared.eval.gauntlet``). Six of its tasks the harness does not ship (Jeopardy, SQuAD v1.1, CoQA, SVAMP,
the two simple-arithmetic sets) are harness tasks of ours: YAMLs in ``harness_tasks/`` (``HARNESS_TASKS``, added to
the harness's index), scored as llm-foundry scores them (``harness_tasks/gauntlet_docs.py``). Not covered: HumanEval runs through ``shared.eval.code`` (our sandbox).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from shared.models.gpt_generate import generate
from shared.train.model_files import MODEL_FILE, load_pretrained

from ._model_io import logits_of, model_device, model_max_length

DATA_SUFFIXES = (".jsonl", ".json", ".parquet")
SPLIT_KEYS = ("training_split", "validation_split", "test_split", "fewshot_split")


@dataclass(frozen=True)
class Benchmark:
    """One of our task names: the harness's task and the folder under data_dir its files live in."""
    harness_task: str
    folder: str
    subject: str | None = None        # MMLU: keep only rows of this subject


BENCHMARKS: dict[str, Benchmark] = {
    "hellaswag": Benchmark("hellaswag", "hellaswag"),
    "arc_challenge": Benchmark("arc_challenge", "arc_challenge"),
    "arc_easy": Benchmark("arc_easy", "arc_easy"),
    "winogrande": Benchmark("winogrande", "winogrande"),
    "piqa": Benchmark("piqa", "piqa"),
    "gsm8k": Benchmark("gsm8k", "gsm8k"),
    "medmcqa": Benchmark("medmcqa", "medmcqa"),
    "medqa": Benchmark("medqa_4options", "medqa"),
    "pubmedqa": Benchmark("pubmedqa", "pubmedqa"),
    # the Mosaic Eval Gauntlet's tasks the harness ships (shared.eval.gauntlet)
    "gsm8k_cot": Benchmark("gsm8k_cot", "gsm8k"),
    "copa": Benchmark("copa", "copa"),                                  # aps/super_glue copa
    "boolq": Benchmark("boolq", "boolq"),                               # aps/super_glue boolq
    "siqa": Benchmark("social_iqa", "siqa"),                            # lighteval/siqa
    "commonsense_qa": Benchmark("commonsense_qa", "commonsense_qa"),    # tau/commonsense_qa
    "openbookqa": Benchmark("openbookqa", "openbookqa"),                # allenai/openbookqa main
    "lambada_openai": Benchmark("lambada_openai", "lambada_openai"),    # EleutherAI/lambada_openai
    "wsc273": Benchmark("wsc273", "wsc273"),                            # lighteval/winograd_wsc wsc273
    "triviaqa": Benchmark("triviaqa", "triviaqa"),                      # mandarjoshi/trivia_qa rc.nocontext
    # hails/bigbench, split "default"
    "bigbench_qa_wikidata": Benchmark("bigbench_qa_wikidata_generate_until", "bigbench_qa_wikidata"),
    "bigbench_strange_stories": Benchmark("bigbench_strange_stories_multiple_choice", "bigbench_strange_stories"),
    "bigbench_strategyqa": Benchmark("bigbench_strategyqa_multiple_choice", "bigbench_strategyqa"),
    "bigbench_elementary_math_qa": Benchmark("bigbench_elementary_math_qa_multiple_choice",
                                             "bigbench_elementary_math_qa"),
    "bigbench_dyck_languages": Benchmark("bigbench_dyck_languages_generate_until", "bigbench_dyck_languages"),
    "bigbench_operators": Benchmark("bigbench_operators_generate_until", "bigbench_operators"),
    # hails/agieval-*
    "agieval_lsat_ar": Benchmark("agieval_lsat_ar", "agieval_lsat_ar"),
    "agieval_lsat_rc": Benchmark("agieval_lsat_rc", "agieval_lsat_rc"),
    "agieval_lsat_lr": Benchmark("agieval_lsat_lr", "agieval_lsat_lr"),
    "agieval_sat_en": Benchmark("agieval_sat_en", "agieval_sat_en"),
    # the Gauntlet's tasks the harness lacks: our task YAMLs in harness_tasks/ (HARNESS_TASKS)
    "jeopardy": Benchmark("gauntlet_jeopardy", "jeopardy"),              # llm-foundry jeopardy_all.jsonl rows
    "simple_arithmetic_withspaces": Benchmark("gauntlet_simple_arithmetic_withspaces", "simple_arithmetic_withspaces"),
    "simple_arithmetic_nospaces": Benchmark("gauntlet_simple_arithmetic_nospaces", "simple_arithmetic_nospaces"),
    "svamp": Benchmark("gauntlet_svamp", "svamp"),                      # llm-foundry svamp.jsonl rows
    "squad": Benchmark("gauntlet_squad", "squad"),                      # rajpurkar/squad (v1.1) validation
    "coqa": Benchmark("gauntlet_coqa", "coqa"),                         # stanfordnlp/coqa validation
}
MMLU_FOLDER = "mmlu"
HARNESS_TASKS = Path(__file__).resolve().parent / "harness_tasks"


# the folders of lm-evaluation-harness's lm_eval/tasks/ that hold the tasks BENCHMARKS names: the index reads only
# these (about 400 YAMLs instead of the harness's 14,000, which cost about 10 s of CPU in every process)
HARNESS_TASK_DIRS = ("agieval", "arc", "bigbench/generate_until", "bigbench/multiple_choice", "commonsense_qa",
                     "gsm8k", "hellaswag", "lambada", "medmcqa", "medqa", "mmlu/default", "openbookqa", "piqa",
                     "pubmedqa", "siqa", "super_glue/boolq", "super_glue/copa", "triviaqa", "winogrande", "wsc273")


@functools.cache
def task_manager():
    """The harness's task index over ``HARNESS_TASK_DIRS`` and our task YAMLs (``HARNESS_TASKS``), built once per
    process."""
    import lm_eval
    from lm_eval.tasks import TaskManager
    root = Path(lm_eval.__file__).parent / "tasks"
    return TaskManager(include_defaults=False,
                       include_path=[str(root / d) for d in HARNESS_TASK_DIRS] + [str(HARNESS_TASKS)])


def mmlu_subjects() -> list[str]:
    """The 57 subjects of the harness's MMLU (its ``mmlu_<subject>`` tasks)."""
    names = task_manager().all_subtasks
    prefix = "mmlu_"
    default = Path(task_manager()._entry("mmlu_anatomy").yaml_path).parent
    return sorted(n[len(prefix):] for n in names
                  if n.startswith(prefix) and (default / f"{n}.yaml").is_file())


def benchmark(name: str) -> Benchmark:
    """Our task ``name`` (a key of BENCHMARKS, ``mmlu_<subject>``); ValueError naming the valid ones."""
    if name in BENCHMARKS:
        return BENCHMARKS[name]
    if name.startswith("mmlu_") and name[len("mmlu_"):] in mmlu_subjects():
        return Benchmark(name, MMLU_FOLDER, subject=name[len("mmlu_"):])
    raise ValueError(f"unknown benchmark {name!r}; known: {', '.join([*BENCHMARKS, 'mmlu', 'mmlu_<subject>'])}")


def expand(tasks: Sequence[str], subjects: Sequence[str] | None = None) -> list[str]:
    """Task names with ``mmlu`` replaced by its 57 subjects (or by ``subjects``, a subset of them)."""
    if subjects is not None:
        unknown = sorted(set(subjects) - set(mmlu_subjects()))
        if unknown:
            raise ValueError(f"unknown MMLU subjects {unknown}; known: {', '.join(mmlu_subjects())}")
    out = []
    for t in tasks:
        out += [f"mmlu_{s}" for s in (subjects or mmlu_subjects())] if t == "mmlu" else [t]
    return list(dict.fromkeys(out))


def _split_file(folder: Path, split: str) -> Path | None:
    return next((folder / f"{split}{s}" for s in DATA_SUFFIXES if (folder / f"{split}{s}").is_file()), None)


def _keep_subject(subject: str, process_docs=None):
    def process(dataset):
        dataset = dataset.filter(lambda row: row["subject"] == subject)
        return process_docs(dataset) if process_docs is not None else dataset
    return process


def local_task_spec(name: str, data_dir: str | Path) -> dict[str, Any]:
    """The harness override that points task ``name`` at its files under ``data_dir``."""
    bench = benchmark(name)
    tm = task_manager()
    entry = tm._entry(bench.harness_task)
    if entry is None:
        raise ValueError(f"lm-evaluation-harness has no task {bench.harness_task!r} (its version: "
                         f"{_harness_version()})")
    config = tm._factory._load_full_config(entry, None)
    folder = Path(data_dir) / bench.folder
    files, overrides = {}, {}
    for key in SPLIT_KEYS:
        split = config.get(key)
        if split is None:
            continue
        path = _split_file(folder, split)
        if path is None:
            overrides[key] = None
        else:
            files[split] = str(path)
    eval_split = config.get("test_split") or config.get("validation_split")
    if eval_split not in files:
        raise FileNotFoundError(f"{name}: no {folder}/{eval_split}{{{','.join(DATA_SUFFIXES)}}} (rows of "
                                f"{config.get('dataset_path')} {config.get('dataset_name') or ''}, split {eval_split})")
    if config.get("test_split") and "test_split" in overrides:
        overrides.pop("test_split")
    kinds = {Path(p).suffix for p in files.values()}
    if len(kinds) > 1:
        raise ValueError(f"{name}: mixed file formats {sorted(kinds)} under {folder}; use one")
    spec = {"task": bench.harness_task, "dataset_path": "parquet" if kinds == {".parquet"} else "json",
            "dataset_name": None, "dataset_kwargs": {"data_files": files}, **overrides}
    if bench.subject is not None:
        spec["process_docs"] = _keep_subject(bench.subject, config.get("process_docs"))
    return spec


def evaluation_file(name: str) -> str:
    """``<folder>/<split>``: where task ``name`` (a key of BENCHMARKS, ``mmlu``, ``mmlu_<subject>``) reads the rows
    it is scored on, under data_dir, as ``.jsonl``, ``.json`` or ``.parquet`` (a preflight checks it exists)."""
    bench = benchmark("mmlu_anatomy" if name == "mmlu" else name)
    tm = task_manager()
    config = tm._factory._load_full_config(tm._entry(bench.harness_task), None)
    return f"{bench.folder}/{config.get('test_split') or config.get('validation_split')}"


def _harness_version() -> str:
    try:
        import lm_eval
        return getattr(lm_eval, "__version__", "?")
    except ImportError:
        return "not installed"


# ------------------------------------------------------------------------------------------ our models
class _HarnessMissing:
    """Stands in for the harness's LM where lm-evaluation-harness is not installed (e.g. a GPU machine with
    only torch and transformers), so importing this module works and using an adapter says what is missing."""

    def __init__(self, *args, **kwargs):
        raise ImportError("benchmarks need lm-evaluation-harness (a dependency of this project: pip install -e .)")


def _lm_base():
    try:
        from lm_eval.api.model import TemplateLM
    except ImportError:
        return _HarnessMissing
    return TemplateLM


class CausalLMAdapter(_lm_base()):
    """Any causal LM ``model(input_ids (B, T)) -> logits (B, T, V)`` (or an output with ``.logits``) and a
    tokenizer with ``encode`` / ``decode``, as the harness's ``LM``.

    Log-likelihoods: each (context, continuation) is cut to the last ``max_length + 1`` tokens, batches are
    right-padded (a causal model's positions before the padding are unaffected) in order of decreasing
    length; the result is the sum of the continuation's token log-probabilities and whether each of its
    tokens is the argmax. Generation is greedy (the harness's tasks ask for it), up to ``max_gen_toks`` new
    tokens, then cut at the first stop string.
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 16, max_length: int | None = None,
                 max_gen_toks: int = 256, device: str | torch.device | None = None):
        super().__init__()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self._device = torch.device(device) if device is not None else model_device(model)
        self.model.to(self._device)
        self.batch_size = batch_size
        self.max_length = max_length or model_max_length(model) or 2048
        self.max_gen_toks = max_gen_toks
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            self._rank, self._world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()

    # --- the harness's LM interface
    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def eot_token_id(self) -> int:
        eos = getattr(self.tokenizer, "eos_token_id", None)
        if eos is None:
            raise ValueError("the tokenizer has no eos_token_id: the harness conditions empty contexts on it")
        return int(eos)

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        try:
            return list(self.tokenizer.encode(string, add_special_tokens=False))
        except TypeError:
            return list(self.tokenizer.encode(string))

    def tok_decode(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode(list(tokens))

    @torch.no_grad()
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        """requests: ((context, continuation), context ids, continuation ids) -> (sum log p, all greedy)."""
        rows = []
        for _, context, continuation in requests:
            if not continuation:
                raise ValueError("an empty continuation cannot be scored")
            if len(continuation) > self.max_length:
                raise ValueError(f"a continuation of {len(continuation)} tokens exceeds max_length {self.max_length}")
            rows.append(((list(context) + list(continuation))[-(self.max_length + 1):][:-1], list(continuation)))
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
        results: list[tuple[float, bool] | None] = [None] * len(rows)
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            width = len(rows[batch[0]][0])
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            for b, i in enumerate(batch):
                ids[b, :len(rows[i][0])] = torch.tensor(rows[i][0])
            logp = F.log_softmax(logits_of(self.model(ids.to(self._device))).float(), dim=-1)   # (B, T, V)
            for b, i in enumerate(batch):
                inputs, target = rows[i]
                n, k = len(inputs), len(target)
                scores = logp[b, n - k:n]                                   # (k, V): predictions of the continuation
                wanted = torch.tensor(target, device=scores.device)
                results[i] = (float(scores.gather(1, wanted[:, None]).sum()),
                              bool((scores.argmax(-1) == wanted).all()))
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
        out = []
        for (text,) in [r.args for r in requests]:
            windows = [make_disjoint_window(w) for w in get_rolling_token_windows(
                token_list=self.tok_encode(text), prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length, context_len=1)]
            scores = self._loglikelihood_tokens([(None, ctx, cont) for ctx, cont in windows])
            out.append(sum(s for s, _ in scores))
        return out

    @torch.no_grad()
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        out = []
        for context, gen_kwargs in [r.args for r in requests]:
            until = gen_kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            # the new tokens fit the context with at least one token of prompt
            new = min(int(gen_kwargs.get("max_gen_toks", self.max_gen_toks)), self.max_length - 1)
            ids = self.tok_encode(context)[-(self.max_length - new):]
            tokens = self._greedy(torch.tensor([ids], device=self._device), new)
            text = self.tok_decode(tokens)
            cut = min([text.find(s) for s in until if s and s in text], default=len(text))
            out.append(text[:cut])
        return out

    def _greedy(self, ids: torch.Tensor, new: int) -> list[int]:
        """Up to ``new`` greedy tokens after ``ids`` (1, T), stopping at the end-of-text token."""
        if hasattr(self.model, "blocks") and hasattr(self.model, "cfg"):     # our GPT: its KV-cached generate
            seq = generate(self.model, ids, new, temperature=0.0, eos_id=self.eot_token_id)[0, ids.shape[1]:].tolist()
        else:
            seq = []
            for _ in range(new):
                nxt = int(logits_of(self.model(ids[:, -self.max_length:]))[0, -1].argmax())
                seq.append(nxt)
                if nxt == self.eot_token_id:
                    break
                ids = torch.cat([ids, ids.new_tensor([[nxt]])], dim=1)
        return seq[:seq.index(self.eot_token_id)] if self.eot_token_id in seq else seq

    # --- ranks inside a launched job
    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.zeros_like(tensor) for _ in range(self.world_size)]
        torch.distributed.all_gather(parts, tensor)
        return torch.stack(parts) if tensor.dim() == 0 else torch.cat(parts)

    def gather_object(self, obj, dst: int = 0):
        parts = [None] * self.world_size if self.rank == dst else None
        torch.distributed.gather_object(obj, parts, dst=dst)
        return parts

    def barrier(self) -> None:
        torch.distributed.barrier()


def load_lm(path: str | Path, *, batch_size: int = 16, device: str | None = None):
    """The harness LM of a transformers checkpoint folder (its own HFLM) or of one of our run folders."""
    path = Path(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if (path / "config.json").is_file():
        from lm_eval.models.huggingface import HFLM
        return HFLM(pretrained=str(path), device=device, batch_size=batch_size,
                    dtype="bfloat16" if device.startswith("cuda") else "float32")
    if (path / MODEL_FILE).is_file():
        model, tokenizer = load_pretrained(path)
        return CausalLMAdapter(model, tokenizer, batch_size=batch_size, device=device)
    raise FileNotFoundError(f"{path} is neither a transformers checkpoint (config.json) nor a run of ours ({MODEL_FILE})")


# ------------------------------------------------------------------------------------------ evaluation
def _metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """The harness's result row as {metric: value}: "acc,none" -> "acc", "exact_match,strict-match" ->
    "exact_match/strict-match"; stderr kept, aliases and samples dropped."""
    out = {}
    for key, value in row.items():
        if "," not in key or not isinstance(value, (int, float)):
            continue
        metric, filt = key.split(",", 1)
        out[metric if filt == "none" else f"{metric}/{filt}"] = float(value)
    return out


def evaluate_benchmarks(lm, tasks: Sequence[str], data_dir: str | Path, *, num_fewshot: int | None = None,
                        limit: int | None = None, seed: int = 1234,
                        mmlu_subjects: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} of ``lm`` (a harness LM: ``load_lm`` or ``CausalLMAdapter``) on ``tasks``
    read from ``data_dir``; ``limit`` caps the examples per task (smoke); ``mmlu_subjects``: ``mmlu`` on these
    subjects only (default all 57). On ranks other than 0: {}."""
    import lm_eval
    names = expand(tasks, mmlu_subjects)
    specs = [local_task_spec(n, data_dir) for n in names]
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    result = lm_eval.simple_evaluate(
        model=lm, tasks=[{"group": "local_benchmarks", "task": specs}], task_manager=task_manager(),
        num_fewshot=num_fewshot, limit=limit, log_samples=False, random_seed=seed, numpy_random_seed=seed,
        torch_random_seed=seed, fewshot_random_seed=seed, bootstrap_iters=0)
    if result is None:            # ranks other than 0
        return {}
    by_harness = {k: _metrics(v) for k, v in result["results"].items()}
    out = {n: by_harness[benchmark(n).harness_task] for n in names}
    if "mmlu" in tasks:
        sizes = {n: result["n-samples"][benchmark(n).harness_task]["effective"] for n in names if n.startswith("mmlu_")}
        total = sum(sizes.values())
        out["mmlu"] = {"acc": sum(out[n]["acc"] * s for n, s in sizes.items()) / max(total, 1)}
    return out


def metric_key(task: str, metric: str) -> str:
    """A flat metric name: "gsm8k", "exact_match/strict-match" -> "gsm8k_exact_match_strict_match"."""
    return f"{task}_{metric}".replace("/", "_").replace("-", "_")


@dataclass
class HarnessEval:
    """An eval_fn for ``shared.train.Trainer``: the model being trained, scored by the harness on ``tasks``
    read from ``data_dir`` -> ``{metric_key(task, metric): value}`` for the tasks asked for (``mmlu``: its
    size-weighted mean, not the 57 subjects). ``num_fewshot``: shots per task (others: the harness's
    default). Under torchrun only rank 0 gets values ({} elsewhere; the trainer logs rank 0's)."""
    tasks: tuple[str, ...]
    data_dir: str
    tokenizer: Any
    num_fewshot: Mapping[str, int] | None = None
    batch_size: int = 16
    limit: int | None = None
    max_gen_toks: int = 256            # new tokens per generation where the task sets none (GSM8K)
    mmlu_subjects: tuple[str, ...] | None = None     # ``mmlu`` on these subjects only (None: all 57)

    def __call__(self, model) -> dict[str, float]:
        lm = CausalLMAdapter(model, self.tokenizer, batch_size=self.batch_size, max_gen_toks=self.max_gen_toks)
        shots = dict(self.num_fewshot or {})
        groups: dict[int | None, list[str]] = {}
        for task in self.tasks:
            groups.setdefault(shots.get(task), []).append(task)
        out = {}
        for k, names in groups.items():
            results = evaluate_benchmarks(lm, names, self.data_dir, num_fewshot=k, limit=self.limit,
                                          mmlu_subjects=self.mmlu_subjects)
            out.update({metric_key(t, m): v for t in names for m, v in results.get(t, {}).items()
                        if "stderr" not in m})
        return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.eval.benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a transformers checkpoint folder or one of our run folders")
    p.add_argument("--tasks", required=True, help="comma-separated: " + ", ".join([*BENCHMARKS, "mmlu", "mmlu_<subject>"]))
    p.add_argument("--data-dir", required=True, help="holds <task folder>/<split>.jsonl|.parquet")
    p.add_argument("--num-fewshot", type=int, default=None, help="shots for every task (default: each task's own)")
    p.add_argument("--limit", type=int, default=None, help="at most this many examples per task")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None)
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    args = p.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    try:
        for t in tasks:
            if t != "mmlu":
                benchmark(t)
        lm = load_lm(args.model, batch_size=args.batch_size, device=args.device)
        results = evaluate_benchmarks(lm, tasks, args.data_dir, num_fewshot=args.num_fewshot, limit=args.limit)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.json:
        for task, metrics in results.items():
            print(f"{task:40s} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()), file=sys.stderr)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["BENCHMARKS", "Benchmark", "CausalLMAdapter", "HARNESS_TASKS", "HarnessEval", "metric_key", "benchmark", "evaluate_benchmarks", "evaluation_file", "expand", "load_lm",
           "local_task_spec", "main", "mmlu_subjects", "task_manager"]
