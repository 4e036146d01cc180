"""papers.lora_vs_full.rehearsal: its overrides shrink the full presets into valid specs (sizes only: the
conditions, methods and data layouts stay), every run it plans is preempted once, and its data_dir meets the
full preflight's data requirements (ci/rehearsal.py runs the notebooks themselves)."""
from __future__ import annotations

import pytest

from papers.lora_vs_full import preflight as lvf_preflight
from papers.lora_vs_full import rehearsal, scales
from papers.lora_vs_full import sweep as lvf
from shared.preflight.report import requirement_error


def test_overrides_build_every_full_preset():
    for notebook, overrides in rehearsal.NOTEBOOKS.items():
        scales.NOTEBOOKS[notebook].build("full", overrides)
    assert set(rehearsal.NOTEBOOKS) == set(scales.NOTEBOOKS)


def test_planned_runs_keep_the_four_conditions_and_are_preempted_once(tmp_path):
    cfg = scales.NOTEBOOKS["02_learning_forgetting"].resolve("full", rehearsal.NOTEBOOKS["02_learning_forgetting"])
    full = scales.NOTEBOOKS["02_learning_forgetting"].resolve("full")
    assert cfg["conditions"] == full["conditions"]
    specs = {**lvf.plan_sweep(cfg, "base", data_dir=str(tmp_path)),
             **lvf.plan_variants(cfg, "base", None, data_dir=str(tmp_path))}
    assert {f"{s.task['domain']}-{s.task['regime']}" for s in specs.values()} == set(full["conditions"])
    for spec in specs.values():
        train = spec.train
        assert 0 < train["checkpoint_every"] < train["max_steps"]
        assert train["global_batch_size"] % (2 * train["micro_batch_size"]) == 0     # 2 ranks
        assert train["precision"] == "bf16" and train["parallelism"] == "fsdp"
    packed = [s for s in specs.values() if s.task.get("packing_ratio")]
    assert packed and all(s.task["packing_ratio"] == 3.0 and s.task["packing_group"] == 6 for s in packed)


@pytest.mark.slow
def test_data_dir_meets_the_full_requirements(tmp_path):
    rehearsal.make_data_dir(tmp_path)
    for notebook, overrides in rehearsal.NOTEBOOKS.items():
        spec = scales.NOTEBOOKS[notebook].build("full", overrides)
        for req in lvf_preflight.requirements(notebook, spec):
            assert requirement_error(req, tmp_path) is None, req
