"""Latency measurement the way TensorRT's BERT demo reports it.

Warm-up, many timed calls, then mean / p50 / p95 / p99 and throughput.

GPU callers pass ``sync`` (e.g. ``torch.cuda.synchronize``) so each call is timed to completion;
engines that own CUDA events time themselves and summarise with ``LatencyStats.from_samples``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nbutils.store import figures
from nbutils.store.db import Measurement


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one timed configuration (milliseconds per call of ``batch`` sequences)."""

    batch: int
    iterations: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    throughput_seq_s: float

    @classmethod
    def from_samples(cls, samples_ms: np.ndarray | list[float], batch: int) -> LatencyStats:
        """Summarise raw per-call times."""
        arr = np.asarray(samples_ms, dtype=np.float64)
        if arr.size == 0:
            raise ValueError("no timing samples")
        p50, p95, p99 = np.percentile(arr, [50, 95, 99])
        mean = float(arr.mean())
        return cls(batch, int(arr.size), mean, float(p50), float(p95), float(p99), 1000.0 * batch / mean)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for DataFrames)."""
        return asdict(self)

    def measurements(self, *, recipe: str, engine: str, precision: str, seq: int,
                     extra: dict[str, Any] | None = None) -> list[Measurement]:
        """The five latency/throughput rows for the results database."""
        return figures.latency(self.as_dict(), recipe=recipe, engine=engine, precision=precision, batch=self.batch,
                               seq=seq, extra={"iterations": self.iterations, **(extra or {})})


def time_callable(fn: Callable[[], Any], *, batch: int, warmup: int = 10, iterations: int = 100,
                  sync: Callable[[], None] | None = None, max_seconds: float | None = None) -> LatencyStats:
    """Time ``fn()``: ``warmup`` untimed calls, then ``iterations`` timed ones.

    Args:
        fn: the call to time (inputs already prepared).
        batch: sequences per call (for throughput).
        warmup: untimed calls first (compilation, allocator, caches).
        iterations: timed calls.
        sync: called after ``fn`` inside the timed region (GPU synchronisation).
        max_seconds: stop early once this much timed wall time has passed (at least 5 calls).

    """
    if iterations <= 0 or warmup < 0 or batch <= 0:
        raise ValueError(f"iterations and batch must be positive, warmup >= 0 (got {iterations}, {batch}, {warmup})")
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    samples = []
    spent = 0.0
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        dt = time.perf_counter() - t0
        samples.append(dt * 1000.0)
        spent += dt
        if max_seconds is not None and spent > max_seconds and len(samples) >= 5:
            break
    return LatencyStats.from_samples(samples, batch)


def time_cuda(call: Callable[[], Any], *, batch: int, warmup: int, iterations: int) -> LatencyStats:
    """Per-call CUDA-event timing (inputs on the device: copies excluded)."""
    import torch

    for _ in range(warmup):
        call()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
    for s, e in zip(starts, ends, strict=True):
        s.record()
        call()
        e.record()
    torch.cuda.synchronize()
    return LatencyStats.from_samples([s.elapsed_time(e) for s, e in zip(starts, ends, strict=True)], batch)


def torch_latency(model: Any, tokenizer: Any = None, *, batches: Sequence[int] = (1,), seq: int = 128,
                  iterations: int = 50, warmup: int = 5) -> list[LatencyStats]:
    """PyTorch eager latency of ``model`` for each batch size at sequence length ``seq``.

    Timed where the model is: CPU wall clock, or CUDA events with the inputs already on the GPU.
    """
    import torch

    from nbutils.core.device import model_device, to_device
    from nbutils.training.inputs import synthetic_batch

    device = model_device(model)
    timer = time_cuda if device.type == "cuda" else time_callable
    vocab = getattr(tokenizer, "vocab_size", None) or model.config.vocab_size
    out = []
    for b in batches:
        feed = to_device(synthetic_batch(int(b), seq, vocab_size=vocab), device)

        def call(feed: dict[str, Any] = feed) -> None:
            with torch.inference_mode():
                model(**feed)

        out.append(timer(call, batch=int(b), warmup=warmup, iterations=iterations))
    return out
