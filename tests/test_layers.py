"""Imports go only downward, without cycles and without function-level imports that hide the graph.

Layers, lowest first (a module may import its own layer or any lower one):

    0  shared.utils, shared.scaling
    1  shared.kernels, shared.data
    2  shared.models
    3  shared.train
    4  shared.eval
    5  shared.pipelines
    6  shared.experiment, shared.preflight
    7  papers

Every module under shared/ and papers/ is parsed with ``ast`` (nothing is imported). Three checks,
each failure reported as ``path:line``:

- upward: a module imports a module of a higher layer (module level or inside a function);
- cycles: the module-level import graph has a cycle (``if TYPE_CHECKING:`` imports are left out;
  a package ``__init__`` importing its own submodules is an ordinary edge, so it is fine as long as
  those submodules do not import the package back);
- function-level: an ``import shared...`` / ``import papers...`` inside a function or class body.
"""
from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT_PACKAGES = ("shared", "papers")

LAYER_RANKS: dict[str, int] = {
    "shared.utils": 0,
    "shared.scaling": 0,
    "shared.kernels": 1,
    "shared.data": 1,
    "shared.models": 2,
    "shared.train": 3,
    "shared.eval": 4,
    "shared.pipelines": 5,
    "shared.experiment": 6,
    "shared.preflight": 6,
    "papers": 7,
}


@dataclass(frozen=True)
class ImportEdge:
    """One import statement resolved to a module of the tree."""

    source: str        # importing module, e.g. "shared.train.lm"
    target: str        # imported module, e.g. "shared.eval.perplexity"
    path: str          # file of the importing module, relative to the root
    line: int
    module_level: bool  # False inside a function or class body
    type_checking: bool  # inside `if TYPE_CHECKING:`


def module_files(root: Path) -> dict[str, Path]:
    """Map dotted module names to files for every .py file under ``root/shared`` and ``root/papers``."""
    modules: dict[str, Path] = {}
    for package in ROOT_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if any(not p.isidentifier() for p in parts):
                continue  # not importable (e.g. a notebook's checkpoint folder)
            modules[".".join(parts)] = path
    return modules


def layer_of(module: str) -> str | None:
    """The layer prefix a module belongs to (longest match), or None for a module outside every layer."""
    matches = [p for p in LAYER_RANKS if module == p or module.startswith(p + ".")]
    return max(matches, key=len) if matches else None


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest module of the tree that ``name`` (a dotted path, maybe ending in an attribute) names."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_edges(root: Path) -> list[ImportEdge]:
    """Every import in the tree that resolves to one of its modules (third-party imports are skipped)."""
    modules = module_files(root)
    edges: list[ImportEdge] = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        package = module if is_package else module.rpartition(".")[0]
        rel = str(path.relative_to(root))
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except SyntaxError:
            continue  # reported by test_every_module_parses

        def visit(node: ast.AST, module_level: bool, type_checking: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                    visit(child, False, type_checking)
                    continue
                if isinstance(child, ast.If) and _is_type_checking(child.test):
                    for stmt in child.body:
                        visit(ast.Module(body=[stmt], type_ignores=[]), module_level, True)
                    for stmt in child.orelse:
                        visit(ast.Module(body=[stmt], type_ignores=[]), module_level, type_checking)
                    continue
                targets: list[str] = []
                if isinstance(child, ast.Import):
                    targets = [alias.name for alias in child.names]
                elif isinstance(child, ast.ImportFrom):
                    if child.level:
                        base = package.split(".")
                        if child.level > 1:
                            base = base[: len(base) - (child.level - 1)]
                        stem = ".".join(base + ([child.module] if child.module else []))
                    else:
                        stem = child.module or ""
                    targets = [f"{stem}.{alias.name}" for alias in child.names]
                for name in targets:
                    target = _resolve(name, modules)
                    if target is not None and target != module:
                        edges.append(ImportEdge(module, target, rel, child.lineno, module_level, type_checking))
                visit(child, module_level, type_checking)

        visit(tree, True, False)
    return edges


def upward_imports(edges: list[ImportEdge]) -> list[str]:
    """Imports of a higher layer, and modules that belong to no layer at all."""
    failures: dict[str, None] = {}  # ordered set: one line per statement and target
    for e in edges:
        src, dst = layer_of(e.source), layer_of(e.target)
        if src is None or dst is None:
            unknown = e.source if src is None else e.target
            failures[f"{e.path}: {unknown} belongs to no layer (add it to LAYER_RANKS or move it)"] = None
        elif LAYER_RANKS[dst] > LAYER_RANKS[src]:
            failures[f"{e.path}:{e.line}: {e.source} ({src}, layer {LAYER_RANKS[src]}) imports upward "
                     f"{e.target} ({dst}, layer {LAYER_RANKS[dst]})"] = None
    return list(failures)


def function_level_imports(edges: list[ImportEdge]) -> list[str]:
    """Imports of the tree's own modules inside a function or class body."""
    return list(dict.fromkeys(f"{e.path}:{e.line}: {e.source} imports {e.target} inside a function or class "
                              "(hoist it)" for e in edges if not e.module_level))


def import_cycles(edges: list[ImportEdge]) -> list[str]:
    """Cycles of the module-level import graph (strongly connected components of more than one module)."""
    graph: dict[str, dict[str, ImportEdge]] = {}
    for e in edges:
        if e.module_level and not e.type_checking:
            graph.setdefault(e.source, {}).setdefault(e.target, e)
            graph.setdefault(e.target, {})

    # Tarjan's strongly connected components, iterative (no recursion limit on deep graphs).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))

    failures = []
    for component in components:
        members = set(component)
        inside = [graph[a][b] for a in component for b in sorted(graph[a]) if b in members]
        where = "; ".join(f"{e.path}:{e.line} {e.source} -> {e.target}" for e in inside)
        failures.append(f"import cycle among {', '.join(component)}: {where}")
    return failures


def _report(failures: list[str]) -> str:
    return f"{len(failures)} violation(s):\n" + "\n".join(failures)


# ---------------------------------------------------------------------------------------------
# The repository


@functools.lru_cache(maxsize=1)
def _repo_edges() -> tuple[ImportEdge, ...]:
    return tuple(import_edges(REPO))


def test_no_upward_imports():
    failures = upward_imports(list(_repo_edges()))
    assert not failures, _report(failures)


def test_no_import_cycles():
    failures = import_cycles(list(_repo_edges()))
    assert not failures, _report(failures)


def test_no_function_level_imports_of_the_tree():
    failures = function_level_imports(list(_repo_edges()))
    assert not failures, _report(failures)


def test_utils_imports_nothing_else_of_shared():
    failures = [f"{e.path}:{e.line}: {e.source} imports {e.target} (shared.utils is the bottom: stdlib and "
                "third-party only)" for e in _repo_edges()
                if layer_of(e.source) == "shared.utils" and layer_of(e.target) != "shared.utils"]
    assert not failures, _report(failures)


def test_every_module_parses():
    failures = []
    for path in module_files(REPO).values():
        try:
            ast.parse(path.read_text(), filename=str(path))
        except SyntaxError as err:
            failures.append(f"{path.relative_to(REPO)}:{err.lineno}: {err.msg}")
    assert not failures, _report(failures)


def test_every_shared_subpackage_has_a_layer():
    unknown = [f"shared/{path.name}/" for path in sorted((REPO / "shared").iterdir())
               if path.is_dir() and (path / "__init__.py").exists() and layer_of(f"shared.{path.name}") is None]
    assert not unknown, f"subpackages that belong to no layer (add to LAYER_RANKS or move): {unknown}"


# ---------------------------------------------------------------------------------------------
# The checks themselves catch planted violations


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checks_catch_planted_violations(tmp_path):
    _write(tmp_path, {
        "shared/__init__.py": "",
        "shared/utils/__init__.py": "",
        "shared/utils/io.py": "import json\n",
        "shared/models/__init__.py": "from . import gpt\n",  # re-exporting a submodule: fine
        "shared/models/gpt.py": "from shared.utils.io import json\nfrom shared.eval import perplexity\n",
        "shared/models/gpt_hf.py": "from shared.models.gpt_tools import x\n",
        "shared/models/gpt_tools.py": "from .gpt_hf import y\n",  # cycle with gpt_hf (relative import)
        "shared/eval/__init__.py": "",
        "shared/eval/perplexity.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from shared.models.gpt import GPT\n"  # not a cycle edge
            "def f():\n    from shared.utils import io\n    return io\n"),
        "papers/__init__.py": "",
        "papers/demo/__init__.py": "",
        "papers/demo/pipeline.py": "from shared.models import gpt\nimport numpy\n",
    })
    edges = import_edges(tmp_path)

    upward = upward_imports(edges)
    assert len(upward) == 1 and upward[0].startswith("shared/models/gpt.py:2:"), upward
    assert "shared.eval.perplexity" in upward[0]

    cycles = import_cycles(edges)
    assert len(cycles) == 1, cycles
    assert "shared.models.gpt_hf" in cycles[0] and "shared.models.gpt_tools" in cycles[0]
    assert "shared/models/gpt_tools.py:1" in cycles[0]

    nested = function_level_imports(edges)
    assert nested == ["shared/eval/perplexity.py:5: shared.eval.perplexity imports shared.utils.io "
                      "inside a function or class (hoist it)"], nested


def test_checks_pass_on_a_clean_tree(tmp_path):
    _write(tmp_path, {
        "shared/__init__.py": "",
        "shared/utils/__init__.py": "from .io import write\n",
        "shared/utils/io.py": "def write():\n    import json\n    return json\n",  # third-party: fine
        "shared/train/__init__.py": "from shared.train.trainer import Trainer\n",
        "shared/train/trainer.py": "from shared.utils.io import write\nclass Trainer:\n    pass\n",
        "papers/__init__.py": "",
        "papers/demo/__init__.py": "from shared.train import Trainer\n",
    })
    edges = import_edges(tmp_path)
    assert {(e.source, e.target) for e in edges} == {
        ("shared.utils", "shared.utils.io"), ("shared.train", "shared.train.trainer"),
        ("shared.train.trainer", "shared.utils.io"), ("papers.demo", "shared.train")}
    assert upward_imports(edges) == [] and import_cycles(edges) == [] and function_level_imports(edges) == []
