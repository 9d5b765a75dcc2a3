"""The dashboard over the results database (notebook ``90_dashboard``, served by Voilà with ``make dashboard``).

Three layers, each usable alone:

* data: :func:`load` reads every row read-only (never writes, works on an older database) and adds a
  ``machine`` column from the provenance; problems become a message, not a traceback;
* views: :func:`select` filters by the controls, the ``*_view`` functions build plotly figures and tables from
  :mod:`nbutils.report.tables`, :func:`compare_runs` puts two runs side by side;
* app: :class:`Dashboard` wires controls (:mod:`nbutils.ui.widgets`) to views and the "Measure now" button.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbutils.core.errors import NbUtilsError
from nbutils.core.vocab import label, main_metric
from nbutils.report import tables
from nbutils.store.db import DESCRIBING_COLUMNS
from nbutils.ui.widgets import html_text

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

ALL = "(all)"
SELECT_COLUMNS = (*DESCRIBING_COLUMNS, "machine")  # what a figure is of, and where it was measured
#: The controls the speed-up view ignores when it looks up its references (eager FP32, the best float engine).
REFERENCE_FREE = ("recipe", "engine", "precision")


@dataclass
class Data:
    """Rows of the results database with a ``machine`` column, or the reason there are none."""

    frame: pd.DataFrame
    db: Path
    message: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether there are rows to show."""
        return not self.message and not self.frame.empty


def _machine(hardware: str) -> str:
    try:
        hw = json.loads(hardware) if isinstance(hardware, str) else dict(hardware or {})
    except (TypeError, ValueError):
        return "unknown"
    gpu = hw.get("gpu")
    return f"{hw.get('cpu', 'unknown CPU')}" + (f" + {gpu}" if gpu else "")


def load(db: str | Path | list[str | Path]) -> Data:
    """Read every row of ``db`` (one database, or several side by side) read-only for the dashboard.

    An unusable database gives a message instead of rows; a run whose notebooks failed (``outcomes.json`` in
    its run folder beside the database) gives a warning, and its rows are shown as recorded.
    """
    import pandas as pd

    from nbutils.core.paths import read_json
    from nbutils.store.db import read_results

    paths = [Path(p) for p in db] if isinstance(db, (list, tuple)) else [Path(db)]
    empty = pd.DataFrame(columns=[*SELECT_COLUMNS, "id", "metric", "value", "unit", "notebook", "extra", "hardware"])
    frames, warnings = [], []
    for path in paths:
        try:
            frames.append(read_results(None, path, all_columns=True))
        except NbUtilsError as exc:
            return Data(empty, paths[0], str(exc))
        for run in frames[-1]["run_id"].unique():
            outcomes = path.parent / str(run) / "outcomes.json"
            try:
                failed = [o for o in read_json(outcomes) if not o.get("ok")] if outcomes.is_file() else []
            except (OSError, ValueError):
                failed = []
            warnings += [f"run {run}: {o['name']} did not finish ({o.get('error', '')[:200]}); its figures are "
                         "shown as far as they were recorded" for o in failed]
    frame = pd.concat(frames, ignore_index=True) if frames else empty
    if frame.empty:
        return Data(empty, paths[0], f"the results database {paths[0]} has no figures yet. Fix: run the suite "
                                     "(make run) or python -m nbutils bench, then reload this page", warnings)
    frame["machine"] = frame["hardware"].map(_machine)
    return Data(frame, paths[0], "", warnings)


def options(frame: pd.DataFrame, column: str) -> list[Any]:
    """Choices for a control: ``(all)`` then the column's distinct values (integers as integers)."""
    values = frame[column].dropna().unique().tolist() if column in frame else []
    if column in ("batch", "seq"):
        values = sorted(int(v) for v in values)
    else:
        values = sorted(str(v) for v in values)
    return [ALL, *values]


def select(frame: pd.DataFrame, selection: dict[str, Any]) -> pd.DataFrame:
    """Rows matching every control that is not ``(all)``; ``run_id`` may be a list of runs."""
    out = frame
    for col, want in selection.items():
        if want in (None, ALL, (), []) or col not in out:
            continue
        if isinstance(want, (list, tuple)):
            out = out[out[col].isin(list(want))]
        elif col in ("batch", "seq"):
            out = out[out[col] == int(want)]
        else:
            out = out[out[col].astype(str) == str(want)]
    return out


def _nothing(frame: pd.DataFrame, what: str) -> None:
    if frame.empty:
        raise NbUtilsError(f"no {what} matches this selection", "widen the selection (choose (all) somewhere)")


def latency_view(frame: pd.DataFrame) -> go.Figure:
    """p50 latency against batch per engine variant, with the p95–p99 band shaded."""
    import plotly.graph_objects as go

    lat = frame[frame["metric"].isin(["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"])]
    _nothing(lat, "latency figure")
    table = lat.pivot_table(index=["run_id", "engine", "recipe", "seq", "batch"], columns="metric", values="value",
                            aggfunc="last").reset_index().sort_values("batch")
    several = table["run_id"].nunique() > 1
    fig = go.Figure()
    for (run, engine, recipe, seq), g in table.groupby(["run_id", "engine", "recipe", "seq"]):
        name = f"{label(engine, recipe)} · seq {int(seq)}" + (f" · {run}" if several else "")
        if {"latency_p95_ms", "latency_p99_ms"} <= set(g.columns):
            fig.add_trace(go.Scatter(x=[*g["batch"], *g["batch"][::-1]],
                                     y=[*g["latency_p99_ms"], *g["latency_p95_ms"][::-1]], fill="toself", mode="lines",
                                     opacity=0.2, line={"width": 0}, showlegend=False, hoverinfo="skip",
                                     legendgroup=name))
        fig.add_trace(go.Scatter(x=g["batch"], y=g["latency_p50_ms"], mode="lines+markers", name=name,
                                 legendgroup=name, customdata=g[["engine", "recipe"]],
                                 hovertemplate="batch %{x}<br>p50 %{y:.3f} ms<extra>%{fullData.name}</extra>"))
    fig.update_layout(title="p50 latency by batch (band: p95–p99)", xaxis_title="batch", yaxis_title="ms",
                      xaxis_type="log", yaxis_type="log", height=420, legend={"font": {"size": 10}})
    return fig


def speedup_view(frame: pd.DataFrame, references: pd.DataFrame | None = None) -> go.Figure:
    """Speed-up over PyTorch eager FP32 and over the best float engine at each shape.

    ``references`` (default ``frame``) is where the reference engines are looked up: the dashboard passes the
    selection without its engine/recipe/precision filters, so one selected engine still gets its speed-ups.
    """
    import plotly.graph_objects as go

    sp = tables.speedups(frame if references is None else references)
    _nothing(sp, "latency figure")
    if references is not None:  # keep the selected variants only, computed against every reference
        keys = set(zip(frame["model"], frame["seq"].map(tables.as_int), frame["batch"].map(tables.as_int),
                       frame["engine"], frame["recipe"], strict=True))
        sp = sp[[k in keys for k in zip(sp["model"], sp["seq"], sp["batch"], sp["engine"], sp["recipe"], strict=True)]]
        _nothing(sp, "latency figure")
    sp = sp.sort_values("speedup_vs_eager_fp32")
    names = [f"{lb} · b{b} s{s}" for lb, b, s in zip(sp["label"], sp["batch"], sp["seq"], strict=True)]
    if len(set(names)) < len(names):  # the same variant and shape timed in several runs: one bar each, named by run
        names = [f"{n} · {r}" for n, r in zip(names, sp["run_id"], strict=True)]
    fig = go.Figure()
    for col, name in (("speedup_vs_eager_fp32", "vs PyTorch eager FP32"), ("speedup_vs_best_float", "vs best float")):
        fig.add_trace(go.Bar(y=names, x=sp[col], name=name, orientation="h"))
    missing = [name for col, name in (("speedup_vs_eager_fp32", "PyTorch eager FP32"), ("speedup_vs_best_float",
                                                                                          "a float engine"))
               if sp[col].isna().all()]
    title = "Speed-up (p50), higher is faster"
    if missing:
        title += f"<br><sub>not timed at these shapes: {' or '.join(missing)} (no bar for that reference)</sub>"
    fig.update_layout(title=title, barmode="group", height=max(300, 28 * len(sp) + 120),
                      xaxis_title="×", legend={"orientation": "h"})
    return fig


def pareto_view(frame: pd.DataFrame, batch: int | None = None) -> go.Figure:
    """Accuracy against p50 latency (at ``batch``, default the smallest timed) with the Pareto front."""
    from nbutils.report import charts

    acc = tables.accuracy_table(frame)
    lat = frame[frame["metric"] == "latency_p50_ms"]
    _nothing(acc, "accuracy figure")
    _nothing(lat, "latency figure")
    batch = int(batch if batch is not None else lat["batch"].min())
    points = tables.accuracy_latency_points(acc, lat, batch)
    _nothing(points, f"variant with both accuracy and latency at batch {batch}")
    main = main_metric([c for c in points.columns if c in ("accuracy", "f1")])
    return charts.accuracy_vs_latency(points, points["pareto"].tolist(), y=main,
                                     title=f"{main} vs p50 latency at batch {batch} (line: Pareto front)")


def accuracy_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The accuracy table: score, delta to FP32 and agreement per variant."""
    acc = tables.accuracy_table(frame)
    _nothing(acc, "accuracy figure")
    return acc.round(3)


def demo_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The TensorRT-demo table (avg/p95/p99 per engine variant), one row per model, seq, batch."""
    demo = tables.demo_table(frame)
    _nothing(demo, "latency figure")
    return demo.round(3)


def provenance_view(frame: pd.DataFrame) -> str:
    """Where the newest selected figure came from: run, notebook, machine, versions, data and extras."""
    import html

    _nothing(frame, "figure")
    row = frame.sort_values("id").iloc[-1]
    items = {"figure": f"{row['metric']} = {row['value']:.4g} {row['unit']}", "run": row["run_id"],
             "notebook": row["notebook"], "model": row["model"], "engine": row["engine"], "recipe": row["recipe"],
             "machine": row["machine"], "data": row.get("data", ""), "recorded": row.get("created_at", ""),
             "versions": row.get("versions", ""), "extra": row.get("extra", "")}
    cells = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(str(v))[:600]}</td></tr>"
                    for k, v in items.items())
    return f"<table class='nb-provenance'>{cells}</table>"


def compare_runs(frame: pd.DataFrame, run_a: str, run_b: str) -> pd.DataFrame:
    """Figures both runs measured, side by side, with the ratio ``b / a`` (e.g. a CPU run against a GPU run)."""
    key = ["model", "recipe", "engine", "precision", "batch", "seq", "metric"]
    runs = set(frame["run_id"])
    for r in (run_a, run_b):
        if r not in runs:
            raise NbUtilsError(f"no figures for run {r!r}", f"pick one of: {', '.join(sorted(runs)[-5:])}")
    sides = []
    for r in (run_a, run_b):
        sub = frame[frame["run_id"] == r].copy()
        sub[["batch", "seq"]] = sub[["batch", "seq"]].fillna(-1).astype(int)
        sides.append(sub.groupby(key, dropna=False)["value"].last().rename(r))
    both = sides[0].to_frame().join(sides[1], how="inner").reset_index()
    if both.empty:
        raise NbUtilsError(f"runs {run_a} and {run_b} share no figure (same model, recipe, engine, shape and metric)",
                           "compare runs that measured the same variants, e.g. two benchmark runs of one grid")
    both["ratio_b_over_a"] = both[run_b] / both[run_a]
    for col in ("batch", "seq"):
        both[col] = both[col].map(lambda v: "" if v == -1 else int(v))
    return both


@dataclass
class Dashboard:
    """Controls, views and "Measure now", over one results database (see notebook 90)."""

    db: Path
    defaults: dict[str, Any] = field(default_factory=dict)
    measure_iterations: int = 20
    data: Data | None = None
    views_shown: tuple[str, ...] = ("latency", "speedup", "pareto", "accuracy", "demo", "provenance", "compare")
    measure: bool = True  # offer "Measure now"

    def __post_init__(self) -> None:
        self.data = load(self.db)
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()  # control callbacks and the "Measure now" thread never render at once

    # -- controls ------------------------------------------------------------------------------------
    def build(self) -> Any:
        """Build the controls and views (nothing displayed yet); returns the control box."""
        import ipywidgets as w

        from nbutils.ui import widgets

        frame = self.data.frame
        d = self.defaults
        self.controls = {col: widgets.dropdown(options(frame, col), d.get(col, ALL), col) for col in SELECT_COLUMNS}
        runs = options(frame, "run_id")[1:]
        self.compare = [widgets.dropdown([ALL, *runs], d.get("compare_a", ALL), "compare run A"),
                        widgets.dropdown([ALL, *runs], d.get("compare_b", ALL), "with run B")]
        self.measure_button = widgets.button("Measure now", "time the selected engine (and batch, seq) now, in the background")
        self.bar = widgets.progress("measuring")
        self.bar.layout.visibility = "hidden"
        self.status = widgets.message()
        if self.data.message:
            self.status.value = f"<b>{html_text(self.data.message)}</b>"
        elif self.data.warnings:
            self.status.value = "<br>".join(html_text(w) for w in self.data.warnings)
        self.views = {
            "latency": widgets.View(lambda: latency_view(self.selected()), "latency"),
            "speedup": widgets.View(lambda: speedup_view(self.selected(), self.selected(REFERENCE_FREE)), "speed-up"),
            "pareto": widgets.View(lambda: pareto_view(self.selected(), self._batch()), "accuracy vs latency"),
            "accuracy": widgets.View(lambda: accuracy_view(self.selected()), "accuracy table"),
            "demo": widgets.View(lambda: demo_view(self.selected()), "TensorRT-demo table"),
            "provenance": widgets.View(lambda: provenance_view(self.selected()), "provenance"),
            "compare": widgets.View(self._compare, "two runs"),
        }
        widgets.on_change(list(self.controls.values()), self._on_control)
        widgets.on_change(self.compare, lambda: self.views["compare"].refresh())
        self.measure_button.on_click(lambda _b: self.measure_now())
        grid = w.GridBox(list(self.controls.values()), layout=w.Layout(grid_template_columns="repeat(3, 33%)"))
        actions = [w.HBox([self.measure_button, self.bar])] if self.measure else []
        return w.VBox([grid, *actions, self.status], layout=w.Layout(width="100%"))

    def selection(self) -> dict[str, Any]:
        """The controls' current values."""
        return {col: c.value for col, c in self.controls.items()}

    def selected(self, ignore: tuple[str, ...] = ()) -> pd.DataFrame:
        """Rows matching the controls, except those named in ``ignore`` (a message if the database is unusable)."""
        if self.data.message:
            raise NbUtilsError(self.data.message.split(". Fix:")[0], "see the message above")
        return select(self.data.frame, {k: v for k, v in self.selection().items() if k not in ignore})

    def _batch(self) -> int | None:
        b = self.controls["batch"].value
        return None if b == ALL else int(b)

    def _compare(self) -> Any:
        a, b = (c.value for c in self.compare)
        if ALL in (a, b):
            return "<p class='nb-message'>Choose two runs above to compare their shared figures.</p>"
        return compare_runs(self.data.frame, a, b).round(4)

    def _on_control(self) -> None:
        if not getattr(self, "_reloading", False):
            self.refresh()

    def refresh(self) -> None:
        """Re-render every view from the current selection."""
        with self._lock:
            for v in self.views.values():
                v.refresh()

    def reload(self) -> None:
        """Read the database again (new rows appear) and keep the selection where it still exists."""
        with self._lock:
            keep = self.selection()
            self.data = load(self.db)
            self._reloading = True  # new options fire value changes: render once, after all controls are set
            try:
                for col, c in self.controls.items():
                    opts = options(self.data.frame, col)
                    c.options = opts  # resets the value to the first option (not inside hold_trait_notifications:
                    c.value = keep[col] if keep[col] in opts else ALL  # ipywidgets would reset it at the end)
            finally:
                self._reloading = False
            self.refresh()

    # -- measure now ---------------------------------------------------------------------------------
    def measure_target(self) -> tuple[str, str, list[int], list[int], str]:
        """(model spec, engine, batches, seqs, model name) for "Measure now", from the selection."""
        from nbutils.engines import ENGINES

        sel = self.selection()
        engine = sel["engine"]
        if engine == ALL or engine not in ENGINES:
            raise NbUtilsError("choose one engine to measure (a full engine name such as ort-cpu:int8-dynamic)",
                               "pick it in the engine control")
        model = sel["model"]
        if model == ALL:
            raise NbUtilsError("choose one model to measure", "pick it in the model control")
        if not model.endswith("(untrained)"):
            raise NbUtilsError(f"'Measure now' times latency-only models here; {model!r} is a trained checkpoint",
                               "pick a random:... model's rows, or time the trained model with notebook 60")
        spec = "random:" + model.split(" (untrained)")[0]
        rows = self.selected()
        rows = rows[rows["metric"] == "latency_p50_ms"]
        # the shapes already shown for this selection (so the new points sit beside the old ones), else b1/s128
        batches = [int(sel["batch"])] if sel["batch"] != ALL else sorted({int(b) for b in rows["batch"].dropna()})[:3] or [1]
        seqs = [int(sel["seq"])] if sel["seq"] != ALL else sorted({int(q) for q in rows["seq"].dropna()})[-1:] or [128]
        return spec, engine, batches, seqs, model

    def measure_now(self, *, wait: bool = False) -> None:
        """Time the selection in a background thread, record the rows, then reload; errors show as a message."""
        if self._thread is not None and self._thread.is_alive():
            self.status.value = "already measuring: wait for the bar to finish"
            return
        try:
            target = self.measure_target()
        except NbUtilsError as exc:
            self.status.value = f"<b>cannot measure:</b> {html_text(str(exc))}"
            return
        self._thread = threading.Thread(target=self._measure, args=target, daemon=True)
        self.bar.value, self.bar.max = 0, len(target[2]) * len(target[3])
        self.bar.layout.visibility = "visible"
        self.status.value = html_text(f"measuring {target[1]} on {target[4]} ...")
        self._thread.start()
        if wait:
            self._thread.join()

    def _measure(self, spec: str, engine: str, batches: list[int], seqs: list[int], model: str) -> None:
        from nbutils.core.paths import claim_run_dir, new_run_id
        from nbutils.engines.driver import benchmark
        from nbutils.store.notebook_run import NotebookRun

        run = None
        try:
            run = NotebookRun(claim_run_dir(new_run_id("dashboard")), "90_dashboard", self.db)
            done = 0
            for b in batches:
                for s in seqs:
                    result = benchmark(run, spec, [engine], [b], [s], warmup=3, iterations=self.measure_iterations,
                                       progress=False)
                    result.raise_failures()
                    done += 1
                    self.bar.value = done
            self.reload()
            self.status.value = html_text(f"measured {engine} on {model}: new rows in run {run.run_id}")
        except Exception as exc:  # noqa: BLE001 - any failure is shown in the dashboard, which stays usable
            self.status.value = f"<b>measurement failed:</b> {html_text(str(exc))}"
            if run is not None and not any(p.is_file() for p in run.run_dir.rglob("*")):
                import shutil

                shutil.rmtree(run.run_dir, ignore_errors=True)  # a failed measurement leaves no empty run folder
        finally:
            self.bar.layout.visibility = "hidden"

    def show(self) -> None:
        """Display controls and every view (the first render of each is an ordinary output)."""
        from IPython.display import HTML, display

        display(self.build())
        titles = {"latency": "Latency vs batch", "speedup": "Speed-up", "pareto": "Accuracy vs latency",
                  "accuracy": "Accuracy (validation split)", "demo": "TensorRT-demo table",
                  "provenance": "Provenance of the newest selected figure", "compare": "Two runs side by side"}
        for key, view in self.views.items():
            if key not in self.views_shown:
                continue
            display(HTML(f"<h3>{titles[key]}</h3>"))
            if key == "compare":
                display(*self.compare)
            view.show()
