"""The package is a house in layers (tools/check_layers.py): no cycle, no upward import, docstrings say the rules."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location("check_layers", ROOT / "tools" / "check_layers.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["check_layers"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_nbutils_has_no_cycle_and_no_upward_import():
    rep = _checker().check(ROOT / "nbutils")
    assert rep.modules > 50 and rep.imports > 150  # it really read the package
    assert rep.problems == []


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / "nbutils" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root / "nbutils"


def test_checker_finds_a_hidden_cycle_an_upward_import_and_a_silent_init(tmp_path):
    doc = '"""Job.\n\nMay import: core.\n"""\n'
    pkg = _write(tmp_path, {
        "__init__.py": "", "core/__init__.py": doc, "engines/__init__.py": '"""No rules here."""\n',
        # a function-level import hides the cycle a -> b -> a from Python, not from the checker
        "core/a.py": "def f():\n    from nbutils.core import b\n    return b\n",
        "core/b.py": "from nbutils.core.a import f\n",
        "core/c.py": "from nbutils.engines import runner\n",   # core imports a layer above it
        "engines/runner.py": "from ..core import a\n",          # relative import, downward: fine
    })
    problems = _checker().check(pkg).problems
    assert any(p.startswith("import cycle:") and "nbutils.core.a" in p and "nbutils.core.b" in p for p in problems)
    assert any("upward import: nbutils.core.c" in p for p in problems)
    assert any(p.startswith("engines/__init__.py") for p in problems)
    assert not any(p.startswith("upward import: nbutils.engines.runner") for p in problems)
    assert len(problems) == 3


def test_checker_counts_top_level_modules(tmp_path):
    pkg = _write(tmp_path, {"__init__.py": "", **{f"m{i}.py": "" for i in range(13)}})
    assert any("13 modules directly" in p for p in _checker().check(pkg).problems)
