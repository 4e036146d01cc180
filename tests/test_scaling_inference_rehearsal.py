"""The scaling_inference rehearsal's overrides resolve against the full preset and plan the fewest runs the
empirical notebook's analysis accepts (five at 10-100 tokens/param, one above 100, one seed replicate)."""
from __future__ import annotations

from papers.scaling_inference import empirical, rehearsal, scales


def test_overrides_resolve_and_plan_every_run_the_analysis_needs():
    spec = scales.NOTEBOOKS["empirical"].build("full", rehearsal.NOTEBOOKS["empirical"])
    plan = empirical.plan_grid(spec.grid(0), vocab_size=32)
    main = [r for r in plan if not r.noise_replicate]
    assert sum(spec.fit_min_ratio <= r.target_ratio <= spec.typical_cutoff for r in main) >= 5
    assert any(r.target_ratio > spec.typical_cutoff for r in main)
    assert any(r.noise_replicate for r in plan) and not any(r.skipped for r in plan)
    assert all(s.global_batch_size % (2 * s.micro_batch_size) == 0 for s in spec.sizes)   # 2 ranks
