"""An ONNX file as a graph of nodes and tensors, with shapes, dtypes and initializer statistics.

Nothing here draws; :mod:`nbutils.graph.layout` and :mod:`nbutils.graph.view` do. Node names are the file's own
(unnamed nodes get ``<op>_<index>``), so overlays computed elsewhere (ONNX Runtime profiles, SQNR pairing,
Model Explorer node data) attach to the same ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nbutils.core.errors import NbUtilsError
from nbutils.formats.files import check_external_data

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
_LAYER = re.compile(r"layers?[._/](\d+)(?=[/._]|$)")

#: Operator families, for colours and the legend.
FAMILIES: dict[str, tuple[str, ...]] = {
    "matmul": ("MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
               "QGemm", "Conv", "Attention", "QAttention", "MultiHeadAttention"),
    "quantize": ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"),
    "normalize": ("LayerNormalization", "SkipLayerNormalization", "EmbedLayerNormalization", "ReduceMean", "Sqrt",
                  "Pow", "Div"),
    "activation": ("Softmax", "Gelu", "BiasGelu", "FastGelu", "Erf", "Tanh", "Relu", "Sigmoid"),
    "elementwise": ("Add", "Mul", "Sub", "Where", "Cast", "Equal", "Not"),
    "shape": ("Reshape", "Transpose", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Expand",
              "ConstantOfShape", "Constant", "Range", "Split", "Flatten"),
    "io": ("Input", "Output"),
    "encoder layer": ("Layer",),  # a collapsed box: one encoder layer
}


def family(op: str) -> str:
    """The family of an operator type (``other`` if none fits)."""
    for fam, ops in FAMILIES.items():
        if op in ops:
            return fam
    return "other"


@dataclass
class Tensor:
    """A tensor's type as shape inference sees it."""

    name: str
    dtype: str = "?"
    shape: tuple[Any, ...] = ()

    def describe(self) -> str:
        """``float32[batch, seq, 384]``."""
        return f"{self.dtype}[{', '.join(str(d) for d in self.shape)}]" if self.shape else self.dtype


@dataclass
class Node:
    """One operator of the file."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def layer(self) -> int | None:
        """The encoder layer this node belongs to (``/bert/encoder/layer.3/...`` → 3), if any."""
        m = _LAYER.search(self.name) or next((_LAYER.search(o) for o in self.outputs if _LAYER.search(o)), None)
        return int(m.group(1)) if m else None


@dataclass
class Graph:
    """Nodes, tensors, initializer statistics and graph inputs/outputs of one ONNX file."""

    path: Path
    nodes: dict[str, Node]
    tensors: dict[str, Tensor]
    initializers: Mapping[str, dict[str, Any]]
    inputs: list[str]
    outputs: list[str]
    producer: dict[str, str] = field(default_factory=dict)
    consumers: dict[str, list[str]] = field(default_factory=dict)
    #: Control-flow bodies (Loop/Scan ``body``, If ``then_branch``/``else_branch``) by ``<node>/<attribute>``.
    bodies: dict[str, Graph] = field(default_factory=dict)
    #: Tensors a body reads from the graph around it (drawn as its inputs; empty for a file's main graph).
    outer: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for node in self.nodes.values():
            for o in node.outputs:
                self.producer[o] = node.name
            for i in node.inputs:
                if i:
                    self.consumers.setdefault(i, []).append(node.name)

    def tensor(self, name: str) -> Tensor:
        """A tensor's type (``?`` if shape inference could not tell)."""
        return self.tensors.get(name) or Tensor(name)

    def qdq_params(self, node: Node) -> dict[str, Any]:
        """Scale and zero point of a Q/DQ node (per-channel: min/median/max of the scales)."""
        out: dict[str, Any] = {}
        for key, idx in (("scale", 1), ("zero_point", 2)):
            if len(node.inputs) > idx and node.inputs[idx] in self.initializers:
                out[key] = self.initializers[node.inputs[idx]]
        if "axis" in node.attrs:
            out["axis"] = node.attrs["axis"]
        return out

    def climb(self, tensor: str, through: Callable[[Node], bool], limit: int = 8) -> tuple[str, Node | None, list[str]]:
        """Follow ``tensor`` up its producers while ``through(producer)`` holds.

        Returns the tensor reached, the producer that stopped the climb (None at an input or initializer), and the
        names of the nodes passed on the way. Q/DQ folding, weight detection and activation pairing all use it.
        """
        passed: list[str] = []
        t = tensor
        for _ in range(limit):
            prod = self.producer.get(t)
            if prod is None:
                return t, None, passed
            node = self.nodes[prod]
            if not through(node):
                return t, node, passed
            passed.append(prod)
            t = node.inputs[0]
        return t, None, passed

    def find(self, query: str) -> list[str]:
        """Node names whose name, or one of whose tensors, contains ``query`` (case-insensitive)."""
        q = query.lower()
        return [n.name for n in self.nodes.values()
                if q in n.name.lower() or any(q in t.lower() for t in (*n.inputs, *n.outputs))]

    def layers(self) -> list[int]:
        """Encoder layer numbers present in the graph."""
        return sorted({n.layer for n in self.nodes.values() if n.layer is not None})

    def all_bodies(self) -> dict[str, Graph]:
        """Every control-flow body, nested ones too, by path (``Loop_0/body/If_2/then_branch``)."""
        out: dict[str, Graph] = {}
        for key, body in self.bodies.items():
            out[key] = body
            out.update({f"{key}/{k}": b for k, b in body.all_bodies().items()})
        return out

    def body(self, path: str) -> Graph:
        """The body at ``path`` (a key of :meth:`all_bodies`); an error naming the ones there are otherwise."""
        found = self.all_bodies()
        if path not in found:
            raise NbUtilsError(f"{self.path.name} has no control-flow body {path!r}",
                               f"open one of: {', '.join(found)}" if found else
                               "this graph has no Loop, If or Scan bodies; open its collapsed or whole view")
        return found[path]


def _stats(arr: np.ndarray) -> dict[str, Any]:
    a = np.asarray(arr)
    info: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype), "size": int(a.size)}
    if a.size and np.issubdtype(a.dtype, np.number):
        f = a.astype(np.float64, copy=False).ravel()
        if a.size == 1:
            info["value"] = float(f[0])
        else:
            info.update(min=float(f.min()), median=float(np.median(f)), max=float(f.max()),
                        mean=float(f.mean()), std=float(f.std()))
    return info


class InitializerStats(Mapping[str, dict[str, Any]]):
    """Initializer name -> statistics (shape, dtype, min/median/max, mean, std), computed on first access.

    Membership is cheap; statistics of a BERT-base weight cost milliseconds each, so only drawn nodes pay.
    """

    def __init__(self, protos: dict[str, Any]) -> None:
        self._protos = protos
        self._done: dict[str, dict[str, Any]] = {}

    def add(self, name: str, stats: dict[str, Any]) -> None:
        """Register a value computed elsewhere (a Constant node's output)."""
        self._done.setdefault(name, stats)

    def __getitem__(self, name: str) -> dict[str, Any]:
        if name not in self._done:
            from onnx import numpy_helper

            self._done[name] = _stats(numpy_helper.to_array(self._protos[name]))
        return self._done[name]

    def __contains__(self, name: object) -> bool:
        return name in self._protos or name in self._done

    def __iter__(self) -> Iterator[str]:
        return iter({**self._protos, **self._done})

    def __len__(self) -> int:
        return len({**self._protos, **self._done})


def load_graph(path: str | Path) -> Graph:
    """Read an ONNX file; a missing, non-ONNX, truncated file or missing external data gets a clear error."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise NbUtilsError(f"ONNX file {path} does not exist", "export it first (notebook 40) or fix the path")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for a bad file
        raise NbUtilsError(f"{path} is not an ONNX model, or it is truncated ({type(exc).__name__})",
                           "pass a .onnx file written by torch.onnx.export / notebook 40; if it was cut off, "
                           "export it again") from exc
    if not model.graph.node:
        raise NbUtilsError(f"{path} holds no graph nodes (an empty or truncated ONNX file)", "export the model again")
    check_external_data(model, path)
    if any(i.HasField("data_location") and i.data_location == onnx.TensorProto.EXTERNAL for i in model.graph.initializer):
        onnx.load_external_data_for_model(model, str(path.parent))
    # Shape inference reads initializer dims, and values only of small ones (shape vectors): weights are left out
    # of the copy it sees (BERT-base: 0.3 s instead of 4 s).
    light = onnx.ModelProto()
    light.CopyFrom(model)
    for init in light.graph.initializer:
        if int(np.prod(init.dims)) > 64:
            for f in ("raw_data", "float_data", "int32_data", "int64_data", "double_data"):
                init.ClearField(f)
    try:
        inferred = onnx.shape_inference.infer_shapes(light)
    except Exception:  # noqa: BLE001 - custom/contrib ops: keep the graph, shapes unknown
        inferred = light
    return _from_proto(model.graph, inferred.graph, path)


def _from_proto(gp: Any, inferred: Any, path: Path, scope: frozenset[str] = frozenset()) -> Graph:
    """A :class:`Graph` from a ``GraphProto`` (``inferred``: the same graph after shape inference, for types).

    Control-flow bodies become :attr:`Graph.bodies`, built the same way; ``scope`` holds the names the graphs
    around a body define, so the tensors it reads from them are known (:attr:`Graph.outer`).
    """
    import onnx
    from onnx import numpy_helper

    tensors: dict[str, Tensor] = {}
    for vi in [*inferred.value_info, *inferred.input, *inferred.output]:
        tt = vi.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name if tt.elem_type else "?"
        shape = tuple((d.dim_param or d.dim_value or "?") for d in tt.shape.dim) if tt.HasField("shape") else ()
        tensors[vi.name] = Tensor(vi.name, dtype, shape)
    inits = InitializerStats({i.name: i for i in gp.initializer})
    for init in gp.initializer:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(init.data_type).name
        tensors.setdefault(init.name, Tensor(init.name, dtype, tuple(init.dims)))
    inferred_nodes = list(inferred.node) if len(inferred.node) == len(gp.node) else list(gp.node)
    defined = {*scope, *(i.name for i in gp.input), *(i.name for i in gp.initializer),
               *(o for n in gp.node for o in n.output)}
    nodes: dict[str, Node] = {}
    bodies: dict[str, Graph] = {}
    for i, (n, ni) in enumerate(zip(gp.node, inferred_nodes, strict=True)):
        name = n.name or f"{n.op_type}_{i}"
        if name in nodes:
            name = f"{name}_{i}"
        attrs = {}
        for a, ai in zip(n.attribute, ni.attribute, strict=True):
            if a.type == onnx.AttributeProto.GRAPH:
                bodies[f"{name}/{a.name}"] = _from_proto(a.g, ai.g, path, frozenset(defined))
                attrs[a.name] = f"subgraph: {len(a.g.node)} nodes (view 'body {name}/{a.name}')"
                continue
            value = onnx.helper.get_attribute_value(a)
            if isinstance(value, bytes):
                value = value.decode(errors="replace")
            if isinstance(value, onnx.TensorProto):
                arr = numpy_helper.to_array(value)
                value = _stats(arr)
                for o in n.output:
                    inits.add(o, value)  # Constant nodes: their value is an initializer for display
            attrs[a.name] = str(value)[:200]
        nodes[name] = Node(name, n.op_type, list(n.input), list(n.output), attrs)
    init_names = set(inits)
    graph_inputs = [i.name for i in gp.input if i.name not in init_names]
    own = {*graph_inputs, *init_names, *(o for n in gp.node for o in n.output)}
    outer = sorted({t for n in gp.node for t in n.input if t and t not in own and t in scope})
    return Graph(path, nodes, tensors, inits, graph_inputs + outer, [o.name for o in gp.output],
                 bodies=bodies, outer=outer)
