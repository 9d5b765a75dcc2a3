"""The benchmark driver shared by notebook 60 and ``python -m nbutils bench`` (the CLI used on the GPU machine)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nbutils import engines
from nbutils.bench import synthetic_batch
from nbutils.errors import NbUtilsError
from nbutils.models import display_name, is_untrained
from nbutils.runs import NotebookRun


def model_slug(spec: str) -> str:
    """A folder-safe name for a model spec."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", display_name(spec)).strip("_")


def benchmark(run: NotebookRun, model: str, names: Sequence[str], batch_sizes: Sequence[int],
              seq_lengths: Sequence[int], *, warmup: int, iterations: int, threads: int = 0,
              assets: engines.Assets | None = None, progress: bool = True, task: str = "classification",
              model_name: str | None = None, ptq_recipe: str = "ptq", nncf: Any = None) -> engines.GridResult:
    """Validate the grid, time every engine, record all figures; returns the grid's rows, skips and failures.

    ``model_name`` overrides the name stored with the figures (a trained checkpoint is stored under its model's
    name, so notebook 70 can join latency with accuracy); ``ptq_recipe`` names the ModelOpt PTQ recipe behind
    the ``int8-qdq`` engines. Failures are *not* raised here (what was measured is recorded first): call
    ``result.raise_failures()``.
    """
    engines.validate_grid(names, batch_sizes, seq_lengths, warmup=warmup, iterations=iterations)
    if assets is None:
        calib = [synthetic_batch(8, min(128, max(seq_lengths)), seed=i) for i in range(4)]
        assets = engines.Assets(model, run.path("bench", model_slug(model)), task=task, calib=calib, nncf=nncf)
    max_pos = int(assets.torch_model().config.max_position_embeddings)
    engines.validate_grid(names, batch_sizes, seq_lengths, max_pos, warmup=warmup, iterations=iterations)
    profile = ((1, min(seq_lengths)), (max(batch_sizes), max(seq_lengths)), (max(batch_sizes), max(seq_lengths)))
    built = [engines.make_engine(n, assets, threads=threads, cache_dir=run.path("trt-cache"), profile=profile)
             for n in names]
    result = engines.run_grid(built, batch_sizes, seq_lengths, warmup=warmup, iterations=iterations,
                              progress=progress)
    result.rows = [{**r, "recipe": ptq_recipe if r["recipe"] == "ptq" else r["recipe"],
                    "extra": {**r["extra"], "threads": threads or "default"}} for r in result.rows]
    if result.rows:
        run.record(engines.measurements(result.rows, untrained=is_untrained(model)),
                   model=model_name or display_name(model), task=task, data="synthetic token ids (latency only)")
    return result


def _ints(flag: str, text: str) -> list[int]:
    try:
        return [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise NbUtilsError(f"{flag} {text!r} is not a comma-separated list of integers",
                           f"write e.g. {flag} 1,8") from None


def ladder_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The ablation ladders (:data:`nbutils.engines.LADDERS`) with two or more steps among ``rows``, as text lines."""
    import pandas as pd

    from nbutils import report

    if not rows:
        return []
    frame = pd.DataFrame({"engine": [r["engine_name"] for r in rows], "batch": [r["batch"] for r in rows],
                          "seq": [r["seq"] for r in rows], "value": [r["p50_ms"] for r in rows],
                          "metric": "latency_p50_ms"})
    out = []
    for title, lad in report.ladders(frame, engines.LADDERS).groupby("ladder", sort=False):
        out.append(f"ladder {title} (p50 ms; x = speed-up over the step above, one change per step):")
        for r in lad.itertuples():
            ratio = "" if pd.isna(r.x_vs_previous) else f"x{r.x_vs_previous:.2f}"
            out.append(f"  b{r.batch:<4} s{r.seq:<4} {r.step}. {r.engine:34} {r.p50_ms:9.3f} {ratio:>7}  {r.change}")
    return out


def bench_cli(args: argparse.Namespace) -> int:
    """``python -m nbutils bench``: validate, time, record, print.

    Exit codes: 0 when every requested engine was timed or skipped for a reason of this machine (no GPU, no
    TensorRT); 1 when a requested engine failed or nothing was timed; 2 for bad input (nothing created).
    """
    from nbutils import env
    from nbutils.ov import NncfOptions
    from nbutils.paths import atomic_path, claim_run_dir, new_run_id
    from nbutils.results import check_writable
    from nbutils.runs import NotebookRun

    names = [n.strip() for n in args.engines.split(",") if n.strip()] or engines.default_engines()
    if names == ["gpu-all"]:
        names = engines.default_engines(full=True)
    batches, seqs = _ints("--batch", args.batch), _ints("--seq", args.seq)
    engines.validate_grid(names, batches, seqs, warmup=args.warmup, iterations=args.iterations)
    if args.threads < 0:
        raise NbUtilsError(f"--threads {args.threads} is negative", "use 0 (ONNX Runtime's default) or a positive count")
    nncf = NncfOptions.parse(getattr(args, "nncf", []) or []) if getattr(args, "nncf", None) else None
    db = check_writable(args.db)
    run_dir = claim_run_dir(args.run_id or new_run_id("bench"), exact=bool(args.run_id))
    run = NotebookRun(run_dir, "cli-bench", db)
    result = benchmark(run, args.model, names, batches, seqs, warmup=args.warmup,
                       iterations=args.iterations, threads=args.threads, progress=False, nncf=nncf)
    table = engines.format_rows(result.rows)
    print(f"model {display_name(args.model)}; CPU {env.cpu_info()['cpu']}; GPU {env.gpu_name() or 'none'}; run {run.run_id}")
    print(table)
    lines = [table, *ladder_lines(result.rows)]
    for s in result.skipped:
        lines.append(f"skipped {s['engine']}: {s['reason']}")
    for f in result.failed:
        lines.append(f"FAILED {f['engine']}: {f['reason']}")
    print("\n".join(lines[1:]))
    with atomic_path(run.run_dir / "bench.txt") as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        result.raise_failures()
    except NbUtilsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def trained_assets(base: Any, run_dir: Path, *, calib_samples: int, folder: Path) -> tuple[engines.Assets, str]:
    """Assets for the run's trained baseline: its checkpoint, its PTQ model, and notebook 40's ONNX files."""
    from nbutils import quant
    from nbutils.tasks import encode
    from nbutils.vocab import variant_dir

    ptq_model, ptq_recipe = quant.ensure_ptq(base, run_dir, calib_samples=calib_samples)
    calib = encode(base.data, "train", base.tokenizer, max_length=base.config.max_length, batch_size=32,
                   limit=calib_samples, pad_to_max=True).batches
    recipes = ["fp32", "fp32-fused", "fp16", "ort-dynamic", "ort-dynamic-fused", "ort-static-minmax"]
    dirs = {**{r: variant_dir(run_dir, r) for r in recipes}, "ptq": variant_dir(run_dir, ptq_recipe),
            "nncf-ptq": variant_dir(run_dir, "nncf-ptq")}
    assets = engines.Assets(str(base.path), folder, task=base.data.task, num_labels=max(base.data.num_labels, 2),
                            calib=calib, ptq_model=ptq_model, onnx_dirs=dirs)
    return assets, ptq_recipe


def write_tables(frame: Any, dest: Path, stem: str) -> list[Path]:
    """Write a table as CSV and Markdown into the run folder (atomically); returns the paths."""
    from nbutils.paths import atomic_path

    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for ext, write in (("csv", lambda f, p: f.to_csv(p)), ("md", lambda f, p: p.write_text(f.to_markdown() + "\n"))):
        path = dest / f"{stem}.{ext}"
        with atomic_path(path) as tmp:
            write(frame, tmp)
        out.append(path)
    return out
