"""Engines: one interface over PyTorch, ONNX Runtime and OpenVINO, and the grid that times them.

ONNX Runtime runs on its CPU, CUDA, TensorRT and OpenVINO providers.

* :mod:`~nbutils.engines.registry`: what each engine name means, defaults, ladders, grid validation;
* :mod:`~nbutils.engines.assets`: the model and its files, built on demand;
* :mod:`~nbutils.engines.runtimes`: the engines themselves; :mod:`~nbutils.engines.ort_session`: ONNX Runtime sessions;
* :mod:`~nbutils.engines.grid`, :mod:`~nbutils.engines.timing`, :mod:`~nbutils.engines.memory`: measuring;
* :mod:`~nbutils.engines.driver`: the benchmark shared by notebook 60 and ``python -m nbutils bench``.

The names below are re-exported so ``from nbutils import engines; engines.make_engine(...)`` reads as one idea.

May import: ``core``, ``store``, ``training``, ``quant``, ``formats``.
"""

from nbutils.engines.assets import Assets
from nbutils.engines.grid import GridResult, format_rows, measurements, run_grid, short
from nbutils.engines.registry import (
    CPU_DEFAULT,
    ENGINES,
    GPU_ALL,
    GPU_DEFAULT,
    LADDERS,
    EngineSpec,
    default_engines,
    engine_for_file,
    validate_grid,
)
from nbutils.engines.runtimes import Engine, OrtEngine, OvEngine, TorchEngine, compile_guard, make_engine

__all__ = [
    "CPU_DEFAULT", "ENGINES", "GPU_ALL", "GPU_DEFAULT", "LADDERS", "Assets", "Engine", "EngineSpec", "GridResult",
    "OrtEngine", "OvEngine", "TorchEngine", "compile_guard", "default_engines", "engine_for_file", "format_rows",
    "make_engine", "measurements", "run_grid", "short", "validate_grid",
]
