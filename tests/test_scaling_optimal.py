"""The lifetime-optimal solver: the paper's worked examples to the printed digit, its limits and trends."""
import time

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from papers.scaling_inference.paper_examples import PAPER_EXAMPLES, REPO_EXAMPLES, as_printed, check
from shared.scaling import (COEFFICIENTS, Hardware, InferenceDemand, chinchilla_for_loss, compare_cost, compare_flops,
                            get_coefficients, inference_optimal, lifetime_optimal, quality_loss, total_cost,
                            total_flops)

ROWS = [row for ex in PAPER_EXAMPLES + REPO_EXAMPLES for row in check(ex)]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['example']}-{r['quantity']}" for r in ROWS])
def test_worked_example_reproduces_the_printed_number(row):
    assert row["match"], f"{row['source']}: printed {row['printed']}, ours {row['ours']} -> {row['ours_as_printed']}"


def test_paper_used_alpha_0336_not_the_tex_values():
    # Why `hoffmann` is alpha=0.336, beta=0.283: Hoffmann et al.'s unrounded values miss Figure 1.
    cmp = compare_flops(quality_loss(13e9, "hoffmann_tex"), 2e12, "hoffmann_tex")
    assert (as_printed(cmp.saved_flops, "sig:2"), round(100 * cmp.saving)) == (1.6e22, 16)


@pytest.mark.parametrize("name", COEFFICIENTS)
def test_no_inference_gives_chinchilla(name):
    loss = quality_loss(np.array([1e9, 13e9, 70e9]), name)
    opt, chin = inference_optimal(loss, 0.0, name), chinchilla_for_loss(loss, name)
    np.testing.assert_allclose(opt.params, chin.params, rtol=1e-12)
    np.testing.assert_allclose(opt.train_tokens, chin.train_tokens, rtol=1e-12)
    # and a vanishing demand gives a vanishing change
    tiny = inference_optimal(loss, 1e-3, name)
    np.testing.assert_allclose(tiny.params, chin.params, rtol=1e-9)


@pytest.mark.parametrize("name", ["hoffmann", "besiroglu"])
def test_more_inference_means_smaller_longer_trained_models_and_bigger_savings(name):
    demand = np.logspace(8, 16, 120)   # below ~1e8 a 70B model's saving (<1e-10) nears float round-off
    cmp = compare_flops(quality_loss(np.array([7e9, 30e9, 70e9]), name)[:, None], demand[None, :], name)
    assert np.all(np.diff(cmp.optimal.params, axis=1) < 0)
    assert np.all(np.diff(cmp.optimal.tokens_per_param, axis=1) > 0)
    assert np.all(np.diff(cmp.saving, axis=1) > 0)
    assert np.all((cmp.saving > 0) & (cmp.saving < 1))


@pytest.mark.parametrize("name", ["hoffmann", "besiroglu"])
@pytest.mark.parametrize("quality,demand", [(7e9, 1e10), (13e9, 2e12), (70e9, 1e14)])
def test_optimum_is_a_true_minimum_along_the_iso_loss_curve(name, quality, demand):
    c = get_coefficients(name)
    loss = quality_loss(quality, c)
    opt = inference_optimal(loss, demand, c)
    best = total_flops(opt.params, opt.train_tokens, demand)

    def objective(params):
        return total_flops(params, c.tokens_for_loss(params, loss), demand)

    for step in (-1e-2, -1e-3, 1e-3, 1e-2):
        assert objective(opt.params * np.exp(step)) > best
    # an independent minimiser over log N finds the same point
    lo = np.log(c.params_for_loss(1e40, loss)) + 1e-9
    res = minimize_scalar(lambda ln: np.log(objective(np.exp(ln))), bounds=(lo, np.log(opt.params) + 3),
                          method="bounded", options={"xatol": 1e-11})
    assert np.exp(res.x) == pytest.approx(opt.params, rel=1e-4)


def test_cost_objective_equals_flops_objective_when_every_flop_costs_the_same():
    same = Hardware(train_gpu="H100", train_dtype="bf16", train_mfu=0.4, inference_gpu="H100", inference_dtype="bf16",
                    input_mfu=0.4, output_mfu=0.4)
    loss = quality_loss(13e9)
    cost = compare_cost(loss, InferenceDemand.from_tokens(2e12), same)
    flops = compare_flops(loss, 2e12)
    assert cost.optimal.params == pytest.approx(flops.optimal.params, rel=1e-12)
    assert cost.saving == pytest.approx(flops.saving, rel=1e-10)


def test_cost_optimum_is_a_minimum_and_low_decode_utilisation_favours_smaller_models():
    loss, demand = quality_loss(30e9), InferenceDemand.from_requests(1e9)
    cmp = compare_cost(loss, demand, "paper")
    c = get_coefficients("hoffmann")
    best = total_cost(cmp.optimal.params, cmp.optimal.train_tokens, demand)
    for step in (-1e-3, 1e-3):
        n = cmp.optimal.params * np.exp(step)
        assert total_cost(n, c.tokens_for_loss(n, loss), demand) > best
    # 1% decode MFU makes inference dearer than in FLOPs, so the cost optimum is smaller than the FLOP optimum
    assert cmp.optimal.params < compare_flops(loss, demand.total_tokens).optimal.params


def test_request_split_follows_the_paper():
    d = InferenceDemand.from_tokens(2.85e11)
    assert (d.input_tokens, d.output_tokens) == pytest.approx((7e10, 2.15e11))


def test_a_grid_of_hundreds_of_points_solves_in_well_under_a_second():
    loss = quality_loss(np.array([7e9, 13e9, 30e9, 70e9]))[:, None]
    start = time.perf_counter()
    cmp = compare_flops(loss, np.logspace(8, 15, 250)[None, :])
    cost = compare_cost(loss, InferenceDemand.from_requests(np.logspace(6, 13, 250)[None, :]))
    assert time.perf_counter() - start < 0.5
    assert cmp.saving.shape == cost.saving.shape == (4, 250)


@pytest.mark.parametrize("call", [
    lambda: inference_optimal(2.0, -1.0),
    lambda: inference_optimal(1.6, 1e12),
    lambda: lifetime_optimal(2.0, float("nan")),
    lambda: Hardware(train_gpu="TPUv5"),
    lambda: Hardware(inference_gpu="A100-40GB", inference_dtype="fp8"),
    lambda: InferenceDemand(-1.0, 0.0),
])
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()
