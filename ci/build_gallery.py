#!/usr/bin/env python3
"""Build one static HTML page per scale showing what a run of the notebooks produced.

    python ci/build_gallery.py --scale smoke        # -> runs/smoke/index.html

Per paper (in the order of the README's table): every figure each notebook wrote, its claims table
(statement, paper value, ours, holds / fails / not testable at this scale), the provenance (commit,
wall time, device, versions) and links to the executed notebook (.ipynb and an HTML rendering).
Image links are relative, so the folder can be copied or served as it is.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATUS_CLASS = {"holds": "holds", "fails": "fails", "not testable at this scale": "na"}

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.5rem; }
.meta { color: #666; font-size: .9rem; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; border: 1px solid #ddd; padding: .5rem; background: #fff; max-width: 560px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: .85rem; color: #555; text-align: center; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; width: 100%; }
th, td { border: 1px solid #ddd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.holds { background: #dff5e1; } td.fails { background: #fbdcdc; } td.na { background: #eee; color: #555; }
.summary span { display: inline-block; margin-right: 1rem; }
details { margin: .5rem 0; } code { font-size: .85rem; }
.missing { color: #a00; }
"""


def esc(value) -> str:
    if isinstance(value, float):
        value = f"{value:.6g}"
    elif isinstance(value, (dict, list)):
        value = json.dumps(value)
    return html.escape("" if value is None else str(value))


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


def claims_table(claims: list[dict]) -> str:
    if not claims:
        return "<p class='meta'>No claims recorded by this notebook.</p>"
    rows = ["<table><tr><th>id</th><th>statement</th><th>paper</th><th>ours</th><th>status</th></tr>"]
    for c in claims:
        status = c.get("status") or {True: "holds", False: "fails", None: "not testable at this scale"}[c.get("holds")]
        note = f"<br><span class='meta'>{esc(c.get('note'))}</span>" if c.get("note") else ""
        rows.append(f"<tr><td><code>{esc(c.get('id'))}</code></td><td>{esc(c.get('statement'))}{note}</td>"
                    f"<td>{esc(c.get('paper_value'))}</td><td>{esc(c.get('ours'))}</td>"
                    f"<td class='{STATUS_CLASS.get(status, 'na')}'>{esc(status)}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


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
    return (f"<p class='meta'>status <b>{esc(prov.get('status'))}</b> · commit {esc(commit)} · seed {esc(prov.get('seed'))}"
            f" · wall time {esc(prov.get('wall_time_s'))} s · {esc(device)} · python {esc(prov.get('python'))}</p>"
            f"<details><summary class='meta'>parameters, config and versions</summary>"
            f"<pre>{esc(json.dumps({'params': prov.get('params'), 'config': prov.get('config')}, indent=1))}</pre>"
            f"<p class='meta'>{esc(versions)}</p></details>")


def notebook_section(run_dir: Path, page_dir: Path, render_html: bool) -> tuple[str, list[dict]]:
    name = run_dir.name
    rel = lambda p: os.path.relpath(p, page_dir)  # noqa: E731
    claims = _read(run_dir / "claims.json", [])
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
    parts.append(claims_table(claims))
    return "\n".join(parts), claims


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
    sections, all_claims = [], []
    for paper in papers:
        body = [f"<h2 id='{esc(paper.name)}'>{esc(paper_title(paper.name, papers_dir))} <span class='meta'>papers/{esc(paper.name)}</span></h2>"]
        for run_dir in sorted(d for d in paper.iterdir() if d.is_dir()):
            html_part, claims = notebook_section(run_dir, page_dir, render_html)
            info = status_by_nb.get((paper.name, run_dir.name))
            if info and info.get("status") != "ok":
                html_part = (f"<p class='missing'>{esc(paper.name)}/{esc(run_dir.name)}: {esc(info['status'])}: "
                             f"<pre>{esc(info.get('error'))}</pre></p>") + html_part
            body.append(html_part)
            all_claims += claims
        sections.append("\n".join(body))
    counts = {s: sum((c.get("status") == s) for c in all_claims) for s in STATUS_CLASS}
    times = "".join(f"<tr><td>{esc(n['paper'])}/{esc(n['name'])}</td><td>{esc(n['status'])}</td><td>{esc(n['seconds'])}</td></tr>"
                    for n in summary.get("notebooks", []))
    toc = " · ".join(f"<a href='#{esc(p.name)}'>{esc(p.name)}</a>" for p in papers)
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Replications gallery: {esc(scale)} scale</title><style>{CSS}</style></head><body>
<h1>Replications gallery: {esc(scale)} scale</h1>
<p class="meta summary"><span>{len(papers)} papers</span><span>{len(all_claims)} claims:</span>
<span class="holds">{counts['holds']} hold</span><span>{counts['fails']} fail</span>
<span>{counts['not testable at this scale']} not testable at this scale</span></p>
<p>{toc}</p>
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
