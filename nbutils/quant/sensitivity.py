"""Which quantizers cost accuracy: per-group sensitivity of a calibrated PTQ model, mixed-precision recipes, FLOP shares.

Everything here switches quantizers of *one* calibrated model on and off (its ranges from notebook 20 are kept;
nothing is recalibrated):

* :func:`groups` cuts the enabled quantizers into groups, one per (encoder block, role); roles are
  :data:`ROLES` (the Q/K/V projections, the inputs of the attention matmuls, the softmax output, the attention
  output projection, FFN in, FFN out, and the residual / LayerNorm inputs). Embeddings and the task head are already
  floating point (``nbutils.quant.DEFAULT_KEEP_FLOAT``) and belong to no group.
* :func:`enabled_only` is the one switch: exactly the given quantizers on, every other enabled quantizer off,
  restored on exit. "Only this group quantized", "only this group float" and "the k most sensitive groups float"
  are three sets passed to it.
* :func:`matmul_sites` lists every MatMul/GEMM of the model with its FLOPs at a sequence length (from the module
  shapes) and the quantizers both of its inputs need; :func:`int8_flop_share` is the share running in INT8 for an
  enabled set. :func:`onnx_int8_flop_share` counts the same from an exported Q/DQ graph (shape inference at that
  length), so the figure of a recipe's ONNX file is checked against its PyTorch model.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbutils.core.errors import NbUtilsError

if TYPE_CHECKING:
    import pandas as pd
    import torch

#: Roles of an encoder block, in data-flow order; a group is (block, role).
ROLES = ("qkv-proj", "attn-qkv", "softmax", "attn-out", "ffn-in", "ffn-out", "residual")

#: Role of a quantizer from its name relative to ``layer.<i>.`` (first match wins).
_ROLE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("qkv-proj", re.compile(r"^attention\.self\.(query|key|value)\.(input|weight)_quantizer$")),
    ("attn-qkv", re.compile(r"^attention\.self\.[qkv]_bmm_quantizer$")),
    ("softmax", re.compile(r"^attention\.self\.softmax_quantizer$")),
    ("attn-out", re.compile(r"^attention\.output\.dense\.(input|weight)_quantizer$")),
    ("ffn-in", re.compile(r"^intermediate\.dense\.(input|weight)_quantizer$")),
    ("ffn-out", re.compile(r"^output\.dense\.(input|weight)_quantizer$")),
    ("residual", re.compile(r"^(attention\.)?output\.LayerNorm\.input_quantizer$")),
)
_LAYER = re.compile(r"(?:^|\.)layer\.(\d+)\.(.+)$")


@dataclass(frozen=True)
class Group:
    """Quantizers of one role in one encoder block (``L3.softmax``)."""

    block: int
    role: str
    quantizers: tuple[str, ...]

    @property
    def name(self) -> str:
        """``L<block>.<role>``."""
        return f"L{self.block}.{self.role}"


def role_of(quantizer: str) -> tuple[int, str] | None:
    """(block, role) of a quantizer name, or ``None`` outside the encoder blocks (embeddings, head)."""
    m = _LAYER.search(quantizer)
    if not m:
        return None
    for role, rule in _ROLE_RULES:
        if rule.match(m.group(2)):
            return int(m.group(1)), role
    return None


def enabled_quantizers(model: torch.nn.Module) -> list[str]:
    """Names of the quantizers enabled in ``model`` (the calibrated PTQ placement)."""
    from nbutils.quant import quantizers

    return [n for n, _ in quantizers(model)]


def groups(model: torch.nn.Module) -> list[Group]:
    """The groups of the enabled quantizers, by block then role (:data:`ROLES` order)."""
    found: dict[tuple[int, str], list[str]] = {}
    for name in enabled_quantizers(model):
        key = role_of(name)
        if key is not None:
            found.setdefault(key, []).append(name)
    if not found:
        raise NbUtilsError("no quantized encoder block found: the model has no enabled quantizer inside layer.<i>",
                           "pass a calibrated PTQ model (notebook 20's checkpoint, quant.load_quantized)")
    return [Group(b, r, tuple(sorted(found[(b, r)]))) for b, r in sorted(found, key=lambda k: (k[0], ROLES.index(k[1])))]


def find_groups(all_groups: Sequence[Group], names: Iterable[str]) -> list[Group]:
    """Groups by name (``L3.softmax``); an unknown name is a clear error listing what exists."""
    index = {g.name: g for g in all_groups}
    out = []
    for name in names:
        if name not in index:
            blocks = sorted({g.block for g in all_groups})
            raise NbUtilsError(f"no group {name!r} in this model",
                               f"groups are L<block>.<role> with blocks {blocks[0]}..{blocks[-1]} and roles "
                               f"{', '.join(ROLES)} (e.g. L{blocks[-1]}.softmax)")
        out.append(index[name])
    return out


@contextlib.contextmanager
def enabled_only(model: torch.nn.Module, names: Iterable[str]) -> Iterator[set[str]]:
    """Within the block, exactly ``names`` are enabled among the model's enabled quantizers; restored on exit.

    Names that are not enabled quantizers of the model are an error (a typo would otherwise measure FP32).
    """
    from nbutils.quant import quantizers

    qs = dict(quantizers(model))
    wanted = set(names)
    unknown = sorted(wanted - set(qs))
    if unknown:
        raise NbUtilsError(f"{len(unknown)} quantizer(s) are not enabled quantizers of this model: {unknown[:3]}",
                           "take names from sensitivity.groups(model)")
    try:
        for name, q in qs.items():
            (q.enable() if name in wanted else q.disable())
        yield wanted
    finally:
        for q in qs.values():
            q.enable()


def only_quantized(model: torch.nn.Module, group: Group) -> contextlib.AbstractContextManager[set[str]]:
    """Only ``group``'s quantizers on."""
    return enabled_only(model, group.quantizers)


def only_float(model: torch.nn.Module, group: Group) -> contextlib.AbstractContextManager[set[str]]:
    """Every enabled quantizer on except ``group``'s."""
    return enabled_only(model, set(enabled_quantizers(model)) - set(group.quantizers))


def keep_float(model: torch.nn.Module, float_groups: Sequence[Group]) -> contextlib.AbstractContextManager[set[str]]:
    """Every enabled quantizer on except those of ``float_groups`` (a mixed-precision recipe)."""
    off = {n for g in float_groups for n in g.quantizers}
    return enabled_only(model, set(enabled_quantizers(model)) - off)


def placement_set(model: torch.nn.Module, placement: str) -> set[str]:
    """The enabled quantizers a named placement (``ffn-only``, ``linear-only``) keeps, on the same calibrated model."""
    from nbutils.quant.placement import _wanted
    from nbutils.quant.recipes import PLACEMENTS

    if placement not in PLACEMENTS:
        raise NbUtilsError(f"unknown placement {placement!r}", f"use one of: {', '.join(PLACEMENTS)}")
    return {n for n in enabled_quantizers(model) if _wanted(n, PLACEMENTS[placement])}


# ---------------------------------------------------------------------------------------------
# FLOPs of every MatMul/GEMM, and the share that runs in INT8.


@dataclass(frozen=True)
class MatMulSite:
    """One matrix product: FLOPs per sequence at a length, and the quantizers both its inputs need for INT8."""

    name: str
    flops: int
    needs: tuple[str, ...]


def matmul_sites(model: torch.nn.Module, seq: int) -> list[MatMulSite]:
    """Every GEMM of a BERT-family model at sequence length ``seq`` (one sequence), from its module shapes.

    Linear layers: ``2·tokens·in·out`` (the pooler and a classification head see one token, the [CLS]); attention:
    ``2·heads·seq²·head_dim`` for Q·Kᵀ (needs the q and k bmm quantizers) and again for softmax·V (needs the
    softmax and v quantizers). Embedding lookups are not GEMMs.
    """
    import torch

    if seq < 1:
        raise NbUtilsError(f"sequence length {seq} is not positive", "use e.g. 128")
    sites = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            tokens = 1 if re.search(r"(^|\.)(pooler|classifier)(\.|$)", name) else seq
            sites.append(MatMulSite(name, 2 * tokens * mod.in_features * mod.out_features,
                                    (f"{name}.input_quantizer", f"{name}.weight_quantizer")))
        elif hasattr(mod, "q_bmm_quantizer") and hasattr(mod, "attention_head_size"):
            per = 2 * mod.num_attention_heads * seq * seq * mod.attention_head_size
            sites.append(MatMulSite(f"{name}.qk", per, (f"{name}.q_bmm_quantizer", f"{name}.k_bmm_quantizer")))
            sites.append(MatMulSite(f"{name}.pv", per, (f"{name}.softmax_quantizer", f"{name}.v_bmm_quantizer")))
    return sites


def int8_flop_share(sites: Sequence[MatMulSite], enabled: Iterable[str]) -> float:
    """Share (0..1) of the GEMM FLOPs whose inputs are both quantized under the ``enabled`` quantizer set."""
    on = set(enabled)
    total = sum(s.flops for s in sites)
    if total == 0:
        raise NbUtilsError("no GEMM found in the model", "pass a BERT-family model")
    return sum(s.flops for s in sites if all(n in on for n in s.needs)) / total


def onnx_int8_flop_share(path: str | Path, seq: int) -> dict[str, float]:
    """GEMM FLOPs of an ONNX file at batch 1 and length ``seq``, and the share with both inputs DequantizeLinear-fed.

    Shapes come from ONNX Runtime's symbolic shape inference with the batch and sequence axes fixed (it evaluates
    the Shape/Reshape arithmetic that ONNX's own inference leaves symbolic).
    """
    import numpy as np
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = onnx.load(str(path))
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        for i, d in enumerate(dims):
            if d.dim_param or d.dim_value <= 0:
                d.ClearField("dim_param")
                d.dim_value = 1 if i == 0 else seq
    inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    shapes: dict[str, list[int]] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = [d.dim_value if d.dim_value > 0 else -1 for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    for init in inferred.graph.initializer:
        shapes[init.name] = list(init.dims)
    producer = {o: n for n in inferred.graph.node for o in n.output}

    def dq_fed(name: str) -> bool:
        node, hops = producer.get(name), 0
        while node is not None and node.op_type in ("Transpose", "Reshape", "Cast") and hops < 3:
            node, hops = producer.get(node.input[0]), hops + 1
        return node is not None and node.op_type == "DequantizeLinear"

    total = int8 = 0
    for node in inferred.graph.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
        if not a or not b or -1 in a or -1 in b:
            raise NbUtilsError(f"shape inference left {node.name or node.op_type} without static shapes",
                               "export with opset 17+ and BERT-family inputs (input_ids, attention_mask, token_type_ids)")
        if node.op_type == "Gemm" and any(a_.name == "transB" and a_.i for a_ in node.attribute):
            b = b[::-1]
        m, k, n = a[-2] if len(a) > 1 else 1, a[-1], b[-1]
        batch = int(np.prod(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))) if max(len(a), len(b)) > 2 else 1
        flops = 2 * batch * m * k * n
        total += flops
        if dq_fed(node.input[0]) and dq_fed(node.input[1]):
            int8 += flops
    if total == 0:
        raise NbUtilsError(f"{path} has no MatMul/Gemm", "pass a transformer's ONNX export")
    return {"gemm_flops": float(total), "int8_flops": float(int8), "int8_share": int8 / total}


# ---------------------------------------------------------------------------------------------
# Measuring sensitivity.


@dataclass
class Score:
    """A validation score and the output SQNR against FP32 (dB), for one quantizer set."""

    metric: float
    sqnr_db: float
    result: Any = None


def scorer(evaluate: Callable[[], Any], fp32_outputs: Any, main: str) -> Callable[[], Score]:
    """Wrap an evaluation (returns :class:`nbutils.training.tasks.EvalResult`) into a :class:`Score` with SQNR vs FP32."""
    from nbutils.training.metrics import sqnr_db

    def run() -> Score:
        res = evaluate()
        return Score(res.metrics[main], sqnr_db(fp32_outputs, res.outputs), res)

    return run


def encoder_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The encoder's blocks in order: the items of the ``ModuleList`` named ``layer`` (``bert.encoder.layer``)."""
    import torch

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and (name == "layer" or name.endswith(".layer")):
            return list(module)
    return []


def _batch_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """A batch's identity inside a forward pass: the shape and bytes of its token ids."""
    ids = kwargs.get("input_ids", args[0] if args else None)
    if ids is None:
        return None
    t = ids.detach().cpu()
    return tuple(t.shape), hash(t.numpy().tobytes())


@contextlib.contextmanager
def _running_batch(model: torch.nn.Module) -> Iterator[list[Any]]:
    """Within the block, ``holder[0]`` is the identity (:func:`_batch_key`) of the batch ``model`` is running."""
    holder: list[Any] = [None]
    hook = model.register_forward_pre_hook(lambda _m, a, k: holder.__setitem__(0, _batch_key(a, k)), with_kwargs=True)
    try:
        yield holder
    finally:
        hook.remove()


@contextlib.contextmanager
def _blocks_recorded(model: torch.nn.Module, blocks: Sequence[torch.nn.Module],
                     store: dict[Any, dict[int, Any]]) -> Iterator[None]:
    """Within the block, every forward pass keeps each encoder block's output in ``store`` (per batch)."""
    with _running_batch(model) as current:
        hooks = [blk.register_forward_hook(lambda _m, _a, out, i=i: store.setdefault(current[0], {}).__setitem__(i, out))
                 for i, blk in enumerate(blocks)]
        try:
            yield
        finally:
            for h in hooks:
                h.remove()


@contextlib.contextmanager
def _blocks_replayed(model: torch.nn.Module, blocks: Sequence[torch.nn.Module], upto: int,
                     store: dict[Any, dict[int, Any]]) -> Iterator[None]:
    """Within the block, encoder blocks before ``upto`` return ``store``'s outputs for the running batch.

    A batch ``store`` does not hold is computed as usual. Restores each block's own ``forward`` on exit.
    """
    stack = contextlib.ExitStack()
    current = stack.enter_context(_running_batch(model))
    patched = []
    for i, blk in enumerate(blocks[:upto]):
        own = blk.__dict__.get("forward")  # an instance-level forward (a library's patch) is put back as it was
        compute = blk.forward

        def forward(*args: Any, _i: int = i, _compute: Callable[..., Any] = compute, **kwargs: Any) -> Any:
            hit = store.get(current[0])
            return hit[_i] if hit is not None and _i in hit else _compute(*args, **kwargs)

        blk.forward = forward
        patched.append((blk, own))
    try:
        yield
    finally:
        stack.close()
        for blk, own in patched:
            if own is None:
                del blk.forward
            else:
                blk.forward = own


def sensitivity_table(model: torch.nn.Module, all_groups: Sequence[Group], score: Callable[[], Score], *,
                      progress: bool = True, on_row: Callable[[dict[str, Any]], None] | None = None,
                      reuse_prefix: bool = True) -> pd.DataFrame:
    """For every group: the score with only that group quantized, and with only that group in floating point.

    Columns: group, block, role, quantizers, metric_quant_alone, sqnr_quant_alone, metric_float_alone,
    sqnr_float_alone. ``on_row`` gets each row as it is measured (live charts).

    ``reuse_prefix``: with only a group of block *b* quantized, blocks 0..b-1 compute exactly what the float
    model computes; with only it float, exactly what the fully quantized model computes. Those two passes are made
    once, each block's output kept per batch (two hidden states per block and sentence: ~6 MB for 64 sentences of
    MiniLM), and every group's passes start at its own block: about 40% less work on a 6-block model, the same
    numbers. (Hand-written: no library here replays a transformer's layers under switched quantizers.)
    """
    import pandas as pd

    from nbutils.core.progress import bar

    blocks = encoder_blocks(model) if reuse_prefix else []
    as_float: dict[Any, dict[int, Any]] = {}
    as_int8: dict[Any, dict[int, Any]] = {}
    if blocks:
        with enabled_only(model, set()), _blocks_recorded(model, blocks, as_float):
            score()
        with _blocks_recorded(model, blocks, as_int8):
            score()
    rows = []
    with bar(total=2 * len(all_groups), desc="sensitivity", disable=not progress) as pbar:
        for g in all_groups:
            upto = g.block if blocks else 0
            with only_quantized(model, g), _blocks_replayed(model, blocks, upto, as_float):
                alone = score()
            pbar.update(1)
            with only_float(model, g), _blocks_replayed(model, blocks, upto, as_int8):
                floated = score()
            pbar.update(1)
            row = {"group": g.name, "block": g.block, "role": g.role, "quantizers": len(g.quantizers),
                   "metric_quant_alone": alone.metric, "sqnr_quant_alone": alone.sqnr_db,
                   "metric_float_alone": floated.metric, "sqnr_float_alone": floated.sqnr_db}
            rows.append(row)
            if on_row:
                on_row(row)
    return pd.DataFrame(rows)


#: Ranking criteria: which measurement orders the groups from most to least sensitive.
RANKINGS = {
    "quant-alone-sqnr": ("sqnr_quant_alone", True),  # lowest SQNR when quantized alone first
    "float-alone-sqnr": ("sqnr_float_alone", False),  # highest SQNR recovered when left float alone first
    "quant-alone-metric": ("metric_quant_alone", True),
    "float-alone-metric": ("metric_float_alone", False),
}


def rank(table: pd.DataFrame, by: str = "quant-alone-sqnr") -> list[str]:
    """Group names from most to least sensitive by a :data:`RANKINGS` criterion (SQNR breaks metric ties)."""
    if by not in RANKINGS:
        raise NbUtilsError(f"unknown ranking {by!r}", f"use one of: {', '.join(RANKINGS)}")
    col, ascending = RANKINGS[by]
    tie = "sqnr_quant_alone" if "quant" in by else "sqnr_float_alone"
    return table.sort_values([col, tie], ascending=[ascending, ascending])["group"].tolist()


def check_k(k: int, n_groups: int) -> None:
    """A clear error for a k outside 0..number of groups."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 0 or k > n_groups:
        raise NbUtilsError(f"k={k!r}: there are {n_groups} groups, so 0..{n_groups} can be left in floating point",
                           f"choose k between 0 and {n_groups}")


def mixed_recipe(ptq_recipe: str, k: int) -> str:
    """Recipe name of the PTQ model with its ``k`` most sensitive groups in floating point (``ptq-max-mixed-k3``)."""
    return f"{ptq_recipe}-mixed-k{k}"


def check_ptq_checkpoint(path: Path, baseline_path: Path) -> dict[str, Any]:
    """The PTQ checkpoint's metadata, or a clear error if it is missing or was calibrated on another baseline."""
    import torch

    from nbutils.core.paths import read_json

    path = Path(path)
    if not (path / "quantizers.pt").is_file():
        raise NbUtilsError(f"no PTQ checkpoint at {path}",
                           "run notebook 20 in this run folder first (same model/data parameters), or set "
                           "ptq_checkpoint to a folder notebook 20 wrote")
    meta = read_json(path / "nbutils.json")
    recorded = meta.get("baseline")
    if recorded and Path(recorded).resolve() != Path(baseline_path).resolve():
        raise NbUtilsError(f"the PTQ checkpoint {path} was calibrated on another baseline ({recorded}), not on "
                           f"{baseline_path}", "use the checkpoint notebook 20 wrote for this baseline (same run "
                                               "folder and parameters)")
    # Fake quantization does not change the weights: a checkpoint of this baseline holds the same ones.
    from safetensors.torch import load_file

    def first_weight(folder: Path) -> torch.Tensor | None:
        files = sorted(Path(folder).glob("*.safetensors"))
        if not files:
            return None
        tensors = load_file(str(files[0]))
        key = next((k for k in sorted(tensors) if k.endswith("classifier.weight") or k.endswith("qa_outputs.weight")),
                   None)
        return tensors[key] if key else None

    mine, theirs = first_weight(path), first_weight(Path(baseline_path))
    if mine is not None and theirs is not None and (mine.shape != theirs.shape or not torch.equal(mine, theirs)):
        raise NbUtilsError(f"the PTQ checkpoint {path} holds other weights than the baseline {baseline_path} "
                           "(its task head differs): it was calibrated on another baseline",
                           "use the checkpoint notebook 20 wrote for this baseline (same run folder and parameters)")
    return meta


# ---------------------------------------------------------------------------------------------
# The peer: ModelOpt's own per-layer search.

#: INT8 format searched by :func:`auto_quantize` per linear layer: per-channel weights, per-tensor inputs (max).
AUTOQ_INT8 = {"quant_cfg": [{"quantizer_name": "*weight_quantizer", "cfg": {"num_bits": 8, "axis": 0}},
                            {"quantizer_name": "*input_quantizer", "cfg": {"num_bits": 8, "axis": None}}],
              "algorithm": "max"}


def auto_quantize(model: torch.nn.Module, batches: Sequence[dict[str, Any]], *, effective_bits: float,
                  score_steps: int, method: str = "gradient") -> tuple[torch.nn.Module, dict[str, Any]]:
    """ModelOpt's ``mtq.auto_quantize`` on a copy of ``model``: INT8 or no quantization per linear layer.

    ModelOpt calibrates every layer, scores each choice (``gradient``: a Taylor estimate of the loss change;
    ``kl_div``: output KL) on ``score_steps`` labelled training batches, and solves for ``effective_bits`` (weight
    bits averaged over the searched layers; a layer left unquantized counts 16). Embeddings, pooler and head stay
    floating point, as in our placement. Returns the quantized copy and a summary (layers kept in INT8 / float).
    """
    import copy

    import modelopt.torch.quantization as mtq

    from nbutils.core.quiet import quiet

    if method not in ("gradient", "kl_div"):
        raise NbUtilsError(f"unknown auto_quantize method {method!r}", "use 'gradient' or 'kl_div'")
    if not 8.0 <= effective_bits <= 16.0:
        raise NbUtilsError(f"effective_bits={effective_bits} is outside 8..16 for an INT8-or-float search",
                           "use e.g. 8.4 (about 95% of the searched weights in INT8)")
    from nbutils.core.device import model_device, to_device

    data = [to_device(b, model_device(model)) for b in batches]
    if not data or "labels" not in data[0]:
        raise NbUtilsError("auto_quantize needs labelled batches", "pass encoded training batches (with labels)")
    work = copy.deepcopy(model).eval()
    with quiet(stdout=True, categories=[UserWarning], loggers=["modelopt"]):
        qmodel, state = mtq.auto_quantize(
            work, constraints={"effective_bits": effective_bits}, quantization_formats=[AUTOQ_INT8], data_loader=data,
            forward_step=lambda m, b: m(**b), loss_func=lambda out, b: out.loss,
            disabled_layers=["*embeddings*", "*classifier*", "*pooler*", "*qa_outputs*"],
            num_calib_steps=len(data), num_score_steps=min(score_steps, len(data)), method=method, verbose=False)
    if hasattr(qmodel, "gradient_checkpointing_disable"):
        qmodel.gradient_checkpointing_disable()
    enabled = enabled_quantizers(qmodel)
    layers = sorted({n.rsplit(".", 1)[0] for n in enabled if n.endswith("input_quantizer")})
    searched = sorted(n for n, _ in qmodel.named_modules()
                      if re.search(r"layer\.\d+\.(.*\.)?dense$|layer\.\d+\.attention\.self\.(query|key|value)$", n))
    return qmodel.eval(), {"int8_layers": layers, "float_layers": sorted(set(searched) - set(layers)),
                           "effective_bits": effective_bits, "method": method,
                           "satisfied": bool(state.get("best", {}).get("is_satisfied", False)),
                           "enabled": enabled}
