"""A paper's recipe card: every full-scale value of its presets beside its source.

``## Recipe`` in ``papers/<paper>/README.md`` holds one or more tables with these columns::

    | notebook | key | ours | source value | status | source |

- ``notebook``: the notebook(s) whose full preset holds the key (``pareto, ablation``), or ``flavour``
  for a field of a model flavour (``shared.models.flavours``; key ``bert-base.n_layer``).
- ``key``: a dotted path into the notebook's resolved full preset (``train.lr``,
  ``stages[0].max_steps``). A row for a dict or list covers everything below it.
- ``ours``: the preset's value as a literal (``5e-4``, ``[0.9, 0.98]``, ``adamw``, ``None``).
- ``source value``: what the source states, as a literal; ``-`` for an assumed value.
- ``status``: ``sourced`` (the source states our value), ``deviates`` (the source states another
  value; ``source`` says why ours differs) or ``assumed`` (no source found; ``source`` says why this
  value and what was searched).
- ``source``: the paper's section / table / appendix, or the authors' file at a commit.

``check_card`` compares a card with the presets (``tests/test_recipe_cards.py`` runs it for every
paper), so a card and a preset cannot drift apart: every row's ``ours`` must equal the preset, a
``sourced`` row's source value must equal ours, and every hyperparameter leaf of every full preset
must be covered by a row (paths, logging and other non-hyperparameter keys are exempt:
``is_exempt``). The preflight prints each run's values with their status and source.
"""
from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.models.flavours import FLAVOURS, model_config

RECIPE_HEADING = "## Recipe"
RECIPE_COLUMNS = ("notebook", "key", "ours", "source value", "status", "source")
STATUSES = ("sourced", "deviates", "assumed")
FLAVOUR = "flavour"
NO_VALUE = ("-", "—", "–", "")
# leaf names that are not hyperparameters of the experiment: logging, paths, process plumbing
EXEMPT_NAMES = frozenset({"log_every", "progress_bar", "needs_data_dir", "threads", "out_dir"})
EXEMPT_SUFFIXES = ("_dir", "_dirs", "_path", "_paths", "_file", "_files")


@dataclass(frozen=True)
class RecipeRow:
    notebooks: tuple[str, ...]
    key: str
    ours: Any
    source_value: Any          # None for an assumed value ("-")
    status: str                # sourced | deviates | assumed
    source: str
    text: tuple[str, ...]      # the row's cells as written


def parse_value(cell: str) -> Any:
    """A table cell as a Python value: JSON or a Python literal, else the bare string."""
    text = cell.strip().strip("`").strip()
    if text in ("None", "null"):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            return _lists(parse(text))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return text


def _lists(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _lists(v) for k, v in value.items()}
    return value


def same_value(a: Any, b: Any) -> bool:
    """Equal as recipe values: tuples as lists, numbers within 1e-9 relative, bools never numbers."""
    a, b = _lists(a), _lists(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


def _recipe_tables(readme: Path) -> list[list[str]]:
    """Every table row of the README's recipe section (header and separator rows included)."""
    lines = readme.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip().lower() == RECIPE_HEADING.lower()]
    if not starts:
        raise ValueError(f"{readme}: no '{RECIPE_HEADING}' section")
    rows = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("## "):
            break
        if line.strip().startswith("|"):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))])
    return rows


def read_card(readme: str | Path) -> list[RecipeRow]:
    """The rows of ``readme``'s recipe card; ValueError naming the first malformed row."""
    readme = Path(readme)
    rows = []
    for cells in _recipe_tables(readme):
        if tuple(c.lower() for c in cells) == RECIPE_COLUMNS or all(set(c) <= set("-: ") for c in cells):
            continue
        if len(cells) != len(RECIPE_COLUMNS):
            raise ValueError(f"{readme}: recipe row {cells} has {len(cells)} cells; columns are {RECIPE_COLUMNS}")
        notebooks, key, ours, value, status, source = cells
        where = f"{readme}: recipe row {notebooks} / {key}"
        status = status.strip("`").lower()
        if status not in STATUSES:
            raise ValueError(f"{where}: status {status!r}; use one of {STATUSES}")
        if not source.strip():
            raise ValueError(f"{where}: the source column is empty (a citation, or why the value is assumed)")
        assumed = status == "assumed"
        if assumed != (value.strip("` ") in NO_VALUE):
            raise ValueError(f"{where}: the source value is {'given' if assumed else 'empty'}; an assumed row "
                             f"has '-', a sourced or deviating row states the source's value")
        rows.append(RecipeRow(tuple(n.strip().strip("`") for n in notebooks.split(",")), key.strip("`"),
                              parse_value(ours), None if assumed else parse_value(value), status,
                              source.strip(), tuple(cells)))
    if not rows:
        raise ValueError(f"{readme}: the '{RECIPE_HEADING}' section has no table with columns {RECIPE_COLUMNS}")
    return rows


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def lookup(config: Any, key: str) -> Any:
    """The value at dotted ``key`` (``a.b[0].c``) of a nested preset; KeyError naming the missing step."""
    node = config
    for name, index in _STEP.findall(key):
        if index:
            if not isinstance(node, (list, tuple)) or int(index) >= len(node):
                raise KeyError(f"{key}: no item [{index}]")
            node = node[int(index)]
        else:
            if not isinstance(node, Mapping) or name not in node:
                raise KeyError(f"{key}: no key {name!r}")
            node = node[name]
    return node


def leaves(config: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every leaf of a preset; lists of dicts are walked by index."""
    if isinstance(config, Mapping) and config:
        for k, v in config.items():
            yield from leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(config, (list, tuple)) and config and all(isinstance(v, Mapping) for v in config):
        for i, v in enumerate(config):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, config


def is_exempt(path: str, value: Any) -> bool:
    """Whether a leaf is plumbing rather than a hyperparameter (a path, logging, a thread count)."""
    name = _STEP.findall(path)[-1][0] if _STEP.findall(path) else path
    return (name in EXEMPT_NAMES or name.endswith(EXEMPT_SUFFIXES)
            or (isinstance(value, str) and "{data_dir}" in value))


def _covers(key: str, path: str) -> bool:
    return path == key or path.startswith(key + ".") or path.startswith(key + "[")


def flavour_value(key: str) -> Any:
    """``<flavour>.<field>`` of the flavour registry."""
    name = next((f for f in sorted(FLAVOURS, key=len, reverse=True) if key.startswith(f + ".")), None)
    if name is None:
        raise KeyError(f"{key}: no flavour {key.split('.')[0]!r}; flavours: {', '.join(sorted(FLAVOURS))}")
    field_name = key[len(name) + 1:]
    config = model_config(name)
    if not hasattr(config, field_name):
        raise KeyError(f"{key}: flavour {name!r} has no field {field_name!r}")
    return getattr(config, field_name)


def check_card(rows: list[RecipeRow], presets: Mapping[str, Any], scale: str = "full") -> list[str]:
    """Every disagreement between a card and the paper's presets (``scales.NOTEBOOKS``); empty when none."""
    configs = {name: p.resolve(scale) for name, p in presets.items() if scale in p.scales}
    problems = []
    for row in rows:
        where = f"{', '.join(row.notebooks)} / {row.key}"
        if row.status == "sourced" and not same_value(row.ours, row.source_value):
            problems.append(f"{where}: marked sourced but the source value {row.source_value!r} is not ours "
                            f"{row.ours!r} (mark it deviates and say why)")
        if row.status == "deviates" and same_value(row.ours, row.source_value):
            problems.append(f"{where}: marked deviates but ours equals the source value (mark it sourced)")
        for notebook in row.notebooks:
            try:
                if notebook == FLAVOUR:
                    actual = flavour_value(row.key)
                elif notebook not in configs:
                    problems.append(f"{where}: no notebook {notebook!r} with a {scale} preset; notebooks: "
                                    f"{', '.join(configs)}")
                    continue
                else:
                    actual = lookup(configs[notebook], row.key)
            except KeyError as e:
                problems.append(f"{where}: not in the {notebook} preset ({e.args[0]})")
                continue
            if not same_value(row.ours, actual):
                problems.append(f"{where}: the card says {row.ours!r}, the " + ("flavour registry" if notebook == FLAVOUR else f"{notebook} {scale} preset") + f" has {actual!r}")
    for notebook, config in configs.items():
        keys = [r.key for r in rows if notebook in r.notebooks]
        missing = [p for p, v in leaves(config) if not is_exempt(p, v) and not any(_covers(k, p) for k in keys)]
        if missing:
            problems.append(f"{notebook}: {len(missing)} {scale} value(s) without a recipe row: {', '.join(missing)}")
    return problems


def paper_card(paper: str) -> list[RecipeRow]:
    """The recipe card of ``papers/<paper>/README.md``; ValueError when it is missing or malformed."""
    readme = Path(__file__).resolve().parents[2] / "papers" / paper / "README.md"
    if not readme.is_file():
        raise ValueError(f"{readme}: no README")
    return read_card(readme)


__all__ = ["RECIPE_COLUMNS", "RECIPE_HEADING", "RecipeRow", "STATUSES", "check_card", "paper_card",
           "flavour_value", "is_exempt", "leaves", "lookup", "parse_value", "read_card", "same_value"]
