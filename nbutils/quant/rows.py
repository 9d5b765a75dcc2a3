"""Comparison-table rows and their results-database measurements."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from nbutils.core.vocab import main_metric
from nbutils.quant.calibration import sqnr_db

if TYPE_CHECKING:
    pass



def score_row(recipe: str, result: Any, fp32: Any, *, calibration_s: float | None = None,
              calib_samples: int | None = None) -> dict[str, Any]:
    """One comparison-table row: task metrics, delta to FP32 with its paired bootstrap 95% interval, agreement, SQNR."""
    main = main_metric(result.metrics)
    row: dict[str, Any] = {"recipe": recipe, **{k: round(v, 3) for k, v in result.metrics.items()},
                           f"delta_{main}_pts": round(result.metrics[main] - fp32.metrics[main], 3)}
    if getattr(result, "scores", None) is not None and getattr(fp32, "scores", None) is not None and result is not fp32:
        from nbutils.training.metrics import paired_bootstrap

        ci = paired_bootstrap(fp32.scores, result.scores)
        row["delta_95ci"] = f"[{ci['low']:+.2f}, {ci['high']:+.2f}]"
        row["differs_from_fp32"] = "yes" if ci["distinguishable"] else "cannot tell"
    if result.outputs is not None and fp32.outputs is not None:
        row["sqnr_db"] = round(sqnr_db(fp32.outputs, result.outputs), 2)
    if calibration_s is not None:
        row["calibration_s"] = round(calibration_s, 2)
    if calib_samples is not None:
        row["calib_samples"] = calib_samples
    return row


def rows_to_measurements(rows: Iterable[dict[str, Any]], *, engine: str = "torch-eager:int8-sim",
                         precision: str = "int8-sim", seq: int | None = None) -> list[Any]:
    """Comparison-table rows -> results-database measurements (known metrics only)."""
    from nbutils.core.vocab import METRICS
    from nbutils.store import figures

    out = []
    for row in rows:
        extra = {k: v for k, v in row.items() if k not in METRICS and k != "recipe"}
        fp32 = row["recipe"] == "fp32"
        out += figures.scores(row, recipe=row["recipe"], engine="torch-eager:fp32" if fp32 else engine,
                              precision="fp32" if fp32 else precision, seq=seq, extra=extra)
    return out
