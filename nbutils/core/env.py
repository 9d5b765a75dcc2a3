"""What this machine offers for INT8 work: versions, CPU flags, GPU, execution providers.

Notebook ``00_environment`` shows these; every row in the results database carries
:func:`versions` and :func:`hardware` as provenance. Each ``*_status`` function returns a
:class:`Capability` that says whether a feature is usable and, if not, exactly why and what to
install. Nothing here raises when a library is missing: absence is a finding, not an error.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata as md
import os
import platform
from dataclasses import dataclass

#: Packages whose versions travel with every measured figure.
TRACKED_PACKAGES = ["torch", "transformers", "onnx", "onnxruntime", "onnxruntime-gpu", "nvidia-modelopt",
                    "optimum", "optimum-onnx", "openvino", "nncf", "datasets", "numpy", "tensorrt", "torchao", "nbutils"]

#: CPU flags that matter for INT8 kernels (VNNI: int8 dot products; AMX: int8/bf16 tiles).
INT8_CPU_FLAGS = ["avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "amx_bf16", "amx_tile"]


@dataclass(frozen=True)
class Capability:
    """Whether a feature is usable here; ``reason`` says why not, ``fix`` what to do."""

    name: str
    usable: bool
    detail: str = ""
    reason: str = ""
    fix: str = ""


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or ``None``."""
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of the tracked packages that are installed, plus Python's."""
    found = {name: v for name in TRACKED_PACKAGES if (v := package_version(name))}
    found["python"] = platform.python_version()
    return found


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, object]:
    """CPU model, logical cores and the INT8-relevant flags (from ``/proc/cpuinfo`` on Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu": model,
        "logical_cores": os.cpu_count() or 1,
        "flags": {f: f in flags for f in INT8_CPU_FLAGS},
    }


def has_vnni() -> bool:
    """True when the CPU has AVX512-VNNI, AVX-VNNI or AMX (fast, overflow-free u8s8 dot products)."""
    return int8_isa() != "none"


#: ``ONEDNN_MAX_CPU_ISA`` values (oneDNN's ISA cap, honoured by OpenVINO's CPU plugin) that leave no VNNI/AMX.
_NO_INT8_DOT_ISAS = ("SSE41", "AVX", "AVX2", "AVX512_CORE")


def int8_isa(*, runtime: str = "cpu") -> str:
    """The CPU's INT8 dot-product instructions: ``amx``, ``vnni`` (AVX512-VNNI or AVX-VNNI) or ``none``.

    This is the one rule the INT8 routes ask (ONNX Runtime's ``reduce_range``, NNCF's overflow fix). Without
    VNNI, u8×s8 dot products go through ``vpmaddubsw``, whose 16-bit pair sums saturate for full 8-bit weights.
    With ``runtime="openvino"`` the answer also honours ``ONEDNN_MAX_CPU_ISA``: OpenVINO's CPU plugin (oneDNN)
    obeys that cap, so ``ONEDNN_MAX_CPU_ISA=AVX2`` makes a VNNI host run OpenVINO's AVX2-only INT8 kernels
    (the tests use it to check both kinds of host on any host). ONNX Runtime's MLAS kernels ignore the cap.
    """
    flags = cpu_info()["flags"]
    assert isinstance(flags, dict)
    isa = "amx" if flags.get("amx_int8") else "vnni" if (flags.get("avx512_vnni") or flags.get("avx_vnni")) else "none"
    if runtime == "openvino":
        cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
        if cap in _NO_INT8_DOT_ISAS:
            return "none"
        if cap and "AMX" not in cap and isa == "amx":
            return "vnni"
    return isa


def nncf_overflow_fix() -> str:
    """NNCF's ``overflow_fix`` for OpenVINO INT8 on this CPU: ``enable`` without VNNI/AMX, else ``disable``.

    Without VNNI the CPU plugin's u8×s8 kernels saturate; NNCF's own default (``first_layer``) fixes the first
    layer only, which left a tiny BERT at cosine 0.88 to FP32 on an AVX2-only host (0.99 with ``enable``, which
    quantizes weights to 7 bits everywhere). With VNNI or AMX nothing saturates, so every weight keeps 8 bits.
    """
    return "enable" if int8_isa(runtime="openvino") == "none" else "disable"


def gpu_name() -> str | None:
    """The first CUDA device's name, or ``None`` without a usable GPU."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


@functools.lru_cache(maxsize=1)
def hardware() -> dict[str, object]:
    """The hardware facts stored with every figure."""
    info = cpu_info()
    return {"cpu": info["cpu"], "logical_cores": info["logical_cores"], "vnni": has_vnni(),
            "int8_isa": int8_isa(), "openvino_int8_isa": int8_isa(runtime="openvino"),
            "gpu": gpu_name(), "machine": platform.machine()}


def torch_cuda_status() -> Capability:
    """Report whether PyTorch's CUDA is usable."""
    try:
        import torch
    except ImportError:
        return Capability("torch-cuda", False, reason="torch is not installed", fix="make install")
    if not torch.cuda.is_available():
        build = torch.version.cuda or "CPU-only build"
        return Capability("torch-cuda", False, detail=f"torch {torch.__version__} ({build})",
                          reason="no CUDA device visible to PyTorch",
                          fix="run on a machine with an NVIDIA GPU and a CUDA build of torch")
    return Capability("torch-cuda", True, detail=f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}")


def ort_providers() -> list[str]:
    """ONNX Runtime's available execution providers (empty if ONNX Runtime is missing)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def ort_cuda_status() -> Capability:
    """Can ONNX Runtime run on CUDA? Checks the package, the provider list and a GPU."""
    if "CUDAExecutionProvider" not in ort_providers():
        pkg = "onnxruntime-gpu" if package_version("onnxruntime-gpu") else "onnxruntime (CPU build)"
        return Capability("ort-cuda", False, detail=pkg,
                          reason=f"CUDAExecutionProvider is not in {pkg}'s providers",
                          fix="pip install -c constraints.txt -e '.[gpu]' on a CUDA 13 machine (installs onnxruntime-gpu)")
    if gpu_name() is None:
        return Capability("ort-cuda", False, reason="onnxruntime-gpu is installed but no CUDA device is visible",
                          fix="run on a machine with an NVIDIA GPU")
    return Capability("ort-cuda", True, detail=f"onnxruntime-gpu {package_version('onnxruntime-gpu')}")


def tensorrt_status() -> Capability:
    """Can ONNX Runtime's TensorRT provider run? Needs the provider, the ``tensorrt`` libraries and a GPU."""
    providers = ort_providers()
    if "TensorrtExecutionProvider" not in providers:
        return Capability("ort-trt", False, reason="TensorrtExecutionProvider is not in ONNX Runtime's providers",
                          fix="install onnxruntime-gpu (extra [gpu]) and TensorRT 10 from NVIDIA's package index")
    try:
        trt = importlib.import_module("tensorrt")
        detail = f"tensorrt {trt.__version__}"
    except Exception as exc:  # noqa: BLE001 - any import failure means the libraries are absent
        return Capability("ort-trt", False,
                          reason=f"the TensorRT libraries are not installed ({type(exc).__name__}: {exc})",
                          fix="pip install tensorrt from NVIDIA's index (pypi.nvidia.com); "
                              "the PyPI package is only a download stub")
    if gpu_name() is None:
        return Capability("ort-trt", False, detail=detail, reason="no CUDA device is visible",
                          fix="run on a machine with an NVIDIA GPU")
    return Capability("ort-trt", True, detail=detail)


def modelopt_status() -> Capability:
    """Report whether NVIDIA ModelOpt's PyTorch quantization imports, and where it runs."""
    try:
        importlib.import_module("modelopt.torch.quantization")
    except Exception as exc:  # noqa: BLE001
        return Capability("modelopt", False, reason=f"modelopt.torch.quantization failed to import: {exc}",
                          fix="pip install -c constraints.txt nvidia-modelopt")
    where = "CPU and CUDA" if gpu_name() else "CPU (fake quantization in PyTorch)"
    return Capability("modelopt", True, detail=f"nvidia-modelopt {package_version('nvidia-modelopt')}, {where}")


def capabilities() -> list[Capability]:
    """Every capability check, in the order notebook 00 shows them."""
    return [torch_cuda_status(), ort_cuda_status(), tensorrt_status(), modelopt_status()]
