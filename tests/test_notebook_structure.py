"""Structure checks for every suite notebook (OpenVINO's check_notebooks.py, nbdev's output check)."""

import ast
import json
from pathlib import Path

import papermill
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cells(path):
    return json.loads(path.read_text())["cells"]


def test_suite_has_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS][:2] == ["00", "10"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_outputs_no_widget_state(path):
    nb = json.loads(path.read_text())
    assert "widgets" not in nb.get("metadata", {})
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None, "strip outputs (make notebooks)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_every_line_documented(path):
    cells = _cells(path)
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    source = "".join(tagged[0]["source"])
    assigned = [n.target.id for n in ast.parse(source).body if isinstance(n, ast.AnnAssign)]
    assert len(assigned) == len(source.strip().splitlines()), "one typed assignment per line"
    declared = papermill.inspect_notebook(str(path))
    # papermill silently drops a line it cannot parse (e.g. '=' inside the comment)
    assert list(declared) == assigned
    assert all(p["help"] for p in declared.values()), "every parameter needs a # help comment"
    assert {"smoke", "run_dir", "results_db"} <= set(declared)
    assert declared["smoke"]["inferred_type_name"] == "bool"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_template(path):
    md = "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown")
    assert md.lstrip().startswith("# "), "title first"
    for section in ("**What you will do:**", "**What you will learn:**", "**What you need:**",
                    "## Summary", "## Exercises"):
        assert section in md, f"missing {section}"


def test_notebooks_are_built_from_sources():
    """notebooks/NN_*.ipynb must match notebooks/src/NN_*.py (rebuild with `make notebooks`)."""
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    from py2nb import convert

    for path in NOTEBOOKS:
        built = convert(ROOT / "notebooks" / "src" / f"{path.stem}.py")
        assert [c["source"] for c in built.cells] == ["".join(c["source"]) for c in _cells(path)], path.name
