"""Layout and figure-building times of the three views (``python -m nbutils graph FILE``), a benchmark, not a test."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from nbutils.core import env
from nbutils.graph import layout, view
from nbutils.graph.model import load_graph


def time_views(path: str | Path, *, expand: int | None = None, repeat: int = 3, html: str | None = None) -> str:
    """Median seconds to lay out and build the figure of the collapsed, one-layer and whole views of ``path``.

    Any ONNX model opens: ``expand`` defaults to the graph's first encoder layer; a graph without ``layer.N``
    blocks (a ResNet, a Loop test case) has no one-layer view, and the output says so.
    """
    t0 = time.perf_counter()
    g = load_graph(path)
    load_s = time.perf_counter() - t0
    layers = g.layers()
    if expand is None and layers:
        expand = layers[0]
    views: dict[str, dict] = {"collapsed": {}}
    if expand is not None:
        views[f"layer {expand}"] = {"expand": [expand]}  # a layer the graph lacks: build() names the ones it has
    views["whole"] = {"collapse": False}
    bodies = g.all_bodies()
    for key in bodies:  # Loop/If/Scan bodies: each drawn whole, as the inspector's "body ..." views do
        views[f"body {key}"] = {"collapse": False, "body": key}
    lines = [f"{Path(path)}: {len(g.nodes)} ONNX nodes, {len(layers)} encoder layers, {len(bodies)} control-flow "
             f"bodies; load {load_s:.2f} s "
             f"(parse, shape inference, initializer statistics); CPU {env.cpu_info()['cpu']}"]
    if not layers:
        lines.append("  no layer.N blocks in this graph: no one-layer view (the collapsed view is the whole graph)")
    figs = []
    for name, kw in views.items():
        times = []
        fresh = load_graph(path)  # cold: no initializer statistics cached yet for this view
        body = kw.pop("body", None)
        for i in range(max(1, repeat)):
            t = time.perf_counter()
            src = fresh if i == 0 else g
            d = layout.build(src.body(body) if body else src, **kw)
            fig = view.figure(d)
            times.append(time.perf_counter() - t)
        figs.append(fig)
        s = layout.summary(d)
        lines.append(f"  {name:>10}: cold {times[0]:.3f} s, median {statistics.median(times):.3f} s of {len(times)} "
                     f"(layout + figure); {s['nodes']} boxes, {s['edges']} edges, {s['qdq_glyphs']} Q/DQ glyphs, "
                     f"{s['ranks']} ranks")
    if html:
        Path(html).write_text("".join(f.to_html(full_html=False, include_plotlyjs=(i == 0))
                                      for i, f in enumerate(figs)), encoding="utf-8")
    return "\n".join(lines)
