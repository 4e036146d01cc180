"""Preflight plans of the BioMedLM notebooks (``python -m shared.preflight biomedlm``).

01_tokenizer trains no network. 02_pretrain trains one decoder per domain (same shape and tokens).
03_finetune_qa finetunes each pretrained decoder on each benchmark at each seed, and on patient
questions (answer generation). Data: the presets' "dir:<path>" sources and "{data_dir}" files.
"""
from __future__ import annotations

from papers.biomedlm.scales import NOTEBOOKS
from shared.models.flavours import resolve_model_config
from shared.preflight import DataRequirement, TrainingRunPlan, World, gpt_cost, run_plan, scale_of


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
            runs += [run_plan(f"{domain}-{task}", qa, spec.train, count=len(spec.seeds),
                              note=f"{len(spec.seeds)} seed(s)") for task in spec.tasks]
            runs.append(run_plan(f"{domain}-textgen", qa, spec.textgen.train))
        return runs
    return []


def _pretrain_spec(spec):
    """02_pretrain's spec at the scale of ``spec`` (its decoders are the ones 03 finetunes)."""
    return NOTEBOOKS["02_pretrain"].build(scale_of(NOTEBOOKS["03_finetune_qa"], spec))


def _sources(domains) -> list[DataRequirement]:
    reqs = []
    for group in domains.values():
        sources = group.sources if hasattr(group, "sources") else group
        reqs += [DataRequirement(s[len("dir:"):], "dir", "text") for s in sources if s.startswith("dir:")]
    return reqs


def requirements(notebook: str, spec) -> list[DataRequirement]:
    """The data_dir entries ``notebook`` reads at this preset."""
    if notebook in ("01_tokenizer", "02_pretrain"):
        return _sources(spec.domains) + _sources(spec.heldout)
    if notebook == "03_finetune_qa":
        files = [f for task in spec.tasks.values() for f in (task.train_file, task.test_file)]
        files += [spec.textgen.train_file, spec.textgen.test_file]
        return [DataRequirement(f, "jsonl", "benchmark") for f in files if "{data_dir}" in f]
    return []
