"""shared.eval.glue_fixtures: GLUE files in the original tsv and the Hub's parquet layouts, read back by
shared.eval.glue's readers; MosaicML's scoring on known predictions; shared.pipelines.mlm_pretrain's
GlueFixtureCheck: the full-scale GLUE path (readers, per-task recipes and seeds, start_from, scoring)
run on those files from a pretraining run's last checkpoint; the smoke presets that run it."""
import csv
import importlib

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from shared.data.formats import write_jsonl, write_parquet
from shared.data.mlm import SpecialIds
from shared.data.mlm_cache import prepare_mlm_cache
from shared.data.tokenizer import ENCODER_SPECIAL_TOKENS, train_bpe
from shared.eval.glue import (
    GLUE_TASKS,
    TaskData,
    _scores,
    encode_task,
    mosaicml_scoring,
    read_glue_tasks,
    read_task_split,
)
from shared.eval.glue_fixtures import FIXTURE_TASKS, fixture_rows, task_splits, write_glue_fixtures
from shared.models.output import ModelOutput
from shared.pipelines.mlm_pretrain import GlueFixtureCheck, glue_fixture_eval, pretrain_mlm

SPECIAL = SpecialIds(mask=2, pad=1, cls=3, sep=4, special=(0, 1, 2, 3, 4), vocab_size=60)


def _tsv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.mark.parametrize("fmt", ["tsv", "parquet"])
def test_fixture_files_read_back_through_the_glue_readers(tmp_path, fmt):
    written = write_glue_fixtures(tmp_path, FIXTURE_TASKS, rows=12, eval_rows=6, seed=3, formats=fmt)
    assert sorted(written) == sorted(FIXTURE_TASKS)
    tasks = read_glue_tasks(tmp_path, FIXTURE_TASKS)
    for task in tasks:
        name = task.spec.name
        for split, data in (("train", task.train), (task.spec.eval_split, task.eval)):
            expected = fixture_rows(name, split, 12 if split == "train" else 6, seed=3)
            assert data.texts == [[r[f] for r in expected] for f in task.spec.text_fields], (fmt, name, split)
            assert data.labels == pytest.approx([r["label"] for r in expected]), (fmt, name, split)
        if task.spec.is_regression:
            assert all(0.0 <= y <= 5.0 for y in task.train.labels) and len(set(task.train.labels)) > 2
        else:
            assert sorted(set(task.train.labels)) == list(range(task.spec.num_labels))   # every class, balanced
    mismatched = read_task_split(tmp_path, GLUE_TASKS["mnli"], "validation_mismatched")
    assert len(mismatched) == 6 and mismatched.labels == [0, 1, 2, 0, 1, 2]
    assert fixture_rows("cola", "train", 12, seed=3) != fixture_rows("cola", "train", 12, seed=4)


def test_tsv_fixtures_have_the_original_glue_columns(tmp_path):
    write_glue_fixtures(tmp_path, ["cola", "mrpc", "stsb", "mnli", "qnli"], rows=6)
    cola = _tsv(tmp_path / "CoLA" / "train.tsv")
    assert len(cola) == 6 and all(len(r) == 4 for r in cola)                 # no header: source, label, *, text
    assert {(r[1], r[2]) for r in cola} == {("1", ""), ("0", "*")}
    assert _tsv(tmp_path / "MRPC" / "dev.tsv")[0] == ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    stsb = _tsv(tmp_path / "STS-B" / "train.tsv")
    assert stsb[0][-3:] == ["sentence1", "sentence2", "score"] and len(stsb[0]) == 10
    train, dev = _tsv(tmp_path / "MNLI" / "train.tsv"), _tsv(tmp_path / "MNLI" / "dev_mismatched.tsv")
    assert train[0][-2:] == ["label1", "gold_label"] and dev[0][-6:] == [f"label{k}" for k in range(1, 6)] + ["gold_label"]
    assert {r[-1] for r in dev[1:]} == {"entailment", "neutral", "contradiction"}
    assert {r[3] for r in dev[1:]} <= {"facetoface", "letters", "nineeleven", "oup", "verbatim"}
    assert {r[-1] for r in _tsv(tmp_path / "QNLI" / "train.tsv")[1:]} == {"entailment", "not_entailment"}


def test_parquet_fixtures_follow_the_hub_layout_and_shards_are_read_in_order(tmp_path):
    written = write_glue_fixtures(tmp_path, ["stsb", "mnli"], rows=4, formats="parquet")
    assert [p.name for p in written["mnli"]] == [f"{s}-00000-of-00001.parquet" for s in task_splits("mnli")]
    schema = pq.read_schema(tmp_path / "stsb" / "train-00000-of-00001.parquet")
    assert str(schema.field("label").type) == "float" and str(schema.field("idx").type) == "int32"
    assert schema.names == ["sentence1", "sentence2", "label", "idx"]
    for k in range(2):                                      # a split the Hub stores in two shards
        write_parquet(tmp_path / "cola" / f"train-0000{k}-of-00002.parquet",
                      [{"sentence": f"s{k}{i}", "label": (k + i) % 2, "idx": i} for i in range(3)])
    write_jsonl(tmp_path / "rte" / "train.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 1, "idx": 0}])
    cola = read_task_split(tmp_path, GLUE_TASKS["cola"], "train")
    assert cola.texts[0] == ["s00", "s01", "s02", "s10", "s11", "s12"] and cola.labels == [0, 1, 0, 1, 0, 1]
    assert read_task_split(tmp_path, GLUE_TASKS["rte"], "train").labels == [1]   # plain files still first
    with pytest.raises(ValueError, match="unknown fixture format"):
        write_glue_fixtures(tmp_path, ["cola"], formats={"cola": "csv"})


class DigitTokenizer:
    """Digits '0'..'9' -> ids 5..14, any other character -> 15."""

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[5 + int(c) if c.isdigit() else 15 for c in t] for t in texts]}


class ReadsItsAnswer(torch.nn.Module):
    """A stand-in classifier whose prediction is written in the input: the first text's first character
    is the class id (or, for regression, the score)."""

    def __init__(self, num_labels: int):
        super().__init__()
        self.num_labels = num_labels
        self.weight = torch.nn.Parameter(torch.zeros(()))

    def forward(self, input_ids, attention_mask, token_type_ids):
        value = (input_ids[:, 1] - 5).float()                                   # (B,), the digit after [CLS]
        if self.num_labels == 1:
            return ModelOutput(value[:, None], None)
        return ModelOutput(torch.nn.functional.one_hot(value.long(), self.num_labels).float(), None)


def _encoded(texts, labels, fields):
    data = TaskData([texts] + [["x"] * len(texts)] * (fields - 1), labels)
    return encode_task(data, DigitTokenizer(), 8, SPECIAL)


def test_mosaicml_scoring_on_known_predictions(tmp_path):
    """MNLI: mean of matched and mismatched accuracy; STS-B: Spearman only; MRPC: mean of F1 and accuracy."""
    write_glue_fixtures(tmp_path, ["mnli", "stsb", "mrpc"], rows=4)
    tasks = {t.spec.name: t for t in mosaicml_scoring(read_glue_tasks(tmp_path, ["mnli", "stsb", "mrpc"]), tmp_path)}
    assert "mismatched" in tasks["mnli"].extra_evals and tasks["stsb"].spec.metrics == ("spearman",)
    mnli = tasks["mnli"].spec
    matched = _encoded(["0", "1", "2", "0"], [0, 1, 2, 1], 2)                 # 3 of 4 right
    mismatched = _encoded(["0", "0", "2", "1"], [0, 1, 1, 1], 2)              # 2 of 4 right
    out = _scores(ReadsItsAnswer(3), mnli, matched, {"mismatched": mismatched}, batch_size=3)
    assert out["accuracy"] == pytest.approx(75.0) and out["accuracy_mismatched"] == pytest.approx(50.0)
    assert out["score"] == pytest.approx(62.5)
    stsb = _encoded(["1", "2", "3", "4"], [0.5, 3.0, 2.0, 5.0], 2)           # ranks 1 3 2 4: Spearman 0.8
    out = _scores(ReadsItsAnswer(1), tasks["stsb"].spec, stsb, {}, batch_size=4)
    assert out == pytest.approx({"spearman": 80.0, "score": 80.0})
    mrpc = _encoded(["1", "1", "1", "0"], [1, 1, 0, 0], 2)                   # accuracy 0.75, F1 2*2/(4+1) = 0.8
    out = _scores(ReadsItsAnswer(2), tasks["mrpc"].spec, mrpc, {}, batch_size=4)
    assert out == pytest.approx({"f1": 80.0, "accuracy": 75.0, "score": 77.5})


def _tiny_pretraining_run(tmp_path):
    """A 1-layer encoder pretrained 2 steps on the fixture sentences (the cache data path): run dir, tokenizer."""
    docs = [r["sentence"] for r in fixture_rows("cola", "train", 80)]
    write_jsonl(tmp_path / "docs.jsonl", [{"text": d} for d in docs])
    tok = train_bpe(docs, vocab_size=320, special_tokens=ENCODER_SPECIAL_TOKENS, show_progress=False)
    tok.save_pretrained(str(tmp_path / "tok"))
    prepare_mlm_cache(tmp_path / "docs.jsonl", tok, 24, tmp_path / "cache", shard_rows=40, chunk=40)
    config = {"model": dict(n_layer=1, n_head=2, d_model=16, d_ff=32, max_seq_len=64, unpad=True, alibi=True),
              "train": dict(max_steps=2, lr=1e-3, progress_bar=False, precision="fp32", checkpoint_every=2),
              "masking": {"kind": "constant", "p_i": 0.3},
              "data": {"kind": "cache", "train_dir": str(tmp_path / "cache"), "eval_dir": str(tmp_path / "cache"),
                       "tokenizer_dir": str(tmp_path / "tok")},
              "micro_batch_size": 8, "eval_batch_size": 8}
    pretrain_mlm(config, str(tmp_path / "run"))
    return tmp_path / "run", tok


def test_glue_fixture_check_runs_the_full_scale_path_from_a_checkpoint(tmp_path):
    run_dir, tok = _tiny_pretraining_run(tmp_path)
    check = GlueFixtureCheck.from_dict({
        "tasks": ["mnli", "cola", "stsb", "mrpc"], "rows": 12, "eval_rows": 6, "formats": {"stsb": "parquet"},
        "finetune": {"max_steps": 3, "lr": 1e-3, "micro_batch_size": 8, "seq_len": 32, "dropout": 0.0},
        "per_task": {"cola": {"epochs": 1}}, "seeds": [0], "task_seeds": {"mrpc": [0, 1]},
        "start_from": {"mrpc": "mnli", "stsb": "mnli"}})
    out = glue_fixture_eval(check, run_dir, tok, tmp_path / "glue")
    assert out["files"]["stsb"][0] == "stsb/train-00000-of-00001.parquet" and out["files"]["cola"][0] == "CoLA/train.tsv"
    runs = {(r["task"], r["seed"]): r for r in out["runs"]}
    assert sorted(runs) == [("cola", 0), ("mnli", 0), ("mrpc", 0), ("mrpc", 1), ("stsb", 0)]
    assert set(runs["mnli", 0]) >= {"accuracy", "accuracy_mismatched"}
    assert runs["mnli", 0]["score"] == pytest.approx((runs["mnli", 0]["accuracy"] + runs["mnli", 0]["accuracy_mismatched"]) / 2)
    assert "spearman" in runs["stsb", 0] and "pearson" not in runs["stsb", 0]
    assert runs["mrpc", 1]["score"] == pytest.approx((runs["mrpc", 1]["f1"] + runs["mrpc", 1]["accuracy"]) / 2)
    assert all(r["step"] == 2 for r in out["runs"]) and out["step"] == 2
    assert out["average"] == pytest.approx(np.mean([out["tasks"][t] for t in ("mnli", "cola", "stsb", "mrpc")]))


def test_glue_fixture_check_refuses_what_would_fail_later():
    base = {"tasks": ["mnli", "mrpc"], "finetune": {"max_steps": 2}}
    with pytest.raises(ValueError, match="not GLUE tasks"):
        GlueFixtureCheck.from_dict({**base, "tasks": ["mnli", "acceptability"]})
    with pytest.raises(ValueError, match="formats"):
        GlueFixtureCheck.from_dict({**base, "formats": {"mnli": "csv"}})
    with pytest.raises(ValueError, match="not among tasks"):
        GlueFixtureCheck.from_dict({**base, "start_from": {"stsb": "mnli"}})
    assert GlueFixtureCheck.from_dict(base).downstream("/g").scoring == "mosaicml"


@pytest.mark.parametrize("paper, notebooks", [("mosaicbert", ["pareto", "ablation"]), ("masking_schedules", ["schedules"])])
def test_smoke_presets_check_the_glue_path_and_full_reads_real_glue(paper, notebooks):
    presets = importlib.import_module(f"papers.{paper}.scales").NOTEBOOKS
    for nb in notebooks:
        for scale in ("smoke", "small"):
            check = presets[nb].build(scale).eval.glue_fixtures
            assert check is not None and check.scoring == "mosaicml" and {"mnli", "stsb", "mrpc"} <= set(check.tasks)
            assert set(check.formats.values()) == {"parquet"} and set(check.tasks) - set(check.formats)  # both formats
        full = presets[nb].build("full").eval
        assert full.glue_fixtures is None and full.scoring == "mosaicml" and full.glue_dir.endswith("/glue")
