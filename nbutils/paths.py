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
    pkg_root = Path(__file__).resolve().parents[1]
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


def new_run_id(profile: str) -> str:
    """A sortable run id: ``YYYYmmdd-HHMMSS-<profile>``."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{profile}"


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
