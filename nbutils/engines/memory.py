"""Peak memory of an engine while it is built and timed: process RSS on the CPU, device memory on the GPU.

:class:`MemoryMeter` is started before an engine is built (its *baseline*) and read after each timed cell:
``peak_mb`` is the highest value seen since the start minus the baseline, so it includes the engine's weights,
workspaces and activations.

* CPU: the process's resident set size, sampled every few milliseconds in a background thread (psutil). RSS is what
  the operating system must hold for the engine; memory the allocator keeps after an earlier engine was released
  lowers later baselines, so read CPU figures as "at least this much more".
* GPU, PyTorch engines: ``torch.cuda.max_memory_allocated`` (exact for PyTorch's allocator, reset at the start).
* GPU, other engines (ONNX Runtime CUDA/TensorRT allocate outside PyTorch): device memory in use (NVML), sampled.
"""

from __future__ import annotations

import threading
import time
from typing import Any

#: How often the sampler reads RSS / device memory (seconds).
INTERVAL_S = 0.005


def rss_mb() -> float:
    """Resident set size of this process, MB."""
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def _nvml_used_mb() -> float | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return pynvml.nvmlDeviceGetMemoryInfo(handle).used / 1e6
    except Exception:  # noqa: BLE001 - no NVML (CPU machine, driver missing): no device figure
        return None


class MemoryMeter:
    """Peak memory over a baseline, sampled in a thread (see the module docstring for what is measured)."""

    def __init__(self, device: str = "cpu", *, torch_allocator: bool = False) -> None:
        self.device = device
        self.torch_allocator = torch_allocator and device == "cuda"
        if self.torch_allocator:
            self.method = "torch.cuda.max_memory_allocated over the allocation before setup"
        elif device == "cuda":
            self.method = "device memory in use (NVML) over its value before setup, sampled every 5 ms"
        else:
            self.method = "process RSS over its value before setup, sampled every 5 ms"
        self._read = self._reader()
        self.baseline = 0.0
        self._peak = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _reader(self) -> Any:
        if self.device != "cuda":
            return rss_mb
        if self.torch_allocator:
            import torch

            return lambda: torch.cuda.max_memory_allocated() / 1e6
        return _nvml_used_mb

    def start(self) -> MemoryMeter:
        """Take the baseline and start sampling."""
        if self.torch_allocator:
            import torch

            torch.cuda.synchronize()
            self.baseline = torch.cuda.memory_allocated() / 1e6
            torch.cuda.reset_peak_memory_stats()
        else:
            self.baseline = self._read() or 0.0
        self._peak = self.baseline
        if not self.torch_allocator:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            value = self._read()
            if value is not None and value > self._peak:
                self._peak = value
            time.sleep(INTERVAL_S)

    def peak_mb(self) -> float:
        """Peak since :meth:`start`, minus the baseline (MB, never negative)."""
        value = self._read()
        if value is not None:
            self._peak = max(self._peak, value)
        return max(0.0, self._peak - self.baseline)

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
