"""A notebook's handle on its run: the run folder, the results database and provenance.

Every notebook starts with ``run = open_run(run_dir, "20_ptq", results_db)`` and records
figures with ``run.record(rows, model=..., task=..., data=...)``. Provenance (library versions,
hardware, data spec) is attached here, once, so no notebook can forget it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nbutils.core import env
from nbutils.core.device import Device, engine_device
from nbutils.core.errors import NbUtilsError
from nbutils.core.paths import resolve_run_dir
from nbutils.core.vocab import RUNTIME_DEVICE, runtime_of
from nbutils.store.db import Measurement, Provenance, check_writable, record

#: Set by the suite runner while it executes notebooks: the run folder it claimed.
CLAIMED_ENV = "NBUTILS_CLAIMED_RUN_DIR"


def check_run_folder(run_dir: Path) -> None:
    """Raise if a run folder the suite runner claimed (it holds ``run.json``) is gone: never recreate it silently."""
    if not (Path(run_dir) / "run.json").is_file():
        raise NbUtilsError(f"the run folder {run_dir} (or its run.json) was deleted while the suite ran; "
                           "its artefacts are gone", "start the run again and leave its folder alone until it ends")


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

    def record(self, rows: Iterable[Measurement], *, model: str, task: str, data: str = "",
               device: Device | None = None) -> int:
        """Write rows in one transaction (all or none); refuses if the suite's run folder was deleted meanwhile.

        With ``device`` (the notebook's resolved device) every row that does not say where it ran gets
        ``extra["device"]``: ONNX Runtime and OpenVINO rows their runtime's device, PyTorch rows ``device``'s.
        """
        self.check_alive()
        if device is not None:
            rows = [with_device(r, device) for r in rows]
        return record(rows, self.provenance(model=model, task=task, data=data), self.db)

    def check_alive(self) -> None:
        """Raise if the suite runner's folder for this run was deleted while it ran."""
        if os.environ.get(CLAIMED_ENV) == str(self.run_dir):
            check_run_folder(self.run_dir)


def with_device(row: Measurement, device: Device) -> Measurement:
    """``row`` with the device it ran on in ``extra`` (kept when the row already says)."""
    if "device" in row.extra:
        return row
    runtime = runtime_of(row.engine)
    where = {"device": engine_device(runtime, device)} if runtime in RUNTIME_DEVICE else device.meta()
    return dataclasses.replace(row, extra={**row.extra, **where})


def open_run(run_dir: str = "", notebook: str = "", results_db: str = "") -> NotebookRun:
    """Resolve a notebook's ``run_dir``/``results_db`` parameters (empty = defaults).

    Checks, before the notebook does any work, that figures can be written to the database, and that the run
    folder the suite runner claimed still exists (it is never silently recreated).
    """
    claimed = os.environ.get(CLAIMED_ENV)
    if run_dir and claimed and Path(run_dir).resolve() == Path(claimed):
        check_run_folder(Path(claimed))
    db = check_writable(results_db or None)
    folder = resolve_run_dir(run_dir)
    return NotebookRun(folder, notebook, db)
