"""Pure helpers of ci/build_gallery.py: claim kinds and status, per-paper summary counts, and values
laid out for reading (numbers to 3 significant digits, dicts as key: value lists or small tables,
long lists cut with a count) instead of raw JSON.

Older claims.json rows may lack ``kind`` / ``central`` / ``threshold``: a missing kind reads as
``paper``, a missing central flag as false, a missing threshold as empty.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

KINDS = ("paper", "method", "sanity")
STATUSES = ("holds", "fails", "not testable at this scale")
STATUS_CLASS = {"holds": "holds", "fails": "fails", "not testable at this scale": "na"}
SIGNIFICANT_DIGITS = 3
MAX_INLINE_ITEMS = 8     # a list of numbers/strings shows this many, then "... N more"
MAX_KEYS = 12            # a dict shows this many keys, then "... N more"
MAX_TABLE_ROWS = 10      # a list of records / dict of records shows this many rows
MAX_TABLE_COLUMNS = 10   # wider records are shown as nested key: value lists instead
MAX_DEPTH = 4            # deeper structures are shown as a short text
MAX_TEXT = 300           # characters of a long string shown before "..."


def esc(value) -> str:
    """HTML-escaped text of ``value`` ('' for None)."""
    return html.escape("" if value is None else str(value))


def claim_kind(claim: dict) -> str:
    """The claim's kind; a row without one (older runs) or with an unknown one reads as 'paper'."""
    kind = claim.get("kind") or "paper"
    return kind if kind in KINDS else "paper"


def claim_central(claim: dict) -> bool:
    """Whether the claim is one of its paper's headline claims (only paper claims can be)."""
    return bool(claim.get("central")) and claim_kind(claim) == "paper"


def claim_status(claim: dict) -> str:
    """holds / fails / not testable at this scale, from ``status`` or else from ``holds``."""
    status = claim.get("status")
    if status in STATUSES:
        return status
    return {True: "holds", False: "fails"}.get(claim.get("holds"), "not testable at this scale")


@dataclass
class PaperSummary:
    """What the gallery's summary table shows for one paper.

    central: the paper's central claims (claims.json rows), in run order; paper_claims: all its paper claims.
    counts:  counts[kind][status] for kind in KINDS and status in STATUSES.
    """

    central: list[dict] = field(default_factory=list)
    paper_claims: list[dict] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: {k: dict.fromkeys(STATUSES, 0) for k in KINDS})

    def total(self, kind: str) -> int:
        return sum(self.counts[kind].values())


def summarize_claims(claims: list[dict]) -> PaperSummary:
    """Central claims and per-kind status counts of one paper's claims (all its notebooks)."""
    summary = PaperSummary()
    for claim in claims:
        summary.counts[claim_kind(claim)][claim_status(claim)] += 1
        if claim_kind(claim) == "paper":
            summary.paper_claims.append(claim)
        if claim_central(claim):
            summary.central.append(claim)
    return summary


def paper_counts_text(summary: PaperSummary) -> str:
    """'2 hold, 1 fails, 3 not testable' for the paper claims ('none' when there are none)."""
    c = summary.counts["paper"]
    if not summary.total("paper"):
        return "none"
    return f"{c['holds']} hold, {c['fails']} fail, {c['not testable at this scale']} not testable"


def seed_counts_text(summary: PaperSummary, outcomes: dict) -> str:
    """The paper claims by their outcomes at seeds 0, 1 and 2 (README outcomes table): 'at seeds 0-2: 6 hold at
    every seed, 2 fail at some seed, 1 other' (other: not testable or not run at some seed and never failing);
    '' when no paper claim has an outcome row."""
    rows = [outcomes[c.get("id")] for c in summary.paper_claims if c.get("id") in outcomes]
    if not rows:
        return ""
    every = sum(all(s == "holds" for s in r.seeds) for r in rows)
    some_fail = sum(any(s == "fails" for s in r.seeds) for r in rows)
    text = f"at seeds 0-2: {every} hold at every seed, {some_fail} fail at some seed"
    other = len(rows) - every - some_fail
    return text + (f", {other} other" if other else "")


def guard_counts_text(summary: PaperSummary, kind: str) -> str:
    """'method 3/3 hold' (held / measured), with ', 1 not testable' when some were not measured;
    '' when the paper has no claim of this kind."""
    c, total = summary.counts[kind], summary.total(kind)
    if not total:
        return ""
    measured = c["holds"] + c["fails"]
    text = f"{kind} {c['holds']}/{measured} hold"
    if c["not testable at this scale"]:
        text += f", {c['not testable at this scale']} not testable"
    return text


def format_number(x) -> str:
    """A number for reading: bools as true/false, ints exact up to 6 digits, floats from 1000 up to a
    million as whole numbers, otherwise 3 significant digits ('0.667', '28', '1.69e22', '-2.5e-5');
    nan/inf as such; -0 as 0."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int) and abs(x) < 10**6:
        return str(x)
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if 10 ** SIGNIFICANT_DIGITS <= abs(x) < 10**6:
        return str(round(x))                  # 1000.04 -> 1000, 1234.4 -> 1234: whole numbers read better
    text = f"{x:.{SIGNIFICANT_DIGITS}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _scalar(value) -> str:
    if value is None:
        return "<span class='meta'>&ndash;</span>"
    if isinstance(value, (bool, int, float)):
        return f"<span class='num'>{format_number(value)}</span>"
    text = str(value)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "..."
    return esc(text)


def _more(n: int, what: str = "more") -> str:
    return f"<span class='meta'>&hellip; {n} {what}</span>"


def _records_table(rows: list[tuple[str | None, dict]], total: int, depth: int) -> str:
    """A small table: one row per (label, record); columns are the union of the records' keys."""
    columns: list[str] = []
    for _, record in rows:
        columns += [k for k in record if k not in columns]
    labelled = any(label is not None for label, _ in rows)
    head = ("<th></th>" if labelled else "") + "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for label, record in rows:
        cells = "".join(f"<td>{format_value(record[c], depth + 1) if c in record else ''}</td>" for c in columns)
        body.append("<tr>" + (f"<th>{esc(label)}</th>" if labelled else "") + cells + "</tr>")
    more = f"<tr><td colspan='{len(columns) + labelled}'>{_more(total - len(rows), 'more rows')}</td></tr>" \
        if total > len(rows) else ""
    return f"<table class='value'><tr>{head}</tr>{''.join(body)}{more}</table>"


def _table_shaped(records: list[dict]) -> bool:
    """Records that read well as table rows: flat-ish, few columns, mostly shared keys."""
    if not records or not all(isinstance(r, dict) and r for r in records):
        return False
    columns = {k for r in records for k in r}
    flat = all(_is_scalar(v) or (isinstance(v, list) and all(_is_scalar(x) for x in v) and len(v) <= 4)
               for r in records for v in r.values())
    return flat and len(columns) <= MAX_TABLE_COLUMNS and (len(records) > 1 or len(columns) > 1)


def format_value(value, depth: int = 0) -> str:
    """HTML for a claim's ``paper_value`` or ``ours``, laid out for reading (see the module docstring).

    value: anything JSON holds (None, bool, number, str, list, dict), nested.
    """
    if _is_scalar(value):
        return _scalar(value)
    if depth >= MAX_DEPTH:
        return f"<span class='meta'>({type(value).__name__} of {len(value)})</span>"
    if isinstance(value, dict):
        if not value:
            return "<span class='meta'>(empty)</span>"
        items = list(value.items())
        if len(items) > 1 and _table_shaped([v for _, v in items]):
            shown = items[:MAX_TABLE_ROWS]
            return _records_table([(str(k), v) for k, v in shown], len(items), depth)
        lis = "".join(f"<li><span class='key'>{esc(k)}</span>: {format_value(v, depth + 1)}</li>"
                      for k, v in items[:MAX_KEYS])
        more = f"<li>{_more(len(items) - MAX_KEYS)}</li>" if len(items) > MAX_KEYS else ""
        return f"<ul class='kv'>{lis}{more}</ul>"
    if isinstance(value, (list, tuple)):
        if not value:
            return "<span class='meta'>(empty list)</span>"
        if all(_is_scalar(v) for v in value):
            shown = ", ".join(_scalar(v) for v in value[:MAX_INLINE_ITEMS])
            hidden = len(value) - MAX_INLINE_ITEMS
            more = f", {_more(hidden, f'more ({len(value)} in all)')}" if hidden > 0 else ""
            return f"[{shown}{more}]"
        if _table_shaped(list(value)):
            return _records_table([(None, v) for v in value[:MAX_TABLE_ROWS]], len(value), depth)
        lis = "".join(f"<li>{format_value(v, depth + 1)}</li>" for v in value[:MAX_KEYS])
        more = f"<li>{_more(len(value) - MAX_KEYS)}</li>" if len(value) > MAX_KEYS else ""
        return f"<ol class='items'>{lis}{more}</ol>"
    return _scalar(str(value))
