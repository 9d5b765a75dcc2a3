"""Plotly figures used across the notebooks. Each function takes data and returns a figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go


def training_curves(histories: Mapping[str, Sequence[Mapping[str, float]]], title: str = "Training") -> go.Figure:
    """Loss per step (and validation score where logged) for one or more training runs."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, hist in histories.items():
        steps = [h["step"] for h in hist]
        fig.add_trace(go.Scatter(x=steps, y=[h["loss"] for h in hist], name=f"{name} loss", mode="lines"))
        evals = [(h["step"], h["eval"]) for h in hist if "eval" in h]
        if evals:
            fig.add_trace(go.Scatter(x=[e[0] for e in evals], y=[e[1] for e in evals], name=f"{name} val. score",
                                     mode="lines+markers"), secondary_y=True)
    fig.update_layout(title=title, xaxis_title="step", height=420)
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_yaxes(title_text="validation score (%)", secondary_y=True)
    return fig


def histogram_with_ranges(edges: Sequence[float], counts: Sequence[float], ranges: Mapping[str, float],
                          title: str) -> go.Figure:
    """A calibration histogram (log counts) with each method's chosen clipping range as a line."""
    import plotly.graph_objects as go

    centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=False)]
    fig = go.Figure(go.Bar(x=centers, y=[max(c, 0.5) for c in counts], name="|activation| count",
                           marker_color="#9bb"))
    top = max(counts) if len(counts) else 1
    for i, (name, amax) in enumerate(ranges.items()):
        fig.add_trace(go.Scatter(x=[amax, amax], y=[0.5, top], mode="lines", name=f"{name}: amax={amax:.3g}",
                                 line={"dash": "dash", "width": 2}, legendrank=i))
    fig.update_layout(title=title, xaxis_title="|value|", yaxis_title="count (log)", yaxis_type="log",
                      bargap=0, height=450)
    return fig


def bar(frame: pd.DataFrame, x: str, y: str, color: str | None = None, title: str = "", **kw: Any) -> go.Figure:
    """A grouped bar chart of a tidy frame."""
    import plotly.express as px

    return px.bar(frame, x=x, y=y, color=color, barmode="group", title=title, **kw)


def latency_vs_batch(frame: pd.DataFrame, title: str = "p50 latency vs batch") -> go.Figure:
    """Lines of p50 latency against batch size, one per engine/precision, a facet per sequence length."""
    import plotly.express as px

    from nbutils.core.vocab import label

    lat = frame[frame["metric"] == "latency_p50_ms"].copy()
    lat["engine · recipe"] = [label(e, r) for e, r in zip(lat["engine"], lat["recipe"], strict=True)]
    fig = px.line(lat.sort_values("batch"), x="batch", y="value", color="engine · recipe", facet_col="seq",
                  markers=True, log_y=True, title=title, labels={"value": "p50 latency (ms)"})
    fig.update_xaxes(type="log")
    return fig


def accuracy_vs_latency(points: pd.DataFrame, front: Sequence[bool], x: str = "p50_ms", y: str = "accuracy",
                        title: str = "Accuracy vs latency") -> go.Figure:
    """Scatter of variants with the Pareto front drawn through the non-dominated ones."""
    import plotly.graph_objects as go

    on = list(front)
    # every variant is a point with its name on hover; only the front is labelled, so the labels stay readable
    fig = go.Figure(go.Scatter(x=points[x], y=points[y], mode="markers", hovertext=points["label"],
                               hovertemplate="%{hovertext}<br>%{x:.3f} ms · %{y:.2f}<extra></extra>",
                               name="variants", marker={"size": 9, "color": "#4c78a8"}))
    pf = points[on].sort_values(x)
    fig.add_trace(go.Scatter(x=pf[x], y=pf[y], mode="lines+markers+text", text=pf["label"], textposition="top right",
                             name="Pareto front", line={"dash": "dot", "color": "#e45756"},
                             marker={"size": 12, "color": "#e45756"}, hovertext=pf["label"],
                             hovertemplate="%{hovertext}<br>%{x:.3f} ms · %{y:.2f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="p50 latency (ms)", yaxis_title=f"{y} (%)", height=500)
    return fig


def heatmap(frame: pd.DataFrame, x: str, y: str, z: str, title: str = "", x_order: Sequence[str] | None = None,
            colorscale: str = "RdBu", zmid: float | None = 0.0) -> go.Figure:
    """A heatmap of ``z`` over (``y`` rows × ``x`` columns) of a tidy frame, values written in the cells."""
    import plotly.graph_objects as go

    grid = frame.pivot_table(index=y, columns=x, values=z, aggfunc="mean")
    if x_order is not None:
        grid = grid[[c for c in x_order if c in grid.columns]]
    fig = go.Figure(go.Heatmap(z=grid.values, x=[str(c) for c in grid.columns], y=[str(r) for r in grid.index],
                               colorscale=colorscale, zmid=zmid, text=grid.round(2).values, texttemplate="%{text}",
                               colorbar={"title": z}))
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, height=120 + 40 * len(grid.index))
    return fig


def curve(frame: pd.DataFrame, x: str, y: str, text: str, title: str = "", highlight: Sequence[bool] | None = None,
          x_title: str = "", y_title: str = "") -> go.Figure:
    """A measured curve (points joined in ``x`` order, labelled by ``text``), highlighted points in red."""
    import plotly.graph_objects as go

    ordered = frame.sort_values(x)
    fig = go.Figure(go.Scatter(x=ordered[x], y=ordered[y], mode="lines+markers+text", text=ordered[text],
                               textposition="top center", name=y))
    if highlight is not None:
        hi = frame[list(highlight)]
        fig.add_trace(go.Scatter(x=hi[x], y=hi[y], mode="markers", marker={"size": 14, "color": "#e45756"},
                                 name="chosen"))
    fig.update_layout(title=title, xaxis_title=x_title or x, yaxis_title=y_title or y, height=450)
    return fig
