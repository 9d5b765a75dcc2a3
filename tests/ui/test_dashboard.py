"""The dashboard (issue 9): data and views without a browser, then Voilà and JupyterLab in headless Chromium."""

import hashlib
import json
import os
import re
import shutil
import sqlite3
import sys
import time

import pytest

from nbutils.store.db import Measurement, Provenance, record
from nbutils.ui import dashboard, serve
from tests.browser import ROOT, artefacts, browser, evidence_on_failure, free_port, server, voila_ready_url


def _rows(db, run, p50s, machine="AMD EPYC"):
    prov = Provenance(run, "60_benchmark", "bert-tiny (untrained)", "classification", "synthetic", {},
                      {"cpu": machine, "gpu": None})
    rows = [Measurement("latency_p50_ms", v, "fp32" if "fp32" in e else "ort-dynamic", e,
                        "fp32" if "fp32" in e else "int8", 1, 128) for e, v in p50s.items()]
    record(rows, prov, db)


def test_two_runs_from_two_databases_side_by_side(tmp_path):
    a, b = tmp_path / "cpu.sqlite", tmp_path / "gpu.sqlite"
    _rows(a, "20261101-000000-cpu", {"torch-eager:fp32": 20.0, "ort-cpu:int8-dynamic": 5.0})
    _rows(b, "20261102-000000-gpu", {"torch-eager:fp32": 2.0, "ort-cpu:int8-dynamic": 4.0, "ort-cpu:fp32": 1.0},
          machine="Intel Xeon")
    data = dashboard.load([a, b])
    assert data.ok and set(data.frame.machine) == {"AMD EPYC", "Intel Xeon"}
    both = dashboard.compare_runs(data.frame, "20261101-000000-cpu", "20261102-000000-gpu").set_index("engine")
    assert len(both) == 2  # only the figures both runs measured
    assert both.loc["torch-eager:fp32", "ratio_b_over_a"] == pytest.approx(0.1)
    assert both.loc["ort-cpu:int8-dynamic", "ratio_b_over_a"] == pytest.approx(0.8)
    with pytest.raises(Exception, match="no figures for run"):
        dashboard.compare_runs(data.frame, "20261101-000000-cpu", "nope")


def test_one_selected_engine_keeps_its_speedups(tmp_path):
    """Selecting one engine still shows its speed-up: the references (eager FP32) come from the wider selection."""
    db = tmp_path / "r.sqlite"
    _rows(db, "20261101-000000-cpu", {"torch-eager:fp32": 20.0, "ort-cpu:int8-dynamic": 5.0, "ort-cpu:fp32": 10.0})
    board = dashboard.Dashboard(db)
    board.build()
    board.controls["engine"].value = "ort-cpu:int8-dynamic"
    fig = dashboard.speedup_view(board.selected(), board.selected(dashboard.REFERENCE_FREE))
    vs_eager, vs_float = (list(t.x) for t in fig.data)
    assert len(fig.data[0].y) == 1 and "ort-cpu:int8-dynamic" in fig.data[0].y[0]
    assert vs_eager == pytest.approx([4.0]) and vs_float == pytest.approx([2.0])
    # the same variant timed again in a second run gets its own bar (named by run), not a bar drawn over the first
    _rows(db, "20261102-000000-cpu", {"ort-cpu:int8-dynamic": 4.0})
    board = dashboard.Dashboard(db)
    board.build()
    board.controls["engine"].value = "ort-cpu:int8-dynamic"
    fig = dashboard.speedup_view(board.selected(), board.selected(dashboard.REFERENCE_FREE))
    assert len(set(fig.data[0].y)) == 2 and all("-cpu" in y for y in fig.data[0].y)
    # alone (no references in the frame) the view says which reference is missing instead of drawing empty bars
    alone = dashboard.speedup_view(board.selected())
    assert "not timed at these shapes: PyTorch eager FP32 or a float engine" in alone.layout.title.text


def test_two_measurements_of_one_identity_in_one_run_are_one_bar(tmp_path):
    """60 and 80 of one run both timed ort-cpu:fp32 and an INT8 file: one bar each, the later figure, right ratio."""
    from nbutils.report import tables
    from nbutils.store.db import read_results

    db, run = tmp_path / "r.sqlite", "20261101-000000-run"
    _rows(db, run, {"torch-eager:fp32": 20.0, "ort-cpu:fp32": 12.0, "ort-cpu:int8-qdq": 12.0})
    prov = Provenance(run, "80_sensitivity", "bert-tiny (untrained)", "classification", "synthetic", {}, {})
    record([Measurement("latency_p50_ms", 10.0, "fp32", "ort-cpu:fp32", "fp32", 1, 128),
            Measurement("latency_p50_ms", 10.0, "ptq-percentile-99.9", "ort-cpu:int8-qdq", "int8", 1, 128)], prov, db)
    _rows(db, run, {"ort-cpu:int8-qdq": 11.0})  # the same variant a third time, differently labelled by recipe
    frame = read_results(run, db)
    sp = tables.speedups(frame)
    assert not sp.duplicated(["label", "batch", "seq"]).any()
    fp32 = sp.set_index("label").loc["ort-cpu:fp32 · fp32"]
    assert fp32["speedup_vs_eager_fp32"] == pytest.approx(2.0) and fp32["times_measured"] == 2
    fig = dashboard.speedup_view(frame)
    bars = dict(zip(fig.data[0].y, fig.data[0].x, strict=True))
    assert len(bars) == len(fig.data[0].y) == 4  # eager, ort fp32, two INT8 recipes: nothing stacked
    assert bars["ort-cpu:fp32 · fp32 · b1 s128"] == pytest.approx(2.0)
    assert bars["ort-cpu:int8-qdq · ptq-percentile-99.9 · b1 s128"] == pytest.approx(2.0)
    assert fig.layout.barmode == "group"


def _view_text(render):
    from nbutils.ui.widgets import View

    content = View(render, "view")._content()
    return getattr(content, "data", str(content))


def _legacy(path):
    from tests.store.test_trust import _legacy_db

    _legacy_db(path)


@pytest.mark.parametrize("kind", ["missing", "empty", "legacy", "not-sqlite", "no-table", "failed-run", "no-match"])
def test_bad_databases_and_selections_give_messages_not_tracebacks(tmp_path, kind):
    db = tmp_path / "runs" / "results.sqlite"
    db.parent.mkdir()
    if kind == "empty":
        from nbutils.store.db import connect

        connect(db).close()
    elif kind == "legacy":
        _legacy(db)
    elif kind == "not-sqlite":
        db.write_text("run_id,value\nx,1\n")
    elif kind == "no-table":
        sqlite3.connect(db).execute("CREATE TABLE other (x)").connection.commit()
    elif kind in ("failed-run", "no-match"):
        _rows(db, "20261101-000000-smoke", {"torch-eager:fp32": 20.0})
        (db.parent / "20261101-000000-smoke").mkdir()
        (db.parent / "20261101-000000-smoke" / "outcomes.json").write_text(json.dumps(
            [{"name": "60_benchmark", "ok": False, "seconds": 1, "error": "notebook 60_benchmark failed in cell 5"}]))
    before = hashlib.sha256(db.read_bytes()).hexdigest() if db.exists() else None
    board = dashboard.Dashboard(db, {"engine": "ort-cuda:fp16" if kind == "no-match" else "(all)"})
    box = board.build()
    assert box is not None
    texts = [_view_text(v.render) for v in board.views.values()]
    joined = " ".join(str(t) for t in texts) + board.status.value
    assert "Traceback" not in joined
    if kind == "legacy":
        assert board.data.ok and "torch-compile:fp16:cudagraphs" in set(board.data.frame.engine)
        fig = board.views["latency"].render()
        assert len(fig.data) >= 5
    elif kind == "failed-run":
        assert "60_benchmark did not finish" in board.status.value and board.data.ok
    elif kind == "no-match":
        assert "no latency figure matches this selection" in joined
    else:
        phrase = {"missing": "no results database at", "empty": "has no figures yet",
                  "not-sqlite": "is not an SQLite database", "no-table": "without a results table"}[kind]
        assert phrase in board.data.message and phrase in board.status.value and "Fix:" in board.status.value
    if before is not None:
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before, "reading changed the database"


def test_summary_page_has_charts_and_integer_batches(smoke_run):
    _, run_dir, _ = smoke_run
    page = (run_dir / "summary.html").read_text()
    assert page.count("plotly-graph-div") >= 2 and '<script src="plotly.min.js">' in page
    assert (run_dir / "plotly.min.js").is_file()
    checked = 0
    for table in re.findall(r"<table.*?</table>", page, flags=re.S):
        head = [re.sub(r"<.*?>", "", h).strip() for h in re.findall(r"<th.*?</th>", table, flags=re.S)]
        for col in ("batch", "seq"):
            if col not in head:
                continue
            k = head.index(col)
            for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S):
                cells = [re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<td.*?</td>", row, flags=re.S)]
                if len(cells) == len(head):
                    assert re.fullmatch(r"\d*", cells[k]), f"{col} shown as {cells[k]!r}"
                    checked += 1
    assert checked > 0, "no batch/seq column found in summary.html"
    assert all(not re.search(r"^\s*$", h) for h in re.findall(r"<th>(.*?)</th>", page)), "an empty column"
    assert "Accuracy vs latency (Pareto front)" in page


def test_dashboard_notebook_under_papermill_shows_default_charts(smoke_run):
    _, run_dir, outcomes = smoke_run
    assert any(o.name == "90_dashboard" and o.ok for o in outcomes)
    import nbformat

    from nbutils.ui.htmlexport import prepare

    nb = nbformat.read(run_dir / "90_dashboard.ipynb", as_version=4)
    kinds = [k for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) for k in o.get("data", {})]
    assert "application/vnd.jupyter.widget-view+json" in kinds  # the live views
    # the views' first renders (the parameters' defaults) are kept in the widget state, and the HTML shows them
    static = prepare(nb)
    html = [o["data"].get("text/html", "") for c in static.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "data" in o]
    assert sum("Plotly.newPlot" in h for h in html) >= 3  # latency, speed-up, Pareto for the defaults
    page = (run_dir / "html" / "90_dashboard.html").read_text()
    assert page.count("Plotly.newPlot") >= 3 and "cdn.jsdelivr" not in page and "unpkg.com" not in page
    # the page loads nothing from outside (nbconvert's template would fetch require.js and MathJax from a CDN)
    assert not re.findall(r'<script[^>]+src="https?://|<link[^>]+href="https?://', page)


@pytest.fixture(scope="module")
def board_db(smoke_run, tmp_path_factory):
    """A copy of the smoke run's database (real rows) plus latency rows of a tiny random model."""
    from nbutils.suite.cli import main

    runs, _, _ = smoke_run
    folder = tmp_path_factory.mktemp("board")
    shutil.copy(runs / "results.sqlite", folder / "results.sqlite")
    old = os.environ.get("NBUTILS_RUNS_DIR")
    os.environ["NBUTILS_RUNS_DIR"] = str(folder)
    try:
        assert main(["bench", "--model", "random:bert-tiny", "--engines", "torch-eager:fp32,ort-cpu:int8-dynamic",
                     "--batch", "1,4", "--seq", "16", "--iterations", "5", "--warmup", "1"]) == 0
    finally:
        if old is None:
            os.environ.pop("NBUTILS_RUNS_DIR")
        else:
            os.environ["NBUTILS_RUNS_DIR"] = old
    return folder


def _select(page, label, value):
    page.locator(".widget-dropdown", has_text=label).first.locator("select").select_option(label=str(value))


LATENCY_PLOT = """Array.from(document.querySelectorAll('.js-plotly-plot')).find(
    p => p.layout && p.layout.title && String(p.layout.title.text).startsWith('p50 latency'))"""


def _latency_traces(page):
    return page.evaluate("() => { const p = " + LATENCY_PLOT + """;
        return p._fullData.filter(t => t.mode === 'lines+markers').map(t => ({name: t.name, x: Array.from(t.x),
        y: Array.from(t.y)})); }""")  # _fullData: plotly.js decoded the base64 arrays


def _wait_latency(page, condition, timeout=60_000):
    """Wait until the latency chart exists and its line traces satisfy ``condition`` (JS over ``lines``)."""
    page.wait_for_function("() => { const p = " + LATENCY_PLOT + """; if (!p || !p.data) return false;
        const lines = p.data.filter(t => t.mode === 'lines+markers'); return lines.length > 0 && (""" + condition + "); }",
                           timeout=timeout)


def test_voila_dashboard_in_chromium(board_db):
    from nbutils.store.db import read_results

    port = free_port()
    env = serve.voila_env({**os.environ, "NBUTILS_RUNS_DIR": str(board_db)})
    cmd = serve.voila_command("notebooks/90_dashboard.ipynb", port, ["--show_tracebacks=True"])
    shots = artefacts()
    with server(cmd, voila_ready_url(port), env, board_db / "voila.log"), browser() as page, \
            evidence_on_failure(page, "dashboard-voila"):
        t0 = time.perf_counter()
        page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
        page.wait_for_selector(".js-plotly-plot", timeout=180_000)
        first_chart_s = time.perf_counter() - t0
        print(f"Voilà: first chart {first_chart_s:.1f} s after opening the page")
        (board_db / "first_chart_s.txt").write_text(f"{first_chart_s:.2f}\n")
        page.wait_for_selector(".widget-dropdown select", timeout=60_000)
        # every view is a widget the page must find (Voila's non-progressive first load lost some: "model not
        # found"), and the default latency chart has a height (a responsive plotly chart once rendered 0 px high)
        page.wait_for_function("() => document.querySelectorAll('.widget-output').length >= 7", timeout=120_000)
        _wait_latency(page, "true")
        text = page.evaluate("() => document.body.innerText")
        assert "Error displaying widget" not in text, text[text.find("Error displaying widget") - 300:][:600]
        assert page.evaluate("() => " + LATENCY_PLOT + ".getBoundingClientRect().height") > 200
        assert page.external_requests == [], f"the page asked hosts other than its server: {page.external_requests}"
        page.screenshot(path=str(shots / "dashboard-voila-default.png"), full_page=True)
        # change the selection: one model, one engine -> the chart and the table follow, with the database's values
        _select(page, "model", "bert-tiny (untrained)")
        _select(page, "engine", "ort-cpu:int8-dynamic")
        _wait_latency(page, "lines.every(t => t.name.startsWith('ort-cpu:int8-dynamic'))")
        df = read_results(None, board_db / "results.sqlite")
        want = df[(df.engine == "ort-cpu:int8-dynamic") & (df.metric == "latency_p50_ms")
                  & (df.model == "bert-tiny (untrained)")].sort_values("batch")
        traces = _latency_traces(page)
        assert len(traces) == 1 and traces[0]["x"] == [1, 4]
        assert traces[0]["y"] == pytest.approx(list(want.value))
        mean = df[(df.engine == "ort-cpu:int8-dynamic") & (df.metric == "latency_mean_ms") & (df.batch == 4)
                  & (df.model == "bert-tiny (untrained)")].value.item()
        # the TensorRT-demo table (rendered after the charts) shows the selected engine's figure
        page.wait_for_function("t => document.body.innerText.includes(t)", arg=f"{round(mean, 3):.3f}", timeout=120_000)
        page.screenshot(path=str(shots / "dashboard-voila-selected.png"), full_page=True)
        # Measure now: rows are added in the background and a new point appears without a kernel restart
        rows_before = len(df)
        _select(page, "batch", 4)
        page.get_by_role("button", name="Measure now").click()
        page.wait_for_function("() => document.body.innerText.includes('measured ort-cpu:int8-dynamic')",
                               timeout=240_000)
        _select(page, "batch", "(all)")
        _wait_latency(page, "lines.length === 2")
        after = read_results(None, board_db / "results.sqlite")
        assert len(after) == rows_before + 6  # five latency figures and the peak memory
        page.screenshot(path=str(shots / "dashboard-voila-measured.png"), full_page=True)


XSS_MODEL = """<img src=x onerror="document.title='pwned';window.__xss=1"> (untrained)"""


def test_database_text_is_never_markup_in_the_voila_page(tmp_path):
    """A teammate's row whose model name is HTML: shown as text in the status line, never run (issue 22, case 1)."""
    prov = Provenance("20261101-000000-run", "60_benchmark", XSS_MODEL, "classification", "synthetic", {}, {})
    record([Measurement("latency_p50_ms", 5.0, "ort-dynamic", "ort-cpu:int8-dynamic", "int8", 1, 16)], prov,
           tmp_path / "results.sqlite")
    port = free_port()
    env = serve.voila_env({**os.environ, "NBUTILS_RUNS_DIR": str(tmp_path)})
    cmd = serve.voila_command("notebooks/90_dashboard.ipynb", port, ["--show_tracebacks=True"])
    with server(cmd, voila_ready_url(port), env, tmp_path / "voila.log"), browser() as page, \
            evidence_on_failure(page, "dashboard-xss"):
        page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
        page.wait_for_selector(".widget-dropdown select", timeout=180_000)
        _select(page, "model", XSS_MODEL)
        _select(page, "engine", "ort-cpu:int8-dynamic")
        page.get_by_role("button", name="Measure now").click()
        page.wait_for_function("() => document.body.innerText.includes('measurement failed')", timeout=240_000)
        text = page.evaluate("() => document.body.innerText")
        assert "<img src=x onerror=" in text  # the name is shown as the text it is
        assert page.evaluate("() => window.__xss") is None and page.title() != "pwned"
        assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length") == 0
        page.screenshot(path=str(artefacts() / "dashboard-xss.png"), full_page=True)
    # the failed measurement left no empty run folder behind
    assert not [p for p in tmp_path.iterdir() if p.name.endswith("-dashboard")]


def test_jupyterlab_renders_the_dashboard_widgets(board_db):
    port = free_port()
    env = {**os.environ, "NBUTILS_RUNS_DIR": str(board_db), "JUPYTER_CONFIG_DIR": str(board_db / "jupyter-config")}
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root", f"--ServerApp.root_dir={ROOT}"]
    with server(cmd, f"http://127.0.0.1:{port}/lab", env, board_db / "lab.log"), browser() as page, \
            evidence_on_failure(page, "dashboard-jupyterlab"):
        page.goto(f"http://127.0.0.1:{port}/lab/tree/notebooks/90_dashboard.ipynb", timeout=120_000)
        page.wait_for_selector(".jp-Notebook", timeout=120_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], .jp-mod-idle, "
                               "[title*='Kernel Idle']", timeout=120_000)
        page.locator(".jp-Notebook").first.click()
        page.get_by_text("Run", exact=True).first.click()
        page.get_by_text("Run All Cells", exact=True).first.click()
        page.wait_for_selector(".widget-dropdown select", timeout=180_000)
        page.wait_for_selector(".js-plotly-plot", state="attached", timeout=180_000)
        assert page.locator(".widget-dropdown select").count() >= 9
        assert page.locator(".js-plotly-plot").count() >= 2
        page.screenshot(path=str(artefacts() / "dashboard-jupyterlab.png"), full_page=False)


def test_lesson_explorers_follow_their_controls(tmp_path):
    """60/70's explorers (a Dashboard limited to a few views): changing a control changes the figure's data."""
    db = tmp_path / "r.sqlite"
    _rows(db, "20261101-000000-run", {"torch-eager:fp32": 20.0, "ort-cpu:int8-dynamic": 5.0})
    board = dashboard.Dashboard(db, {"run_id": "20261101-000000-run"}, views_shown=("latency", "speedup"), measure=False)
    board.build()
    assert "Measure now" not in [getattr(c, "description", "") for c in board.build().children[1:]]
    lat = board.views["latency"]
    lat.widget()
    assert {t.name.split(" · ")[0] for t in lat.last.data if t.mode == "lines+markers"} == {
        "torch-eager:fp32", "ort-cpu:int8-dynamic"}
    board.controls["engine"].value = "ort-cpu:int8-dynamic"
    lines = [t for t in lat.last.data if t.mode == "lines+markers"]
    assert len(lines) == 1 and list(lines[0].y) == [5.0]


def test_measure_now_adds_rows_and_a_line_without_a_browser(tmp_path, monkeypatch):
    from nbutils.store.db import read_results
    from nbutils.suite.cli import main

    monkeypatch.setenv("NBUTILS_RUNS_DIR", str(tmp_path))
    assert main(["bench", "--model", "random:bert-tiny", "--engines", "ort-cpu:int8-dynamic", "--batch", "1",
                 "--seq", "8", "--iterations", "3", "--warmup", "0"]) == 0
    db = tmp_path / "results.sqlite"
    board = dashboard.Dashboard(db, {"model": "bert-tiny (untrained)", "engine": "ort-cpu:int8-dynamic"},
                                measure_iterations=3)
    board.build()
    board.views["latency"].widget()
    assert len([t for t in board.views["latency"].last.data if t.mode == "lines+markers"]) == 1
    board.measure_now(wait=True)
    assert board.status.value.startswith("measured ort-cpu:int8-dynamic"), board.status.value
    assert len(read_results(None, db)) == 12  # 2 cells x (5 latency figures + peak memory)
    assert len([t for t in board.views["latency"].last.data if t.mode == "lines+markers"]) == 2
    assert board.controls["engine"].value == "ort-cpu:int8-dynamic"  # the selection survives the reload
    assert set(read_results(None, db)["seq"]) == {8}  # measured at the shape already shown, beside the old point
    board.controls["engine"].value = "(all)"
    board.measure_now(wait=True)  # no single engine chosen: a message, no thread, nothing written
    assert "choose one engine" in board.status.value and len(read_results(None, db)) == 12
