"""ci/run_notebooks.py and ci/build_gallery.py on toy notebooks: results, failure report, gallery page.

The gallery's own layout (summary counts, value formatting, claims by kind, headless Chromium) is
tested in tests/test_gallery.py without papermill.
"""
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, load_ci_module

pytestmark = pytest.mark.slow   # the module fixture executes notebooks through papermill

GOOD = '''
from shared.experiment import start_run
import matplotlib.pyplot as plt
run = start_run("toy", "01_good", dict(scale=scale, seed=seed, out_dir=out_dir, nproc_per_node=nproc_per_node,
                nnodes=nnodes, data_dir=data_dir, overrides=overrides), presets={s: {"n": 3} for s in ("smoke", "small", "full")})
fig, ax = plt.subplots(); ax.plot(range(run.config["n"])); run.save_figure(fig, "line")
run.log_metrics({"n": run.config["n"]})
run.claim("n_is_3", "n equals three", paper_value=3, ours=run.config["n"], holds=run.config["n"] == 3, kind="sanity")
run.claim("third_of_n", "a third of n is one", paper_value=1, ours=run.config["n"] / 3.0001, holds=True, kind="paper",
          central=True, threshold="within 0.001 of 1 (exact)")
run.finish()
'''
PARAMS = 'scale = "smoke"\nseed = 0\nout_dir = None\nnproc_per_node = 1\nnnodes = 1\ndata_dir = None\noverrides = {}'


def make_notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# toy"), params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ci")
    papers = root / "papers"
    make_notebook(papers / "toy" / "01_good.ipynb", GOOD)
    make_notebook(papers / "toy" / "02_after_good.ipynb", "x = 1")
    make_notebook(papers / "broken" / "01_bad.ipynb", "def f():\n    raise RuntimeError('deliberate failure 42')\nf()")
    make_notebook(papers / "broken" / "02_needs_bad.ipynb", "x = 1")
    make_notebook(papers / "commoncanvas" / "speedups.ipynb", "x = 1")     # in RUN_ALONE: runs last, alone
    (papers / "toy" / "README.md").write_text("# Toy paper\n")
    proc = subprocess.run([sys.executable, str(REPO / "ci" / "run_notebooks.py"), "--papers-dir", str(papers),
                           "--runs-dir", str(root / "runs"), "--heartbeat", "1"],
                          capture_output=True, text=True, timeout=240, cwd=REPO)
    return root, proc


def test_runner_runs_in_order_reports_times_and_failures(toy_run):
    root, proc = toy_run
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    runs = root / "runs" / "smoke"
    assert (runs / "toy" / "01_good" / "01_good.ipynb").exists()
    assert (runs / "toy" / "01_good" / "figures" / "line.png").exists()
    assert (runs / "toy" / "02_after_good" / "02_after_good.ipynb").exists()  # ran after its dependency
    assert "total wall time" in out and re.search(r"toy/01_good\s+ok\s+\d", out)
    report = out.split("FAILURES", 1)[1]
    assert "broken/01_bad" in report and "RuntimeError" in report and "deliberate failure 42" in report
    assert "broken/02_needs_bad (skipped)" in report      # a dependent of a failed notebook does not run
    assert "[run ] toy/01_good" in out
    events = re.findall(r"^\[(run |ok  |FAIL|skip)\] (\S+?)(?::| in |$)", out, re.MULTILINE)
    alone = events.index(("run ", "commoncanvas/speedups"))
    started = [key for kind, key in events[:alone] if kind == "run "]
    ended = [key for kind, key in events[:alone] if kind in ("ok  ", "FAIL")]
    assert sorted(started) == sorted(ended) and len(started) == 3       # the timed notebook ran last and alone


def test_runner_refuses_unknown_parameter_and_paper(tmp_path, toy_run):
    root, _ = toy_run
    cmd = [sys.executable, str(REPO / "ci" / "run_notebooks.py"), "--papers-dir", str(root / "papers"),
           "--runs-dir", str(tmp_path)]
    bad = subprocess.run(cmd + ["--paper", "toy", "-p", "sed", "1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "sed" in bad.stderr and "seed" in bad.stderr
    bad = subprocess.run(cmd + ["--paper", "nope"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "broken, commoncanvas, toy" in bad.stderr


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a" and not attrs.get("href", "#").startswith("#"):
            self.links.append(attrs["href"])


def test_gallery_references_existing_files_and_shows_claims(toy_run):
    root, _ = toy_run
    gallery = load_ci_module("build_gallery")
    index = gallery.build("smoke", root / "runs", render_html=True, papers_dir=root / "papers")
    page = index.read_text()
    parser = _Links()
    parser.feed(page)
    assert parser.images == ["toy/01_good/figures/line.png"]
    for ref in parser.images + parser.links:
        assert (index.parent / ref).exists(), ref
    assert "Toy paper" in page and "n equals three" in page and "class='holds'" in page
    summary = page[page.index("<table id=\"summary\">"):page.index("<h2")]
    assert "a third of n is one" in summary and "sanity 1/1 hold" in summary     # central claim, kinds apart
    assert "<span class='num'>1</span>" in page and "0.99996" not in page                         # values rounded for reading
    assert "deliberate failure 42" in page          # failed notebooks are shown, not hidden
    assert any(link.endswith("01_good.html") for link in parser.links)
