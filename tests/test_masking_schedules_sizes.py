"""papers.masking_schedules: model sizes of the schedules sweep. The full preset pretrains BERT-base and
BERT-large as transformers' BertForMaskedLM (the authors' large recipe changes only the shape and the peak lr), the preflight plans a run per size,
and smoke / small keep exactly one model with the recipe they had."""
import dataclasses

import pandas as pd
import pytest

from papers.masking_schedules import preflight, scales
from papers.masking_schedules.sweep import SchedulesSpec, downstream_gains
from shared.preflight import World
from shared.utils.config import from_dict

PRESETS = scales.NOTEBOOKS["schedules"]


def test_full_preset_resolves_with_base_and_large():
    spec = PRESETS.build("full")
    assert list(spec.models) == ["base", "large"]
    # the authors' model: transformers' BertForMaskedLM from the bert-base-uncased config, at each size
    assert spec.models["base"].model["transformers"] == "{data_dir}/bert-base-uncased"
    assert spec.models["large"].model["num_hidden_layers"] == 24
    assert spec.models["large"].model["hidden_size"] == 1024
    base, large = spec.train_for("base"), spec.train_for("large")
    assert base == spec.train and base.lr == 5e-4
    # only the peak lr differs between the sizes' trainer recipes
    assert large.lr == 2e-4 and dataclasses.replace(large, lr=base.lr) == base
    assert spec.seeds == (17, 2048, 3047)


def test_bert_large_shape_as_the_preflight_sizes_it():
    from shared.pipelines.mlm_pretrain import bert_config, planning_spec
    cfg = bert_config(planning_spec(PRESETS.build("full").models["large"].model))
    assert (cfg.n_layer, cfg.d_model, cfg.n_head, cfg.d_ff) == (24, 1024, 16, 4096)


def test_full_preflight_requires_the_transformers_config():
    reqs = preflight.requirements("schedules", PRESETS.build("full"))
    assert any(r.path == "{data_dir}/bert-base-uncased/config.json" and r.kind == "json" for r in reqs)


@pytest.mark.parametrize("scale", ["smoke", "small"])
def test_smoke_and_small_keep_one_model(scale):
    spec = PRESETS.build(scale)
    assert list(spec.models) == ["base"]
    assert spec.models["base"].train == {}
    assert spec.train_for("base") is spec.train
    assert spec.run_root("/r", "base").as_posix() == "/r/pretrain"   # run folders as before


def test_smoke_model_is_unchanged():
    model = PRESETS.resolve("smoke")["models"]["base"]["model"]
    assert model == {"n_layer": 2, "n_head": 4, "d_model": 64, "d_ff": 256, "max_seq_len": 64, "alibi": False,
                     "glu": False, "unpad": True, "low_precision_norm": False, "dropout": 0.0, "attn_dropout": 0.0}


def test_several_sizes_get_their_own_run_folders():
    spec = PRESETS.build("full")
    assert spec.run_root("/r", "large").as_posix() == "/r/pretrain/large"


def test_size_train_fields_are_checked():
    config = PRESETS.resolve("smoke")
    bad = {**config, "models": {"base": {**config["models"]["base"], "train": {"learning_rat": 1e-3}}}}
    with pytest.raises(ValueError, match="learning_rat"):
        from_dict(SchedulesSpec, bad)
    with pytest.raises(ValueError, match="unknown model size"):
        PRESETS.build("smoke").train_for("large")
    with pytest.raises(ValueError, match="models is empty"):
        from_dict(SchedulesSpec, {**config, "models": {}})


def test_preflight_lists_a_pretraining_run_per_size_and_schedule():
    spec = PRESETS.build("full")
    plans = preflight.plan("schedules", spec, World(nproc_per_node=8))
    pretrain = [p for p in plans if "finetune" not in p.name]
    assert len(pretrain) == 2 * len(spec.schedules)
    for size, lr, params in (("base", 5e-4, 110e6), ("large", 2e-4, 335e6)):
        mine = [p for p in pretrain if p.name.startswith(f"{size} ")]
        assert len(mine) == len(spec.schedules)
        assert all(p.count == 3 and p.optimizer.lr == lr for p in mine)
        assert all(abs(p.model.params / params - 1) < 0.05 for p in mine)
    assert any(p.name.startswith("large ") and "finetune" in p.name for p in plans)


def test_preflight_at_smoke_keeps_plain_names():
    spec = PRESETS.build("smoke")
    plans = preflight.plan("schedules", spec, World())
    assert [p.name for p in plans if "finetune" not in p.name] == list(spec.schedules)


def test_downstream_gains_pairs_by_seed_per_size():
    finals = pd.DataFrame({"schedule": ["fixed 15%", "linear 30%->15%"] * 2, "seed": [0, 0, 1, 1],
                           "downstream": [70.0, 71.0, 72.0, 72.5]})
    gains = downstream_gains({"base": finals, "tiny": finals}, scales.PAPER).set_index("size")
    assert gains.loc["base", "ours_mean"] == pytest.approx(0.75)
    assert gains.loc["base", "seeds"] == 2
    assert gains.loc["base", "paper_glue_gain"] == 0.46
    assert pd.isna(gains.loc["tiny", "paper_glue_gain"])
