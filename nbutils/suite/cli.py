"""Command line: ``python -m nbutils run|results|params|bench|clean``.

``run`` executes the notebook suite (see :mod:`nbutils.suite.runner`); ``results`` prints the results
database, one row per measured figure; ``params`` lists every notebook's parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from nbutils.core.errors import NbUtilsError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nbutils", description="Transformer INT8 quantization suite")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute the notebook suite with papermill")
    r.add_argument("--profile", default=os.environ.get("NBUTILS_DEFAULT_PROFILE", "default"),
                   help="profile name (nbutils/suite/profiles/*.yaml) or a YAML path; "
                        "default $NBUTILS_DEFAULT_PROFILE or default")
    r.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 10,20")
    r.add_argument("-p", dest="params", action="append", default=[], metavar="NAME=VALUE",
                   help="override a parameter (repeatable); goes to every selected notebook declaring it")
    r.add_argument("--run-id", default=None, help="name of the run folder (default: timestamp-profile)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--resume", action="store_true",
                   help="run the selected notebooks in the existing folder --run-id (same profile), reusing its work")
    q = sub.add_parser("results", help="print measured figures from the results database")
    q.add_argument("--run", default="latest", help="'latest', a run id, or 'all'")
    q.add_argument("--format", choices=["table", "csv"], default="table")
    q.add_argument("--db", default=None, help="database path (default runs/results.sqlite)")
    sub.add_parser("params", help="list every notebook's parameters")
    b = sub.add_parser("bench", help="time engines over a batch x sequence grid (records to the results database)")
    b.add_argument("--model", default="random:bert-base", help="model spec (random:bert-base for latency-only work)")
    b.add_argument("--engines", default="", help="comma-separated engine names (default: this machine's defaults; "
                   "gpu-all: every GPU engine)")
    b.add_argument("--batch", default="1,8", help="comma-separated batch sizes")
    b.add_argument("--seq", default="128", help="comma-separated sequence lengths")
    b.add_argument("--warmup", type=int, default=10)
    b.add_argument("--iterations", type=int, default=100)
    b.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: default)")
    b.add_argument("--run-id", default=None, help="run folder name (default: timestamp-bench); must not exist yet")
    b.add_argument("--db", default=None, help="results database (default runs/results.sqlite)")
    b.add_argument("--nncf", action="append", default=[], metavar="NAME=VALUE",
                   help="NNCF option for the nncf-ptq IR of ov-cpu:int8 (repeatable): preset=mixed|performance, "
                        "smooth_quant_alpha=0.95 (negative: off), fast_bias_correction=true|false, "
                        "ignored_patterns=REGEX[;REGEX], subset_size=N")
    g = sub.add_parser("graph", help="lay out an ONNX file as notebook 50 does and time it (collapsed, one layer, whole)")
    g.add_argument("file", help="an ONNX file")
    g.add_argument("--expand", type=int, default=None,
                   help="the encoder layer of the one-layer view (default: the first the graph has, if any)")
    g.add_argument("--repeat", type=int, default=3, help="timings per view (the median is printed)")
    g.add_argument("--html", default=None, help="also write the three views to this HTML file")
    c = sub.add_parser("score", help="accuracy of an ONNX file on a validation split through ONNX Runtime providers")
    c.add_argument("file", help="an ONNX file (e.g. <run>/onnx/qat/model.onnx)")
    c.add_argument("--data", required=True, help="data spec, as in notebook 10 (e.g. ../shared/data/sst2)")
    c.add_argument("--tokenizer", required=True, help="checkpoint folder (or model spec) with the file's tokenizer")
    c.add_argument("--providers", default="cpu", help="comma-separated: cpu, openvino, cuda, tensorrt; the first is "
                   "the reference the others' agreement is measured against")
    c.add_argument("--max-length", type=int, default=64, help="tokens per sentence (the run's max_length)")
    c.add_argument("--eval-samples", type=int, default=0, help="validation examples (0: all)")
    w = sub.add_parser("sweep", help="run a sweep file's cells (benchmarks, suite runs) on Dask distributed")
    w.add_argument("file", help="sweep YAML file (see README: Sweeps)")
    w.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:8786)")
    w.add_argument("--workers", type=int, default=None, help="local cluster size (default: one worker per core)")
    w.add_argument("--resume", action="store_true", help="skip cells whose rows are already in the database")
    w.add_argument("--dry-run", action="store_true", help="print the cells and where each would run; run nothing")
    w.add_argument("--db", default=None, help="results database (default runs/results.sqlite)")
    d = sub.add_parser("dashboard", help="the dashboard app (notebook 90 in Voila): print its URL, or serve it")
    d.add_argument("--port", type=int, default=8866)
    d.add_argument("--serve", action="store_true", help="serve it (localhost only) until Ctrl-C; `make dashboard` does")
    c = sub.add_parser("clean", help="remove old run folders (checkpoints, ONNX files); database rows stay")
    c.add_argument("--keep", type=int, default=None, help="keep the newest N run folders, remove the rest")
    c.add_argument("--run", dest="runs", action="append", default=[], metavar="ID", help="remove this run (repeatable)")
    c.add_argument("--rows", action="store_true", help="also delete those runs' rows from the results database")
    c.add_argument("--dry-run", action="store_true", help="only show what would be removed")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad input, 1 for a failed notebook)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            from nbutils.suite.runner import SuiteInterrupted, run_suite

            try:
                run_dir, outcomes = run_suite(args.profile, args.only, args.params, args.run_id,
                                              progress=not args.no_progress, resume=args.resume)
            except SuiteInterrupted as exc:
                done = [o.name for o in exc.outcomes if o.ok]
                print(f"Interrupted: run folder {exc.run_dir}; finished: {', '.join(done) or 'nothing'}\n"
                      f"  summary: {exc.run_dir / 'summary.html'}", file=sys.stderr)
                return 130
            ok = all(o.ok for o in outcomes)
            print(f"{'Finished' if ok else 'Stopped'}: run folder {run_dir}\n  summary: {run_dir / 'summary.html'}")
            return 0 if ok else 1
        if args.command == "results":
            import pandas as pd

            from nbutils.store.db import read_results

            frame = read_results(None if args.run == "all" else args.run, args.db)
            if args.format == "csv":
                frame.to_csv(sys.stdout, index=False)
            else:
                with pd.option_context("display.max_rows", None, "display.width", 200):
                    print(frame.to_string(index=False))
            return 0
        if args.command == "bench":
            from nbutils.suite.bench_command import bench_cli

            return bench_cli(args)
        if args.command == "sweep":
            from nbutils.suite.sweep import run_sweep

            summary = run_sweep(args.file, scheduler=args.scheduler, workers=args.workers, resume=args.resume,
                                dry_run=args.dry_run, db=args.db)
            return 0 if args.dry_run or summary["ok"] == summary["todo"] else 1
        if args.command == "score":
            from nbutils.engines.driver import score_file

            rows = score_file(args.file, data=args.data, tokenizer=args.tokenizer,
                              providers=[p.strip() for p in args.providers.split(",") if p.strip()],
                              max_length=args.max_length, eval_samples=args.eval_samples)
            for row in rows:
                print(json.dumps(row))
            return 0
        if args.command == "graph":
            from nbutils.graph.benchmark import time_views

            print(time_views(args.file, expand=args.expand, repeat=args.repeat, html=args.html))
            return 0
        if args.command == "dashboard":
            from nbutils.core.paths import default_db_path
            from nbutils.ui import serve

            if args.serve:
                serve.check_port(args.port)  # before printing a URL: Voila serves on this port or not at all
            print(f"dashboard: http://127.0.0.1:{args.port}/ (notebook 90 served by Voila over {default_db_path()})")
            cmd = serve.voila_command("notebooks/90_dashboard.ipynb", args.port)
            if not args.serve:
                print(f"  serve it with: make dashboard PORT={args.port}   (or: python -m nbutils dashboard --serve)")
                return 0
            root = Path(__file__).resolve().parents[2]
            if not (root / "notebooks" / "90_dashboard.ipynb").exists():
                raise NbUtilsError(f"no notebooks/90_dashboard.ipynb under {root}",
                                   "serve the dashboard from a checkout of the suite (make dashboard)")
            os.chdir(root)  # voila.json (progressive rendering) is read from the folder Voila starts in
            os.execvpe(cmd[0], cmd, serve.voila_env())
        if args.command == "clean":
            from nbutils.store import clean

            plan = clean.plan_clean(keep=args.keep, runs=args.runs, rows=args.rows)
            if not args.dry_run:
                clean.execute(plan)
            print(clean.describe(plan, dry_run=args.dry_run))
            return 0
        if args.command == "params":
            from nbutils.suite.runner import describe_parameters

            print(describe_parameters())
            return 0
    except NbUtilsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
