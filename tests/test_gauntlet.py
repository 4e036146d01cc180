"""shared.eval.gauntlet: the Mosaic Eval Gauntlet v0.3's categories and baselines, its rescaled-accuracy
aggregation, and its tasks scored through lm-evaluation-harness on fixture files with a tiny model."""
from __future__ import annotations

import json
import os

import pytest
import torch

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
pytest.importorskip("lm_eval")

from shared.data.tokenizer import train_bpe  # noqa: E402
from shared.eval import gauntlet as G  # noqa: E402
from shared.eval.benchmark_fixtures import write_fixtures  # noqa: E402
from shared.eval.benchmarks import BENCHMARKS, CausalLMAdapter, benchmark  # noqa: E402
from shared.models.gpt import GPT, GPTConfig  # noqa: E402

TEXTS = [f"Question: What is {a} plus {b}? Answer: {a + b}. The answer is {a + b}." for a in range(30) for b in range(6)]


def test_categories_are_the_v0_3_yaml():
    assert list(G.CATEGORIES) == ["world_knowledge", "commonsense_reasoning", "language_understanding",
                                  "symbolic_problem_solving", "reading_comprehension"]
    assert [len(v) for v in G.CATEGORIES.values()] == [6, 7, 4, 8, 6]
    by_name = {t.name: t for t in G.tasks()}
    assert (by_name["mmlu"].num_fewshot, by_name["mmlu"].random_baseline) == (5, 0.25)
    assert (by_name["copa"].num_fewshot, by_name["copa"].random_baseline) == (0, 0.5)
    assert (by_name["openbook_qa"].num_fewshot, by_name["winogrande"].num_fewshot) == (10, 5)
    assert by_name["gsm8k"].num_fewshot == 0 and by_name["gsm8k"].fewshot == 8       # 8 CoT shots prepended
    assert G.HARNESS_LACKS == ()          # the six the harness lacks run as our task YAMLs
    assert G.AVERAGES == {"core_average": tuple(G.CATEGORIES)}


def test_every_mapped_task_is_a_benchmark_with_fixture_rows():
    from shared.eval.benchmark_fixtures import ROWS
    for t in G.tasks():
        if t.benchmark not in (None, "mmlu"):
            assert t.benchmark in BENCHMARKS and t.benchmark in ROWS, t.name
            benchmark(t.benchmark)


def test_rescaling_and_aggregation_on_known_numbers():
    assert G.rescale(0.625, 0.25) == pytest.approx(0.5)
    assert G.rescale(0.5, 0.5) == 0.0 and G.rescale(0.25, 0.5) == pytest.approx(-0.5)
    assert G.rescale(0.3, 0.0) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        G.rescale(0.5, 1.0)
    # language_understanding: lambada (b 0), hellaswag (b .25), winograd (b .5), winogrande (b .5)
    acc = {"lambada_openai": 0.4, "hellaswag": 0.55, "winograd": 0.75, "winogrande": 0.6,
           "copa": 0.9, "piqa": 0.7}
    r = G.score(acc)
    lu = (0.4 + 0.4 + 0.5 + 0.2) / 4
    cr = (0.8 + 0.4) / 2
    assert r.categories["language_understanding"] == pytest.approx(lu)
    assert r.categories["commonsense_reasoning"] == pytest.approx(cr)
    assert r.average == pytest.approx((lu + cr) / 2)          # the categories scored
    assert r.partial == ["commonsense_reasoning"]
    assert "world_knowledge" not in r.categories and "jeopardy" in r.not_scored["world_knowledge"]
    assert r.tasks["hellaswag"]["score"] == pytest.approx(0.4)
    flat = r.flat()
    assert flat["gauntlet_average"] == pytest.approx((lu + cr) / 2)
    assert flat["gauntlet_language_understanding"] == pytest.approx(lu)
    assert flat["gauntlet_task_copa"] == pytest.approx(0.8)


def test_mmlu_is_the_unweighted_mean_of_its_subjects():
    results = {"mmlu_anatomy": {"acc": 0.5}, "mmlu_virology": {"acc": 1.0}, "mmlu": {"acc": 0.9}}
    assert G.accuracy_of(next(t for t in G.tasks() if t.name == "mmlu"), results) == pytest.approx(0.75)
    with pytest.raises(KeyError, match="no metric"):
        G.accuracy_of(next(t for t in G.tasks() if t.name == "hellaswag"), {"hellaswag": {"acc": 0.3}})


@pytest.fixture(scope="module")
def tiny_lm():
    tok = train_bpe(TEXTS, 400, show_progress=False)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tok), n_layer=1, n_head=2, d_model=32, max_seq_len=1024)).eval()
    return CausalLMAdapter(model, tok, batch_size=16, max_gen_toks=4, device="cpu")


@pytest.mark.slow
def test_every_scored_gauntlet_task_reads_its_fixture_and_scores(tiny_lm, tmp_path):
    names = [t.benchmark for t in G.tasks() if t.benchmark not in (None, "mmlu")] + ["mmlu_anatomy", "mmlu_virology"]
    write_fixtures(tmp_path, names, rows=2, shot_rows=10)
    r = G.evaluate_gauntlet(tiny_lm, tmp_path, limit=2, mmlu_subjects=["anatomy", "virology"])
    scored = {t.name for t in G.tasks() if t.benchmark is not None}
    assert set(r.tasks) == scored
    assert set(r.categories) == set(G.CATEGORIES) and r.partial == [] and r.not_scored == {}
    for name, t in r.tasks.items():
        assert 0.0 <= t["accuracy"] <= 1.0, name
        assert t["score"] == pytest.approx(G.rescale(t["accuracy"], t["random_baseline"]))
    assert r.average == pytest.approx(sum(r.categories.values()) / 5)
    json.dumps(r.to_dict())


def test_only_scores_the_named_tasks_and_lists_the_rest(tiny_lm, tmp_path):
    write_fixtures(tmp_path, ["copa", "boolq"], rows=2)
    r = G.evaluate_gauntlet(tiny_lm, tmp_path, only=["copa", "boolq"], limit=2)
    assert set(r.tasks) == {"copa", "boolq"}
    assert set(r.categories) == {"commonsense_reasoning", "reading_comprehension"}
    assert "piqa" in r.not_scored["commonsense_reasoning"]
    with pytest.raises(ValueError, match="not Gauntlet tasks"):
        G.evaluate_gauntlet(tiny_lm, tmp_path, only=["copa", "nope"])


@pytest.mark.slow
def test_cli_prints_the_result_as_json(tmp_path, capsys):
    from shared.models.gpt_hf import gpt_to_llama
    tok = train_bpe(TEXTS, 400, show_progress=False)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tok), n_layer=1, n_head=2, d_model=32, max_seq_len=256)).eval()
    gpt_to_llama(model).save_pretrained(str(tmp_path / "hf"))
    tok.save_pretrained(str(tmp_path / "hf"))
    write_fixtures(tmp_path / "data", ["copa"], rows=2)
    args = ["--model", str(tmp_path / "hf"), "--data-dir", str(tmp_path / "data"), "--only", "copa", "--limit", "2",
            "--device", "cpu", "--json"]
    assert G.main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out["tasks"]) == {"copa"} and out["average"] == out["categories"]["commonsense_reasoning"]
    assert "jeopardy" in out["not_scored"]["world_knowledge"] and out["source"] == G.SOURCE
    assert G.main([*args[:4], "--only", "nope"]) == 2


def test_ranks_other_than_0_take_part_in_every_shot_group(monkeypatch):
    """Inside a launched job the harness shards each call across ranks: a rank that got no results (not rank 0)
    must still make every call rank 0 makes, or the ranks' collectives stop matching."""
    calls = []

    def not_rank_0(lm, names, data_dir, num_fewshot=None, limit=None):
        calls.append(num_fewshot)
        return {}

    monkeypatch.setattr(G, "evaluate_benchmarks", not_rank_0)
    result = G.evaluate_gauntlet(object(), "unused", only=["copa", "siqa", "openbook_qa"])
    assert sorted(calls) == [0, 3, 10] and result.tasks == {} and result.averages == {}
