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
    # port_retries=0: Voila must serve on the port it was given or fail, never on port+1 (the printed URL is true)
    return [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
            "--Voila.port_retries=0", f"--template={TEMPLATE}", *extra]


def check_port(port: int) -> None:
    """Raise a clear error, before anything starts, if ``port`` is not a port or is taken on 127.0.0.1."""
    import socket

    from nbutils.core.errors import NbUtilsError

    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise NbUtilsError(f"--port {port!r} is not a TCP port", "use a number from 1024 to 65535, e.g. --port 8866")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as free:
                free.bind(("127.0.0.1", 0))
                hint = free.getsockname()[1]
            raise NbUtilsError(f"port {port} on 127.0.0.1 is already in use (another server, maybe another dashboard)",
                               f"pick a free port: --port {hint} (make dashboard PORT={hint})") from None
