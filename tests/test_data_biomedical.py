"""The generated biomedical world: deterministic, split by disease, written in the published benchmark
formats and read back by shared.eval.formats."""
import json

import pytest

from shared.data.generated import biomedical as B
from shared.eval.formats import read_medmcqa, read_medqa, read_pubmedqa


@pytest.fixture(scope="module")
def splits():
    return B.biomedical_splits(n_diseases=20, test_fraction=0.25, docs_per_disease=5, seed=3)


def test_deterministic_and_seed_dependent(splits):
    again = B.biomedical_splits(n_diseases=20, test_fraction=0.25, docs_per_disease=5, seed=3)
    assert again.world == splits.world and again.documents == splits.documents
    assert again.questions("medqa", "test") == splits.questions("medqa", "test")
    other = B.biomedical_splits(n_diseases=20, test_fraction=0.25, docs_per_disease=5, seed=4)
    assert other.world != splits.world


def test_world_names_are_distinct_and_drugs_carry_their_class_stem(splits):
    w = splits.world
    for attr in ("name", "gene", "drug"):
        assert len({getattr(d, attr) for d in w}) == len(w)
    assert all(d.drug.endswith(d.drug_class) and d.drug_class in B.DRUG_CLASSES for d in w)
    with pytest.raises(ValueError, match="n_diseases"):
        B.generate_diseases(3)


def test_split_by_disease_and_every_fact_in_the_documents(splits):
    train = {d.name for d in splits.train_diseases}
    test = {d.name for d in splits.test_diseases}
    assert len(test) == 5 and not train & test and train | test == {d.name for d in splits.world}
    text = "\n".join(splits.documents)
    for d in splits.test_diseases:   # the held-out diseases' facts are in the pretraining text
        for value in (d.organ, d.symptom, d.gene, d.drug, d.side_effect):
            assert value in text
        assert f"treated with {d.drug}" in text or f"treatment is {d.drug}" in text or f"choice for {d.name}" in text
    for fmt in B.FORMATS:            # no test question mentions a training disease as its subject
        for q in splits.questions(fmt, "test"):
            blob = json.dumps(q)
            assert any(name in blob for name in test)


def test_pubmedqa_contexts_are_not_pretraining_text_and_decisions_follow_results(splits):
    docs = "\n".join(splits.documents)
    items = splits.questions("pubmedqa", "train") + splits.questions("pubmedqa", "test")
    seen = [q["context"]["contexts"][1] in docs for q in items]     # the Methods sentence
    assert sum(seen) <= 0.1 * len(items)          # fresh abstracts (random numbers may coincide)
    for q in items:
        results = q["context"]["contexts"][2]
        assert q["final_decision"] in B.DECISIONS
        if q["final_decision"] == "yes":
            assert any(p in results for p in ("0.001", "0.002", "0.004", "0.01"))
        if q["final_decision"] == "maybe":
            assert any(p in results for p in ("0.06", "0.07", "0.08", "0.09"))


def test_files_round_trip_through_the_benchmark_readers(splits, tmp_path):
    paths = B.write_benchmark_files(splits, tmp_path)
    mcq = read_medmcqa(paths["medmcqa"]["test"])
    raw = splits.questions("medmcqa", "test")
    assert len(mcq) == len(raw) == 5 * len(B.MEDMCQA_QUESTIONS)
    for q, r in zip(mcq, raw):
        assert q.choices[q.answer] == r[("opa", "opb", "opc", "opd")[r["cop"] - 1]]
    medqa = read_medqa(paths["medqa"]["train"])
    assert all(len(q.choices) == 4 and q.answer is not None for q in medqa)
    pqa = read_pubmedqa(paths["pubmedqa"]["test"])
    assert all(q.choices == ("yes", "no", "maybe") and q.context for q in pqa)
    labels = [q.choices[q.answer] for q in pqa]
    assert labels == [r["final_decision"] for r in splits.questions("pubmedqa", "test")]


def test_answers_are_the_facts(splits):
    by_name = {d.name: d for d in splits.world}
    for r in splits.questions("medqa", "test"):
        name = next(n for n in by_name if n in r["question"])
        d = by_name[name]
        assert r["answer"] in (d.drug, d.gene, d.organ) and r["options"][r["answer_idx"]] == r["answer"]
    pq = splits.patient_questions("test")
    assert all(p["keyword"] in p["answer"] for p in pq) and len(pq) == 2 * len(splits.test_diseases)
    with pytest.raises(ValueError, match="format"):
        splits.questions("mmlu", "test")


def test_distractors_come_from_the_same_split(splits):
    train_drugs = {d.drug for d in splits.train_diseases}
    for r in splits.questions("medmcqa", "test"):
        opts = {r[k] for k in ("opa", "opb", "opc", "opd")}
        assert not opts & train_drugs


@pytest.mark.parametrize("seed", range(12))
def test_the_smoke_world_generates_at_every_seed(seed):
    """The smoke preset's world (40 diseases, 16 documents each, 45% held out) builds at many seeds, with
    every question format on both splits and every fact of every disease in the pretraining text."""
    s = B.biomedical_splits(n_diseases=40, test_fraction=0.45, docs_per_disease=16, seed=seed)
    assert len(s.test_diseases) == 18 and len(s.train_diseases) == 22
    for fmt in B.FORMATS:
        for split in ("train", "test"):
            assert s.questions(fmt, split)
    text = "\n".join(s.documents)
    assert all(v in text for d in s.world for v in (d.name, d.gene, d.drug, d.organ, d.symptom, d.side_effect))
