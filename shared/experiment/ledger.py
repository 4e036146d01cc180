"""Read a paper README's claims ledger: the table under '## Claims'.

The table has the columns ``| id | claim | notebook | holds at smoke |``; the last is ``yes`` (the
claim is expected to hold at smoke scale, and the tests assert it), ``no`` or ``n/a``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("id", "claim", "notebook", "holds at smoke")
EXPECTED_VALUES = ("yes", "no", "n/a")


@dataclass(frozen=True)
class LedgerRow:
    id: str
    claim: str
    notebook: str
    expected_at_smoke: str     # yes | no | n/a


def read_ledger(readme: str | Path) -> list[LedgerRow]:
    """Rows of the '## Claims' table of ``readme``; ValueError if the table is missing or malformed."""
    lines = Path(readme).read_text().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().lower() == "## claims")
    except StopIteration:
        raise ValueError(f"{readme}: no '## Claims' section") from None
    table = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.strip().startswith("|"):
            table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif table:
            break
    if len(table) < 2:
        raise ValueError(f"{readme}: the Claims section has no table with columns {COLUMNS}")
    header = tuple(h.lower() for h in table[0])
    if header != COLUMNS:
        raise ValueError(f"{readme}: Claims table columns are {header}; expected {COLUMNS}")
    rows = []
    for cells in table[2:]:   # table[1] is the |---| separator
        if len(cells) != len(COLUMNS):
            raise ValueError(f"{readme}: Claims row {cells} has {len(cells)} cells; expected {len(COLUMNS)}")
        ident, claim, notebook, expected = cells
        ident = ident.strip("`")
        expected = expected.lower()
        if expected not in EXPECTED_VALUES:
            raise ValueError(f"{readme}: claim {ident!r}: 'holds at smoke' is {expected!r}; use one of {EXPECTED_VALUES}")
        rows.append(LedgerRow(ident, claim, notebook.strip("`"), expected))
    return rows
