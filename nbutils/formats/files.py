"""What ONNX and OpenVINO model files have in common.

A *variant* is one model file in its own folder with a ``variant.json`` sidecar (recipe, precision, sha256, ops):
``model.onnx`` (:mod:`~nbutils.formats.to_onnx`) or ``model.xml`` + ``model.bin`` (:mod:`~nbutils.formats.to_openvino`).
Here, once for both: the :class:`Variant` record, its files, sha256 and size, operator counts, the checks that a
file is whole and reads nothing outside its folder, and verify/load of a folder written earlier.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbutils.core.errors import NbUtilsError
from nbutils.core.paths import read_json


def model_files(path: str | Path) -> list[Path]:
    """The files that make up a model: an IR's ``.xml`` and ``.bin``, or an ONNX file and its external data files."""
    path = Path(path)
    if path.suffix == ".xml":
        return [path, path.with_suffix(".bin")]
    return [path, *(path.parent / loc for loc in external_locations(path))] if path.is_file() else [path]


def external_locations(path: str | Path) -> list[str]:
    """The external-data files an ONNX file names (main graph), each once, in the order of first use."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception:  # noqa: BLE001 - an unreadable file has no known parts; check_model_file names the problem
        return []
    seen: dict[str, None] = {}
    for init in graph.initializer:
        if uses_external_data(init):
            seen.setdefault(ExternalDataInfo(init).location, None)
    return list(seen)


@dataclass
class Variant:
    """One model file (ONNX or OpenVINO IR) and its sidecar."""

    recipe: str
    precision: str
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def size_mb(self) -> float:
        """Size on disk in MB, every file of the model included (an IR's weights, ONNX external data)."""
        return sum(p.stat().st_size for p in model_files(self.path)) / 1e6


def sha256(path: str | Path) -> str:
    """One digest over every file of the model (:func:`model_files`), read in 1 MB chunks."""
    h = hashlib.sha256()
    for part in model_files(path):
        with part.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def op_counts(model: str | Path | Any) -> dict[str, int]:
    """Operator counts of an ONNX file, an IR file, or an in-memory ``openvino.Model``.

    An IR's ``FakeQuantize`` count is its number of INT8 quantization points.
    """
    if isinstance(model, (str, Path)) and Path(model).suffix == ".onnx":
        import onnx

        graph = onnx.load(str(model), load_external_data=False).graph
        return dict(Counter(n.op_type for n in graph.node))
    if isinstance(model, (str, Path)):
        import openvino

        model = openvino.Core().read_model(str(model))
    return dict(Counter(op.get_type_name() for op in model.get_ops()))


def check_external_data(model: Any, path: Path) -> None:
    """Every external-data file of ``model`` (read from ``path``) lies inside the model's folder and exists.

    A location such as ``../../etc/passwd`` is refused by onnx with a traceback; here it is a message first.
    """
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    folder = path.parent.resolve()
    for init in model.graph.initializer:
        if uses_external_data(init):
            location = ExternalDataInfo(init).location
            target = (folder / location).resolve()
            if Path(location).is_absolute() or not target.is_relative_to(folder):
                raise NbUtilsError(f"{path} points tensor {init.name!r} at external data {location!r}, outside the "
                                   "model's folder (refused: a model file must not read other files)",
                                   "use a model whose external data files sit beside it (export it again, or "
                                   "onnx.save_model(..., save_as_external_data=True, location='model.onnx.data'))")
            if not target.is_file():
                raise NbUtilsError(f"{path} keeps tensor {init.name!r} in an external data file {location!r}, "
                                   f"which is not beside it ({path.parent / location} does not exist)",
                                   f"copy {location} next to {path.name}, or export the model again")


def check_model_file(path: str | Path) -> None:
    """Raise a clear error for a missing, truncated or corrupt ONNX file."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise NbUtilsError(f"ONNX file {path} does not exist", "export it first (notebook 40) or fix the path")
    try:
        check_external_data(onnx.load(str(path), load_external_data=False), path)
    except NbUtilsError:
        raise
    except Exception:  # noqa: BLE001 - unreadable protobuf: the checker below names it
        pass
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf and checker errors alike
        raise NbUtilsError(f"{path} is not a valid ONNX model ({type(exc).__name__}: {str(exc)[:200]})",
                           "the file is corrupt or truncated: export it again (writes are atomic, so a fresh "
                           "export replaces it cleanly)") from exc


#: ``variant.json`` key of a variant whose model files were deleted after it was measured (:func:`release`).
RELEASED = "released"


def release(variant: Variant, why: str) -> float:
    """Delete a variant's model files after it was measured, keeping ``variant.json`` (which says why); MB freed.

    Its figures stay in the results database and its recorded outputs in the run's cache, so later notebooks
    still show its accuracy; what needs the file (timing it, drawing it) says it was not kept.
    """
    from nbutils.core.paths import write_json

    parts = [p for p in model_files(variant.path) if p.is_file()]
    freed = sum(p.stat().st_size for p in parts) / 1e6
    meta = {**read_json(variant.path.parent / "variant.json"), RELEASED: why}
    write_json(variant.path.parent / "variant.json", meta)
    for part in parts:
        part.unlink()
    return freed


def verify(folder: str | Path, model_file: str) -> str:
    """Empty if ``folder`` holds a whole ``model_file`` matching its ``variant.json``, else what is wrong with it."""
    folder = Path(folder)
    path = folder / model_file
    missing = [p for p in model_files(path) if not p.is_file()]
    if missing and (folder / "variant.json").is_file():
        why = read_json(folder / "variant.json").get(RELEASED)
        if why:
            return f"model file {path} was not kept after it was measured ({why})"
    if missing:
        return f"model file {path} is missing ({', '.join(p.name for p in missing)} does not exist)"
    try:
        meta = read_json(folder / "variant.json")
    except (OSError, ValueError) as exc:
        return f"variant folder {folder} has no readable variant.json ({type(exc).__name__})"
    if path.suffix == ".onnx":
        try:
            check_model_file(path)
        except NbUtilsError as exc:
            return f"cached export in {folder} is unusable: {exc.problem}"
    if meta.get("sha256") and sha256(path) != meta["sha256"]:
        return f"model file {path} does not match the sha256 in its variant.json (changed or corrupt)"
    return ""


def load(folder: str | Path, model_file: str) -> Variant:
    """Read a variant written earlier (its sidecar), checking first that its files are whole and unchanged."""
    folder = Path(folder)
    problem = verify(folder, model_file)
    if problem:
        raise NbUtilsError(problem, "export or convert it again (delete the folder: engines rebuild it); writes are "
                                    "atomic, so a fresh export replaces it cleanly")
    meta = read_json(folder / "variant.json")
    return Variant(meta["recipe"], meta["precision"], folder / model_file, meta)
