"""Model assets: the PyTorch model and the ONNX/IR files engines need, exported on demand into one folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nbutils.core.errors import NbUtilsError

# ---------------------------------------------------------------------------------------------
# Model assets: the PyTorch model and the ONNX files, exported on demand into one folder.


@dataclass
class Assets:
    """Everything engines need for one model, built lazily and cached in ``folder``.

    Args:
        model: model spec or checkpoint folder.
        folder: where ONNX files go (``<run>/bench/<model>``); files already there (e.g. from notebook 40) are reused.
        task: ``classification`` or ``qa``.
        num_labels: classes of the classification head.
        calib: calibration batches for ModelOpt PTQ and Optimum static quantization.
        ptq_model: an already-quantized ModelOpt model (e.g. notebook 20's best); else calibrated here with
            ``percentile-99.99`` on ``calib``.
        onnx_dirs: recipe -> existing variant folder (notebook 40's; its ``openvino/`` IR from notebook 42) to
            reuse instead of exporting.
        ptq_recipe: the recipe recorded for figures of the ``ptq`` file (the ``int8-qdq`` engines).
        nncf: NNCF options for an ``nncf-ptq`` IR built here (``None``: NNCF's transformer defaults).

    """

    model: str
    folder: Path
    task: str = "classification"
    num_labels: int = 2
    calib: list[dict[str, np.ndarray]] = field(default_factory=list)
    ptq_model: Any = None
    onnx_dirs: dict[str, Path] = field(default_factory=dict)
    nncf: Any = None
    ptq_recipe: str = "ptq"  # the recipe of the ModelOpt PTQ file behind the ``ptq`` engines (e.g. ptq-percentile-99.9)
    _cache: dict[str, Any] = field(default_factory=dict)

    def torch_model(self, attn: str = "sdpa") -> Any:
        """The FP32 PyTorch model (cached)."""
        from nbutils.training.models import load_model

        key = f"torch-{attn}"
        if key not in self._cache:
            self._cache[key] = load_model(self.model, task=self.task, num_labels=self.num_labels, attn_implementation=attn)
        return self._cache[key]

    def quantized(self) -> Any:
        """The ModelOpt PTQ model (given, or calibrated here)."""
        from nbutils import quant

        if self.ptq_model is None:
            if not self.calib:
                raise NbUtilsError("INT8 Q/DQ engines need calibration batches or a PTQ model",
                                   "pass calib (training batches) or ptq_model to Assets")
            self.ptq_model, _ = quant.quantize_ptq(self.torch_model(), self.calib, quant.Recipe("percentile-99.99"))
        return self.ptq_model

    def onnx(self, recipe: str) -> Path:
        """Path of the ONNX variant ``recipe``, exported on first use.

        Recipes: fp32, fp32-fused, fp16, ort-dynamic, ort-dynamic-fused, ort-static-<calibrator>, ptq.
        """
        from nbutils.formats import to_onnx

        given = Path(self.onnx_dirs[recipe]) if recipe in self.onnx_dirs else None
        if given is not None and (given / to_onnx.MODEL_FILE).is_file():
            problem = to_onnx.verify_variant(given)
            if not problem:
                return given / to_onnx.MODEL_FILE
            print(f"warning: {problem}; exporting a fresh copy into {self.folder / recipe} (delete {given} to rebuild "
                  "it there)")
        dest = self.folder / recipe
        if (dest / "variant.json").is_file():
            problem = to_onnx.verify_variant(dest)
            if not problem:
                return to_onnx.load_variant(dest).path
            print(f"warning: {problem}; rebuilding it")
        cfg = self.torch_model().config
        if recipe == "fp32":
            v = to_onnx.export_torch(self.torch_model("eager"), dest, recipe="fp32", precision="fp32", source=self.model,
                                    task=self.task)
        elif recipe in ("fp32-fused", "fp16"):
            src = to_onnx.load_variant(self.onnx("fp32").parent)
            v, _ = to_onnx.optimize_transformer(src, dest, num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size,
                                               recipe=recipe, fp16=recipe == "fp16")
        elif recipe == "ort-dynamic":
            v = to_onnx.ort_dynamic(to_onnx.load_variant(self.onnx("fp32").parent), dest)
        elif recipe == "ort-dynamic-fused":
            v = to_onnx.ort_dynamic(to_onnx.load_variant(self.onnx("fp32-fused").parent), dest, recipe="ort-dynamic")
        elif recipe.startswith("ort-static-"):
            from nbutils.engines.ort_session import make_session

            src = to_onnx.load_variant(self.onnx("fp32").parent)
            ds = to_onnx.calibration_dataset(self.calib, make_session(src.path).input_names)
            v = to_onnx.ort_static(src, dest, ds, calibrator=recipe.removeprefix("ort-static-"))
        elif recipe == "ptq":
            v = to_onnx.export_torch(self.quantized(), dest, recipe="ptq", precision="int8", source=self.model, task=self.task)
        else:
            raise NbUtilsError(f"no ONNX route for recipe {recipe!r}", "see nbutils.engines.Assets.onnx")
        return v.path

    def openvino(self, recipe: str) -> Path:
        """Folder of the OpenVINO IR of ``recipe`` (``fp32``, ``nncf-ptq``, or any ONNX recipe), built on first use.

        Notebook 42's IRs (``<run>/onnx/<recipe>/openvino``) are reused when they verify; ``nncf-ptq`` is built
        here from the FP32 IR with ``calib`` (NNCF's transformer preset, or ``nncf``'s options).
        """
        from nbutils.formats import to_openvino

        given = Path(self.onnx_dirs[recipe]) / to_openvino.IR_FOLDER if recipe in self.onnx_dirs else None
        if given is not None and (given / "variant.json").is_file():
            problem = to_openvino.verify_ir(given)
            if not problem:
                return given
            print(f"warning: {problem}; converting a fresh copy into {self.folder / recipe}")
        dest = self.folder / recipe / to_openvino.IR_FOLDER
        if (dest / "variant.json").is_file():
            problem = to_openvino.verify_ir(dest)
            if not problem:
                return dest
            print(f"warning: {problem}; rebuilding it")
        if recipe == "nncf-ptq":
            if not self.calib:
                raise NbUtilsError("the nncf-ptq IR needs calibration batches", "pass calib (training batches) to Assets")
            to_openvino.nncf_ptq(self.openvino("fp32"), self.calib, dest, options=self.nncf)
        elif recipe.startswith("nncf-"):
            raise NbUtilsError(f"no IR for {recipe!r} in this run", "run notebook 42 (it trains and converts it)")
        else:  # OpenVINO reads the ONNX file itself: its variant sits beside it
            path = self.onnx(recipe)
            from nbutils.formats.to_onnx import load_variant

            dest = path.parent / to_openvino.IR_FOLDER
            to_openvino.convert_onnx(path, dest, recipe=recipe, precision=load_variant(path.parent).precision)
        return dest
