"""Executed notebooks as HTML pages that work offline: plotly figures drawn from one local plotly.js.

nbconvert does not render the plotly mimetype, and the ``notebook`` renderer would put a 4.9 MB copy of
plotly.js into every notebook; so figures stay mimetype-only in the ``.ipynb`` and get a ``<div>`` + ``<script>``
here, drawn by ``plotly.min.js`` written once per run folder. Widget state is not embedded: its HTML manager
would be fetched from a CDN (blank widgets or "0%" bars offline); widgets show their text form instead. The pages
use nbconvert's lab template without its require.js and MathJax CDN scripts (``templates/offline_html``).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def write_plotlyjs(folder: str | Path) -> Path:
    """Write plotly.js (from the installed plotly package) into ``folder`` once; returns its path."""
    from plotly.offline import get_plotlyjs

    from nbutils.core.paths import atomic_path

    dest = Path(folder) / "plotly.min.js"
    if not dest.is_file():
        with atomic_path(dest) as tmp:
            tmp.write_text(get_plotlyjs(), encoding="utf-8")
    return dest


def _figure_html(spec: dict[str, Any]) -> str:
    import plotly.io as pio

    return pio.to_html(spec, include_plotlyjs=False, full_html=False, validate=False)


def _convert(out: dict[str, Any], state: dict[str, Any]) -> list[dict[str, Any]]:
    """One output as static outputs: plotly gets HTML, an ``Output`` widget its captured outputs, widgets text."""
    data = out.get("data")
    if not data:
        return [out]
    if WIDGET_MIME in data:
        model = state.get(data[WIDGET_MIME].get("model_id", ""), {})
        if model.get("model_name") == "OutputModel":
            inner = model.get("state", {}).get("outputs", [])
            return [o2 for o in inner for o2 in _convert(dict(o), state)]
        del data[WIDGET_MIME]
        data.setdefault("text/plain", "(interactive control: open the notebook in JupyterLab or Voilà)")
    if PLOTLY_MIME in data:
        data["text/html"] = _figure_html(dict(data[PLOTLY_MIME]))
        del data[PLOTLY_MIME]
    return [out]


def prepare(nb: Any) -> Any:
    """A copy of ``nb`` ready for HTML, with no widget state embedded.

    Plotly outputs get HTML, ``Output`` widgets are unwrapped into what they showed when the notebook ran, and
    other widget views become text.
    """
    import nbformat

    nb = copy.deepcopy(nb)
    state = nb.metadata.pop("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in nb.cells:
        if "outputs" in cell:
            cell["outputs"] = [nbformat.from_dict(o) for out in cell["outputs"] for o in _convert(out, state)]
    return nb


def export(notebook: str | Path, dest: str | Path, plotlyjs: str | Path) -> Path:
    """Render an executed notebook to ``dest``, loading plotly.js from ``plotlyjs`` (a path next to the page)."""
    import nbformat
    from nbconvert import HTMLExporter

    from nbutils.core.paths import atomic_path

    nb = prepare(nbformat.read(str(notebook), as_version=4))
    # nbconvert's lab template minus its CDN scripts (require.js, MathJax): the page loads nothing from outside
    exporter = HTMLExporter(extra_template_basedirs=[str(Path(__file__).parent / "templates")],
                            template_name="offline_html")
    body, _ = exporter.from_notebook_node(nb)
    rel = os.path.relpath(Path(plotlyjs), Path(dest).parent)
    body = body.replace("</head>", f'<script src="{rel}"></script>\n</head>', 1)
    with atomic_path(dest) as tmp:
        tmp.write_text(body, encoding="utf-8")
    return Path(dest)
