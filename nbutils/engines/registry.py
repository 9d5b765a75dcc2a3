"""What each engine name means: the specs, CPU/GPU defaults, ladders, grid validation, the engine of a file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nbutils.core.device import Device, resolve
from nbutils.core.errors import NbUtilsError
from nbutils.core.vocab import engine_name


@dataclass(frozen=True)
class EngineSpec:
    """What an engine name means."""

    name: str  # the full engine name: also its identity in the results database (nbutils.core.vocab)
    runtime: str  # torch-eager, torch-compile, torch-fp8, ort-cpu, ort-cuda, ort-trt, ov-cpu
    precision: str  # fp32, tf32, fp16, bf16, fp8, int8
    recipe: str  # fp32, fp16, ptq-..., ort-dynamic, ort-static-..., fp8
    device: str  # cpu or cuda
    option: str = ""
    description: str = ""


def _spec(name: str, recipe: str, device: str, description: str) -> EngineSpec:
    from nbutils.core.vocab import option_of, runtime_of

    precision = name.split(":")[1].split("-")[0]
    return EngineSpec(name, runtime_of(name), precision, recipe, device, option_of(name), description)


ENGINES: dict[str, EngineSpec] = {s.name: s for s in [
    _spec("torch-eager:fp32", "fp32", "auto", "PyTorch eager, FP32 (CPU, or CUDA without TF32)"),
    _spec("torch-eager:tf32", "fp32", "cuda", "PyTorch eager, TF32 matmuls"),
    _spec("torch-eager:fp16", "fp16", "cuda", "PyTorch eager, FP16 weights and activations"),
    _spec("torch-eager:bf16", "bf16", "cuda", "PyTorch eager, BF16"),
    _spec("torch-compile:fp32", "fp32", "auto", "torch.compile (inductor), FP32 (CPU or GPU)"),
    _spec("torch-compile:fp16", "fp16", "cuda", "torch.compile (inductor), FP16"),
    _spec("torch-compile:fp16:cudagraphs", "fp16", "cuda", "torch.compile mode=reduce-overhead (CUDA graphs), FP16"),
    _spec("torch-compile:bf16:cudagraphs", "bf16", "cuda", "torch.compile mode=reduce-overhead (CUDA graphs), BF16"),
    _spec("torch-fp8:fp8", "fp8", "auto", "FP8 e4m3 linears via torch._scaled_mm (row-wise scales), BF16 elsewhere"),
    _spec("torch-fp8:fp8:cudagraphs", "fp8", "cuda", "FP8 linears + torch.compile reduce-overhead (CUDA graphs)"),
    _spec("torch-fp8:fp8-static", "fp8-static", "auto", "FP8 linears, static per-tensor scales from calibration"),
    _spec("torch-fp8:fp8-static:cudagraphs", "fp8-static", "cuda",
          "FP8 linears, static per-tensor scales, torch.compile reduce-overhead (CUDA graphs)"),
    _spec("ort-cpu:fp32", "fp32", "cpu", "ONNX Runtime CPU, plain FP32 export (ORT's own graph optimizations)"),
    _spec("ort-cpu:fp32-fused", "fp32-fused", "cpu", "ONNX Runtime CPU, transformer-optimized FP32 graph"),
    _spec("ort-cpu:int8-dynamic", "ort-dynamic", "cpu", "ONNX Runtime CPU, dynamic INT8 (quantize, then ORT optimizes)"),
    _spec("ort-cpu:int8-dynamic-fused", "ort-dynamic-fused", "cpu",
          "ONNX Runtime CPU, dynamic INT8 of the fused graph (QAttention)"),
    _spec("ort-cpu:int8-static", "ort-static-minmax", "cpu", "ONNX Runtime CPU, Optimum static INT8 Q/DQ"),
    _spec("ort-cpu:int8-qdq", "ptq", "cpu", "ONNX Runtime CPU, ModelOpt PTQ Q/DQ INT8"),
    _spec("ort-cuda:fp32", "fp32-fused", "cuda", "ONNX Runtime CUDA, fused FP32, IOBinding"),
    _spec("ort-cuda:fp16", "fp16", "cuda", "ONNX Runtime CUDA, fused FP16, IOBinding"),
    _spec("ort-cuda:fp16:cudagraph", "fp16", "cuda", "ONNX Runtime CUDA, fused FP16, IOBinding + CUDA graph"),
    _spec("ort-cuda:int8-qdq", "ptq", "cuda", "ONNX Runtime CUDA, ModelOpt Q/DQ (runs as float + extra work: not INT8 speed)"),
    _spec("ort-trt:fp16", "fp16", "cuda", "ONNX Runtime TensorRT, FP16, engine cache, explicit profiles"),
    _spec("ort-trt:int8", "ptq", "cuda", "ONNX Runtime TensorRT, INT8 from ModelOpt Q/DQ (explicit quantization)"),
    _spec("ort-ov:fp32", "fp32", "cpu", "ONNX Runtime with the OpenVINO execution provider (plugin), the FP32 export, f32"),
    _spec("ort-ov:int8", "ptq", "cpu",
          "ONNX Runtime with the OpenVINO execution provider, a ModelOpt Q/DQ INT8 file (OpenVINO's INT8 kernels)"),
    _spec("ov-cpu:fp32", "fp32", "cpu", "OpenVINO CPU, the FP32 export as IR, FP32 inference precision, latency hint"),
    _spec("ov-cpu:int8", "nncf-ptq", "cpu", "OpenVINO CPU, NNCF post-training INT8 (transformer preset), latency hint"),
    _spec("ov-cpu:int8:throughput", "nncf-ptq", "cpu",
          "OpenVINO CPU, NNCF INT8, throughput hint: the batch split over the plugin's parallel requests"),
]}

CPU_DEFAULT = ["torch-eager:fp32", "ort-cpu:fp32", "ort-cpu:fp32-fused", "ort-cpu:int8-dynamic",
               "ort-cpu:int8-dynamic-fused", "ort-cpu:int8-static", "ort-cpu:int8-qdq", "ort-ov:int8", "ov-cpu:fp32",
               "ov-cpu:int8"]
#: Ablation ladders (notebook 60, :func:`nbutils.report.tables.ladder`): each step changes what its note says relative to
#: the step above, so the ratio between neighbours, timed in one run, is what that change bought.
LADDERS: dict[str, list[tuple[str, str]]] = {
    "CPU: ONNX Runtime": [
        ("torch-eager:fp32", "PyTorch eager FP32 (the reference)"),
        ("ort-cpu:fp32", "the same FP32 graph in ONNX Runtime (its own graph optimizations)"),
        ("ort-cpu:fp32-fused", "+ transformer fusions (Attention, SkipLayerNorm, BiasGelu)"),
        ("ort-cpu:int8-dynamic-fused", "+ INT8 linears and attention (dynamic activation scales)"),
    ],
    "GPU: PyTorch": [
        ("torch-eager:bf16", "PyTorch eager BF16 (SDPA attention)"),
        ("torch-compile:bf16:cudagraphs", "+ torch.compile (inductor fusions) and CUDA graphs"),
        ("torch-fp8:fp8:cudagraphs", "+ FP8 linears (row-wise dynamic scales), BF16 elsewhere"),
        ("torch-fp8:fp8-static:cudagraphs", "+ static per-tensor FP8 scales (input quantization fused upstream)"),
    ],
    "GPU: ONNX Runtime": [
        ("ort-cuda:fp32", "ONNX Runtime CUDA, fused FP32"),
        ("ort-cuda:fp16", "+ FP16"),
        ("ort-cuda:fp16:cudagraph", "+ CUDA graph (one launch per call)"),
    ],
}
#: Every GPU engine (``python -m nbutils bench --engines gpu-all``, ``tools/gpu.sh bench``).
GPU_ALL = ["torch-eager:fp32", "torch-eager:tf32", "torch-eager:fp16", "torch-eager:bf16", "torch-compile:fp16",
           "torch-compile:fp16:cudagraphs", "torch-compile:bf16:cudagraphs", "torch-fp8:fp8",
           "torch-fp8:fp8:cudagraphs", "torch-fp8:fp8-static:cudagraphs", "ort-cuda:fp32", "ort-cuda:fp16",
           "ort-cuda:fp16:cudagraph", "ort-cuda:int8-qdq", "ort-trt:fp16", "ort-trt:int8"]
#: The GPU engines a notebook times by default: one of each kind. Each torch.compile engine compiles every shape
#: from a fresh state (20-60 s each), so the notebook keeps the best compiled BF16 and FP8 ones; GPU_ALL has the rest.
GPU_DEFAULT = ["torch-eager:fp32", "torch-eager:fp16", "torch-compile:bf16:cudagraphs",
               "torch-fp8:fp8-static:cudagraphs", "ort-cuda:fp32", "ort-cuda:fp16", "ort-cuda:fp16:cudagraph",
               "ort-cuda:int8-qdq", "ort-trt:fp16", "ort-trt:int8"]


def default_engines(full: bool = False, device: Device | None = None) -> list[str]:
    """The default engine list for ``device`` (resolved from ``auto`` if None).

    GPU engines only on CUDA; ``full``: all of them.
    """
    on_gpu = (device if device is not None else resolve()).is_cuda
    return (GPU_ALL if full else GPU_DEFAULT) + CPU_DEFAULT[1:] if on_gpu else list(CPU_DEFAULT)


#: Files later notebooks read whatever the engines: notebook 42 converts and runs the QAT files, 45 and 70 use them.
READ_BY_NOTEBOOKS = ("fp32", "ptq", "qat", "qat-kd")


def recipes_read(device: Device | None = None) -> set[str]:
    """The ONNX recipes a run's later notebooks read on ``device``: what notebook 40 keeps by default.

    Every engine that can run there (its recipe; ``ptq`` stands for the run's PTQ file), and
    :data:`READ_BY_NOTEBOOKS`. Other files (Optimum's levels, the other ONNX Runtime calibrators, FP16 on a CPU) are
    measured by notebook 40 and then not kept unless asked (``keep_all_files``).
    """
    on_gpu = (device if device is not None else resolve()).is_cuda
    return {s.recipe for s in ENGINES.values() if on_gpu or s.device in ("cpu", "auto")} | set(READ_BY_NOTEBOOKS)


def validate_grid(engines: Sequence[str], batch_sizes: Sequence[int], seq_lengths: Sequence[int],
                  max_positions: int = 512, *, warmup: int = 0, iterations: int = 1) -> None:
    """Clear errors for a bad grid, before any work starts (no model loaded, no folder created)."""
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise NbUtilsError(f"unknown engine(s) {unknown}",
                           f"use names from nbutils.engines.ENGINES, e.g. {', '.join(CPU_DEFAULT[:3])}")
    if not engines:
        raise NbUtilsError("no engines selected", "list at least one engine")
    bad_b = [b for b in batch_sizes if not isinstance(b, int) or b < 1]
    if bad_b or not batch_sizes:
        raise NbUtilsError(f"invalid batch size(s) {bad_b or batch_sizes}", "use positive integers, e.g. [1, 8]")
    bad_s = [s for s in seq_lengths if not isinstance(s, int) or s < 2 or s > max_positions]
    if bad_s or not seq_lengths:
        raise NbUtilsError(f"sequence length(s) {bad_s or seq_lengths} outside 2..{max_positions} (the model's maximum)",
                           f"use lengths up to {max_positions}, e.g. [128]")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise NbUtilsError(f"iterations={iterations!r}: nothing would be timed", "use at least 1 (e.g. 100)")
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise NbUtilsError(f"warmup={warmup!r} is not a count", "use 0 or more (e.g. 10)")


def engine_for_file(runtime: str, recipe: str, precision: str) -> str:
    """The engine name that runs a recipe's file on ``runtime`` (``ort-cpu`` + ``ort-dynamic`` → ``ort-cpu:int8-dynamic``).

    Engines and the recipe each runs are declared once, in :data:`ENGINES`; a file no engine
    declares (e.g. ``fp32-o1``) runs on ``<runtime>:<precision>``.
    """
    for name, spec in ENGINES.items():
        if spec.runtime != runtime or spec.option:
            continue
        if spec.recipe == recipe or (spec.recipe == "ptq" and recipe.startswith(("ptq-", "qat"))):
            return name
        if runtime == "ov-cpu" and spec.precision == precision == "int8":
            return name  # every INT8 IR (NNCF's, or a ModelOpt Q/DQ file converted) runs on ov-cpu:int8
    return engine_name(runtime, precision)
