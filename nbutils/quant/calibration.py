"""Calibration: one streamed histogram pass, then each method's range (max, percentile, entropy, MSE)."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from nbutils.core.errors import NbUtilsError
from nbutils.quant.placement import insert_quantizers, quantizers
from nbutils.quant.recipes import CALIBRATORS, Recipe
from nbutils.training.metrics import sqnr_db  # noqa: F401 - re-exported as quant.sqnr_db (one home: nbutils.training.metrics)

if TYPE_CHECKING:
    import torch



def collect_statistics(model: torch.nn.Module, batches: Iterable[dict[str, np.ndarray]], *,
                       progress: bool = False) -> int:
    """Stream calibration batches through ``model`` and fill every quantizer's calibrator.

    Returns the number of sequences seen. Raises if there are none (no silent uncalibrated model).
    """
    import torch
    from modelopt.torch.quantization.model_calib import enable_stats_collection

    from nbutils.core.device import model_device, to_device
    from nbutils.core.progress import bar as tqdm
    from nbutils.training.tasks import model_inputs

    device = model_device(model)
    enable_stats_collection(model)
    seen = 0
    with torch.no_grad():
        for batch in tqdm(list(batches), desc="calibrate", disable=not progress, leave=False):
            model(**to_device(model_inputs(batch), device))
            seen += len(batch["input_ids"])
    if seen == 0:
        raise NbUtilsError("the calibration set is empty", "give calib_samples > 0 (e.g. 256 training sentences)")
    return seen


def apply_calibrator(model: torch.nn.Module, calibrator: str) -> None:
    """Set every enabled quantizer's range from the collected statistics with ``calibrator``.

    Weights always use max (per channel or per tensor, as placed); activations use the method.
    Can be called again with another method: the histograms are kept.
    """
    from modelopt.torch.quantization.calib.histogram import HistogramCalibrator

    from nbutils.core.device import model_device

    if calibrator not in CALIBRATORS:
        raise NbUtilsError(f"unknown calibrator {calibrator!r}", f"use one of: {', '.join(CALIBRATORS)}")
    method, kwargs = CALIBRATORS[calibrator]
    for name, q in quantizers(model):
        cal = getattr(q, "_calibrator", None)
        if cal is None:
            continue
        if isinstance(cal, HistogramCalibrator):
            if getattr(cal, "_calib_bin_edges", None) is None:
                raise NbUtilsError(f"quantizer {name} saw no data during calibration",
                                   "make sure the calibration batches reach every quantized layer")
            if method == "max":
                import torch

                q.amax = torch.as_tensor(float(cal._calib_bin_edges[-1]), device=model_device(model))
            else:
                q.load_calib_amax(method, **kwargs)
        else:
            q.load_calib_amax()
        q.enable_quant()
        q.disable_calib()


def histogram(model: torch.nn.Module, quantizer_name: str) -> tuple[np.ndarray, np.ndarray]:
    """The collected |activation| histogram (edges, counts) of one quantizer."""
    qs = dict(quantizers(model))
    if quantizer_name not in qs:
        close = [n for n in qs if quantizer_name.split(".")[-1] in n][:5]
        raise NbUtilsError(f"no enabled quantizer named {quantizer_name!r}", f"pick one from quant_summary(); e.g. {close}")
    cal = qs[quantizer_name]._calibrator
    edges = _host(cal._calib_bin_edges)
    counts = _host(cal._calib_hist)
    return edges, counts


def _host(values: object) -> np.ndarray:
    """A calibrator's statistics as float64 numpy (they live on the model's device: a GPU tensor on CUDA)."""
    if hasattr(values, "detach"):
        values = values.detach().float().cpu().numpy()  # type: ignore[attr-defined]
    return np.asarray(values, dtype=np.float64)


def amax_under(model: torch.nn.Module, quantizer_name: str, calibrator: str) -> float:
    """The range ``calibrator`` picks for one activation quantizer (from its kept histogram)."""
    method, kwargs = CALIBRATORS[calibrator]
    cal = dict(quantizers(model))[quantizer_name]._calibrator
    if method == "max":
        return float(cal._calib_bin_edges[-1])
    return float(cal.compute_amax(method, **kwargs))


def quantize_ptq(model: torch.nn.Module, calib_batches: Sequence[dict[str, np.ndarray]], recipe: Recipe, *,
                 progress: bool = False) -> tuple[torch.nn.Module, float]:
    """Copy ``model``, insert quantizers for ``recipe.placement``, calibrate with ``recipe.calibrator``.

    Returns the quantized copy and the calibration wall time in seconds.
    """
    recipe.validate()
    start = time.perf_counter()
    qmodel = insert_quantizers(copy.deepcopy(model), recipe.placement)
    collect_statistics(qmodel, calib_batches, progress=progress)
    apply_calibrator(qmodel, recipe.calibrator)
    return qmodel, time.perf_counter() - start
