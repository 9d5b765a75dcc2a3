"""The widget layer: ipywidgets controls whose defaults come from notebook parameters, and views that update in place.

Every factory takes ``default=`` (a notebook parameter), so a papermill run never waits for a click and shows
the views for the defaults. A :class:`View` is an ``Output`` widget re-rendered in place when a control changes.
Nothing here is displayed at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def _pick(options: Sequence[Any], default: Any) -> Any:
    """``default`` if it is one of ``options``, else the first option (or None)."""
    values = [o[1] if isinstance(o, tuple) else o for o in options]
    if default in values:
        return default
    return values[0] if values else None


def dropdown(options: Sequence[Any], default: Any, description: str, **kw: Any) -> Any:
    """A ``Dropdown`` whose value starts at ``default`` (a parameter); falls back to the first option."""
    import ipywidgets as w

    return w.Dropdown(options=list(options), value=_pick(options, default), description=description,
                      style={"description_width": "initial"}, **kw)


def float_slider(default: float, low: float, high: float, step: float, description: str, **kw: Any) -> Any:
    """A ``FloatSlider`` starting at ``default`` (clipped into range); updates when released."""
    import ipywidgets as w

    return w.FloatSlider(value=min(max(default, low), high), min=low, max=high, step=step, description=description,
                         continuous_update=False, style={"description_width": "initial"}, readout_format=".4g", **kw)


def button(description: str, tooltip: str = "", **kw: Any) -> Any:
    """A ``Button``."""
    import ipywidgets as w

    return w.Button(description=description, tooltip=tooltip or description, **kw)


def progress(description: str = "") -> Any:
    """A progress bar (``IntProgress``) for long work started from a control."""
    import ipywidgets as w

    return w.IntProgress(value=0, min=0, max=1, description=description, bar_style="info")


def message() -> Any:
    """An HTML line for status and error messages (never a traceback)."""
    import ipywidgets as w

    return w.HTML(value="")


def on_change(controls: Sequence[Any], callback: Callable[[], None]) -> None:
    """Call ``callback()`` whenever any control's value changes."""
    for c in controls:
        c.observe(lambda _change: callback(), names="value")


class View:
    """One output updated in place: ``View(render).show()`` shows ``render()``, ``refresh()`` replaces it.

    The content lives in an ``ipywidgets.Output`` whose ``outputs`` are set directly (``append_display_data``),
    which works from callbacks and background threads alike, in JupyterLab and in Voilà (Voilà does not apply
    ``update_display_data`` to outputs it rendered, so display handles cannot be used). Under papermill the first
    render is kept in the notebook's widget state, and the run's HTML pages unwrap it into a static output
    (:mod:`nbutils.ui.htmlexport`). ``render`` returns a plotly figure, a DataFrame, an HTML string or anything
    IPython can display; an exception in it becomes a readable message in the view, never a traceback.
    """

    def __init__(self, render: Callable[[], Any], name: str = "") -> None:
        self.render = render
        self.name = name
        self.out: Any = None
        self.last: Any = None

    def _content(self) -> Any:
        from IPython.display import HTML

        try:
            self.last = self.render()
        except Exception as exc:  # noqa: BLE001 - shown to the user as a message, the dashboard stays usable
            self.last = None
            return HTML(f"<p class='nb-message' style='color:#a40'>{self.name}: {html_text(str(exc))}</p>")
        return _displayable(self.last)

    def widget(self) -> Any:
        """The ``Output`` widget holding the view (created and filled on first use)."""
        if self.out is None:
            import ipywidgets as w

            self.out = w.Output(layout=w.Layout(width="100%"))
            self.refresh()
        return self.out

    def show(self) -> View:
        """Display the view."""
        from IPython.display import display

        display(self.widget())
        return self

    def refresh(self) -> None:
        """Render again and replace what the view shows."""
        content = self._content()
        if self.out is None:
            return
        from IPython.core.interactiveshell import InteractiveShell

        data, metadata = InteractiveShell.instance().display_formatter.format(content)
        # one assignment: the old output is replaced, never cleared first (no empty moment a reader could see)
        self.out.outputs = ({"output_type": "display_data", "data": data, "metadata": metadata},)


def html_text(text: str) -> str:
    """Plain text (an error message) as HTML: escaped, line breaks kept."""
    import html

    return html.escape(text).replace("\n", "<br>")


class _PlotlyBundle:
    """A plotly figure as a plain mimebundle.

    ``go.Figure`` displays itself through ``_ipython_display_``, which publishes to the *cell* and leaves nothing
    for ``Output.append_display_data`` to capture (it would show an empty view after a control changes).
    """

    def __init__(self, fig: Any) -> None:
        import json

        self.spec = json.loads(fig.to_json())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # No ``responsive`` config: a responsive chart drawn while its output is still being laid out takes the
        # container's height (0 px in Voila's first render) and keeps it; the figures set their own height.
        return {"application/vnd.plotly.v1+json": self.spec,
                "text/plain": "<plotly figure>"}


def _displayable(obj: Any) -> Any:
    from IPython.display import HTML

    if obj is None:
        return HTML("<p class='nb-message'>(nothing to show)</p>")
    if isinstance(obj, str):
        return HTML(obj)
    if type(obj).__module__.startswith("plotly.") and hasattr(obj, "to_json"):
        return _PlotlyBundle(obj)
    return obj
