import multiprocessing as mp
import sqlite3

import pytest

from nbutils.core.errors import NbUtilsError
from nbutils.store.db import Measurement, Provenance, read_results, record


def _prov(run="20260101-000000-t"):
    return Provenance(run, "10_baseline", "m", "classification", "data", {"torch": "x"}, {"cpu": "y"})


def test_record_and_read_back(tmp_path):
    db = tmp_path / "r.sqlite"
    n = record([Measurement("accuracy", 91.5, "fp32", "torch-eager", "fp32", None, 64),
                Measurement("latency_p50_ms", 3.2, "fp32", "torch-eager", "fp32", 1, 64)], _prov(), db)
    assert n == 2
    df = read_results("latest", db)
    assert list(df.columns)[:3] == ["run_id", "notebook", "model"]
    assert set(df["metric"]) == {"accuracy", "latency_p50_ms"}
    assert df.loc[df.metric == "accuracy", "unit"].item() == "%"


def test_invalid_row_writes_nothing(tmp_path):
    db = tmp_path / "r.sqlite"
    record([Measurement("accuracy", 90.0, "fp32", "e", "fp32")], _prov(), db)
    with pytest.raises(NbUtilsError, match="unknown metric"):
        record([Measurement("accuracy", 1.0, "fp32", "e", "fp32"),
                Measurement("speed", 1.0, "fp32", "e", "fp32")], _prov("20260102-000000-t"), db)
    with pytest.raises(NbUtilsError, match="non-finite"):
        record([Measurement("accuracy", float("nan"), "fp32", "e", "fp32")], _prov("20260102-000000-t"), db)
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1


def _writer(args):
    db, run = args
    for i in range(20):
        record([Measurement("accuracy", float(i), "fp32", "e", "fp32")], _prov(run), db)


def test_two_writers_at_once(tmp_path):
    db = tmp_path / "r.sqlite"
    record([], _prov(), db)
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_writer, [(str(db), "20260101-000000-a"), (str(db), "20260101-000000-b")])
    df = read_results(None, db)
    assert len(df) == 40


def test_unknown_run(tmp_path):
    db = tmp_path / "r.sqlite"
    record([Measurement("accuracy", 1.0, "fp32", "e", "fp32")], _prov(), db)
    with pytest.raises(NbUtilsError, match="no results for run"):
        read_results("nope", db)


def test_copy_rows_validates_every_row_and_replaces_the_run(tmp_path):
    from nbutils.store.db import copy_rows, read_results

    db = tmp_path / "r.sqlite"
    base = {"run_id": "other", "notebook": "60_benchmark", "model": "m", "task": "classification", "recipe": "fp32",
            "engine": "ort-cpu:fp32", "precision": "fp32", "batch": 1, "seq": 8, "metric": "latency_p50_ms",
            "value": 1.5, "unit": "ms", "data": "", "versions": "{}", "hardware": "{}", "extra": "{}"}
    assert copy_rows([base, {**base, "batch": 8}], "cell-1", db) == 2
    assert copy_rows([base], "cell-1", db) == 1  # idempotent: the cell's earlier rows are replaced
    with pytest.raises(NbUtilsError, match="unknown metric"):
        copy_rows([base, {**base, "metric": "speed"}], "cell-1", db)
    with pytest.raises(NbUtilsError, match="non-finite"):
        copy_rows([{**base, "value": float("nan")}], "cell-1", db)
    frame = read_results("cell-1", db)
    assert len(frame) == 1 and frame.run_id.tolist() == ["cell-1"]  # nothing of the refused writes landed
