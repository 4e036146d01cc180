"""ci/build_gallery.py and ci/gallery_format.py: summary counts, values laid out for reading, the page's
summary table and claims grouped by kind, and the page rendered in headless Chromium.

The runs are written by shared.experiment.start_run / Run.claim (the notebooks' own writer), without
papermill, so this file is quick. A second paper imitates an older run: claims.json rows without
kind / central / threshold and a README without the generated outcomes table.
"""
import json
import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import pytest
from PIL import Image

from conftest import load_ci_module
from shared.experiment import start_run
from shared.experiment.ledger import OutcomeRow, write_outcomes

fmt = load_ci_module("gallery_format")
gallery = load_ci_module("build_gallery")

CENTRAL_STATEMENT = "the toy mean is two thirds"
TOY_README = """# Toy paper

### Pre-registration
The central claim's threshold is exact (the paper's number).

## Claims

| id | kind | central | claim | notebook | paper predicts | threshold |
|---|---|---|---|---|---|---|
| `mean_two_thirds` | paper | yes | the mean is 2/3 | 01_claims | holds | exact (paper) |
| `spread_small` | paper | no | spread below 0.1 | 01_claims | holds | < 0.1 (paper) |
| `big_model_only` | paper | no | needs the full model | 01_claims | full scale only | paper Table 1 |
| `solver_matches` | method | no | solver matches | 01_claims | holds | |
| `meter_reads_zero` | method | no | meter reads zero | 01_claims | holds | |
| `sizes_equal` | sanity | no | sizes equal | 01_claims | holds | |
"""


def toy_claims(run) -> None:
    """The toy notebook's claims: 3 paper (1 central holds, 1 fails, 1 not testable), 2 method, 1 sanity."""
    runs = [0.61, 0.66666, 0.72, 0.69]
    mean = sum(runs) / len(runs)
    run.claim("mean_two_thirds", CENTRAL_STATEMENT, paper_value=2 / 3,
              ours={"mean": mean, "per_seed": runs, "counts": list(range(20))}, holds=abs(mean - 2 / 3) < 0.01,
              kind="paper", central=True, threshold="|mean - 2/3| < 0.01 (paper: exact)")
    run.claim("spread_small", "the spread across seeds is small", paper_value=0.1,
              ours={"spread": max(runs) - min(runs)}, holds=max(runs) - min(runs) < 0.1, kind="paper",
              threshold="< 0.1 (paper)")
    run.claim("big_model_only", "needs the full model", paper_value=69.0, ours=None, holds=None, kind="paper",
              threshold="paper Table 1: 69")
    run.claim("solver_matches", "the solver matches the closed form",
              paper_value=[{"size": "150M", "loss": 3.2544}, {"size": "370M", "loss": 2.949}],
              ours=[{"size": "150M", "loss": 3.25441234}, {"size": "370M", "loss": 2.94912345}],
              holds=True, kind="method")
    run.claim("meter_reads_zero", "the meter reads zero on nothing", paper_value=0.0, ours=2.6645352591003757e-15,
              holds=True, kind="method")
    run.claim("sizes_equal", "both arms have the same size", paper_value=None,
              ours={"params": {"a": 675328, "b": 675328}, "positions": {"a": 512000, "b": 512000}},
              holds=True, kind="sanity")


@pytest.fixture(scope="module")
def gallery_runs(tmp_path_factory):
    """(papers_dir, runs_dir) with a toy paper (kinds, central claim, outcomes table, a figure) and an
    older run without kinds."""
    root = tmp_path_factory.mktemp("gallery")
    papers, runs = root / "papers", root / "runs"
    (papers / "toy").mkdir(parents=True)
    (papers / "toy" / "README.md").write_text(TOY_README)
    write_outcomes(papers / "toy" / "README.md", [
        OutcomeRow("mean_two_thirds", "paper", ("holds", "holds", "fails"), False),
        OutcomeRow("spread_small", "paper", ("holds", "holds", "holds"), True),
    ])
    params = dict(scale="smoke", seed=0, out_dir=str(runs / "smoke" / "toy" / "01_claims"), nproc_per_node=1,
                  nnodes=1, data_dir=None, overrides={})
    run = start_run("toy", "01_claims", params, presets={s: {"n": 3} for s in ("smoke", "small", "full")})
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [3, 1, 2], lw=4)
    run.save_figure(fig, "line")
    plt.close(fig)
    toy_claims(run)
    run.finish()
    (papers / "old").mkdir()
    (papers / "old" / "README.md").write_text("# Old paper\n\n## Claims\n\n| id | claim |\n|---|---|\n| `x` | x |\n")
    old = runs / "smoke" / "old" / "01_old"
    old.mkdir(parents=True)
    (old / "claims.json").write_text(json.dumps([
        {"id": "old_holds", "statement": "an old claim that holds", "paper_value": 1, "ours": 1.00001, "holds": True,
         "status": "holds"},
        {"id": "old_fails", "statement": "an old claim that fails", "paper_value": 1, "ours": 0.5, "holds": False}]))
    return papers, runs


# ---- pure functions -------------------------------------------------------------------------------

def test_kind_central_and_status_defaults_for_older_rows():
    assert fmt.claim_kind({}) == "paper" and fmt.claim_kind({"kind": "method"}) == "method"
    assert fmt.claim_kind({"kind": "bogus"}) == "paper"
    assert not fmt.claim_central({}) and fmt.claim_central({"central": True})
    assert not fmt.claim_central({"central": True, "kind": "sanity"})       # only paper claims are central
    assert fmt.claim_status({"holds": True}) == "holds"
    assert fmt.claim_status({"holds": False}) == "fails"
    assert fmt.claim_status({"holds": None}) == "not testable at this scale"
    assert fmt.claim_status({"status": "fails", "holds": True}) == "fails"  # the recorded status wins


def test_summary_counts_by_kind_and_texts():
    claims = [{"kind": "paper", "holds": True, "central": True, "id": "a"},
              {"kind": "paper", "holds": False, "id": "b"},
              {"holds": None, "id": "c"},                                   # no kind: a paper claim
              {"kind": "method", "holds": True}, {"kind": "method", "holds": True},
              {"kind": "method", "holds": False}, {"kind": "method", "holds": None},
              {"kind": "sanity", "holds": True}, {"kind": "sanity", "holds": True}]
    s = fmt.summarize_claims(claims)
    assert [c["id"] for c in s.central] == ["a"]
    assert s.counts["paper"] == {"holds": 1, "fails": 1, "not testable at this scale": 1}
    assert s.total("method") == 4 and s.total("sanity") == 2
    assert fmt.paper_counts_text(s) == "1 hold, 1 fail, 1 not testable"
    assert fmt.guard_counts_text(s, "method") == "method 2/3 hold, 1 not testable"
    assert fmt.guard_counts_text(s, "sanity") == "sanity 2/2 hold"
    empty = fmt.summarize_claims([])
    assert fmt.paper_counts_text(empty) == "none" and fmt.guard_counts_text(empty, "method") == ""


def test_seed_counts_read_the_three_seed_outcomes_not_seed_0():
    claims = [{"id": i, "kind": "paper", "holds": True} for i in "abc"] + [{"id": "m", "kind": "method", "holds": True}]
    outcomes = {"a": OutcomeRow("a", "paper", ("holds",) * 3, True),
                "b": OutcomeRow("b", "paper", ("holds", "fails", "holds"), False),
                "c": OutcomeRow("c", "paper", ("holds", "not run", "holds"), False),
                "m": OutcomeRow("m", "method", ("fails",) * 3, False)}
    s = fmt.summarize_claims(claims)
    assert fmt.paper_counts_text(s) == "3 hold, 0 fail, 0 not testable"          # seed 0 alone
    assert fmt.seed_counts_text(s, outcomes) == "at seeds 0-2: 1 hold at every seed, 1 fail at some seed, 1 other"
    assert fmt.seed_counts_text(s, {}) == ""


def test_seeds_summary_counts_only_seeds_that_ran():
    assert gallery.seeds_summary(None) == ""
    assert gallery.seeds_summary(OutcomeRow("a", "paper", ("holds", "not run", "not run"), False)) == \
        "held at 1/1 seeds run, 2 not run"
    assert gallery.seeds_summary(OutcomeRow("a", "paper", ("holds",) * 3, True)) == "held at 3/3 seeds run, asserted"
    assert gallery.seeds_summary(OutcomeRow("a", "paper", ("not run",) * 3, False)) == \
        "no seed run in the outcomes table"


@pytest.mark.parametrize("value, text", [
    (2 / 3, "0.667"), (28.0, "28"), (1.0, "1"), (0.0, "0"), (-0.0, "0"), (1.6917348862399502e22, "1.69e22"),
    (2.6645352591003757e-15, "2.66e-15"), (-0.0000254, "-2.54e-5"), (675328, "675328"), (24183560851, "2.42e10"),
    (123.456, "123"), (1234.4, "1234"), (1000.041, "1000"), (999999.4, "999999"), (1.5e6, "1.5e6"),
    (True, "true"), (False, "false"), (float("nan"), "nan"), (float("-inf"), "-inf"),
])
def test_format_number_three_significant_digits(value, text):
    assert fmt.format_number(value) == text


def test_format_value_lays_out_dicts_lists_and_records():
    v = fmt.format_value({"biomedical": 0.5166666666666666, "general": 0.31666666666666665, "n": 90})
    assert "<ul class='kv'>" in v and ">biomedical</span>: <span class='num'>0.517</span>" in v
    assert "0.5166" not in v and "{" not in v and "'n'" not in v and "90" in v
    long = fmt.format_value(list(range(20)))
    assert long.count("class='num'") == fmt.MAX_INLINE_ITEMS and "12 more (20 in all)" in long
    records = fmt.format_value([{"size": "150M", "loss": 3.2544}, {"size": "370M", "loss": 2.949, "extra": 1}])
    assert records.startswith("<table class='value'>") and "<th>extra</th>" in records and "3.25" in records
    wide = fmt.format_value([{f"c{j}": j * 1.01 for j in range(9)} for _ in range(3)])
    assert wide.startswith("<table class='value'>") and "<th>c8</th>" in wide and "8.08" in wide
    grid = fmt.format_value({"params": {"a": 675328, "b": 1}, "positions": {"a": 512000, "b": 2}})
    assert "<th>params</th>" in grid and "<th>a</th>" in grid                  # dict of records: labelled rows
    many_rows = fmt.format_value([{"k": i, "v": i / 3} for i in range(25)])
    assert many_rows.count("<tr>") == 1 + fmt.MAX_TABLE_ROWS + 1 and "15 more rows" in many_rows
    deep = fmt.format_value({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}})
    assert "(dict of 1)" in deep                                                # depth is bounded
    assert fmt.format_value("<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"
    assert "&ndash;" in fmt.format_value(None) and "(empty)" in fmt.format_value({})
    many_keys = fmt.format_value({f"k{i}": [i, "x"] for i in range(30)})
    assert f"{30 - fmt.MAX_KEYS} more" in many_keys


# ---- the page -------------------------------------------------------------------------------------

def build_page(gallery_runs):
    papers, runs = gallery_runs
    index = gallery.build("smoke", runs, render_html=False, papers_dir=papers)
    return index, index.read_text()


def test_page_opens_with_a_summary_table_per_paper(gallery_runs):
    _, page = build_page(gallery_runs)
    summary = page[page.index("<table id=\"summary\">"):]
    summary = summary[:summary.index("</table>")]
    assert page.index("<table id=\"summary\">") < page.index("<h2")            # the summary comes first
    toy = summary[summary.rindex("<tr>", 0, summary.index("Toy paper")):]
    toy = toy[:toy.index("</tr>")]
    assert CENTRAL_STATEMENT in toy and "<span class='holds'>holds</span>" in toy
    assert "held at 2/3 seeds run" in toy                                          # from the README outcomes table
    assert "1 hold, 1 fail, 1 not testable" in toy and "method 2/2 hold, sanity 1/1 hold" in toy
    assert "href='#toy'" in toy and "href='#toy-claim-mean_two_thirds'" in toy
    old = summary[summary.index("Old paper"):]
    assert "none marked" in old and "1 hold, 1 fail, 0 not testable" in old   # missing kind: a paper claim


def test_paper_section_groups_claims_by_kind_with_readable_values(gallery_runs):
    _, page = build_page(gallery_runs)
    toy = page[page.index("<h2 id='toy'>"):]
    order = [toy.index(f"class='claims claims-{k}'") for k in ("paper", "method", "sanity")]
    assert order == sorted(order)
    paper_table = toy[order[0]:order[1]]
    assert paper_table.index("mean_two_thirds") < paper_table.index("spread_small")
    assert "&#9733; central" in paper_table and paper_table.count("&#9733; central") == 1
    assert "0.667" in paper_table and "0.6666" not in page                    # rounded, no raw floats
    assert "|mean - 2/3| &lt; 0.01 (paper: exact)" in paper_table              # threshold beside the outcome
    assert "paper predicts: full scale only" in paper_table                    # from the README ledger
    assert "paper predicts" not in toy[order[1]:]                              # only paper claims predict
    assert "asserted by the tests" in paper_table and "not asserted" in paper_table
    assert "12 more (20 in all)" in paper_table
    assert "2.66e-15" in toy[order[1]:order[2]] and "3.25" in toy[order[1]:order[2]]
    assert not re.search(r"\{['\"]", page)                                      # no raw JSON / dict reprs
    old = page[page.index("<h2 id='old'>"):page.index("<h2 id='toy'>")]
    assert "class='claims claims-paper'" in old and "claims-method" not in old


# ---- headless Chromium ----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class _SummaryText(HTMLParser):
    """Text of the table with id 'summary' in a DOM dump."""

    def __init__(self):
        super().__init__()
        self.depth, self.text = 0, []

    def handle_starttag(self, tag, attrs):
        if tag == "table" and (dict(attrs).get("id") == "summary" or self.depth):
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)


def test_gallery_renders_in_headless_chromium(gallery_runs, tmp_path):
    """The page as Chromium lays it out: the DOM holds the summary table with the toy paper's central
    claim and its status, the rounded values, and a screenshot of the top of the page is not blank."""
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("CI is set but chromium is missing: `make setup` installs Debian's chromium "
                        "(apt-get install chromium, as root or with sudo)")
        pytest.skip("Debian's chromium is not installed (make setup installs it as root or with sudo)")
    index, _ = build_page(gallery_runs)
    started = time.perf_counter()
    dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom",
                          index.as_uri()], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = _SummaryText()
    parser.feed(dom.stdout)
    summary = " ".join(" ".join(parser.text).split())
    assert "Toy paper" in summary and CENTRAL_STATEMENT in summary and "holds" in summary, summary
    assert "method 2/2 hold, sanity 1/1 hold" in summary and "Old paper" in summary
    assert "0.667" in dom.stdout and "0.6666" not in dom.stdout
    shot = tmp_path / "gallery.png"
    proc = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile-shot'}",
                           "--window-size=1200,900", "--hide-scrollbars", f"--screenshot={shot}", index.as_uri()],
                          capture_output=True, text=True, timeout=180)
    assert shot.exists(), proc.stderr[-2000:]
    gray = Image.open(shot).convert("L")
    assert gray.size == (1200, 900)
    histogram = gray.histogram()
    inked = sum(histogram[:200]) / (gray.size[0] * gray.size[1])
    assert inked > 0.005 and sum(h > 0 for h in histogram) > 20, (inked, sum(h > 0 for h in histogram))
    print(f"chromium: dom + screenshot in {time.perf_counter() - started:.1f} s")


def test_provenance_shows_a_weaker_sandbox_loudly():
    weak = gallery.provenance_block({"status": "finished", "sandbox": {
        "layers": {"process(session)+uid+rlimits+guard": 3}, "weaker_than_namespaces": True,
        "namespaces_available": False, "detail": "unshare not found"}})
    assert "class='missing'>sandbox: process(session)" in weak and "unshare not found" in weak
    strong = gallery.provenance_block({"status": "finished", "sandbox": {
        "layers": {"namespaces(pid,net,mount)+private-tmp+rlimits+guard": 2}, "weaker_than_namespaces": False}})
    assert "class='meta'>sandbox: namespaces" in strong
