"""shared.eval.glue: GLUE metrics against scikit-learn / scipy, readers of the real GLUE file
formats (original tsv, jsonl, parquet) on small files written here, pair encoding, finetuning on
the shared Trainer; shared.eval.glue_standins: the offline smoke tasks."""
import math

import numpy as np
import pytest
import torch

from shared.data.debian_text import MissingDataError
from shared.data.formats import write_jsonl, write_parquet
from shared.data.mlm import SpecialIds
from shared.eval.glue import (
    GLUE_TASKS,
    FinetuneConfig,
    Task,
    TaskData,
    compute_metric,
    encode_task,
    finetune_tasks,
    glue_average,
    read_glue_tasks,
    read_task_split,
)
from shared.eval.glue_standins import STANDIN_TASKS, standin_tasks
from shared.models.bert import Bert, BertConfig

SPECIAL = SpecialIds(mask=2, pad=1, cls=3, sep=4, special=(0, 1, 2, 3, 4), vocab_size=60)


class CharTokenizer:
    """One id per character (ids 5..), enough to test encoding and finetuning without training a BPE."""
    mask_token_id, pad_token_id, cls_token_id, sep_token_id = 2, 1, 3, 4
    all_special_ids = [0, 1, 2, 3, 4]

    def __len__(self):
        return 60

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[5 + (ord(c) % 55) for c in t] for t in texts]}


def test_metrics_match_sklearn_and_scipy():
    from scipy import stats
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    assert compute_metric("accuracy", p, y) == pytest.approx(accuracy_score(y, p))
    assert compute_metric("f1", p, y) == pytest.approx(f1_score(y, p))
    assert compute_metric("matthews", p, y) == pytest.approx(matthews_corrcoef(y, p))
    a, b = rng.normal(size=100), rng.normal(size=100)
    assert compute_metric("pearson", a, b) == pytest.approx(stats.pearsonr(a, b)[0])
    assert compute_metric("spearman", a, b) == pytest.approx(stats.spearmanr(a, b)[0])
    with pytest.raises(ValueError, match="valid choices"):
        compute_metric("bleu", p, y)


def test_readers_of_original_glue_tsv_and_hf_jsonl_parquet(tmp_path):
    (tmp_path / "CoLA").mkdir()
    (tmp_path / "CoLA" / "train.tsv").write_text('gj04\t1\t\tOur friends won\'t buy this analysis.\n'
                                                  'gj04\t0\t*\tOne more pseudo generalization "and" I\'m giving up.\n')
    (tmp_path / "MRPC").mkdir()
    (tmp_path / "MRPC" / "dev.tsv").write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                                                "1\t1\t2\tHe said so .\tHe had said so .\n0\t3\t4\tA cat .\tA dog .\n")
    (tmp_path / "MNLI").mkdir()
    header = "index\tpromptID\tpairID\tgenre\ts1bp\ts2bp\ts1p\ts2p\tsentence1\tsentence2\tlabel1\tgold_label\n"
    (tmp_path / "MNLI" / "dev_matched.tsv").write_text(header + "0\t1\t1\tx\t.\t.\t.\t.\tA man eats.\tA person eats.\t"
                                                        "entailment\tentailment\n1\t2\t2\tx\t.\t.\t.\t.\tIt rains.\t"
                                                        "It is dry.\tcontradiction\tcontradiction\n")
    write_jsonl(tmp_path / "stsb" / "train.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 3.2, "idx": 0}])
    write_parquet(tmp_path / "rte" / "validation.parquet", [{"sentence1": "x", "sentence2": "y", "label": 1, "idx": 0}])
    cola = read_task_split(tmp_path, GLUE_TASKS["cola"], "train")
    assert cola.labels == [1, 0] and cola.texts[0][1].startswith("One more pseudo")
    mrpc = read_task_split(tmp_path, GLUE_TASKS["mrpc"], "validation")
    assert mrpc.labels == [1, 0] and mrpc.texts[1] == ["He had said so .", "A dog ."]
    mnli = read_task_split(tmp_path, GLUE_TASKS["mnli"], "validation_matched")
    assert mnli.labels == [0, 2] and mnli.texts[0] == ["A man eats.", "It rains."]
    assert read_task_split(tmp_path, GLUE_TASKS["stsb"], "train").labels == [3.2]
    assert read_task_split(tmp_path, GLUE_TASKS["rte"], "validation").labels == [1]
    with pytest.raises(FileNotFoundError, match="qqp"):
        read_glue_tasks(tmp_path, ["qqp"])
    with pytest.raises(ValueError, match="valid"):
        read_glue_tasks(tmp_path, ["wnli"])


def test_pair_encoding_truncates_longest_first_with_token_types():
    data = TaskData([["abcdefghij", "ab"], ["xyz", "uvwxyz0123456"]], [1, 0])
    enc = encode_task(data, CharTokenizer(), 10, SPECIAL)
    ids, types, mask = enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]
    assert mask.all()                                          # both rows filled to 10 exactly
    assert ids[0, 0] == 3 and (ids[0] == 4).sum() == 2          # [CLS] a [SEP] b [SEP]
    assert types[0].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]  # a cut to 4 (longest first), b kept (3)
    assert types[1].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]  # a kept (2), b cut to 5
    assert enc["labels"].dtype == torch.long


def test_finetuning_learns_a_simple_task_over_seeds():
    """Label = whether the sentence contains 'z': a tiny random encoder learns it in 60 steps."""
    rng = np.random.default_rng(0)
    letters = "abcdefghijklmnopqrstuvwxy"

    def make(n):
        texts, labels = [], []
        for i in range(n):
            w = list(rng.choice(list(letters), size=8))
            if i % 2:
                w[rng.integers(8)] = "z"
            texts.append("".join(w)); labels.append(i % 2)
        return TaskData([texts], labels)

    task = Task(GLUE_TASKS["sst2"], make(256), make(128))
    torch.manual_seed(0)
    encoder = Bert(BertConfig(vocab_size=60, n_layer=1, n_head=2, d_model=32, d_ff=64, max_seq_len=16))
    rows = finetune_tasks(encoder, CharTokenizer(), [task], FinetuneConfig(max_steps=60, lr=3e-3, seq_len=16,
                                                                            dropout=0.0), seeds=[0, 1])
    assert [r["seed"] for r in rows] == [0, 1]
    summary = glue_average(rows)
    assert summary["tasks"]["sst2"] > 90 and summary["average"] == summary["tasks"]["sst2"]


def test_standin_tasks_are_balanced_and_disjoint():
    try:
        tasks = standin_tasks(list(STANDIN_TASKS), n_train=300, n_eval=100, seed=0)
    except MissingDataError:
        pytest.skip("WordNet (dict-wn) not fetched: bash ci/fetch_offline_data.sh")
    for t in tasks:
        assert len(t.train) >= 290 // 3 * 3 and len(t.eval) >= 99 // 3 * 3
        assert not set(t.train.texts[0]) & set(t.eval.texts[0]), t.spec.name
        if t.spec.is_regression:
            assert min(t.train.labels) >= 0 and max(t.train.labels) <= 5 and np.std(t.train.labels) > 1
        else:
            counts = np.bincount(t.train.labels)
            assert counts.min() / counts.max() > 0.8, t.spec.name
    again = standin_tasks(["acceptability"], n_train=300, n_eval=100, seed=0)[0]
    assert again.train.texts == tasks[0].train.texts


def test_finetune_config_from_dict_is_strict():
    assert FinetuneConfig.from_dict({"max_steps": 5, "lr": 1e-3}).max_steps == 5
    with pytest.raises(ValueError, match="valid keys"):
        FinetuneConfig.from_dict({"steps": 5})


def test_glue_average_leaves_out_runs_below_the_authors_floors():
    from shared.eval.glue import MOSAICML_GLUE_MIN_METRIC
    rows = [{"task": "mrpc", "seed": 0, "f1": 88.0, "accuracy": 84.0, "score": 86.0},
            {"task": "mrpc", "seed": 1, "f1": 81.0, "accuracy": 76.0, "score": 78.5},     # F1 below 82: F1 left out
            {"task": "rte", "seed": 0, "accuracy": 60.0, "score": 60.0},                  # failed run
            {"task": "rte", "seed": 1, "accuracy": 70.0, "score": 70.0},
            {"task": "acceptability", "seed": 0, "matthews": 10.0, "score": 10.0}]         # no floor: as without
    out = glue_average(rows, MOSAICML_GLUE_MIN_METRIC)
    assert out["tasks"]["mrpc"] == pytest.approx((88.0 + (84.0 + 76.0) / 2) / 2)
    assert out["tasks"]["rte"] == 70.0 and out["tasks"]["acceptability"] == 10.0
    assert out["dropped"] == {"mrpc": 1, "rte": 1}
    assert out["average"] == pytest.approx((out["tasks"]["mrpc"] + 70.0 + 10.0) / 3)
    # every run of a metric below its floor: the task has no score (NaN), as the authors' table has no entry
    assert math.isnan(glue_average(rows[2:3], MOSAICML_GLUE_MIN_METRIC)["tasks"]["rte"])
    plain = glue_average(rows)
    assert "dropped" not in plain and plain["tasks"]["rte"] == 65.0
