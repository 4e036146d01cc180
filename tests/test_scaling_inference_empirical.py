"""The tokens-per-parameter grid (papers.scaling_inference.empirical): config validation, the plan's arithmetic,
and a two-run grid trained end to end through shared.pipelines.lm_pretrain on a generated corpus."""
import json

import pytest
import torch

from papers.scaling_inference import scales
from papers.scaling_inference.empirical import (EmpiricalSpec, GridConfig, ModelSize, count_params, gpt_config,
                                                plan_grid, prepare_corpora, run_dir_for, run_grid)
from papers.scaling_inference.extreme_ratios import runs_frame
from shared.models.gpt import GPT

TINY = dict(name="tiny", n_layer=1, d_model=8, n_head=1, global_batch_size=8, lr=1e-2)


def grid(**kw):
    return GridConfig.from_dict(dict(sizes=[TINY], seq_len=32, tokens_per_param=[1, 30], eval_sequences=16) | kw)


def test_config_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match="unknown GridConfig key\\(s\\) \\['ratios'\\]"):
        GridConfig.from_dict({"sizes": [TINY], "ratios": [1]})
    with pytest.raises(ValueError, match="non_embedding, total"):
        grid(param_count="kaplan")
    with pytest.raises(ValueError, match="distinct names"):
        grid(sizes=[TINY, TINY])
    with pytest.raises(ValueError, match="noise_runs"):
        grid(noise_runs=[["huge", 100]])
    with pytest.raises(ValueError, match="must be > 0"):
        ModelSize("x", 1, 8, 1, global_batch_size=0, lr=1e-3)


def test_param_counts_match_a_built_model():
    g = grid()
    size = g.sizes[0]
    model = GPT(gpt_config(size, g, vocab_size=300))
    counts = count_params(size, g, vocab_size=300)
    assert counts["non_embedding"] == model.num_params(exclude_embeddings=True)
    assert counts["total"] == model.num_params() and counts["flops_per_token"] == model.flops_per_token()
    assert model.cfg.position == "alibi" and model.cfg.tie_embeddings   # MPT-style by default


def test_plan_steps_tokens_caps_and_replicates():
    big = dict(TINY, name="big", d_model=32, n_head=2, tokens_per_param=[10, 1000])
    g = grid(sizes=[TINY, big], max_run_flops=1e11, noise_runs=[["tiny", 30]], noise_seeds=2, seed=5)
    plan = plan_grid(g, vocab_size=300)
    assert [r.name for r in plan] == ["tiny-r1-s5", "tiny-r30-s5", "big-r10-s5", "big-r1000-s5",
                                      "tiny-r30-s6", "tiny-r30-s7"]
    n = count_params(g.sizes[0], g, 300)["non_embedding"]
    first = plan[0]
    assert first.params == n and first.steps == max(1, round(n / (8 * 32))) and first.tokens == first.steps * 8 * 32
    assert plan[1].tokens_per_param == pytest.approx(30, rel=0.05)
    assert [bool(r.skipped) for r in plan] == [False, False, False, True, False, False]
    assert "max_run_flops" in plan[3].skipped and plan[4].noise_replicate and not plan[1].noise_replicate
    total = plan_grid(grid(param_count="total"), vocab_size=300)[0]
    assert total.params == count_params(g.sizes[0], g, 300)["total"] > n


def test_a_two_run_grid_trains_writes_results_and_reuses_them(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATIONS_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)
    data = prepare_corpora({"arithmetic": 200}, vocab_size=300, seq_len=32, tokenizer_docs=100)
    g = grid()
    lines = []
    results = run_grid(g, data, tmp_path / "out", log=lines.append)
    assert [r["name"] for r in results] == ["tiny-r1-s0", "tiny-r30-s0"]
    short, long = results
    assert short["val_loss"] > long["val_loss"]                 # 30x the tokens learns something
    assert long["epochs"] < 1 and long["tokens"] == long["steps"] * 8 * 32
    assert {"arithmetic_loss", "train_loss_last", "wall_s"} <= set(long)
    saved = json.loads((run_dir_for(plan_grid(g, data.vocab_size)[1], g, data, tmp_path / "out")
                        / "result.json").read_text())
    assert saved["val_loss"] == long["val_loss"]
    again = run_grid(g, data, tmp_path / "out", log=lines.append)  # finished runs are read back, not retrained
    assert [r["val_loss"] for r in again] == [r["val_loss"] for r in results]
    assert all(line.endswith("(reused)") for line in lines[2:])
    df = runs_frame(results)
    assert list(df["loss"]) == [short["val_loss"], long["val_loss"]] and not df["replicate"].any()


def test_large_sizes_are_counted_without_memory_on_the_meta_device():
    # the full preset's 150M shape: 16 layers, d 768, vocab 50368 (MPT's padded GPT-NeoX vocabulary)
    g = GridConfig.from_dict({"sizes": [dict(name="150M", n_layer=16, d_model=768, n_head=12, global_batch_size=160, lr=6e-4)],
                              "seq_len": 2048, "param_count": "total"})
    counts = count_params(g.sizes[0], g, vocab_size=50368)
    assert counts["total"] == pytest.approx(151e6, rel=0.012)          # the authors' CSV: 151,000,000
    # blocks (attention, MLP, 2 LayerNorm gains each) and the final norm
    assert counts["non_embedding"] == 16 * (12 * 768 ** 2 + 2 * 768) + 768
    assert plan_grid(g, 50368)[0].params == counts["total"]


def test_every_scale_builds_a_grid_and_runs_a_pipeline_spec():
    for scale in ("smoke", "small", "full"):
        spec = scales.NOTEBOOKS["empirical"].build(scale)
        assert isinstance(spec, EmpiricalSpec)
        g = spec.grid(seed=4)
        assert isinstance(g, GridConfig) and not isinstance(g, EmpiricalSpec) and g.seed == 4
        assert g.sizes and all(s.global_batch_size > 0 for s in g.sizes)
    with pytest.raises(ValueError, match="unknown"):
        EmpiricalSpec.from_dict({"sizes": [TINY], "n_steps": 3})
