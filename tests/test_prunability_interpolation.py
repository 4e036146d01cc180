"""papers.prunability.imp.interpolated_prunability: prunability read between IMP levels."""
import numpy as np
import pytest

from papers.prunability.imp import interpolated_prunability, prunability


def test_crossing_is_interpolated_in_log_remaining_fraction():
    sparsity = [0.0, 0.2, 0.36, 0.488]
    acc = [0.90, 0.90, 0.90, 0.87]                  # threshold 0.89 crossed a third of the way to level 3
    p = interpolated_prunability(sparsity, acc, dense_accuracy=0.90, tolerance=0.01)
    expected = 1 - np.exp(np.log(0.64) + (1 / 3) * (np.log(0.512) - np.log(0.64)))
    assert p == pytest.approx(expected)
    assert prunability(sparsity, acc, 0.90, 0.01) <= p < 0.488


def test_censored_none_and_exact_cases():
    sparsity = [0.0, 0.2, 0.36]
    assert interpolated_prunability(sparsity, [0.9, 0.9, 0.9], 0.9, 0.01) == 0.36     # never falls: the last level
    assert interpolated_prunability(sparsity, [0.5, 0.5, 0.5], 0.9, 0.01) == 0.0      # never within tolerance
    assert interpolated_prunability(sparsity, [0.9, 0.89, 0.5], 0.9, 0.01) == pytest.approx(0.2)   # exactly at it


def test_uses_the_last_level_within_tolerance_like_the_grid_definition():
    sparsity = [0.0, 0.2, 0.36, 0.488, 0.59]
    acc = [0.9, 0.85, 0.9, 0.8, 0.7]                # a dip at level 1, back within tolerance at level 2
    p = interpolated_prunability(sparsity, acc, 0.9, 0.01)
    assert 0.36 < p < 0.488
