"""papers/mosaicbert/rehearsal.py: its data_dir has everything the full presets read (the preflight finds no data
error; the token caches, tokenizer, BERT config and GLUE files load with the notebooks' readers), and its overrides
build the full specs with every pretraining run preempted once."""
from __future__ import annotations

import torch

from papers.mosaicbert import rehearsal
from papers.mosaicbert.scales import FULL_DATA, FULL_EVAL, NOTEBOOKS
from shared.pipelines.mlm_pretrain import (
    DownstreamSpec,
    TransformersMLM,
    fill_data_dir,
    hf_bert_spec,
    load_mlm_data,
)
from shared.preflight import preflight


def test_the_rehearsal_data_dir_is_the_full_layout(tmp_path):
    rehearsal.make_data_dir(tmp_path)
    report = preflight("mosaicbert", scale="full", data_dir=str(tmp_path))
    data_errors = [e for e in report["errors"] if "GiB" not in e]      # memory verdicts are a GPU's, not data
    assert not data_errors, data_errors
    tok, train, val = load_mlm_data(fill_data_dir(FULL_DATA, str(tmp_path)))
    assert tok.mask_token_id is not None and len(train["input_ids"]) == 160 and len(val["input_ids"]) == 24
    # memory-mapped rows take index tensors (the pareto notebook's padding fraction reads them so)
    mask = train["attention_mask"][torch.arange(min(4096, len(train["attention_mask"])))]
    assert mask.shape == (160, 128) and 0.0 < 1 - float(mask.float().mean()) < 1.0
    spec = DownstreamSpec.from_dict(fill_data_dir({**FULL_EVAL, "task_train": 4, "task_eval": 4}, str(tmp_path)))
    assert [t.spec.name for t in spec.load_tasks()] == list(FULL_EVAL["tasks"])
    model = TransformersMLM.from_spec(fill_data_dir(hf_bert_spec("base", "{data_dir}/bert-base-uncased"),
                                                    str(tmp_path)), len(tok))
    assert model.hf.config.hidden_size == 768


def test_the_overrides_build_the_full_specs_and_preempt_every_run():
    for notebook, overrides in {**rehearsal.NOTEBOOKS, **rehearsal.UNLAUNCHED}.items():
        NOTEBOOKS[notebook].build("full", overrides)
    pareto = NOTEBOOKS["pareto"].build("full", rehearsal.NOTEBOOKS["pareto"])
    assert 0 < pareto.train.max_steps // pareto.checkpoints < pareto.train.max_steps
    ablation = NOTEBOOKS["ablation"].build("full", rehearsal.NOTEBOOKS["ablation"])
    assert 0 < ablation.train.checkpoint_every < ablation.train.max_steps
    for spec in (pareto, ablation):
        assert spec.train.global_batch_size % (2 * spec.micro_batch_size) == 0
