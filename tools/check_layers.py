"""Check that ``nbutils`` is a house in layers: no import cycle, no upward import.

Every ``import`` of an ``nbutils`` module is counted, at module level *and* inside functions
(a function-level import hides a cycle from Python but not from a reader). Written over
``ast`` by hand because import linters (import-linter, pydeps) either skip function-level
imports or need a config that would repeat the layer list kept here.

Rules checked:

* no cycle among modules (Tarjan's strongly connected components);
* a module imports only from its own layer or a layer below it (``LAYERS``, bottom first);
* at most ``MAX_TOP`` modules directly in ``nbutils/``;
* each subpackage's ``__init__`` has a docstring that says its job and ``May import:``.

Usage: ``python tools/check_layers.py [package_dir]`` — prints the problems, exits 1 if any.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Bottom first: a layer may import itself and anything before it in this list.
LAYERS: tuple[str, ...] = (
    "core", "store", "training", "quant", "formats", "engines", "report", "ui", "graph", "suite",
)
MAX_TOP = 12


@dataclass
class Report:
    """What the check found."""

    modules: int = 0
    imports: int = 0
    problems: list[str] = field(default_factory=list)


def module_name(path: Path, root: Path) -> str:
    """``nbutils/core/paths.py`` -> ``nbutils.core.paths`` (``__init__`` -> the package)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    drop = node.level - 1 if is_package else node.level
    base = base[: len(base) - drop] if drop else base
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Every nbutils module ``path`` imports, wherever the import statement is."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(node, name, is_package)
            # `from nbutils.core import paths` imports the module nbutils.core.paths
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t.startswith("nbutils") and t != name:
                found.add(t)
    return found


def layer_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check(package: Path) -> Report:
    """Run every rule over the package folder ``package`` (e.g. ``nbutils/``)."""
    files = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    names = {module_name(p, package): p for p in files}
    known = set(names)
    graph = {n: imports_of(p, n, known) for n, p in names.items()}
    rep = Report(modules=len(names), imports=sum(len(v) for v in graph.values()))
    # A package's __init__ importing its own children is not a cycle of ideas, only of files.
    graph_no_init = {n: {t for t in ts if not (names[n].name == "__init__.py" and t.startswith(n + "."))}
                     for n, ts in graph.items()}
    for comp in _cycles(graph_no_init):
        rep.problems.append("import cycle: " + " -> ".join(comp))
    for n, targets in graph.items():
        src = layer_of(n)
        if src is None:
            continue
        for t in sorted(targets):
            dst = layer_of(t)
            if dst is not None and LAYERS.index(dst) > LAYERS.index(src):
                rep.problems.append(f"upward import: {n} ({src}) imports {t} ({dst})")
    top = [p for p in package.iterdir() if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())]
    top_modules = [p for p in top if p.suffix == ".py" and p.name not in ("__init__.py", "__main__.py")]
    if len(top_modules) > MAX_TOP:
        rep.problems.append(f"{len(top_modules)} modules directly in {package.name}/ (at most {MAX_TOP})")
    for p in top:
        if p.is_dir():
            doc = ast.get_docstring(ast.parse((p / "__init__.py").read_text())) or ""
            if not doc.strip() or "May import:" not in doc:
                rep.problems.append(f"{p.name}/__init__.py: docstring must say its job and 'May import:'")
    return rep


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    package = Path(args[0]) if args else Path(__file__).resolve().parents[1] / "nbutils"
    rep = check(package)
    for p in rep.problems:
        print(p)
    print(f"{rep.modules} modules, {rep.imports} imports, {len(rep.problems)} problem(s)")
    return 1 if rep.problems else 0


if __name__ == "__main__":
    sys.exit(main())
