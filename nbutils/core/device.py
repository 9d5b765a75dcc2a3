"""Where PyTorch work runs: the ``device`` parameter (``auto`` | ``cpu`` | ``cuda``).

Every notebook that trains, calibrates or evaluates declares it.

One home for the rule: :func:`resolve` turns the parameter into a :class:`Device` before any work (``auto`` picks
CUDA when PyTorch sees a GPU; ``cuda`` without one is an error that names the fix), :func:`check_fits` refuses a
batch the GPU's free memory cannot hold (again before any work, so no checkpoint is half written), and
:meth:`Device.meta` is what every figure records (``extra["device"]``, ``extra["device_name"]``). Everything
downstream follows the model: :func:`model_device` and :func:`to_device` put a batch where the model's weights are.

The memory estimate is deliberately simple and documented (weights, gradients and AdamW state in FP32, activations
after Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models": ``s·b·h·(34 +
5·a·s/h)`` bytes per layer in 16-bit, doubled for FP32). It is an estimate for a clear early error, not an
allocator: no library offers one for an arbitrary Hugging Face model before allocating it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbutils.core.errors import NbUtilsError

if TYPE_CHECKING:
    import torch

#: The accepted values of the ``device`` parameter.
CHOICES = ("auto", "cpu", "cuda")
#: The accepted values of the ``train_precision`` parameter.
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Device:
    """A resolved device: ``kind`` is ``cpu`` or ``cuda``; ``name`` the GPU's or CPU's name."""

    kind: str
    name: str
    requested: str = "auto"
    total_mb: float | None = None
    bf16: bool = False

    @property
    def torch(self) -> str:
        """The ``torch.device`` string (``cuda:0`` or ``cpu``)."""
        return "cuda:0" if self.kind == "cuda" else "cpu"

    @property
    def is_cuda(self) -> bool:
        """Whether work runs on the GPU."""
        return self.kind == "cuda"

    def meta(self) -> dict[str, Any]:
        """What every figure measured on this device records in ``extra``."""
        return {"device": self.kind, "device_name": self.name, "device_requested": self.requested}

    def train_precision(self, requested: str = "auto") -> str:
        """The fine-tuning precision: ``auto`` is BF16 autocast on a GPU that supports it, FP32 otherwise."""
        if requested not in PRECISIONS:
            raise NbUtilsError(f"unknown train_precision {requested!r}", f"use one of: {', '.join(PRECISIONS)}")
        if requested == "bf16" and not (self.is_cuda and self.bf16):
            raise NbUtilsError(f"train_precision='bf16' needs a GPU with BF16 support (this run is on {self.name})",
                               "use train_precision='auto' or 'fp32'")
        if requested == "auto":
            return "bf16" if self.is_cuda and self.bf16 else "fp32"
        return requested

    def put(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move ``model`` to this device (in place, as ``Module.to`` does) and return it."""
        return model.to(self.torch)


def _cuda_probe() -> tuple[bool, str, float | None, bool]:
    """(visible, name, total MB, bf16) of the first CUDA device as PyTorch sees it."""
    try:
        import torch
    except ImportError:
        return False, "", None, False
    if not torch.cuda.is_available():
        return False, "", None, False
    props = torch.cuda.get_device_properties(0)
    return True, props.name, props.total_memory / 2**20, bool(torch.cuda.is_bf16_supported())


def cuda_free_mb() -> float:
    """Free memory of the first CUDA device in MB (``cudaMemGetInfo``)."""
    import torch

    free, _total = torch.cuda.mem_get_info(0)
    return free / 2**20


def _cpu_name() -> str:
    from nbutils.core import env

    info = env.cpu_info()
    return str(info.get("cpu") or "CPU")


def resolve(requested: str = "auto", *, probe: Callable[[], tuple[bool, str, float | None, bool]] | None = None) -> Device:
    """Turn the ``device`` parameter into a :class:`Device`, or raise before any work.

    ``auto`` is CUDA when PyTorch sees a GPU, else the CPU; ``cuda`` without a visible GPU is an error naming the fix.
    ``probe`` replaces the CUDA query (tests).
    """
    req = str(requested).strip().lower()
    if req not in CHOICES:
        raise NbUtilsError(f"unknown device {requested!r}", f"use one of: {', '.join(CHOICES)}")
    visible, name, total, bf16 = (probe or _cuda_probe)()
    if req == "cuda" and not visible:
        raise NbUtilsError("device='cuda' was asked for, but PyTorch sees no CUDA GPU on this machine "
                           "(CPU-only torch build, no driver, or CUDA_VISIBLE_DEVICES hides it)",
                           "run with device='auto' or 'cpu' here, or on a GPU machine (tools/gpu.sh)")
    if req == "cpu" or not visible:
        return Device("cpu", _cpu_name(), req)
    return Device("cuda", name, req, total, bf16)


def engine_device(runtime: str, device: Device | None = None) -> str:
    """Where an engine of ``runtime`` runs (the one rule for the device stored with a figure).

    An ONNX Runtime or OpenVINO runtime has a fixed device (:data:`nbutils.core.vocab.RUNTIME_DEVICE`); a PyTorch
    runtime runs where PyTorch runs (``device``, resolved from ``auto`` if None).
    """
    from nbutils.core.vocab import RUNTIME_DEVICE

    fixed = RUNTIME_DEVICE.get(runtime)
    return fixed or (device if device is not None else resolve()).kind


def training_memory_mb(n_params: int, *, batch: int, seq: int, hidden: int, layers: int, heads: int,
                       precision: str = "fp32") -> float:
    """Estimated peak GPU memory (MB) of fine-tuning with AdamW.

    FP32 weights + gradients + two moments, plus activations (Korthikanti et al. 2022: ``s·b·h·(34 + 5·a·s/h)`` bytes
    per layer in 16-bit; ×2 in FP32).
    """
    states = 16.0 * n_params  # weights, gradients, exp_avg, exp_avg_sq: 4 bytes each
    per_layer = seq * batch * hidden * (34 + 5 * heads * seq / hidden)
    activations = layers * per_layer * (1.0 if precision == "bf16" else 2.0)
    return (states + activations) / 2**20


def model_shape(model: torch.nn.Module) -> dict[str, int]:
    """Parameter count and the transformer sizes the estimate needs (from the model's config)."""
    cfg = model.config
    return {"n_params": sum(p.numel() for p in model.parameters()), "hidden": int(cfg.hidden_size),
            "layers": int(cfg.num_hidden_layers), "heads": int(cfg.num_attention_heads)}


def check_fits(device: Device, need_mb: float, what: str, *, free_mb: Callable[[], float] | None = None,
               headroom: float = 1.1) -> None:
    """Raise before any work if ``need_mb`` (×``headroom``) exceeds the GPU's free memory; no-op on the CPU."""
    if not device.is_cuda:
        return
    free = (free_mb or cuda_free_mb)()
    if need_mb * headroom > free:
        raise NbUtilsError(f"{what} needs about {need_mb:,.0f} MB of GPU memory (estimate, +{headroom - 1:.0%} "
                           f"headroom) but {device.name} has {free:,.0f} MB free",
                           "lower batch_size or max_length, free the GPU (other processes), or run with device='cpu'")


def check_training_fits(device: Device, model: torch.nn.Module, *, batch: int, seq: int, precision: str,
                        what: str = "fine-tuning", free_mb: Callable[[], float] | None = None) -> float:
    """:func:`check_fits` for fine-tuning ``model`` at ``batch`` × ``seq``; returns the estimate (MB)."""
    need = training_memory_mb(**model_shape(model), batch=batch, seq=seq, precision=precision)
    check_fits(device, need, f"{what} at batch {batch} × {seq} tokens", free_mb=free_mb)
    return need


def model_device(model: torch.nn.Module) -> torch.device:
    """The device holding ``model``'s first parameter (CPU for a parameterless module)."""
    import torch

    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def to_device(batch: Mapping[str, Any], device: Any) -> dict[str, torch.Tensor]:
    """A numpy/tensor batch as tensors on ``device`` (non-blocking copies from the host)."""
    import torch

    return {k: torch.as_tensor(v).to(device, non_blocking=True) for k, v in batch.items()}


def cpu_copy(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` itself when it is on the CPU, else a CPU copy (the original stays where it is).

    Converters (ONNX export, OpenVINO's frontend) trace on the CPU, so a file never depends on where training ran.
    """
    if model_device(model).type == "cpu":
        return model
    import copy

    return copy.deepcopy(model).cpu()


@contextlib.contextmanager
def autocast(device: Any, precision: str) -> Iterator[None]:
    """BF16 autocast on CUDA when ``precision == 'bf16'``; a no-op otherwise (FP32)."""
    import torch

    kind = torch.device(device).type
    if precision == "bf16" and kind == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield
