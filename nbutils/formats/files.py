"""What ONNX and OpenVINO files have in common: checks that a model file is whole and reads nothing outside its folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbutils.core.errors import NbUtilsError


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
