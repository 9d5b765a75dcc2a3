"""``python -m nbutils bench``: parse the flags, run the engines' benchmark driver, print the table and the ladders."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from nbutils import engines
from nbutils.core.errors import NbUtilsError
from nbutils.engines.driver import benchmark
from nbutils.report import tables
from nbutils.training.models import display_name


def _ints(flag: str, text: str) -> list[int]:
    try:
        return [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise NbUtilsError(f"{flag} {text!r} is not a comma-separated list of integers",
                           f"write e.g. {flag} 1,8") from None


def ladder_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The ablation ladders (:data:`nbutils.engines.LADDERS`) with two or more steps among ``rows``, as text lines."""
    import pandas as pd

    if not rows:
        return []
    frame = pd.DataFrame({"engine": [r["engine_name"] for r in rows], "batch": [r["batch"] for r in rows],
                          "seq": [r["seq"] for r in rows], "value": [r["p50_ms"] for r in rows],
                          "metric": "latency_p50_ms"})
    out = []
    for title, lad in tables.ladders(frame, engines.LADDERS).groupby("ladder", sort=False):
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
    from nbutils.core import env
    from nbutils.core.paths import atomic_path, claim_run_dir, new_run_id
    from nbutils.formats.to_openvino import NncfOptions
    from nbutils.store.db import check_writable
    from nbutils.store.notebook_run import NotebookRun

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
