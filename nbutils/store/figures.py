"""The row builders: one function per kind of figure the suite stores.

Notebooks and the package build results-database rows only through these functions, so a figure of one kind
is always stored the same way (its metric names, shape columns and ``extra``):

* :func:`scores`: a model's quality on a data set (accuracy, F1, EM, agreement, SQNR), one row per metric;
* :func:`latency`: the five latency/throughput figures of one timed (batch, seq) shape;
* :func:`file_size`: the size of a model file on disk;
* :func:`figure`: any other single figure of the vocabulary (training time, FLOP share, per-group sensitivity).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nbutils.core.vocab import METRICS
from nbutils.store.db import Measurement

LATENCY_FIELDS = {"latency_mean_ms": "mean_ms", "latency_p50_ms": "p50_ms", "latency_p95_ms": "p95_ms",
                  "latency_p99_ms": "p99_ms", "throughput_seq_s": "throughput_seq_s"}


def figure(metric: str, value: float, *, recipe: str, engine: str, precision: str, batch: int | None = None,
           seq: int | None = None, extra: Mapping[str, Any] | None = None) -> Measurement:
    """One figure of the metric vocabulary (validated when recorded)."""
    return Measurement(metric, float(value), recipe, engine, precision, None if batch is None else int(batch),
                       None if seq is None else int(seq), dict(extra or {}))


def scores(values: Mapping[str, Any], *, recipe: str, engine: str, precision: str, seq: int | None,
           extra: Mapping[str, Any] | None = None, skip: tuple[str, ...] = ()) -> list[Measurement]:
    """Quality figures of one evaluation: a row per finite value whose key is a metric (other keys are ignored).

    Evaluations run over a whole data set, so ``batch`` is empty; ``seq`` is the tokenizer's maximum length.
    """
    return [figure(m, v, recipe=recipe, engine=engine, precision=precision, seq=seq, extra=extra)
            for m, v in values.items()
            if m in METRICS and m not in skip and v is not None and math.isfinite(float(v))]


def latency(values: Mapping[str, Any], *, recipe: str, engine: str, precision: str, batch: int, seq: int,
            extra: Mapping[str, Any] | None = None) -> list[Measurement]:
    """The latency/throughput rows of one timed shape.

    ``values`` names them as :class:`~nbutils.engines.timing.LatencyStats` does (``mean_ms``, ``p50_ms``, ...),
    with ``peak_memory_mb`` too when present.
    """
    fields = {**LATENCY_FIELDS, "peak_memory_mb": "peak_memory_mb"}
    return [figure(m, values[k], recipe=recipe, engine=engine, precision=precision, batch=batch, seq=seq, extra=extra)
            for m, k in fields.items() if k in values and values[k] is not None]


def file_size(size_mb: float, *, recipe: str, engine: str, precision: str,
              extra: Mapping[str, Any] | None = None) -> Measurement:
    """The size of a model file on disk (MB); a file has no batch or sequence length."""
    return figure("size_mb", size_mb, recipe=recipe, engine=engine, precision=precision, extra=extra)
