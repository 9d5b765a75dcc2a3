"""Explorers of the lessons (issue 12): change a control programmatically, the figure follows as expected."""

import json
import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from nbutils.core.errors import NbUtilsError
from nbutils.ui import explorers, serve
from tests.browser import ROOT, artefacts, browser, free_port, server, voila_ready_url


def _hist():
    edges = np.linspace(0, 10, 101)
    counts = np.zeros(100)
    counts[:50] = 1000  # bulk in [0, 5)
    counts[99] = 1  # one outlier bin near 10
    return edges, counts


def test_percentile_and_clipping_stats_known_answers():
    edges, counts = _hist()
    assert explorers.percentile_amax(edges, counts, 100.0) == pytest.approx(10.0)
    assert explorers.percentile_amax(edges, counts, 50.0) == pytest.approx(2.5, abs=1e-3)
    full = explorers.clipping_stats(edges, counts, 10.0)
    tight = explorers.clipping_stats(edges, counts, 5.0)
    assert full["clipped_pct"] == 0.0 and tight["clipped_pct"] == pytest.approx(100 / 50001)
    g_edges, g_counts = _gauss()
    assert explorers.clipping_stats(g_edges, g_counts, 5.0)["sqnr_db"] > explorers.clipping_stats(
        g_edges, g_counts, 20.0)["sqnr_db"]  # clipping one outlier resolves the bulk four times as finely
    # an all-zero-error case: every bin centre on a level
    e = np.array([0.0, 2.0, 4.0])
    assert explorers.clipping_stats(e, np.array([1.0, 1.0]), 127.0)["sqnr_db"] == float("inf")
    with pytest.raises(NbUtilsError, match="not positive"):
        explorers.clipping_stats(edges, counts, 0.0)


def _gauss():
    edges = np.linspace(0, 20, 2049)
    centers = (edges[:-1] + edges[1:]) / 2
    counts = 1e6 * np.exp(-(centers**2) / 2)
    counts[-1] += 1  # one outlier at 20: max spends the range on it
    return edges, counts


def test_calibration_explorer_follows_slider_and_quantizer():
    edges, counts = _gauss()
    other = (np.linspace(0, 2, 101), np.ones(100))
    ex = explorers.CalibrationExplorer({"bert.encoder.layer.0.output.dense.input_quantizer": (edges, counts),
                                        "bert.encoder.layer.1.attention.self.softmax_quantizer": other},
                                       lambda name: {"max": 10.0 if "output" in name else 2.0},
                                       quantizer="bert.encoder.layer.0.output.dense.input_quantizer", percentile=100.0)
    ex.view.widget()
    before, text_before = ex.stats(), ex.readout.value
    ex.percentile.value = 99.99
    after = ex.stats()
    assert after["amax"] < before["amax"] and after["sqnr_db"] > before["sqnr_db"]
    assert ex.readout.value != text_before and f"{after['sqnr_db']:.2f} dB" in ex.readout.value
    slider_line = [t for t in ex.view.last.data if str(t.name).startswith("slider")][0]
    assert slider_line.x[0] == pytest.approx(after["amax"])
    ex.quantizer.value = "bert.encoder.layer.1.attention.self.softmax_quantizer"
    bars = ex.view.last.data[0]
    assert max(bars.x) < 2.0 and "layer 1 · attention · softmax" in ex.view.last.layout.title.text


def test_live_curves_grow_with_the_training_log():
    curves = explorers.LiveCurves({"FP32": 90.0, "ptq-max": 85.0})
    curves.view.widget()
    log = curves.update("qat")
    log([{"step": 1.0, "loss": 0.7}])
    assert [list(t.x) for t in curves.view.last.data if t.name == "qat loss"] == [[1.0]]
    log([{"step": 1.0, "loss": 0.7}, {"step": 2.0, "loss": 0.5, "eval": 88.0}])
    names = {t.name: list(t.y) for t in curves.view.last.data}
    assert names["qat loss"] == [0.7, 0.5] and names["qat val. score"] == [88.0]
    assert any("FP32 90.00" in a.text for a in curves.view.last.layout.annotations)


def test_variant_explorer_shows_the_chosen_variant_beside_fp32():
    table = pd.DataFrame({"variant": ["fp32", "ptq-max", "qat"], "size_mb": [91.0, 91.2, 91.3],
                          "parity_top1_%": [100.0, 98.1, 99.3]})
    ex = explorers.VariantExplorer(table, variant="ptq-max")
    ex.view.widget()
    assert "ptq-max" in ex.view.last and "98.1" in ex.view.last
    ex.variant.value = "qat"
    assert "99.3" in ex.view.last and "98.1" not in ex.view.last
    with pytest.raises(NbUtilsError, match="no variant 'nope'"):
        explorers.variant_comparison(table, "nope")


class _Tok:
    def __call__(self, texts, **_):
        n = len(texts[0])
        return {"input_ids": np.array([[n, 1, 2, 3]]), "attention_mask": np.ones((1, 4), dtype=np.int64)}


def test_playground_predicts_the_typed_sentence():
    def model(feed):
        n = feed["input_ids"][0, 0]
        return np.array([[0.0, float(n % 2) * 4 - 2]])  # odd length: positive

    pg = explorers.Playground(_Tok(), {"fp32": model, "int8": model}, sentence="good", repeats=1)
    pg.view.widget()
    assert list(pg.results().prediction) == ["negative", "negative"]
    pg.sentence.value = "great"
    res = pg.results()
    assert list(res.prediction) == ["positive", "positive"] and (res.latency_ms >= 0).all()
    assert pg.view.last.data[1].y[0] == pytest.approx(1 / (1 + np.exp(-2)))
    pg.sentence.value = "  "
    assert pg.view.last is None  # an empty sentence is a message in the view, not a traceback


def test_voila_ptq_explorer_slider_changes_sqnr(smoke_run, tmp_path):
    import papermill

    runs, run_dir, _ = smoke_run
    db = tmp_path / "results.sqlite"
    shutil.copy(runs / "results.sqlite", db)
    nb = ROOT / "notebooks" / "zz_voila_20_ptq.ipynb"  # Voilà serves notebooks under its root folder
    papermill.execute_notebook(str(ROOT / "notebooks" / "20_ptq.ipynb"), str(nb), prepare_only=True,
                               parameters={"smoke": True, "run_dir": str(run_dir), "results_db": str(db),
                                           "calibrators": ["max", "percentile-99.99"], "placements": []})
    port = free_port()
    env = serve.voila_env({**os.environ, "NBUTILS_RUNS_DIR": str(tmp_path)})
    cmd = serve.voila_command(nb.relative_to(ROOT), port, ["--show_tracebacks=True"])
    try:
        with server(cmd, voila_ready_url(port), env, tmp_path / "voila.log"), browser() as page:
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/", timeout=300_000)
            page.wait_for_selector(".nb-readout", timeout=300_000)
            print(f"Voilà 20_ptq: explorer ready {time.perf_counter() - t0:.1f} s after opening")
            before = page.inner_text(".nb-readout")
            handle = page.locator(".widget-slider .noUi-handle").first
            handle.scroll_into_view_if_needed()
            box = handle.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] - 120, box["y"] + box["height"] / 2, steps=8)
            page.mouse.up()
            page.wait_for_function("b => document.querySelector('.nb-readout').innerText !== b", arg=before,
                                   timeout=60_000)
            after = page.inner_text(".nb-readout")
            page.screenshot(path=str(artefacts() / "ptq-explorer-voila.png"), full_page=False)
            sq = [float(t.split("SQNR ")[1].split(" dB")[0]) for t in (before, after)]
            assert sq[0] != sq[1], (before, after)
            assert json.dumps(after)
    finally:
        nb.unlink(missing_ok=True)
