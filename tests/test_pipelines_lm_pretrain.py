"""shared.pipelines.lm_pretrain and shared.data.lm_streams: typed specs, model flavours, a tiny run with
held-out perplexity by domain, export, launch (skip when finished, refuse a changed config), and sources
added to the streams. Branching is exercised end to end in tests/test_domain_upsampling.py."""
import pytest
import torch

from shared.data.lm_streams import (StreamSpec, TokenizerSpec, corpus_documents, register_source,
                                    stream_documents)
from shared.pipelines.lm_pretrain import (CONFIG_STAMP, LMPretrainSpec, gpt_config, is_finished, launch_pretraining,
                                          load_pretrained, train_lm)
from shared.train import latest_checkpoint, read_metrics


def tiny_spec(**kw):
    arith = {"corpora": [{"name": "arithmetic", "n_train": 120, "n_test": 20}]}
    facts = {"corpora": [{"name": "facts", "n_entities": 6}]}
    spec = {"model": {"n_layer": 1, "n_head": 2, "d_model": 32, "max_seq_len": 64},
            "train": {"max_steps": 4, "global_batch_size": 4, "micro_batch_size": 2, "lr": 3e-3, "eval_every": 2,
                      "log_every": 1, "keep_last_n": 1, "progress_bar": False, "precision": "fp32"},
            "data": {"seq_len": 64, "tokenizer": {"vocab_size": 300}, "streams": {"math": arith, "facts": facts}},
            "eval": {"heldout": {"math": {**arith, "split": "test"}}, "sequences": 4, "micro_batch_size": 2},
            "seed": 1, "export": ["model_files"]}
    return spec | kw


def test_specs_are_strict_and_name_what_is_wrong():
    with pytest.raises(ValueError, match="unknown LMPretrainSpec key"):
        LMPretrainSpec.from_dict(tiny_spec(steps=3))
    with pytest.raises(ValueError, match="global_batch_size"):
        LMPretrainSpec.from_dict(tiny_spec(train={"max_steps": 3}))
    with pytest.raises(ValueError, match="known flavours"):
        LMPretrainSpec.from_dict(tiny_spec(model="gpt-9000"))
    with pytest.raises(ValueError, match="export"):
        LMPretrainSpec.from_dict(tiny_spec(export=["onnx"]))
    bad_mix = tiny_spec()
    bad_mix["data"] = {**bad_mix["data"], "mix": {"math": 0.5, "web": 0.5}}
    with pytest.raises(ValueError, match="unknown streams"):
        LMPretrainSpec.from_dict(bad_mix)
    with pytest.raises(ValueError, match="exactly one"):
        StreamSpec.from_dict({"corpora": [{"name": "facts"}], "path": "/d"})
    with pytest.raises(ValueError, match="exactly one"):
        TokenizerSpec.from_dict({})
    spec = LMPretrainSpec.from_dict(tiny_spec())
    assert LMPretrainSpec.from_dict(spec.to_dict()) == spec


def test_model_is_a_flavour_a_flavour_with_overrides_or_plain_fields():
    mpt = gpt_config("mpt-7b", vocab_size=1000)
    assert (mpt.n_layer, mpt.d_model, mpt.position, mpt.vocab_size) == (32, 4096, "alibi", 1000)
    small = gpt_config({"flavour": "mpt-7b", "n_layer": 2, "d_model": 64, "n_head": 2, "d_ff": 256}, vocab_size=50)
    assert (small.n_layer, small.d_model, small.position, small.vocab_size) == (2, 64, "alibi", 50)
    plain = gpt_config({"n_layer": 1, "n_head": 2, "d_model": 32, "max_seq_len": 64}, vocab_size=7)
    assert plain.vocab_size == 7 and plain.max_seq_len == 64


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("lm")
    mp.setenv("REPLICATIONS_CACHE", str(root / "cache"))
    torch.set_num_threads(1)
    spec = LMPretrainSpec.from_dict(tiny_spec())
    result = train_lm(spec, root / "run")
    yield root, spec, result
    mp.undo()


def test_a_tiny_run_trains_evaluates_by_domain_and_exports(trained):
    root, spec, result = trained
    run_dir = root / "run"
    evals = [r for r in read_metrics(run_dir) if r.get("kind") == "eval"]
    assert [r["step"] for r in evals] == [2, 4]
    assert {"val/loss", "val/math_loss"} <= set(evals[-1]) and evals[-1]["val/loss"] == evals[-1]["val/math_loss"]
    assert result.wall_s > 0 and result.data.vocab_size == 300 and set(result.data.train) == {"math", "facts"}
    # no mix given: the streams are drawn in proportion to their tokens
    total = sum(ds.num_tokens for ds in result.data.train.values())
    weights = result.mixture.weights(0)
    assert weights["math"] == pytest.approx(result.data.train["math"].num_tokens / total)
    model, tok = load_pretrained(run_dir)
    assert len(tok) == 300 and model.cfg.max_seq_len == 64
    trained_weights = result.trainer.model.state_dict()
    assert all(torch.equal(v, trained_weights[k]) for k, v in model.state_dict().items())


def test_launch_skips_a_finished_run_and_refuses_another_config(trained):
    root, spec, _ = trained
    run_dir = root / "launched"
    config = spec.to_dict()
    assert launch_pretraining(config, run_dir) is True
    assert (run_dir / CONFIG_STAMP).exists() and is_finished(run_dir, spec.train.max_steps)
    before = latest_checkpoint(run_dir)
    assert launch_pretraining(config, run_dir) is False and latest_checkpoint(run_dir) == before
    changed = {**config, "train": {**config["train"], "lr": 1e-3}}
    with pytest.raises(ValueError, match="another config"):
        launch_pretraining(changed, run_dir)


def test_registered_sources_feed_streams():
    register_source("shouting", lambda split, max_docs=None, seed=0, n=3: [f"HELLO {split} {i}" for i in range(n)])
    stream = StreamSpec.from_dict({"corpora": [{"name": "shouting", "n": 2}, {"name": "shouting", "n": 1}],
                                   "split": "test"})
    assert stream_documents(stream) == ["HELLO test 0", "HELLO test 1", "HELLO test 0"]
    assert corpus_documents({"name": "facts", "n_entities": 6}, "train")


@pytest.mark.slow
def test_two_processes_under_torchrun_match_one(trained):
    """The same spec launched as two DDP ranks (gloo on CPU) evaluates like the in-process run."""
    root, _, _ = trained
    config = tiny_spec(export=[])
    config["train"] = {**config["train"], "parallelism": "ddp"}
    spec = LMPretrainSpec.from_dict(config)
    assert launch_pretraining(spec.to_dict(), root / "ddp", nproc_per_node=2) is True
    train_lm(spec, root / "single")
    losses = [[r["val/loss"] for r in read_metrics(root / d) if r.get("kind") == "eval"] for d in ("ddp", "single")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5) and len(losses[0]) == 2
