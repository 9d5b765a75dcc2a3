"""The suite runner behind ``python -m nbutils run``.

Profiles and ``-p`` overrides go in; executed notebooks, ``summary.html`` and database rows come out.

* Notebooks are ``notebooks/NN_topic.ipynb``, run in ``NN`` order; ``--only 10,20`` selects.
* A profile is ``nbutils/suite/profiles/<name>.yaml``: ``parameters`` for every notebook that declares
  them, ``notebook_parameters`` per notebook number, and ``cell_timeout_s``.
* Each parameter goes only to notebooks that declare it (papermill's own inspection of the
  ``parameters`` cell); a ``-p`` name no selected notebook declares is an error, and so is a
  value of the wrong type, before anything runs.
* Every notebook gets ``run_dir`` (the shared run folder) and ``results_db``.
"""

from __future__ import annotations

import html
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbutils.core.errors import NbUtilsError
from nbutils.core.paths import (
    check_run_id,
    claim_run_dir,
    new_run_id,
    now_stamp,
    project_root,
    read_json,
    runs_dir,
    write_json,
)
from nbutils.store.notebook_run import CLAIMED_ENV, check_run_folder

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
ALWAYS = ("run_dir", "results_db")


@dataclass(frozen=True)
class NotebookInfo:
    """A suite notebook and the parameters its ``parameters`` cell declares."""

    number: str
    path: Path
    parameters: dict[str, dict[str, Any]]

    @property
    def name(self) -> str:
        """``20_ptq``."""
        return self.path.stem


@dataclass
class Profile:
    """A named set of parameters (``nbutils/suite/profiles/<name>.yaml``)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    notebook_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    cell_timeout_s: int = 1800


def notebooks_dir() -> Path:
    """The suite's notebook folder."""
    return project_root() / "notebooks"


def discover(folder: Path | None = None) -> list[NotebookInfo]:
    """All ``NN_*.ipynb`` notebooks, in order, with their declared parameters."""
    import papermill

    folder = folder or notebooks_dir()
    found = []
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        params = papermill.inspect_notebook(str(path))
        found.append(NotebookInfo(path.name[:2], path, dict(params)))
    if not found:
        raise NbUtilsError(f"no notebooks found in {folder}", "run from the repository root (notebooks/NN_*.ipynb)")
    return found


def profile_names() -> list[str]:
    """Profiles shipped in the repository."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name: str) -> Profile:
    """Read ``nbutils/suite/profiles/<name>.yaml`` (or a path to a YAML file)."""
    import yaml

    path = Path(name) if name.endswith((".yaml", ".yml")) else PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise NbUtilsError(f"unknown profile {name!r}", f"use one of: {', '.join(profile_names())} "
                                                         "(or a path to a profile .yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise NbUtilsError(f"profile {path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}",
                           "fix the YAML (indentation, 'key: value' pairs); compare with nbutils/suite/profiles/default.yaml"
                           ) from None
    except OSError as exc:
        raise NbUtilsError(f"cannot read profile {path}: {exc.strerror}", "check the file's permissions") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise NbUtilsError(f"profile {path} is a YAML {type(raw).__name__}, not a mapping of settings",
                           "write it as 'description: ...', 'parameters: {...}', 'notebook_parameters: {...}'")
    unknown = set(raw) - {"description", "parameters", "notebook_parameters", "cell_timeout_s"}
    if unknown:
        raise NbUtilsError(f"profile {path} has unknown keys {sorted(unknown)}",
                           "use description, parameters, notebook_parameters, cell_timeout_s")
    for key in ("parameters", "notebook_parameters"):
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            raise NbUtilsError(f"profile {path}: {key} is a {type(raw[key]).__name__}, not a mapping",
                               f"write {key}: followed by indented 'name: value' lines")
    numbers = {nb.number for nb in discover()}
    nb_params: dict[str, dict[str, Any]] = {}
    for k, v in (raw.get("notebook_parameters") or {}).items():
        number = str(k).zfill(2)
        if number not in numbers:
            raise NbUtilsError(f"profile {path}: notebook_parameters names notebook {k!r}, which does not exist",
                               f"use one of the notebook numbers: {', '.join(sorted(numbers))}")
        if v is not None and not isinstance(v, dict):
            raise NbUtilsError(f"profile {path}: notebook_parameters.{k} is not a mapping of parameters",
                               "write it as '<number>: {name: value}'")
        nb_params[number] = dict(v or {})
    timeout = raw.get("cell_timeout_s", 1800)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise NbUtilsError(f"profile {path}: cell_timeout_s is {timeout!r}, not a positive number of seconds",
                           "write e.g. cell_timeout_s: 1800")
    return Profile(path.stem, str(raw.get("description", "")), dict(raw.get("parameters") or {}), nb_params,
                   int(timeout))


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; values are read as YAML literals."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise NbUtilsError(f"bad parameter {item!r}", "write -p name=value, e.g. -p train_samples=8000")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        if isinstance(parsed, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                parsed = float(parsed) if any(c in parsed for c in ".eE") else parsed
            except ValueError:
                pass
        out[key.strip()] = parsed
    return out


def select(notebooks: list[NotebookInfo], only: str | None) -> list[NotebookInfo]:
    """Pick notebooks by number (``"10,20"``); unknown numbers are an error."""
    if not only:
        return notebooks
    wanted = [w.strip().zfill(2) for w in str(only).split(",") if w.strip()]
    known = {nb.number: nb for nb in notebooks}
    missing = [w for w in wanted if w not in known]
    if missing:
        raise NbUtilsError(f"no notebook numbered {', '.join(missing)}",
                           f"use numbers from: {', '.join(known)} (e.g. --only 10,20)")
    return [known[w] for w in sorted(set(wanted))]


_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _check_type(name: str, value: Any, spec: dict[str, Any], notebook: str) -> None:
    expected = str(spec.get("inferred_type_name", "None"))
    base = expected.split("[")[0]
    if base in _TYPES:
        ok = isinstance(value, _TYPES[base]) and not (base in ("int", "float") and isinstance(value, bool))
        if not ok:
            raise NbUtilsError(f"parameter {name}={value!r} is a {type(value).__name__}, but {notebook} declares "
                               f"it as {expected}", f"pass a {expected} (e.g. -p {name}={spec.get('default')})")
    elif base == "list":
        if not isinstance(value, list):
            raise NbUtilsError(f"parameter {name}={value!r} should be a list ({notebook} declares {expected})",
                               f"pass a YAML list, e.g. -p {name}='{spec.get('default')}'")
        elem = _default_element_type(spec.get("default"))
        accept = (int, float) if elem is float else (elem,) if elem else ()
        wrong = [v for v in value if elem is not None and not (isinstance(v, accept) and not
                                                               (elem is not bool and isinstance(v, bool)))]
        if wrong:
            raise NbUtilsError(f"parameter {name}={value!r} holds {wrong}, but {notebook}'s default "
                               f"{spec.get('default')} is a list of {elem.__name__}",
                               f"pass a list of {elem.__name__}, e.g. -p {name}='{spec.get('default')}'")


def _default_element_type(default: Any) -> type | None:
    """The element type of a declared list default (``'["max", "mse"]'`` → str), None if empty or mixed."""
    import ast

    try:
        values = ast.literal_eval(default) if isinstance(default, str) else default
    except (ValueError, SyntaxError):
        return None
    if not isinstance(values, list) or not values:
        return None
    kinds = {type(v) for v in values}
    if kinds <= {int, float} and float in kinds:
        return float if kinds == {float} else None
    return kinds.pop() if len(kinds) == 1 else None


def _absolutize(value: Any, cwd: Path) -> Any:
    """Relative paths that exist from the caller's folder become absolute (notebooks run elsewhere)."""
    if isinstance(value, str) and value and not value.startswith("random:"):
        candidate = cwd / value
        if not Path(value).is_absolute() and ("/" in value or value.startswith(".")) and candidate.exists():
            return str(candidate.resolve())
    return value


def plan(selected: list[NotebookInfo], all_notebooks: list[NotebookInfo], profile: Profile,
         overrides: dict[str, Any], cwd: Path) -> dict[str, dict[str, Any]]:
    """Parameters for each selected notebook; raises before anything runs if one is wrong."""
    declared_all = {p for nb in all_notebooks for p in nb.parameters}
    declared_sel = {p for nb in selected for p in nb.parameters}
    bad_profile = sorted(set(profile.parameters) - declared_all)
    if bad_profile:
        raise NbUtilsError(f"profile {profile.name!r} sets {bad_profile}, which no notebook declares",
                           "fix the profile's parameter names")
    unknown = sorted(set(overrides) - declared_sel)
    if unknown:
        names = ", ".join(sorted(declared_sel - set(ALWAYS)))
        raise NbUtilsError(f"no selected notebook declares parameter(s) {unknown}",
                           f"check the spelling; the selected notebooks declare: {names}")
    per_nb: dict[str, dict[str, Any]] = {}
    for nb in selected:
        extra = profile.notebook_parameters.get(nb.number, {})
        bad = sorted(set(extra) - set(nb.parameters))
        if bad:
            raise NbUtilsError(f"profile {profile.name!r} sets {bad} for {nb.name}, which does not declare them",
                               "fix the profile's notebook_parameters")
        merged = {k: v for k, v in profile.parameters.items() if k in nb.parameters}
        merged.update(extra)
        merged.update({k: v for k, v in overrides.items() if k in nb.parameters})
        for k, v in merged.items():
            _check_type(k, v, nb.parameters[k], nb.name)
        per_nb[nb.number] = {k: _absolutize(v, cwd) for k, v in merged.items()}
    return per_nb


@dataclass
class NotebookOutcome:
    """How one notebook's execution went."""

    name: str
    output: Path
    seconds: float
    ok: bool
    error: str = ""


class SuiteInterrupted(KeyboardInterrupt):
    """Ctrl-C during a suite run, after the summary of what finished was written."""

    def __init__(self, run_dir: Path, outcomes: list[NotebookOutcome]) -> None:
        super().__init__(f"interrupted: run folder {run_dir}")
        self.run_dir = run_dir
        self.outcomes = outcomes





def run_suite(profile_name: str = "default", only: str | None = None, overrides: Sequence[str] = (),
              run_id: str | None = None, progress: bool = True, resume: bool = False) -> tuple[Path, list[NotebookOutcome]]:
    """Execute the selected notebooks in order into a new run folder; returns it and the outcomes.

    With ``resume`` the notebooks run in the existing folder ``run_id`` (e.g. notebooks 40-80 after a run of 10-30
    with the same profile): its checkpoints are reused, earlier outcomes kept in the summary.

    Raises:
        NbUtilsError: bad profile, notebook number or parameter (before any notebook runs).

    """
    from tqdm.auto import tqdm

    if run_id:
        check_run_id(run_id)  # a path such as ../x would put the run where clean and the dashboard never look
    profile = load_profile(profile_name)
    notebooks = discover()
    selected = select(notebooks, only)
    params = plan(selected, notebooks, profile, parse_overrides(overrides), Path.cwd())
    from nbutils.store.db import check_writable

    db = check_writable(runs_dir() / "results.sqlite")  # before any work: a read-only database fails now
    outcomes: list[NotebookOutcome] = []
    if resume:
        run_dir, outcomes = _resume(run_id, profile.name, selected)
        info = read_json(run_dir / "run.json")
        info.setdefault("continued", []).append({"only": only, "overrides": list(overrides), "parameters": params,
                                                 "started": now_stamp()})
        write_json(run_dir / "run.json", info)
    else:
        run_dir = claim_run_dir(run_id or new_run_id(profile.name), exact=bool(run_id))
        write_json(run_dir / "run.json", {"profile": profile.name, "only": only, "overrides": list(overrides),
                                          "parameters": params, "started": now_stamp()})
    bar = tqdm(total=len(selected), desc="suite", unit="notebook", disable=not progress, file=sys.stdout)
    suite_start = time.perf_counter()
    previous = os.environ.get(CLAIMED_ENV)
    os.environ[CLAIMED_ENV] = str(run_dir)
    try:
        _execute(selected, params, run_dir, db, profile, outcomes, bar, suite_start)
    except KeyboardInterrupt:
        bar.close()
        print("\ninterrupted: writing the summary of what finished", flush=True)
        if run_dir.is_dir():
            write_summary(run_dir, outcomes, profile, db)
        raise SuiteInterrupted(run_dir, outcomes) from None
    finally:
        if previous is None:
            os.environ.pop(CLAIMED_ENV, None)
        else:
            os.environ[CLAIMED_ENV] = previous
    bar.close()
    check_run_folder(run_dir)
    write_summary(run_dir, outcomes, profile, db)
    return run_dir, outcomes


def _resume(run_id: str | None, profile: str, selected: list[NotebookInfo]) -> tuple[Path, list[NotebookOutcome]]:
    """The existing run folder ``run_id`` and its earlier outcomes (minus the notebooks about to run again)."""
    if not run_id:
        raise NbUtilsError("--resume needs --run-id (the run folder to continue)",
                           "e.g. python -m nbutils run --profile sst2 --only 40,60 --run-id sst2-main --resume")
    run_dir = runs_dir() / run_id
    if not (run_dir / "run.json").is_file():
        raise NbUtilsError(f"no run folder {run_dir} to resume (or it has no run.json)",
                           "give the id of a folder `python -m nbutils run` made, or drop --resume")
    earlier = read_json(run_dir / "run.json").get("profile")
    if earlier != profile:
        raise NbUtilsError(f"run {run_id} was made with profile {earlier!r}, not {profile!r}",
                           f"resume it with --profile {earlier}: the notebooks must see the same parameters")
    again = {nb.name for nb in selected}
    previous = []
    if (run_dir / "outcomes.json").is_file():
        previous = [NotebookOutcome(o["name"], run_dir / f"{o['name']}.ipynb", float(o["seconds"]), bool(o["ok"]),
                                    o.get("error", "")) for o in read_json(run_dir / "outcomes.json")
                    if o["name"] not in again]
    return run_dir.resolve(), previous


def _execute(selected: list[NotebookInfo], params: dict[str, dict[str, Any]], run_dir: Path, db: Path,
             profile: Profile, outcomes: list[NotebookOutcome], bar: Any, suite_start: float) -> None:
    """Run the notebooks in order, appending to ``outcomes``; stops at the first failure."""
    from papermill.exceptions import PapermillExecutionError

    from nbutils.store.db import drop_superseded, last_id

    for i, nb in enumerate(selected, 1):
        try:
            check_run_folder(run_dir)
        except NbUtilsError as exc:
            outcomes.append(NotebookOutcome(nb.name, run_dir / nb.path.name, 0.0, False, exc.problem))
            print(f"FAILED  {exc.problem}", flush=True)
            return
        out = run_dir / nb.path.name
        nb_params = {**params[nb.number], "run_dir": str(run_dir), "results_db": str(db)}
        # written before the notebook starts: a run killed here (kill -9, power) shows as unfinished, not as normal
        _write_outcomes(run_dir, [*outcomes, NotebookOutcome(
            nb.name, out, 0.0, False, f"started {now_stamp()} and did not finish "
                                      "(the run was killed, or is still running)")])
        mark = last_id(db)
        bar.set_postfix_str(f"{nb.name} (elapsed {time.perf_counter() - suite_start:.0f} s)")
        print(f"[{i}/{len(selected)}] {nb.name} ...", flush=True)
        start = time.perf_counter()
        try:
            execute_notebook(nb.path, out, nb_params, profile.cell_timeout_s)
        except KeyboardInterrupt:
            outcomes.append(NotebookOutcome(nb.name, out, time.perf_counter() - start, False, "interrupted (Ctrl-C)"))
            raise
        except PapermillExecutionError as exc:
            seconds = time.perf_counter() - start
            msg = (f"notebook {nb.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
                   f"{exc.ename}: {exc.evalue}")
            outcomes.append(NotebookOutcome(nb.name, out, seconds, False, msg))
            _write_outcomes(run_dir, outcomes)
            print(f"FAILED  {msg}\n  partially executed notebook kept at {out}", flush=True)
            return
        except Exception as exc:  # noqa: BLE001 - kernel death, timeouts: still report and stop
            seconds = time.perf_counter() - start
            msg = f"notebook {nb.name} did not finish: {type(exc).__name__}: {exc}"
            outcomes.append(NotebookOutcome(nb.name, out, seconds, False, msg))
            _write_outcomes(run_dir, outcomes)
            print(f"FAILED  {msg}\n  partially executed notebook kept at {out}", flush=True)
            return
        seconds = time.perf_counter() - start
        outcomes.append(NotebookOutcome(nb.name, out, seconds, True))
        dropped = drop_superseded(db, run_dir.name, nb.name, mark)  # a resumed run's earlier figures of this notebook
        if dropped:
            print(f"  replaced {dropped} figure(s) {nb.name} had recorded earlier in this run", flush=True)
        _write_outcomes(run_dir, outcomes)
        print(f"[{i}/{len(selected)}] {nb.name} done in {seconds:.1f} s", flush=True)
        bar.update(1)


def _cell_reporter(name: str, nb_path: Path, stream: Any) -> Any:
    """An nbclient ``on_cell_start`` hook printing ``<notebook> cell k/n: <first line>`` for code cells."""
    import nbformat

    total = sum(c.cell_type == "code" for c in nbformat.read(str(nb_path), as_version=4).cells) + 1  # + injected
    seen = {"k": 0}

    def on_cell_start(cell: Any, cell_index: int, **_: Any) -> None:
        if cell.cell_type != "code":
            return
        seen["k"] += 1
        lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        first = lines[0] if lines else "(comments only)"
        print(f"  {name}: cell {seen['k']}/{total}: {first[:90]}", file=stream, flush=True)

    return on_cell_start


def execute_notebook(nb_path: Path, out: Path, params: dict[str, Any], timeout: int, stream: Any = None) -> None:
    """Execute one notebook with papermill, reporting each cell and forwarding the notebook's progress bars.

    Each code cell is announced on ``stream`` (default stdout) with its first line; the kernel gets
    ``NBUTILS_TEXT_PROGRESS=1`` so nbutils' progress bars (training, calibration, timing grids) are text on its
    stderr, which papermill forwards here.
    """
    import papermill

    from nbutils.core.progress import TEXT_ENV

    stream = stream or sys.stdout
    previous = os.environ.get(TEXT_ENV)
    os.environ[TEXT_ENV] = "1"
    try:
        papermill.execute_notebook(str(nb_path), str(out), parameters=params, kernel_name="python3",
                                   cwd=str(Path.cwd()), progress_bar=False, execution_timeout=timeout,
                                   stderr_file=stream, on_cell_start=_cell_reporter(nb_path.stem, nb_path, stream))
    finally:
        if previous is None:
            os.environ.pop(TEXT_ENV, None)
        else:
            os.environ[TEXT_ENV] = previous


def write_summary(run_dir: Path, outcomes: list[NotebookOutcome], profile: Profile, db: Path) -> Path:
    """Render each executed notebook to HTML and write ``summary.html`` with the headline figures."""
    from nbutils.report.tables import headline_tables
    from nbutils.ui.htmlexport import export, write_plotlyjs

    html_dir = run_dir / "html"
    html_dir.mkdir(exist_ok=True)
    plotlyjs = write_plotlyjs(run_dir)
    rows = []
    for o in outcomes:
        link = ""
        if o.output.exists():
            target = html_dir / f"{o.name}.html"
            try:
                export(o.output, target, plotlyjs)
            except Exception as exc:  # noqa: BLE001 - a notebook cut off mid-write still gets its summary row
                target.write_text(f"<p>could not render {html.escape(str(o.output))}: "
                                  f"{html.escape(type(exc).__name__)}</p>", encoding="utf-8")
            link = f'<a href="html/{target.name}">{html.escape(o.name)}</a>'
        status = "ok" if o.ok else f"FAILED: {html.escape(o.error)}"
        rows.append(f"<tr><td>{link or html.escape(o.name)}</td><td>{o.seconds:.1f}</td><td>{status}</td></tr>")
    try:
        tables = headline_tables(db, run_dir.name)
    except NbUtilsError as exc:
        tables = {"No figures": f"<p>{html.escape(str(exc))}</p>"}
    charts = summary_charts(db, run_dir)
    sections = "\n".join(f"<h2>{html.escape(t)}</h2>\n{body}" for t, body in {**charts, **tables}.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Run {html.escape(run_dir.name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
td.nb-int{{text-align:right}}</style>{'<script src="plotly.min.js"></script>' if charts else ''}
</head><body><h1>INT8 suite run {html.escape(run_dir.name)}</h1>
<p>Profile <b>{html.escape(profile.name)}</b>: {html.escape(profile.description)}. Results database: {html.escape(str(db))}.</p>
<h2>Notebooks</h2><table><tr><th>notebook</th><th>seconds</th><th>status</th></tr>{''.join(rows)}</table>
{sections}
</body></html>"""
    dest = run_dir / "summary.html"
    tmp = dest.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, dest)
    _write_outcomes(run_dir, outcomes)
    return dest


def _write_outcomes(run_dir: Path, outcomes: list[NotebookOutcome]) -> None:
    """``outcomes.json``: how each notebook of the run went (read by ``--resume``, the summary and the dashboard)."""
    write_json(run_dir / "outcomes.json", [{"name": o.name, "seconds": o.seconds, "ok": o.ok, "error": o.error}
                                           for o in outcomes])


def summary_charts(db: Path, run_dir: Path) -> dict[str, str]:
    """The dashboard's default views as static charts for ``summary.html`` (Pareto front, speed-up, accuracy).

    The charts load one local copy of plotly.js written beside the page (``plotly.min.js``): offline, and shared
    by every chart of the page instead of one 4.9 MB copy each.
    """
    from nbutils.ui import dashboard

    try:
        data = dashboard.load(db)
    except Exception:  # noqa: BLE001 - a summary is written whatever the database holds
        return {}
    if not data.ok:
        return {}
    frame = data.frame[data.frame["run_id"] == run_dir.name]
    out: dict[str, str] = {}
    for title, build in (("Accuracy vs latency (Pareto front)", dashboard.pareto_view),
                         ("Speed-up over PyTorch eager FP32 and the best float engine", dashboard.speedup_view)):
        try:
            fig = build(frame)
        except NbUtilsError:
            continue
        out[title] = fig.to_html(full_html=False, include_plotlyjs=False)
    if out:
        from nbutils.ui.htmlexport import write_plotlyjs

        write_plotlyjs(run_dir)
    return out


def describe_parameters() -> str:
    """Every notebook's parameters with their help comments (for ``nbutils run --list``)."""
    lines = []
    for nb in discover():
        lines.append(f"{nb.name}:")
        for name, spec in nb.parameters.items():
            lines.append(f"  {name}: {spec.get('inferred_type_name')} = {spec.get('default')}  # {spec.get('help')}")
    return "\n".join(lines)


