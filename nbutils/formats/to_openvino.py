"""The OpenVINO route: IR conversion, NNCF quantization (post-training, accuracy-controlled, QAT) and compiled models.

Files: every OpenVINO variant lives beside the ONNX file of the same recipe, in ``<run>/onnx/<recipe>/openvino/``,
written atomically like the ONNX variants: NNCF's models as IRs (``model.xml`` + ``model.bin`` + ``variant.json``
with the sha256 of both); converted ONNX files as a ``variant.json`` naming the ONNX file, which OpenVINO reads
directly (:func:`convert_onnx`: no second copy of the weights). Recipes (:mod:`nbutils.core.vocab`): ``fp32``
(the FP32 ONNX export converted), ``nncf-ptq`` (``nncf.quantize``, transformer preset), ``nncf-ptq-ac``
(``nncf.quantize_with_accuracy_control`` with a bound on the drop), ``nncf-qat`` (NNCF's PyTorch fake
quantization, fine-tuned, converted); any ModelOpt Q/DQ ONNX file (``ptq-...``, ``qat``) converts the same way, so
one file runs on two runtimes.

``openvino`` and ``nncf`` are used directly (four documented calls) rather than through ``optimum-intel``, which
would add another transformers-pinned layer beside optimum-onnx for no extra capability here.

Precision: on CPUs with AVX512-BF16/AMX, OpenVINO's default ``INFERENCE_PRECISION_HINT`` is **bf16**, i.e. an
"FP32" model silently runs in BF16. :func:`compile_model` sets ``f32`` unless told otherwise, and records the
precision the plugin reports, so an ``ov-cpu:fp32`` figure is FP32.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nbutils.core.errors import NbUtilsError
from nbutils.core.paths import atomic_path, read_json, write_json
from nbutils.formats import files
from nbutils.formats.files import Variant, op_counts
from nbutils.training.inputs import MODEL_INPUTS

if TYPE_CHECKING:
    import openvino

IR_FILE = "model.xml"
#: NNCF's ``OverflowFix`` values, and ``auto`` (the CPU's rule, :func:`nbutils.core.env.nncf_overflow_fix`).
OVERFLOW_FIXES = ("auto", "enable", "first_layer", "disable")
IR_FOLDER = "openvino"
#: Inputs of the exported BERT-family models, in the order the ONNX export declares them.


def _openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise NbUtilsError("OpenVINO is not installed in this environment",
                           "run `make install` (constraints.txt pins openvino and nncf)") from exc
    return openvino


def _nncf() -> Any:
    # NNCF's PyTorch backend compiles a small C++ extension on first use (~60 s on 2 busy cores); its default
    # 60 s load timeout fails on such machines, so allow more unless the user set it.
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "900")
    try:
        import nncf
    except ImportError as exc:
        raise NbUtilsError("NNCF is not installed in this environment",
                           "run `make install` (constraints.txt pins openvino and nncf)") from exc
    return nncf


def unavailable_reason() -> str:
    """Empty if OpenVINO's CPU plugin can run here, else why not (with the fix)."""
    try:
        ov = _openvino()
    except NbUtilsError as exc:
        return f"{exc.problem} (fix: {exc.fix})"
    if "CPU" not in ov.Core().available_devices:
        return "OpenVINO sees no CPU device"
    return ""


def ir_dir(run_dir: str | Path, recipe: str) -> Path:
    """The IR folder of ``recipe`` in a run folder: ``<run>/onnx/<recipe>/openvino`` (beside its ONNX file)."""
    from nbutils.core.vocab import variant_dir

    return variant_dir(run_dir, recipe) / IR_FOLDER


def fake_quantize_placement(model: openvino.Model) -> dict[str, int]:
    """What each ``FakeQuantize`` feeds: consumer operation type → count (where NNCF put INT8)."""
    out: Counter[str] = Counter()
    for op in model.get_ops():
        if op.get_type_name() != "FakeQuantize":
            continue
        for target in op.output(0).get_target_inputs():
            node = target.get_node()
            # Weights pass through Convert/Reshape/Transpose before the MatMul: follow them to the consumer.
            hops = 0
            while node.get_type_name() in ("Convert", "Reshape", "Transpose") and hops < 3:
                nxt = list(node.output(0).get_target_inputs())
                if not nxt:
                    break
                node = nxt[0].get_node()
                hops += 1
            out[node.get_type_name()] += 1
    return dict(out)


def _ir_info(model: openvino.Model, recipe: str, precision: str, fmt: str, meta: dict[str, Any] | None) -> dict[str, Any]:
    """The sidecar facts of an OpenVINO model: operator and FakeQuantize counts, versions, the CPU's INT8 ISA."""
    from nbutils.core import env

    ops = op_counts(model)
    return {"recipe": recipe, "precision": precision, "format": fmt,
            "versions": {**env.versions(), "openvino": _openvino().__version__},
            "int8_isa": env.int8_isa(runtime="openvino"), "fake_quantize": ops.get("FakeQuantize", 0),
            "matmuls": ops.get("MatMul", 0), "fake_quantize_feeds": fake_quantize_placement(model), "ops": ops,
            **(meta or {})}


def save_ir(model: openvino.Model, dest_dir: str | Path, *, recipe: str, precision: str,
            meta: dict[str, Any] | None = None) -> Variant:
    """Write ``model`` as ``dest_dir/model.xml`` + ``model.bin`` with ``variant.json``, atomically (FP32 weights kept)."""
    ov = _openvino()
    dest_dir = Path(dest_dir)
    with atomic_path(dest_dir, is_dir=True) as tmp:
        ov.save_model(model, str(tmp / IR_FILE), compress_to_fp16=False)
        xml = tmp / IR_FILE
        info = {**_ir_info(model, recipe, precision, "openvino-ir", meta),
                "size_mb": sum(f.stat().st_size for f in files.model_files(xml)) / 1e6, "sha256": files.sha256(xml)}
        write_json(tmp / "variant.json", info)
    return Variant(recipe, precision, dest_dir / IR_FILE, info)


#: ``variant.json`` format of an OpenVINO variant whose model is an ONNX file of the run (:func:`convert_onnx`).
ONNX_BACKED = "onnx, read by OpenVINO"
_ONNX_FILE = "model.onnx"  # the ONNX variants' file name (nbutils.formats.to_onnx.MODEL_FILE)


def _onnx_source(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """(ONNX file, sidecar) when ``folder`` is an ONNX-backed OpenVINO variant or an ONNX variant folder, else None."""
    if (folder / IR_FILE).is_file() or not (folder / "variant.json").is_file():
        return None
    try:
        meta = read_json(folder / "variant.json")
    except (OSError, ValueError):
        return None
    if meta.get("format") == ONNX_BACKED:
        return folder.parent / _ONNX_FILE, meta  # always the ONNX file of the variant folder it sits in
    if (folder / _ONNX_FILE).is_file():
        return folder / _ONNX_FILE, meta
    return None


def verify_ir(dest_dir: str | Path) -> str:
    """Empty if ``dest_dir`` holds a readable IR (or names an ONNX file) matching its sidecar, else what is wrong."""
    source = _onnx_source(Path(dest_dir))
    if source is None:
        return files.verify(dest_dir, IR_FILE)
    path, meta = source
    problem = files.verify(path.parent, _ONNX_FILE)
    if not problem and meta.get("sha256") and files.sha256(path) != meta["sha256"]:
        problem = f"{path} changed since OpenVINO's variant {dest_dir} was made from it"
    return problem


def int8_provenance(dest_dir: str | Path) -> dict[str, Any]:
    """What every figure of an IR carries about INT8 on this CPU: the ISA now, the ISA and overflow fix it was built for.

    ``overflow_fix`` is NNCF's setting for NNCF IRs, ``as exported`` for converted Q/DQ files (their weights keep
    the exporter's 8-bit grid: on a CPU without VNNI the plugin's kernels may saturate, which 42's parity shows).
    """
    from nbutils.core import env

    meta = read_json(Path(dest_dir) / "variant.json")
    fix = (meta.get("options") or {}).get("overflow_fix", "as exported" if meta.get("fake_quantize") else "n/a")
    return {"int8_isa": env.int8_isa(runtime="openvino"), "ir_int8_isa": meta.get("int8_isa", "unknown"),
            "overflow_fix": fix}


def load_ir(dest_dir: str | Path) -> tuple[openvino.Model, Variant]:
    """Read an IR written by :func:`save_ir`, or the ONNX file a folder names (:func:`convert_onnx`) or holds.

    A missing, corrupt or changed file is a clear error.
    """
    folder = Path(dest_dir)
    source = _onnx_source(folder)
    if source is None:
        variant = files.load(folder, IR_FILE)
    else:
        problem = verify_ir(folder)
        if problem:
            raise NbUtilsError(problem, "export the ONNX file again (notebook 40), then convert it (notebook 42)")
        path, meta = source
        variant = Variant(str(meta.get("recipe", "")), str(meta.get("precision", "")), path, meta)
    ov = _openvino()
    try:
        model = ov.Core().read_model(str(variant.path))
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses for parse errors
        raise NbUtilsError(f"OpenVINO cannot read {variant.path}: {str(exc).splitlines()[0][:200]}",
                           "the IR is corrupt: delete the folder and convert again") from exc
    return model, variant


def convert_onnx(onnx_path: str | Path, dest_dir: str | Path, *, recipe: str, precision: str,
                 meta: dict[str, Any] | None = None) -> Variant:
    """OpenVINO's model of an ONNX file (FP32 export or a Q/DQ INT8 file): ``ov.convert_model``, input names kept.

    Q/DQ pairs become ``FakeQuantize`` operations, which the CPU plugin runs as INT8 kernels. No IR is written:
    OpenVINO reads ONNX files directly, through the frontend ``convert_model`` uses, so an IR would be a second
    copy of weights the run already keeps (91 MB for all-MiniLM-L6-v2's FP32 export, 24 MB per Q/DQ file).
    ``dest_dir`` gets a ``variant.json`` naming the ONNX file (its sha256) with the converted model's operator
    and FakeQuantize counts; :func:`load_ir` and :func:`compile_model` read the ONNX file. NNCF's models, which
    exist nowhere else, are saved as IRs (:func:`save_ir`); ``ov.save_model(convert_onnx(...) ...)`` in a
    notebook writes one for any file.
    """
    from nbutils.formats.files import check_model_file

    onnx_path = Path(onnx_path)
    check_model_file(onnx_path)
    ov = _openvino()
    model = ov.convert_model(str(onnx_path))
    dest_dir = Path(dest_dir)
    info = {**_ir_info(model, recipe, precision, ONNX_BACKED,
                       {"source": str(onnx_path), "converter": "openvino.convert_model (ONNX)", **(meta or {})}),
            "onnx_file": f"../{onnx_path.name}", "size_mb": Variant("", "", onnx_path).size_mb,
            "sha256": files.sha256(onnx_path)}
    if onnx_path.parent.resolve() != dest_dir.parent.resolve() or onnx_path.name != _ONNX_FILE:
        raise NbUtilsError(f"OpenVINO's variant of {onnx_path} must sit in that file's folder ({dest_dir} does not)",
                           "pass ir_dir(run_dir, recipe) for the ONNX file of that recipe")
    with atomic_path(dest_dir, is_dir=True) as tmp:
        write_json(tmp / "variant.json", info)
    return Variant(recipe, precision, onnx_path, info)


def feeds_for(model: openvino.Model, batches: Iterable[dict[str, np.ndarray]], *, per_sentence: bool = True
              ) -> list[dict[str, np.ndarray]]:
    """Calibration items for NNCF from encoded batches: one sentence per item, padding trimmed.

    One sentence per item keeps NNCF's ``subset_size`` a count of sentences; trimming the padding keeps the
    statistics those of real tokens.
    """
    names = [i.get_any_name() for i in model.inputs]
    out: list[dict[str, np.ndarray]] = []
    for b in batches:
        if not per_sentence:
            out.append({n: np.asarray(b[n]) for n in names})
            continue
        mask = np.asarray(b["attention_mask"])
        for i in range(mask.shape[0]):
            length = max(int(mask[i].sum()), 2)
            out.append({n: np.asarray(b[n])[i:i + 1, :length] for n in names})
    return out


@dataclass
class NncfOptions:
    """Knobs of ``nncf.quantize`` that move speed or accuracy (defaults = NNCF's transformer defaults).

    Attributes:
        preset: ``mixed`` (symmetric weights, asymmetric activations: NNCF's transformer default) or ``performance``.
        smooth_quant_alpha: SmoothQuant's migration strength for MatMuls; negative turns SmoothQuant off,
            ``None`` keeps NNCF's default (0.95 for the transformer model type).
        fast_bias_correction: NNCF's fast bias correction (default on); off is the slower full bias correction.
        ignored_patterns: regular expressions of node names kept in floating point (``nncf.IgnoredScope``).
        subset_size: calibration sentences used (at most as many as given; at least 1).
        overflow_fix: NNCF's ``OverflowFix``: ``enable`` (7-bit weights everywhere), ``first_layer`` (NNCF's own
            default), ``disable``, or ``auto`` (default): chosen from this CPU's INT8 instructions by
            :func:`nbutils.core.env.nncf_overflow_fix` (``enable`` without VNNI/AMX, where 8-bit weights saturate).

    """

    preset: str = "mixed"
    smooth_quant_alpha: float | None = None
    fast_bias_correction: bool = True
    ignored_patterns: list[str] = field(default_factory=list)
    subset_size: int = 300
    overflow_fix: str = "auto"

    def resolved_overflow_fix(self) -> str:
        """The overflow fix NNCF is given: ``overflow_fix``, or this CPU's rule when it is ``auto``."""
        from nbutils.core import env

        return env.nncf_overflow_fix() if self.overflow_fix == "auto" else self.overflow_fix

    def check(self) -> None:
        """Raise a clear error for a value NNCF would reject late or that makes no sense (before any work)."""
        if self.preset not in ("mixed", "performance"):
            raise NbUtilsError(f"unknown NNCF preset {self.preset!r}", "use 'mixed' or 'performance'")
        if self.overflow_fix not in OVERFLOW_FIXES:
            raise NbUtilsError(f"unknown NNCF overflow_fix {self.overflow_fix!r}",
                               f"use one of: {', '.join(OVERFLOW_FIXES)}")
        if isinstance(self.subset_size, bool) or not isinstance(self.subset_size, int) or self.subset_size < 1:
            raise NbUtilsError(f"NNCF subset_size={self.subset_size!r} is not a positive number of sentences",
                               "use e.g. subset_size=300")
        alpha = self.smooth_quant_alpha
        if alpha is not None and (not math.isfinite(alpha) or alpha > 1):
            raise NbUtilsError(f"NNCF smooth_quant_alpha={alpha!r} is not a migration strength",
                               "use a number in [0, 1] (e.g. 0.95), or a negative one to turn SmoothQuant off")
        for p in self.ignored_patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise NbUtilsError(f"ignored pattern {p!r} is not a regular expression ({exc})",
                                   "escape special characters, e.g. '.*attention.*MatMul.*'") from exc

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``nncf.quantize`` / ``quantize_with_accuracy_control``."""
        nncf = _nncf()
        from nncf.quantization.advanced_parameters import (
            AdvancedQuantizationParameters,
            AdvancedSmoothQuantParameters,
            OverflowFix,
        )

        self.check()
        out: dict[str, Any] = {"model_type": nncf.ModelType.TRANSFORMER, "subset_size": self.subset_size,
                               "preset": nncf.QuantizationPreset.MIXED if self.preset == "mixed"
                               else nncf.QuantizationPreset.PERFORMANCE,
                               "fast_bias_correction": self.fast_bias_correction}
        if self.ignored_patterns:
            out["ignored_scope"] = nncf.IgnoredScope(patterns=list(self.ignored_patterns), validate=False)
        fix = self.resolved_overflow_fix()
        advanced: dict[str, Any] = {"overflow_fix": OverflowFix("first_layer_only" if fix == "first_layer" else fix)}
        if self.smooth_quant_alpha is not None:
            advanced["smooth_quant_alphas"] = AdvancedSmoothQuantParameters(matmul=self.smooth_quant_alpha)
        out["advanced_parameters"] = AdvancedQuantizationParameters(**advanced)
        return out

    @classmethod
    def parse(cls, items: Sequence[str]) -> NncfOptions:
        """Options from ``NAME=VALUE`` strings (the bench CLI's ``--nncf``); bad input is a clear error."""
        out = cls()
        for item in items:
            name, sep, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in cls.__dataclass_fields__:
                raise NbUtilsError(f"--nncf {item!r} is not NAME=VALUE with a known name",
                                   f"use one of: {', '.join(cls.__dataclass_fields__)}")
            try:
                if name in ("preset", "overflow_fix"):
                    setattr(out, name, value.strip().lower())
                elif name == "smooth_quant_alpha":
                    setattr(out, name, float(value))
                elif name == "subset_size":
                    setattr(out, name, int(value))
                elif name == "fast_bias_correction":
                    if value.lower() not in ("true", "false"):
                        raise ValueError(value)
                    setattr(out, name, value.lower() == "true")
                else:
                    setattr(out, name, [p for p in value.split(";") if p])
            except ValueError:
                raise NbUtilsError(f"--nncf {item!r}: {value!r} is not a valid value for {name}",
                                   "e.g. smooth_quant_alpha=0.5, subset_size=300, fast_bias_correction=false, "
                                   "overflow_fix=enable") from None
        out.check()
        return out

    def as_meta(self) -> dict[str, Any]:
        """JSON-able description (stored in the IR's sidecar and with every figure)."""
        return {"preset": self.preset, "smooth_quant_alpha": self.smooth_quant_alpha,
                "fast_bias_correction": self.fast_bias_correction, "ignored_patterns": list(self.ignored_patterns),
                "subset_size": self.subset_size, "overflow_fix": self.resolved_overflow_fix(),
                "overflow_fix_from": "this CPU's INT8 instructions" if self.overflow_fix == "auto" else "set by the user"}


def nncf_ptq(fp32_dir: str | Path, calib: Sequence[dict[str, np.ndarray]], dest_dir: str | Path, *,
             options: NncfOptions | None = None, recipe: str = "nncf-ptq") -> Variant:
    """``nncf.quantize`` the FP32 IR in ``fp32_dir`` with calibration batches; write the INT8 IR to ``dest_dir``."""
    from nbutils.core.quiet import quiet

    options = options or NncfOptions()
    nncf = _nncf()
    model, src = load_ir(fp32_dir)
    items = feeds_for(model, calib)
    if not items:
        raise NbUtilsError("no calibration sentences for NNCF", "pass training batches (calib_samples > 0)")
    kwargs = options.kwargs() | {"subset_size": min(options.subset_size, len(items))}
    with quiet(loggers=["nncf"]):
        q = nncf.quantize(model, nncf.Dataset(items), **kwargs)
    return save_ir(q, dest_dir, recipe=recipe, precision="int8",
                   meta={"source": str(src.path), "tool": "nncf.quantize", "nncf": nncf.__version__,
                         "calibration_sentences": kwargs["subset_size"], "options": options.as_meta()})


def nncf_ptq_accuracy_control(fp32_dir: str | Path, calib: Sequence[dict[str, np.ndarray]],
                              held_out: Sequence[dict[str, np.ndarray]],
                              score: Callable[[Callable[[dict[str, np.ndarray]], Any], list[dict[str, np.ndarray]]], float],
                              dest_dir: str | Path, *, max_drop: float, options: NncfOptions | None = None,
                              recipe: str = "nncf-ptq-ac") -> Variant:
    """``nncf.quantize_with_accuracy_control``: quantize, then revert harmful operations within a drop bound.

    Reverts the most harmful operations to floating point until the drop on ``held_out`` (training sentences, never
    the evaluation split) is at most ``max_drop`` points. ``score(predict, batches)`` returns the metric in points
    for a predictor over labelled batches.
    """
    from nbutils.core.quiet import quiet

    if max_drop <= 0:
        raise NbUtilsError(f"max_drop={max_drop}: accuracy control needs a positive bound (points)",
                           "use e.g. max_drop=0.5, or nncf_ptq without accuracy control")
    options = options or NncfOptions()
    nncf = _nncf()
    model, src = load_ir(fp32_dir)
    items = feeds_for(model, calib)
    names = [i.get_any_name() for i in model.inputs]
    held = list(held_out)

    def validate(compiled: Any, data: Iterable[Any]) -> float:
        request = compiled.create_infer_request()

        def predict(batch: dict[str, np.ndarray]) -> Any:
            res = request.infer({n: batch[n] for n in names})
            return res[compiled.outputs[0]] if len(compiled.outputs) == 1 else tuple(res[o] for o in compiled.outputs)

        return float(score(predict, list(data)))

    kwargs = options.kwargs() | {"subset_size": min(options.subset_size, len(items))}
    if "advanced_parameters" in kwargs:  # this entry point names it differently
        kwargs["advanced_quantization_parameters"] = kwargs.pop("advanced_parameters")
    with quiet(loggers=["nncf"]):
        q = nncf.quantize_with_accuracy_control(
            model, nncf.Dataset(items), nncf.Dataset(held), validate, max_drop=max_drop,
            drop_type=nncf.DropType.ABSOLUTE, **kwargs)
    return save_ir(q, dest_dir, recipe=recipe, precision="int8",
                   meta={"source": str(src.path), "tool": "nncf.quantize_with_accuracy_control",
                         "nncf": nncf.__version__, "max_drop_points": max_drop, "held_out_batches": len(held),
                         "calibration_sentences": kwargs["subset_size"], "options": options.as_meta()})


def nncf_qat_model(model: Any, calib: Sequence[dict[str, np.ndarray]], *, options: NncfOptions | None = None) -> Any:
    """Insert NNCF's fake quantizers into a PyTorch model (initialised from ``calib``), ready to fine-tune.

    The result is the same module with NNCF's hooks; train it with :func:`nbutils.training.models.fine_tune`, then
    :func:`torch_to_ir` converts it (its quantizers become ``FakeQuantize`` operations).
    """
    from nbutils.core.device import model_device, to_device
    from nbutils.core.quiet import quiet

    options = options or NncfOptions()
    nncf = _nncf()
    # the calibration items sit where the model is: on a GPU, NNCF initialises and trains its quantizers there
    items = [to_device(b, model_device(model)) for b in feeds_for_torch(calib)]
    kwargs = options.kwargs() | {"subset_size": min(options.subset_size, len(items))}
    model.eval()
    with quiet(loggers=["nncf"]):
        return nncf.quantize(model, nncf.Dataset(items), **kwargs)


def feeds_for_torch(batches: Iterable[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """One sentence per item, padding trimmed, model inputs only (the PyTorch twin of :func:`feeds_for`)."""
    out = []
    for b in batches:
        mask = np.asarray(b["attention_mask"])
        for i in range(mask.shape[0]):
            length = max(int(mask[i].sum()), 2)
            out.append({k: np.asarray(b[k])[i:i + 1, :length] for k in MODEL_INPUTS if k in b})
    return out


def torch_to_ir(model: Any, dest_dir: str | Path, *, recipe: str, precision: str,
                meta: dict[str, Any] | None = None) -> Variant:
    """Convert a PyTorch model (plain or NNCF-quantized) to IR, naming the inputs as the ONNX export does.

    A model on the GPU is converted from a CPU copy (the frontend traces with CPU example inputs).
    """
    import torch

    from nbutils.core.device import cpu_copy
    from nbutils.training.inputs import synthetic_batch

    model = cpu_copy(model)
    ov = _openvino()
    example = {k: torch.as_tensor(v) for k, v in synthetic_batch(2, 16).items() if k in MODEL_INPUTS}
    from nbutils.core.quiet import quiet

    model.eval()
    # The frontend traces the model; NNCF's quantizers read their levels as Python numbers (constants by design).
    with torch.no_grad(), quiet(categories=[torch.jit.TracerWarning, UserWarning]):
        converted = ov.convert_model(model, example_input=example)
    # The PyTorch frontend may name an input after the traced value (seen: '64' for attention_mask); the inputs
    # follow the example's keyword order, so name them as the ONNX export does.
    for port, name in zip(converted.inputs, example, strict=True):
        port.get_tensor().set_names({name})
    return save_ir(converted, dest_dir, recipe=recipe, precision=precision,
                   meta={"converter": "openvino.convert_model (PyTorch)", **(meta or {})})


def save_nncf_torch(model: Any, dest: str | Path, meta: dict[str, Any]) -> Path:
    """Save an NNCF-quantized PyTorch model's quantizer config and weights (``nncf.torch.load_from_config`` reloads)."""
    import torch

    _nncf()  # the clear error if NNCF is missing
    import nncf.torch

    dest = Path(dest)
    with atomic_path(dest) as tmp:
        torch.save({"nncf_config": nncf.torch.get_config(model), "state_dict": model.state_dict(), "meta": meta}, tmp)
    return dest


@dataclass
class Compiled:
    """A compiled OpenVINO model and the settings the plugin actually applied."""

    model: Any
    settings: dict[str, Any]

    @property
    def input_names(self) -> list[str]:
        """Input names of the model."""
        return [i.get_any_name() for i in self.model.inputs]


def compile_model(source: str | Path | Any, *, hint: str = "LATENCY", precision: str = "f32", streams: int = 0,
                  threads: int = 0) -> Compiled:
    """Compile an IR folder, ``.xml`` or ``.onnx`` path, or ``ov.Model`` for the CPU.

    Args:
        source: IR folder (or one :func:`convert_onnx` wrote) / ``model.xml`` / ``model.onnx`` / an ``openvino.Model``.
        hint: ``LATENCY`` (one stream, all cores on one request) or ``THROUGHPUT`` (several streams).
        precision: ``f32`` (default: FP32 where not INT8) or ``bf16`` (the plugin's own default on BF16 CPUs).
        streams: ``NUM_STREAMS`` (0: what the hint picks).
        threads: ``INFERENCE_NUM_THREADS`` (0: the plugin's default).

    """
    ov = _openvino()
    if hint not in ("LATENCY", "THROUGHPUT"):
        raise NbUtilsError(f"unknown performance hint {hint!r}", "use 'LATENCY' or 'THROUGHPUT'")
    if precision not in ("f32", "bf16"):
        raise NbUtilsError(f"unknown inference precision {precision!r}", "use 'f32' or 'bf16'")
    if isinstance(source, (str, Path)):
        folder = Path(source).parent if str(source).endswith((".xml", ".onnx")) else Path(source)
        source, _ = load_ir(folder)
    config: dict[str, Any] = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": precision}
    if streams:
        config["NUM_STREAMS"] = str(streams)
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    core = ov.Core()
    compiled = core.compile_model(source, "CPU", config)
    settings = {"runtime": f"openvino {ov.__version__}", "ov_hint": hint,
                "ov_precision": _type_name(compiled.get_property("INFERENCE_PRECISION_HINT")),
                "ov_streams": str(compiled.get_property("NUM_STREAMS")),
                "ov_threads": int(compiled.get_property("INFERENCE_NUM_THREADS")),
                "ov_requests": int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")),
                "ov_capabilities": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))}
    return Compiled(compiled, settings)


def predictor(compiled: Compiled) -> Callable[[dict[str, np.ndarray]], Any]:
    """A predictor (numpy batch in, logits or a start/end pair out) over one infer request."""
    request = compiled.model.create_infer_request()
    names = compiled.input_names
    outputs = list(compiled.model.outputs)

    def predict(batch: dict[str, np.ndarray]) -> Any:
        res = request.infer({n: np.asarray(batch[n]) for n in names})
        vals = [np.asarray(res[o]) for o in outputs]
        return vals[0] if len(vals) == 1 else tuple(vals)

    return predict


def _type_name(value: Any) -> str:
    """``f32`` / ``bf16`` from an ``openvino.Type`` (its ``str`` is ``<Type: 'float32'>``)."""
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def _rt(value: Any) -> str:
    return value.astype(str) if hasattr(value, "astype") else str(value)


def runtime_kernels(compiled: Compiled) -> list[dict[str, Any]]:
    """What the CPU plugin runs: one row per (layer type, runtime precision, primitive) with its count.

    Read from the compiled model's runtime graph, so it shows the kernels chosen on *this* CPU (e.g. a MatMul
    that became an INT8 ``FullyConnected`` with a ``brgemm_avx512_vnni``/``jit_...I8`` primitive), not a guess.
    """
    counts: Counter[tuple[str, str, str]] = Counter()
    for op in compiled.model.get_runtime_model().get_ops():
        rt = op.get_rt_info()
        counts[(_rt(rt["layerType"]), _rt(rt["runtimePrecision"]), _rt(rt["primitiveType"]))] += 1
    return [{"layer": k[0], "precision": k[1], "primitive": k[2], "count": n}
            for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
