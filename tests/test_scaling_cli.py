"""`python -m shared.scaling optimal ...` as users and checks call it (subprocess)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.scaling import compare_flops, quality_loss

REPO = Path(__file__).resolve().parents[1]
REQUIRED = {"loss", "params", "train_tokens", "total_flops", "chinchilla_params", "chinchilla_train_tokens",
            "chinchilla_total_flops", "saving"}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.scaling", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_json_flops_figure1():
    out = cli("optimal", "--quality-params", "13e9", "--inference-tokens", "2e12", "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert REQUIRED <= set(r)
    assert r["loss"] == pytest.approx(quality_loss(13e9), rel=1e-12)
    assert r["chinchilla_params"] == pytest.approx(13e9, rel=1e-9)
    assert round(r["params"] / 1e9) == 7 and round(100 * r["saving"]) == 17
    assert r["chinchilla_total_flops"] - r["total_flops"] == pytest.approx(1.69e22, rel=1e-2)


def test_json_cost_has_dollar_totals_and_the_input_output_split():
    out = cli("optimal", "--loss", "2.0", "--inference-tokens", "2.85e11", "--objective", "cost", "--json",
              "--coefficients", "besiroglu")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert REQUIRED | {"total_cost_usd", "chinchilla_total_cost_usd"} <= set(r)
    assert (r["input_tokens"], r["output_tokens"]) == pytest.approx((7e10, 2.15e11))
    assert r["saving"] == pytest.approx(1 - r["total_cost_usd"] / r["chinchilla_total_cost_usd"], rel=1e-12)
    assert 0 < r["saving"] < 1 and r["coefficients"]["name"] == "besiroglu"


def test_loss_target_matches_the_library_and_suffixes_parse():
    out = cli("optimal", "--loss", "1.947", "--inference-tokens", "2T", "--json")
    r = json.loads(out.stdout)
    assert r["params"] == pytest.approx(compare_flops(1.947, 2e12).optimal.params, rel=1e-12)


def test_readable_table():
    out = cli("optimal", "--quality-params", "7e9", "--inference-tokens", "1e11")
    assert out.returncode == 0 and "Chinchilla-optimal" in out.stdout and "saving:" in out.stdout


@pytest.mark.parametrize("args", [
    ["--loss", "1.69", "--inference-tokens", "1e12"],                             # at E
    ["--loss", "1.2", "--inference-tokens", "1e12"],                              # below E
    ["--loss", "2.0", "--inference-tokens", "-5"],                                # negative tokens
    ["--loss", "2.0", "--inference-tokens", "lots"],                              # non-numeric
    ["--loss", "2.0", "--inference-tokens", "1e12", "--coefficients", "kaplan"],  # unknown set
    ["--loss", "2.0", "--quality-params", "13e9", "--inference-tokens", "1e12"],  # both targets
    ["--inference-tokens", "1e12"],                                               # neither target
    ["--quality-params", "0", "--inference-tokens", "1e12"],                      # zero-size model
    ["--loss", "2.0", "--inference-tokens", "1e12", "--objective", "dollars"],
    ["--loss", "2.0", "--inference-tokens", "1e12", "--objective", "cost", "--hardware", "tpu"],
])
def test_bad_input_exits_nonzero_with_one_line(args):
    out = cli("optimal", *args)
    assert out.returncode != 0
    assert out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.strip() and "\n" not in out.stderr.strip(), out.stderr
