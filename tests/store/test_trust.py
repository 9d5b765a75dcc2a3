"""Figures you can trust (issue 8): every case drives the failure through the CLI, the runner or a notebook run."""

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nbutils import engines
from nbutils.core.errors import NbUtilsError
from nbutils.report import tables
from nbutils.store.db import Measurement, Provenance, read_results, record
from nbutils.suite.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _grid_rows(names, p50s, batch=64, seq=128):
    """Rows exactly as engines.run_grid builds them from the engine table."""
    rows = []
    for name, p50 in zip(names, p50s, strict=True):
        spec = engines.ENGINES[name]
        rows.append({"engine_name": name, "engine": spec.name, "precision": spec.precision, "recipe": spec.recipe,
                     "seq": seq, "batch": batch, "iterations": 10, "mean_ms": p50, "p50_ms": p50, "p95_ms": p50 * 1.1,
                     "p99_ms": p50 * 1.2, "throughput_seq_s": 1000 * batch / p50, "extra": {"engine_name": name}})
    return rows


def _prov(run="20261122-000000-gpu", notebook="60_benchmark", model="bert-base (untrained)"):
    return Provenance(run, notebook, model, "classification", "synthetic", {}, {"gpu": "H100"})


PAIRS = ["torch-compile:fp16", "torch-compile:fp16:cudagraphs", "torch-fp8:fp8", "torch-fp8:fp8:cudagraphs",
         "ort-cuda:fp16", "ort-cuda:fp16:cudagraph"]


# --- engine variants keep their own identity -----------------------------------------------------------


def test_engine_variants_are_distinct_in_database_cli_reports_and_pareto(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    rows = _grid_rows(PAIRS, [3.9, 3.5, 14.0, 4.3, 3.95, 3.6])
    record(engines.measurements(rows, untrained=True), _prov(), db)
    frame = read_results("latest", db)
    p50 = frame[frame.metric == "latency_p50_ms"]
    assert sorted(p50.engine) == sorted(PAIRS)  # compiled FP8 is no longer stored as torch-eager
    assert main(["results", "--db", str(db), "--format", "csv"]) == 0
    printed = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert set(PAIRS) <= set(printed.engine)
    lat = tables.latency_table(frame)
    assert len(lat) == len(PAIRS) and lat.batch.dtype.kind == "i"
    demo = tables.demo_table(frame)
    assert len({c[0] for c in demo.columns}) == len(PAIRS)
    assert len(tables.speedups(frame)) == len(PAIRS)
    acc = pd.DataFrame({"model": ["bert-base (untrained)"] * 2, "recipe": ["fp16", "fp8"],
                        "engine": ["ort-cpu:fp16", "torch-fp8:fp8"], "precision": ["fp16", "fp8"],
                        "accuracy": [85.0, 84.0]})
    points = tables.accuracy_latency_points(acc, frame, 64)
    assert {"torch-compile:fp16", "torch-compile:fp16:cudagraphs"} <= set(points.engine)
    assert points.set_index("engine").loc["torch-compile:fp16:cudagraphs", "pareto"]


def _legacy_db(path):
    """A database as main wrote it before the identity rule (runtime-only engine, name in extra)."""
    con = sqlite3.connect(path)
    con.executescript(open(ROOT / "nbutils" / "store" / "db.py").read().split('_SCHEMA = """')[1].split('"""')[0])
    legacy = [("torch-compile", "fp16", "fp16", {"engine_name": "torch-compile:fp16"}, 3.9),
              ("torch-compile", "fp16", "fp16", {"engine_name": "torch-compile:fp16:cudagraphs"}, 3.5),
              ("torch-eager", "fp8", "fp8", {"engine_name": "torch-fp8:fp8"}, 14.0),
              ("ort-cpu", "fp32", "fp32", {"variant": "fp32-fused"}, 20.0),
              ("ort-cpu", "fp32", "fp32", {"variant": "fp32-o1"}, 21.0)]
    for engine, prec, recipe, extra, v in legacy:
        con.execute("INSERT INTO results (run_id, notebook, model, task, recipe, engine, precision, batch, seq, metric,"
                    " value, unit, extra) VALUES ('20261101-000000-old','60_benchmark','m','classification',?,?,?,1,128,"
                    "'latency_p50_ms',?,'ms',?)", (recipe, engine, prec, v, json.dumps(extra)))
    con.commit()
    con.close()


def test_old_database_reads_without_writing_and_migrates_on_write(tmp_path):
    db = tmp_path / "old.sqlite"
    _legacy_db(db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    frame = read_results("latest", db)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before, "reading changed the database"
    assert not Path(f"{db}-wal").exists()
    assert set(frame.engine) == {"torch-compile:fp16", "torch-compile:fp16:cudagraphs", "torch-fp8:fp8", "ort-cpu"}
    assert {"fp32-fused", "fp32-o1"} <= set(frame.recipe)
    assert len(tables.latency_table(frame)) == 5
    record([Measurement("accuracy", 90.0, "fp32", "torch-eager:fp32", "fp32")], _prov("20261122-000000-new"), db)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    stored = {r[0] for r in con.execute("SELECT engine FROM results")}
    con.close()
    assert {"torch-compile:fp16:cudagraphs", "torch-fp8:fp8"} <= stored


# --- torch.compile never reports an eager fallback ------------------------------------------------------


def test_compile_guard_turns_a_silent_eager_fallback_into_an_error():
    import torch
    import torch._dynamo

    fn = torch.compile(lambda x: x * 2 + 1, backend="eager", dynamic=False)
    with torch._dynamo.config.patch(recompile_limit=1), pytest.raises(NbUtilsError, match="recompile limit"), \
            engines.compile_guard():
        for n in (2, 3, 4):
            fn(torch.ones(n))


def test_compiled_engine_compiles_every_shape_and_records_dynamo_counters():
    import torch._dynamo

    # with the limit at 1, a second shape used to fall back to eager and be timed as the compiled engine
    with torch._dynamo.config.patch(recompile_limit=1):
        assert main(["bench", "--model", "random:bert-tiny", "--engines", "torch-compile:fp32", "--batch", "1,2,3",
                     "--seq", "16", "--iterations", "3", "--warmup", "1"]) == 0
    df = read_results("latest", all_columns=True)
    p50 = df[df.metric == "latency_p50_ms"]
    assert sorted(p50.batch) == [1, 2, 3] and set(p50.engine) == {"torch-compile:fp32"}
    for extra in p50.extra.map(json.loads):
        assert extra["dynamo_graphs"] >= 1 and "dynamo_graph_breaks" in extra


# --- skipped is not success ----------------------------------------------------------------------------


def test_engine_that_fails_to_set_up_fails_bench_with_its_full_reason(monkeypatch, capsys):
    long_reason = "the file is corrupt " + "x" * 300 + " END-OF-REASON"

    def broken(self):
        raise RuntimeError(long_reason)

    monkeypatch.setattr(engines.OrtEngine, "setup", broken)
    code = main(["bench", "--model", "random:bert-tiny", "--engines", "torch-eager:fp32,ort-cpu:fp32",
                 "--batch", "1", "--seq", "8", "--iterations", "2", "--warmup", "0"])
    out = capsys.readouterr()
    assert code == 1
    assert "ort-cpu:fp32" in out.err and "END-OF-REASON" in out.err  # full reason, nothing cut
    df = read_results("latest")
    assert set(df.engine) == {"torch-eager:fp32"}  # what was measured is kept


def test_unavailable_engine_is_a_reported_skip_not_a_failure(capsys):
    from nbutils.core import env

    if env.ort_cuda_status().usable:
        pytest.skip("this machine has CUDA")
    code = main(["bench", "--model", "random:bert-tiny", "--engines", "torch-eager:fp32,ort-cuda:fp16",
                 "--batch", "1", "--seq", "8", "--iterations", "2", "--warmup", "0"])
    assert code == 0 and "skipped ort-cuda:fp16" in capsys.readouterr().out


def test_nothing_timed_is_a_failure(capsys):
    from nbutils.core import env

    if env.ort_cuda_status().usable:
        pytest.skip("this machine has CUDA")
    assert main(["bench", "--model", "random:bert-tiny", "--engines", "ort-cuda:fp16", "--batch", "1",
                 "--seq", "8", "--iterations", "2"]) == 1
    assert "nothing was timed" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--iterations", "0"], "iterations=0"),
    (["--batch", "x"], "--batch 'x' is not a comma-separated list of integers"),
    (["--batch", "0"], "invalid batch size"),
    (["--engines", "torch-eager:fp64"], "unknown engine"),
])
def test_bad_bench_input_exits_2_and_creates_nothing(args, message, capsys):
    from nbutils.core.paths import runs_dir

    code = main(["bench", "--model", "random:bert-tiny", "--seq", "8", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Fix:" in err and "Traceback" not in err
    assert not runs_dir().exists() or not any(runs_dir().iterdir())


def test_reused_run_id_is_refused_and_keeps_the_previous_table(capsys):
    from nbutils.core.paths import runs_dir

    common = ["bench", "--model", "random:bert-tiny", "--engines", "torch-eager:fp32", "--batch", "1", "--seq", "8",
              "--iterations", "2", "--warmup", "0", "--run-id", "mine"]
    assert main(common) == 0
    first = (runs_dir() / "mine" / "bench.txt").read_text()
    assert main(common) == 2
    assert "already exists" in capsys.readouterr().err
    assert (runs_dir() / "mine" / "bench.txt").read_text() == first


def test_corrupt_cached_export_is_rebuilt(tmp_path):
    assets = engines.Assets("random:bert-tiny", tmp_path / "bench")
    path = assets.onnx("fp32")
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])  # truncated
    again = engines.Assets("random:bert-tiny", tmp_path / "bench")
    rebuilt = again.onnx("fp32")
    from nbutils.formats.files import check_model_file

    check_model_file(rebuilt)
    assert rebuilt.stat().st_size == len(good)


# --- parameters: explicit -p wins, bad grids fail before work ---------------------------------------------


def test_explicit_grid_wins_over_smoke_in_notebook_60(tmp_path):
    from nbutils.suite.runner import run_suite

    run_dir, outcomes = run_suite("smoke", "60", ["model=random:bert-tiny", "engines=[torch-eager:fp32]",
                                                  "batch_sizes=[2, 3]", "seq_lengths=[16]"], progress=False)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    df = read_results(run_dir.name)
    lat = df[df.metric == "latency_p50_ms"]
    assert sorted(lat.batch) == [2, 3] and set(lat.seq) == {16}


def test_bad_grid_stops_notebook_60_before_any_work():
    from nbutils.suite.runner import run_suite

    run_dir, outcomes = run_suite("smoke", "60", ["batch_sizes=[0]"], progress=False)
    assert not outcomes[-1].ok and "invalid batch size" in outcomes[-1].error
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "bench").exists()


# --- runs do not hurt each other -----------------------------------------------------------------------


def test_two_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    code = ("import nbutils.core.paths as p; p.new_run_id = lambda profile: '20260101-000000-' + profile; "
            "from nbutils.suite.cli import main; raise SystemExit(main(['run', '--profile', 'smoke', '--only', '00',"
            " '--no-progress']))")
    env = {**os.environ, "NBUTILS_RUNS_DIR": str(tmp_path / "runs")}
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    folders = sorted(d.name for d in (tmp_path / "runs").iterdir() if d.is_dir())
    assert folders == ["20260101-000000-smoke", "20260101-000000-smoke-2"]
    for f in folders:
        nb = json.loads((tmp_path / "runs" / f / "00_environment.ipynb").read_text())
        assert nb["cells"]
        assert (tmp_path / "runs" / f / "summary.html").is_file()


@contextlib.contextmanager
def read_only(*paths):
    """Make paths read-only for this process, root included (chattr +i as root, chmod otherwise)."""
    root = os.geteuid() == 0
    if root and subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True).returncode != 0:
        pytest.skip("running as root and chattr +i is not permitted here: cannot make a file read-only")
    modes = {p: p.stat().st_mode for p in paths}
    if not root:
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
        else:
            for p, m in modes.items():
                p.chmod(m)


def _db_with_rows(db):
    record([Measurement("accuracy", 90.0, "fp32", "torch-eager:fp32", "fp32")], _prov("20261122-000000-a"), db)


def test_read_only_database_fails_before_timing_and_can_still_be_read(tmp_path, capsys):
    from nbutils.core.paths import runs_dir

    db = runs_dir() / "results.sqlite"
    _db_with_rows(db)
    with read_only(db):
        code = main(["bench", "--model", "random:bert-tiny", "--engines", "torch-eager:fp32", "--batch", "1",
                     "--seq", "8", "--iterations", "2"])
        err = capsys.readouterr().err
        assert code == 2 and str(db) in err and "not writable" in err and "Fix:" in err
        assert [d.name for d in runs_dir().iterdir() if d.is_dir()] == []  # failed before creating a run folder
        assert main(["results", "--db", str(db)]) == 0
        assert "torch-eager:fp32" in capsys.readouterr().out


def test_read_only_runs_folder_still_reads_results(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "results.sqlite"
    _db_with_rows(db)
    with read_only(db, folder):
        assert main(["results", "--db", str(db)]) == 0
        assert "torch-eager:fp32" in capsys.readouterr().out
        with pytest.raises(NbUtilsError, match="not writable"):
            record([Measurement("accuracy", 1.0, "fp32", "e", "fp32")], _prov(), db)


def test_read_only_shm_left_behind_is_named(tmp_path):
    db = tmp_path / "results.sqlite"
    _db_with_rows(db)
    shm = Path(f"{db}-shm")
    shm.write_bytes(b"")
    with read_only(shm), pytest.raises(NbUtilsError, match=r"results.sqlite-shm is not writable"):
        record([Measurement("accuracy", 1.0, "fp32", "e", "fp32")], _prov(), db)


def test_read_only_database_stops_a_suite_run_before_notebook_10(tmp_path):
    from nbutils.core.paths import runs_dir
    from nbutils.suite.runner import run_suite

    db = runs_dir() / "results.sqlite"
    _db_with_rows(db)
    with read_only(db), pytest.raises(NbUtilsError, match="not writable"):
        run_suite("smoke", "10", progress=False)
    assert [d.name for d in runs_dir().iterdir() if d.is_dir()] == []


def test_run_folder_deleted_mid_run_fails_clearly(tmp_path):
    import shutil

    from nbutils.suite import runner

    real = runner._execute

    def delete_then_continue(selected, *args):
        run_dir = args[1]
        real(selected[:1], *args)
        shutil.rmtree(run_dir)  # the folder disappears between notebooks
        real(selected[1:], *args)

    runner._execute = delete_then_continue
    try:
        with pytest.raises(NbUtilsError, match="was deleted while the suite ran"):
            runner.run_suite("smoke", "00,10", progress=False)
    finally:
        runner._execute = real


def test_ctrl_c_writes_the_summary_and_exits_130(capsys, monkeypatch):
    import papermill

    from nbutils.core.paths import runs_dir

    calls = {"n": 0}
    real = papermill.execute_notebook

    def interrupt_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(papermill, "execute_notebook", interrupt_second)
    code = main(["run", "--profile", "smoke", "--only", "00,10", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 130 and "Interrupted" in err and "Traceback" not in err
    run_dir = next(d for d in runs_dir().iterdir() if d.is_dir())
    outcomes = json.loads((run_dir / "outcomes.json").read_text())
    assert [(o["name"], o["ok"]) for o in outcomes] == [("00_environment", True), ("10_baseline", False)]
    assert "interrupted" in outcomes[1]["error"] and (run_dir / "summary.html").is_file()


def test_clean_keeps_the_newest_runs_and_the_rows(capsys):
    from nbutils.core.paths import runs_dir

    for i in range(3):
        d = runs_dir() / f"2026010{i}-000000-x"
        d.mkdir(parents=True)
        (d / "run.json").write_text("{}")
        (d / "big.bin").write_bytes(b"0" * 1000)
    _db_with_rows(runs_dir() / "results.sqlite")
    assert main(["clean", "--keep", "1", "--dry-run"]) == 0
    assert "would remove 2 run folder(s)" in capsys.readouterr().out
    assert len([d for d in runs_dir().iterdir() if d.is_dir()]) == 3
    assert main(["clean", "--keep", "1"]) == 0
    assert [d.name for d in runs_dir().iterdir() if d.is_dir()] == ["20260102-000000-x"]
    assert len(read_results(None, runs_dir() / "results.sqlite")) == 1  # rows kept
    assert main(["clean", "--run", "nope"]) == 2


def test_atomic_writes_respect_the_umask(tmp_path):
    from nbutils.core.paths import atomic_path, write_json

    old = os.umask(0o022)
    try:
        f = write_json(tmp_path / "run.json", {"a": 1})
        with atomic_path(tmp_path / "onnx" / "fp32", is_dir=True) as d:
            (d / "model.onnx").write_bytes(b"x")
    finally:
        os.umask(old)
    assert oct(f.stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "onnx" / "fp32").stat().st_mode & 0o777) == "0o755"


# --- messages that help ----------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "sentence\tlabel\n"])
def test_empty_data_file_is_named(tmp_path, content):
    from nbutils.training.data import load_task_data

    (tmp_path / "train.tsv").write_text(content)
    (tmp_path / "validation.tsv").write_text("sentence\tlabel\ngood\t1\n")
    with pytest.raises(NbUtilsError, match=r"train file .*train.tsv (is empty|has a header but no rows)"):
        load_task_data(str(tmp_path))


def test_model_folder_without_weights_names_the_files_looked_for(tmp_path):
    from nbutils.training.models import load_model

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(NbUtilsError, match=r"no weight file \(looked for model.safetensors"):
        load_model(str(tmp_path))
