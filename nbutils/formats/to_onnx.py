"""ONNX export and ONNX Runtime quantization: every model variant becomes a deployable file.

Each variant is written to ``<run>/onnx/<recipe>/model.onnx`` with ``config.json`` (so Optimum can
load the folder) and a JSON sidecar ``variant.json`` (recipe, source checkpoint, opset, size, sha256,
operator counts). Files are written to a temporary name and renamed, so exporting twice into the same
run folder, or an interrupted export, never leaves a half-written model.

Routes:
* PyTorch → ONNX with ``torch.onnx.export`` (TorchScript exporter, opset ≥ 17, dynamic batch and sequence
  axes). FP32 goes through the *eager* attention path so ONNX Runtime's transformer fusions fire.
* ModelOpt PTQ/QAT → ONNX: the fake-quant modules export as QuantizeLinear/DequantizeLinear pairs
  (symmetric INT8, explicit quantization as TensorRT expects).
* ONNX Runtime's transformer optimizer (fused Attention/SkipLayerNorm/BiasGelu) and its float16 converter.
* Optimum (optimum-onnx): ``ORTQuantizer`` static Q/DQ with ``AutoCalibrationConfig`` and the ``tensorrt`` /
  ``avx512_vnni`` presets, dynamic INT8, and ``ORTOptimizer`` levels O1–O3.
"""

from __future__ import annotations

import contextlib
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nbutils.core import env
from nbutils.core.device import resolve
from nbutils.core.errors import NbUtilsError
from nbutils.core.paths import atomic_path, link_if_identical, write_json
from nbutils.core.quiet import quiet
from nbutils.core.vocab import ORT_CALIBRATORS
from nbutils.formats import files
from nbutils.formats.files import Variant, op_counts

OPSET = 17
MODEL_FILE = "model.onnx"


def qdq_report(path: str | Path) -> dict[str, Any]:
    """Q/DQ statistics: pairs, and how many MatMul/Gemm have a DequantizeLinear feeding each input."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {o: n for n in graph.node for o in n.output}
    inits = {i.name for i in graph.initializer}

    def dq_fed(name: str) -> bool:
        node = producer.get(name)
        hops = 0
        while node is not None and node.op_type in ("Transpose", "Reshape", "Cast") and hops < 3:
            node = producer.get(node.input[0])
            hops += 1
        return node is not None and node.op_type == "DequantizeLinear"

    mm = [n for n in graph.node if n.op_type in ("MatMul", "Gemm")]
    both = sum(all(dq_fed(i) for i in n.input[:2]) for n in mm)
    one = sum(sum(dq_fed(i) for i in n.input[:2]) == 1 for n in mm)
    ops = Counter(n.op_type for n in graph.node)
    return {"QuantizeLinear": ops.get("QuantizeLinear", 0), "DequantizeLinear": ops.get("DequantizeLinear", 0),
            "matmuls": len(mm), "matmuls_int8_both_inputs": both, "matmuls_int8_one_input": one,
            "weight_initializers": len(inits)}


def check(path: str | Path) -> dict[str, Any]:
    """``onnx.checker`` plus shape inference; returns opset, operator counts and Q/DQ counts."""
    import onnx

    from nbutils.formats.files import check_model_file

    check_model_file(path)
    model = onnx.load(str(path))
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=False)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return {"opset": opset, "ops": op_counts(path), **qdq_report(path)}


def _write_variant(tmp_dir: Path, dest_dir: Path, recipe: str, precision: str, meta: dict[str, Any],
                   config_src: Path | None) -> Variant:
    model = tmp_dir / MODEL_FILE
    if config_src is not None and (config_src / "config.json").is_file():
        shutil.copy(config_src / "config.json", tmp_dir / "config.json")
    twin = next((p for p in sorted(dest_dir.parent.glob(f"[!.]*/{MODEL_FILE}"))  # not the temporary folders
                 if p.parent.name != dest_dir.name and link_if_identical(model, p)), None)  # identical: stored once
    info = {"recipe": recipe, "precision": precision,
            "size_mb": sum(p.stat().st_size for p in files.model_files(model)) / 1e6,
            "sha256": files.sha256(model), "versions": env.versions(), **meta}
    if twin is not None:
        info["same_bytes_as"] = twin.parent.name
    info.update({k: v for k, v in check(model).items() if k != "ops"})
    info["ops"] = op_counts(model)
    write_json(tmp_dir / "variant.json", info)
    return Variant(recipe, precision, dest_dir / MODEL_FILE, info)


def export_torch(model: Any, dest_dir: Path, *, recipe: str, precision: str, source: str, task: str,
                 opset: int = OPSET, config_src: Path | None = None, extra: dict[str, Any] | None = None,
                 int8_weights: bool = True) -> Variant:
    """Export a PyTorch model (plain or ModelOpt fake-quant) to ``dest_dir/model.onnx``, atomically.

    ``int8_weights``: a Q/DQ model's weights are stored as INT8 tensors (:func:`store_int8_weights`) and its
    large embedding tables as weight-only INT8 (:func:`store_int8_embeddings`); a float model is left as it is.
    """
    import torch

    from nbutils.training.inputs import synthetic_batch

    if opset < 17:
        raise NbUtilsError(f"opset {opset} is too old", "use opset 17 or newer (LayerNormalization, Q/DQ per-axis)")
    from nbutils.core.device import cpu_copy

    model = cpu_copy(model)  # export from a CPU copy: the file must not depend on where training ran
    feed = {k: torch.as_tensor(v) for k, v in synthetic_batch(2, 16).items()}
    outputs = ["start_logits", "end_logits"] if task == "qa" else ["logits"]
    axes = {k: {0: "batch", 1: "sequence"} for k in feed}
    axes.update({o: {0: "batch"} if task != "qa" else {0: "batch", 1: "sequence"} for o in outputs})
    model.eval()
    with atomic_path(dest_dir, is_dir=True) as tmp, _weights_on_grid(model):
        # TracerWarnings (python values traced as constants) are expected for this exporter; parity checks the
        # file instead. ModelOpt's quantizers print nothing useful here either.
        with torch.no_grad(), quiet(categories=[torch.jit.TracerWarning, UserWarning], loggers=["modelopt"]):
            torch.onnx.export(model, (), str(tmp / MODEL_FILE), kwargs=feed, input_names=list(feed),
                              output_names=outputs, dynamic_axes=axes, opset_version=opset, dynamo=False,
                              do_constant_folding=True)
        folded = store_int8_weights(tmp / MODEL_FILE) if int8_weights else 0
        tables = store_int8_embeddings(tmp / MODEL_FILE) if folded else []
        variant = _write_variant(tmp, dest_dir, recipe, precision,
                                 {"source": source, "task": task, "exporter": "torch.onnx (TorchScript)",
                                  "int8_weights": folded, "int8_embeddings": tables, **(extra or {})}, config_src)
    return variant


def store_int8_weights(path: Path) -> int:
    """Store every Q/DQ-quantized weight as an INT8 initializer read by its DequantizeLinear; returns how many.

    A ModelOpt export keeps the FP32 weight behind ``QuantizeLinear -> DequantizeLinear`` (a Q/DQ file as big as
    FP32's). Replacing ``W -> Q`` by the INT8 tensor ``Q(W)`` computed here (round half to even, saturated, per
    axis as the node says) gives the same numbers at a quarter of the size, in the form TensorRT and ONNX Runtime
    read as INT8 weights. Written here rather than with ModelOpt's ``qdq_to_dq`` because that one (read, not run:
    ``modelopt.onnx`` needs onnx-graphsurgeon, not installed) takes the axis from the op right after the
    DequantizeLinear and expects a MatMul/Gemm/Conv there, while the TorchScript exporter puts a ``Transpose``
    between every ``nn.Linear`` weight's DequantizeLinear and its MatMul; here the axis is the node's own.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    # scales and zero points are Constant nodes in TorchScript exports, initializers in others
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
              if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    consts.update({name: numpy_helper.to_array(i) for name, i in inits.items()
                   if name not in consts and i.data_type != onnx.TensorProto.UNDEFINED and _small(i)})
    drop: list[Any] = []
    new_inits = []
    for q in [n for n in graph.node if n.op_type == "QuantizeLinear"]:
        src = q.input[0]
        if src not in inits:
            continue  # an activation: quantized at run time
        dqs = consumers.get(q.output[0], [])
        if len(q.input) < 3 or q.input[1] not in consts or q.input[2] not in consts or not dqs \
                or any(d.op_type != "DequantizeLinear" for d in dqs):
            continue
        w = numpy_helper.to_array(inits[src]).astype(np.float32)
        scale = consts[q.input[1]].astype(np.float32)
        zp = consts[q.input[2]]
        if zp.dtype != np.int8:
            continue  # only signed INT8 weights (ModelOpt's); anything else stays as exported
        axis = next((a.i for a in q.attribute if a.name == "axis"), 1)
        shape = [1] * w.ndim
        if scale.ndim == 1 and scale.size > 1:
            shape[axis % w.ndim] = scale.size
        q8 = np.clip(np.rint(w / scale.reshape(shape)) + zp.astype(np.float32).reshape(shape), -128, 127)
        name = f"{q.output[0]}_int8_weight"
        new_inits.append(numpy_helper.from_array(q8.astype(np.int8), name))
        for d in dqs:
            d.input[0] = name
        drop.append(q)
    if not drop:
        return 0
    for n in drop:
        graph.node.remove(n)
    graph.initializer.extend(new_inits)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.save(model, str(path))
    return len(new_inits)


def store_int8_embeddings(path: Path, *, min_elements: int = 1 << 20) -> list[str]:
    """Store each large embedding table read by a ``Gather`` as weight-only INT8; returns the tables' names.

    ModelOpt quantizes the inputs and weights of Linear layers, not embeddings, so after
    :func:`store_int8_weights` a BERT file's word-embedding table (30522 x hidden floats, over half of
    all-MiniLM-L6-v2's bytes) is still FP32. Here ``Gather(table, ids)`` becomes
    ``DequantizeLinear(Gather(table_int8, ids), scale, axis=-1)``: symmetric INT8 with one scale per hidden
    feature (per column: after the Gather the feature axis is still the last one, so the scale applies to the
    gathered rows unchanged, and only the looked-up rows are dequantized at run time). Measured on
    all-MiniLM-L6-v2's word embeddings, the relative error is 1.1% per column against 4.3% for one scale.
    Position and token-type tables (below ``min_elements``) stay float. ONNX Runtime's own static and dynamic
    quantizers store their ``Gather`` tables in INT8 too (per tensor).
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    done: list[str] = []
    new_nodes: list[tuple[int, Any]] = []
    for idx, node in enumerate(graph.node):
        if node.op_type != "Gather" or node.input[0] not in inits:
            continue
        init = inits[node.input[0]]
        if init.data_type != onnx.TensorProto.FLOAT or len(init.dims) != 2 or init.dims[0] * init.dims[1] < min_elements:
            continue
        if any(a.name == "axis" and a.i != 0 for a in node.attribute):
            continue
        table = numpy_helper.to_array(init)
        scale = (np.abs(table).max(axis=0) / 127.0).astype(np.float32)
        scale[scale == 0] = 1.0
        codes = np.clip(np.rint(table / scale), -127, 127).astype(np.int8)
        base = init.name
        graph.initializer.remove(init)
        graph.initializer.extend([numpy_helper.from_array(codes, f"{base}_int8"),
                                  numpy_helper.from_array(scale, f"{base}_scale"),
                                  numpy_helper.from_array(np.zeros_like(codes[0]), f"{base}_zero_point")])
        gathered = f"{node.output[0]}_int8"
        out = node.output[0]
        node.input[0] = f"{base}_int8"
        node.output[0] = gathered
        new_nodes.append((idx, helper.make_node("DequantizeLinear", [gathered, f"{base}_scale", f"{base}_zero_point"],
                                                [out], name=f"{node.name or base}_DequantizeLinear", axis=-1)))
        done.append(base)
    for offset, (idx, dq) in enumerate(new_nodes):
        graph.node.insert(idx + 1 + offset, dq)
    if done:
        onnx.save(model, str(path))
    return done


def _small(init: Any) -> bool:
    """An initializer small enough to be a scale or zero point (not a weight matrix)."""
    n = 1
    for d in init.dims:
        n *= d
    return n <= 65536


@contextlib.contextmanager
def _weights_on_grid(model: Any) -> Iterator[None]:
    """Within the block, every weight with an enabled ModelOpt weight quantizer holds its fake-quantized value.

    The exported QuantizeLinear computes ``round(w / scale)`` while ModelOpt's fake quantization computes the same
    rounding through another float expression; for a few weights per matrix (w/scale within an ulp of .5) the two
    round apart, and with every activation quantized such one-step changes cascade: measured on SST-2 (MiniLM,
    872 sentences), ONNX Runtime agreed with its PyTorch model on 99.20% of sentences. Weights already on the grid
    round identically in both (fake quantization is idempotent: the PyTorch model's predictions are unchanged),
    which raised that agreement to 99.66%. The original weights are restored on exit.
    """
    import torch

    saved = []
    with torch.no_grad():
        for mod in model.modules():
            wq = getattr(mod, "weight_quantizer", None)
            weight = getattr(mod, "weight", None)
            if wq is not None and weight is not None and getattr(wq, "is_enabled", False):
                saved.append((weight, weight.detach().clone()))
                weight.copy_(wq(weight))
    try:
        yield
    finally:
        with torch.no_grad():
            for weight, original in saved:
                weight.copy_(original)


def optimize_transformer(src: Variant, dest_dir: Path, *, num_heads: int, hidden_size: int, recipe: str,
                         fp16: bool = False) -> tuple[Variant, dict[str, int]]:
    """ONNX Runtime's transformer optimizer (BERT fusions), optionally then float16 (I/O kept FP32/INT64).

    Returns the variant and the fused-operator counts.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    opt = optimize_model(str(src.path), model_type="bert", num_heads=num_heads, hidden_size=hidden_size)
    fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    if fp16:
        opt.convert_float_to_float16(keep_io_types=True)
    with atomic_path(dest_dir, is_dir=True) as tmp:
        opt.save_model_to_file(str(tmp / MODEL_FILE))
        variant = _write_variant(tmp, dest_dir, recipe, "fp16" if fp16 else "fp32",
                                 {"source": str(src.path), "task": src.meta.get("task"), "fused": fused,
                                  "tool": "onnxruntime.transformers.optimizer" + (" + float16" if fp16 else "")},
                                 src.path.parent)
    return variant, fused


def optimum_optimize(src: Variant, dest_dir: Path, level: str) -> Variant:
    """Optimum's ``ORTOptimizer`` at ``AutoOptimizationConfig`` level O1, O2 or O3 (O4 is FP16 for GPUs)."""
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig

    if level not in ("O1", "O2", "O3", "O4"):
        raise NbUtilsError(f"unknown optimization level {level!r}", "use O1, O2, O3 (CPU) or O4 (GPU, FP16)")
    if level == "O4" and not resolve().is_cuda:
        raise NbUtilsError("level O4 converts to FP16 for GPUs and needs a CUDA device", "use O1-O3 on CPU")
    optimizer = ORTOptimizer.from_pretrained(str(src.path.parent), file_names=[MODEL_FILE])
    config = getattr(AutoOptimizationConfig, level)()
    with atomic_path(dest_dir, is_dir=True) as tmp:
        optimizer.optimize(save_dir=str(tmp), optimization_config=config)
        produced = next(tmp.glob("*.onnx"))
        if produced.name != MODEL_FILE:
            produced.rename(tmp / MODEL_FILE)
        variant = _write_variant(tmp, dest_dir, f"fp32-{level.lower()}", "fp16" if level == "O4" else "fp32",
                                 {"source": str(src.path), "task": src.meta.get("task"), "tool": f"ORTOptimizer {level}"},
                                 src.path.parent)
    return variant


def calibration_dataset(batches: Sequence[dict[str, np.ndarray]], input_names: Sequence[str]) -> Any:
    """Calibration batches as a ``datasets.Dataset`` of model inputs (what Optimum's ``fit`` takes).

    ONNX Runtime's histogram calibrators need one shape for every row, so the rows are padded (right, with the
    pad id 0, mask 0) to the longest calibration sentence, not to ``max_length``: on the embedded set 26 tokens
    instead of 64. Measured there (512 sentences, 2-core EPYC): percentile-99.999 calibration 38.9 s -> 13.0 s,
    and accuracy 93.2 -> 94.2, since padding positions no longer fill the histograms.
    """
    import datasets

    longest = max((int(np.asarray(b["attention_mask"]).sum(1).max()) for b in batches if len(b["attention_mask"])),
                  default=0)
    rows: dict[str, list[Any]] = {n: [] for n in input_names}
    for b in batches:
        for n in input_names:
            arr = np.asarray(b[n])[:, :longest]
            if arr.shape[1] < longest:
                arr = np.pad(arr, ((0, 0), (0, longest - arr.shape[1])))
            rows[n].extend(list(arr))
    if not rows[input_names[0]]:
        raise NbUtilsError("the calibration set is empty", "give calib_samples > 0")
    return datasets.Dataset.from_dict({k: [np.asarray(r).tolist() for r in v] for k, v in rows.items()})




def ort_static(src: Variant, dest_dir: Path, calib: Any, *, calibrator: str = "minmax",
               preset: str = "avx512_vnni") -> Variant:
    """Optimum static quantization (Q/DQ): calibrate ``src`` on ``calib`` and write INT8 Q/DQ.

    Args:
        src: the FP32 variant (plain export, not the fused graph).
        dest_dir: output folder.
        calib: :func:`calibration_dataset`.
        calibrator: ``minmax``, ``entropy``, ``percentile-99.99`` or ``percentile-99.999``.
        preset: ``avx512_vnni`` (CPU: u8 activations, s8 per-channel weights) or ``tensorrt``
            (symmetric s8 activations and weights, as TensorRT requires).

    """
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoCalibrationConfig, AutoQuantizationConfig

    if calibrator not in ORT_CALIBRATORS:
        raise NbUtilsError(f"unknown ONNX Runtime calibrator {calibrator!r}", f"use one of: {', '.join(ORT_CALIBRATORS)}")
    if preset == "tensorrt":
        qconfig = AutoQuantizationConfig.tensorrt(per_channel=True)
    elif preset == "avx512_vnni":
        qconfig = AutoQuantizationConfig.avx512_vnni(is_static=True, per_channel=True)
    else:
        raise NbUtilsError(f"unknown preset {preset!r}", "use 'avx512_vnni' (CPU) or 'tensorrt' (GPU)")
    if calibrator == "minmax":
        ccfg = AutoCalibrationConfig.minmax(calib)
    elif calibrator == "entropy":
        # Optimum's defaults (128 histogram bins, 128 quantized bins) leave ONNX Runtime's KL search a single
        # candidate threshold, the maximum, so "entropy" silently equals minmax (same file, byte for byte, seen
        # here on SST-2). 2048 bins against 128 quantized bins is TensorRT's KL calibration setting.
        ccfg = AutoCalibrationConfig.entropy(calib, num_bins=2048, num_quantized_bins=128)
    else:
        ccfg = AutoCalibrationConfig.percentiles(calib, percentile=float(calibrator.split("-")[1]))
    quantizer = ORTQuantizer.from_pretrained(str(src.path.parent), file_name=MODEL_FILE)
    recipe = f"ort-static-{calibrator}" + ("" if preset == "avx512_vnni" else f"-{preset}")
    with atomic_path(dest_dir, is_dir=True) as tmp:
        # ONNX Runtime's quantization tools log per-tensor notes ("Axis 1 is out-of-range", "consider
        # pre-processing") through the root logger: dozens of lines that say nothing about this model.
        with quiet(loggers=["", "optimum"]):
            ranges = quantizer.fit(dataset=calib, calibration_config=ccfg,
                                   operators_to_quantize=qconfig.operators_to_quantize,
                                   onnx_augmented_model_name=str(tmp / "augmented.onnx"), batch_size=8)
            (tmp / "augmented.onnx").unlink(missing_ok=True)
            quantizer.quantize(quantization_config=qconfig, save_dir=str(tmp), calibration_tensors_range=ranges,
                               file_suffix="")
        produced = next(p for p in tmp.glob("*.onnx"))
        if produced.name != MODEL_FILE:
            produced.rename(tmp / MODEL_FILE)
        variant = _write_variant(tmp, dest_dir, recipe, "int8",
                                 {"source": str(src.path), "task": src.meta.get("task"), "preset": preset,
                                  "calibrator": calibrator, "calib_samples": len(calib), "tool": "optimum ORTQuantizer"},
                                 src.path.parent)
    return variant


def ort_dynamic(src: Variant, dest_dir: Path, *, recipe: str = "ort-dynamic") -> Variant:
    """Dynamic INT8 for CPU (weights INT8 offline, activations quantized per call).

    ``src`` may be the plain export or the fused graph. ONNX Runtime's dynamic quantizer cannot infer
    tensor types through the fused contrib operators (Attention, SkipLayerNormalization), so we give it
    ``DefaultTensorType=FLOAT``. On CPUs without VNNI, ``reduce_range`` (7-bit weights) avoids the u8×s8
    16-bit overflow.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    reduce_range = not env.has_vnni()
    with atomic_path(dest_dir, is_dir=True) as tmp:
        with quiet(loggers=[""]):
            quantize_dynamic(str(src.path), str(tmp / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=reduce_range, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        variant = _write_variant(tmp, dest_dir, recipe, "int8",
                                 {"source": str(src.path), "task": src.meta.get("task"), "reduce_range": reduce_range,
                                  "tool": "onnxruntime.quantization.quantize_dynamic"}, src.path.parent)
    return variant


def verify_variant(dest_dir: str | Path) -> str:
    """Empty if the variant folder holds a valid ONNX file matching its sidecar, else what is wrong with it."""
    return files.verify(dest_dir, MODEL_FILE)


def load_variant(dest_dir: str | Path) -> Variant:
    """Read an ONNX variant written earlier (its sidecar), checking the file is still valid."""
    return files.load(dest_dir, MODEL_FILE)


# ---------------------------------------------------------------------------------------------
# Parity with the PyTorch model a variant came from.

#: Parity thresholds per precision: max |Δ| for FP32, top-1 agreement (%) for FP16/INT8.
PARITY = {"fp32": {"max_abs": 1e-3, "agreement": 99.9}, "fp16": {"agreement": 99.0}, "int8": {"agreement": 95.0}}


def parity(reference: Any, candidate: Any, batches: Sequence[dict[str, np.ndarray]], precision: str) -> dict[str, Any]:
    """Compare two predictors on real inputs: max |Δ|, cosine similarity, top-1 agreement, and a verdict.

    ``reference`` is the PyTorch model the file came from (FP32 for FP32/FP16/ONNX Runtime INT8 routes, the
    ModelOpt fake-quant model for its Q/DQ export).
    """
    from nbutils.training.tasks import model_inputs

    def flat(out: Any) -> np.ndarray:
        if isinstance(out, tuple):
            return np.concatenate([np.asarray(o, np.float64) for o in out], -1)
        return np.asarray(out, np.float64)

    max_abs, dots, n_ref, n_can, agree, total = 0.0, 0.0, 0.0, 0.0, 0, 0
    for b in batches:
        feed = model_inputs(b)
        r, c = flat(reference(feed)), flat(candidate(feed))
        max_abs = max(max_abs, float(np.abs(r - c).max()))
        dots += float((r * c).sum())
        n_ref += float((r * r).sum())
        n_can += float((c * c).sum())
        agree += int((r.argmax(-1) == c.argmax(-1)).sum())
        total += r.shape[0]
    out = {"max_abs_diff": max_abs, "cosine": dots / max(np.sqrt(n_ref * n_can), 1e-30),
           "top1_agreement": 100.0 * agree / max(total, 1)}
    limits = PARITY[precision]
    ok = out["top1_agreement"] >= limits["agreement"]
    if "max_abs" in limits:
        ok = ok and out["max_abs_diff"] <= limits["max_abs"]
    out["parity_ok"] = bool(ok)
    return out
