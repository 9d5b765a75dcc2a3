"""``python -m nbutils clean``: free disk by removing old run folders (checkpoints, ONNX files, executed notebooks).

Run folders are ``runs/<id>/``; they sort by start time (never by name). The results database keeps every figure unless ``--rows``
is given, so reports and the dashboard still show removed runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nbutils.core.errors import NbUtilsError
from nbutils.core.paths import STARTED_FORMAT, read_json, runs_dir


@dataclass(frozen=True)
class CleanPlan:
    """What ``clean`` removes and keeps."""

    remove: list[Path]
    keep: list[Path]
    bytes_freed: int
    rows: bool


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def started_at(folder: Path) -> float:
    """When a run folder's run started (seconds since the epoch): ``run.json``'s ``started``, else the oldest file.

    Run ids are not times (``--run-id ov1``, ``gpu-sst2``, sweep folders), so "newest" is never decided by name.
    """
    import time

    try:
        started = read_json(folder / "run.json").get("started")
        if started:
            return time.mktime(time.strptime(started, STARTED_FORMAT))
    except (OSError, ValueError, TypeError):
        pass
    stamps = [p.stat().st_mtime for p in folder.iterdir() if not p.is_symlink()] if folder.is_dir() else []
    return min(stamps, default=folder.stat().st_mtime)


def run_folders(root: Path | None = None) -> list[Path]:
    """Run folders under the runs folder, oldest first by start time (:func:`started_at`), name breaking ties.

    A run folder holds a ``run.json``, or was made by ``bench`` (or is ``standalone``).
    """
    root = root or runs_dir()
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
             and ((p / "run.json").is_file() or (p / "bench.txt").is_file() or (p / "bench").is_dir()
                  or p.name == "standalone")]
    return sorted(found, key=lambda p: (started_at(p), p.name))


def plan_clean(*, keep: int | None = None, runs: Sequence[str] = (), rows: bool = False,
               root: Path | None = None) -> CleanPlan:
    """Choose what to remove: the named ``runs``, or all but the newest ``keep`` runs."""
    folders = run_folders(root)
    if runs and keep is not None:
        raise NbUtilsError("--keep and --run both given", "use one: --keep N (newest N stay) or --run ID (those go)")
    if runs:
        names = {f.name: f for f in folders}
        missing = [r for r in runs if r not in names]
        if missing:
            known = ", ".join(f.name for f in folders[-5:]) or "none"
            raise NbUtilsError(f"no run folder named {', '.join(missing)}", f"pick from the run folders (newest: {known})")
        remove = [names[r] for r in runs]
    else:
        if keep is None or keep < 0:
            raise NbUtilsError(f"--keep {keep} is not a count of runs to keep", "use --keep N (N >= 0) or --run ID")
        remove = folders[:-keep] if keep else list(folders)
    kept = [f for f in folders if f not in remove]
    return CleanPlan(remove, kept, sum(_size(f) for f in remove), rows)


def execute(plan: CleanPlan, db: Path | None = None) -> int:
    """Remove the planned folders (and their database rows if asked, in one transaction); returns rows deleted."""
    deleted = 0
    if plan.rows and plan.remove:
        from nbutils.store.db import delete_runs

        deleted = delete_runs([f.name for f in plan.remove], db)
    for f in plan.remove:
        shutil.rmtree(f)
    return deleted


def describe(plan: CleanPlan, *, dry_run: bool) -> str:
    """Human-readable account of a plan."""
    verb = "would remove" if dry_run else "removed"
    lines = [f"{verb} {len(plan.remove)} run folder(s), {plan.bytes_freed / 1e6:.1f} MB; keeping {len(plan.keep)}"]
    lines += [f"  - {f}" for f in plan.remove]
    lines.append("database rows: " + ("deleted for those runs" if plan.rows else "kept (pass --rows to delete them)"))
    return "\n".join(lines)
