"""shared.eval.benchmarks: lm-evaluation-harness tasks read from local files in the public row formats, our
models wrapped as the harness's LM (equal to the harness's own HFLM on the same weights), the CLI."""
from __future__ import annotations

import json
import os

import pytest
import torch

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance  # noqa: E402

from shared.data.tokenizer import train_bpe  # noqa: E402
from shared.eval.benchmark_fixtures import write_fixtures  # noqa: E402
from shared.eval.benchmarks import (BENCHMARKS, CausalLMAdapter, benchmark, evaluate_benchmarks, load_lm,  # noqa: E402
                                    local_task_spec, main)
from shared.models.gpt import GPT, GPTConfig  # noqa: E402
from shared.models.gpt_hf import gpt_to_llama  # noqa: E402

TEXTS = [f"Question: What is {a} plus {b}? Answer: {a + b}. Sam has apples #### {a + b}" for a in range(30) for b in range(8)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(our GPT, its tokenizer, the same weights saved as a transformers Llama folder)."""
    tok = train_bpe(TEXTS, 400, show_progress=False)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tok), n_layer=2, n_head=2, d_model=32, max_seq_len=512)).eval()
    folder = tmp_path_factory.mktemp("hf")
    gpt_to_llama(model).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return model, tok, folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_fixtures(tmp_path_factory.mktemp("benchmarks"), [*BENCHMARKS, "mmlu_anatomy", "mmlu_virology"],
                          rows=3)


def _requests(kind, args):
    return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(args)]


PAIRS = [("Question: What is 3 plus 4? Answer:", " 7"), ("Sam has", " apples #### 12"), ("", "What is 9 plus 1?"),
         ("Question: What is 20 plus 5?", " Answer: 25.")]


@pytest.mark.slow
def test_adapter_equals_the_harness_hflm(tiny):
    model, tok, folder = tiny
    ours = CausalLMAdapter(model, tok, batch_size=3, device="cpu")
    theirs = load_lm(folder, device="cpu", batch_size=3)
    a = ours.loglikelihood(_requests("loglikelihood", PAIRS))
    b = theirs.loglikelihood(_requests("loglikelihood", PAIRS))
    assert [g for _, g in a] == [g for _, g in b]
    assert torch.allclose(torch.tensor([x for x, _ in a]), torch.tensor([x for x, _ in b]), atol=1e-4)
    rolling = [("Question: What is 12 plus 3? Answer: 15. " * 3,)]
    assert ours.loglikelihood_rolling(_requests("loglikelihood_rolling", rolling)) == pytest.approx(
        theirs.loglikelihood_rolling(_requests("loglikelihood_rolling", rolling)), abs=1e-3)
    gen = [("Question: What is 2 plus 2? Answer:", {"until": ["\n"], "max_gen_toks": 6, "do_sample": False})]
    assert ours.generate_until(_requests("generate_until", gen)) == theirs.generate_until(_requests("generate_until", gen))


@torch.no_grad()
def test_adapter_loglikelihood_is_the_sum_of_token_logprobs(tiny):
    model, tok, _ = tiny
    lm = CausalLMAdapter(model, tok, batch_size=2, device="cpu")
    (score, greedy), = lm._loglikelihood_tokens([(None, [5, 9, 11], [7, 3])])
    logp = torch.log_softmax(model(torch.tensor([[5, 9, 11, 7]])).logits.float(), -1)[0]   # (4, V)
    assert score == pytest.approx(float(logp[2, 7] + logp[3, 3]), abs=1e-5)
    assert greedy == bool(logp[2].argmax() == 7 and logp[3].argmax() == 3)


GSM8K_METRICS = {"exact_match/strict-match", "exact_match/flexible-extract"}
GENERATION_METRICS = {"gsm8k": GSM8K_METRICS, "gsm8k_cot": GSM8K_METRICS, "triviaqa": {"exact_match/remove_whitespace"},
                      **{f"bigbench_{t}": {"exact_match"} for t in ("qa_wikidata", "dyck_languages", "operators")},
                      "svamp": {"exact_match"}}


@pytest.mark.slow
def test_every_task_reads_its_public_format_and_scores(tiny, data_dir):
    model, tok, _ = tiny
    tasks = [*BENCHMARKS, "mmlu_anatomy"]
    results = evaluate_benchmarks(CausalLMAdapter(model, tok, batch_size=8, device="cpu"), tasks, data_dir, limit=3)
    assert set(results) == set(tasks)
    for task, metrics in results.items():
        wanted = GENERATION_METRICS.get(task, {"acc"})
        assert wanted <= set(metrics), (task, metrics)
        rates = {k: v for k, v in metrics.items() if "stderr" not in k and k != "perplexity"}
        assert all(0.0 <= v <= 1.0 for v in rates.values()), (task, metrics)


def test_mmlu_subject_reads_only_its_rows(data_dir):
    spec = local_task_spec("mmlu_anatomy", data_dir)
    assert spec["task"] == "mmlu_anatomy" and spec["dataset_path"] == "json"
    assert set(spec["dataset_kwargs"]["data_files"]) == {"test", "dev"}
    import datasets
    rows = datasets.load_dataset("json", data_files=spec["dataset_kwargs"]["data_files"])
    assert {r["subject"] for r in rows["test"]} == {"anatomy", "virology"}
    kept = spec["process_docs"](rows["test"])
    assert len(kept) == 3 and {r["subject"] for r in kept} == {"anatomy"}


def test_missing_files_and_unknown_tasks_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"hellaswag/validation\{.jsonl"):
        local_task_spec("hellaswag", tmp_path)
    with pytest.raises(ValueError, match="unknown benchmark 'hellaswagg'"):
        benchmark("hellaswagg")
    assert benchmark("medqa").harness_task == "medqa_4options"


@pytest.mark.slow
def test_cli_prints_one_json_object(tiny, data_dir, capsys):
    _, _, folder = tiny
    assert main(["--model", str(folder), "--tasks", "arc_easy,piqa", "--data-dir", str(data_dir), "--limit", "2",
                 "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) == {"arc_easy", "piqa"} and {"acc", "acc_norm"} <= set(out["arc_easy"])
    assert main(["--model", str(folder), "--tasks", "nope", "--data-dir", str(data_dir)]) == 2


def test_mmlu_expands_to_its_subjects_or_a_chosen_few():
    from shared.eval.benchmarks import expand, mmlu_subjects
    assert len(expand(["mmlu"])) == 57 == len(mmlu_subjects())
    assert expand(["mmlu", "gsm8k"], ["anatomy", "virology"]) == ["mmlu_anatomy", "mmlu_virology", "gsm8k"]
    with pytest.raises(ValueError, match="unknown MMLU subjects"):
        expand(["mmlu"], ["astrology"])
