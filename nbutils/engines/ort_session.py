"""ONNX Runtime sessions: one function builds a session for a model file and a provider.

* ``cpu``: thread count set (and recorded); full graph optimisation, so Q/DQ models run in integer kernels.
* ``cuda``: the CUDA provider; :class:`OrtEngine` binds inputs and outputs on the device (IOBinding).
* ``tensorrt``: FP16/INT8 flags, engine and timing caches in the run folder, explicit min/opt/max profile
  shapes (so the engine is not rebuilt whenever a shape leaves the range seen so far), and ONNX Runtime's
  own graph optimisations off for Q/DQ models (TensorRT must see the Q/DQ nodes to place INT8).

An unavailable provider is never silent: :func:`make_session` falls back to CPU only when asked to, and the
returned :class:`SessionInfo` says which provider was requested, which runs, and why.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nbutils.core import env
from nbutils.core.errors import NbUtilsError
from nbutils.formats.files import check_model_file

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
             "openvino": "OpenVINOExecutionProvider"}
#: The OpenVINO execution provider ships as an ONNX Runtime plugin library (pip ``onnxruntime-ep-openvino``).
OPENVINO_EP = "OpenVINOExecutionProvider"
#: Plugin libraries this process registered with ONNX Runtime.
_REGISTERED: set[str] = set()
#: PCI vendor ids of CPU makers (ONNX Runtime's hardware devices carry them).
_VENDORS = {0x8086: "Intel", 0x1022: "AMD", 0x10DE: "NVIDIA"}


@dataclass
class SessionInfo:
    """A session and the facts to record with every figure measured through it."""

    session: Any
    requested: str
    provider: str
    fallback_reason: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        """Extra fields stored with each figure (fallbacks and thread settings included)."""
        out = {"provider_requested": self.requested, "provider": self.provider, **self.options}
        if self.fallback_reason:
            out["fallback"] = self.fallback_reason
        return out

    @property
    def input_names(self) -> list[str]:
        """The model's input names."""
        return [i.name for i in self.session.get_inputs()]


def _openvino_ep_devices() -> tuple[list[Any], str]:
    """The OpenVINO plugin's CPU devices (registering the plugin once per process), or why there are none.

    The plugin's device factory offers only Intel hardware: it skips every ONNX Runtime hardware device whose
    vendor id is not Intel's (0x8086), so on an AMD CPU it lists nothing although OpenVINO itself runs there
    (read in the plugin's source, ``OpenVINOEpPluginFactory::GetSupportedDevices``: "Not an Intel Device").
    """
    import onnxruntime as ort

    try:
        import onnxruntime_ep_openvino as plugin
    except ImportError:
        return [], ("the ONNX Runtime OpenVINO plugin is not installed (fix: make install; constraints.txt pins "
                    "onnxruntime-ep-openvino)")
    if OPENVINO_EP not in _REGISTERED and not any(d.ep_name == OPENVINO_EP for d in ort.get_ep_devices()):
        try:
            ort.register_execution_provider_library(OPENVINO_EP, plugin.get_library_path())
        except Exception as exc:  # noqa: BLE001 - a library that fails to load is a finding, not a crash
            return [], f"the OpenVINO plugin library did not register with ONNX Runtime: {str(exc)[:200]}"
    _REGISTERED.add(OPENVINO_EP)  # once per process: registered with no device (AMD), it must not be registered again
    every = ort.get_ep_devices()
    devices = [d for d in every if d.ep_name == OPENVINO_EP and d.ep_metadata.get("ov_device") == "CPU"]
    if devices:
        return devices, ""
    cpus = {d.device.vendor_id for d in every if d.device.type == ort.OrtHardwareDeviceType.CPU}
    vendor = ", ".join(_VENDORS.get(v, hex(v)) for v in sorted(cpus)) or "unknown"
    return [], (f"the OpenVINO plugin lists no CPU device: it offers Intel hardware only and this CPU's vendor is "
                f"{vendor} (fix: none on this machine; run OpenVINO's own runtime, the ov-cpu engines)")


def provider_unavailable_reason(provider: str) -> str:
    """Empty when ``provider`` can run here, else the reason (and the fix)."""
    if provider == "cpu":
        return ""
    if provider == "openvino":
        return _openvino_ep_devices()[1]
    cap = env.ort_cuda_status() if provider == "cuda" else env.tensorrt_status()
    return "" if cap.usable else f"{cap.reason} (fix: {cap.fix})"


def make_session(path: str | Path, provider: str = "cpu", *, threads: int = 0, qdq: bool = False,
                 fp16: bool = False, int8: bool = False, cache_dir: str | Path | None = None,
                 profile_shapes: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None = None,
                 fallback: bool = True, optimized_model_path: str | Path | None = None,
                 enable_profiling: bool = False, cuda_graph: bool = False,
                 graph_optimization: str = "all", precise_int8: bool | None = None) -> SessionInfo:
    """Build an ``InferenceSession`` for ``path`` on ``provider``.

    Args:
        path: the ONNX file.
        provider: ``cpu``, ``cuda`` or ``tensorrt``.
        threads: intra-op threads for CPU (0: ONNX Runtime's default, one per physical core).
        qdq: the model holds Q/DQ nodes (TensorRT: turn ONNX Runtime's graph optimisations off).
        fp16: TensorRT FP16 kernels allowed.
        int8: TensorRT INT8 kernels allowed (explicit quantization from the Q/DQ nodes).
        cache_dir: TensorRT engine and timing caches (e.g. ``<run>/trt-cache``).
        profile_shapes: TensorRT ((min_batch, min_seq), (opt_batch, opt_seq), (max_batch, max_seq)).
        fallback: on an unavailable provider, fall back to CPU (recorded) instead of raising.
        optimized_model_path: write ONNX Runtime's optimised graph here (to inspect which kernels run).
        enable_profiling: write ONNX Runtime's per-node profile (see :func:`node_placement`).
        cuda_graph: CUDA provider: capture the run in a CUDA graph (needs IOBinding and fixed shapes).
        graph_optimization: ``all`` (default; Q/DQ become integer kernels on CPU), ``extended``, ``basic`` or
            ``disable`` (Q/DQ then run as float fake-quant: useful to separate graph from kernel effects).
        precise_int8: CPU: ONNX Runtime's slower, overflow-free x64 int8 kernels (``session.x64quantprecision``).
            Default: on when the CPU lacks VNNI, where the u8s8 kernels saturate (measured here on a non-VNNI EPYC:
            a ModelOpt Q/DQ MiniLM's cosine to its PyTorch model rose from 0.969 to 0.997, ~25% slower).

    Raises:
        NbUtilsError: unknown provider name, invalid model file, or an unavailable provider with
            ``fallback=False``.

    """
    import onnxruntime as ort

    if provider not in PROVIDERS:
        raise NbUtilsError(f"unknown execution provider {provider!r}", f"use one of: {', '.join(PROVIDERS)}")
    check_model_file(path)
    reason = provider_unavailable_reason(provider)
    requested = provider
    if reason:
        if not fallback:
            raise NbUtilsError(f"execution provider {provider!r} is unavailable: {reason}",
                               "run on a machine that has it, or allow the CPU fallback")
        provider = "cpu"
    opts = ort.SessionOptions()
    options: dict[str, Any] = {}
    if threads:
        opts.intra_op_num_threads = threads
    options["threads"] = threads or "default"
    if precise_int8 is None:
        # Only needed where the fast u8s8 kernels can saturate: not on VNNI CPUs, and not for files quantized
        # with reduce_range (7-bit weights), which the dynamic route uses on such CPUs.
        sidecar = Path(path).parent / "variant.json"
        reduced = sidecar.is_file() and bool(json.loads(sidecar.read_text()).get("reduce_range"))
        precise_int8 = not env.has_vnni() and not reduced
    if provider == "cpu" and precise_int8:
        opts.add_session_config_entry("session.x64quantprecision", "1")
    options["precise_int8"] = bool(precise_int8 and provider == "cpu")
    if optimized_model_path:
        opts.optimized_model_filepath = str(optimized_model_path)
    if enable_profiling:
        opts.enable_profiling = True
    levels = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
              "disable": "ORT_DISABLE_ALL"}
    if graph_optimization not in levels:
        raise NbUtilsError(f"unknown graph optimization level {graph_optimization!r}", f"use one of: {', '.join(levels)}")
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, levels[graph_optimization])
    if provider == "tensorrt" and qdq:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options["graph_optimization"] = "disable" if (provider == "tensorrt" and qdq) else graph_optimization
    providers: list[Any] = []
    if provider == "openvino":
        # Options go to the plugin as OpenVINO properties (its own 'precision'/'num_of_threads' keys are ignored):
        # f32 as on ov-cpu (OpenVINO's CPU default is bf16 on BF16 CPUs), the latency hint, the thread count.
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = str(threads)
        opts.add_provider_for_devices(_openvino_ep_devices()[0], {"load_config": json.dumps({"CPU": config})})
        options.update({f"ov_{k.lower()}": v for k, v in config.items()})
        options["precise_int8"] = False
    if provider == "tensorrt":
        cache = Path(cache_dir or Path(path).parent / "trt-cache")
        cache.mkdir(parents=True, exist_ok=True)
        trt: dict[str, Any] = {"trt_fp16_enable": fp16, "trt_int8_enable": int8,
                               "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                               "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache)}
        if profile_shapes:
            names = _input_names(path)
            for key, (b, s) in zip(("min", "opt", "max"), profile_shapes, strict=True):
                trt[f"trt_profile_{key}_shapes"] = ",".join(f"{n}:{b}x{s}" for n in names)
        providers.append(("TensorrtExecutionProvider", trt))
        options.update({k: v for k, v in trt.items() if k.startswith(("trt_fp16", "trt_int8", "trt_profile"))})
    if provider in ("tensorrt", "cuda"):
        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # finds the CUDA libraries installed with torch
        cuda_opts = {"enable_cuda_graph": "1"} if cuda_graph and provider == "cuda" else {}
        cuda_opts["use_tf32"] = "0"  # ONNX Runtime's CUDA default is TF32 matmuls: an FP32 file must run in FP32
        providers.append(("CUDAExecutionProvider", cuda_opts))
        options["cuda_graph"] = bool(cuda_graph)
    providers.append("CPUExecutionProvider")
    if provider == "openvino":
        providers = []  # a plugin provider is chosen through the session options' devices, not the providers list
    try:
        try:
            session = (ort.InferenceSession(str(path), sess_options=opts) if provider == "openvino" else
                       ort.InferenceSession(str(path), sess_options=opts, providers=providers))
        except Exception as exc:  # noqa: BLE001
            if not options["precise_int8"]:
                raise
            # ONNX Runtime 1.31's precise x64 path fails to initialise some static Q/DQ graphs
            # ("Attempt to replace the existing tensor"): retry with the fast kernels and say so.
            opts.add_session_config_entry("session.x64quantprecision", "0")
            session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
            options.update(precise_int8=False, precise_int8_failed=str(exc).splitlines()[0][:160])
    except Exception as exc:  # noqa: BLE001
        raise NbUtilsError(f"ONNX Runtime could not load {path} on {provider}: {str(exc)[:300]}",
                           "check the file with onnx.checker, or try provider='cpu'") from exc
    return SessionInfo(session, requested, provider, reason, options)


def _input_names(path: str | Path) -> list[str]:
    import onnx

    return [i.name for i in onnx.load(str(path), load_external_data=False).graph.input]


def accuracy_provider(precision: str, device: Any) -> str:
    """The ONNX Runtime provider an accuracy pass runs a file on (``cuda`` or ``cpu``).

    ``cuda`` for FP32/FP16 files when the run's device (:class:`nbutils.core.device.Device`) is a GPU and onnxruntime-gpu
    is usable. INT8 files always run on the CPU provider: that is where ONNX Runtime has INT8 kernels (on CUDA a Q/DQ file runs
    as floating point plus Q/DQ work, see the README), so their accuracy is the accuracy of the INT8 arithmetic.
    """
    from nbutils.core import env

    if precision in ("fp32", "fp16") and getattr(device, "is_cuda", False) and env.ort_cuda_status().usable:
        return "cuda"
    return "cpu"


def ort_predictor(info: SessionInfo) -> Any:
    """Wrap a session as a predictor (numpy batch in, logits or (start, end) out).

    Raises a clear error when the model needs an input the batch does not have.
    """
    needed = info.input_names
    outputs = [o.name for o in info.session.get_outputs()]

    def predict(batch: dict[str, np.ndarray]) -> Any:
        missing = [n for n in needed if n not in batch]
        if missing:
            raise NbUtilsError(f"the ONNX model needs input(s) {missing}, which the batch lacks (has {sorted(batch)})",
                               "export the model with input_ids, attention_mask and token_type_ids")
        res = info.session.run(outputs, {n: batch[n] for n in needed})
        return (res[0], res[1]) if len(res) > 1 and "start" in outputs[0] else res[0]

    return predict


def integer_kernel_counts(optimized_model_path: str | Path) -> dict[str, int]:
    """Count the integer-arithmetic operators in ONNX Runtime's optimised graph.

    A Q/DQ model can also run as slow fake-quant (DequantizeLinear → float MatMul); on CPU, real INT8 shows
    up as QLinear*/MatMulInteger/DynamicQuantize*/QAttention nodes after optimisation.
    """
    import onnx

    graph = onnx.load(str(optimized_model_path), load_external_data=False).graph
    ops = Counter(n.op_type for n in graph.node)
    keys = [k for k in ops if k.startswith(("QLinear", "MatMulInteger", "DynamicQuantize", "QAttention",
                                            "QGemm", "MatMulIntegerToFloat", "QOrdered"))]
    out = {k: ops[k] for k in sorted(keys)}
    out["float MatMul/Gemm left"] = ops.get("MatMul", 0) + ops.get("Gemm", 0) + ops.get("FusedMatMul", 0)
    return out


def node_providers(info: SessionInfo, feed: dict[str, np.ndarray]) -> dict[str, tuple[str, str]]:
    """Which execution provider ran each node: node name -> (op type, provider), from ONNX Runtime's profile.

    The names are those of ONNX Runtime's optimized graph (save it with ``optimized_model_path`` to draw it).
    The session must have been built with ``enable_profiling=True``; runs ``feed`` once.
    """
    info.session.run(None, {n: feed[n] for n in info.input_names})
    profile = info.session.end_profiling()
    try:
        events = json.loads(Path(profile).read_text())
    finally:
        Path(profile).unlink(missing_ok=True)
    seen: dict[str, tuple[str, str]] = {}
    for ev in events:
        args = ev.get("args", {})
        if ev.get("cat") == "Node" and "op_name" in args and "provider" in args:
            node = ev["name"].rsplit("_kernel_time", 1)[0]
            seen[node] = (args["op_name"], args["provider"])
    return seen


def node_placement(info: SessionInfo, feed: dict[str, np.ndarray]) -> dict[tuple[str, str], int]:
    """Which execution provider ran which operators: (op type, provider) -> count (see :func:`node_providers`)."""
    return dict(Counter(node_providers(info, feed).values()))


def openvino_fallback_nodes(path: str | Path, feed: dict[str, np.ndarray], *, threads: int = 0) -> dict[str, int]:
    """Operators of ``path`` that the OpenVINO provider did not take (op type -> count; empty: it ran them all).

    From ONNX Runtime's profile of one run: nodes the provider took appear as its fused subgraphs, the rest under
    ``CPUExecutionProvider`` (as notebook 45 does for CUDA and TensorRT).
    """
    info = make_session(path, "openvino", threads=threads, enable_profiling=True, fallback=False)
    return {op: n for (op, ep), n in sorted(node_placement(info, feed).items()) if ep != OPENVINO_EP}
