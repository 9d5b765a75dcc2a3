"""The row builders (nbutils.store.figures): one shape per kind of figure."""
import math

from nbutils.engines.timing import LatencyStats
from nbutils.store import figures


def test_scores_keeps_metrics_only_and_skips_non_finite():
    rows = figures.scores({"accuracy": 91.0, "agreement": 99.0, "delta_95ci": "[-1, 1]", "f1": float("nan")},
                          recipe="ptq-max", engine="ort-cpu:int8-qdq", precision="int8", seq=128, skip=("agreement",))
    assert [(r.metric, r.value, r.batch, r.seq) for r in rows] == [("accuracy", 91.0, None, 128)]


def test_latency_rows_match_the_stats_and_carry_extra():
    stats = LatencyStats.from_samples([1.0, 2.0, 3.0, 4.0], batch=8)
    rows = stats.measurements(recipe="fp32", engine="ort-cpu:fp32", precision="fp32", seq=64, extra={"threads": 2})
    by = {r.metric: r for r in rows}
    assert set(by) == set(figures.LATENCY_FIELDS)
    assert math.isclose(by["latency_p50_ms"].value, stats.p50_ms) and by["throughput_seq_s"].batch == 8
    assert all(r.extra == {"iterations": 4, "threads": 2} and r.seq == 64 for r in rows)
    for r in rows:
        r.validate()


def test_file_size_has_no_shape():
    r = figures.file_size(23.5, recipe="ort-static-minmax", engine="ort-cpu:int8-static", precision="int8")
    assert (r.metric, r.value, r.batch, r.seq) == ("size_mb", 23.5, None, None)
