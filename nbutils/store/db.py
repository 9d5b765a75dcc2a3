"""The results database: every measured figure, once, with its provenance.

One SQLite file (``runs/results.sqlite``) holds a row per figure. Writes happen in one
``BEGIN IMMEDIATE`` transaction per batch (all rows or none), the database runs in WAL mode
with a busy timeout so two runs can write at once, and :func:`read_results` gives the rows
back as a pandas DataFrame for every report, chart and dashboard.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbutils.core.errors import NbUtilsError
from nbutils.core.paths import default_db_path
from nbutils.core.vocab import METRICS

if TYPE_CHECKING:
    import pandas as pd

#: Columns shown by ``python -m nbutils results``, in order.
PUBLIC_COLUMNS = ["run_id", "notebook", "model", "task", "recipe", "engine", "precision",
                  "batch", "seq", "metric", "value", "unit"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    run_id      TEXT    NOT NULL,
    notebook    TEXT    NOT NULL,
    model       TEXT    NOT NULL,
    task        TEXT    NOT NULL,
    recipe      TEXT    NOT NULL,
    engine      TEXT    NOT NULL,
    precision   TEXT    NOT NULL,
    batch       INTEGER,
    seq         INTEGER,
    metric      TEXT    NOT NULL,
    value       REAL    NOT NULL,
    unit        TEXT    NOT NULL,
    data        TEXT    NOT NULL DEFAULT '',
    versions    TEXT    NOT NULL DEFAULT '{}',
    hardware    TEXT    NOT NULL DEFAULT '{}',
    extra       TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS results_run ON results(run_id);
"""


#: The columns a writer fills (``id`` and ``created_at`` are the database's own), in ``_INSERT``'s order.
ROW_COLUMNS = ("run_id", "notebook", "model", "task", "recipe", "engine", "precision", "batch", "seq", "metric",
               "value", "unit", "data", "versions", "hardware", "extra")
#: The columns that say what a figure is *of* (the dashboard's selectors, with the machine read from ``hardware``).
DESCRIBING_COLUMNS = ("run_id", "model", "task", "recipe", "engine", "precision", "batch", "seq")
#: The one INSERT statement of the suite.
_INSERT = f"INSERT INTO results ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' * len(ROW_COLUMNS))})"


@dataclass(frozen=True)
class Measurement:
    """One measured figure. ``extra`` holds anything else worth keeping (threads, fallbacks, flags)."""

    metric: str
    value: float
    recipe: str
    engine: str
    precision: str
    batch: int | None = None
    seq: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise :class:`NbUtilsError` if the metric is outside the vocabulary or the value is not finite."""
        if self.metric not in METRICS:
            raise NbUtilsError(
                f"unknown metric {self.metric!r}",
                f"use one of the fixed vocabulary: {', '.join(METRICS)}",
            )
        if not isinstance(self.value, (int, float)) or not math.isfinite(float(self.value)):
            raise NbUtilsError(f"metric {self.metric!r} has a non-finite value {self.value!r}",
                               "record only measured, finite numbers")


@dataclass(frozen=True)
class Provenance:
    """Where figures came from: shared by every row a notebook writes."""

    run_id: str
    notebook: str
    model: str
    task: str
    data: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)
    hardware: Mapping[str, Any] = field(default_factory=dict)


#: ``PRAGMA user_version`` of a database written under the identity rule of :mod:`nbutils.core.vocab`
#: (version 0/1: the engine column held the runtime only).
SCHEMA_VERSION = 2


def check_writable(path: str | Path | None = None) -> Path:
    """Raise a clear error now, before any work, if figures could not be written to ``path``.

    Checks the folder (created if missing), the database file and SQLite's ``-wal``/``-shm`` companions
    (a read-only ``-shm`` left behind keeps writes failing after the database itself is fixed).
    Returns the resolved path.
    """
    import os

    db = (Path(path) if path else default_db_path()).resolve()
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NbUtilsError(f"cannot create the folder of the results database {db.parent}: {exc.strerror}",
                           "pass a writable location (results_db=... / --db, or set NBUTILS_RUNS_DIR)") from exc
    if not os.access(db.parent, os.W_OK | os.X_OK):
        raise NbUtilsError(f"the folder of the results database {db.parent} is not writable",
                           f"make it writable (chmod u+w {db.parent}) or set NBUTILS_RUNS_DIR to a writable folder")
    for candidate in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if candidate.exists() and not os.access(candidate, os.R_OK | os.W_OK):
            raise NbUtilsError(f"{candidate} is not writable, so no figure could be recorded",
                               f"make it writable (chmod u+rw {candidate}) or pass another database")
    if db.exists():
        _check_sqlite(db)
    return db


def _check_sqlite(db: Path) -> None:
    if db.is_dir():
        raise NbUtilsError(f"the results database {db} is a folder, not a file",
                           "move that folder away (the suite creates the database file), or pass another --db")
    with db.open("rb") as fh:
        head = fh.read(16)
    if head and head != b"SQLite format 3\x00":
        raise NbUtilsError(f"{db} is not an SQLite database (it starts with {head[:8]!r})",
                           "point to the suite's results.sqlite, or move this file away and let the suite create one")


def connect(path: str | Path | None = None) -> sqlite3.Connection:
    """Open (and if needed create) the results database for writing, in WAL mode with a 30 s busy timeout.

    A database written before the identity rule is migrated here, in one transaction (see :mod:`nbutils.core.vocab`).
    """
    db = check_writable(path)
    try:
        con = sqlite3.connect(db, timeout=30.0, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=30000")
        con.executescript(_SCHEMA)
        _migrate(con)
    except sqlite3.DatabaseError as exc:
        raise NbUtilsError(f"cannot write to the results database {db}: {exc}",
                           "check the file and its folder are writable and that it is the suite's database") from exc
    return con


def _migrate(con: sqlite3.Connection) -> None:
    """Bring an older database to :data:`SCHEMA_VERSION` (full engine names, one recipe per ONNX variant)."""
    import pandas as pd

    from nbutils.core.vocab import normalize_legacy

    if con.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    con.execute("BEGIN IMMEDIATE")
    try:
        if con.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:  # another writer may have won
            old = pd.read_sql_query("SELECT id, engine, recipe, extra FROM results", con)
            new = normalize_legacy(old)
            changed = new[(new["engine"] != old["engine"]) | (new["recipe"] != old["recipe"])]
            con.executemany("UPDATE results SET engine = ?, recipe = ? WHERE id = ?",
                            [(e, r, int(i)) for i, e, r in zip(changed["id"], changed["engine"], changed["recipe"],
                                                               strict=True)])
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def connect_readonly(path: str | Path | None = None) -> sqlite3.Connection:
    """Open the results database for reading only: works on a read-only file or folder and never writes."""
    db = (Path(path) if path else default_db_path()).resolve()
    if not db.exists():
        raise NbUtilsError(f"no results database at {db}",
                           "run the suite first (make run), or pass --db with the right path")
    _check_sqlite(db)
    last: Exception | None = None
    for query in ("mode=ro", "immutable=1"):  # immutable: a read-only folder where SQLite cannot make -shm
        try:
            con = sqlite3.connect(f"{db.as_uri()}?{query}", uri=True, timeout=30.0)
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return con
        except sqlite3.DatabaseError as exc:
            last = exc
    raise NbUtilsError(f"cannot read the results database {db}: {last}",
                       "check that the file is readable and is the suite's results.sqlite")


def schema_version(con: sqlite3.Connection) -> int:
    """The database's schema version (0 or 1: written before the identity rule)."""
    return int(con.execute("PRAGMA user_version").fetchone()[0])


@contextlib.contextmanager
def transaction(db: str | Path | None = None) -> Iterator[sqlite3.Connection]:
    """A write transaction (``BEGIN IMMEDIATE``): committed if the block succeeds, rolled back otherwise."""
    con = connect(db)
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    finally:
        con.close()


def record(rows: Iterable[Measurement], prov: Provenance, db: str | Path | None = None) -> int:
    """Write ``rows`` in one transaction; nothing is written if any row is invalid.

    Returns the number of rows written.
    """
    rows = list(rows)
    for row in rows:
        row.validate()
    with transaction(db) as con:
        con.executemany(
            _INSERT,
            [
                (prov.run_id, prov.notebook, prov.model, prov.task, r.recipe, r.engine, r.precision,
                 r.batch, r.seq, r.metric, float(r.value), METRICS[r.metric], prov.data,
                 json.dumps(dict(prov.versions), sort_keys=True),
                 json.dumps(dict(prov.hardware), sort_keys=True, default=str),
                 json.dumps(dict(r.extra), sort_keys=True, default=str))
                for r in rows
            ],
        )
    return len(rows)


def _plain(v: Any) -> Any:
    """A value SQLite can bind: numpy scalars as Python numbers, NaN as NULL."""
    if hasattr(v, "item"):
        v = v.item()
    return None if isinstance(v, float) and v != v else v


def copy_rows(rows: Iterable[Mapping[str, Any]], run_id: str, db: str | Path | None = None) -> int:
    """Write rows read from another database (``read_results(..., all_columns=True)``) under ``run_id``.

    Every row is validated as :func:`record` validates (the vocabulary, finite values) before anything is written;
    the run's earlier rows are replaced in the same transaction (idempotent). Returns the number of rows written.
    """
    records = []
    for r in rows:
        Measurement(str(r["metric"]), _plain(r["value"]), str(r["recipe"]), str(r["engine"]),
                    str(r["precision"])).validate()
        records.append(tuple(_plain(run_id if c == "run_id" else r[c]) for c in ROW_COLUMNS))
    with transaction(db) as con:
        con.execute("DELETE FROM results WHERE run_id = ?", (run_id,))
        con.executemany(_INSERT, records)
    return len(records)


def delete_runs(run_ids: Iterable[str], db: str | Path | None = None) -> int:
    """Delete every row of ``run_ids`` in one transaction; returns the number of rows deleted."""
    with transaction(db) as con:
        return sum(con.execute("DELETE FROM results WHERE run_id = ?", (rid,)).rowcount for rid in run_ids)


def last_id(db: str | Path | None = None) -> int:
    """The newest row id in the database (0 when it has no rows yet): a mark to tell later rows from earlier ones."""
    path = Path(db) if db else default_db_path()
    if not path.exists():
        return 0
    con = connect_readonly(path)
    try:
        return int(con.execute("SELECT COALESCE(MAX(id), 0) FROM results").fetchone()[0]) if _has_table(con) else 0
    finally:
        con.close()


def drop_superseded(db: str | Path | None, run_id: str, notebook: str, up_to_id: int) -> int:
    """Delete ``notebook``'s rows of ``run_id`` written before a re-execution (ids ``<= up_to_id``); returns the count.

    Called after a notebook ran again successfully in a resumed run, so its figures are stored once, not twice;
    if the re-execution fails, nothing is deleted and the earlier figures stay.
    """
    with transaction(db) as con:
        return con.execute("DELETE FROM results WHERE run_id = ? AND notebook = ? AND id <= ?",
                           (run_id, notebook, int(up_to_id))).rowcount


def run_ids(db: str | Path | None = None) -> list[str]:
    """All run ids in the database, oldest first: by when each run wrote its first figure (never by name)."""
    path = Path(db) if db else default_db_path()
    if not path.exists():
        return []
    con = connect_readonly(path)
    try:
        if not _has_table(con):
            return []
        # names are not times (--run-id ov1, gpu-sst2): a run's first row id orders runs as they started writing
        return [r[0] for r in con.execute("SELECT run_id FROM results GROUP BY run_id ORDER BY MIN(id)")]
    finally:
        con.close()


def _has_table(con: sqlite3.Connection) -> bool:
    return con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='results'").fetchone() is not None


def read_results(run: str | None = "latest", db: str | Path | None = None, *,
                 all_columns: bool = False) -> pd.DataFrame:
    """Read results back as a DataFrame.

    Args:
        run: ``"latest"`` (the newest run id), a run id, or ``None`` for every run.
        db: database path; defaults to ``runs/results.sqlite``.
        all_columns: include provenance columns (versions, hardware, extra, data, created_at).

    """
    import pandas as pd

    path = Path(db) if db else default_db_path()
    if not path.exists():
        raise NbUtilsError(f"no results database at {path}",
                           "run the suite first (make run), or pass --db with the right path")
    ids = run_ids(path)
    if run == "latest":
        if not ids:
            raise NbUtilsError(f"the results database {path} is empty", "run a notebook or `make run` first")
        run = ids[-1]
    if run is not None and run not in ids:
        known = ", ".join(ids[-5:]) or "none"
        raise NbUtilsError(f"no results for run {run!r}", f"pick one of the recorded runs (latest: {known})")
    con = connect_readonly(path)
    try:
        if not _has_table(con):
            raise NbUtilsError(f"{path} is an SQLite file without a results table", "point to the suite's results.sqlite")
        query = "SELECT * FROM results" + (" WHERE run_id = ?" if run else "") + " ORDER BY id"
        frame = pd.read_sql_query(query, con, params=(run,) if run else ())
        legacy = schema_version(con) < SCHEMA_VERSION
    finally:
        con.close()
    if legacy:  # rows written before the identity rule: full names recovered in memory, nothing written
        from nbutils.core.vocab import normalize_legacy

        frame = normalize_legacy(frame)
    if not all_columns:
        frame = frame[PUBLIC_COLUMNS]
    return frame


def pivot(frame: pd.DataFrame, index: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per ``index`` combination and a column per metric (the last value wins).

    ``index`` must hold the full identity of a figure (``engine`` is the full engine name, see
    :mod:`nbutils.core.vocab`), or distinct variants would share a cell.
    """
    sub = frame[frame["metric"].isin(metrics)]
    table = sub.pivot_table(index=list(index), columns="metric", values="value", aggfunc="last")
    return table.reindex(columns=[m for m in metrics if m in table.columns]).reset_index()
