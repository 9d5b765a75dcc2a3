"""INT8 quantization in PyTorch with NVIDIA ModelOpt: placement, calibrators, QAT and distillation.

ModelOpt (``nvidia-modelopt``) is the maintained successor of NVIDIA's pytorch-quantization
(whose PyPI package is only a placeholder). Its ``TensorQuantizer`` modules fake-quantize
tensors in PyTorch (with a straight-through estimator for training) and export to ONNX as
QuantizeLinear/DequantizeLinear pairs, which TensorRT runs as real INT8.

Placement (:class:`Placement`) follows TensorRT's rules for BERT by default: INT8 symmetric,
per-channel weights, per-tensor activations at every linear input, both attention matmuls
(Q·Kᵀ and softmax·V, including the softmax output), and the LayerNorm inputs (the residual sums);
embeddings and the task head stay in floating point.

Calibration collects one histogram per activation quantizer in a single streamed pass
(2048 bins, batches fed one at a time, so memory is bounded on BERT-base too), then derives
each method's range from the same histograms: max, percentile, entropy (KL) and MSE.
"""

from __future__ import annotations

import copy
import math
import re
import time
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nbutils.errors import NbUtilsError
from nbutils.paths import atomic_path, read_json, write_json
from nbutils.vocab import main_metric

if TYPE_CHECKING:
    import pandas as pd
    import torch

#: Calibration methods by name -> (ModelOpt histogram method, keyword arguments).
CALIBRATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "max": ("max", {}),
    "percentile-99.9": ("percentile", {"percentile": 99.9}),
    "percentile-99.99": ("percentile", {"percentile": 99.99}),
    "percentile-99.999": ("percentile", {"percentile": 99.999}),
    # stride 4 over 2048 bins: KL search in ~0.6 s per quantizer instead of ~2.6 s, same range within a bin or two
    "entropy": ("entropy", {"stride": 4}),
    "mse": ("mse", {"stride": 8}),  # stride 8: ~0.1 s per quantizer
}

#: Regexes (re.search on quantizer names) of the named placement presets.
FFN_PATTERNS = (r"\.intermediate\.dense\.", r"layer\.\d+\.output\.dense\.")
DEFAULT_KEEP_FLOAT = (r"embeddings\.", r"(^|\.)classifier\.", r"(^|\.)qa_outputs\.", r"(^|\.)pooler\.")


@dataclass(frozen=True)
class Placement:
    """Where quantizers are enabled. Each switch maps to a group of ModelOpt quantizers.

    Attributes:
        per_channel_weights: per-output-channel weight scales (else one scale per tensor).
        linear_inputs: quantize every linear layer's input.
        attention_matmuls: quantize Q, K, V and the softmax output (both attention matmuls).
        residual_inputs: quantize LayerNorm inputs (the residual sums).
        keep_float: name regexes kept in floating point (embeddings and head by default).
        only: if set, only quantizers whose layer name matches one of these regexes stay on.

    """

    per_channel_weights: bool = True
    linear_inputs: bool = True
    attention_matmuls: bool = True
    residual_inputs: bool = True
    keep_float: tuple[str, ...] = DEFAULT_KEEP_FLOAT
    only: tuple[str, ...] = ()


PLACEMENTS: dict[str, Placement] = {
    "trt-bert": Placement(),
    "per-tensor": Placement(per_channel_weights=False),
    "ffn-only": Placement(attention_matmuls=False, residual_inputs=False, only=FFN_PATTERNS),
    "linear-only": Placement(attention_matmuls=False, residual_inputs=False),
}


@dataclass(frozen=True)
class Recipe:
    """A named PTQ recipe: calibrator + placement. Its name is ``ptq-<calibrator>[-<placement>]``."""

    calibrator: str = "max"
    placement: str = "trt-bert"

    @property
    def name(self) -> str:
        """Recipe name as stored in the results database."""
        suffix = "" if self.placement == "trt-bert" else f"-{self.placement}"
        return f"ptq-{self.calibrator}{suffix}"

    def validate(self) -> None:
        """Raise a clear error for an unknown calibrator or placement."""
        if self.calibrator not in CALIBRATORS:
            raise NbUtilsError(f"unknown calibrator {self.calibrator!r}", f"use one of: {', '.join(CALIBRATORS)}")
        if self.placement not in PLACEMENTS:
            raise NbUtilsError(f"unknown placement {self.placement!r}", f"use one of: {', '.join(PLACEMENTS)}")


def parse_recipe(name: str) -> Recipe:
    """``"ptq-percentile-99.99-per-tensor"`` -> Recipe; unknown names get a clear error."""
    if not name.startswith("ptq-"):
        raise NbUtilsError(f"unknown recipe {name!r}", "PTQ recipes are ptq-<calibrator>[-<placement>], e.g. "
                                                         "ptq-percentile-99.99 or ptq-max-ffn-only")
    rest = name[4:]
    for cal in sorted(CALIBRATORS, key=len, reverse=True):
        if rest == cal or rest.startswith(cal + "-"):
            placement = rest[len(cal) + 1:] or "trt-bert"
            recipe = Recipe(cal, placement)
            recipe.validate()
            return recipe
    raise NbUtilsError(f"unknown recipe {name!r} (calibrator not recognised)",
                       f"calibrators: {', '.join(CALIBRATORS)}; placements: {', '.join(PLACEMENTS)}")


def _modelopt_config(placement: Placement) -> dict[str, Any]:
    import modelopt.torch.quantization as mtq

    w_axis = 0 if placement.per_channel_weights else None
    hist = {"num_bits": 8, "axis": None, "calibrator": "histogram"}
    entries: list[dict[str, Any]] = [
        {"quantizer_name": "*", "enable": False},
        {"quantizer_name": "*weight_quantizer", "cfg": {"num_bits": 8, "axis": w_axis}},
        {"quantizer_name": "*input_quantizer", "cfg": hist},
        # ModelOpt's SDPA patch adds q/k/v_bmm_quantizers; INT8_DEFAULT_CFG leaves them off.
        {"quantizer_name": "*bmm_quantizer", "cfg": hist},
    ]
    entries += copy.deepcopy(mtq.config._default_disabled_quantizer_cfg)
    return {"quant_cfg": entries, "algorithm": None}


def _explicit_attention_forward(self: Any, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                                head_mask: Any = None, encoder_hidden_states: Any = None, past_key_values: Any = None,
                                output_attentions: bool = False, cache_position: Any = None,
                                **kwargs: Any) -> tuple[torch.Tensor, None]:
    """BERT self-attention with Q/DQ on Q, K, V *and* the softmax output (QDQBERT's placement).

    Written by hand because ModelOpt's SDPA patch cannot reach inside the fused SDPA call: its
    softmax output (the first input of softmax·V) is never quantized there. Encoder
    self-attention only (BERT classification / QA); caches and cross-attention are rejected.
    """
    import torch

    if encoder_hidden_states is not None or past_key_values is not None or head_mask is not None:
        raise NbUtilsError("quantized attention supports encoder self-attention only",
                           "use a BERT-family encoder (no cross-attention, cache or head mask)")
    b, t, _ = hidden_states.shape

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(b, t, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    q = self.q_bmm_quantizer(heads(self.query(hidden_states)))
    k = self.k_bmm_quantizer(heads(self.key(hidden_states)))
    v = self.v_bmm_quantizer(heads(self.value(hidden_states)))
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.attention_head_size)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    probs = self.softmax_quantizer(torch.softmax(scores, dim=-1))
    probs = self.dropout(probs) if self.training else probs
    ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, self.all_head_size)
    return ctx, None


def _attention_modules(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if hasattr(m, "q_bmm_quantizer") and hasattr(m, "query")]


def insert_quantizers(model: torch.nn.Module, placement: Placement | str = "trt-bert") -> torch.nn.Module:
    """Insert ModelOpt quantizers into ``model`` (in place) and enable them per ``placement``.

    Returns the model. Raises :class:`NbUtilsError` if a pattern matches no layer or nothing
    would be quantized (never a silent FP32 model).
    """
    import modelopt.torch.quantization as mtq
    from modelopt.torch.quantization.config import QuantizerAttributeConfig
    from modelopt.torch.quantization.nn import TensorQuantizer

    if isinstance(placement, str):
        if placement not in PLACEMENTS:
            raise NbUtilsError(f"unknown placement {placement!r}", f"use one of: {', '.join(PLACEMENTS)}")
        placement = PLACEMENTS[placement]
    model = mtq.quantize(model, _modelopt_config(placement), forward_loop=None)
    for _, attn in _attention_modules(model):
        attn.softmax_quantizer = TensorQuantizer(QuantizerAttributeConfig(num_bits=8, axis=None,
                                                                          calibrator="histogram"))
        attn.forward = types.MethodType(_explicit_attention_forward, attn)
    names = [n for n, _ in quantizers(model, enabled_only=False)]
    user_patterns = [p for p in placement.keep_float if p not in DEFAULT_KEEP_FLOAT] + list(placement.only)
    for pattern in user_patterns:
        if not any(re.search(pattern, n) for n in names):
            raise NbUtilsError(f"placement pattern {pattern!r} matches no quantizer in this model",
                               "check the layer names with quant_summary(model) and fix the pattern")
    for name, q in quantizers(model, enabled_only=False):
        if not _wanted(name, placement):
            q.disable()
    if not quantizers(model):
        raise NbUtilsError("the placement leaves no quantizer enabled", "loosen 'only' or 'keep_float'")
    return model


def _wanted(name: str, p: Placement) -> bool:
    if any(re.search(pat, name) for pat in p.keep_float):
        return False
    if p.only and not any(re.search(pat, name) for pat in p.only):
        return False
    if name.endswith("output_quantizer"):
        return False
    if name.endswith(("bmm_quantizer", "softmax_quantizer")):
        return p.attention_matmuls
    if "LayerNorm.input_quantizer" in name:
        return p.residual_inputs
    if name.endswith("input_quantizer"):
        return p.linear_inputs
    return name.endswith("weight_quantizer")


def quantizers(model: torch.nn.Module, *, enabled_only: bool = True) -> list[tuple[str, Any]]:
    """All ModelOpt ``TensorQuantizer`` modules of ``model`` (enabled ones by default)."""
    from modelopt.torch.quantization.nn import TensorQuantizer

    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, TensorQuantizer) and (m.is_enabled or not enabled_only)]


def collect_statistics(model: torch.nn.Module, batches: Iterable[dict[str, np.ndarray]], *,
                       progress: bool = False) -> int:
    """Stream calibration batches through ``model`` and fill every quantizer's calibrator.

    Returns the number of sequences seen. Raises if there are none (no silent uncalibrated model).
    """
    import torch
    from modelopt.torch.quantization.model_calib import enable_stats_collection

    from nbutils.progress import bar as tqdm
    from nbutils.tasks import model_inputs

    enable_stats_collection(model)
    seen = 0
    with torch.no_grad():
        for batch in tqdm(list(batches), desc="calibrate", disable=not progress, leave=False):
            model(**{k: torch.as_tensor(v) for k, v in model_inputs(batch).items()})
            seen += len(batch["input_ids"])
    if seen == 0:
        raise NbUtilsError("the calibration set is empty", "give calib_samples > 0 (e.g. 256 training sentences)")
    return seen


def apply_calibrator(model: torch.nn.Module, calibrator: str) -> None:
    """Set every enabled quantizer's range from the collected statistics with ``calibrator``.

    Weights always use max (per channel or per tensor, as placed); activations use the method.
    Can be called again with another method: the histograms are kept.
    """
    from modelopt.torch.quantization.calib.histogram import HistogramCalibrator

    if calibrator not in CALIBRATORS:
        raise NbUtilsError(f"unknown calibrator {calibrator!r}", f"use one of: {', '.join(CALIBRATORS)}")
    method, kwargs = CALIBRATORS[calibrator]
    for name, q in quantizers(model):
        cal = getattr(q, "_calibrator", None)
        if cal is None:
            continue
        if isinstance(cal, HistogramCalibrator):
            if getattr(cal, "_calib_bin_edges", None) is None:
                raise NbUtilsError(f"quantizer {name} saw no data during calibration",
                                   "make sure the calibration batches reach every quantized layer")
            if method == "max":
                import torch

                q.amax = torch.as_tensor(float(cal._calib_bin_edges[-1]))
            else:
                q.load_calib_amax(method, **kwargs)
        else:
            q.load_calib_amax()
        q.enable_quant()
        q.disable_calib()


def histogram(model: torch.nn.Module, quantizer_name: str) -> tuple[np.ndarray, np.ndarray]:
    """The collected |activation| histogram (edges, counts) of one quantizer."""
    qs = dict(quantizers(model))
    if quantizer_name not in qs:
        close = [n for n in qs if quantizer_name.split(".")[-1] in n][:5]
        raise NbUtilsError(f"no enabled quantizer named {quantizer_name!r}", f"pick one from quant_summary(); e.g. {close}")
    cal = qs[quantizer_name]._calibrator
    edges = np.asarray(cal._calib_bin_edges, dtype=np.float64)
    counts = np.asarray(cal._calib_hist, dtype=np.float64)
    return edges, counts


def amax_under(model: torch.nn.Module, quantizer_name: str, calibrator: str) -> float:
    """The range ``calibrator`` picks for one activation quantizer (from its kept histogram)."""
    method, kwargs = CALIBRATORS[calibrator]
    cal = dict(quantizers(model))[quantizer_name]._calibrator
    if method == "max":
        return float(cal._calib_bin_edges[-1])
    return float(cal.compute_amax(method, **kwargs))


def quant_summary(model: torch.nn.Module, *, enabled_only: bool = False) -> pd.DataFrame:
    """One row per quantizer: name, layer, enabled, bits, axis, amax (scalar or per-channel range), calibrator.

    Like ModelOpt's ``print_quant_summary``, but as a DataFrame you can filter.
    """
    import pandas as pd

    rows = []
    for name, q in quantizers(model, enabled_only=enabled_only):
        amax = getattr(q, "amax", None)
        if amax is None:
            amax_s, amax_min, amax_max = "dynamic", math.nan, math.nan
        else:
            a = amax.detach().float().flatten()
            amax_min, amax_max = float(a.min()), float(a.max())
            amax_s = f"{amax_max:.4g}" if a.numel() == 1 else f"{a.numel()} ch: {amax_min:.3g}..{amax_max:.3g}"
        rows.append({"quantizer": name, "layer": name.rsplit(".", 1)[0], "kind": name.rsplit(".", 1)[1],
                     "enabled": bool(q.is_enabled), "bits": q.num_bits, "axis": q.axis, "amax": amax_s,
                     "amax_max": amax_max, "calibrator": type(getattr(q, "_calibrator", None)).__name__})
    return pd.DataFrame(rows)


def count_enabled(model: torch.nn.Module) -> dict[str, int]:
    """Enabled quantizers by kind (weight, input, bmm, softmax): a quick placement check."""
    counts: dict[str, int] = {}
    for name, _ in quantizers(model):
        kind = name.rsplit(".", 1)[1]
        key = "attention" if ("bmm" in kind or "softmax" in kind) else (
            "residual" if "LayerNorm" in name else kind.replace("_quantizer", ""))
        counts[key] = counts.get(key, 0) + 1
    return counts


def quantize_ptq(model: torch.nn.Module, calib_batches: Sequence[dict[str, np.ndarray]], recipe: Recipe, *,
                 progress: bool = False) -> tuple[torch.nn.Module, float]:
    """Copy ``model``, insert quantizers for ``recipe.placement``, calibrate with ``recipe.calibrator``.

    Returns the quantized copy and the calibration wall time in seconds.
    """
    recipe.validate()
    start = time.perf_counter()
    qmodel = insert_quantizers(copy.deepcopy(model), recipe.placement)
    collect_statistics(qmodel, calib_batches, progress=progress)
    apply_calibrator(qmodel, recipe.calibrator)
    return qmodel, time.perf_counter() - start


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of ``test`` against ``reference`` in dB."""
    ref, tst = np.asarray(reference, np.float64), np.asarray(test, np.float64)
    noise = float(np.sum((ref - tst) ** 2))
    return float("inf") if noise == 0 else 10.0 * math.log10(float(np.sum(ref**2)) / noise)


# ---------------------------------------------------------------------------------------------
# Saving and restoring a quantized model (for QAT and ONNX export in notebooks 30 and 40).


def save_quantized(model: torch.nn.Module, tokenizer: Any, dest: str | Path, meta: dict[str, Any]) -> Path:
    """Save a quantized model: its FP weights (``save_pretrained``), all quantizer ranges, and ``meta``.

    ``meta`` must hold ``placement`` (a :data:`PLACEMENTS` name). Written atomically.
    """
    import torch

    if meta.get("placement") not in PLACEMENTS:
        raise NbUtilsError(f"meta needs a known placement (got {meta.get('placement')!r})",
                           f"use one of: {', '.join(PLACEMENTS)}")
    amax = {name: q.amax.detach().cpu() for name, q in quantizers(model, enabled_only=False)
            if getattr(q, "amax", None) is not None}
    enabled = [name for name, _ in quantizers(model)]
    with atomic_path(dest, is_dir=True) as tmp:
        plain = {k: v for k, v in model.state_dict().items() if "_quantizer" not in k}
        model.save_pretrained(tmp, state_dict=plain)
        tokenizer.save_pretrained(tmp)
        torch.save({"amax": amax, "enabled": enabled}, tmp / "quantizers.pt")
        write_json(tmp / "nbutils.json", meta)
    return Path(dest)


def load_quantized(path: str | Path, *, task: str = "classification", num_labels: int = 2) -> torch.nn.Module:
    """Rebuild a model saved by :func:`save_quantized`, with its quantizers and ranges."""
    import torch

    from nbutils.models import load_model

    path = Path(path)
    if not (path / "quantizers.pt").is_file():
        raise NbUtilsError(f"{path} is not a quantized checkpoint (no quantizers.pt)",
                           "pass a folder written by save_quantized (notebooks 20/30 write them)")
    meta = read_json(path / "nbutils.json")
    model = insert_quantizers(load_model(str(path), task=task, num_labels=num_labels), meta["placement"])
    state = torch.load(path / "quantizers.pt", weights_only=True)
    qs = dict(quantizers(model, enabled_only=False))
    for name, q in qs.items():
        if name in state["amax"]:
            q.amax = state["amax"][name]
        if name in state["enabled"]:
            q.enable()
            q.enable_quant()
            q.disable_calib()
        else:
            q.disable()
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Quantization-aware training with optional distillation.


@dataclass
class KDConfig:
    """Logit distillation from the FP32 teacher: ``loss = (1-w)·task + w·T²·KL(teacher‖student)``."""

    temperature: float = 2.0
    weight: float = 0.5


def distillation_loss(teacher: torch.nn.Module, kd: KDConfig) -> Callable[[Any, dict[str, torch.Tensor]], torch.Tensor]:
    """A :func:`nbutils.models.fine_tune` loss hook that mixes the task loss with logit KD."""
    import torch
    import torch.nn.functional as F

    from nbutils.tasks import MODEL_INPUTS

    teacher.eval()

    def kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        t = kd.temperature
        return F.kl_div(F.log_softmax(student_logits / t, -1), F.softmax(teacher_logits / t, -1),
                        reduction="batchmean") * t * t

    def loss(outputs: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            t_out = teacher(**{k: v for k, v in batch.items() if k in MODEL_INPUTS})
        if hasattr(outputs, "start_logits"):
            soft = (kl(outputs.start_logits, t_out.start_logits) + kl(outputs.end_logits, t_out.end_logits)) / 2
        else:
            soft = kl(outputs.logits, t_out.logits)
        return (1 - kd.weight) * outputs.loss + kd.weight * soft

    return loss


@dataclass
class QATConfig:
    """Settings of one QAT run (notebook 30's parameters)."""

    epochs: float = 1.0
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    kd: KDConfig | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def as_meta(self) -> dict[str, Any]:
        """JSON-able description for checkpoint metadata."""
        return {"epochs": self.epochs, "lr": self.lr, "warmup_ratio": self.warmup_ratio,
                "kd": asdict(self.kd) if self.kd else None}


# ---------------------------------------------------------------------------------------------
# Where notebooks 20/30/40 keep the quantized checkpoints in the run folder.


def ptq_dir(run_dir: Path, baseline_key: str) -> Path:
    """The best PTQ model for a baseline (written by notebook 20)."""
    return Path(run_dir) / "checkpoints" / f"ptq-best-{baseline_key}"


def qat_dir(run_dir: Path, baseline_key: str, kd: bool) -> Path:
    """The QAT (or QAT+KD) model for a baseline (written by notebook 30)."""
    return Path(run_dir) / "checkpoints" / f"{'qat-kd' if kd else 'qat'}-{baseline_key}"


def score_row(recipe: str, result: Any, fp32: Any, *, calibration_s: float | None = None,
              calib_samples: int | None = None) -> dict[str, Any]:
    """One comparison-table row: task metrics, delta to FP32, agreement, SQNR of the outputs."""
    main = main_metric(result.metrics)
    row: dict[str, Any] = {"recipe": recipe, **{k: round(v, 3) for k, v in result.metrics.items()},
                           f"delta_{main}_pts": round(result.metrics[main] - fp32.metrics[main], 3)}
    if result.outputs is not None and fp32.outputs is not None:
        row["sqnr_db"] = round(sqnr_db(fp32.outputs, result.outputs), 2)
    if calibration_s is not None:
        row["calibration_s"] = round(calibration_s, 2)
    if calib_samples is not None:
        row["calib_samples"] = calib_samples
    return row


def rows_to_measurements(rows: Iterable[dict[str, Any]], *, engine: str = "torch-eager:int8-sim",
                         precision: str = "int8-sim", seq: int | None = None) -> list[Any]:
    """Comparison-table rows -> results-database measurements (known metrics only)."""
    from nbutils.results import METRICS, Measurement

    out = []
    for row in rows:
        extra = {k: v for k, v in row.items() if k not in METRICS and k != "recipe"}
        prec = "fp32" if row["recipe"] == "fp32" else precision
        eng = "torch-eager:fp32" if row["recipe"] == "fp32" else engine
        for metric in METRICS:
            if metric in row and row[metric] is not None and math.isfinite(float(row[metric])):
                out.append(Measurement(metric, float(row[metric]), row["recipe"], eng, prec, None, seq, extra))
    return out


# ---------------------------------------------------------------------------------------------
# Run-folder helpers shared by notebooks 30 and 40 (each builds what it lacks when run alone).


def ensure_ptq(base: Any, run_dir: Path, *, calib_samples: int, calibrator: str = "percentile-99.99") -> tuple[Any, str]:
    """The best PTQ model saved by notebook 20, or a fresh one calibrated with ``calibrator``.

    Returns the quantized model and its recipe name.
    """
    from nbutils.tasks import encode

    path = ptq_dir(run_dir, base.config.key())
    if not (path / "quantizers.pt").is_file():
        print(f"No PTQ model in the run folder: calibrating with {calibrator} now (notebook 20 compares all methods).")
        calib = encode(base.data, "train", base.tokenizer, max_length=base.config.max_length, batch_size=32,
                       limit=calib_samples).batches
        qm, _ = quantize_ptq(base.model, calib, Recipe(calibrator))
        save_quantized(qm, base.tokenizer, path, {"placement": "trt-bert", "recipe": f"ptq-{calibrator}",
                                                  "task": base.data.task})
    meta = read_json(path / "nbutils.json")
    model = load_quantized(path, task=base.data.task, num_labels=max(base.data.num_labels, 2))
    return model, str(meta["recipe"])


def run_qat(base: Any, ptq_model: Any, run_dir: Path, *, epochs: float, lr: float, kd: KDConfig | None,
            from_recipe: str, eval_every: int = 0, progress: bool = True) -> tuple[Any, Any]:
    """Fine-tune a copy of ``ptq_model`` with fake quantization (and KD if given); save it to the run folder.

    Returns ``(model, TrainResult)``. The quantizer ranges stay at their calibrated values.
    """
    from nbutils.models import fine_tune, torch_predictor
    from nbutils.tasks import encode, evaluate

    cfg = base.config
    train = encode(base.data, "train", base.tokenizer, max_length=cfg.max_length, batch_size=cfg.batch_size,
                   shuffle=True, seed=cfg.seed + 1).batches
    main = main_metric(base.data.task)
    student = copy.deepcopy(ptq_model)
    steps = max(1, int(len(train) * epochs))

    def score() -> float:
        return evaluate(torch_predictor(student), base.data, base.validation).metrics[main]

    out = fine_tune(student, train, epochs=epochs, lr=lr, schedule="cosine", progress=progress,
                    loss_fn=distillation_loss(base.model, kd) if kd else None, desc="qat-kd" if kd else "qat",
                    eval_every=eval_every or max(1, steps // 8), eval_fn=score)
    save_quantized(student, base.tokenizer, qat_dir(run_dir, cfg.key(), kd is not None),
                   {"placement": "trt-bert", "recipe": "qat-kd" if kd else "qat", "from": from_recipe,
                    "task": base.data.task, "qat": QATConfig(epochs, lr, 0.1, kd).as_meta(), "train_s": out.train_s})
    return student, out
