"""Bad input and faults a careful user expects to be told about (issue 22): a clear error before any work.

Each test names the case of the issue it covers. The dashboard's stored-script case is a browser test in
``test_dashboard.py`` (``test_database_text_is_never_markup_in_the_voila_page``); NNCF options are in
``test_openvino.py``.
"""

import json
import os
import socket
import time

import pytest

from nbutils.core.errors import NbUtilsError
from nbutils.store.db import Measurement, Provenance, read_results, record, run_ids


def _row(db, run):
    record([Measurement("latency_p50_ms", 1.0, "fp32", "ort-cpu:fp32", "fp32", 1, 16)],
           Provenance(run, "60_benchmark", "m", "classification"), db)


def test_newest_run_is_by_time_not_by_name(tmp_path, monkeypatch):
    """Case 2: a named run made first, a timestamped run three minutes later: the later one is the newest."""
    from nbutils.store import clean

    monkeypatch.setenv("NBUTILS_RUNS_DIR", str(tmp_path))
    db = tmp_path / "results.sqlite"
    for name, started in (("ov1", "2026-12-05T10:00:00"), ("20261205-100300-default", "2026-12-05T10:03:00")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps({"started": started}))
        _row(db, name)
    assert run_ids(db) == ["ov1", "20261205-100300-default"]
    assert set(read_results("latest", db).run_id) == {"20261205-100300-default"}
    plan = clean.plan_clean(keep=1, root=tmp_path)
    assert [p.name for p in plan.remove] == ["ov1"] and [p.name for p in plan.keep] == ["20261205-100300-default"]


@pytest.mark.parametrize("run_id", ["../x", "/tmp/elsewhere", "a/b", ".hidden", ""])
def test_run_id_must_be_a_folder_name_inside_runs(tmp_path, monkeypatch, run_id):
    """Case 10: ``--run-id ../x`` or an absolute path is refused before anything is made."""
    from nbutils.suite.cli import main

    monkeypatch.setenv("NBUTILS_RUNS_DIR", str(tmp_path / "runs"))
    if run_id:
        assert main(["run", "--profile", "smoke", "--only", "00", "--run-id", run_id]) == 2
    from nbutils.core.paths import claim_run_dir

    with pytest.raises(NbUtilsError, match="not a plain folder name"):
        claim_run_dir(run_id, exact=True)
    assert not (tmp_path / "x").exists() and not (tmp_path / "runs").exists()


def test_dashboard_port_taken_is_an_error_not_another_port(capsys):
    """Case 3: the printed URL is the served one: a taken port fails before Voila starts."""
    from nbutils.suite.cli import main
    from nbutils.ui import serve

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert main(["dashboard", "--serve", "--port", str(port)]) == 2
    err = capsys.readouterr()
    assert f"port {port} on 127.0.0.1 is already in use" in err.err and "http://" not in err.out
    assert "--Voila.port_retries=0" in serve.voila_command("notebooks/90_dashboard.ipynb", 8866)
    with pytest.raises(NbUtilsError, match="not a TCP port"):
        serve.check_port(70000)


def test_max_length_is_kept_as_given_and_checked_before_training(tmp_path):
    """Case 4: smoke keeps an explicit max_length; one longer than the model's positions fails before training."""
    from nbutils.training.baseline import BaselineConfig, train_baseline

    cfg = BaselineConfig.from_params(model="random:bert-tiny", data="embedded", train_samples=0, eval_samples=0,
                                     epochs=1.0, lr=1e-4, batch_size=8, max_length=100000, seed=0, smoke=True,
                                     device="cpu")
    assert cfg.max_length == 100000 and cfg.train_samples == 512
    t0 = time.perf_counter()
    with pytest.raises(NbUtilsError, match="longer than .* 512 positions"):
        train_baseline(cfg, tmp_path)
    assert time.perf_counter() - t0 < 60 and not (tmp_path / "checkpoints").exists()
    with pytest.raises(NbUtilsError, match="not a usable token count"):
        BaselineConfig.from_params(model="default", data="embedded", train_samples=0, eval_samples=0, epochs=1.0,
                                   lr=1e-4, batch_size=8, max_length=0, seed=0, smoke=False, device="cpu")


def test_empty_sentence_names_file_and_line(tmp_path):
    """Case 5: an empty sentence is named with its file and line, not a tokenizer TypeError."""
    from nbutils.training.data import load_task_data

    (tmp_path / "train.tsv").write_text("sentence\tlabel\ngood film\t1\n\t0\nbad film\t0\n")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nfine\t1\nawful\t0\n")
    with pytest.raises(NbUtilsError, match=r"train.tsv has 1 empty sentence\(s\) \(line 3\)"):
        load_task_data(str(tmp_path))


@pytest.mark.parametrize("text,match", [
    ("parameters: {smoke: true\n", "not valid YAML at line"),
    ("- a\n- b\n", "YAML list, not a mapping"),
    ("cell_timeout_s: ten\n", "cell_timeout_s is 'ten'"),
    ("notebook_parameters: {99: {smoke: true}}\n", "names notebook 99, which does not exist"),
    ("parameters: [1, 2]\n", "parameters is a list"),
])
def test_bad_profiles_are_messages(tmp_path, text, match):
    """Case 6: YAML errors, wrong shapes and unknown notebooks are clear errors."""
    from nbutils.suite.runner import load_profile

    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(NbUtilsError, match=match):
        load_profile(str(path))


def test_results_database_that_is_a_folder(tmp_path, monkeypatch, capsys):
    """Case 7: results.sqlite as a folder: a message in ``results``, ``run`` and the dashboard's data."""
    from nbutils.store.db import check_writable
    from nbutils.suite.cli import main
    from nbutils.ui import dashboard

    monkeypatch.setenv("NBUTILS_RUNS_DIR", str(tmp_path))
    (tmp_path / "results.sqlite").mkdir()
    assert main(["results"]) == 2
    assert "is a folder, not a file" in capsys.readouterr().err
    with pytest.raises(NbUtilsError, match="is a folder"):
        check_writable(tmp_path / "results.sqlite")
    data = dashboard.load(tmp_path / "results.sqlite")
    assert not data.ok and "is a folder" in data.message


def test_external_data_outside_the_model_folder_is_refused(tmp_path, capsys):
    """Case 12: an ONNX file whose external data points outside its folder gets a message, not onnx's traceback."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from nbutils.formats.files import check_model_file
    from nbutils.suite.cli import main

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    model = helper.make_model(graph)
    folder = tmp_path / "m"
    folder.mkdir()
    onnx.save_model(model, str(folder / "model.onnx"), save_as_external_data=True, location="w.bin",
                    size_threshold=0)
    m = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    for entry in m.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../../../../etc/passwd"
    onnx.save_model(m, str(folder / "evil.onnx"))
    with pytest.raises(NbUtilsError, match="outside the model's folder"):
        check_model_file(folder / "evil.onnx")
    assert main(["graph", str(folder / "evil.onnx")]) == 2
    assert "outside the model's folder" in capsys.readouterr().err
    check_model_file(folder / "model.onnx")  # the honest file still passes
    assert os.path.isfile("/etc/passwd")


@pytest.mark.notebooks
def test_killed_run_shows_unfinished_and_a_resumed_notebook_stores_its_figures_once(tmp_path, monkeypatch):
    """Case 9: after kill -9 the run says which notebook did not finish; re-running one with --resume replaces
    its figures (one per identity) and keeps the earlier notebooks' outcomes."""
    import signal
    import subprocess
    import sys

    from nbutils.core.paths import read_json
    from nbutils.suite.runner import run_suite
    from nbutils.ui import dashboard

    runs = tmp_path / "runs"
    env = {**os.environ, "NBUTILS_RUNS_DIR": str(runs)}
    proc = subprocess.Popen([sys.executable, "-m", "nbutils", "run", "--profile", "smoke", "--only", "00",
                             "--run-id", "killed", "--no-progress"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    outcomes = runs / "killed" / "outcomes.json"
    deadline = time.time() + 120
    while time.time() < deadline and not outcomes.is_file():
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert outcomes.is_file() and "did not finish" in read_json(outcomes)[0]["error"]
    record([Measurement("accuracy", 50.0, "fp32", "torch-eager:fp32", "fp32")],
           Provenance("killed", "00_environment", "m", "classification"), runs / "results.sqlite")
    data = dashboard.load(runs / "results.sqlite")
    assert any("killed: 00_environment did not finish" in w for w in data.warnings)

    monkeypatch.setenv("NBUTILS_RUNS_DIR", str(runs))
    run_dir, first = run_suite("smoke", only="00,10", progress=False, run_id="twice")
    assert all(o.ok for o in first)
    rows = read_results("twice", runs / "results.sqlite")
    n10 = int((rows.notebook == "10_baseline").sum())
    assert n10 > 0
    _, again = run_suite("smoke", only="10", progress=False, run_id="twice", resume=True)
    after = read_results("twice", runs / "results.sqlite")
    assert int((after.notebook == "10_baseline").sum()) == n10  # replaced, not stored twice
    assert [o["name"] for o in read_json(run_dir / "outcomes.json")] == ["00_environment", "10_baseline"]
