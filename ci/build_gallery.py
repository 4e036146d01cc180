#!/usr/bin/env python3
"""Build one static HTML page per scale showing what a run of the notebooks produced.

    python ci/build_gallery.py --scale smoke        # -> runs/smoke/index.html

The page opens with a summary table: per paper, its central claim(s) with their status, and the
counts of its paper claims that hold / fail / are not testable at this scale, with the method and
sanity claims (our instruments, and guards true by construction) counted apart. Then, per paper: its
claims grouped by kind (paper first, central ones marked, then method, then sanity), each with its
values rounded and laid out for reading, its threshold beside the outcome and, where the paper README
has the generated outcomes table, the outcome at seeds 0, 1, 2 and whether the tests assert it; then
per notebook every figure it wrote, the provenance (commit, wall time, device, versions) and links to
the executed notebook (.ipynb and an HTML rendering). Links are relative, so the folder can be copied
or served as it is. Value formatting and counts live in ci/gallery_format.py.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

import seed_spread  # noqa: E402
from gallery_format import (  # noqa: E402
    KINDS,
    STATUS_CLASS,
    PaperSummary,
    claim_central,
    claim_kind,
    claim_status,
    esc,
    format_value,
    guard_counts_text,
    paper_counts_text,
    seed_counts_text,
    summarize_claims,
)

from shared.experiment.ledger import read_ledger, read_outcomes  # noqa: E402

KIND_TITLES = {"paper": "Paper claims (sentences of the paper: evidence for or against it)",
               "method": "Method claims (our instruments reproduce a known answer)",
               "sanity": "Sanity claims (true by construction of the smoke world: guards only)"}

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1300px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.5rem; }
h4 { margin: 1rem 0 .3rem; }
.meta { color: #666; font-size: .9rem; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; border: 1px solid #ddd; padding: .5rem; background: #fff; max-width: 560px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: .85rem; color: #555; text-align: center; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; width: 100%; }
th, td { border: 1px solid #ddd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.holds, span.holds { background: #dff5e1; } td.fails, span.fails { background: #fbdcdc; }
td.na, span.na { background: #eee; color: #555; }
table.claims td.holds, table.claims td.fails, table.claims td.na { min-width: 7rem; }
span.holds, span.fails, span.na { padding: 0 .3rem; border-radius: 3px; white-space: nowrap; }
table.value { width: auto; margin: .2rem 0; font-size: .8rem; } table.value th, table.value td { padding: .1rem .3rem; }
ul.kv, ol.items { margin: 0; padding-left: 1.1rem; } .key { color: #444; font-weight: 600; }
.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.nowrap { white-space: nowrap; } .central { color: #b36b00; font-weight: 700; }
.summary span { display: inline-block; margin-right: 1rem; }
details { margin: .5rem 0; } code { font-size: .85rem; }
.missing { color: #a00; }
"""


def paper_title(paper: str, papers_dir: Path) -> str:
    readme = papers_dir / paper / "README.md"
    if readme.exists():
        for line in readme.read_text().splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return paper


def render_notebook_html(executed: Path) -> Path | None:
    """An HTML copy of the executed notebook beside it (None if nbconvert is unavailable or fails)."""
    target = executed.with_suffix(".html")
    if target.exists() and target.stat().st_mtime >= executed.stat().st_mtime:
        return target
    try:
        import nbformat
        from nbconvert import HTMLExporter
        body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    except Exception as exc:  # rendering is a convenience; the .ipynb link stays
        print(f"warning: could not render {executed}: {exc}", file=sys.stderr)
        return None
    target.write_text(body)
    return target


def provenance_block(prov: dict) -> str:
    if not prov:
        return "<p class='missing'>No provenance.json: the notebook did not start a run.</p>"
    git = prov.get("git") or {}
    dev = prov.get("device") or {}
    cuda = dev.get("cuda")
    device = cuda["name"] if cuda else dev.get("processor", "?")
    pk = prov.get("packages") or {}
    versions = ", ".join(f"{k} {v}" for k, v in pk.items() if v)
    commit = (git.get("commit") or "?")[:10] + (" (dirty)" if git.get("dirty") else "")
    sandbox = prov.get("sandbox")
    sandbox_line = ""
    if sandbox:   # model-written programs ran: say how they were isolated, loudly when weaker than namespaces
        layers = ", ".join(f"{k} ({n})" for k, n in (sandbox.get("layers") or {}).items())
        weak = sandbox.get("weaker_than_namespaces")
        sandbox_line = (f"<p class='{'missing' if weak else 'meta'}'>sandbox: {esc(layers)}"
                        + (f" (weaker than namespaces: {esc(sandbox.get('detail'))})" if weak else "") + "</p>")
    return (sandbox_line + f"<p class='meta'>status <b>{esc(prov.get('status'))}</b> · commit {esc(commit)} · seed {esc(prov.get('seed'))}"
            f" · wall time {format_value(prov.get('wall_time_s'))} s · {esc(device)} · python {esc(prov.get('python'))}</p>"
            f"<details><summary class='meta'>parameters, config and versions</summary>"
            f"<pre>{esc(json.dumps({'params': prov.get('params'), 'config': prov.get('config')}, indent=1))}</pre>"
            f"<p class='meta'>{esc(versions)}</p></details>")


def notebook_section(run_dir: Path, page_dir: Path, render_html: bool) -> tuple[str, list[dict]]:
    """HTML of one notebook's run (links, provenance, figures) and its claims, each tagged with
    ``notebook`` (the run folder's name)."""
    name = run_dir.name
    rel = lambda p: os.path.relpath(p, page_dir)  # noqa: E731
    claims = [c | {"notebook": name} for c in _read(run_dir / "claims.json", []) if isinstance(c, dict)]
    prov = _read(run_dir / "provenance.json", {})
    parts = [f"<h3 id='{esc(run_dir.parent.name)}-{esc(name)}'>{esc(name)}</h3>"]
    executed = run_dir / f"{name}.ipynb"
    links = []
    if executed.exists():
        links.append(f"<a href='{esc(rel(executed))}'>executed notebook (.ipynb)</a>")
        rendered = render_notebook_html(executed) if render_html else None
        if rendered:
            links.append(f"<a href='{esc(rel(rendered))}'>rendered (.html)</a>")
    if (run_dir / "metrics.json").exists():
        links.append(f"<a href='{esc(rel(run_dir / 'metrics.json'))}'>metrics.json</a>")
    for table in sorted((run_dir / "tables").glob("*.csv")):
        links.append(f"<a href='{esc(rel(table))}'>table {esc(table.stem)}</a>")
    parts.append("<p>" + " · ".join(links) + "</p>")
    parts.append(provenance_block(prov))
    figures = sorted((run_dir / "figures").glob("*.png"))
    if figures:
        parts.append("<div class='figures'>")
        for fig in figures:
            alt = f"{run_dir.parent.name}/{name}: {fig.stem}"
            parts.append(f"<figure><a href='{esc(rel(fig))}'><img src='{esc(rel(fig))}' alt='{esc(alt)}' "
                         f"loading='lazy'></a><figcaption>{esc(fig.stem)}</figcaption></figure>")
        parts.append("</div>")
    else:
        parts.append("<p class='meta'>No figures.</p>")
    parts.append(f"<p class='meta'>{len(claims)} claims: see <a href='#{esc(run_dir.parent.name)}-claims'>"
                 f"the paper's claims</a>.</p>" if claims else "<p class='meta'>No claims recorded by this notebook.</p>")
    return "\n".join(parts), claims


def readme_annotations(readme: Path) -> tuple[dict, dict]:
    """From a paper README: ({claim id: OutcomeRow} of the generated outcomes table, {claim id:
    'paper predicts'} of the ledger); each empty when the README, the table or a valid table is missing."""
    outcomes, predicts = {}, {}
    if not readme.exists():
        return outcomes, predicts
    try:
        outcomes = {row.id: row for row in read_outcomes(readme) or []}
    except (OSError, ValueError) as exc:
        print(f"warning: {readme}: outcomes table not read: {exc}", file=sys.stderr)
    try:
        predicts = {row.id: row.paper_predicts for row in read_ledger(readme)}
    except (OSError, ValueError) as exc:
        print(f"warning: {readme}: claims ledger not read: {exc}", file=sys.stderr)
    return outcomes, predicts


def status_badge(status: str) -> str:
    return f"<span class='{STATUS_CLASS.get(status, 'na')}'>{esc(status)}</span>"


def seeds_cell(outcome) -> str:
    """'holds holds fails' at seeds 0, 1, 2 and whether the tests assert the claim."""
    if outcome is None:
        return "<td class='meta'>not in the outcomes table</td>"
    classes = {"holds": "holds", "fails": "fails"}
    seeds = " ".join(f"<span class='{classes.get(s, 'na')}'>{esc(s)}</span>" for s in outcome.seeds)
    return f"<td><span class='nowrap'>{seeds}</span><br><span class='meta'>{'asserted by the tests' if outcome.asserted else 'not asserted'}</span></td>"


def claims_section(paper: str, claims: list[dict], outcomes: dict, predicts: dict) -> str:
    """The paper's claims grouped by kind (paper first, central claims first and marked; then method,
    then sanity): one table per kind with values laid out for reading and the threshold beside the outcome."""
    if not claims:
        return f"<p id='{esc(paper)}-claims' class='meta'>No claims recorded.</p>"
    parts = [f"<div id='{esc(paper)}-claims'>"]
    with_seeds = bool(outcomes)
    for kind in KINDS:
        group = [c for c in claims if claim_kind(c) == kind]
        if not group:
            continue
        group.sort(key=lambda c: not claim_central(c))     # stable: central first, then run order
        parts.append(f"<h4>{esc(KIND_TITLES[kind])}: {len(group)}</h4>")
        header = "<tr><th>claim</th><th>paper</th><th>ours</th><th>outcome</th><th>threshold</th>"
        parts.append(f"<table class='claims claims-{kind}'>" + header + ("<th>seeds 0 · 1 · 2</th>" if with_seeds else "")
                     + "</tr>")
        for c in group:
            status = claim_status(c)
            star = "<span class='central' title='central claim'>&#9733; central</span> " if claim_central(c) else ""
            note = f"<br><span class='meta'>{esc(c.get('note'))}</span>" if c.get("note") else ""
            source = f"<br><span class='meta'>source: {esc(c.get('source'))}</span>" if c.get("source") else ""
            predicted = predicts.get(c.get("id")) if kind == "paper" else None
            predicted = f"<br><span class='meta'>paper predicts: {esc(predicted)}</span>" if predicted else ""
            where = f"<a class='meta' href='#{esc(paper)}-{esc(c.get('notebook'))}'>{esc(c.get('notebook'))}</a>"
            parts.append(
                f"<tr id='{esc(paper)}-claim-{esc(c.get('id'))}'><td>{star}<code>{esc(c.get('id'))}</code> {where}"
                f"<br>{esc(c.get('statement'))}{note}</td>"
                f"<td>{format_value(c.get('paper_value'))}{source}</td><td>{format_value(c.get('ours'))}</td>"
                f"<td class='{STATUS_CLASS.get(status, 'na')}'>{esc(status)}{predicted}</td>"
                f"<td>{esc(c.get('threshold')) or '<span class=meta>&ndash;</span>'}</td>"
                + (seeds_cell(outcomes.get(c.get("id"))) if with_seeds else "") + "</tr>")
        parts.append("</table>")
    parts.append("</div>")
    return "\n".join(parts)


def seeds_summary(outcome) -> str:
    """'held at 2/3 seeds run, asserted' / 'held at 1/1 seeds run, 2 not run' ('' without an outcome row)."""
    if outcome is None:
        return ""
    ran = [s for s in outcome.seeds if s != "not run"]
    if not ran:
        return "no seed run in the outcomes table"
    text = f"held at {sum(s == 'holds' for s in ran)}/{len(ran)} seeds run"
    if len(ran) < len(outcome.seeds):
        text += f", {len(outcome.seeds) - len(ran)} not run"
    return text + (", asserted" if outcome.asserted else "")


def summary_row(paper: str, title: str, summary: PaperSummary, notebooks_ok: int, notebooks: int,
                outcomes: dict) -> str:
    """One row of the summary table (see build)."""
    central = []
    for c in summary.central:
        held = seeds_summary(outcomes.get(c.get("id")))
        held = f" <span class='meta'>({esc(held)})</span>" if held else ""
        central.append(f"<li><a href='#{esc(paper)}-claim-{esc(c.get('id'))}'>{esc(c.get('statement'))}</a> "
                       f"{status_badge(claim_status(c))}{held}</li>")
    central_html = f"<ul class='kv'>{''.join(central)}</ul>" if central else "<span class='missing'>none marked</span>"
    guards = esc(", ".join(t for t in (guard_counts_text(summary, k) for k in ("method", "sanity")) if t)) or "&ndash;"
    nb_class = "" if notebooks_ok == notebooks else " class='fails'"
    seeds = seed_counts_text(summary, outcomes)
    seeds = f"<br><span class='meta'>{esc(seeds)}</span>" if seeds else ""
    return (f"<tr><td><a href='#{esc(paper)}'>{esc(title)}</a><br><span class='meta'>{esc(paper)}</span></td>"
            f"<td>{central_html}</td><td>{esc(paper_counts_text(summary))}{seeds}</td><td>{guards}</td>"
            f"<td{nb_class}>{notebooks_ok}/{notebooks} ran</td></tr>")


def seed_spread_block(runs_dir: Path, paper_dir: Path) -> str:
    """The paper claims' numbers at seeds 0, 1, 2 (ci/seed_spread.py), drawn afresh from the runs on disk so the
    figure never outlives them; '' (and any older figure removed) when fewer than two seeds have run."""
    stem = paper_dir / "seed_spread"
    claims = seed_spread.collect(runs_dir, paper_dir.name)
    if not claims:
        for old in stem.parent.glob(stem.name + ".*"):
            old.unlink()
        return ""
    fig = seed_spread.draw(claims, paper_dir.name)
    seed_spread.save_figure(fig, stem)
    seed_spread.plt.close(fig)
    rel = f"{paper_dir.name}/seed_spread"
    return (f"<details><summary class='meta'>paper claims across seeds 0, 1, 2 ({len(claims)} claims; "
            f"<a href='{esc(rel)}.svg'>svg</a>)</summary><img src='{esc(rel)}.png' "
            f"alt='paper claims of {esc(paper_dir.name)} at each seed'></details>")


def _read(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def build(scale: str, runs_dir: Path, render_html: bool = True, papers_dir: Path = REPO / "papers") -> Path:
    """Write runs_dir/<scale>/index.html and return its path."""
    page_dir = runs_dir / scale
    if not page_dir.is_dir():
        raise SystemExit(f"no runs at scale {scale!r} under {runs_dir}; run: python ci/run_notebooks.py --scale {scale}")
    summary = _read(page_dir / "run_notebooks.json", {})
    status_by_nb = {(n["paper"], n["name"]): n for n in summary.get("notebooks", [])}
    papers = sorted(p for p in page_dir.iterdir() if p.is_dir() and (papers_dir / p.name).is_dir())
    sections, rows, all_claims = [], [], []
    for paper in papers:
        title = paper_title(paper.name, papers_dir)
        notebook_parts, claims = [], []
        run_dirs = sorted(d for d in paper.iterdir() if d.is_dir())
        for run_dir in run_dirs:
            html_part, nb_claims = notebook_section(run_dir, page_dir, render_html)
            info = status_by_nb.get((paper.name, run_dir.name))
            if info and info.get("status") != "ok":
                html_part = (f"<p class='missing'>{esc(paper.name)}/{esc(run_dir.name)}: {esc(info['status'])}: "
                             f"<pre>{esc(info.get('error'))}</pre></p>") + html_part
            notebook_parts.append(html_part)
            claims += nb_claims
        outcomes, predicts = readme_annotations(papers_dir / paper.name / "README.md")
        listed = [n for (p, _), n in status_by_nb.items() if p == paper.name]
        ok = sum(n.get("status") == "ok" for n in listed) if listed else len(run_dirs)
        rows.append(summary_row(paper.name, title, summarize_claims(claims), ok, max(len(listed), len(run_dirs)),
                                outcomes))
        sections.append("\n".join([f"<h2 id='{esc(paper.name)}'>{esc(title)} <span class='meta'>papers/{esc(paper.name)}</span></h2>",
                                   claims_section(paper.name, claims, outcomes, predicts),
                                   seed_spread_block(runs_dir, paper) if scale == "smoke" else ""] + notebook_parts))
        all_claims += claims
    total = summarize_claims(all_claims)
    times = "".join(f"<tr><td>{esc(n['paper'])}/{esc(n['name'])}</td><td>{esc(n['status'])}</td>"
                    f"<td>{format_value(n.get('seconds'))}</td></tr>" for n in summary.get("notebooks", []))
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Replications gallery: {esc(scale)} scale</title><style>{CSS}</style></head><body>
<h1>Replications gallery: {esc(scale)} scale</h1>
<p class="meta summary"><span>{len(papers)} papers</span><span>{len(all_claims)} claims</span>
<span>paper claims: {esc(paper_counts_text(total))}</span>
<span>{esc(guard_counts_text(total, 'method'))}</span><span>{esc(guard_counts_text(total, 'sanity'))}</span></p>
<table id="summary"><tr><th>paper</th><th>central claim(s): status at {esc(scale)} scale</th>
<th>paper claims: this run; across seeds 0, 1, 2</th><th>method / sanity claims</th><th>notebooks</th></tr>
{''.join(rows)}
</table>
<p class="meta">Paper claims are sentences of the paper (their outcome is evidence); method claims check that our
instruments reproduce a known answer; sanity claims are true by construction of the smoke world (guards only).
A paper claim is asserted by the tests only when it held at seeds 0, 1 and 2.</p>
<details><summary class="meta">notebook run times</summary><table><tr><th>notebook</th><th>status</th><th>seconds</th></tr>{times}</table></details>
{''.join(sections)}
</body></html>
"""
    index = page_dir / "index.html"
    index.write_text(page)
    return index


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="smoke", choices=("smoke", "small", "full"))
    ap.add_argument("--runs-dir", type=Path, default=REPO / "runs")
    ap.add_argument("--no-notebook-html", action="store_true", help="skip rendering executed notebooks to HTML")
    args = ap.parse_args(argv)
    index = build(args.scale, args.runs_dir, render_html=not args.no_notebook_html)
    print(f"gallery: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
