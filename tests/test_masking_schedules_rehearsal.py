"""papers/masking_schedules/rehearsal.py: its overrides build the full spec, keep the schedules the notebook's
claims compare and preempt every pretraining run once (its data_dir is MosaicBERT's, tested there)."""
from __future__ import annotations

from papers.masking_schedules import rehearsal
from papers.masking_schedules.scales import NOTEBOOKS
from papers.masking_schedules.sweep import BASELINE, MEAN_RATE_CONTROL


def test_the_overrides_build_the_full_spec_and_preempt_every_run():
    spec = NOTEBOOKS["schedules"].build("full", rehearsal.NOTEBOOKS["schedules"])
    assert {BASELINE, MEAN_RATE_CONTROL, "linear 30%->15%", "linear 15%->30%"} <= set(spec.schedules)
    assert list(spec.models) == ["base", "large"]
    for size in spec.models:
        train = spec.train_for(size)
        assert 0 < train.checkpoint_every < train.max_steps
        assert train.global_batch_size % (2 * spec.micro_batch_size) == 0
