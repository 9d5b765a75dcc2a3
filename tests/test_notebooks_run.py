"""Integration test: the whole suite in smoke mode under papermill, as `make run` runs it."""

import json

import pytest

from nbutils.store.db import read_results
from nbutils.suite.runner import discover

pytestmark = pytest.mark.notebooks


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
    ort = df[(df.notebook == "40_export") & (df.metric == "accuracy") & df.engine.str.startswith("ort-cpu")]
    assert {"fp32", "qat", "qat-kd", "ort-dynamic", "ort-static-minmax"} <= set(ort.recipe)
    assert (run_dir / "onnx" / "qat" / "variant.json").is_file()
    lat = df[(df.notebook == "60_benchmark") & (df.metric == "latency_p50_ms")]
    assert {"torch-eager", "ort-cpu"} <= {e.split(":")[0] for e in lat.engine} and (lat.value > 0).all()
    assert (run_dir / "benchmark" / "latency-all-MiniLM-L6-v2.md").is_file()
    acc70 = df[(df.notebook == "70_accuracy") & (df.metric == "accuracy")]
    assert {"fp32", "fp16", "ort-dynamic", "qat", "fp8", "fp8-static"} <= set(acc70.recipe)
    assert (run_dir / "report" / "accuracy.csv").is_file()


def test_figures_keep_what_the_notebooks_promise(smoke_run):
    """Numbers, not just presence: parity, one identity per variant, every requested engine accounted for."""
    import pandas as pd

    from nbutils import engines
    from nbutils.report import tables

    runs, run_dir, _ = smoke_run
    df = read_results(run_dir.name, runs / "results.sqlite", all_columns=True)
    fp32 = df[(df.notebook == "10_baseline") & (df.metric == "accuracy")].value.item()
    assert 50.0 < fp32 <= 100.0  # two classes: a trained baseline beats chance on the embedded set
    # 40: every ONNX variant has its own rows, and the FP32 export passes parity with PyTorch
    acc40 = df[(df.notebook == "40_export") & (df.metric == "accuracy")]
    # notebook 40's variants (80 runs after 70 and adds its mixed-precision recipe's file: asserted in its own test)
    folders = sorted(p.parent.name for p in (run_dir / "onnx").glob("*/variant.json") if "-mixed-k" not in p.parent.name)
    assert sorted(acc40.recipe) == folders, "an ONNX variant is missing or two share a recipe"
    # the run keeps the files later notebooks read; the others keep a variant.json saying why not (Step 6)
    from nbutils.core.device import resolve
    from nbutils.engines.registry import recipes_read

    read = recipes_read(resolve("cpu"))
    for name in folders:
        meta = json.loads((run_dir / "onnx" / name / "variant.json").read_text())
        kept = (run_dir / "onnx" / name / "model.onnx").is_file()
        wanted = (name if not name.startswith("ptq-") else "ptq") in read
        assert kept == wanted and ("released" in meta) != kept, (name, kept, meta.get("released"))
    assert acc40.groupby(["recipe", "engine"]).size().max() == 1
    extra = acc40.set_index("recipe").extra.map(json.loads)
    assert extra["fp32"]["parity_ok"] is True and extra["fp32"]["parity_max_abs"] <= 1e-3
    assert extra["fp32-fused"]["parity_ok"] is True
    # 60: every requested engine has latency rows, or is skipped for a reason this machine states
    lat = df[(df.notebook == "60_benchmark") & (df.metric == "latency_p50_ms")]
    requested = engines.default_engines()
    executed = (run_dir / "60_benchmark.ipynb").read_text()
    for name in requested:
        assert name in set(lat.engine) or f"skipped {name}:" in executed, name
    assert lat.groupby(["engine", "recipe", "batch", "seq"]).size().max() == 1
    assert (lat.value > 0).all()
    # 60's ladder: every CPU step timed, each ratio the p50 of the step above over its own, from this run's figures
    ladders = pd.read_csv(next((run_dir / "benchmark").glob("ladders-*.csv")))
    cpu = ladders[ladders.ladder == "CPU: ONNX Runtime"].set_index(["batch", "engine"]).sort_index()
    p50 = lat.groupby(["batch", "engine"]).value.last()
    for b in sorted(set(lat.batch)):
        steps = [e for e, _ in engines.LADDERS["CPU: ONNX Runtime"]]
        assert list(cpu.loc[int(b)].sort_values("step").index) == steps
        assert cpu.loc[(int(b), steps[2]), "x_vs_previous"] == pytest.approx(p50[(b, steps[1])] / p50[(b, steps[2])])
    # reports list every variant: 70's table holds every ONNX variant, its Pareto points every timed engine
    acc_csv = pd.read_csv(run_dir / "report" / "accuracy.csv")
    assert set(folders) <= set(acc_csv.recipe)
    points = pd.read_csv(run_dir / "report" / "accuracy-vs-latency.csv")
    assert set(lat.engine) <= set(points.engine)  # every engine variant notebook 60 timed is a point
    acc70 = df[(df.notebook == "70_accuracy") & (df.metric == "accuracy")]
    deployable = acc70[acc70.precision != "int8-sim"]  # PyTorch fake quantization: the INT8 table's rows, no latency
    # files 40/42 measured and did not keep are scored from their outputs, and have no latency point
    released = {f.parent.parent.name if f.parent.name == "openvino" else f.parent.name
                for f in (run_dir / "onnx").glob("**/variant.json") if "released" in json.loads(f.read_text())}
    assert released >= {"fp16", "nncf-qat"}
    timed = deployable[~deployable.recipe.isin(released)]
    assert set(zip(timed.engine, timed.recipe, strict=True)) <= set(zip(points.engine, points.recipe, strict=True))
    assert released <= set(deployable.recipe)  # still scored
    assert {"qat", "qat-kd"} <= set(acc70[acc70.precision == "int8-sim"].recipe)  # 70's INT8 table rows are recorded
    demo = tables.demo_table(df[df.notebook == "60_benchmark"])
    assert len({c[0] for c in demo.columns}) == lat.groupby(["engine", "recipe"]).ngroups


def test_openvino_route_in_the_smoke_run(smoke_run):
    """42: every NNCF recipe and the ModelOpt QAT file run through OpenVINO with parity; 60 times ov-cpu, 70 scores it."""
    runs, run_dir, _ = smoke_run
    df = read_results(run_dir.name, runs / "results.sqlite", all_columns=True)
    acc42 = df[(df.notebook == "42_openvino") & (df.metric == "accuracy")]
    assert set(zip(acc42.recipe, acc42.engine, strict=True)) >= {
        ("fp32", "ov-cpu:fp32"), ("nncf-ptq", "ov-cpu:int8"), ("nncf-ptq-ac", "ov-cpu:int8"),
        ("nncf-qat", "ov-cpu:int8"), ("qat", "ov-cpu:int8")}
    extra = acc42[acc42.engine.str.startswith("ov-cpu")].set_index("recipe").extra.map(json.loads)
    # the FP32 IR and NNCF's IRs pass parity with their sources; ModelOpt's QAT files are measured (on the smoke
    # run's barely trained model, whose logits sit near the decision boundary, a few of 64 sentences can flip)
    nncf = ["fp32", "nncf-ptq", "nncf-ptq-ac", "nncf-qat"]
    assert all(extra[r]["parity_ok"] for r in nncf), {r: extra[r]["parity_top1_%"] for r in extra.index}
    assert extra["fp32"]["parity_max_abs"] <= 1e-3 and extra["fp32"]["ov_precision"] == "f32"
    # NNCF's post-training IR is kept (ov-cpu:int8 runs it); converted ONNX files are read by OpenVINO directly
    # (a variant.json naming the file, no IR copy); the IRs no later notebook runs keep only their variant.json
    assert (run_dir / "onnx" / "nncf-ptq" / "openvino" / "model.xml").is_file()
    for recipe in ("fp32", "qat"):
        folder = run_dir / "onnx" / recipe / "openvino"
        assert sorted(f.name for f in folder.iterdir()) == ["variant.json"], recipe
        assert json.loads((folder / "variant.json").read_text())["onnx_file"] == "../model.onnx"
    for recipe in ("nncf-qat", "nncf-ptq-ac"):
        assert "released" in json.loads((run_dir / "onnx" / recipe / "openvino" / "variant.json").read_text())
        assert not (run_dir / "onnx" / recipe / "openvino" / "model.xml").is_file()
    lat = df[(df.notebook == "60_benchmark") & (df.metric == "latency_p50_ms")]
    assert {("ov-cpu:fp32", "fp32"), ("ov-cpu:int8", "nncf-ptq")} <= set(zip(lat.engine, lat.recipe, strict=True))
    acc70 = df[(df.notebook == "70_accuracy") & (df.metric == "accuracy")]
    assert {"ov-cpu:fp32", "ov-cpu:int8"} <= set(acc70.engine)


def test_onnx_runtime_openvino_provider_route_in_the_smoke_run(smoke_run):
    """42 and 70 run the ONNX files through ONNX Runtime's OpenVINO EP (issue 26), or say why they cannot."""
    from nbutils.engines.ort_session import provider_unavailable_reason

    runs, run_dir, _ = smoke_run
    reason = provider_unavailable_reason("openvino")
    df = read_results(run_dir.name, runs / "results.sqlite", all_columns=True)
    acc = df[(df.metric == "accuracy") & df.engine.str.startswith("ort-ov")]
    if reason:
        assert acc.empty and "cannot run here" in (run_dir / "42_openvino.ipynb").read_text()
        return
    acc42, acc70 = acc[acc.notebook == "42_openvino"], acc[acc.notebook == "70_accuracy"]
    assert ("fp32", "ort-ov:fp32") in set(zip(acc42.recipe, acc42.engine, strict=True))
    assert {"ort-ov:fp32", "ort-ov:int8"} <= set(acc42.engine) and {"ort-ov:fp32", "ort-ov:int8"} <= set(acc70.engine)
    extra = acc42.set_index("recipe").extra.map(json.loads)
    # the provider against ONNX Runtime's CPU provider on the same file: the FP32 file agrees to float precision
    assert extra["fp32"]["parity_ok"] and extra["fp32"]["vs_ort_cpu_max_abs"] <= 1e-3
    assert all(e["provider"] == "openvino" for e in extra)


def _warning_lines(output) -> int:
    import re

    text = output.get("text", "")
    text = "".join(text) if isinstance(text, list) else text
    return sum(1 for line in text.splitlines() if re.search(r"warn|\[W:", line, flags=re.I))


def test_executed_notebooks_are_light_and_quiet(smoke_run):
    """Every executed notebook under 3 MB (no plotly.js inside), no output with more than 10 warning lines."""
    _, run_dir, outcomes = smoke_run
    report = {}
    for o in outcomes:
        nb = json.loads(o.output.read_text())
        size = o.output.stat().st_size
        worst = max((_warning_lines(out) for c in nb["cells"] for out in c.get("outputs", [])), default=0)
        report[o.name] = (round(size / 1e6, 2), worst)
        assert "Plotly.newPlot" not in o.output.read_text() or size < 3e6
    print("executed notebook MB and largest warning block:", report)
    assert all(mb < 3.0 for mb, _ in report.values()), report
    assert all(w <= 10 for _, w in report.values()), report


def test_squad_path_end_to_end_gives_the_int8_table(squad_file, tmp_path, monkeypatch):
    """Extractive QA through 10-70 (the squad profile, shrunk): EM/F1 rows and 70's INT8 table with intervals."""
    import pandas as pd

    from nbutils.suite.runner import run_suite

    monkeypatch.setenv("NBUTILS_RUNS_DIR", str(tmp_path / "runs"))
    run_dir, outcomes = run_suite("squad", only="10,20,30,40,70", progress=False,
                                  overrides=["smoke=true", f"data={squad_file}", "train_samples=24", "eval_samples=12",
                                             "calibrators=[max, percentile-99.99]", "qat_epochs=0.5",
                                             "max_length=64"])  # smoke no longer caps an explicit length
    failed = [o.error for o in outcomes if not o.ok]
    assert not failed, failed
    df = read_results(run_dir.name, tmp_path / "runs" / "results.sqlite", all_columns=True)
    assert set(df.task) == {"qa"} and {"exact_match", "f1"} <= set(df.metric)
    scored = df[df.metric.isin(["exact_match", "f1"])]
    assert scored.data.str.contains("split by article").all()  # the split is stated beside every EM/F1 figure
    rows70 = df[(df.notebook == "70_accuracy") & (df.metric == "f1")]
    devices = {json.loads(e).get("device") for e in rows70.extra}
    assert devices <= {"cpu", "cuda"} and devices  # every figure says where it ran
    table = pd.read_csv(run_dir / "report" / "int8-table.csv")
    assert table.model.iloc[0] == "fp32"
    assert any(m.startswith("qat (PyTorch") for m in table.model) and any(m.startswith("qat-kd (PyTorch") for m in table.model)
    assert any(m.startswith("qat (ONNX Runtime INT8") for m in table.model)
    assert {"exact_match", "f1", "Δ f1", "95% CI"} <= set(table.columns)
    assert table["95% CI"].iloc[1:].str.match(r"\[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]").all()


def test_graph_layout_of_the_smoke_runs_int8_files_is_readable(smoke_run):
    """Layer 0 of ModelOpt's Q/DQ file and of ONNX Runtime's static file: few edge crossings, no edge through a box."""
    import os

    from nbutils.graph import layout
    from nbutils.graph.model import load_graph

    if not layout.dot_available():
        if os.environ.get("CI"):
            pytest.fail("Graphviz dot is missing in CI: .ci/run and make install install the graphviz package")
        pytest.skip("Graphviz dot is not installed (apt-get install graphviz)")
    _, run_dir, _ = smoke_run
    modelopt = next(p for p in sorted((run_dir / "onnx").glob("ptq-*/model.onnx")) if "mixed" not in p.parent.name)
    for path, most in ((modelopt, 20), (run_dir / "onnx" / "ort-static-minmax" / "model.onnx", 5)):
        d = layout.build(load_graph(path), expand=[0])
        assert d.engine == "graphviz dot"
        assert layout.crossings(d) <= most, (path.parent.name, layout.crossings(d))
        assert layout.edges_through_boxes(d) == [], path.parent.name
        # nothing floats: every box but the graph's inputs has an incoming edge (weight Transposes are folded,
        # outputs made by a folded DequantizeLinear are joined to the node behind it)
        fed = {e.dst for e in d.edges}
        assert [n for n in d.nodes if n not in fed and not n.startswith("input:")] == [], path.parent.name
