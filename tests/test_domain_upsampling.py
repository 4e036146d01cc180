"""papers.domain_upsampling: the branch plan, the pretrain-then-branch pipeline (exact resume from
the baseline's checkpoint), the benchmark suites, the analysis helpers and the presets, on tiny shapes."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from papers.domain_upsampling import analysis as A
from papers.domain_upsampling import evals as E
from papers.domain_upsampling import pipeline as U
from papers.domain_upsampling import scales
from shared.data.corpora import load_corpus
from shared.data.generated import facts
from shared.data.lm_streams import StreamSpec, TokenizerSpec, load_or_train_tokenizer
from shared.data.mixture import PiecewiseSchedule
from shared.data.tokenizer import train_bpe
from shared.eval.gauntlet import tasks as gauntlet_tasks
from shared.models.gpt import GPT, GPTConfig
from shared.pipelines.lm_pretrain import BRANCH_POINTS, LMPretrainSpec

BASE = {"a": 0.6, "b": 0.2, "c": 0.2}
UP = {"a": 0.2, "b": 0.4, "c": 0.4}


# ------------------------------------------------------------------------------------ branch plan
def test_plan_branches_steps_phases_and_ablations():
    branches = U.plan_branches([0.05, 0.2, 1.0], UP, ablate=["b"], ablation_fraction=0.2)
    assert [b.name for b in branches] == ["f=0.05", "f=0.2", "f=1", "f=0.2 -b"]
    assert [b.start_step(200) for b in branches] == [190, 160, 0, 160]
    assert [b.slug for b in branches] == ["f0.05", "f0.2", "f1", "f0.2-no_b"]
    ablated = branches[-1]
    assert ablated.removed == "b" and ablated.upsampled["b"] == 0.0 and ablated.upsampled["c"] == 0.4
    # the mixture switches exactly at the branch step, and f = 1 is the upsampled mix throughout
    sched = PiecewiseSchedule([(p, w) for p, w in ablated.phases(BASE, 200)])
    assert sched.weights(159 / 200) == pytest.approx(BASE)
    assert sched.weights(160 / 200) == pytest.approx({"a": 1 / 3, "b": 0.0, "c": 2 / 3})
    assert branches[2].phases(BASE, 200) == [[0.0, UP]]


@pytest.mark.parametrize("kwargs", [dict(fractions=[0.0]), dict(fractions=[1.5]),
                                    dict(fractions=[0.1], ablate=["z"]),
                                    dict(fractions=[0.1, 0.1])])
def test_plan_branches_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        U.plan_branches(upsampled=UP, **kwargs)


def test_removing_the_only_domain_is_refused():
    with pytest.raises(ValueError, match="empty"):
        U.plan_branches([0.1], {"a": 1.0}, ablate=["a"])


# ------------------------------------------------------------------------------------ pipeline
def tiny_config(eval_every=0):
    gen = {"a": {"corpora": [{"name": "arithmetic", "n_train": 300, "n_test": 20}]},
           "b": {"corpora": [{"name": "functions", "n_train": 150, "n_test": 10}]},
           "c": {"corpora": [{"name": "facts", "n_entities": 6}]}}
    return {"seed": 0,
            "model": {"n_layer": 1, "n_head": 2, "d_model": 32, "max_seq_len": 256},
            "train": {"max_steps": 8, "global_batch_size": 4, "micro_batch_size": 2, "lr": 3e-3,
                      "schedule": "cosine", "warmup_steps": 1, "alpha_f": 0.1, "eval_every": eval_every,
                      "keep_last_n": 1, "progress_bar": False},
            "data": {"seq_len": 64, "tokenizer": {"vocab_size": 320}, "streams": gen},
            "base_mix": BASE,
            "bench": {"kind": "smoke", "general_corpora": ["facts"], "n_general": 4, "n_math": 4, "n_code": 4,
                      "n_knowledge": 4, "math_kwargs": {"n_train": 300, "n_test": 20},
                      "facts_kwargs": {"n_entities": 6},
                      "mcq": True}}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    out = tmp_path_factory.mktemp("upsampling")
    branches = [U.Branch("same", 0.25, dict(BASE)),              # "upsampled" = base: must equal baseline
                *U.plan_branches([0.5, 1.0], UP, ablate=["b"], ablation_fraction=0.25)]
    runs = U.run_pipeline(tiny_config(), branches, out)
    return out, branches, runs


def test_baseline_keeps_every_branch_point_despite_pruning(pipeline):
    out, _, runs = pipeline
    base = out / "baseline"
    assert [p.name for p in (base / "checkpoints").iterdir() if p.name.startswith("step_")] == ["step_00000008"]
    kept = sorted(p.name for p in (base / BRANCH_POINTS).iterdir())
    assert kept == ["step_00000004", "step_00000006"]      # f = 0.5 and f = 0.25; f = 1 starts fresh
    assert json.loads((out / "runs.json").read_text()) == runs
    assert runs["f=0.25 -b"]["start_step"] == 6 and runs["f=0.25 -b"]["steps"] == 2
    # a branch's own training time excludes the baseline's steps before its branch point
    assert 0 < runs["f=0.25 -b"]["train_s"] < runs["baseline"]["train_s"]


def test_identity_branch_reproduces_the_baseline_exactly(pipeline):
    """Branching with the base mix must continue the baseline bitwise: weights, optimizer, LR
    schedule, RNG and the mixture's position all come back from the branch-point checkpoint."""
    out, _, runs = pipeline
    base = load_file(out / "baseline" / "checkpoints" / "step_00000008" / "model.safetensors")
    same = load_file(out / "branches" / "f0.25" / "checkpoints" / "step_00000008" / "model.safetensors")
    assert base.keys() == same.keys()
    for k in base:
        assert torch.equal(base[k], same[k]), k
    upsampled = load_file(out / "branches" / "f0.5" / "checkpoints" / "step_00000008" / "model.safetensors")
    assert not all(torch.equal(base[k], upsampled[k]) for k in base)


def test_results_table_has_branches_leaving_the_baseline(pipeline):
    _, _, runs = pipeline
    df = U.collect_results(runs)
    assert set(df["run"]) == set(runs)
    base = df[df["run"] == "baseline"]
    assert sorted(base["step"].unique()) == [4, 6, 8]           # branch points + end
    for name, info in runs.items():
        steps = df[df["run"] == name]["step"]
        assert steps.max() == 8 and (name == "baseline" or steps.min() > info["start_step"])
    assert {"general_loss", "math_answer_nll", "code_heldout_loss", "knowledge_recall_acc",
            "knowledge_answer_nll", "knowledge_mcq_acc"} <= set(df["metric"])
    assert np.isfinite(df["value"]).all()


def test_rerunning_the_pipeline_trains_nothing(pipeline):
    out, branches, runs = pipeline
    before = (out / "baseline" / "metrics.jsonl").read_text()
    again = U.run_pipeline(tiny_config(), branches, out)
    assert (out / "baseline" / "metrics.jsonl").read_text() == before
    assert all(r["wall_s"] < 1.0 for r in again.values())
    assert {k: r["train_s"] for k, r in again.items()} == {k: r["train_s"] for k, r in runs.items()}
    changed = tiny_config()
    changed["train"]["lr"] = 1e-3
    with pytest.raises(ValueError, match="another config"):
        U.run_pipeline(changed, branches, out)


def tiny_spec(fixture_benchmarks=None) -> U.UpsamplingSpec:
    """An UpsamplingSpec of the tiny pipeline's runs (tiny_config)."""
    cfg = tiny_config()
    return U.UpsamplingSpec.from_dict({
        "base_mix": BASE, "upsampled_mix": UP, "fractions": [0.5, 1.0], "ablate": ["b"], "ablation_fraction": 0.5,
        "domain_metrics": {"a": "math_answer_nll"}, "general_metric": "general_loss", "accuracy_metrics": {},
        "model": cfg["model"], "train": cfg["train"], "data": cfg["data"], "eval": cfg["bench"],
        "fixture_benchmarks": fixture_benchmarks})


@pytest.mark.slow
def test_fixture_benchmarks_score_the_first_baseline_after_training(pipeline, tmp_path):
    pytest.importorskip("lm_eval")
    out, _, runs = pipeline
    model, _ = U.load_trained(tiny_spec(), runs["baseline"]["dir"])
    final = load_file(out / "baseline" / "checkpoints" / "step_00000008" / "model.safetensors")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in final.items())
    assert U.score_fixture_benchmarks(tiny_spec(), {0: runs}, tmp_path) is None
    fixtures = {"tasks": ["mmlu_anatomy", "gsm8k"], "num_fewshot": {"mmlu_anatomy": 2, "gsm8k": 1},
                "gauntlet": ["copa", "lambada_openai"], "rows": 2, "max_gen_toks": 4}
    scores = U.score_fixture_benchmarks(tiny_spec(fixtures), {0: runs, 1: {}}, tmp_path)
    assert {"mmlu_anatomy_acc", "gsm8k_exact_match_strict_match", "gauntlet_average", "gauntlet_commonsense_reasoning",
            "gauntlet_language_understanding", "gauntlet_task_copa", "gauntlet_task_lambada_openai"} <= set(scores)
    assert json.loads((tmp_path / "fixture_benchmarks.json").read_text()) == scores
    assert (tmp_path / "benchmark_fixtures" / "copa" / "validation.jsonl").is_file()
    assert -1.0 <= scores["gauntlet_task_copa"] <= 1.0 and 0.0 <= scores["mmlu_anatomy_acc"] <= 1.0


# ------------------------------------------------------------------------------------ benchmarks
@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe(load_corpus("facts", n_entities=6) + load_corpus("arithmetic", n_train=100, n_test=5),
                     300, show_progress=False)


def test_split_pair_concatenates_to_the_joint_encoding(tokenizer):
    ctx, cont = E.split_pair(tokenizer, 'def f(x):\n    """Doc."""\n', "    return x\n")
    assert ctx + cont == tokenizer.encode('def f(x):\n    """Doc."""\n    return x\n', add_special_tokens=False)
    assert ctx and cont


def test_fact_recall_items_answer_the_question_with_each_option(tokenizer):
    splits = facts.fact_splits(n_entities=6)
    items = E.fact_recall_items(tokenizer, splits, splits.test[:10])
    train_text = " ".join(splits.train_texts())
    for (options, answer), q in zip(items, splits.test[:10]):
        _, name, attr = q["id"].split("/")
        entity = next(e for e in splits.base.entities if e["name"] == name)
        texts = [tokenizer.decode(c + o) for c, o in options]
        assert texts[answer] == q["question"] + " " + entity["attrs"][attr] + "."
        assert len(set(texts)) == 4
        assert texts[answer] not in train_text                     # a form no training document uses


def tiny_model(vocab):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab, n_layer=1, n_head=2, d_model=32, max_seq_len=64)).eval()


def test_choice_accuracy_and_nll_follow_the_model(tokenizer):
    pairs = [([1, 2], [3]), ([1, 2], [4])]
    model = tiny_model(len(tokenizer))
    acc, nll = E.choice_accuracy(model, [(pairs, 0), (pairs, 1)])
    lp = [s for s, _ in E.continuation_logprobs(model, pairs)]
    assert acc == 0.5 and nll == pytest.approx(-(lp[0] + lp[1]) / 2)
    assert E.mean_nll(model, pairs) == pytest.approx(-(lp[0] + lp[1]) / 2)


@pytest.mark.slow
def test_full_suite_on_small_benchmark_files(tmp_path, tokenizer):
    pytest.importorskip("lm_eval")
    from shared.eval.benchmark_fixtures import write_fixtures
    write_fixtures(tmp_path / "benchmarks", ["mmlu_anatomy", "gsm8k"], rows=2)
    (tmp_path / "humaneval.jsonl").write_text(json.dumps(
        {"task_id": "T/0", "prompt": "def one():\n", "canonical_solution": "    return 1\n",
         "test": "def check(f):\n    assert f() == 1\n", "entry_point": "one"}) + "\n")
    (tmp_path / "general.jsonl").write_text(json.dumps({"text": "The capital of Kucho is Lishoun."}) + "\n")
    files = {k: str(tmp_path / f"{k}.jsonl") for k in ("humaneval", "general")}
    harness = {"data_dir": str(tmp_path / "benchmarks"), "tasks": ["mmlu_anatomy", "gsm8k"],
               "num_fewshot": {"mmlu_anatomy": 2, "gsm8k": 1}, "limit": 2}
    suite = E.full_suite(tokenizer, files, max_tokens=64, max_new_tokens=8, harness=harness)
    out = suite(tiny_model(len(tokenizer)))
    assert set(out) == {"general_loss", "gsm8k_em", "gsm8k_em_flexible", "humaneval_pass1"}
    assert out["humaneval_pass1"] == 0.0 and out["gsm8k_em"] in (0.0, 0.5, 1.0) and out["general_loss"] > 0
    assert suite.harness(tiny_model(len(tokenizer)))["mmlu_anatomy_acc"] in (0.0, 0.5, 1.0)
    with pytest.raises(ValueError, match="valid keys"):
        E.full_suite(tokenizer, {"mmlu": "x"}, max_tokens=64)
    with pytest.raises(ValueError, match="unknown harness options"):
        E.full_suite(tokenizer, {}, max_tokens=64, harness={**harness, "shots": 5})


@pytest.mark.slow
def test_full_suite_scores_the_gauntlet(tmp_path, tokenizer):
    pytest.importorskip("lm_eval")
    from shared.eval.benchmark_fixtures import write_fixtures
    write_fixtures(tmp_path, ["copa", "boolq"], rows=2)
    gauntlet = {"data_dir": str(tmp_path), "only": ["copa", "boolq"], "limit": 2}
    suite = E.full_suite(tokenizer, {}, max_tokens=64, gauntlet=gauntlet)
    assert suite.gauntlet.only == ("copa", "boolq") and suite.gauntlet.categories is None
    out = suite(tiny_model(len(tokenizer)))
    assert set(out) == {"gauntlet_average", "gauntlet_commonsense_reasoning", "gauntlet_reading_comprehension",
                        "gauntlet_task_copa", "gauntlet_task_boolq"}
    assert out["gauntlet_average"] == pytest.approx((out["gauntlet_task_copa"] + out["gauntlet_task_boolq"]) / 2)
    with pytest.raises(ValueError, match="gauntlet options"):
        E.full_suite(tokenizer, {}, max_tokens=64, gauntlet={"categories": None})


def test_gauntlet_scores_are_higher_is_better():
    assert A.sign("gauntlet_average") == 1.0 and A.sign("gauntlet_world_knowledge") == 1.0
    assert A.sign("general_loss") == -1.0 and A.sign("mmlu_acc") == 1.0


# ------------------------------------------------------------------------------------ analysis
def synthetic_final():
    rows = []
    for seed, offset in [(0, 0.0), (1, 0.3)]:      # seed 1 is worse everywhere (between-seed spread)
        def add(run, fraction, removed, math, code, acc):
            rows.append({"seed": seed, "run": run, "fraction": fraction, "removed": removed,
                         "math_answer_nll": math + offset, "code_heldout_loss": code + offset,
                         "knowledge_recall_acc": acc})
        add("baseline", 0.0, None, 3.0, 3.0, 0.25)
        add("f=0.2", 0.2, None, 2.8, 2.9, 0.30)
        add("f=0.2 -math", 0.2, "math", 3.1, 2.85, 0.30)
        add("f=0.2 -code", 0.2, "code", 2.75, 3.2, 0.30)
    return pd.DataFrame(rows)


def test_paired_gain_ignores_between_seed_offsets():
    final = synthetic_final()
    eff = A.paired_effect(final, "f=0.2", "math_answer_nll")
    assert eff["mean"] == pytest.approx(0.2) and eff["spread"] == pytest.approx(0.0, abs=1e-9)
    assert eff["reference_spread"] == pytest.approx(0.3)
    assert A.beats_reference(eff)
    acc = A.paired_effect(final, "f=0.2", "knowledge_recall_acc")
    assert acc["mean"] == pytest.approx(0.05)                 # accuracies count up, losses down
    worse = A.paired_effect(final, "f=0.2 -math", "math_answer_nll")
    assert worse["mean"] < 0 and not A.beats_reference(worse)


def test_ablation_deltas_name_the_removed_domain():
    final = synthetic_final()
    metrics = {"math": "math_answer_nll", "code": "code_heldout_loss"}
    deltas = A.ablation_deltas(final, list(metrics.values()), full_branch="f=0.2")
    assert deltas.loc["math", "math_answer_nll"] == pytest.approx(0.3)
    assert deltas.loc["math", "code_heldout_loss"] == pytest.approx(-0.05)
    assert A.hits_own_domain_hardest(deltas, metrics) == {"code": True, "math": True}
    swapped = deltas.rename(index={"math": "code", "code": "math"})
    assert A.hits_own_domain_hardest(swapped, metrics) == {"code": False, "math": False}


def test_monotone():
    assert A.monotone([0, 0.1, 0.1, 0.3]) and not A.monotone([0, 0.2, 0.1])
    assert A.monotone([0, 0.2, 0.19], tolerance=0.02)


def test_resolve_data_dir_fills_every_placeholder():
    cfg = {"data": {"tokenizer": {"path": "{data_dir}/tok"}, "streams": {"a": {"path": "{data_dir}/a"}}},
           "bench": {"files": {"mmlu": "{data_dir}/eval/mmlu.jsonl", "humaneval": "bundled"}}, "n": [1, "x"]}
    out = U.resolve_data_dir(cfg, "/d")
    assert out["data"]["streams"]["a"]["path"] == "/d/a" and out["bench"]["files"]["humaneval"] == "bundled"
    assert out["bench"]["files"]["mmlu"] == "/d/eval/mmlu.jsonl" and out["n"] == [1, "x"]
    with pytest.raises(ValueError, match="data_dir"):
        U.resolve_data_dir(cfg, None)
    with pytest.raises(ValueError, match="path"):
        load_or_train_tokenizer(TokenizerSpec(vocab_size=300), {"a": StreamSpec(path="/d/a")})


# ------------------------------------------------------------------------------------ presets
def test_run_config_of_every_scale_is_a_pipeline_run():
    for scale in ("smoke", "small", "full"):
        spec = scales.NOTEBOOKS["01_train"].build(scale)
        cfg = U.resolve_data_dir(U.run_config(spec, seed=3), "/d")
        assert cfg["seed"] == 3 and cfg["base_mix"] == spec.base_mix and cfg["bench"]["kind"] in U.SUITES
        assert set(cfg["data"]["streams"]) == set(spec.base_mix) == set(spec.upsampled_mix)
        run = {k: v for k, v in cfg.items() if k not in ("bench", "base_mix")}     # what train_entry parses
        branch = LMPretrainSpec.from_dict({**run, "data": {**run["data"], "phases": [[0.0, spec.base_mix]]}})
        assert branch.train.max_steps == spec.train.max_steps
    full = scales.NOTEBOOKS["01_train"].build("full")
    assert full.model["flavour"] == "mpt-7b" and full.needs_data_dir
    # the paper's general ability: the Gauntlet's average, from the harness's benchmark folder; no fixture check
    assert full.general_metric == "gauntlet_average" and full.fixture_benchmarks is None
    assert full.eval["gauntlet"]["data_dir"] == full.eval["harness"]["data_dir"]
    smoke = scales.NOTEBOOKS["01_train"].build("smoke")
    assert smoke.general_metric == "general_loss" and set(smoke.fixture_benchmarks["gauntlet"]) <= {
        t.name for t in gauntlet_tasks() if t.benchmark is not None}
