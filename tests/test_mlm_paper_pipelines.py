"""papers.masking_schedules.sweep and papers.mosaicbert.experiments: the analysis helpers on small
hand-written tables, and the typed specs refusing what would fail later in a run."""
import math
import time
import types

import pandas as pd
import pytest
import torch

from papers.masking_schedules import scales as schedule_scales
from papers.masking_schedules.sweep import (
    MEAN_RATE_CONTROL,
    SCHEDULES,
    paired_difference,
    schedule,
    schedule_summary,
)
from papers.mosaicbert import scales as mosaic_scales
from papers.mosaicbert.throughput import time_training_steps
from shared.experiment import ParameterError


def test_schedule_summary_steps_to_baseline_and_paired_differences():
    # (schedule, seed) -> MLM loss at steps 10, 20; the baseline ends at 2.0 (seed 0) and 2.2 (seed 1)
    losses = {("fixed 15%", 0): [2.5, 2.0], ("fixed 15%", 1): [2.6, 2.2],
              ("linear 30%->15%", 0): [1.9, 1.8], ("linear 30%->15%", 1): [2.3, 2.1]}
    curves = pd.DataFrame([{"schedule": n, "seed": s, "step": step, "mlm15_loss": v}
                           for (n, s), vals in losses.items() for step, v in zip((10, 20), vals)])
    finals = pd.DataFrame([{"schedule": n, "seed": s, "mlm15_loss": vals[-1], "downstream": 50.0 + vals[-1]}
                           for (n, s), vals in losses.items()])
    reach, summary = schedule_summary(curves, finals, ["fixed 15%", "linear 30%->15%"], max_steps=20)
    lin = reach[reach.schedule == "linear 30%->15%"].set_index("seed")
    assert lin.steps_to_fixed15_final.tolist() == [10, 20] and lin.speedup.tolist() == [2.0, 1.0]
    assert list(summary.index) == ["fixed 15%", "linear 30%->15%"]
    assert summary.loc["linear 30%->15%", "mlm15_loss"] == pytest.approx(1.95)
    d = paired_difference(finals, "mlm15_loss", "linear 30%->15%", "fixed 15%")
    assert d["per_seed"] == [-0.2, -0.1] and d["mean"] == pytest.approx(-0.15)
    assert not math.isnan(d["sd"])


def test_named_schedules_build():
    assert schedule("linear 30%->15%")(1.0) == pytest.approx(0.15)
    assert all(schedule(n) for n in SCHEDULES)
    with pytest.raises(ValueError, match="unknown schedule"):
        schedule("exponential")


def test_specs_refuse_unknown_schedules_ablations_and_flavours():
    with pytest.raises(ParameterError, match="unknown schedule"):
        schedule_scales.NOTEBOOKS["schedules"].build("smoke", {"schedules": ["fixed 50%"]})
    with pytest.raises(ParameterError, match="unknown ablation"):
        mosaic_scales.NOTEBOOKS["ablation"].build("smoke", {"ablations": ["- everything"]})
    with pytest.raises(ParameterError, match="unknown model flavour"):
        mosaic_scales.NOTEBOOKS["padding_throughput"].build("full", {"model": {"flavour": "bert-huge"}})
    full = mosaic_scales.NOTEBOOKS["pareto"].build("full")
    assert full.models["mosaicbert"]["large"] == {"flavour": "mosaicbert-large"} and full.sizes == ["base", "large"]


def test_mean_rate_control_has_the_decreasing_schedules_mean_rate():
    # the constant control must mask as many tokens over training as linear 30%->15% (and 15%->30%)
    grid = [i / 1000 for i in range(1001)]
    for name in ("linear 30%->15%", "linear 15%->30%"):
        mean = sum(schedule(name)(t) for t in grid) / len(grid)
        assert mean == pytest.approx(schedule(MEAN_RATE_CONTROL)(0.5), abs=1e-9)
    smoke = schedule_scales.NOTEBOOKS["schedules"].build("smoke")
    assert MEAN_RATE_CONTROL in smoke.schedules
    assert smoke.finetuned("fixed 15%") and smoke.finetuned("linear 30%->15%") and not smoke.finetuned("fixed 30%")
    with pytest.raises(ParameterError, match="finetune_schedules"):
        schedule_scales.NOTEBOOKS["schedules"].build("smoke", {"finetune_schedules": ["step 30%->15%"]})


def test_pareto_compares_the_architectures_at_one_masking_rate():
    """Smoke and small isolate the architecture (one rate for both); full follows each recipe (BERT's 15%)."""
    for scale in ("smoke", "small"):
        rates = mosaic_scales.NOTEBOOKS["pareto"].build(scale).mask_rates
        assert len(set(rates.values())) == 1, (scale, rates)
    assert mosaic_scales.NOTEBOOKS["pareto"].build("full").mask_rates == {"bert": 0.15, "mosaicbert": 0.30}


def test_time_training_steps_keeps_the_fastest_round():
    class Sleepy(torch.nn.Module):
        """A model whose second and later steps are slower: the minimum is the first timed round."""
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.calls = 0

        def forward(self, input_ids, attention_mask, labels=None):
            self.calls += 1
            time.sleep(0.002 if self.calls <= 2 else 0.02)
            return types.SimpleNamespace(loss=(self.w ** 2).sum())

    batch = {"input_ids": torch.zeros(1, 2, dtype=torch.long), "attention_mask": torch.ones(1, 2, dtype=torch.long),
             "labels": torch.zeros(1, 2, dtype=torch.long)}
    times = time_training_steps({"m": Sleepy()}, batch, rounds=4, warmup=1)
    assert times["m"]["wall_s"] < 0.015
