"""The runner shows progress inside a notebook: each cell with its first line, and the notebook's own bars."""

import io
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))


def test_runner_output_shows_cells_and_progress_bars(tmp_path):
    import py2nb

    from nbutils.suite.runner import execute_notebook

    src = tmp_path / "01_tiny.py"
    src.write_text('# %% [markdown]\n# # tiny\n# %% tags=["parameters"]\nn: int = 3  # steps\n# %%\n'
                   "from nbutils.core.progress import bar\n# %%\n# train\nfor i in bar(range(n), desc='training', "
                   "mininterval=0):\n    pass\nprint('done')\n")
    nb = tmp_path / "01_tiny.ipynb"
    nbformat.write(py2nb.convert(src), nb)
    out = io.StringIO()
    execute_notebook(nb, tmp_path / "out.ipynb", {"n": 7}, 120, out)
    text = out.getvalue()
    assert "01_tiny: cell 1/4: n: int = 3" in text
    assert "01_tiny: cell 4/4: for i in bar(range(n), desc='training', mininterval=0):" in text
    assert "training: 100%" in text and "7/7" in text  # the notebook's own bar, forwarded as text
