"""The recipe vocabulary: calibrators, placements and their names (``ptq-<calibrator>[-<placement>]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nbutils.core.errors import NbUtilsError

#: Calibration methods by name -> (ModelOpt histogram method, keyword arguments).
CALIBRATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "max": ("max", {}),
    "percentile-99.9": ("percentile", {"percentile": 99.9}),
    "percentile-99.99": ("percentile", {"percentile": 99.99}),
    "percentile-99.999": ("percentile", {"percentile": 99.999}),
    # stride 16 over 2048 bins: measured on all-MiniLM-L6-v2's 58 activation quantizers (2-core EPYC) 9.0 s instead
    # of 35.4 s at stride 4 (stride 1: ~2.6 s per quantizer); the median range is the same, one of 58 moved 38%, and
    # accuracy on the embedded split was 79.3 against 79.0
    "entropy": ("entropy", {"stride": 16}),
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
