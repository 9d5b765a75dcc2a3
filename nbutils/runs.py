"""A notebook's handle on its run: the run folder, the results database and provenance.

Every notebook starts with ``run = open_run(run_dir, "20_ptq", results_db)`` and records
figures with ``run.record(rows, model=..., task=..., data=...)``. Provenance (library versions,
hardware, data spec) is attached here, once, so no notebook can forget it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nbutils import env
from nbutils.paths import default_db_path, resolve_run_dir
from nbutils.results import Measurement, Provenance, record


@dataclass(frozen=True)
class NotebookRun:
    """Where one notebook execution writes: ``run_dir`` (artefacts) and ``db`` (figures)."""

    run_dir: Path
    notebook: str
    db: Path

    @property
    def run_id(self) -> str:
        """The run id is the run folder's name (``20261121-101500-default``, or ``standalone``)."""
        return self.run_dir.name

    def path(self, *parts: str) -> Path:
        """A path inside the run folder (parents created)."""
        p = self.run_dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def provenance(self, *, model: str, task: str, data: str = "") -> Provenance:
        """Provenance for rows written now."""
        return Provenance(self.run_id, self.notebook, model, task, data, env.versions(), env.hardware())

    def record(self, rows: Iterable[Measurement], *, model: str, task: str, data: str = "") -> int:
        """Write rows in one transaction (all or none)."""
        return record(rows, self.provenance(model=model, task=task, data=data), self.db)


def open_run(run_dir: str = "", notebook: str = "", results_db: str = "") -> NotebookRun:
    """Resolve a notebook's ``run_dir``/``results_db`` parameters (empty = defaults)."""
    folder = resolve_run_dir(run_dir)
    db = Path(results_db) if results_db else default_db_path()
    return NotebookRun(folder, notebook, db.resolve())
