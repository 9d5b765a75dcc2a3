"""What to draw and where: Q/DQ folding, encoder-layer collapsing, and a layered top-to-bottom layout.

The layout is Graphviz ``dot`` (the layered layout Netron's dagre follows: ranks, crossing reduction, long edges
straightened and routed around boxes as splines), run as a program with ``-Tplain`` (positions and spline control
points as text; no Python binding needed). Where ``dot`` is not installed, :func:`layered_layout` is the fallback,
said in the drawing's ``engine``: longest-path layers from networkx's topological generations, then barycenter
sweeps, straight edges. That fallback is written here rather than taken from grandalf: grandalf's pure-Python
Sugiyama needs minutes on a BERT-base Q/DQ graph (well over a thousand nodes), while the budget is seconds.
"""

from __future__ import annotations

import html
import math
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nbutils.core.errors import NbUtilsError
from nbutils.graph.model import QDQ_OPS, Graph, Node, family

_e = html.escape  # text from a model file (node, tensor, attribute names) is data, never markup


@dataclass
class DNode:
    """A drawn box: one ONNX node, a graph input/output, or a collapsed encoder layer."""

    id: str
    label: str
    op: str
    members: list[str] = field(default_factory=list)  # ONNX nodes inside (one, or a whole layer)
    hover: str = ""
    quantized_weight: bool = False

    @property
    def family(self) -> str:
        """Operator family (colour)."""
        return family(self.op)


@dataclass
class DEdge:
    """A drawn edge; ``qdq`` holds the folded Q/DQ nodes it passes through (drawn as one glyph)."""

    src: str
    dst: str
    tensor: str
    label: str = ""
    qdq: list[str] = field(default_factory=list)
    qdq_hover: str = ""  # what the glyph teaches: scale, zero point, dtype, axis, the representable range


@dataclass
class Drawing:
    """Nodes, edges and where they go: everything :mod:`nbutils.graph.view` needs.

    Coordinates are in inches (Graphviz's unit), ``y`` growing downwards: ``pos`` is a box's centre, ``size`` its
    width and height, ``paths[i]`` the polyline of ``edges[i]`` from its source box to its target box.
    """

    nodes: dict[str, DNode]
    edges: list[DEdge]
    pos: dict[str, tuple[float, float]]
    title: str = ""
    size: dict[str, tuple[float, float]] = field(default_factory=dict)
    paths: list[list[tuple[float, float]]] = field(default_factory=list)
    engine: str = ""  # "graphviz dot" or the built-in fallback

    @property
    def ranks(self) -> int:
        """Number of layers of the layout (distinct box rows)."""
        return len({round(y, 2) for _, y in self.pos.values()})


#: (module path pattern, role): a BERT-family node's job, read from the exporter's module path (checked in order).
_ROLES = ((r"attention/self/query/", "attn · Q proj"), (r"attention/self/key/", "attn · K proj"),
          (r"attention/self/value/", "attn · V proj"), (r"attention/output/dense/", "attn · out proj"),
          (r"attention/output/layernorm", "attn · LN"), (r"intermediate/", "FFN · up"),
          (r"output/dense/", "FFN · down"), (r"output/layernorm", "FFN · LN"), (r"embeddings/", "emb"),
          (r"pooler/", "pooler"), (r"classifier|qa_outputs", "head"))


def short_label(name: str, op: str) -> str:
    """A box label a reader can tell apart: ``L0 · attn · Q proj`` for a layer's query MatMul, else the op.

    The layer and the role come from the node's module path (``/bert/encoder/layer.0/attention/self/query/MatMul``);
    names without one (any non-BERT model) keep the operator type.
    """
    path = name.lower()
    m = re.search(r"layers?[._/](\d+)", path)
    prefix = f"L{m[1]} · " if m else ""
    for pat, role in _ROLES:
        if re.search(pat, path):
            if op in ("MatMul", "Gemm", "LayerNormalization") and not role.startswith(("emb", "pooler", "head")):
                return prefix + role
            return prefix + role + " · " + ("+bias" if op == "Add" and not role.endswith("LN") else op)
    if op == "Add" and re.search(r"output/add(_\d+)?$", path):
        return prefix + "residual +"
    if "attention/self/" in path:
        if op == "MatMul":
            return prefix + ("attn · ·V" if re.search(r"matmul_\d+$", path) else "attn · QKᵀ")
        return prefix + "attn · " + op
    return prefix + op if prefix else op


def _node_hover(g: Graph, n: Node) -> str:
    # names and attributes come from the model file: data, never markup (plotly renders hover text as HTML)
    lines = [f"<b>{_e(n.op)}</b> {_e(n.name)}"]
    lines += [_e(f"{k} = {v}") for k, v in list(n.attrs.items())[:8]]
    for kind, names in (("in", n.inputs), ("out", n.outputs)):
        for t in names[:6]:
            if not t:
                continue
            desc = g.tensor(t).describe()
            if t in g.initializers:
                s = g.initializers[t]
                stat = (f" value {s['value']:.4g}" if "value" in s else
                        f" min {s.get('min', 0):.3g} median {s.get('median', 0):.3g} max {s.get('max', 0):.3g}"
                        if "min" in s else "")
                lines.append(_e(f"{kind}: {t[-60:]} (initializer {desc}{stat})"))
            else:
                via = g.nodes[g.producer[t]].op if kind == "in" and t in g.producer else ""
                arith = " = INT8 codes × scale (DequantizeLinear)" if via == "DequantizeLinear" else ""
                lines.append(_e(f"{kind}: {t[-60:]} {desc}{arith}"))
    if n.op not in QDQ_OPS:
        def from_dq(t: str) -> bool:  # reaches a DequantizeLinear, maybe through a Transpose/Reshape of it
            _, stop, _ = g.climb(t, lambda m: m.op in WEIGHT_SIDE_OPS)
            return stop is not None and stop.op == "DequantizeLinear"

        ins = [t for t in n.inputs if t and t not in g.initializers]
        int8 = sum(1 for t in ins if from_dq(t))
        if int8:
            lines.append(f"<b>inputs: {int8} of {len(ins)} INT8 (through Q/DQ), {len(ins) - int8} float</b>")
    if n.op in QDQ_OPS:
        q = g.qdq_params(n)
        for key in ("scale", "zero_point"):
            if key in q:
                s = q[key]
                lines.append(f"{key}: " + (f"{s['value']:.4g}" if "value" in s else
                                           f"per-channel min {s['min']:.4g} / median {s['median']:.4g} / max {s['max']:.4g}"))
    return "<br>".join(lines)


def qdq_hover(g: Graph, names: Iterable[str]) -> str:
    """Hover text of a Q/DQ glyph: per node its scale, zero point and INT8 type, axis, and the range it can represent.

    The range is ``[(qmin - zp) * scale, (qmax - zp) * scale]``: what the calibrator chose (its amax, for a
    symmetric INT8 quantizer ``127 * scale``); anything outside it saturates.
    """
    lines = []
    for name in names:
        n = g.nodes[name]
        q = g.qdq_params(n)
        head = f"<b>{_e(n.op)}</b> {_e(name[-60:])}"
        if "scale" not in q:
            lines.append(head)
            continue
        s, z = q["scale"], q.get("zero_point", {})
        zdt = z.get("dtype", "uint8 (default)") if z else "uint8 (default)"
        lo, hi = (-128, 127) if "int8" in zdt and "uint" not in zdt else (0, 255)
        zp = z.get("value", 0.0) if z else 0.0
        if "value" in s:
            scale = f"scale {s['value']:.4g}"
            rng = f"range [{(lo - zp) * s['value']:.4g}, {(hi - zp) * s['value']:.4g}]"
        else:
            scale = (f"per-channel scale (axis {q.get('axis', 1)}, {s.get('size', '?')} channels): "
                     f"min {s.get('min', 0):.4g} / median {s.get('median', 0):.4g} / max {s.get('max', 0):.4g}")
            rng = f"largest range ±{hi * s.get('max', 0):.4g}"
        zpt = f"zero point {zp:.4g}" if z and "value" in z else "zero point per channel" if z else "zero point 0"
        lines.append(f"{head}<br>{_e(scale)}, {_e(zpt)} ({_e(zdt)})<br>{_e(rng)}")
    return "<br>".join(lines)


#: Operators that only reshape or retype a weight on its way to the node that uses it (folded into that node).
WEIGHT_SIDE_OPS = frozenset({"Transpose", "Cast", "Reshape", "Unsqueeze", "Squeeze", "Identity", "Flatten"})


def weight_side_nodes(g: Graph) -> set[str]:
    """Nodes that only prepare a weight: a :data:`WEIGHT_SIDE_OPS` node fed (through Q/DQ) by initializers only.

    The TorchScript exporter puts a ``Transpose`` between every ``nn.Linear`` weight's DequantizeLinear and its
    MatMul; drawn as a box, it floats beside the MatMul with no incoming edge. Netron folds such nodes into the
    node they feed; so does this view (the consumer's hover says its weight is INT8).
    """
    const = set(g.initializers)
    folded: set[str] = set()
    changed = True
    while changed:
        changed = False
        for n in g.nodes.values():
            if n.outputs[0] in const or not (n.op in WEIGHT_SIDE_OPS or n.op in QDQ_OPS or n.op == "Constant"):
                continue
            ins = [t for t in n.inputs if t]
            if all(t in const for t in ins):
                const.update(n.outputs)
                if n.op in WEIGHT_SIDE_OPS:
                    folded.add(n.name)
                changed = True
    return folded


def _trace_back(g: Graph, tensor: str, weight_side: set[str] | frozenset[str] = frozenset()
                ) -> tuple[str | None, list[str], bool]:
    """Follow ``tensor`` up through Q/DQ (and weight-side) nodes: (producer or input, Q/DQ passed, from weight)."""
    t, stop, passed = g.climb(tensor, lambda n: n.op in QDQ_OPS or n.name in weight_side)
    passed = [p for p in passed if p not in weight_side]
    if stop is not None:
        return stop.name, passed, False
    if t in g.initializers:
        return None, passed, True
    return (f"input:{t}" if t in g.inputs else None), passed, False


def _group_of(node: Node, collapse: bool, expand: set[int]) -> str | None:
    layer = node.layer
    if collapse and layer is not None and layer not in expand:
        return f"layer {layer}"
    return None


def build(g: Graph, *, show_qdq: bool = False, collapse: bool = True, expand: Iterable[int] = (),
          title: str = "") -> Drawing:
    """Decide what is drawn: Q/DQ folded onto edges (or as nodes), encoder layers collapsed except ``expand``.

    Raises:
        NbUtilsError: a layer in ``expand`` that the graph does not have.

    """
    expand = set(expand)
    missing = sorted(expand - set(g.layers()))
    if missing:
        have = g.layers()
        raise NbUtilsError(f"{g.path.name} has no encoder layer {missing} (its layers: {have or 'none'})",
                           f"expand one of {have}" if have else
                           "expand nothing: this graph has no layer.N blocks, its collapsed and whole views show it all")
    nodes: dict[str, DNode] = {}
    owner: dict[str, str] = {}  # ONNX node -> drawn node id
    weight_side = weight_side_nodes(g) if not show_qdq else set()
    for n in g.nodes.values():
        if (not show_qdq and n.op in QDQ_OPS) or n.op == "Constant" or n.name in weight_side:
            continue  # Q/DQ fold onto edges; a Constant's value shows in its consumer's hover, like an initializer
        grp = _group_of(n, collapse, expand)
        if grp:
            box = nodes.setdefault(grp, DNode(grp, grp, "Layer"))
            box.members.append(n.name)
            owner[n.name] = grp
        else:
            nodes[n.name] = DNode(n.name, short_label(n.name, n.op), n.op, [n.name], _node_hover(g, n))
            owner[n.name] = n.name
    for box in nodes.values():
        if box.op == "Layer":
            ops: dict[str, int] = {}
            for m in box.members:
                ops[g.nodes[m].op] = ops.get(g.nodes[m].op, 0) + 1
            box.hover = f"<b>{_e(box.id)}</b>: {len(box.members)} nodes<br>" + "<br>".join(
                _e(f"{k}: {v}") for k, v in sorted(ops.items(), key=lambda kv: -kv[1])[:12])
    for name in g.inputs:
        where = "from the enclosing graph" if name in g.outer else "input"
        nodes[f"input:{name}"] = DNode(f"input:{name}", name, "Input", [],
                                       f"<b>{where}</b> {_e(name)} {_e(g.tensor(name).describe())}")
        owner[f"input:{name}"] = f"input:{name}"
    for name in g.outputs:
        nodes[f"output:{name}"] = DNode(f"output:{name}", name, "Output", [],
                                        f"<b>output</b> {_e(name)} {_e(g.tensor(name).describe())}")
    edges: dict[tuple[str, str, str], DEdge] = {}
    for n in g.nodes.values():
        if n.name not in owner:
            continue
        dst = owner[n.name]
        for t in n.inputs:
            if not t:
                continue
            if show_qdq:
                prod = g.producer.get(t) or (f"input:{t}" if t in g.inputs else None)
                passed, weight = [], t in g.initializers
            else:
                prod, passed, weight = _trace_back(g, t, weight_side)
            if weight:
                if passed:
                    nodes[dst].quantized_weight = True
                continue
            if prod is None or prod not in owner:
                continue
            src = owner[prod]
            if src == dst:
                continue
            key = (src, dst, "" if nodes[dst].op == "Layer" or nodes[src].op == "Layer" else t)
            if key not in edges:
                edges[key] = DEdge(src, dst, t, f"{t[-40:]}: {g.tensor(t).describe()}", list(passed))
            else:
                edges[key].qdq += [p for p in passed if p not in edges[key].qdq]
    for e in edges.values():
        if e.qdq:
            e.qdq_hover = qdq_hover(g, e.qdq[:4])
    for name in g.outputs:  # an output made by a folded DequantizeLinear joins the node behind it, glyph and all
        prod, passed = g.producer.get(name), []
        if prod not in owner:
            prod, passed, _ = _trace_back(g, name, weight_side)
        if prod in owner:
            edges[(owner[prod], f"output:{name}", name)] = DEdge(owner[prod], f"output:{name}", name,
                                                                  f"{name}: {g.tensor(name).describe()}", list(passed),
                                                                  qdq_hover(g, passed[:4]) if passed else "")
    drawing = Drawing(nodes, list(edges.values()), {}, title)
    place(drawing)
    return drawing


#: Box height and the width of one label character, in inches (9-point text, as the figure draws it).
BOX_H, CHAR_W = 0.32, 0.075
#: Room at a box's left end for its hover marker; the label is centred in the rest (:func:`label_x`).
MARKER_W = 0.16


def box_size(node: DNode) -> tuple[float, float]:
    """Width and height of a node's box, in inches: wide enough for its label and the hover marker beside it."""
    if node.op == "Layer":
        return max(1.6, CHAR_W * len(node.label) + 0.4 + MARKER_W), BOX_H * 1.6
    return max(0.55, CHAR_W * len(node.label[:28]) + 0.25 + MARKER_W), BOX_H


def label_x(x: float) -> float:
    """Where a box's label is centred: right of the box's centre by half the marker's room, clear of the marker."""
    return x + MARKER_W / 2


def place(d: Drawing, *, use_dot: bool | None = None) -> Drawing:
    """Fill ``d.pos``, ``d.size`` and ``d.paths``: Graphviz ``dot`` where installed, else :func:`layered_layout`."""
    d.size = {n: box_size(box) for n, box in d.nodes.items()}
    if use_dot is None:
        use_dot = dot_available()
    if use_dot:
        d.pos, d.paths = dot_layout(d)
        d.engine = "graphviz dot"
        return d
    ranks = layered_layout(list(d.nodes), [(e.src, e.dst) for e in d.edges])
    width = max((w for w, _ in d.size.values()), default=1.0)
    d.pos = {n: (x * (width + 0.25), r * (BOX_H * 1.6 + 0.45)) for n, (x, r) in ranks.items()}
    d.paths = [[d.pos[e.src], d.pos[e.dst]] for e in d.edges]
    d.engine = "built-in layered layout" + ("" if dot_available() else
                                            " (Graphviz is not installed: apt-get install graphviz)")
    return d


def dot_available() -> bool:
    """Whether Graphviz's ``dot`` program is on the PATH."""
    return shutil.which("dot") is not None


def _bezier(ctrl: list[tuple[float, float]], steps: int = 8) -> list[tuple[float, float]]:
    """Points along a piecewise cubic Bézier spline given as 3k+1 control points (Graphviz's edge splines)."""
    pts = [ctrl[0]]
    for i in range(0, len(ctrl) - 3, 3):
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = ctrl[i:i + 4]
        for k in range(1, steps + 1):
            t = k / steps
            a, b, c, e = (1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t ** 3
            pts.append((a * x0 + b * x1 + c * x2 + e * x3, a * y0 + b * y1 + c * y2 + e * y3))
    return pts


def dot_layout(d: Drawing, *, timeout_s: float = 60.0) -> tuple[dict[str, tuple[float, float]],
                                                                  list[list[tuple[float, float]]]]:
    """Lay ``d`` out with ``dot -Tplain``: box centres and one polyline per edge (splines sampled), y downwards.

    Nodes are passed as ``n0, n1, ...`` (a model's names never reach Graphviz's parser); boxes have fixed sizes
    (:func:`box_size`) so that the figure's boxes are the ones Graphviz routed the edges around.
    """
    ids = {n: f"n{i}" for i, n in enumerate(d.nodes)}
    back = {v: k for k, v in ids.items()}
    lines = ["digraph G {", "rankdir=TB; nodesep=0.25; ranksep=0.4; splines=spline;",
             "node [shape=box, fixedsize=true, label=\"\"];"]
    lines += [f"{ids[n]} [width={w:.3f}, height={h:.3f}];" for n, (w, h) in d.size.items()]
    lines += [f"{ids[e.src]} -> {ids[e.dst]};" for e in d.edges]
    lines.append("}")
    try:
        out = subprocess.run(["dot", "-Tplain"], input="\n".join(lines), capture_output=True, text=True,
                             timeout=timeout_s, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise NbUtilsError(f"Graphviz dot failed: {exc}", "install Graphviz (Debian: apt-get install graphviz) "
                           "or lay out without it: layout.place(drawing, use_dot=False)") from exc
    height = 0.0
    pos: dict[str, tuple[float, float]] = {}
    splines: dict[tuple[str, str], list[list[tuple[float, float]]]] = {}
    for line in out.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "graph":
            height = float(f[3])
        elif f[0] == "node":
            pos[back[f[1]]] = (float(f[2]), height - float(f[3]))
        elif f[0] == "edge":
            n = int(f[3])
            ctrl = [(float(f[4 + 2 * i]), height - float(f[5 + 2 * i])) for i in range(n)]
            splines.setdefault((back[f[1]], back[f[2]]), []).append(_bezier(ctrl))
    paths = []
    for e in d.edges:
        found = splines.get((e.src, e.dst))
        path = found.pop(0) if found else [pos[e.src], pos[e.dst]]
        # from the source box's edge to the target box's edge (dot stops short of the head for its arrowhead)
        paths.append(path)
    return pos, paths


def _segments(path: list[tuple[float, float]]) -> list[tuple[float, float, float, float]]:
    return [(a[0], a[1], b[0], b[1]) for a, b in zip(path, path[1:], strict=False)]


def _cross(s: tuple[float, float, float, float], t: tuple[float, float, float, float]) -> bool:
    """Whether two segments cross at a point inside both (touching ends do not count)."""
    (ax, ay, bx, by), (cx, cy, dx, dy) = s, t
    d1 = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    d2 = (bx - ax) * (dy - ay) - (by - ay) * (dx - ax)
    d3 = (dx - cx) * (ay - cy) - (dy - cy) * (ax - cx)
    d4 = (dx - cx) * (by - cy) - (dy - cy) * (bx - cx)
    return d1 * d2 < 0 and d3 * d4 < 0


def crossings(d: Drawing) -> int:
    """Edge crossings of a placed drawing: points where two edges' paths cross (edges sharing a box excluded)."""
    boxes = [(min(x for x, _ in p), min(y for _, y in p), max(x for x, _ in p), max(y for _, y in p))
             for p in d.paths]
    segs = [_segments(p) for p in d.paths]
    count = 0
    for i in range(len(d.edges)):
        for j in range(i + 1, len(d.edges)):
            a, b = d.edges[i], d.edges[j]
            if {a.src, a.dst} & {b.src, b.dst}:
                continue
            bi, bj = boxes[i], boxes[j]
            if bi[2] < bj[0] or bj[2] < bi[0] or bi[3] < bj[1] or bj[3] < bi[1]:
                continue
            count += sum(_cross(s, t) for s in segs[i] for t in segs[j])
    return count


def edges_through_boxes(d: Drawing, *, margin: float = 0.02) -> list[tuple[DEdge, str]]:
    """(edge, box) pairs where an edge's path enters a box other than its own two (shrunk by ``margin``)."""
    hits = []
    for e, path in zip(d.edges, d.paths, strict=True):
        pts = [path[0]]
        for (x0, y0), (x1, y1) in zip(path, path[1:], strict=False):  # straight parts: test points along them
            k = max(1, int(math.hypot(x1 - x0, y1 - y0) / 0.05))
            pts += [(x0 + (x1 - x0) * t / k, y0 + (y1 - y0) * t / k) for t in range(1, k + 1)]
        for n, (cx, cy) in d.pos.items():
            if n in (e.src, e.dst):
                continue
            w, h = d.size[n]
            if any(abs(x - cx) < w / 2 - margin and abs(y - cy) < h / 2 - margin for x, y in pts):
                hits.append((e, n))
    return hits


def layered_layout(nodes: list[str], edges: list[tuple[str, str]], sweeps: int = 4) -> dict[str, tuple[float, int]]:
    """Positions ``node -> (x, rank)``: rank = longest path from a source (edges go down), x ordered by barycenter.

    Within a rank, nodes sit at integer x positions centred on 0, so no two nodes overlap.
    """
    import networkx as nx

    dg = nx.DiGraph()
    dg.add_nodes_from(nodes)
    dg.add_edges_from(edges)
    if not nx.is_directed_acyclic_graph(dg):
        raise NbUtilsError("the graph has a cycle, so it cannot be drawn top to bottom", "check the ONNX file")
    rank_of = {n: r for r, gen in enumerate(nx.topological_generations(dg)) for n in gen}
    # sources (graph inputs, shape subgraphs) sit just above their first consumer instead of all at the top
    for n in nx.topological_sort(dg.reverse(copy=False)):
        succ = list(dg.successors(n))
        if succ and not list(dg.predecessors(n)):
            rank_of[n] = min(rank_of[x] for x in succ) - 1
    ranks = [[] for _ in range(max(rank_of.values(), default=0) + 1)]
    for n in nodes:
        ranks[rank_of[n]].append(n)
    order = {n: float(i) for gen in ranks for i, n in enumerate(gen)}
    preds = {n: list(dg.predecessors(n)) for n in dg}
    succs = {n: list(dg.successors(n)) for n in dg}
    for sweep in range(sweeps):
        seq = ranks[1:] if sweep % 2 == 0 else ranks[-2::-1]
        neigh = preds if sweep % 2 == 0 else succs
        for gen in seq:
            bary = {n: (sum(order[p] for p in neigh[n]) / len(neigh[n])) if neigh[n] else order[n] for n in gen}
            gen.sort(key=lambda n: bary[n])
            for i, n in enumerate(gen):
                order[n] = float(i)
    pos = {}
    for r, gen in enumerate(ranks):
        offset = (len(gen) - 1) / 2
        for i, n in enumerate(gen):
            pos[n] = (i - offset, r)
    assert all(rank_of[s] < rank_of[d] for s, d in edges)
    return pos


def layer_name_error(g: Graph, name: str) -> NbUtilsError:
    """The error for a node or tensor name the graph does not hold, with close names as hints."""
    words = [w for w in re.split(r"[/._]", name) if w]
    close = [n for n in g.nodes if words and words[-1].lower() in n.lower()][:3]
    hint = f"close matches: {', '.join(close)}" if close else "search a shorter part of the name, e.g. 'MatMul'"
    return NbUtilsError(f"{g.path.name} has no node or tensor matching {name!r}", hint)


def search(g: Graph, query: str) -> list[str]:
    """Nodes matching ``query`` (a name or tensor fragment); an error that helps if none does."""
    found = g.find(query)
    if not found:
        raise layer_name_error(g, query)
    return found


def summary(drawing: Drawing) -> dict[str, Any]:
    """Counts of a drawing (for tests and the notebook's text)."""
    return {"nodes": len(drawing.nodes), "edges": len(drawing.edges), "ranks": drawing.ranks,
            "qdq_glyphs": sum(1 for e in drawing.edges if e.qdq), "layout": drawing.engine}
