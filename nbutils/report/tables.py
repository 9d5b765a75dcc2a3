"""Tables built from the results database (accuracy, TensorRT-demo latency layout, headlines).

Everything here reads the database; nothing measures. Notebooks 60 and 70, the summary page and
the dashboard share these functions so a figure is shown the same way everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nbutils.core.vocab import ACCURACY_METRICS, LATENCY_METRICS, label, main_metric, runtime_of
from nbutils.store.db import read_results

if TYPE_CHECKING:
    import pandas as pd



def as_int(v: object) -> object:
    """An integer for a whole number (also one stored as text or float), the value itself otherwise."""
    try:
        return int(float(v))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return v


def accuracy_table(frame: pd.DataFrame, baseline_recipe: str = "fp32") -> pd.DataFrame:
    """One row per (model, recipe, engine, precision): task metrics, agreement and delta to FP32.

    ``engine`` is the full engine name (:mod:`nbutils.core.vocab`). The delta is taken against the
    ``baseline_recipe`` row of the same model on PyTorch eager (falling back to any engine), in points.
    """
    import pandas as pd

    sub = frame[frame["metric"].isin(ACCURACY_METRICS)]
    if sub.empty:
        return pd.DataFrame(columns=["model", "recipe", "engine", "precision", *ACCURACY_METRICS])
    table = sub.pivot_table(index=["model", "recipe", "engine", "precision"], columns="metric", values="value",
                            aggfunc="last").reset_index()
    table.columns.name = None  # else to_html writes the pivot's "metric" label and an empty header cell per row
    metric_cols = [m for m in ACCURACY_METRICS if m in table.columns]
    main = main_metric(metric_cols) if {"accuracy", "f1"} & set(metric_cols) else None
    if main is not None:
        deltas = []
        for _, row in table.iterrows():
            ref = table[(table["model"] == row["model"]) & (table["recipe"] == baseline_recipe)]
            eager = ref[ref["engine"].map(runtime_of) == "torch-eager"]
            ref = eager if not eager.empty else ref
            deltas.append(row[main] - ref[main].iloc[0] if not ref.empty else float("nan"))
        table[f"delta_{main}_pts"] = deltas
    cols = ["model", "recipe", "engine", "precision"] + [c for c in table.columns if c not in
                                                         ("model", "recipe", "engine", "precision")]
    return table[cols].dropna(axis=1, how="all")


def latency_table(frame: pd.DataFrame) -> pd.DataFrame:
    """TensorRT-demo layout: per model, seq and batch, each engine variant's mean, p95, p99 (ms)."""
    sub = one_per_identity(frame[frame["metric"].isin(LATENCY_METRICS)])  # the later of two measurements
    if sub.empty:
        import pandas as pd

        return pd.DataFrame()
    table = sub.pivot_table(index=["model", "seq", "batch", "engine", "precision", "recipe"], columns="metric",
                            values="value", aggfunc="last").reset_index()
    table.columns.name = None
    order = ["model", "seq", "batch", "engine", "precision", "recipe"] + [m for m in LATENCY_METRICS
                                                                          if m in table.columns]
    table = table[order].sort_values(["model", "seq", "batch", "latency_p50_ms"]).reset_index(drop=True)
    table[["seq", "batch"]] = table[["seq", "batch"]].apply(lambda c: c.map(as_int))
    return table


def headline_tables(db: Path, run_id: str) -> dict[str, str]:
    """HTML tables of a run's headline figures (for ``summary.html``)."""
    frame = read_results(run_id, db)
    out: dict[str, str] = {}
    acc = accuracy_table(frame)
    if not acc.empty:
        out["Accuracy (validation split)"] = acc.to_html(index=False, float_format=lambda v: f"{v:.2f}")
    lat = latency_table(frame)
    if not lat.empty:
        out["Latency (ms) and throughput (seq/s)"] = lat.to_html(index=False, float_format=lambda v: f"{v:.3f}")
    other = frame[~frame["metric"].isin(ACCURACY_METRICS + LATENCY_METRICS)].copy()
    for col in ("batch", "seq"):  # integers shown as integers (batch 1, not 1.000); missing ones blank
        other[col] = other[col].map(lambda v: "" if v is None or v != v else str(int(v)))
    other = other[[c for c in other.columns if not (other[c].astype(str) == "").all()]]  # no empty columns
    if not other.empty:
        out["Other figures"] = other.dropna(axis=1, how="all").to_html(index=False, float_format=lambda v: f"{v:.3f}")
    return out


def demo_table(frame: pd.DataFrame) -> pd.DataFrame:
    """TensorRT BERT demo layout: one row per (model, seq, batch), columns ``<engine> · <recipe>`` × statistic.

    Statistics: avg/p95/p99 ms, and the peak memory (MB over the engine's baseline) where it was measured.
    """
    import pandas as pd

    stats = {"latency_mean_ms": "avg", "latency_p95_ms": "p95", "latency_p99_ms": "p99", "peak_memory_mb": "peak MB"}
    sub = one_per_identity(frame[frame["metric"].isin(list(stats))]).copy()  # the later of two measurements
    if sub.empty:
        return pd.DataFrame()
    sub["column"] = [label(e, r) for e, r in zip(sub["engine"], sub["recipe"], strict=True)]
    sub["stat"] = sub["metric"].map(stats)
    sub[["seq", "batch"]] = sub[["seq", "batch"]].apply(lambda c: c.map(as_int))
    table = sub.pivot_table(index=["model", "seq", "batch"], columns=["column", "stat"], values="value", aggfunc="last")
    return table.sort_index(axis=1)


def ladder(frame: pd.DataFrame, steps: list[tuple[str, str]]) -> pd.DataFrame:
    """What each step of an ablation ladder bought: p50 per step and shape, and the speed-up over the step above.

    ``frame`` holds one run's figures (ratios only mean something within one run on one machine); ``steps`` is a
    ladder of (engine, what changed), e.g. :data:`nbutils.engines.LADDERS`. A step that was not timed is left out;
    the next step's ``x_vs_previous`` is then empty (two changes at once are not one change's worth).
    Columns: seq, batch, step (1-based), engine, change, p50_ms, x_vs_previous, x_vs_first.
    """
    import pandas as pd

    lat = frame[frame["metric"] == "latency_p50_ms"]
    rows = []
    for (seq, batch), g in lat.groupby(["seq", "batch"]):
        if "id" in g:
            g = g.sort_values("id")
        p50 = g.groupby("engine")["value"].last()  # the newest figure if an engine ran twice (read_results: id order)
        first = p50.get(steps[0][0]) if steps else None
        for i, (engine, change) in enumerate(steps):
            if engine not in p50:
                continue
            prev = p50.get(steps[i - 1][0]) if i else None
            rows.append({"seq": as_int(seq), "batch": as_int(batch), "step": i + 1, "engine": engine, "change": change,
                         "p50_ms": p50[engine],
                         "x_vs_previous": prev / p50[engine] if prev is not None else float("nan"),
                         "x_vs_first": first / p50[engine] if first is not None else float("nan")})
    return pd.DataFrame(rows, columns=["seq", "batch", "step", "engine", "change", "p50_ms", "x_vs_previous",
                                       "x_vs_first"])


def ladders(frame: pd.DataFrame, named: dict[str, list[tuple[str, str]]]) -> pd.DataFrame:
    """:func:`ladder` for each of ``named`` (title -> steps), in one table with a ``ladder`` column (last).

    Only ladders with two or more timed steps are kept: one step alone buys nothing to compare.
    """
    import pandas as pd

    tables = [ladder(frame, steps).assign(ladder=title) for title, steps in named.items()]
    tables = [t for t in tables if t["step"].nunique() > 1]
    if not tables:
        return ladder(frame, []).assign(ladder=pd.Series(dtype=str))
    return pd.concat(tables, ignore_index=True)


#: What makes two figures the same figure: measured twice in one run, they are one bar, one point, one row.
IDENTITY = ["run_id", "model", "engine", "recipe", "precision", "seq", "batch", "metric"]


def one_per_identity(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per :data:`IDENTITY`: the later measurement (rows are in database order), with ``times_measured``.

    Two notebooks of one run may time the same engine, recipe, model and shape (or one notebook twice after a
    resume); charts must not stack or sum them, so every chart and table built from latency rows reads them
    through here. The rule is "the later one", and ``times_measured`` says how many there were.
    """
    if frame.empty:
        return frame.assign(times_measured=[])
    keys = [k for k in IDENTITY if k in frame.columns]
    # NaN seq/batch (accuracy rows) must group too: fill with a marker for grouping only
    grouping = frame[keys].astype(object).where(frame[keys].notna(), "")
    counts = grouping.groupby(keys, sort=False)[keys[0]].transform("size")
    last = ~grouping.duplicated(keep="last")
    return frame[last].assign(times_measured=counts[last].astype(int))


def timed_in_run(frame: pd.DataFrame, model: str, engine: str, recipe: str, batches: list[int],
                 seqs: list[int]) -> pd.DataFrame | None:
    """The run's p50 rows of one variant at every (batch, seq) asked for, or ``None`` if any shape is missing.

    A notebook that needs a figure another notebook of the same run already measured reads it from here instead
    of timing it again (one figure per identity; 80 reuses 60's FP32 and full-INT8 timings).
    """
    lat = one_per_identity(frame[(frame["metric"] == "latency_p50_ms") & (frame["model"] == model)
                                 & (frame["engine"] == engine) & (frame["recipe"] == recipe)])
    shapes = {(as_int(b), as_int(s_)) for b, s_ in zip(lat["batch"], lat["seq"], strict=True)}
    if not {(int(b), int(s_)) for b in batches for s_ in seqs} <= shapes:
        return None
    return lat


def speedups(frame: pd.DataFrame, baseline_engine: str = "torch-eager:fp32") -> pd.DataFrame:
    """p50 speed-up of every engine variant over PyTorch eager FP32 and over the fastest floating-point engine.

    One row per variant and shape of a run (:func:`one_per_identity`: the later of two measurements, and how many
    there were in ``times_measured``), so a chart of it never stacks two measurements into one bar.
    """
    lat = one_per_identity(frame[frame["metric"] == "latency_p50_ms"]).copy()
    if lat.empty:
        return lat
    lat["label"] = [label(e, r) for e, r in zip(lat["engine"], lat["recipe"], strict=True)]
    if "run_id" not in lat:
        lat["run_id"] = ""
    out = []
    mem = one_per_identity(frame[frame["metric"] == "peak_memory_mb"])
    memory = {(run, m, as_int(s_), as_int(b), e, r): v for run, m, s_, b, e, r, v in
              zip(mem.get("run_id", [""] * len(mem)), mem["model"], mem["seq"], mem["batch"], mem["engine"],
                  mem["recipe"], mem["value"], strict=True)}
    # ratios only within one run (one machine, one moment): each run's rows against that run's references
    for (run, model, seq, batch), g in lat.groupby(["run_id", "model", "seq", "batch"]):
        base = g[g["engine"] == baseline_engine]["value"]
        floats = g[g["precision"].isin(["fp32", "tf32", "fp16", "bf16"])]["value"]
        for _, r in g.iterrows():
            out.append({"model": model, "seq": as_int(seq), "batch": as_int(batch), "label": r["label"],
                        "engine": r["engine"], "recipe": r["recipe"], "run_id": run,
                        "p50_ms": r["value"], "times_measured": r["times_measured"],
                        "speedup_vs_eager_fp32": (base.min() / r["value"]) if not base.empty else float("nan"),
                        "speedup_vs_best_float": (floats.min() / r["value"]) if not floats.empty else float("nan"),
                        "peak_memory_mb": memory.get((run, model, as_int(seq), as_int(batch), r["engine"],
                                                      r["recipe"]), float("nan"))})
    import pandas as pd

    return pd.DataFrame(out)


def _is_int8(engine: str) -> bool:
    parts = engine.split(":")
    return len(parts) > 1 and parts[1].startswith("int8")


def _times(a: float, b: float) -> str:
    """``a`` against ``b`` (p50 ms) in words: "1.31× faster than", "1.29× slower than" or "as fast (within 3%) as"."""
    ratio = b / a
    if abs(ratio - 1) < 0.03:
        return "as fast (within 3%) as"
    return f"{ratio:.2f}× faster than" if ratio > 1 else f"{1 / ratio:.2f}× slower than"


def speed_findings(p50: pd.DataFrame, isa: str) -> list[str]:
    """Sentences on which route is faster, computed from one run's p50 rows (never written in advance).

    ``p50`` has columns engine, recipe, batch, seq, p50_ms (e.g. :func:`speedups` or a grid's rows); ``isa`` is the
    CPU's INT8 instructions (:func:`nbutils.core.env.int8_isa`), named in the first sentence because it decides the answer.
    """
    out = [f"This CPU's INT8 dot-product instructions: {isa} (amx / vnni / none: AVX2 without VNNI)."]
    for (seq, batch), g in p50.groupby(["seq", "batch"]):
        g = g.sort_values("p50_ms")
        where = f"seq {as_int(seq)}, batch {as_int(batch)}"
        int8, floats = g[g["engine"].map(_is_int8)], g[~g["engine"].map(_is_int8)]
        if not int8.empty and not floats.empty:
            a, b = int8.iloc[0], floats.iloc[0]
            out.append(f"{where}: the fastest INT8 variant is {label(a['engine'], a['recipe'])} ({a['p50_ms']:.2f} ms), "
                       f"{_times(a['p50_ms'], b['p50_ms'])} the fastest float one, "
                       f"{label(b['engine'], b['recipe'])} ({b['p50_ms']:.2f} ms).")
        ov8, ov32 = g[g["engine"] == "ov-cpu:int8"], g[g["engine"] == "ov-cpu:fp32"]
        if not ov8.empty and not ov32.empty:
            out.append(f"{where}: OpenVINO INT8 is {_times(ov8['p50_ms'].iloc[0], ov32['p50_ms'].iloc[0])} "
                       f"OpenVINO FP32 ({ov8['p50_ms'].iloc[0]:.2f} vs {ov32['p50_ms'].iloc[0]:.2f} ms).")
        ort8 = int8[int8["engine"].str.startswith("ort-cpu:")]
        if not ov8.empty and not ort8.empty:
            o = ort8.iloc[0]
            out.append(f"{where}: OpenVINO INT8 is {_times(ov8['p50_ms'].iloc[0], o['p50_ms'])} ONNX Runtime's "
                       f"fastest INT8 here, {label(o['engine'], o['recipe'])}.")
    return out


def pareto_findings(points: pd.DataFrame, metric: str) -> list[str]:
    """Which variants this run's accuracy-vs-latency front keeps, and which INT8 variants it does not (computed)."""
    if points.empty:
        return ["No variant has both accuracy and latency in this run."]
    front = points[points["pareto"]].sort_values("p50_ms")
    out = [f"On the Pareto front ({metric} vs p50): " + "; ".join(
        f"{r['label']} ({r[metric]:.2f}, {r['p50_ms']:.2f} ms)" for _, r in front.iterrows()) + "."]
    beaten = points[~points["pareto"] & points["engine"].map(_is_int8)]
    if not beaten.empty:
        out.append(f"{len(beaten)} INT8 variant(s) are beaten on both axes by a front variant, e.g. "
                   f"{', '.join(beaten.sort_values('p50_ms')['label'].head(3))}.")
    return out


def accuracy_latency_points(acc: pd.DataFrame, frame: pd.DataFrame, batch: int) -> pd.DataFrame:
    """One point per engine variant timed at ``batch``: its p50 latency and the accuracy of the recipe it runs.

    The accuracy is the same engine's where it was evaluated, else the same runtime's, else any engine's for
    that recipe (CUDA graphs or compilation do not change what a variant computes). ``seq`` is kept.
    """
    import pandas as pd

    lat = frame[(frame["metric"] == "latency_p50_ms") & (frame["batch"] == batch)]
    if acc.empty or lat.empty:
        return pd.DataFrame()
    main = main_metric([c for c in acc.columns if c in ACCURACY_METRICS])
    rows = []
    lat = lat.pivot_table(index=["model", "engine", "recipe", "precision", "seq"], values="value",
                          aggfunc="last").reset_index()
    for _, r in lat.iterrows():
        same = acc[(acc["model"] == r["model"]) & (acc["recipe"] == r["recipe"])]
        for pick in (same[same["engine"] == r["engine"]], same[same["engine"].map(runtime_of) == runtime_of(r["engine"])],
                     same):
            if not pick.empty:
                src = pick.iloc[0]
                rows.append({"model": r["model"], "engine": r["engine"], "recipe": r["recipe"],
                             "precision": r["precision"], "seq": as_int(r["seq"]), "batch": as_int(batch),
                             "p50_ms": r["value"], main: src[main], "accuracy_from": src["engine"],
                             "label": label(r["engine"], r["recipe"])})
                break
    points = pd.DataFrame(rows)
    if not points.empty:
        if points["seq"].nunique() > 1:  # the same engine timed at two lengths: two points, told apart
            points["label"] = points["label"] + " · s" + points["seq"].astype(str)
        points["pareto"] = pareto_front(points, "p50_ms", main)
    return points


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.Series:
    """Boolean mask of points on the Pareto front (lower ``x`` and higher ``y`` are better)."""
    order = points.sort_values([x, y], ascending=[True, False])
    best, keep = float("-inf"), []
    for idx, row in order.iterrows():
        if row[y] > best:
            keep.append(idx)
            best = row[y]
    return points.index.isin(keep)


def int8_table(results: list[tuple[str, str, object]], fp32: object) -> pd.DataFrame:
    """The seeds' headline table: FP32 and each INT8 route (``(label, engine, EvalResult)``).

    Columns: the task metrics (EM and F1 for QA, accuracy for classification) and the main metric's delta to FP32
    with its paired bootstrap 95% interval over the same validation examples (:func:`nbutils.training.metrics.paired_bootstrap`).
    """
    import pandas as pd

    from nbutils.training.metrics import paired_bootstrap

    main = main_metric(fp32.metrics)  # type: ignore[attr-defined]
    shown = [m for m in ("exact_match", "f1", "accuracy") if m in fp32.metrics]  # type: ignore[attr-defined]
    rows = []
    for name, engine, res in [("fp32", "torch-eager:fp32", fp32), *results]:
        row: dict[str, object] = {"model": name, "engine": engine,
                                  **{m: round(float(res.metrics[m]), 2) for m in shown}}  # type: ignore[attr-defined]
        if res is not fp32:
            ci = paired_bootstrap(fp32.scores, res.scores)  # type: ignore[attr-defined]
            row[f"Δ {main}"] = round(float(ci["delta"]), 2)
            row["95% CI"] = f"[{ci['low']:+.2f}, {ci['high']:+.2f}]"
            row["differs from FP32"] = "yes" if ci["distinguishable"] else "cannot tell"
        rows.append(row)
    return pd.DataFrame(rows).fillna("")  # FP32's own delta cells are empty, not NaN
