"""Explorers inside the lessons: each lesson's key figure as something to play with (notebooks 20, 30, 40, 70).

Every explorer takes its defaults from the notebook's parameters (papermill never waits) and exposes its
controls as attributes, so tests can change them programmatically and read the figure back (``.view.last``).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nbutils.core.errors import NbUtilsError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go


# --- 20_ptq: what a clipping range does to one tensor --------------------------------------------------------


def percentile_amax(edges: np.ndarray, counts: np.ndarray, percentile: float) -> float:
    """The |value| below which ``percentile`` % of the histogram's mass lies (bin upper edge, interpolated)."""
    if not 0 < percentile <= 100:
        raise NbUtilsError(f"percentile {percentile} outside (0, 100]", "use e.g. 99.99")
    total = float(np.sum(counts))
    if total <= 0:
        raise NbUtilsError("the histogram is empty", "calibrate with data that reaches this quantizer")
    cdf = np.cumsum(counts) / total
    i = int(np.searchsorted(cdf, percentile / 100.0))
    i = min(i, len(counts) - 1)
    lo = cdf[i - 1] if i else 0.0
    frac = 0.0 if cdf[i] == lo else (percentile / 100.0 - lo) / (cdf[i] - lo)
    return float(edges[i] + min(max(frac, 0.0), 1.0) * (edges[i + 1] - edges[i]))


def clipping_stats(edges: np.ndarray, counts: np.ndarray, amax: float, num_bits: int = 8) -> dict[str, float]:
    """SQNR (dB) and clipped share (%) of symmetric INT8 with range ``amax``, from a |value| histogram.

    Every value of a bin is taken at the bin centre; values above ``amax`` saturate to it, the others round to the
    nearest of the ``2**(num_bits-1) - 1`` levels: the same statistics the calibrators used, no recalibration.
    """
    if amax <= 0:
        raise NbUtilsError(f"clipping value {amax} is not positive", "use a range above zero")
    centers = (np.asarray(edges[:-1]) + np.asarray(edges[1:])) / 2
    c = np.asarray(counts, dtype=np.float64)
    levels = 2 ** (num_bits - 1) - 1
    scale = amax / levels
    q = np.clip(np.round(centers / scale), 0, levels) * scale
    from nbutils.training.metrics import sqnr_from_sums

    clipped = float(np.sum(c[centers > amax])) / max(float(np.sum(c)), 1.0)
    return {"sqnr_db": sqnr_from_sums(float(np.sum(c * centers**2)), float(np.sum(c * (centers - q) ** 2))),
            "clipped_pct": 100 * clipped}


def quantizer_label(name: str) -> str:
    """``bert.encoder.layer.3.attention.self.query.input_quantizer`` → ``layer 3 · attention · query input``."""
    m = re.search(r"layer\.(\d+)\.(.*)", name)
    if not m:
        return name
    rest = m.group(2).replace("attention.self.", "attention · ").replace("attention.output.", "attention out · ")
    rest = rest.replace(".input_quantizer", " input").replace("_quantizer", "").replace(".", " · ")
    return f"layer {int(m.group(1))} · {rest}"


class CalibrationExplorer:
    """Pick a quantizer, drag a percentile: the histogram, the chosen range, SQNR and clipped share follow."""

    def __init__(self, histograms: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 ranges: Callable[[str], Mapping[str, float]], *, quantizer: str = "", percentile: float = 99.99) -> None:
        """``histograms``: quantizer name → (edges, counts); ``ranges(name)``: calibrator → amax for that quantizer."""
        from nbutils.ui import widgets

        if not histograms:
            raise NbUtilsError("no activation histograms to explore", "run the PTQ calibration step first")
        self.histograms = dict(histograms)
        self.ranges = ranges
        names = sorted(self.histograms, key=lambda n: (quantizer_label(n), n))
        self.quantizer = widgets.dropdown([(quantizer_label(n), n) for n in names], quantizer or names[len(names) // 2],
                                          "quantizer", layout={"width": "560px"})
        self.percentile = widgets.float_slider(percentile, 99.0, 100.0, 0.001, "percentile")
        self.readout = widgets.message()
        self.view = widgets.View(self.figure, "calibration")
        widgets.on_change([self.quantizer, self.percentile], self.view.refresh)

    @classmethod
    def from_model(cls, model: Any, calibrators: Sequence[str], **kw: Any) -> CalibrationExplorer:
        """Build from a calibrated ModelOpt model (its kept histograms; nothing is recalibrated)."""
        from nbutils import quant

        hists = {}
        for name, _ in quant.quantizers(model):
            try:
                edges, counts = quant.histogram(model, name)
            except (AttributeError, TypeError):
                continue  # weights: max calibration, no histogram
            if counts.size and counts.sum() > 0:
                hists[name] = (edges, counts)
        cache: dict[str, dict[str, float]] = {}

        def ranges(name: str) -> dict[str, float]:
            if name not in cache:
                cache[name] = {c: quant.amax_under(model, name, c) for c in calibrators}
            return cache[name]

        return cls(hists, ranges, **kw)

    def stats(self) -> dict[str, float]:
        """Range, SQNR and clipped share for the current controls."""
        edges, counts = self.histograms[self.quantizer.value]
        amax = percentile_amax(edges, counts, self.percentile.value)
        return {"amax": amax, **clipping_stats(edges, counts, amax)}

    def figure(self) -> go.Figure:
        """The histogram (log counts), each calibrator's range, and the slider's range with its statistics."""
        from nbutils.report import charts

        name = self.quantizer.value
        edges, counts = self.histograms[name]
        ranges = dict(self.ranges(name))
        st = self.stats()
        ranges[f"slider p{self.percentile.value:g}"] = st["amax"]
        fig = charts.histogram_with_ranges(edges, counts, ranges, title=f"{quantizer_label(name)}")
        text = (f"p{self.percentile.value:g}: range {st['amax']:.4g} · SQNR {st['sqnr_db']:.2f} dB · "
                f"clipped {st['clipped_pct']:.4f} %")
        fig.add_annotation(text=text, xref="paper", yref="paper", x=0.99, y=0.99, showarrow=False, align="right",
                           bgcolor="rgba(255,255,255,0.8)", name="readout")
        self.readout.value = f"<b class='nb-readout'>{html.escape(text)}</b>"
        return fig

    def show(self) -> None:
        """Display the controls, the readout and the chart."""
        import ipywidgets as w
        from IPython.display import display

        display(w.VBox([self.quantizer, self.percentile, self.readout]))
        self.view.show()


# --- 30_qat: curves that grow while training ----------------------------------------------------------------


class LiveCurves:
    """Loss and validation score per step, updated while QAT trains, with FP32 and PTQ as reference lines."""

    def __init__(self, references: Mapping[str, float], metric: str = "accuracy") -> None:
        from nbutils.ui import widgets

        self.references = dict(references)
        self.metric = metric
        self.histories: dict[str, list[dict[str, float]]] = {}
        self.view = widgets.View(self.figure, "training")

    def update(self, name: str) -> Callable[[list[dict[str, float]]], None]:
        """A callback for ``fine_tune(on_log=...)`` / ``quant.run_qat(on_log=...)`` feeding run ``name``."""

        def on_log(history: list[dict[str, float]]) -> None:
            self.histories[name] = list(history)
            self.view.refresh()

        return on_log

    def figure(self) -> go.Figure:
        """Loss (left axis) and validation score (right axis); dashed lines: FP32 and the PTQ starting point."""
        from nbutils.report import charts

        fig = charts.training_curves(self.histories, title="QAT: loss and validation score (live)")
        for i, (label, value) in enumerate(self.references.items()):
            fig.add_hline(y=value, line_dash="dash" if i == 0 else "dot", secondary_y=True,
                          annotation_text=f"{label} {value:.2f}", annotation_position="top left")
        fig.update_yaxes(title_text=f"validation {self.metric} (%)", secondary_y=True)
        return fig

    def show(self) -> None:
        """Display the (initially empty) chart; it fills as training logs."""
        self.view.show()


# --- 40_export: one variant beside FP32 ---------------------------------------------------------------------


def variant_comparison(table: pd.DataFrame, variant: str, reference: str = "fp32", key: str = "variant") -> pd.DataFrame:
    """Two columns, ``reference`` and ``variant``, with every figure of the export table (size, ops, parity...)."""
    if variant not in set(table[key]):
        raise NbUtilsError(f"no variant {variant!r} in the table", f"pick one of {sorted(table[key])}")
    both = table[table[key].isin([reference, variant])].set_index(key).T
    return both[[reference, variant]] if reference != variant else both[[variant]]


class VariantExplorer:
    """Pick an exported variant: its size, op counts, parity and Q/DQ count beside FP32, and where to see its graph."""

    def __init__(self, table: pd.DataFrame, *, variant: str = "", key: str = "variant") -> None:
        from nbutils.ui import widgets

        self.table, self.key = table, key
        names = list(table[key])
        self.variant = widgets.dropdown(names, variant or names[-1], "variant")
        self.view = widgets.View(self.render, "variant")
        widgets.on_change([self.variant], self.view.refresh)

    def render(self) -> str:
        """The side-by-side table, and a pointer to the variant's graph in notebook 50."""
        comp = variant_comparison(self.table, self.variant.value, key=self.key)
        link = (f"<p>See this variant's graph, its diff against FP32 and its SQNR overlay in "
                f"<a href='50_graph.ipynb'>50_graph</a> (<code>int8_files=[\"{html.escape(self.variant.value)}\"]</code>).</p>")
        return comp.to_html(float_format=lambda v: f"{v:.4g}") + link

    def show(self) -> None:
        """Display the control and the table."""
        from IPython.display import display

        display(self.variant)
        self.view.show()


# --- 70_accuracy: the playground ----------------------------------------------------------------------------


class Playground:
    """Type a sentence: each model's prediction, class probabilities and latency for that sentence."""

    def __init__(self, tokenizer: Any, predictors: Mapping[str, Callable[[dict[str, np.ndarray]], Any]], *,
                 labels: Sequence[str] = ("negative", "positive"), sentence: str = "", max_length: int = 64,
                 repeats: int = 5) -> None:
        import ipywidgets as w

        from nbutils.ui import widgets

        if not predictors:
            raise NbUtilsError("no models for the playground", "pass at least one predictor")
        self.tokenizer, self.predictors, self.labels = tokenizer, dict(predictors), list(labels)
        self.max_length, self.repeats = max_length, repeats
        self.sentence = w.Text(value=sentence, description="sentence", continuous_update=False,
                               layout=w.Layout(width="90%"))
        self.view = widgets.View(self.figure, "playground")
        self.table = widgets.View(lambda: self.results(), "predictions")
        widgets.on_change([self.sentence], lambda: (self.view.refresh(), self.table.refresh()))
        self._cache: tuple[str, Any] | None = None

    def results(self) -> pd.DataFrame:
        """One row per model: predicted label, probabilities, and the median latency of ``repeats`` calls (ms)."""
        import pandas as pd

        text = self.sentence.value.strip()
        if not text:
            raise NbUtilsError("the sentence is empty", "type a sentence, e.g. 'a gripping, beautifully shot film'")
        if self._cache and self._cache[0] == text:
            return self._cache[1]
        enc = self.tokenizer([text], truncation=True, max_length=self.max_length, padding="max_length",
                             return_tensors="np")
        feed = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}
        rows = []
        for name, predict in self.predictors.items():
            times = []
            for _ in range(max(1, self.repeats)):
                t0 = time.perf_counter()
                logits = np.asarray(predict(feed), dtype=np.float64)[0]
                times.append(1000 * (time.perf_counter() - t0))
            p = np.exp(logits - logits.max())
            p /= p.sum()
            labels = self.labels if len(self.labels) == len(p) else [str(i) for i in range(len(p))]
            rows.append({"model": name, "prediction": labels[int(np.argmax(p))],
                         **{f"p({lab})": float(v) for lab, v in zip(labels, p, strict=True)},
                         "latency_ms": float(np.median(times))})
        frame = pd.DataFrame(rows)
        self._cache = (text, frame)
        return frame

    def figure(self) -> go.Figure:
        """Probabilities per model (stacked bars), latency in the hover."""
        import plotly.graph_objects as go

        frame = self.results()
        fig = go.Figure()
        for col in [c for c in frame.columns if c.startswith("p(")]:
            fig.add_trace(go.Bar(x=frame["model"], y=frame[col], name=col,
                                 customdata=frame["latency_ms"], hovertemplate="%{y:.3f} · %{customdata:.2f} ms"))
        fig.update_layout(barmode="stack", title=f"“{self.sentence.value[:60]}”", yaxis_title="probability",
                          height=360)
        return fig

    def show(self) -> None:
        """Display the text box, the chart and the table."""
        from IPython.display import display

        display(self.sentence)
        self.view.show()
        self.table.show()
