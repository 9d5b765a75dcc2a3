"""The drawing as a plotly figure: boxes by operator family, edges, Q/DQ glyphs, hover, overlays.

A plotly figure is rendered by JupyterLab from its mimetype (no JavaScript in an HTML output, so it shows in an
untrusted notebook), by the executed notebook's HTML, and by Voilà. One trace per family holds the node boxes
(``meta="nodes"``), so a test or a reader can count what is drawn.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING

from nbutils.graph.layout import MARKER_W, Drawing, label_x

_e = html.escape  # names from the model file are data, never markup

if TYPE_CHECKING:
    import plotly.graph_objects as go

COLORS = {"matmul": "#4c78a8", "quantize": "#f58518", "normalize": "#54a24b", "activation": "#b279a2",
          "elementwise": "#9d755d", "shape": "#bab0ac", "io": "#222222", "encoder layer": "#6b6ecf",
          "other": "#72b7b2"}
CATEGORY_COLORS = ["#4c78a8", "#e45756", "#54a24b", "#f58518", "#b279a2", "#72b7b2"]


def figure(d: Drawing, *, values: Mapping[str, float] | None = None, value_name: str = "",
           categories: Mapping[str, str] | None = None, highlight: Mapping[str, str] | None = None,
           reverse_scale: bool = False, px_per_inch: float = 64.0, max_height: int = 1400,
           focus: str | None = None) -> go.Figure:
    """Draw ``d`` (placed by :func:`nbutils.graph.layout.place`): boxes with labels, curved edges with arrowheads.

    Args:
        d: what to draw (see :func:`nbutils.graph.layout.build`).
        values: a number per drawn node (e.g. SQNR in dB): colours nodes on a continuous scale with a colour bar.
        value_name: the name of ``values`` (colour bar title, hover).
        categories: a category per drawn node (e.g. the execution provider): one colour and legend entry each.
        highlight: drawn nodes to ring in red, with the reason shown on hover (e.g. a MatMul left in float).
        reverse_scale: low values are good (e.g. relative error) instead of high ones (SQNR).
        px_per_inch: screen pixels per layout inch at the first view (labels are sized for 64).
        max_height: the figure's height cap in pixels; a taller graph opens on its top part at the same scale
            (labels stay readable) and the rest is a pan or zoom away, as in Netron.
        focus: a drawn node the first view is centred on (a search's match), ringed like a highlight.

    """
    import math

    import plotly.graph_objects as go

    def xy(n: str) -> tuple[float, float]:
        x, y = d.pos[n]
        return x, -y

    fig = go.Figure()
    ex: list[float | None] = []
    ey: list[float | None] = []
    heads: list[tuple[float, float, float]] = []
    mid_plain: list[tuple[float, float, str]] = []
    mid_qdq: list[tuple[float, float, str]] = []
    for e, path in zip(d.edges, d.paths, strict=True):
        pts = [(x, -y) for x, y in path]
        ex += [p[0] for p in pts] + [None]
        ey += [p[1] for p in pts] + [None]
        (ax, ay), (bx, by) = pts[-2] if len(pts) > 1 else pts[0], pts[-1]
        heads.append((bx, by, math.degrees(math.atan2(bx - ax, by - ay))))  # marker angles turn clockwise from up
        mx, my = pts[len(pts) // 2]
        if e.qdq:
            mid_qdq.append((mx, my, f"<b>Q/DQ</b> on {_e(e.label)}<br>" + (e.qdq_hover or
                                                                           "<br>".join(_e(q) for q in e.qdq[:4]))))
        elif e.label:
            mid_plain.append((mx, my, _e(e.label)))
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line={"color": "#888", "width": 1}, hoverinfo="skip",
                             name="edges", showlegend=False, meta="edges"))
    if heads:
        fig.add_trace(go.Scatter(x=[h[0] for h in heads], y=[h[1] for h in heads], mode="markers", hoverinfo="skip",
                                 marker={"symbol": "triangle-up", "size": 7, "color": "#888",
                                         "angle": [h[2] for h in heads], "standoff": 0},
                                 showlegend=False, name="arrowheads", meta="arrows"))
    if mid_plain:
        fig.add_trace(go.Scatter(x=[m[0] for m in mid_plain], y=[m[1] for m in mid_plain], mode="markers",
                                 marker={"size": 4, "color": "rgba(0,0,0,0.15)"}, hovertext=[m[2] for m in mid_plain],
                                 hoverinfo="text", name="tensor (shape, dtype)", meta="edge-labels"))
    if mid_qdq:
        fig.add_trace(go.Scatter(x=[m[0] for m in mid_qdq], y=[m[1] for m in mid_qdq], mode="markers",
                                 marker={"symbol": "diamond", "size": 10, "color": COLORS["quantize"],
                                         "line": {"color": "#222", "width": 1}},
                                 hovertext=[m[2] for m in mid_qdq], hoverinfo="text", name="Q/DQ pair", meta="qdq"))
    ids = list(d.nodes)

    def node_trace(members: list[str], name: str, colour: str | None, marker: dict, legend: bool = True) -> None:
        pts = [xy(n) for n in members]
        hover = []
        for n in members:
            h = d.nodes[n].hover
            if values is not None and n in values:
                h += f"<br><b>{_e(value_name)}: {values[n]:.3g}</b>"
            if categories is not None and n in categories:
                h += f"<br><b>{_e(str(categories[n]))}</b>"
            if highlight and n in highlight:
                h += f"<br><b style='color:#c00'>{_e(highlight[n])}</b>"
            if d.nodes[n].quantized_weight:
                h += "<br>weight: INT8 (Q/DQ)"
            hover.append(h)
        if colour is not None:  # the boxes themselves: one filled outline per box, in one trace
            bx: list[float | None] = []
            by: list[float | None] = []
            for n, (x, y) in zip(members, pts, strict=True):
                w, h = d.size[n]
                bx += [x - w / 2, x + w / 2, x + w / 2, x - w / 2, x - w / 2, None]
                by += [y - h / 2, y - h / 2, y + h / 2, y + h / 2, y - h / 2, None]
            fig.add_trace(go.Scatter(x=bx, y=by, mode="lines", fill="toself", fillcolor=colour,
                                     line={"color": "#333", "width": 0.6}, hoverinfo="skip", showlegend=False,
                                     name=name, meta="boxes"))
        # the hover targets (and, for overlays, the coloured markers) sit inside each box's left end, clear of the label
        fig.add_trace(go.Scatter(x=[p[0] - d.size[n][0] / 2 + MARKER_W * 0.55 for n, p in zip(members, pts, strict=True)],
                                 y=[p[1] for p in pts], mode="markers",
                                 marker={"symbol": "square", "size": 8, **marker},
                                 hovertext=hover, hoverinfo="text", name=name, showlegend=legend, meta="nodes",
                                 customdata=members))

    if values is not None:
        with_v = [n for n in ids if n in values]
        rest = [n for n in ids if n not in values]
        if rest:
            node_trace(rest, "no value", "#eeeeee", {"color": "#ddd", "line": {"color": "#999", "width": 1}})
        if with_v:
            node_trace(with_v, value_name, "#ffffff", {"color": [values[n] for n in with_v], "colorscale": "RdYlGn",
                                                       "reversescale": reverse_scale, "showscale": True,
                                                       "colorbar": {"title": {"text": value_name}},
                                                       "line": {"color": "#333", "width": 1}})
    elif categories is not None:
        cats = sorted({categories.get(n, "unknown") for n in ids})
        for i, c in enumerate(cats):
            members = [n for n in ids if categories.get(n, "unknown") == c]
            colour = CATEGORY_COLORS[i % len(CATEGORY_COLORS)]
            node_trace(members, c, _tint(colour), {"color": colour})
    else:
        fams: dict[str, list[str]] = {}
        for n in ids:
            fams.setdefault(d.nodes[n].family, []).append(n)
        for fam, members in sorted(fams.items()):
            colour = COLORS.get(fam, COLORS["other"])
            node_trace(members, fam, _tint(colour), {"color": colour, "opacity": 0.9})
    # labels last, so they sit on top of the boxes
    fig.add_trace(go.Scatter(x=[label_x(xy(n)[0]) for n in ids], y=[xy(n)[1] for n in ids], mode="text",
                             text=[_e(d.nodes[n].label[:28]) for n in ids], textfont={"size": 9, "color": "#111"},
                             hoverinfo="skip", showlegend=False, name="labels", meta="labels"))
    if highlight:
        hl = [n for n in ids if n in highlight]
        if hl:
            fig.add_trace(go.Scatter(x=[xy(n)[0] for n in hl], y=[xy(n)[1] for n in hl], mode="markers",
                                     marker={"symbol": "square-open", "size": 26, "color": "#d00", "line": {"width": 3}},
                                     hoverinfo="skip", name="needs attention", meta="highlight"))
    xs = [x for n in ids for x in (d.pos[n][0] - d.size[n][0] / 2, d.pos[n][0] + d.size[n][0] / 2)] or [0.0, 1.0]
    ys = [y for n in ids for y in (d.pos[n][1] - d.size[n][1] / 2, d.pos[n][1] + d.size[n][1] / 2)] or [0.0, 1.0]
    x0, x1, y0, y1 = min(xs) - 0.3, max(xs) + 0.3, min(ys) - 0.3, max(ys) + 0.3
    margin_px = 110
    height = int(min(max(380, (y1 - y0) * px_per_inch + margin_px), max_height))
    shown = (height - margin_px) / px_per_inch  # inches of graph in the first view
    yrange = [-y1, -y0] if shown >= y1 - y0 else [-(y0 + shown), -y0]
    if focus is not None and focus in d.pos and shown < y1 - y0:  # centre the first view on the node found
        top = min(max(y0, d.pos[focus][1] - shown / 2), y1 - shown)
        yrange = [-(top + shown), -top]
    fig.update_layout(title=d.title, height=height, plot_bgcolor="white", hovermode="closest", dragmode="pan",
                      margin={"l": 10, "r": 10, "t": 80, "b": 10},
                      legend={"itemsizing": "constant", "orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
                      xaxis={"visible": False, "range": [x0, x1]},
                      yaxis={"visible": False, "range": yrange, "scaleanchor": "x", "scaleratio": 1})
    return fig


def _tint(colour: str, amount: float = 0.55) -> str:
    """A lighter version of a ``#rrggbb`` colour (box fill; the label stays readable on it)."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    r, g, b = (int(c + (255 - c) * amount) for c in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


def drawn_nodes(fig: go.Figure) -> int:
    """Number of node boxes in a figure made by :func:`figure`."""
    return sum(len(t.x) for t in fig.data if t.meta == "nodes")
