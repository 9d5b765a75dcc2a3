"""The suite's vocabulary, in one place: what a recipe, an engine and a main metric are called.

Every notebook, report, chart and the dashboard use these functions, so a variant has one identity
everywhere (the database, CSV files, tables, charts):

* **recipe** ↔ **run-folder path**: an ONNX variant lives in ``<run>/onnx/<recipe>/`` (the recipe *is* the
  folder name: ``fp32``, ``fp32-fused``, ``fp32-o1``, ``fp16``, ``ort-dynamic``, ``ort-dynamic-fused``,
  ``ort-static-<calibrator>``, ``ptq-<calibrator>[-<placement>]``, ``qat``, ``qat-kd``, ``nncf-ptq``,
  ``nncf-ptq-ac``, ``nncf-qat``); a recipe's OpenVINO IR lives beside it in ``<run>/onnx/<recipe>/openvino/``.
* **engine name** ↔ **database identity**: the ``engine`` column holds the full engine name
  ``<runtime>:<precision>[:<option>]`` (``torch-compile:fp16:cudagraphs``), never a shortened form, so two
  variants of one runtime can never share a key (the engine-collapse bug: ``torch-compile:fp16`` and
  ``torch-compile:fp16:cudagraphs`` once pivoted into one cell).
* **main metric** of a task: ``accuracy`` (classification) or ``f1`` (extractive QA).

Databases written before this rule held the runtime only (``torch-compile``) and kept the full name in
``extra.engine_name``; :func:`normalize_legacy` recovers the identity from there, both when reading
(in memory, nothing written) and once when writing (:mod:`nbutils.store.db` migrates in a transaction).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

#: Task → the metric every delta and Pareto front uses.
MAIN_METRIC = {"classification": "accuracy", "qa": "f1"}

#: Runtimes (the part of an engine name before the first colon).
RUNTIMES = ("torch-eager", "torch-compile", "torch-fp8", "ort-cpu", "ort-cuda", "ort-trt", "ort-ov", "ov-cpu")

#: The fixed metric vocabulary (README "Metrics") and each metric's unit.
METRICS: dict[str, str] = {
    "accuracy": "%",
    "exact_match": "%",
    "f1": "%",
    "agreement": "%",
    "latency_mean_ms": "ms",
    "latency_p50_ms": "ms",
    "latency_p95_ms": "ms",
    "latency_p99_ms": "ms",
    "throughput_seq_s": "seq/s",
    "peak_memory_mb": "MB",  # with every latency row: the engine's peak memory over its baseline (extra: method)
    "size_mb": "MB",
    "calibration_s": "s",
    "train_s": "s",
    "sqnr_db": "dB",
    # notebook 80: one quantizer group alone quantized / alone left float (extra holds the group), INT8 FLOP share
    "accuracy_quant_alone": "%",
    "accuracy_float_alone": "%",
    "f1_quant_alone": "%",
    "f1_float_alone": "%",
    "sqnr_db_quant_alone": "dB",
    "sqnr_db_float_alone": "dB",
    "int8_flop_share": "fraction",
}

#: The metrics of quality (higher is better) and of speed, as tables group them.
ACCURACY_METRICS = ["accuracy", "exact_match", "f1", "agreement"]
LATENCY_METRICS = ["latency_mean_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "throughput_seq_s"]

#: ONNX Runtime's static-quantization calibrators (recipe ``ort-static-<calibrator>``).
ORT_CALIBRATORS = ("minmax", "entropy", "percentile-99.99", "percentile-99.999")

#: Older folder names of recipes (read only; new runs write ``<run>/onnx/<recipe>/``).
_LEGACY_FOLDERS = {"ort-dynamic": ("ort-dynamic-plain",)}


def main_metric(task_or_metrics: str | Mapping[str, Any] | Any) -> str:
    """The main metric for a task name, or for a mapping/columns holding metric names.

    >>> main_metric("qa"), main_metric({"accuracy": 90.0}), main_metric(["exact_match", "f1"])
    ('f1', 'accuracy', 'f1')
    """
    if isinstance(task_or_metrics, str):
        if task_or_metrics not in MAIN_METRIC:
            from nbutils.core.errors import NbUtilsError

            raise NbUtilsError(f"unknown task {task_or_metrics!r}", f"use one of {sorted(MAIN_METRIC)}")
        return MAIN_METRIC[task_or_metrics]
    names = set(task_or_metrics)
    return "accuracy" if "accuracy" in names else "f1"


def outputs_file(run_dir: str | Path, engine: str, sha256: str) -> Path:
    """Where a model file's validation outputs on an engine are kept for later notebooks (``tasks.recorded``)."""
    return Path(run_dir) / "cache" / "outputs" / f"{engine.replace(':', '_')}-{sha256[:16]}.npz"


def variant_dir(run_dir: str | Path, recipe: str) -> Path:
    """The folder of a recipe's ONNX variant in a run folder (an older run's folder name where that exists)."""
    path = Path(run_dir) / "onnx" / recipe
    for old in _LEGACY_FOLDERS.get(recipe, ()):
        legacy = Path(run_dir) / "onnx" / old
        if not path.exists() and legacy.exists():
            return legacy
    return path


def recipe_of_folder(folder: str | Path) -> str:
    """The recipe a variant folder holds (inverse of :func:`variant_dir`)."""
    name = Path(folder).name
    for recipe, olds in _LEGACY_FOLDERS.items():
        if name in olds:
            return recipe
    return name


def engine_name(runtime: str, precision: str, option: str = "") -> str:
    """Compose a full engine name: ``engine_name("torch-compile", "fp16", "cudagraphs")``."""
    return ":".join(p for p in (runtime, precision, option) if p)


def runtime_of(engine: str) -> str:
    """The runtime part of a full engine name (``ort-cuda:fp16:cudagraph`` → ``ort-cuda``)."""
    return str(engine).split(":", 1)[0]


#: The device a runtime always runs on; PyTorch runtimes run where the model is (not listed).
RUNTIME_DEVICE = {"ort-cpu": "cpu", "ov-cpu": "cpu", "ort-ov": "cpu", "ort-cuda": "cuda", "ort-trt": "cuda"}

#: The ONNX Runtime execution provider behind each ``ort-*`` runtime (keys of ``ort_session.PROVIDERS``).
ORT_PROVIDERS = {"ort-cpu": "cpu", "ort-cuda": "cuda", "ort-trt": "tensorrt", "ort-ov": "openvino"}


def option_of(engine: str) -> str:
    """The option part of a full engine name (``cudagraphs``), or empty."""
    parts = str(engine).split(":")
    return parts[2] if len(parts) > 2 else ""


def label(engine: str, recipe: str) -> str:
    """The one label of a (engine, recipe) variant in tables and charts."""
    return f"{engine} · {recipe}"


def _legacy_identity(engine: str, recipe: str, extra: Mapping[str, Any]) -> tuple[str, str]:
    """(engine, recipe) of a row written before the identity rule."""
    name = extra.get("engine_name")
    if isinstance(name, str) and name and ":" not in engine:
        engine = name
    variant = extra.get("variant")
    if isinstance(variant, str) and variant and variant != recipe and recipe in ("fp32", "ort-dynamic"):
        recipe = variant if variant != "ort-dynamic-plain" else "ort-dynamic"
    return engine, recipe


def normalize_legacy(frame: pd.DataFrame) -> pd.DataFrame:
    """Give rows written before the identity rule their full identity (in memory; the database is not touched).

    Needs the ``extra`` column; rows already written under the rule are returned unchanged.
    """
    if frame.empty or "extra" not in frame.columns:
        return frame
    frame = frame.copy()
    pairs = []
    for engine, recipe, extra in zip(frame["engine"], frame["recipe"], frame["extra"], strict=True):
        try:
            parsed = json.loads(extra) if isinstance(extra, str) else dict(extra or {})
        except (TypeError, ValueError):
            parsed = {}
        pairs.append(_legacy_identity(str(engine), str(recipe), parsed))
    frame["engine"] = [p[0] for p in pairs]
    frame["recipe"] = [p[1] for p in pairs]
    return frame
