"""Integration test: the whole suite in smoke mode under papermill, as `make run` runs it."""

import json

import pytest

from nbutils.results import read_results
from nbutils.runner import discover, run_suite

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    import os

    runs = tmp_path_factory.mktemp("runs")
    old = os.environ.get("NBUTILS_RUNS_DIR")
    os.environ["NBUTILS_RUNS_DIR"] = str(runs)
    try:
        run_dir, outcomes = run_suite("smoke", progress=False)
    finally:
        if old is None:
            os.environ.pop("NBUTILS_RUNS_DIR")
        else:
            os.environ["NBUTILS_RUNS_DIR"] = old
    return runs, run_dir, outcomes


def test_every_notebook_ran(smoke_run):
    _, run_dir, outcomes = smoke_run
    failed = [o.error for o in outcomes if not o.ok]
    assert not failed, failed
    assert [o.name for o in outcomes] == [nb.name for nb in discover()]
    for o in outcomes:
        executed = json.loads(o.output.read_text())
        assert any(c.get("outputs") for c in executed["cells"] if c["cell_type"] == "code")


def test_summary_and_database(smoke_run):
    runs, run_dir, _ = smoke_run
    page = (run_dir / "summary.html").read_text()
    assert "Accuracy (validation split)" in page and "html/10_baseline.html" in page
    df = read_results(run_dir.name, runs / "results.sqlite")
    by_nb = set(df["notebook"])
    assert {"10_baseline", "20_ptq", "30_qat"} <= by_nb
    fp32 = df[(df.notebook == "10_baseline") & (df.metric == "accuracy")]
    assert len(fp32) == 1 and 0 <= fp32.value.item() <= 100
    ptq = df[(df.notebook == "20_ptq") & (df.metric == "accuracy")]
    assert {"ptq-max", "ptq-entropy", "ptq-mse", "ptq-percentile-99.99"} <= set(ptq.recipe)
    assert (run_dir / "checkpoints").is_dir()
    ort = df[(df.notebook == "40_export") & (df.metric == "accuracy") & (df.engine == "ort-cpu")]
    assert {"fp32", "qat", "qat-kd", "ort-dynamic", "ort-static-minmax"} <= set(ort.recipe)
    assert (run_dir / "onnx" / "qat" / "variant.json").is_file()
    lat = df[(df.notebook == "60_benchmark") & (df.metric == "latency_p50_ms")]
    assert {"torch-eager", "ort-cpu"} <= set(lat.engine) and (lat.value > 0).all()
    assert (run_dir / "benchmark" / "latency-all-MiniLM-L6-v2.md").is_file()
    acc70 = df[(df.notebook == "70_accuracy") & (df.metric == "accuracy")]
    assert {"fp32", "fp16", "ort-dynamic", "qat", "fp8", "fp8-static"} <= set(acc70.recipe)
    assert (run_dir / "report" / "accuracy.csv").is_file()
