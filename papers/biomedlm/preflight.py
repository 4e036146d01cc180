"""Preflight plans of the BioMedLM notebooks (``python -m shared.preflight biomedlm``).

01_tokenizer trains no network. 02_pretrain trains one decoder per domain (same shape and tokens).
03_finetune_qa finetunes each pretrained decoder on each benchmark at each seed, and on patient
questions (answer generation). Data: the presets' "dir:<path>" sources, "pretrained:<path>" tokenizers
and "{data_dir}" files. A finetuning run given in epochs is planned from its task's n_train.
"""
from __future__ import annotations

from papers.biomedlm.qa_finetune import finetune_train
from papers.biomedlm.scales import NOTEBOOKS
from shared.models.flavours import resolve_model_config
from shared.preflight import DataRequirement, TrainingRunPlan, World, gpt_cost, run_plan, scale_of

# options per question of each format: a multiple-choice question is one sequence per option
OPTIONS = {"medmcqa": 4, "medqa": 4, "mmlu": 4, "pubmedqa": 3, "bioasq": 2}


def _decoder(spec, seq_len: int, name: str):
    cfg = resolve_model_config(spec.model, "gpt", vocab_size=spec.vocab_size)
    return gpt_cost(cfg, seq_len, name=name)


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    """Every training run of ``notebook``'s preset ``spec`` (02: one per domain; 03: per domain x task)."""
    if notebook == "02_pretrain":
        cost = _decoder(spec, spec.seq_len, "biomedlm decoder")
        return [run_plan(f"pretrain-{domain}", cost, spec.train) for domain in spec.domains]
    if notebook == "03_finetune_qa":
        # the pretrained decoders of 02_pretrain's full preset (the finetuning preset names no model)
        from_pretrain = _pretrain_spec(spec)
        runs = []
        for domain in ("biomedical", "general"):
            qa = _decoder(from_pretrain, spec.max_len, "biomedlm decoder")
            for name, task in spec.tasks.items():
                train = _train_of(spec.train, task.fmt, task.n_train)
                runs.append(run_plan(f"{domain}-{name}", qa, train, count=len(spec.seeds),
                                     note=f"{len(spec.seeds)} seed(s)"))
            runs.append(run_plan(f"{domain}-textgen", qa, _train_of(spec.textgen.train, None, spec.textgen.n_train)))
        return runs
    return []


def _train_of(train, fmt: str | None, n_train: int | None) -> dict:
    """TrainConfig fields of one finetuning run: per-format overrides applied, epochs as steps, and
    batches counted in sequences (questions x options)."""
    config = train.to_dict()
    if config.get("epochs") is not None and n_train is None:
        raise ValueError(f"a run of {config['epochs']} epochs needs its task's n_train to be planned")
    config = finetune_train(config, fmt, n_train or 0)
    for key in ("global_batch_size", "micro_batch_size"):
        if config.get(key) is not None:
            config[key] *= OPTIONS.get(fmt, 1)
    return config


def _pretrain_spec(spec):
    """02_pretrain's spec at the scale of ``spec`` (its decoders are the ones 03 finetunes)."""
    return NOTEBOOKS["02_pretrain"].build(scale_of(NOTEBOOKS["03_finetune_qa"], spec))


def _sources(domains) -> list[DataRequirement]:
    reqs = []
    for group in domains.values():
        sources = group.sources if hasattr(group, "sources") else group
        reqs += [DataRequirement(s[len("dir:"):], "dir", "text") for s in sources if s.startswith("dir:")]
        reqs += [DataRequirement(s[len("pretrained:"):], "tokenizer", "tokenizer") for s in sources
                 if s.startswith("pretrained:")]
    return reqs


def requirements(notebook: str, spec) -> list[DataRequirement]:
    """The data_dir entries ``notebook`` reads at this preset."""
    if notebook in ("01_tokenizer", "02_pretrain"):
        return _sources(spec.domains) + _sources(spec.heldout)
    if notebook == "03_finetune_qa":
        files = [f for task in spec.tasks.values() for f in (task.train_file, task.test_file)]
        files += [spec.textgen.train_file, spec.textgen.test_file]
        return [DataRequirement(f, "jsonl" if f.endswith(".jsonl") else "file", "benchmark")
                for f in files if "{data_dir}" in f]
    return []
