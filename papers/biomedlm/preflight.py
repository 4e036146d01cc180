"""Preflight plans of the BioMedLM notebooks (``python -m shared.preflight biomedlm``).

01_tokenizer trains no network. 02_pretrain trains one decoder per domain (same shape and tokens).
03_finetune_qa finetunes each pretrained decoder and each existing baseline (full scale: GPT-Neo 2.7B,
a transformers checkpoint under data_dir) on each benchmark at each seed, and on patient questions
(answer generation). Data: the presets' "dir:<path>" sources, "pretrained:<path>" tokenizers,
"{data_dir}" files and the baselines' checkpoint folders. A finetuning run given in epochs is planned
from its task's n_train.

A baseline's parameters are counted exactly on the meta device from its config.json when the folder
is at hand here (an absolute path: the plan is given no data_dir), else from GPT-Neo 2.7B's public
configuration; its FLOPs and activations are those of the GPT-2-shaped decoder of the same sizes,
with the (tokens, vocabulary) logits and attention scores a transformers GPT-Neo materialises.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from papers.biomedlm.pretrain import GPT2_STYLE
from papers.biomedlm.qa_finetune import finetune_train
from papers.biomedlm.scales import NOTEBOOKS
from shared.models.flavours import resolve_model_config
from shared.models.gpt import GPTConfig
from shared.preflight import DataRequirement, ModelCost, TrainingRunPlan, World, gpt_cost, run_plan, scale_of

# options per question of each format: a multiple-choice question is one sequence per option
OPTIONS = {"medmcqa": 4, "medqa": 4, "mmlu": 4, "pubmedqa": 3, "bioasq": 2}


# GPT-Neo 2.7B's public configuration (EleutherAI/gpt-neo-2.7B, config.json on the Hugging Face hub and
# its model card): 32 layers, hidden 2560, 20 heads, 2048 positions, GPT-2's 50,257-token vocabulary,
# alternating global / local attention (window 256), gelu_new MLP of 4 x hidden, no dropout, tied head
GPT_NEO_2_7B = {"model_type": "gpt_neo", "num_layers": 32, "hidden_size": 2560, "num_heads": 20,
                "max_position_embeddings": 2048, "vocab_size": 50257, "attention_types": [[["global", "local"], 16]],
                "window_size": 256, "activation_function": "gelu_new", "intermediate_size": None,
                "embed_dropout": 0.0, "attention_dropout": 0.0, "resid_dropout": 0.0,
                "bos_token_id": 50256, "eos_token_id": 50256}


def baseline_config(folder: str | Path | None = None):
    """The transformers config of a baseline: ``folder``/config.json when it exists, else GPT-Neo 2.7B's."""
    from transformers import AutoConfig, GPTNeoConfig

    if folder is not None and (Path(folder) / "config.json").is_file():
        return AutoConfig.from_pretrained(str(folder), local_files_only=True)
    return GPTNeoConfig(**{k: v for k, v in GPT_NEO_2_7B.items() if k != "model_type"})


def baseline_cost(config, seq_len: int, name: str) -> ModelCost:
    """A transformers decoder's cost per sequence of ``seq_len`` tokens (module docstring): parameters
    of the model built from ``config`` on the meta device (tied head once), FLOPs and activations of
    the same-sized GPT-2-shaped decoder (gpt_cost), logits and attention scores materialised."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    layers = getattr(getattr(model, "transformer", None), "h", None) or model.model.layers
    block = sum(p.numel() for p in layers[0].parameters())
    d_model = config.hidden_size
    shape = GPTConfig(n_layer=config.num_hidden_layers, n_head=config.num_attention_heads, d_model=d_model,
                      d_ff=getattr(config, "intermediate_size", None) or 4 * d_model, vocab_size=config.vocab_size,
                      max_seq_len=config.max_position_embeddings, **GPT2_STYLE)
    cost = gpt_cost(shape, seq_len, name=name, materialised_logits=True, scores_saved=True)
    return dataclasses.replace(cost, params=params, trainable_params=params, block_params=block,
                               counted_by=f"meta-device {type(model).__name__}; FLOPs as the same-sized GPT")


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
        models = {domain: _decoder(from_pretrain, spec.max_len, "biomedlm decoder") for domain in from_pretrain.domains}
        for name, folder in spec.baselines.items():
            at_hand = folder if Path(folder).is_absolute() else None
            models[name] = baseline_cost(baseline_config(at_hand), spec.max_len, f"{name} baseline")
        runs = []
        for domain, qa in models.items():
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
        sources = {**sources, **(getattr(group, "tokenizer_sources", None) or {})}
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
                for f in files if "{data_dir}" in f] + \
               [DataRequirement(folder, kind, f"the {name} baseline, finetuned like the pretrained decoders")
                for name, folder in spec.baselines.items() for kind in ("hf_checkpoint", "tokenizer")]
    return []
