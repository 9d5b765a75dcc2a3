"""``python -m nbutils sweep SWEEP.yaml``: many suite runs or benchmarks fanned out over Dask distributed.

A sweep file names cells; a cell is a benchmark (``bench:`` with ``python -m nbutils bench``'s arguments) or a
suite run (``run:`` with a profile, ``only`` and ``params``). Dask schedules them: a ``LocalCluster`` sized to this
machine by default (one single-threaded worker per core), or an existing cluster (``--scheduler tcp://...``).
Cells that need a GPU or a machine kind carry Dask worker resources and land only on workers started with them.

Each worker runs its cell into its own run folder with a cell-local database and returns the rows; the client is
the only writer of ``runs/results.sqlite``: one transaction per cell, replacing that cell's rows, so a retried or
resumed cell never duplicates figures. The worker that ran a cell is in every row's provenance (``extra``).
Scheduling, retries (``retries=``) and rescheduling a cell whose worker died
(``distributed.scheduler.allowed-failures``) are Dask's; nothing here re-implements a scheduler.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbutils.core.errors import NbUtilsError

SWEEP_KEYS = {"name", "cells", "grid", "retries", "resources"}
CELL_KEYS = {"bench", "run", "resources", "name"}
BENCH_KEYS = {"model", "engines", "batch", "seq", "warmup", "iterations", "threads"}
RUN_KEYS = {"profile", "only", "params"}


@dataclass(frozen=True)
class Cell:
    """One unit of work: a benchmark or a suite run, with the worker resources it needs."""

    kind: str  # "bench" or "run"
    args: dict[str, Any]
    resources: dict[str, float] = field(default_factory=dict)
    name: str = ""

    @property
    def id(self) -> str:
        """A stable id from what the cell does (same cell, same id: how resume and idempotent writes work)."""
        blob = json.dumps({"kind": self.kind, "args": self.args}, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]

    def run_id(self, sweep: str) -> str:
        """The run id this cell's rows carry in the results database."""
        return f"sweep-{sweep}-{self.name or self.kind}-{self.id}"

    def describe(self) -> str:
        """One line: what the cell does."""
        return f"{self.kind} " + " ".join(f"{k}={v}" for k, v in self.args.items())


@dataclass
class Sweep:
    """A parsed, validated sweep file."""

    name: str
    cells: list[Cell]
    retries: int = 1


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _check_cell(kind: str, args: dict[str, Any], where: str) -> None:
    from nbutils.engines import ENGINES, validate_grid

    allowed = BENCH_KEYS if kind == "bench" else RUN_KEYS
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise NbUtilsError(f"{where}: unknown {kind} parameter(s) {unknown}",
                           f"use {', '.join(sorted(allowed))}")
    if kind == "bench":
        engines = _as_list(args.get("engines", []))
        bad = [e for e in engines if e not in ENGINES]
        if bad:
            raise NbUtilsError(f"{where}: unknown engine(s) {bad}", f"use names from nbutils.engines.ENGINES, "
                                                                   f"e.g. {', '.join(list(ENGINES)[:3])}")
        validate_grid(engines or ["torch-eager:fp32"], _as_list(args.get("batch", [1])), _as_list(args.get("seq", [128])),
                      warmup=int(args.get("warmup", 10)), iterations=int(args.get("iterations", 100)))
    else:
        from nbutils.suite.runner import discover, load_profile, parse_overrides, plan, select

        params = args.get("params", {}) or {}
        if not isinstance(params, dict):
            raise NbUtilsError(f"{where}: params must be a mapping", "write params: {name: value}")
        notebooks = discover()
        plan(select(notebooks, args.get("only")), notebooks, load_profile(str(args.get("profile", "smoke"))),
             parse_overrides([f"{k}={json.dumps(v)}" for k, v in params.items()]), Path.cwd())


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file; every problem is an error naming the cell, before any cell starts."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise NbUtilsError(f"sweep file {path} does not exist", "pass a YAML file (see README: Sweeps)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise NbUtilsError(f"{path} is not valid YAML: {exc}", "fix the file's syntax") from exc
    if not isinstance(raw, dict):
        raise NbUtilsError(f"{path} must be a mapping with 'cells' and/or 'grid'", "see README: Sweeps")
    unknown = sorted(set(raw) - SWEEP_KEYS)
    if unknown:
        raise NbUtilsError(f"{path}: unknown key(s) {unknown}", f"use {', '.join(sorted(SWEEP_KEYS))}")
    default_res = dict(raw.get("resources") or {})
    cells: list[Cell] = []
    listed = raw.get("cells") or []
    if not isinstance(listed, list):
        raise NbUtilsError(f"{path}: 'cells' is a {type(listed).__name__}, not a list of cells",
                           "write each cell as a list item: cells:\n  - bench: {model: random:bert-tiny}")
    for i, c in enumerate(listed):
        where = f"{path.name} cell {i + 1}"
        if not isinstance(c, dict) or not (set(c) & {"bench", "run"}) or len(set(c) & {"bench", "run"}) != 1:
            raise NbUtilsError(f"{where} must have exactly one of 'bench' or 'run'", "e.g. - bench: {model: ...}")
        bad = sorted(set(c) - CELL_KEYS)
        if bad:
            raise NbUtilsError(f"{where}: unknown key(s) {bad}", f"use {', '.join(sorted(CELL_KEYS))}")
        kind = "bench" if "bench" in c else "run"
        args = dict(c[kind] or {})
        _check_cell(kind, args, where)
        cells.append(Cell(kind, args, {**default_res, **dict(c.get("resources") or {})}, str(c.get("name", ""))))
    grid = raw.get("grid") or {}
    if grid:
        if not isinstance(grid, dict) or len(grid) != 1 or next(iter(grid)) not in ("bench", "run"):
            raise NbUtilsError(f"{path}: grid must have one key, 'bench' or 'run', whose values are lists",
                               "e.g. grid: {bench: {model: [random:bert-tiny], batch: [[1], [8]]}}")
        kind, axes = next(iter(grid.items()))
        if not isinstance(axes, dict):
            raise NbUtilsError(f"{path}: grid.{kind} must map argument names to lists of values",
                               "e.g. grid: {bench: {model: [random:bert-tiny], batch: [[1], [8]]}}")
        not_lists = sorted(k for k, v in axes.items() if not isinstance(v, list) or not v)
        if not_lists:
            raise NbUtilsError(f"{path}: grid.{kind} value(s) for {not_lists} are not non-empty lists",
                               "give every grid axis a list of values, e.g. batch: [[1], [8]] or model: [random:bert-tiny]")
        keys = list(axes)
        for combo in itertools.product(*[_as_list(axes[k]) for k in keys]):
            args = dict(zip(keys, combo, strict=True))
            _check_cell(kind, args, f"{path.name} grid cell {args}")
            cells.append(Cell(kind, args, default_res))
    if not cells:
        raise NbUtilsError(f"{path} defines no cells", "add 'cells:' or 'grid:'")
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        raise NbUtilsError(f"{path} lists the same cell twice", "remove the duplicate")
    retries = raw.get("retries", 1)
    if not isinstance(retries, int) or retries < 0:
        raise NbUtilsError(f"{path}: retries={retries!r}", "use a count >= 0")
    return Sweep(str(raw.get("name") or path.stem), cells, retries)


# --- on the worker ------------------------------------------------------------------------------------------


def run_cell(cell: Cell, sweep: str, runs_root: str) -> dict[str, Any]:
    """Run one cell on this worker into its own run folder and return its rows (the client writes them)."""
    from nbutils.core.paths import claim_run_dir
    from nbutils.store.db import read_results

    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = "local"
    os.environ["NBUTILS_RUNS_DIR"] = runs_root
    folder = claim_run_dir(cell.run_id(sweep))
    (folder / "started.json").write_text(json.dumps({"pid": os.getpid(), "worker": worker, "cell": cell.id}))
    db = folder / "cell.sqlite"
    t0 = time.perf_counter()
    if cell.kind == "bench":
        from nbutils.engines import default_engines
        from nbutils.engines.driver import benchmark
        from nbutils.store.notebook_run import NotebookRun

        a = cell.args
        result = benchmark(NotebookRun(folder, "sweep-bench", db), str(a.get("model", "random:bert-base")),
                           _as_list(a.get("engines") or default_engines()), [int(b) for b in _as_list(a.get("batch", [1]))],
                           [int(s) for s in _as_list(a.get("seq", [128]))], warmup=int(a.get("warmup", 10)),
                           iterations=int(a.get("iterations", 100)), threads=int(a.get("threads", 0)), progress=False)
        result.raise_failures()
    else:
        from nbutils.suite.runner import run_suite

        os.environ["NBUTILS_RUNS_DIR"] = str(folder)
        params = [f"{k}={json.dumps(v)}" for k, v in (cell.args.get("params") or {}).items()]
        _, outcomes = run_suite(str(cell.args.get("profile", "smoke")), cell.args.get("only"), params, progress=False)
        os.environ["NBUTILS_RUNS_DIR"] = runs_root
        failed = [o.error for o in outcomes if not o.ok]
        if failed:
            raise NbUtilsError(f"suite run failed: {failed[0]}", f"see {folder}")
        db = folder / "results.sqlite"
    rows = read_results(None, db, all_columns=True).to_dict("records") if db.exists() else []
    return {"cell": cell.id, "worker": worker, "folder": str(folder), "rows": rows,
            "seconds": time.perf_counter() - t0}


# --- on the client ------------------------------------------------------------------------------------------


def done_cells(sweep: Sweep, db: Path) -> set[str]:
    """Ids of cells whose rows are already in the database (``--resume`` skips them)."""
    from nbutils.store.db import run_ids

    have = set(run_ids(db)) if db.exists() else set()
    return {c.id for c in sweep.cells if c.run_id(sweep.name) in have}


def write_cell(sweep: Sweep, cell: Cell, result: dict[str, Any], db: Path) -> int:
    """Write a cell's rows in one transaction, validated, replacing any rows of the same cell (idempotent)."""
    from nbutils.store.db import copy_rows

    rid = cell.run_id(sweep.name)
    records = []
    for r in result["rows"]:
        extra = json.loads(r.get("extra") or "{}")
        extra.update({"worker": result["worker"], "sweep": sweep.name, "cell": cell.id, "cell_args": cell.args,
                      "run_folder": result["folder"], "cell_resources": cell.resources})
        records.append({**r, "extra": json.dumps(extra, sort_keys=True, default=str)})
    return copy_rows(records, rid, db)


def connect_client(scheduler: str | None, workers: int | None) -> Any:
    """A Dask client: to ``scheduler`` (checked now, clear error if it does not answer) or a new LocalCluster."""
    from distributed import Client, LocalCluster

    if scheduler:
        import re

        if not re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+(:\d+)?/?|[^\s/:]+:\d+", scheduler):
            raise NbUtilsError(f"--scheduler {scheduler!r} is not a Dask scheduler address",
                               "use tcp://HOST:PORT (as `dask scheduler` prints it), e.g. tcp://127.0.0.1:8786")
        try:
            return Client(scheduler, timeout="5s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise NbUtilsError(f"no Dask scheduler answers at {scheduler} ({type(exc).__name__})",
                               "start one (dask scheduler; dask worker ADDRESS) or leave out --scheduler for a "
                               "local cluster") from exc
    n = max(1, os.cpu_count() or 1) if workers is None else workers
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster)


def run_sweep(path: str | Path, *, scheduler: str | None = None, workers: int | None = None, resume: bool = False,
              dry_run: bool = False, db: str | Path | None = None, out: Any = None) -> dict[str, Any]:
    """Run (or, with ``dry_run``, describe) a sweep; returns counts and per-cell outcomes.

    Raises:
        NbUtilsError: bad sweep file, cell or scheduler address (before any cell starts).
        KeyboardInterrupt: Ctrl-C; finished cells are kept and the message says how to resume.

    """
    import sys

    from nbutils.core.paths import default_db_path, runs_dir
    from nbutils.core.progress import bar
    from nbutils.store.db import check_writable

    out = out or sys.stdout
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise NbUtilsError(f"--workers {workers!r} is not a number of workers", "use --workers 1 or more (default: one per core)")
    if scheduler and workers is not None:
        raise NbUtilsError("--workers and --scheduler both given", "the scheduler's cluster has its own workers: drop --workers")
    sweep = load_sweep(path)
    dbp = Path(db) if db else default_db_path()
    skip = done_cells(sweep, dbp) if resume else set()
    todo = [c for c in sweep.cells if c.id not in skip]
    where = scheduler or f"a LocalCluster of {workers if workers is not None else os.cpu_count() or 1} worker(s), 1 thread each"
    if dry_run:
        for c in sweep.cells:
            state = "done (skipped with --resume)" if c.id in skip else "to run"
            res = f" on workers with {c.resources}" if c.resources else ""
            print(f"{c.id} {c.describe()} -> {where}{res} [{state}]", file=out)
        return {"cells": len(sweep.cells), "todo": len(todo)}
    check_writable(dbp)
    client = connect_client(scheduler, workers)
    outcomes: dict[str, dict[str, Any]] = {}
    try:
        services = client.scheduler_info().get("services", {})
        link = client.dashboard_link if "dashboard" in services else None
        print(f"sweep {sweep.name}: {len(todo)} cell(s) to run ({len(skip)} done already) on {where}" +
              (f"; Dask dashboard {link}" if link else ""), file=out, flush=True)
        from distributed import as_completed

        futures = {client.submit(run_cell, c, sweep.name, str(runs_dir()), key=f"cell-{c.id}", pure=False,
                                 retries=sweep.retries, resources=c.resources or None): c for c in todo}
        progress = bar(total=len(futures), desc="sweep", unit="cell")
        try:
            for fut in as_completed(futures):
                cell = futures[fut]
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - a failed cell is reported, the sweep goes on
                    outcomes[cell.id] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                    print(f"FAILED cell {cell.id} ({cell.describe()}): {type(exc).__name__}: {exc}", file=out, flush=True)
                else:
                    n = write_cell(sweep, cell, result, dbp)
                    outcomes[cell.id] = {"ok": True, "rows": n, "worker": result["worker"],
                                         "seconds": result["seconds"]}
                progress.update(1)
        finally:
            progress.close()
    except KeyboardInterrupt:
        for f in list(futures if "futures" in locals() else []):
            f.cancel()
        print(f"\ninterrupted: {sum(o.get('ok', False) for o in outcomes.values())} cell(s) finished and are in "
              f"{dbp}; resume with: python -m nbutils sweep {path} --resume", file=out, flush=True)
        raise
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None and not scheduler:
            cluster.close()
    ok = sum(o["ok"] for o in outcomes.values())
    print(f"sweep {sweep.name}: {ok} of {len(todo)} cell(s) ok, {len(todo) - ok} failed; rows in {dbp}", file=out)
    return {"cells": len(sweep.cells), "todo": len(todo), "ok": ok, "outcomes": outcomes}
