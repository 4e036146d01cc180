"""A notebook at full scale runs the preflight in start_run, before any heavy work: a launch that
would fail later (here a finetuning batch that 32 ranks do not divide) stops at the first cell."""
import json

import pytest

from papers.biomedlm import scales
from shared.experiment import start_run
from shared.preflight import PreflightError

PARAMS = dict(scale="full", seed=0, out_dir=None, nproc_per_node=8, nnodes=4, rdzv_endpoint=None,
              launcher="slurm", data_dir=None, overrides={})


@pytest.mark.slow   # plans eight 2.7B finetuning runs on the meta device
def test_full_scale_start_run_refuses_a_launch_that_would_fail(tmp_path, monkeypatch):
    monkeypatch.delenv("SHARED_GPU", raising=False)
    with pytest.raises(PreflightError, match="global_batch_size"):
        start_run("biomedlm", "03_finetune_qa", PARAMS | {"out_dir": str(tmp_path), "data_dir": str(tmp_path)},
                  presets=scales.NOTEBOOKS["03_finetune_qa"], theme=False)
    report = json.loads((tmp_path / "preflight.json").read_text())
    assert report["world_size"] == 32 and report["errors"] and report["memory_checked"] is False
