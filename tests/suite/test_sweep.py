"""Sweeps on Dask distributed (issue 16): every cell's rows once, resources, a killed worker, Ctrl-C and resume."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nbutils.suite.cli import main
from nbutils.suite.sweep import load_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[2]


def _write(path, cells, name="t"):
    import yaml

    path.write_text(yaml.safe_dump({"name": name, "cells": cells}))
    return path


def _bench(batch, engine="torch-eager:fp32", iterations=5, **extra):
    return {"bench": {"model": "random:bert-tiny", "engines": [engine], "batch": [batch], "seq": [8],
                      "iterations": iterations, "warmup": 1}, **extra}


FOUR = [_bench(1), _bench(2), _bench(1, "ort-cpu:int8-dynamic"), _bench(2, "ort-cpu:int8-dynamic")]


def _rows(db):
    """The sweep's rows; none while a worker is still creating the database (the file exists before its table)."""
    con = sqlite3.connect(db)
    try:
        if con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='results'").fetchone() is None:
            return []
        return con.execute("SELECT run_id, engine, batch, metric, extra FROM results").fetchall()
    finally:
        con.close()


def _check_once(db, sweep_file):
    sweep = load_sweep(sweep_file)
    rows = _rows(db)
    by_run = {}
    for run_id, engine, batch, metric, extra in rows:
        by_run.setdefault(run_id, []).append((engine, batch, metric, json.loads(extra)))
    assert set(by_run) == {c.run_id(sweep.name) for c in sweep.cells}
    for cell in sweep.cells:
        got = by_run[cell.run_id(sweep.name)]
        assert len(got) == 6 and len({m for _, _, m, _ in got}) == 6, "each cell's six figures exactly once"
        for engine, batch, _, extra in got:
            assert engine == cell.args["engines"][0] and batch == cell.args["batch"][0]
            assert extra["cell_args"] == cell.args and extra["worker"].startswith(("tcp://", "inproc://"))
    return by_run


def test_four_cells_on_two_workers_each_row_once(tmp_path):
    sweep_file = _write(tmp_path / "s.yaml", FOUR)
    db = tmp_path / "runs" / "results.sqlite"
    summary = run_sweep(sweep_file, workers=2)
    assert summary["ok"] == 4
    _check_once(db, sweep_file)
    assert run_sweep(sweep_file, workers=2)["ok"] == 4  # running it again replaces, never duplicates
    _check_once(db, sweep_file)


def test_gpu_cells_run_only_on_the_gpu_worker(tmp_path):
    from distributed import Nanny, Scheduler, SpecCluster

    cells = [_bench(1, resources={"GPU": 1}), _bench(2, resources={"GPU": 1}), _bench(3), _bench(4)]
    sweep_file = _write(tmp_path / "g.yaml", cells)
    cluster = SpecCluster(scheduler={"cls": Scheduler, "options": {"dashboard_address": None}},
                          workers={"gpu": {"cls": Nanny, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
                                   "cpu": {"cls": Nanny, "options": {"nthreads": 1}}})
    try:
        info = cluster.scheduler_info["workers"]
        gpu = [a for a, w in info.items() if w.get("resources", {}).get("GPU")]
        assert len(gpu) == 1
        assert run_sweep(sweep_file, scheduler=cluster.scheduler_address)["ok"] == 4
    finally:
        cluster.close()
    by_run = _check_once(tmp_path / "runs" / "results.sqlite", sweep_file)
    sweep = load_sweep(sweep_file)
    for cell in sweep.cells:
        workers = {extra["worker"] for *_, extra in by_run[cell.run_id(sweep.name)]}
        if cell.resources:
            assert workers == set(gpu), "a GPU cell ran on a worker without the GPU resource"


def test_a_killed_worker_has_its_cell_rescheduled(tmp_path):
    from distributed import LocalCluster

    cells = [_bench(1, iterations=4000), _bench(2), _bench(3), _bench(4)]
    sweep_file = _write(tmp_path / "k.yaml", cells)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    result = {}
    try:
        t = threading.Thread(target=lambda: result.update(run_sweep(sweep_file, scheduler=cluster.scheduler_address)))
        t.start()
        slow = load_sweep(sweep_file).cells[0].run_id("t")
        deadline = time.time() + 240
        marker = None
        while time.time() < deadline and marker is None:
            found = list((tmp_path / "runs").glob(f"{slow}*/started.json"))
            marker = found[0] if found else None
            time.sleep(0.2)
        assert marker is not None, "the slow cell never started"
        time.sleep(1.0)
        os.kill(json.loads(marker.read_text())["pid"], signal.SIGKILL)  # the worker dies mid-cell
        t.join(timeout=300)
        assert not t.is_alive()
    finally:
        cluster.close()
    assert result["ok"] == 4, result
    _check_once(tmp_path / "runs" / "results.sqlite", sweep_file)
    assert len(list((tmp_path / "runs").glob(f"{slow}*/started.json"))) == 2  # it ran twice: killed, rescheduled


def test_ctrl_c_keeps_finished_cells_and_resume_completes(tmp_path):
    cells = [_bench(1), _bench(2, iterations=20000), _bench(3, iterations=20000), _bench(4, iterations=20000)]
    sweep_file = _write(tmp_path / "r.yaml", cells)
    env = {**os.environ, "NBUTILS_RUNS_DIR": str(tmp_path / "runs")}
    # A child of a job started in the background by a non-interactive shell inherits SIGINT *ignored* (POSIX), and
    # Python then never raises KeyboardInterrupt: give the sweep a terminal's default handling, as a user has.
    proc = subprocess.Popen([sys.executable, "-m", "nbutils", "sweep", str(sweep_file), "--workers", "1"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    db = tmp_path / "runs" / "results.sqlite"
    deadline = time.time() + 300
    while time.time() < deadline and not (db.exists() and _rows(db)):
        time.sleep(0.3)
    assert db.exists() and _rows(db), "no cell finished"
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    assert "--resume" in out and "Traceback" not in out.split("interrupted")[-1]
    done_before = {r[0] for r in _rows(db)}
    assert 1 <= len(done_before) < 4
    again = subprocess.run([sys.executable, "-m", "nbutils", "sweep", str(sweep_file), "--workers", "1", "--resume"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"({len(done_before)} done already)" in again.stdout
    _check_once(db, sweep_file)


@pytest.mark.parametrize(("content", "message"), [
    ({"name": "x", "cellz": []}, "unknown key(s) ['cellz']"),
    ({"cells": [{"bench": {"model": "random:bert-tiny", "batches": [1]}}]}, "unknown bench parameter(s) ['batches']"),
    ({"cells": [{"bench": {"model": "random:bert-tiny", "engines": ["ort-cpu:int4"]}}]}, "unknown engine(s)"),
    ({"cells": [{"run": {"profile": "smoke", "only": "00", "params": {"smok": True}}}]}, "no selected notebook declares"),
    ({"cells": 5}, "'cells' is a int, not a list"),
    ({"cells": {"bench": {"model": "random:bert-tiny"}}}, "'cells' is a dict, not a list"),
    ({"grid": {"bench": {"model": ["random:bert-tiny"], "batch": 1}}}, "value(s) for ['batch'] are not non-empty lists"),
    ({"grid": {"bench": [1, 2]}}, "must map argument names to lists"),
])
def test_bad_sweep_files_fail_before_any_cell(tmp_path, capsys, content, message):
    import yaml

    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(content))
    assert main(["sweep", str(f)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Fix:" in err
    assert not (tmp_path / "runs").exists()


def test_a_scheduler_that_does_not_answer_is_named(tmp_path, capsys):
    from tests.browser import free_port

    f = _write(tmp_path / "s.yaml", FOUR[:1])
    addr = f"tcp://127.0.0.1:{free_port()}"
    t0 = time.time()
    assert main(["sweep", str(f), "--scheduler", addr]) == 2
    assert f"no Dask scheduler answers at {addr}" in capsys.readouterr().err and time.time() - t0 < 60
    assert not (tmp_path / "runs" / "results.sqlite").exists() or not _rows(tmp_path / "runs" / "results.sqlite")


@pytest.mark.parametrize(("args", "message"), [
    (["--scheduler", "http://nonsense"], "is not a Dask scheduler address"),
    (["--workers", "0"], "--workers 0 is not a number of workers"),
    (["--workers", "-2"], "is not a number of workers"),
])
def test_nonsense_scheduler_or_worker_count_is_a_message(tmp_path, capsys, args, message):
    f = _write(tmp_path / "s.yaml", FOUR[:1])
    assert main(["sweep", str(f), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
