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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nbutils.core import env
from nbutils.core.device import Device, engine_device
from nbutils.core.errors import NbUtilsError
from nbutils.core.vocab import ORT_PROVIDERS
from nbutils.engines.assets import Assets
from nbutils.engines.registry import ENGINES, EngineSpec
from nbutils.engines.timing import LatencyStats, time_callable, time_cuda

# ---------------------------------------------------------------------------------------------
# Engines.

_TORCH_DTYPES = {"fp32": "float32", "tf32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp8": "bfloat16"}


class Engine:
    """One way to run the model. Subclasses implement setup, bind and predictor."""

    def __init__(self, spec: EngineSpec, assets: Assets, *, threads: int = 0, cache_dir: Path | None = None,
                 profile: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None = None,
                 recipe: str = "", device: Device | None = None) -> None:
        self.spec = spec
        self._recipe = recipe  # the recipe recorded when the file is another variant (e.g. a mixed-precision PTQ)
        self.assets = assets
        self.threads = threads
        self.cache_dir = cache_dir
        self.profile = profile
        self.extra: dict[str, Any] = {"engine_name": spec.name, "description": spec.description}
        # a GPU-only engine runs on CUDA; one that runs "where PyTorch runs" follows the notebook's device parameter
        self.device = "cuda" if spec.device == "cuda" else "cpu" if spec.device == "cpu" else \
            engine_device(spec.runtime, device)
        self.extra["device"] = self.device
        self.cell_extra: dict[str, Any] = {}  # figures of the last timed cell (e.g. dynamo counters)

    @property
    def recipe(self) -> str:
        """Recipe recorded with this engine's figures.

        The spec's (for ``ptq``: the ModelOpt PTQ file's own recipe), unless the engine was given another.
        """
        if self._recipe:
            return self._recipe
        return self.assets.ptq_recipe if self.spec.recipe == "ptq" else self.spec.recipe

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
            from nbutils.quant.fp8 import convert_to_fp8

            if self.device == "cpu":
                model = model.to(torch.float32)
            act = None
            if "static" in self.spec.recipe:
                from nbutils.quant.fp8 import calibrate_activations

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
        from nbutils.core.device import to_device

        return to_device(batch, self.device)

    def bind(self, batch: int, seq: int) -> Callable[[], Any]:
        import torch

        from nbutils.training.inputs import synthetic_batch

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


class OrtEngine(Engine):
    """ONNX Runtime on CPU, CUDA (IOBinding, optional CUDA graph) or TensorRT."""

    def _file_recipe(self) -> str:
        """The file this engine runs: its spec's recipe, except TensorRT FP16, which builds FP16 from the FP32 graph."""
        return "fp32" if self.spec.runtime == "ort-trt" and self.spec.precision == "fp16" else self.spec.recipe

    def unavailable(self) -> str:
        from nbutils.engines.ort_session import provider_unavailable_reason

        return provider_unavailable_reason(ORT_PROVIDERS[self.spec.runtime])

    def setup(self) -> None:
        from nbutils.engines.ort_session import make_session

        if getattr(self, "_info", None) is not None:
            return
        path = self.assets.onnx(self._file_recipe())
        provider = ORT_PROVIDERS[self.spec.runtime]
        qdq = self._file_recipe() == "ptq"
        self._info = make_session(path, provider, threads=self.threads, qdq=qdq, fp16=self.spec.precision == "fp16",
                                  int8=self.spec.runtime == "ort-trt" and self.spec.precision == "int8",
                                  cache_dir=self.cache_dir, profile_shapes=self.profile, fallback=False,
                                  cuda_graph=self.spec.option == "cudagraph")
        self.extra.update(self._info.provenance())
        self.extra["onnx_file"] = str(path)
        if provider == "openvino":  # the nodes the provider left to ONNX Runtime's CPU provider, named
            from nbutils.engines.ort_session import openvino_fallback_nodes
            from nbutils.training.inputs import synthetic_batch

            self.extra["nodes_not_on_openvino"] = openvino_fallback_nodes(path, synthetic_batch(1, 16),
                                                                          threads=self.threads)
        if self.spec.runtime == "ort-cuda" and qdq:
            self.extra["note"] = "Q/DQ on the CUDA provider runs as floating point plus Q/DQ work: not INT8 speed"

    def bind(self, batch: int, seq: int) -> Callable[[], Any]:
        from nbutils.training.inputs import synthetic_batch

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
        from nbutils.engines.ort_session import ort_predictor

        self.setup()
        return ort_predictor(self._info)


class OvEngine(Engine):
    """OpenVINO on the CPU: an IR compiled with the latency hint (or the throughput hint, option ``throughput``)."""

    def unavailable(self) -> str:
        from nbutils.formats import to_openvino

        return to_openvino.unavailable_reason()

    def setup(self) -> None:
        from nbutils.formats import to_openvino

        if getattr(self, "_compiled", None) is not None:
            return
        folder = self.assets.openvino(self.spec.recipe)
        self._compiled = to_openvino.compile_model(folder, hint="THROUGHPUT" if self.spec.option == "throughput" else "LATENCY",
                                          threads=self.threads)
        self.extra.update(self._compiled.settings)
        self.extra["ir_file"] = str(to_openvino.load_ir(folder)[1].path)  # model.xml, or the ONNX file it reads
        self.extra.update(to_openvino.int8_provenance(folder))
        # the kernels the plugin chose for the heavy layers on this CPU (e.g. AVX2 without VNNI: INT8 FullyConnected
        # on oneDNN's jit_gemm_I8 while FP32 runs on MLAS/brgemm: why INT8 can lose there)
        self.extra["ov_kernels"] = {f"{k['layer']}:{k['precision']}:{k['primitive']}": k["count"]
                                    for k in to_openvino.runtime_kernels(self._compiled)
                                    if k["layer"] in ("FullyConnected", "MatMul", "ScaledDotProductAttention")}

    def bind(self, batch: int, seq: int) -> Callable[[], Any]:
        from nbutils.training.inputs import synthetic_batch

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
        from nbutils.formats import to_openvino

        self.setup()
        return to_openvino.predictor(self._compiled)


def make_engine(name: str, assets: Assets, **kwargs: Any) -> Engine:
    """Build the engine called ``name`` (see :data:`ENGINES`)."""
    if name not in ENGINES:
        raise NbUtilsError(f"unknown engine {name!r}", f"use one of: {', '.join(ENGINES)}")
    spec = ENGINES[name]
    runtime = spec.runtime
    cls = OrtEngine if runtime.startswith("ort-") else OvEngine if runtime.startswith("ov-") else TorchEngine
    return cls(spec, assets, **kwargs)



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
