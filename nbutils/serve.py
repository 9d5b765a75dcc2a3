"""Serving notebooks as apps with Voila: the command and environment every launcher uses (make, tests, CLI).

The suite ships one Voila template, ``offline`` (``templates/jupyter/voila/templates/offline``): Voila's ``lab``
template without its CDN stylesheets. Voila finds templates on the Jupyter data path only, so the launcher puts the
package's ``templates/jupyter`` folder first on ``JUPYTER_PATH``; a plain ``voila`` without it still works, with the
``lab`` template.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

TEMPLATE = "offline"
"""The Voila template the suite serves its notebooks with."""


def jupyter_data_dir() -> Path:
    """The package folder that holds the suite's Jupyter data (its Voila template)."""
    return Path(__file__).resolve().parent / "templates" / "jupyter"


def voila_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the suite's Jupyter data first on ``JUPYTER_PATH``."""
    env = dict(os.environ if base is None else base)
    rest = [p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    env["JUPYTER_PATH"] = os.pathsep.join([str(jupyter_data_dir()), *rest])
    return env


def voila_command(notebook: str | Path, port: int, extra: Sequence[str] = ()) -> list[str]:
    """The Voila command serving ``notebook`` on 127.0.0.1:``port`` with the suite's template.

    Run it under :func:`voila_env`, from the repository root, where ``voila.json`` is read.
    """
    return [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
            f"--template={TEMPLATE}", *extra]
