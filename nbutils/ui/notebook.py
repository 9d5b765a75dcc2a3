"""The first call of every notebook: :func:`start` opens the run and sets up display.

Kept separate from the logic modules so that importing those never touches display state.
"""

from __future__ import annotations

from nbutils.store.notebook_run import NotebookRun, open_run


def start(notebook: str, run_dir: str = "", results_db: str = "") -> NotebookRun:
    """Open the run for ``notebook`` and make plotly figures render in JupyterLab and in HTML exports.

    Args:
        notebook: the notebook's name, e.g. ``"20_ptq"`` (stored with every figure).
        run_dir: the ``run_dir`` parameter ('' = ``runs/standalone``).
        results_db: the ``results_db`` parameter ('' = ``runs/results.sqlite``).

    """
    setup_display()
    run = open_run(run_dir, notebook, results_db)
    print(f"{notebook}: run folder {run.run_dir} (run id {run.run_id}); results database {run.db}")
    return run


def setup_display() -> None:
    """Make plotly figures render in JupyterLab, Voilà and the executed notebook's HTML (no run opened).

    Figures are stored only as the plotly mimetype: JupyterLab and Voilà render it themselves (no JavaScript in
    the output, so an untrusted notebook shows them too), and no 4.9 MB copy of plotly.js lands in the notebook.
    The HTML pages of a run get the figures drawn from one local ``plotly.min.js`` (:mod:`nbutils.ui.htmlexport`).
    """
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype"
