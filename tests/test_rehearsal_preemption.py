"""shared.train.rehearsal_preemption: the kind of a run, and one preempted run per kind."""
import json

import pytest

from shared.train.rehearsal_preemption import (CONFIG_FILE, claim_kind, kind_keys, preempted_for_kind, run_config,
                                               run_kind, value_at)


def test_a_kind_is_the_values_at_its_keys():
    config = {"method": {"method": "lora", "rank": 8}, "train": {"lr": 1e-4}}
    assert value_at(config, "method.method") == "lora" and value_at(config, "method.gate") is None
    assert value_at(config, "train.lr.x") is None
    other_lr = {"method": {"method": "lora", "rank": 4}, "train": {"lr": 3e-4}}
    assert run_kind(config, ["method.method"]) == run_kind(other_lr, ["method.method"])
    assert run_kind(config, ["method.method", "method.rank"]) != run_kind(other_lr, ["method.method", "method.rank"])
    assert kind_keys({}) is None and kind_keys({"SHARED_REHEARSAL_KIND_KEYS": '["a.b"]'}) == ["a.b"]
    with pytest.raises(ValueError, match="JSON list"):
        kind_keys({"SHARED_REHEARSAL_KIND_KEYS": '"a.b"'})


def test_the_first_run_of_a_kind_to_claim_it_is_preempted(tmp_path):
    runs = [tmp_path / name for name in ("a", "b", "c", "job/run1-2")]
    for run in runs:
        run.mkdir(parents=True)
    for run, arm in zip(runs[:3], ["x", "x", "y"], strict=True):
        (run / CONFIG_FILE).write_text(json.dumps({"arm": arm, "lr": str(run)}))
    (tmp_path / "job" / CONFIG_FILE).write_text(json.dumps({"arm": "z"}))   # a job training runs in subfolders
    assert run_config(runs[3]) == {"arm": "z"}
    kinds = tmp_path / "kinds"
    for run in runs:
        claim_kind(run, ["arm"], kinds)
    assert [preempted_for_kind(run, ["arm"], kinds) for run in runs] == [True, False, True, True]
    assert len(list(kinds.iterdir())) == 3
    lone = tmp_path / "no_config"
    lone.mkdir()
    assert run_config(lone, up=0) is None and preempted_for_kind(lone, ["arm"], kinds)   # its own kind
