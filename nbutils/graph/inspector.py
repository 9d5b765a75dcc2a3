"""The interactive graph inspector of notebook 50: pick a file, a view, a search and an overlay; the view follows.

Views: the collapsed graph, one encoder layer, the whole graph, and each Loop/If/Scan body. A search highlights
every match and centres the first view on the first (opening its encoder layer when it sits in a collapsed one).

Defaults come from the notebook's parameters, so papermill shows the default view and never waits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbutils.graph import layout, view
from nbutils.graph.model import Graph, load_graph

COLLAPSED, WHOLE = "collapsed (one box per layer)", "whole graph"
BODY = "body "  #: a view's prefix for a control-flow body: ``body Loop_0/body`` (Netron opens these on a click)


@dataclass
class Explorer:
    """Graphs by name, per-node overlays by (graph, overlay) name, and the controls that choose among them."""

    files: Mapping[str, str | Path]
    overlays: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    graphs: dict[str, Graph] = field(default_factory=dict)

    def graph(self, name: str) -> Graph:
        """The loaded graph of ``name`` (cached)."""
        if name not in self.graphs:
            self.graphs[name] = load_graph(self.files[name])
        return self.graphs[name]

    def add_overlay(self, graph: str, name: str, *, values: Mapping[str, float] | None = None,
                    categories: Mapping[str, str] | None = None, highlight: Mapping[str, str] | None = None,
                    value_name: str = "") -> None:
        """Register an overlay (values, categories or highlights per ONNX node) for one graph."""
        self.overlays[(graph, name)] = {"values": values, "categories": categories, "highlight": highlight,
                                        "value_name": value_name or name}

    def figure(self, name: str, *, mode: str = COLLAPSED, search: str = "", show_qdq: bool = False,
               overlay: str = "operator family") -> Any:
        """The figure for one choice of the controls (what the widgets call)."""
        g = self.graph(name)
        expand: list[int] = []
        collapse = mode != WHOLE
        if mode.startswith(BODY):  # a Loop/If/Scan body, drawn whole like a graph of its own
            g, collapse = g.body(mode[len(BODY):]), False
        elif mode != COLLAPSED and mode != WHOLE:
            expand = [int(mode.split()[-1])]
        found = layout.search(g, search) if search else []
        note = ""
        if found:
            first = g.nodes[found[0]]
            if collapse and first.layer is not None and first.layer not in expand:
                expand = [first.layer]  # find opens the layer that holds the node, so the node itself is drawn
                note = f" (opened layer {first.layer})"
            note = f" · '{search}': {len(found)} node(s), centred on {found[0]}{note}"
        d = layout.build(g, show_qdq=show_qdq, collapse=collapse, expand=expand,
                         title=f"{name}: {Path(self.files[name]).parent.name}/{Path(self.files[name]).name} · {mode}"
                               + note)
        ov = self.overlays.get((name, overlay), {})
        owner = {m: n for n, dn in d.nodes.items() for m in dn.members}

        def lift(per_node: Mapping[str, Any] | None, worst: bool) -> dict[str, Any] | None:
            if per_node is None:
                return None
            out: dict[str, Any] = {}
            for onnx_name, v in per_node.items():
                drawn = owner.get(onnx_name)
                if drawn is None:
                    continue
                if worst and drawn in out:
                    out[drawn] = min(out[drawn], v)
                else:
                    out.setdefault(drawn, v)
            return out

        highlight = dict(lift(ov.get("highlight"), False) or {})
        for n in found:
            if n in owner:
                highlight.setdefault(owner[n], f"matches '{search}'")
        return view.figure(d, values=lift(ov.get("values"), True), value_name=ov.get("value_name", ""),
                           categories=lift(ov.get("categories"), False), highlight=highlight or None,
                           focus=owner.get(found[0]) if found else None)

    def widget(self, defaults: Mapping[str, Any]) -> Any:
        """Controls plus one view that follows them; ``defaults``: file, mode, search, show_qdq, overlay."""
        import ipywidgets as w

        from nbutils.ui import widgets

        names = list(self.files)
        file_c = widgets.dropdown(names, defaults.get("file"), "file")

        def modes(name: str) -> list[str]:
            g = self.graph(name)
            return [COLLAPSED, *[f"layer {i}" for i in g.layers()], WHOLE, *[BODY + k for k in g.all_bodies()]]

        def overlays(name: str) -> list[str]:
            return ["operator family", *[o for g, o in self.overlays if g == name]]

        mode_c = widgets.dropdown(modes(file_c.value), defaults.get("mode"), "view")
        over_c = widgets.dropdown(overlays(file_c.value), defaults.get("overlay"), "overlay")
        search_c = w.Text(value=str(defaults.get("search", "")), description="search", continuous_update=False)
        qdq_c = w.Checkbox(value=bool(defaults.get("show_qdq", False)), description="Q/DQ as nodes")

        def render() -> Any:
            return self.figure(file_c.value, mode=mode_c.value, search=search_c.value, show_qdq=qdq_c.value,
                               overlay=over_c.value)

        self.view = widgets.View(render, "graph")

        def file_changed() -> None:
            with mode_c.hold_trait_notifications(), over_c.hold_trait_notifications():
                mode_c.options, over_c.options = modes(file_c.value), overlays(file_c.value)
            self.view.refresh()

        file_c.observe(lambda _c: file_changed(), names="value")
        widgets.on_change([mode_c, over_c, search_c, qdq_c], self.view.refresh)
        self.controls = {"file": file_c, "mode": mode_c, "overlay": over_c, "search": search_c, "show_qdq": qdq_c}
        return w.VBox([w.HBox([file_c, mode_c, over_c]), w.HBox([search_c, qdq_c])])

    def show(self, defaults: Mapping[str, Any]) -> None:
        """Display the controls and the default view."""
        from IPython.display import display

        display(self.widget(defaults))
        self.view.show()
