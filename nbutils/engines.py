"""Benchmark engines behind one interface, and the grid that times them.

An engine is named ``<engine>:<precision>[:<option>]``, e.g. ``torch-eager:fp32``, ``torch-compile:fp16:cudagraphs``,
``ort-cpu:int8-dynamic``, ``ort-cuda:fp16:cudagraph``, ``ort-trt:int8``, ``torch-fp8:fp8``, ``ov-cpu:int8``. :data:`ENGINES` lists
them all with what each needs. Every engine:

* says why it cannot run here (:meth:`Engine.unavailable`), so the grid lists it with the reason and skips it;
* builds its model or session once (:meth:`Engine.setup`), exporting ONNX files it needs through :class:`Assets`;
* returns a zero-argument call with inputs already in place for one (batch, seq) shape (:meth:`Engine.bind`);
  GPU calls are timed with CUDA events around each call (host-device copies *excluded*: inputs live on the
  device, as with IOBinding), CPU calls with a wall clock;
* can act as a predictor for accuracy (:meth:`Engine.predictor`, notebook 70).
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nbutils import env
from nbutils.errors import NbUtilsError
from nbutils.timing import LatencyStats, time_callable, time_cuda


@dataclass(frozen=True)
class EngineSpec:
    """What an engine name means."""

    name: str  # the full engine name: also its identity in the results database (nbutils.vocab)
    runtime: str  # torch-eager, torch-compile, torch-fp8, ort-cpu, ort-cuda, ort-trt, ov-cpu
    precision: str  # fp32, tf32, fp16, bf16, fp8, int8
    recipe: str  # fp32, fp16, ptq-..., ort-dynamic, ort-static-..., fp8
    device: str  # cpu or cuda
    option: str = ""
    description: str = ""

    @property
    def engine(self) -> str:
        """The engine's identity in the results database, CSV files, tables and charts: its full name."""
        return self.name


def _spec(name: str, recipe: str, device: str, description: str) -> EngineSpec:
    from nbutils.vocab import option_of, runtime_of

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
#: Ablation ladders (notebook 60, :func:`nbutils.report.ladder`): each step changes what its note says relative to
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


def default_engines(full: bool = False) -> list[str]:
    """The default engine list for this machine (GPU engines only where a GPU is visible; ``full``: all of them)."""
    return (GPU_ALL if full else GPU_DEFAULT) + CPU_DEFAULT[1:] if env.gpu_name() else list(CPU_DEFAULT)


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


# ---------------------------------------------------------------------------------------------
# Model assets: the PyTorch model and the ONNX files, exported on demand into one folder.


@dataclass
class Assets:
    """Everything engines need for one model, built lazily and cached in ``folder``.

    Args:
        model: model spec or checkpoint folder.
        folder: where ONNX files go (``<run>/bench/<model>``); files already there (e.g. from notebook 40) are reused.
        task: ``classification`` or ``qa``.
        num_labels: classes of the classification head.
        calib: calibration batches for ModelOpt PTQ and Optimum static quantization.
        ptq_model: an already-quantized ModelOpt model (e.g. notebook 20's best); else calibrated here with
            ``percentile-99.99`` on ``calib``.
        onnx_dirs: recipe -> existing variant folder (notebook 40's; its ``openvino/`` IR from notebook 42) to
            reuse instead of exporting.
        nncf: NNCF options for an ``nncf-ptq`` IR built here (``None``: NNCF's transformer defaults).

    """

    model: str
    folder: Path
    task: str = "classification"
    num_labels: int = 2
    calib: list[dict[str, np.ndarray]] = field(default_factory=list)
    ptq_model: Any = None
    onnx_dirs: dict[str, Path] = field(default_factory=dict)
    nncf: Any = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def torch_model(self, attn: str = "sdpa") -> Any:
        """The FP32 PyTorch model (cached)."""
        from nbutils.models import load_model

        key = f"torch-{attn}"
        if key not in self._cache:
            self._cache[key] = load_model(self.model, task=self.task, num_labels=self.num_labels, attn_implementation=attn)
        return self._cache[key]

    def quantized(self) -> Any:
        """The ModelOpt PTQ model (given, or calibrated here)."""
        from nbutils import quant

        if self.ptq_model is None:
            if not self.calib:
                raise NbUtilsError("INT8 Q/DQ engines need calibration batches or a PTQ model",
                                   "pass calib (training batches) or ptq_model to Assets")
            self.ptq_model, _ = quant.quantize_ptq(self.torch_model(), self.calib, quant.Recipe("percentile-99.99"))
        return self.ptq_model

    def onnx(self, recipe: str) -> Path:
        """Path of the ONNX variant ``recipe``, exported on first use.

        Recipes: fp32, fp32-fused, fp16, ort-dynamic, ort-dynamic-fused, ort-static-<calibrator>, ptq.
        """
        from nbutils import export

        given = Path(self.onnx_dirs[recipe]) if recipe in self.onnx_dirs else None
        if given is not None and (given / export.MODEL_FILE).is_file():
            problem = export.verify_variant(given)
            if not problem:
                return given / export.MODEL_FILE
            print(f"warning: {problem}; exporting a fresh copy into {self.folder / recipe} (delete {given} to rebuild "
                  "it there)")
        dest = self.folder / recipe
        if (dest / "variant.json").is_file():
            problem = export.verify_variant(dest)
            if not problem:
                return export.load_variant(dest).path
            print(f"warning: {problem}; rebuilding it")
        cfg = self.torch_model().config
        if recipe == "fp32":
            v = export.export_torch(self.torch_model("eager"), dest, recipe="fp32", precision="fp32", source=self.model,
                                    task=self.task)
        elif recipe in ("fp32-fused", "fp16"):
            src = export.load_variant(self.onnx("fp32").parent)
            v, _ = export.optimize_transformer(src, dest, num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size,
                                               recipe=recipe, fp16=recipe == "fp16")
        elif recipe == "ort-dynamic":
            v = export.ort_dynamic(export.load_variant(self.onnx("fp32").parent), dest)
        elif recipe == "ort-dynamic-fused":
            v = export.ort_dynamic(export.load_variant(self.onnx("fp32-fused").parent), dest, recipe="ort-dynamic")
        elif recipe.startswith("ort-static-"):
            from nbutils.sessions import make_session

            src = export.load_variant(self.onnx("fp32").parent)
            ds = export.calibration_dataset(self.calib, make_session(src.path).input_names)
            v = export.ort_static(src, dest, ds, calibrator=recipe.removeprefix("ort-static-"))
        elif recipe == "ptq":
            v = export.export_torch(self.quantized(), dest, recipe="ptq", precision="int8", source=self.model, task=self.task)
        else:
            raise NbUtilsError(f"no ONNX route for recipe {recipe!r}", "see nbutils.engines.Assets.onnx")
        return v.path

    def openvino(self, recipe: str) -> Path:
        """Folder of the OpenVINO IR of ``recipe`` (``fp32``, ``nncf-ptq``, or any ONNX recipe), built on first use.

        Notebook 42's IRs (``<run>/onnx/<recipe>/openvino``) are reused when they verify; ``nncf-ptq`` is built
        here from the FP32 IR with ``calib`` (NNCF's transformer preset, or ``nncf``'s options).
        """
        from nbutils import ov

        given = Path(self.onnx_dirs[recipe]) / ov.IR_FOLDER if recipe in self.onnx_dirs else None
        if given is not None and (given / ov.IR_FILE).is_file():
            problem = ov.verify_ir(given)
            if not problem:
                return given
            print(f"warning: {problem}; converting a fresh copy into {self.folder / recipe}")
        dest = self.folder / recipe / ov.IR_FOLDER
        if (dest / "variant.json").is_file():
            problem = ov.verify_ir(dest)
            if not problem:
                return dest
            print(f"warning: {problem}; rebuilding it")
        if recipe == "nncf-ptq":
            if not self.calib:
                raise NbUtilsError("the nncf-ptq IR needs calibration batches", "pass calib (training batches) to Assets")
            ov.nncf_ptq(self.openvino("fp32"), self.calib, dest, options=self.nncf)
        elif recipe.startswith("nncf-"):
            raise NbUtilsError(f"no IR for {recipe!r} in this run", "run notebook 42 (it trains and converts it)")
        else:
            path = self.onnx(recipe)
            from nbutils.export import load_variant

            ov.convert_onnx(path, dest, recipe=recipe, precision=load_variant(path.parent).precision)
        return dest


# ---------------------------------------------------------------------------------------------
# Engines.

_TORCH_DTYPES = {"fp32": "float32", "tf32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp8": "bfloat16"}


class Engine:
    """One way to run the model. Subclasses implement setup, bind and predictor."""

    def __init__(self, spec: EngineSpec, assets: Assets, *, threads: int = 0, cache_dir: Path | None = None,
                 profile: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None = None,
                 recipe: str = "") -> None:
        self.spec = spec
        self._recipe = recipe  # the recipe recorded when the file is another variant (e.g. a mixed-precision PTQ)
        self.assets = assets
        self.threads = threads
        self.cache_dir = cache_dir
        self.profile = profile
        self.extra: dict[str, Any] = {"engine_name": spec.name, "description": spec.description}
        self.device = "cuda" if (spec.device == "cuda" or (spec.device == "auto" and env.gpu_name())) else "cpu"
        self.extra["device"] = self.device
        self.cell_extra: dict[str, Any] = {}  # figures of the last timed cell (e.g. dynamo counters)

    @property
    def recipe(self) -> str:
        """Recipe recorded with this engine's figures (the spec's, unless the engine was given another)."""
        return self._recipe or self.spec.recipe

    def unavailable(self) -> str:
        """Empty if the engine can run here, else why not."""
        if self.device == "cuda":
            cap = env.torch_cuda_status()
            if not cap.usable:
                return f"needs a CUDA GPU: {cap.reason}"
        return ""

    def setup(self) -> None:
        """Build the model or session (once)."""

    def bind(self, batch: int, seq: int) -> Callable[[], Any]:
        """A zero-argument call running one batch of shape (batch, seq), inputs already placed."""
        raise NotImplementedError

    def sync(self) -> Callable[[], None] | None:
        """GPU synchronisation for timing, or None on CPU."""
        return None

    def predictor(self) -> Callable[[dict[str, np.ndarray]], Any]:
        """Predictor for accuracy measurement."""
        raise NotImplementedError

    def release(self) -> None:
        """Drop the built model/session (and with them their thread pools); :meth:`setup` builds them again.

        :func:`run_grid` calls it after an engine's last cell: measured here (2-core EPYC, BERT-base, seq 128), an
        engine timed after others whose sessions were still alive ran up to 1.6x slower than when timed first.
        """
        for name in ("_model", "_eager", "_info", "_compiled", "_keep", "_bound"):
            if name in self.__dict__:
                setattr(self, name, None)
        import gc

        gc.collect()

    def time(self, batch: int, seq: int, *, warmup: int, iterations: int) -> LatencyStats:
        """Warm up, then time ``iterations`` calls (CUDA events on GPU, wall clock on CPU)."""
        call = self.bind(batch, seq)
        if self.device == "cuda":
            return time_cuda(call, batch=batch, warmup=warmup, iterations=iterations)
        return time_callable(call, batch=batch, warmup=warmup, iterations=iterations)


class TorchEngine(Engine):
    """PyTorch eager / torch.compile (optionally CUDA graphs) / FP8 linears."""

    def unavailable(self) -> str:
        reason = super().unavailable()
        if reason:
            return reason
        if self.spec.runtime == "torch-compile" and self.device == "cpu" and self.spec.precision != "fp32":
            return f"{self.spec.precision} torch.compile engines are GPU engines (torch-compile:fp32 runs on CPU)"
        if self.spec.precision == "fp8" and self.device == "cuda":
            import torch

            major, minor = torch.cuda.get_device_capability()
            if (major, minor) < (8, 9):
                return f"FP8 tensor cores need compute capability 8.9+ (this GPU: {major}.{minor})"
        return ""

    def setup(self) -> None:
        import torch

        if getattr(self, "_model", None) is not None:
            return
        model = copy.deepcopy(self.assets.torch_model())
        dtype = getattr(torch, _TORCH_DTYPES[self.spec.precision])
        if self.device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = self.spec.precision == "tf32"
            torch.backends.cudnn.allow_tf32 = self.spec.precision == "tf32"
            model = model.to("cuda", dtype=dtype)
        if self.spec.precision == "fp8":
            from nbutils.fp8 import convert_to_fp8

            if self.device == "cpu":
                model = model.to(torch.float32)
            act = None
            if "static" in self.spec.recipe:
                from nbutils.fp8 import calibrate_activations

                if not self.assets.calib:
                    raise NbUtilsError("static FP8 needs calibration batches", "pass calib to Assets")
                act = calibrate_activations(model, self.assets.calib)
            self.extra["fp8_linears"] = convert_to_fp8(model, act_amax=act)
            self.extra["fp8_scales"] = "static per-tensor" if act else "dynamic per-row"
        model.eval()
        self._eager = model
        if self.compiled:
            self.extra["compile_mode"] = "reduce-overhead" if self.spec.option == "cudagraphs" else "default"
        self._model = model

    @property
    def compiled(self) -> bool:
        """Whether this engine runs through ``torch.compile``."""
        return self.spec.runtime == "torch-compile" or self.spec.option == "cudagraphs"

    def time(self, batch: int, seq: int, *, warmup: int, iterations: int) -> LatencyStats:
        """Time one shape; a compiled engine gets fresh dynamo state and a guard against eager fallback.

        Several compiled engines (and shapes) in one process once exhausted dynamo's recompile limit, after which
        dynamo silently ran the *eager* model and its time was recorded as the compiled engine's (14.8 vs 3.79 ms
        on an H100). Each (engine, shape) now compiles from a reset state, ``fail_on_recompile_limit_hit`` turns
        a fallback into an error, and the graphs, recompiles and graph breaks of the timed cell are recorded.
        """
        if not self.compiled:
            return super().time(batch, seq, warmup=warmup, iterations=iterations)
        import torch

        self.setup()
        with compile_guard() as stats:
            self._model = torch.compile(self._eager, mode=self.extra["compile_mode"], dynamic=False)
            result = super().time(batch, seq, warmup=max(warmup, 2), iterations=iterations)
        self.cell_extra = stats
        return result

    def _feed(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from nbutils.device import to_device

        return to_device(batch, self.device)

    def bind(self, batch: int, seq: int) -> Callable[[], Any]:
        import torch

        from nbutils.bench import synthetic_batch

        self.setup()
        feed = self._feed(synthetic_batch(batch, seq, vocab_size=self.assets.torch_model().config.vocab_size))
        model = self._model

        def call() -> Any:
            with torch.inference_mode():
                return model(**feed)

        return call

    def predictor(self) -> Callable[[dict[str, np.ndarray]], Any]:
        import torch

        self.setup()
        model = self._model

        def predict(batch: dict[str, np.ndarray]) -> Any:
            with torch.inference_mode():
                out = model(**self._feed(batch))
            if hasattr(out, "start_logits"):
                return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
            return out.logits.float().cpu().numpy()

        return predict


_ORT_RECIPES = {"fp32": "fp32", "fp32-fused": "fp32-fused", "int8-dynamic": "ort-dynamic",
                "int8-dynamic-fused": "ort-dynamic-fused", "int8-static": "ort-static-minmax", "int8-qdq": "ptq",
                "fp16": "fp16", "int8": "ptq"}


class OrtEngine(Engine):
    """ONNX Runtime on CPU, CUDA (IOBinding, optional CUDA graph) or TensorRT."""

    provider_of = {"ort-cpu": "cpu", "ort-cuda": "cuda", "ort-trt": "tensorrt", "ort-ov": "openvino"}

    def _file_recipe(self) -> str:
        prec = self.spec.name.split(":")[1]
        if self.spec.runtime == "ort-cuda" and prec == "fp32":
            return "fp32-fused"
        if self.spec.runtime == "ort-trt":
            return "ptq" if prec == "int8" else "fp32"  # TensorRT builds FP16 itself from the FP32 graph
        return _ORT_RECIPES[prec]

    def unavailable(self) -> str:
        from nbutils.sessions import provider_unavailable_reason

        return provider_unavailable_reason(self.provider_of[self.spec.runtime])

    def setup(self) -> None:
        from nbutils.sessions import make_session

        if getattr(self, "_info", None) is not None:
            return
        path = self.assets.onnx(self._file_recipe())
        provider = self.provider_of[self.spec.runtime]
        qdq = self._file_recipe() == "ptq"
        self._info = make_session(path, provider, threads=self.threads, qdq=qdq, fp16=self.spec.precision == "fp16",
                                  int8=self.spec.runtime == "ort-trt" and self.spec.precision == "int8",
                                  cache_dir=self.cache_dir, profile_shapes=self.profile, fallback=False,
                                  cuda_graph=self.spec.option == "cudagraph")
        self.extra.update(self._info.provenance())
        self.extra["onnx_file"] = str(path)
        if provider == "openvino":  # the nodes the provider left to ONNX Runtime's CPU provider, named
            from nbutils.bench import synthetic_batch
            from nbutils.sessions import openvino_fallback_nodes

            self.extra["nodes_not_on_openvino"] = openvino_fallback_nodes(path, synthetic_batch(1, 16),
                                                                          threads=self.threads)
        if self.spec.runtime == "ort-cuda" and qdq:
            self.extra["note"] = "Q/DQ on the CUDA provider runs as floating point plus Q/DQ work: not INT8 speed"

    def bind(self, batch: int, seq: int) -> Callable[[], Any]:
        from nbutils.bench import synthetic_batch

        if self.spec.option == "cudagraph" and getattr(self, "_bound", None) not in (None, (batch, seq)):
            # ONNX Runtime captures one CUDA graph per session; replaying it with another shape reads out of
            # bounds (seen on the H200: CUDA error 700), so every new shape gets a new session.
            self._info = None
        self._bound = (batch, seq)
        self.setup()
        sess = self._info.session
        feed = {k: v for k, v in synthetic_batch(batch, seq).items() if k in self._info.input_names}
        if self.device != "cuda":
            return lambda: sess.run(None, feed)
        import onnxruntime as ort

        binding = sess.io_binding()
        self._keep = []
        for name, arr in feed.items():
            val = ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0)
            self._keep.append(val)
            binding.bind_ortvalue_input(name, val)
        for out in sess.get_outputs():
            binding.bind_output(out.name, "cuda", 0)
        if self.spec.option == "cudagraph":
            sess.run_with_iobinding(binding)  # first run captures the graph

        def call() -> None:
            sess.run_with_iobinding(binding)

        return call

    def predictor(self) -> Callable[[dict[str, np.ndarray]], Any]:
        from nbutils.sessions import ort_predictor

        self.setup()
        return ort_predictor(self._info)


class OvEngine(Engine):
    """OpenVINO on the CPU: an IR compiled with the latency hint (or the throughput hint, option ``throughput``)."""

    def unavailable(self) -> str:
        from nbutils import ov

        return ov.unavailable_reason()

    def setup(self) -> None:
        from nbutils import ov

        if getattr(self, "_compiled", None) is not None:
            return
        folder = self.assets.openvino(self.spec.recipe)
        self._compiled = ov.compile_model(folder, hint="THROUGHPUT" if self.spec.option == "throughput" else "LATENCY",
                                          threads=self.threads)
        self.extra.update(self._compiled.settings)
        self.extra["ir_file"] = str(folder / ov.IR_FILE)
        self.extra.update(ov.int8_provenance(folder))
        # the kernels the plugin chose for the heavy layers on this CPU (e.g. AVX2 without VNNI: INT8 FullyConnected
        # on oneDNN's jit_gemm_I8 while FP32 runs on MLAS/brgemm: why INT8 can lose there)
        self.extra["ov_kernels"] = {f"{k['layer']}:{k['precision']}:{k['primitive']}": k["count"]
                                    for k in ov.runtime_kernels(self._compiled)
                                    if k["layer"] in ("FullyConnected", "MatMul", "ScaledDotProductAttention")}

    def bind(self, batch: int, seq: int) -> Callable[[], Any]:
        from nbutils.bench import synthetic_batch

        self.setup()
        compiled = self._compiled.model
        full = synthetic_batch(batch, seq)
        names = self._compiled.input_names
        if self.spec.option != "throughput":
            request = compiled.create_infer_request()
            feed = {n: full[n] for n in names}
            return lambda: request.infer(feed)
        import openvino as ov_runtime

        # Throughput hint: the plugin runs several streams; one call processes the same `batch` sequences split
        # over that many parallel requests (so a row still means "time to process `batch` sequences").
        parts = max(1, min(int(self._compiled.settings["ov_requests"]), batch))
        chunks = [{n: np.ascontiguousarray(a) for n, a in zip(names, piece, strict=True)}
                  for piece in zip(*(np.array_split(full[n], parts) for n in names), strict=True)]
        queue = ov_runtime.AsyncInferQueue(compiled, parts)
        self.cell_extra["ov_parallel_requests"] = parts

        def call() -> None:
            for chunk in chunks:
                queue.start_async(chunk)
            queue.wait_all()

        return call

    def predictor(self) -> Callable[[dict[str, np.ndarray]], Any]:
        from nbutils import ov

        self.setup()
        return ov.predictor(self._compiled)


def make_engine(name: str, assets: Assets, **kwargs: Any) -> Engine:
    """Build the engine called ``name`` (see :data:`ENGINES`)."""
    if name not in ENGINES:
        raise NbUtilsError(f"unknown engine {name!r}", f"use one of: {', '.join(ENGINES)}")
    spec = ENGINES[name]
    runtime = spec.runtime
    cls = OrtEngine if runtime.startswith("ort-") else OvEngine if runtime.startswith("ov-") else TorchEngine
    return cls(spec, assets, **kwargs)


@dataclass
class GridResult:
    """What a grid produced: timed rows, engines skipped because this machine lacks something, and failures.

    A *skip* (no GPU, no TensorRT) is a fact about the machine and is reported; a *failure* (an engine the user
    asked for that could not be built or run here) is an error of the run: :meth:`raise_failures` fails it.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def __iter__(self) -> Any:  # ``rows, skipped = run_grid(...)`` keeps working
        return iter((self.rows, self.skipped))

    def raise_failures(self) -> None:
        """Raise one :class:`NbUtilsError` naming every failed engine with its full reason (nothing is cut)."""
        if self.failed:
            lines = "\n".join(f"  {f['engine']}: {f['reason']}" for f in self.failed)
            raise NbUtilsError(f"{len(self.failed)} requested engine(s) failed:\n{lines}",
                               "fix the cause above, or leave the engine out of the grid (engines=[...] / --engines)")
        if not self.rows:
            raise NbUtilsError("nothing was timed: every requested engine was skipped on this machine "
                               f"({'; '.join(s['engine'] + ': ' + s['reason'] for s in self.skipped)})",
                               "choose engines this machine can run (see python -m nbutils bench --help)")


def run_grid(engines: Sequence[Engine], batch_sizes: Sequence[int], seq_lengths: Sequence[int], *, warmup: int,
             iterations: int, progress: bool = True) -> GridResult:
    """Time every available engine at every (batch, seq).

    Unavailable engines are skipped with the reason; an engine that fails to build or run is recorded as a
    failure with its full message and the grid goes on (what was measured is kept).
    """
    from nbutils.progress import bar as tqdm

    out = GridResult()
    runnable = []
    for e in engines:
        reason = e.unavailable()
        (out.skipped.append({"engine": e.spec.name, "reason": reason}) if reason else runnable.append(e))
    from nbutils.memory import MemoryMeter

    bar = tqdm(total=len(runnable) * len(batch_sizes) * len(seq_lengths), desc="benchmark", disable=not progress)
    for e in runnable:
        meter = MemoryMeter(e.device, torch_allocator=isinstance(e, TorchEngine)).start()
        try:
            e.setup()
        except Exception as exc:  # noqa: BLE001 - reported as a failure of the run, the grid goes on
            meter.stop()
            out.failed.append({"engine": e.spec.name, "reason": f"setup failed: {type(exc).__name__}: {exc}"})
            bar.update(len(batch_sizes) * len(seq_lengths))
            continue
        for seq in seq_lengths:
            for b in batch_sizes:
                bar.set_postfix_str(f"{e.spec.name} b{b} s{seq}")
                e.cell_extra = {}
                try:
                    stats = e.time(b, seq, warmup=warmup, iterations=iterations)
                except Exception as exc:  # noqa: BLE001
                    out.failed.append({"engine": f"{e.spec.name} b{b} s{seq}",
                                       "reason": f"run failed: {type(exc).__name__}: {exc}"})
                else:
                    out.rows.append({"engine_name": e.spec.name, "engine": e.spec.engine, "precision": e.spec.precision,
                                     "recipe": e.recipe, "seq": seq, **stats.as_dict(), "peak_memory_mb": meter.peak_mb(),
                                     "extra": {**e.extra, **e.cell_extra, "memory_method": meter.method}})
                bar.update(1)
        meter.stop()
        e.release()  # its threads must not compete with the next engine's
    bar.close()
    return out


@contextlib.contextmanager
def compile_guard() -> Iterator[dict[str, int]]:
    """Fresh dynamo state for one compiled (engine, shape); a silent eager fallback becomes an error.

    Yields a dict filled on exit with the cell's dynamo counters: ``dynamo_graphs`` (graphs compiled),
    ``dynamo_graph_breaks`` and ``dynamo_frames``.
    """
    import torch
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    stats: dict[str, int] = {}
    try:
        with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
            yield stats
    except Exception as exc:
        if "recompile" in str(exc).lower():
            raise NbUtilsError(f"torch.compile hit dynamo's recompile limit: {str(exc).splitlines()[0][:300]}; "
                               "the time would have been an eager fallback's, so nothing was recorded",
                               "time fewer shapes per engine, or raise torch._dynamo.config.recompile_limit") from exc
        raise
    finally:
        stats.update(dynamo_graphs=int(counters["stats"]["unique_graphs"]),
                     dynamo_graph_breaks=int(sum(counters["graph_break"].values())),
                     dynamo_frames=int(counters["frames"]["total"]))


def short(name: str) -> str:
    """A compact label for charts."""
    return re.sub(r"^torch-", "", name)


def measurements(rows: Sequence[dict[str, Any]], *, untrained: bool) -> list[Any]:
    """Grid rows -> results-database rows (five latency/throughput figures per row, provenance in ``extra``)."""
    from nbutils.results import Measurement

    out = []
    metrics = {"latency_mean_ms": "mean_ms", "latency_p50_ms": "p50_ms", "latency_p95_ms": "p95_ms",
               "latency_p99_ms": "p99_ms", "throughput_seq_s": "throughput_seq_s", "peak_memory_mb": "peak_memory_mb"}
    for r in rows:
        extra = {**r["extra"], "iterations": r["iterations"], "untrained": untrained,
                 "timing": "CUDA events per call, inputs on device (copies excluded)" if r["extra"].get("device") == "cuda"
                 else "wall clock per call"}
        out += [Measurement(m, float(r[k]), r["recipe"], r["engine"], r["precision"], int(r["batch"]), int(r["seq"]), extra)
                for m, k in metrics.items() if k in r]
    return out


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Plain-text table of grid rows (no pandas needed: the GPU machine prints this)."""
    head = (f"{'engine':34} {'batch':>5} {'seq':>4} {'mean':>9} {'p50':>9} {'p95':>9} {'p99':>9} {'seq/s':>10} "
            f"{'peak MB':>9}")
    lines = [head, "-" * len(head)]
    for r in sorted(rows, key=lambda r: (r["seq"], r["batch"], r["p50_ms"])):
        lines.append(f"{r['engine_name']:34} {r['batch']:>5} {r['seq']:>4} {r['mean_ms']:>9.3f} {r['p50_ms']:>9.3f} "
                     f"{r['p95_ms']:>9.3f} {r['p99_ms']:>9.3f} {r['throughput_seq_s']:>10.1f} "
                     f"{r.get('peak_memory_mb', float('nan')):>9.1f}")
    return "\n".join(lines)
