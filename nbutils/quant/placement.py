"""Where quantizers go (TensorRT's BERT rules by default) and which are enabled."""

from __future__ import annotations

import copy
import math
import re
import types
from typing import TYPE_CHECKING, Any

from nbutils.core.errors import NbUtilsError
from nbutils.core.quiet import quiet
from nbutils.quant.recipes import DEFAULT_KEEP_FLOAT, PLACEMENTS, Placement

if TYPE_CHECKING:
    import pandas as pd
    import torch












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
    # ModelOpt prints a registration banner and warns about a decorated method once per model: scoped out.
    with quiet(stdout=True, categories=[UserWarning], loggers=["modelopt"]):
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
