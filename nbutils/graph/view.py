"""The drawing as a plotly figure: boxes by operator family, edges, Q/DQ glyphs, hover, overlays.

A plotly figure is rendered by JupyterLab from its mimetype (no JavaScript in an HTML output, so it shows in an
untrusted notebook), by the executed notebook's HTML, and by Voilà. One trace per family holds the node boxes
(``meta="nodes"``), so a test or a reader can count what is drawn.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING

from nbutils.graph.layout import Drawing

_e = html.escape  # names from the model file are data, never markup

if TYPE_CHECKING:
    import plotly.graph_objects as go

COLORS = {"matmul": "#4c78a8", "quantize": "#f58518", "normalize": "#54a24b", "activation": "#b279a2",
          "elementwise": "#9d755d", "shape": "#bab0ac", "io": "#222222", "encoder layer": "#6b6ecf",
          "other": "#72b7b2"}
CATEGORY_COLORS = ["#4c78a8", "#e45756", "#54a24b", "#f58518", "#b279a2", "#72b7b2"]


def figure(d: Drawing, *, values: Mapping[str, float] | None = None, value_name: str = "",
           categories: Mapping[str, str] | None = None, highlight: Mapping[str, str] | None = None,
           reverse_scale: bool = False, x_gap: float = 1.6) -> go.Figure:
    """Draw ``d``.

    Args:
        d: what to draw (see :func:`nbutils.graph.layout.build`).
        values: a number per drawn node (e.g. SQNR in dB): colours nodes on a continuous scale with a colour bar.
        value_name: the name of ``values`` (colour bar title, hover).
        categories: a category per drawn node (e.g. the execution provider): one colour and legend entry each.
        highlight: drawn nodes to ring in red, with the reason shown on hover (e.g. a MatMul left in float).
        reverse_scale: low values are good (e.g. relative error) instead of high ones (SQNR).
        x_gap: horizontal distance between neighbouring boxes (vertical distance is 1).

    """
    import plotly.graph_objects as go

    def xy(n: str) -> tuple[float, float]:
        x, r = d.pos[n]
        return x * x_gap, -float(r)

    fig = go.Figure()
    ex: list[float | None] = []
    ey: list[float | None] = []
    mid_plain: list[tuple[float, float, str]] = []
    mid_qdq: list[tuple[float, float, str]] = []
    for e in d.edges:
        (x0, y0), (x1, y1) = xy(e.src), xy(e.dst)
        ex += [x0, x1, None]
        ey += [y0, y1, None]
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        if e.qdq:
            mid_qdq.append((mx, my, f"<b>Q/DQ</b> on {_e(e.label)}<br>" + (e.qdq_hover or
                                                                           "<br>".join(_e(q) for q in e.qdq[:4]))))
        elif e.label:
            mid_plain.append((mx, my, _e(e.label)))
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line={"color": "#999", "width": 1}, hoverinfo="skip",
                             name="edges", showlegend=False, meta="edges"))
    if mid_plain:
        fig.add_trace(go.Scatter(x=[m[0] for m in mid_plain], y=[m[1] for m in mid_plain], mode="markers",
                                 marker={"size": 4, "color": "rgba(0,0,0,0.15)"}, hovertext=[m[2] for m in mid_plain],
                                 hoverinfo="text", name="tensor (shape, dtype)", meta="edge-labels"))
    if mid_qdq:
        fig.add_trace(go.Scatter(x=[m[0] for m in mid_qdq], y=[m[1] for m in mid_qdq], mode="markers",
                                 marker={"symbol": "diamond", "size": 9, "color": COLORS["quantize"],
                                         "line": {"color": "#222", "width": 1}},
                                 hovertext=[m[2] for m in mid_qdq], hoverinfo="text", name="Q/DQ pair", meta="qdq"))
    ids = list(d.nodes)
    small = len(ids) <= 150

    def node_trace(members: list[str], name: str, marker: dict, legend: bool = True) -> None:
        pts = [xy(n) for n in members]
        hover = []
        for n in members:
            h = d.nodes[n].hover
            if values is not None and n in values:
                h += f"<br><b>{value_name}: {values[n]:.3g}</b>"
            if categories is not None and n in categories:
                h += f"<br><b>{_e(str(categories[n]))}</b>"
            if highlight and n in highlight:
                h += f"<br><b style='color:#c00'>{highlight[n]}</b>"
            if d.nodes[n].quantized_weight:
                h += "<br>weight: INT8 (Q/DQ)"
            hover.append(h)
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="markers+text" if small else "markers",
                                 text=[_e(d.nodes[n].label[:24]) for n in members], textposition="middle right",
                                 textfont={"size": 9}, marker={"symbol": "square", "size": 13, **marker},
                                 hovertext=hover, hoverinfo="text", name=name, showlegend=legend, meta="nodes",
                                 customdata=members))

    if values is not None:
        with_v = [n for n in ids if n in values]
        rest = [n for n in ids if n not in values]
        if rest:
            node_trace(rest, "no value", {"color": "#ddd", "line": {"color": "#999", "width": 1}})
        if with_v:
            node_trace(with_v, value_name, {"color": [values[n] for n in with_v], "colorscale": "RdYlGn",
                                            "reversescale": reverse_scale, "showscale": True,
                                            "colorbar": {"title": {"text": value_name}},
                                            "line": {"color": "#333", "width": 1}})
    elif categories is not None:
        cats = sorted({categories.get(n, "unknown") for n in ids})
        for i, c in enumerate(cats):
            members = [n for n in ids if categories.get(n, "unknown") == c]
            node_trace(members, c, {"color": CATEGORY_COLORS[i % len(CATEGORY_COLORS)]})
    else:
        fams: dict[str, list[str]] = {}
        for n in ids:
            fams.setdefault(d.nodes[n].family, []).append(n)
        for fam, members in sorted(fams.items()):
            node_trace(members, fam, {"color": COLORS.get(fam, COLORS["other"])})
    if highlight:
        hl = [n for n in ids if n in highlight]
        if hl:
            fig.add_trace(go.Scatter(x=[xy(n)[0] for n in hl], y=[xy(n)[1] for n in hl], mode="markers",
                                     marker={"symbol": "square-open", "size": 22, "color": "#d00", "line": {"width": 3}},
                                     hoverinfo="skip", name="needs attention", meta="highlight"))
    height = int(min(max(420, 34 * d.ranks + 120), 2600))
    fig.update_layout(title=d.title, height=height, plot_bgcolor="white", hovermode="closest",
                      margin={"l": 10, "r": 10, "t": 80, "b": 10},
                      legend={"itemsizing": "constant", "orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
                      xaxis={"visible": False}, yaxis={"visible": False})
    return fig


def drawn_nodes(fig: go.Figure) -> int:
    """Number of node boxes in a figure made by :func:`figure`."""
    return sum(len(t.x) for t in fig.data if t.meta == "nodes")
