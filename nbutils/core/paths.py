"""Where things live: the project root, the runs folder, run folders and atomic writes.

A run folder (``runs/<timestamp>-<profile>/``) is how notebooks share artefacts: each notebook
gets the folder as its ``run_dir`` parameter, finds what earlier notebooks wrote there, and
builds what is missing when it runs alone (then ``run_dir`` is ``runs/standalone``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RUNS_ENV = "NBUTILS_RUNS_DIR"


def project_root(start: Path | None = None) -> Path:
    """Return the repository root: the nearest parent holding ``pyproject.toml`` and ``notebooks/``.

    Falls back to the current directory when the package is used outside the repository.
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file() and (candidate / "notebooks").is_dir():
            return candidate
    pkg_root = Path(__file__).resolve().parents[2]
    if (pkg_root / "notebooks").is_dir():
        return pkg_root
    return here


def runs_dir() -> Path:
    """The folder holding run folders and ``results.sqlite`` (``$NBUTILS_RUNS_DIR`` or ``<root>/runs``)."""
    env = os.environ.get(RUNS_ENV)
    return Path(env).resolve() if env else project_root() / "runs"


def default_db_path() -> Path:
    """The results database every notebook writes to unless told otherwise."""
    return runs_dir() / "results.sqlite"


#: How a run's start is written in ``run.json`` (and read back to order runs: :func:`nbutils.store.clean.started_at`).
STARTED_FORMAT = "%Y-%m-%dT%H:%M:%S"


def now_stamp() -> str:
    """The local time now in :data:`STARTED_FORMAT`."""
    return _dt.datetime.now().strftime(STARTED_FORMAT)


def new_run_id(profile: str) -> str:
    """A sortable run id: ``YYYYmmdd-HHMMSS-<profile>`` (made unique by :func:`claim_run_dir`)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{profile}"


#: A run id is one folder name inside the runs folder: no separators, no leading dot, no ``..``.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it names one folder inside the runs folder, else a clear error (before any work).

    ``../x`` or an absolute path would put the run outside ``runs/``, where ``clean`` and the dashboard never look.
    """
    from nbutils.core.errors import NbUtilsError

    if not _RUN_ID.fullmatch(run_id or "") or ".." in run_id:
        raise NbUtilsError(f"run id {run_id!r} is not a plain folder name",
                           "use letters, digits, '.', '_' and '-' only (e.g. --run-id sst2-main); "
                           "runs always live in the runs folder (set NBUTILS_RUNS_DIR to move it)")
    return run_id


def claim_run_dir(run_id: str, *, exact: bool = False) -> Path:
    """Create ``runs/<run_id>/`` atomically and return it; the folder belongs to this run alone.

    Two runs started in the same second get the same timestamp id: ``mkdir`` (atomic on every file system)
    lets exactly one of them have it, and the other takes ``<run_id>-2`` (``-3`` ...). With ``exact`` (a
    user-chosen ``--run-id``) an existing folder is an error instead.
    """
    from nbutils.core.errors import NbUtilsError

    check_run_id(run_id)
    root = runs_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NbUtilsError(f"cannot create the runs folder {root}: {exc.strerror}",
                           f"make {root.parent} writable, or set {RUNS_ENV} to a writable folder") from exc
    if not os.access(root, os.W_OK | os.X_OK):
        raise NbUtilsError(f"the runs folder {root} is not writable",
                           f"make it writable (chmod u+w {root}) or set {RUNS_ENV} to a writable folder")
    for n in range(1, 1000):
        candidate = root / (run_id if n == 1 else f"{run_id}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            if exact:
                raise NbUtilsError(f"run folder {candidate} already exists",
                                   "choose another --run-id, or delete that folder first") from None
            continue
        return candidate.resolve()
    raise NbUtilsError(f"could not claim a run folder for {run_id!r} (999 taken)", "clean up runs/ (python -m nbutils clean)")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _apply_umask(path: Path) -> None:
    """Give a temporary file/folder the mode a normal write would have (``mkstemp`` makes 0600/0700)."""
    mask = _umask()
    if path.is_dir():
        for sub in [path, *path.rglob("*")]:
            sub.chmod((0o777 if sub.is_dir() else 0o666) & ~mask)
    else:
        path.chmod(0o666 & ~mask)


def resolve_run_dir(run_dir: str | os.PathLike[str] | None) -> Path:
    """Turn a notebook's ``run_dir`` parameter into a folder; empty means ``runs/standalone``."""
    path = Path(run_dir) if run_dir else runs_dir() / "standalone"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``dest``; rename it onto ``dest`` only if the block succeeds.

    An interrupted export or save therefore never leaves a half-written file under the final
    name, and writing twice into the same run folder simply replaces the old artefact.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        _apply_umask(tmp)
        if is_dir:
            old = None
            if dest.exists():
                old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
                dest.rename(old)
            tmp.rename(dest)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_json(dest: str | os.PathLike[str], payload: Any) -> Path:
    """Write ``payload`` as indented JSON, atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return Path(dest)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def same_bytes(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two files exist and hold the same bytes (sizes first, then contents)."""
    import filecmp

    a, b = Path(a), Path(b)
    return a.is_file() and b.is_file() and a.stat().st_size == b.stat().st_size and filecmp.cmp(a, b, shallow=False)


def link_if_identical(path: str | os.PathLike[str], original: str | os.PathLike[str]) -> bool:
    """Replace ``path`` by a hard link to ``original`` when both hold the same bytes; True if linked.

    A PTQ checkpoint keeps its baseline's weights unchanged (calibration adds ranges, not new weights), so a run
    folder would otherwise hold the same 87 MB twice. A hard link keeps both folders complete and self-contained
    (either can be deleted or copied alone) while the bytes are stored once. Where links are not possible (another
    file system, a platform without them), the copy stays and False is returned.
    """
    path, original = Path(path), Path(original)
    if path.is_file() and original.is_file() and os.path.samefile(path, original):
        return True
    if not same_bytes(path, original):
        return False
    tmp = path.with_name(f".{path.name}.link-{os.getpid()}")
    try:
        os.link(original, tmp)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True
