"""Helpers for the browser tests: Debian's chromium driven by Playwright, servers on free localhost ports.

Never ``playwright install`` (it downloads a browser from a host these machines cannot reach): the system
``chromium`` is launched by path. Without Chromium the tests skip with a message, except in CI (``CI=true``),
where ``.ci/run`` installs it and a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def chromium() -> str:
    """Path of the system Chromium, or skip (fail in CI) with the reason."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("Chromium is not installed, but CI must run the browser tests (.ci/run installs Debian's chromium)")
    pytest.skip("browser test skipped: Debian's chromium is not installed (apt-get install -y chromium)")


def chromium_version(path: str) -> str:
    """``Chromium 156...`` as the binary reports it (printed with every browser test)."""
    return subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def artefacts() -> Path:
    """Where screenshots go: the CI evidence folder, or runs/screenshots."""
    base = os.environ.get("NBUTILS_EVIDENCE_DIR")
    folder = (Path(base) if base else ROOT / "runs") / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def server(cmd: list[str], url: str, env: dict[str, str], log: Path, timeout: float = 120.0):
    """Start ``cmd`` (a Voilà or JupyterLab server), wait until ``url`` answers, stop it afterwards."""
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.time() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    urllib.request.urlopen(url, timeout=5)
                    break
                except OSError:
                    if time.time() > deadline:
                        raise RuntimeError(f"server did not answer {url} in {timeout} s:\n{log.read_text()[-3000:]}") from None
                    time.sleep(0.5)
            yield proc
        finally:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)


def voila_ready_url(port: int) -> str:
    """A Voilà URL that answers once the server is up without starting a kernel (the notebook URL would execute
    the notebook once more, on a second kernel, beside the browser's)."""
    return f"http://127.0.0.1:{port}/voila/static/voila.js"


@contextlib.contextmanager
def evidence_on_failure(page, name: str):
    """On any failure inside the block, keep a full-page screenshot, the page's text and the browser console."""
    try:
        yield
    except BaseException:
        folder = artefacts()
        try:
            page.screenshot(path=str(folder / f"{name}-FAILED.png"), full_page=True)
            (folder / f"{name}-FAILED.txt").write_text(page.evaluate("() => document.body.innerText"))
            (folder / f"{name}-FAILED-console.txt").write_text("\n".join(getattr(page, "console_lines", [])))
        except Exception as exc:  # noqa: BLE001 - the original failure matters more than the evidence
            print(f"could not keep the failure evidence: {exc}")
        raise


@contextlib.contextmanager
def browser():
    """A headless Chromium page (offline by construction here: nothing outside localhost is reachable)."""
    from playwright.sync_api import sync_playwright

    path = chromium()
    print(f"browser: {chromium_version(path)} at {path}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            page = b.new_page(viewport={"width": 1300, "height": 1600})
            page.console_lines = []  # the browser console, kept as failure evidence
            page.on("console", lambda m: page.console_lines.append(f"{time.strftime('%H:%M:%S')} {m.type}: {m.text}"))
            page.external_requests = []  # anything not served by the local server: the suite renders offline
            page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                    else page.external_requests.append(r.url))
            yield page
        finally:
            b.close()
