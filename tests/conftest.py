import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _runs_dir(tmp_path, monkeypatch):
    """Every test writes run folders and databases under its own tmp dir."""
    if "NBUTILS_RUNS_DIR" not in os.environ or not os.environ.get("NBUTILS_KEEP_RUNS"):
        monkeypatch.setenv("NBUTILS_RUNS_DIR", str(tmp_path / "runs"))
    yield


@pytest.fixture(scope="session")
def sst2_dir():
    path = SHARED / "sst2"
    if not path.is_dir():
        pytest.skip("../shared/data/sst2 is not present")
    return path


@pytest.fixture(scope="session")
def squad_file():
    path = SHARED / "squad-v1.1" / "dev-v1.1.json"
    if not path.is_file():
        pytest.skip("../shared/data/squad-v1.1 is not present")
    return path


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One smoke run of the whole suite, shared by every test that needs real rows (notebooks, dashboard).

    Under ``.ci/run`` (``NBUTILS_EVIDENCE_DIR`` set) it is written there, so a red CI leaves the executed
    notebooks and ``summary.html`` to read; otherwise into a temporary folder.
    """
    from nbutils.suite.runner import NotebookOutcome, run_suite

    reuse = os.environ.get("NBUTILS_REUSE_SMOKE_RUN")  # local iteration only: a finished smoke run folder
    if reuse:
        import json

        run_dir = Path(reuse)
        outcomes = [NotebookOutcome(o["name"], run_dir / f"{o['name']}.ipynb", o["seconds"], o["ok"], o["error"])
                    for o in json.loads((run_dir / "outcomes.json").read_text())]
        return run_dir.parent, run_dir, outcomes
    evidence = os.environ.get("NBUTILS_EVIDENCE_DIR")
    runs = Path(evidence) if evidence else tmp_path_factory.mktemp("runs")
    old = os.environ.get("NBUTILS_RUNS_DIR")
    os.environ["NBUTILS_RUNS_DIR"] = str(runs)
    try:
        run_dir, outcomes = run_suite("smoke", progress=False)
    finally:
        if old is None:
            os.environ.pop("NBUTILS_RUNS_DIR")
        else:
            os.environ["NBUTILS_RUNS_DIR"] = old
    return runs, run_dir, outcomes
