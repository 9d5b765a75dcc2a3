"""Overlays no viewer has: FP32 vs INT8 diff, per-tensor quantization error, provider placement, interop.

Pairing activations follows the graph (a DequantizeLinear's input comes from a QuantizeLinear whose input is
the FP32 tensor): ONNX Runtime's ``qdq_loss_debug`` pairs tensors by the name suffixes its own quantizer writes
(``_QuantizeLinear_Input``) and does not recognise ModelOpt's exported names, so it cannot be used here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nbutils.core.errors import NbUtilsError
from nbutils.graph.model import Graph, Node
from nbutils.training.metrics import sqnr_db, sqnr_from_sums  # noqa: F401 - sqnr_db is part of this module's interface

#: Compute operators that should see INT8 inputs for an INT8 engine (TensorRT's BERT rules).
COMPUTE_OPS = ("MatMul", "Gemm", "Conv")
WHY_QDQ = ("TensorRT's BERT fusions need Q/DQ before both attention matmuls and before the residual add; "
           "a node without it runs in floating point")


_LAYOUT = ("Transpose", "Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze")


def _from_dq(g: Graph, tensor: str) -> bool:
    """Whether ``tensor`` comes from a DequantizeLinear, possibly through layout-only ops (a transposed weight)."""
    _, stop, _ = g.climb(tensor, lambda n: n.op in _LAYOUT, limit=6)
    return stop is not None and stop.op == "DequantizeLinear"


def _is_residual_add(g: Graph, n: Node) -> bool:
    """An Add whose output feeds a LayerNorm (fused, or decomposed as ReduceMean/Sub) and whose inputs are both activations."""
    if n.op != "Add" or any(i in g.initializers for i in n.inputs):
        return False
    nxt = {g.nodes[c].op for o in n.outputs for c in g.consumers.get(o, [])}
    return bool(nxt & {"LayerNormalization", "ReduceMean", "SkipLayerNormalization"})


@dataclass
class Diff:
    """How an INT8 graph differs from its FP32 source."""

    added: dict[str, int]  # Q/DQ node type -> count added
    guarded: dict[str, int]  # op type -> inputs that now come from a DequantizeLinear
    float_inputs: list[dict[str, str]]  # compute nodes that still take a floating-point input

    def table(self) -> Any:
        """The float-input list as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.float_inputs, columns=["node", "op", "input", "layer", "why it matters"])


def diff(fp32: Graph, int8: Graph) -> Diff:
    """Q/DQ added per operator type, and the compute nodes (MatMul/Gemm, residual Add) left with a float input."""
    count = Counter(n.op for n in int8.nodes.values()) - Counter(n.op for n in fp32.nodes.values())
    added = {op: int(count.get(op, 0)) for op in ("QuantizeLinear", "DequantizeLinear")}
    guarded: Counter[str] = Counter()
    missing = []
    for n in int8.nodes.values():
        check = n.op in COMPUTE_OPS or _is_residual_add(int8, n)
        for i, t in enumerate(n.inputs[:2]):
            if not t:
                continue
            if _from_dq(int8, t):
                guarded[n.op] += 1
            elif check and n.op != "Add" and t in int8.initializers and i == 1:
                missing.append({"node": n.name, "op": n.op, "input": t, "layer": str(n.layer if n.layer is not None else ""),
                                "why it matters": "weight kept in floating point: " + WHY_QDQ})
            elif check and t not in int8.initializers:
                missing.append({"node": n.name, "op": n.op, "input": t, "layer": str(n.layer if n.layer is not None else ""),
                                "why it matters": "activation input without Q/DQ: " + WHY_QDQ})
    return Diff(added, dict(guarded), missing)


@dataclass(frozen=True)
class Pair:
    """A dequantized activation of the INT8 graph and the floating-point tensor it approximates."""

    dq_output: str  # INT8 graph: the DequantizeLinear's output
    source: str  # INT8 graph: the activation before quantization (the QuantizeLinear's input)
    producer: str  # INT8 graph: the node producing ``source`` (coloured by the overlay)
    fp32_tensor: str  # the matching tensor in the reference
    reference: str  # "fp32 file", or "int8 file without Q/DQ" where the FP32 file has no certain match


_WEIGHT_PATH = ("Transpose", "Cast", "Reshape", "Identity", "QuantizeLinear", "DequantizeLinear")


def _is_qdq(g: Graph, node: Node) -> bool:
    """A Q or DQ node, or the Cast a quantizer puts in front of its QuantizeLinear."""
    if node.op in ("QuantizeLinear", "DequantizeLinear"):
        return True
    return node.op == "Cast" and ("quantizer" in node.name or all(
        g.nodes[c].op == "QuantizeLinear" for c in g.consumers.get(node.outputs[0], [])))


def _upstream(g: Graph, tensor: str) -> str:
    """The tensor above any Q/DQ (and a quantizer's Cast) on the way up from ``tensor``."""
    return g.climb(tensor, lambda n: _is_qdq(g, n))[0]


def _is_weight(g: Graph, tensor: str) -> bool:
    """Whether ``tensor`` is a weight: an initializer, possibly through Q/DQ, Transpose, Cast, Reshape."""
    return g.climb(tensor, lambda n: n.op in _WEIGHT_PATH)[0] in g.initializers


def _same_in_fp32(int8: Graph, fp32: Graph, source: str) -> bool:
    """``source`` names the same computation in both files: same producer op and same activation inputs.

    Two exports can number nodes differently (``Transpose_1`` is the key in one file, the value in the other);
    comparing the producer's activation inputs catches that, and such tensors fall back to the Q/DQ-free reference.
    """
    p8, pf = int8.producer.get(source), fp32.producer.get(source)
    if p8 is None or pf is None:
        return source in int8.inputs and source in fp32.inputs
    a, b = int8.nodes[p8], fp32.nodes[pf]
    if a.op != b.op:
        return False
    acts_a = [_upstream(int8, i) for i in a.inputs if i and not _is_weight(int8, i)]
    acts_b = [i for i in b.inputs if i and not _is_weight(fp32, i)]
    return acts_a == acts_b


def pair_activations(int8: Graph, fp32: Graph | None = None) -> tuple[list[Pair], list[str]]:
    """Pair every quantized activation with its floating-point tensor by following the graph.

    INT8 side: DQ output ← Q input ← producing node. Reference side: the same tensor of the FP32 file where it
    names the same computation (ONNX Runtime's quantizer keeps names; ModelOpt's export mostly does), else the
    Q input itself in the INT8 file with its Q/DQ bypassed (:func:`bypass_qdq`). Returns (pairs, sources that
    matched the FP32 file only through the fallback).
    """
    pairs, fallback = [], []
    for dq in int8.nodes.values():
        if dq.op != "DequantizeLinear":
            continue
        q_name = int8.producer.get(dq.inputs[0])
        if q_name is None or int8.nodes[q_name].op != "QuantizeLinear":
            continue  # a weight stored as INT8
        source = _upstream(int8, int8.nodes[q_name].inputs[0])
        if _is_weight(int8, source):
            continue  # a weight quantized at run time (ModelOpt's weight Q/DQ)
        producer = int8.producer.get(source, f"input:{source}")
        if fp32 is not None and _same_in_fp32(int8, fp32, source):
            pairs.append(Pair(dq.outputs[0], source, producer, source, "fp32 file"))
        else:
            fallback.append(source)
            pairs.append(Pair(dq.outputs[0], source, producer, source, "int8 file without Q/DQ"))
    return pairs, fallback


def bypass_qdq(model: Any) -> Any:
    """A copy of an ONNX model with every activation Q/DQ pair removed (consumers read the Q input directly).

    Weight Q/DQ on float initializers is removed too (the weight is FP32 again); INT8-stored weights keep their
    DequantizeLinear (their float values no longer exist), so for such files the overlay shows activation error.
    """
    import copy

    m = copy.deepcopy(model)
    nodes = list(m.graph.node)
    producer = {o: n for n in nodes for o in n.output}
    inits = {i.name for i in m.graph.initializer}
    rename: dict[str, str] = {}
    drop = set()
    for n in nodes:
        if n.op_type != "DequantizeLinear":
            continue
        q = producer.get(n.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        rename[n.output[0]] = q.input[0]
        drop.update({id(n), id(q)})
    def resolve(t: str) -> str:
        seen = 0
        while t in rename and seen < 8:
            t, seen = rename[t], seen + 1
        return t
    kept = [n for n in nodes if id(n) not in drop]
    for n in kept:
        for i, t in enumerate(n.input):
            if t in rename:
                n.input[i] = resolve(t)
    for o in m.graph.output:
        if o.name in rename:
            o.name = resolve(o.name)
    del m.graph.node[:]
    m.graph.node.extend(kept)
    del inits
    return m


def _session_with_outputs(model: Any, names: Sequence[str]) -> Any:
    """An ONNX Runtime CPU session (no graph optimization, so every tensor keeps its name) exposing ``names``."""
    import onnx
    import onnxruntime as ort

    have = {o.name for o in model.graph.output}
    for n in names:
        if n not in have:
            model.graph.output.append(onnx.ValueInfoProto(name=n))
            have.add(n)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


class _Runner:
    def __init__(self, model: Any, names: Sequence[str]) -> None:
        self.session = _session_with_outputs(model, sorted(set(names)))
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {i.name: np.asarray(batch[i.name]) for i in self.session.get_inputs()}
        return dict(zip(self.outputs, self.session.run(None, feed), strict=True))


def tensor_errors(fp32_path: str | Path, int8_path: str | Path, batches: Sequence[Mapping[str, np.ndarray]]) -> Any:
    """SQNR (dB) and relative error of every quantized activation over ``batches`` (ONNX Runtime CPU).

    Each dequantized activation of the INT8 file is compared with its tensor in the FP32 file, or, where the two
    exports name it differently, with the same tensor of the INT8 file run with its Q/DQ bypassed (column
    ``reference`` says which). Returns a DataFrame sorted worst first.
    """
    import onnx
    import pandas as pd

    from nbutils.graph.model import load_graph

    if not batches:
        raise NbUtilsError("no calibration batches for the SQNR overlay", "pass at least one batch of model inputs")
    fp32, int8 = load_graph(fp32_path), load_graph(int8_path)
    pairs, _ = pair_activations(int8, fp32)
    if not pairs:
        raise NbUtilsError(f"{Path(int8_path).name} has no quantized activation (no QuantizeLinear→DequantizeLinear "
                           "on an activation)", "pass a Q/DQ INT8 file (ModelOpt or ONNX Runtime static)")
    q_model = onnx.load(str(int8_path))
    run_q = _Runner(q_model, [p.dq_output for p in pairs])
    run_fp = _Runner(onnx.load(str(fp32_path)), [p.fp32_tensor for p in pairs if p.reference == "fp32 file"])
    fallback = [p.fp32_tensor for p in pairs if p.reference != "fp32 file"]
    run_by = _Runner(bypass_qdq(q_model), fallback) if fallback else None
    sig = np.zeros(len(pairs))
    err = np.zeros(len(pairs))
    for batch in batches:
        out_q, out_fp = run_q.run(batch), run_fp.run(batch)
        out_by = run_by.run(batch) if run_by else {}
        for k, p in enumerate(pairs):
            ref = out_fp if p.reference == "fp32 file" else out_by
            a = np.asarray(ref[p.fp32_tensor], dtype=np.float64)
            b = np.asarray(out_q[p.dq_output], dtype=np.float64)
            if a.shape != b.shape:
                continue
            sig[k] += float(np.sum(a**2))
            err[k] += float(np.sum((a - b) ** 2))
    rows = []
    for k, p in enumerate(pairs):
        sq = sqnr_from_sums(sig[k], err[k])
        rows.append({"tensor": p.source, "producer": p.producer, "reference": p.reference, "sqnr_db": sq,
                     "rel_error": float(np.sqrt(err[k] / sig[k])) if sig[k] > 0 else float("nan")})
    return pd.DataFrame(rows).sort_values("sqnr_db").reset_index(drop=True)


def node_values(errors: Any, column: str = "sqnr_db") -> dict[str, float]:
    """Per producing node, the worst value of ``column`` over its quantized outputs (for the overlay colours)."""
    out: dict[str, float] = {}
    for prod, v in zip(errors["producer"], errors[column], strict=True):
        if np.isfinite(v):
            out[prod] = min(out.get(prod, float("inf")), float(v))
    return out


def providers(path: str | Path, provider: str, feed: Mapping[str, np.ndarray], optimized: str | Path) -> dict[str, str]:
    """Run the file once on ``provider``; returns ``node -> execution provider`` of ONNX Runtime's optimized graph.

    That graph is saved to ``optimized``: the profile names its nodes, not the file's.
    """
    from nbutils.engines.ort_session import make_session, node_providers

    info = make_session(path, provider, enable_profiling=True, optimized_model_path=optimized)
    return {node: ep for node, (_, ep) in node_providers(info, dict(feed)).items()}


def model_explorer_json(values: Mapping[str, float | str], dest: str | Path, *, model: str | Path | None = None,
                        graph_id: str = "main_graph", low_is_bad: bool = True) -> Path:
    """Write per-node values as Google Model Explorer node data (node ids are ONNX node names).

    The file is what Model Explorer loads: its top-level keys are graph ids (the ONNX graph's name, read from
    ``model`` when given, else ``graph_id``), each holding ``results`` (and a ``gradient`` for numbers), as its
    ``ModelNodeData.to_json_string`` writes (a ``{"graphsData": ...}`` wrapper is *not* read by Model Explorer).
    Numbers (e.g. SQNR) get a red-to-green gradient; strings (e.g. the execution provider) get one background
    colour each. Open the ONNX file in Model Explorer and load this file as node data to see the overlay there.
    """
    from nbutils.core.paths import write_json
    from nbutils.graph.view import CATEGORY_COLORS

    numbers = {k: float(v) for k, v in values.items() if not isinstance(v, str) and np.isfinite(v)}
    labels = {k: v for k, v in values.items() if isinstance(v, str)}
    bad, good = "#d73027", "#1a9850"
    results: dict[str, dict[str, Any]] = {name: {"value": v} for name, v in numbers.items()}
    palette = {c: CATEGORY_COLORS[i % len(CATEGORY_COLORS)] for i, c in enumerate(sorted(set(labels.values())))}
    results.update({name: {"value": v, "bgColor": palette[v]} for name, v in labels.items()})
    graph: dict[str, Any] = {"results": results}
    if numbers:
        graph["gradient"] = [{"stop": 0, "bgColor": bad if low_is_bad else good},
                             {"stop": 1, "bgColor": good if low_is_bad else bad}]
    if model is not None:
        import onnx

        # Model Explorer's ONNX adapter names an unnamed main graph "<main>"
        graph_id = onnx.load(str(model), load_external_data=False).graph.name or "<main>"
    return write_json(dest, {graph_id: graph})


def open_in_netron(path: str | Path, port: int = 8081) -> str:
    """Serve ``path`` with Netron on localhost (for users on their own machine); returns the URL.

    Raises:
        NbUtilsError: the ``netron`` package is not installed.

    """
    try:
        import netron
    except ImportError as exc:
        raise NbUtilsError("the netron package is not installed", "pip install netron (optional: every view here "
                                                                  "works without it)") from exc
    netron.start(str(path), address=("127.0.0.1", port), browse=False)
    return f"http://127.0.0.1:{port}/"


def dumps(obj: Any) -> str:
    """Compact JSON for small tables in notebook text."""
    return json.dumps(obj, default=str)
