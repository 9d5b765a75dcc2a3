"""FP8 (float8_e4m3) linear layers through ``torch._scaled_mm``: the low-precision speed route on Hopper GPUs.

Without TensorRT, INT8 matmuls on an H100/H200 are no faster than FP16 (cuBLAS's ``_int_mm`` measured 477 TOP/s
against 559 TFLOP/s FP16 at BERT-base FFN shapes), while FP8 tensor cores ran at 736-934 TFLOP/s. This module
swaps each encoder ``nn.Linear`` for an FP8 one (:func:`fp8_linear`): weights quantized once to e4m3 with one scale per output
row, activations quantized per call with one scale per token row (dynamic, so no calibration). Written by hand
because torchao's float8 inference path is not installable on the CPU machines that run the tests; the math is
the same ``_scaled_mm`` call torchao makes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from nbutils.core.errors import NbUtilsError

if TYPE_CHECKING:
    import torch

E4M3_MAX = 448.0


def _quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise float8_e4m3 quantization: returns (fp8 tensor, fp32 scale per row, shape [rows, 1])."""
    import torch

    amax = x.abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-12)
    scale = amax / E4M3_MAX
    q = (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return q, scale



def fp8_linear(linear: torch.nn.Linear, out_dtype: Any = None, act_amax: float | None = None) -> torch.nn.Module:
    """An FP8 replacement of ``linear``.

    Dynamic (``act_amax=None``): row-wise weight scales and row-wise activation scales computed per call.
    Static (``act_amax`` from calibration): one scale per tensor for weights and activations, so quantizing the
    input is a multiply and a cast that the compiler fuses into the previous kernel.
    """
    import torch

    class _Fp8Linear(torch.nn.Module):
        def __init__(self, lin: torch.nn.Linear) -> None:
            super().__init__()
            if lin.in_features % 16 or lin.out_features % 16:
                raise NbUtilsError(f"FP8 matmuls need dimensions divisible by 16 (got {lin.in_features}x{lin.out_features})",
                                   "keep this layer in higher precision")
            self.static = act_amax is not None
            if self.static:
                w = lin.weight.detach().float()
                w_s = (w.abs().amax().clamp(min=1e-12) / E4M3_MAX).reshape(())
                self.register_buffer("weight_fp8", (w / w_s).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn))
                self.register_buffer("weight_scale", w_s)
                self.register_buffer("act_scale", torch.tensor(max(float(act_amax), 1e-12) / E4M3_MAX,
                                                               device=w.device))
            else:
                w_q, w_s = _quantize_rows(lin.weight.detach())
                self.register_buffer("weight_fp8", w_q)
                self.register_buffer("weight_scale", w_s.t().contiguous())  # [1, out]
            self.bias = None if lin.bias is None else torch.nn.Parameter(lin.bias.detach().clone(), requires_grad=False)
            self.out_features = lin.out_features
            self.out_dtype = out_dtype

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shape = x.shape
            x2 = x.reshape(-1, shape[-1])
            if self.static:
                x_s = self.act_scale
                x_q = (x2.float() / x_s).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
            else:
                x_q, x_s = _quantize_rows(x2)
            dtype = self.out_dtype or (x.dtype if x.dtype in (torch.float16, torch.bfloat16) else torch.bfloat16)
            if x_q.device.type == "cpu":
                # CPU: exact emulation by hand. The FP8 values are exact in FP32 and the product is accumulated in
                # FP32 then scaled, as _scaled_mm does; torch's oneDNN ran _scaled_mm on its reference kernel inside
                # notebook 70 on an AMX host (one cell > 900 s), while this takes one FP32 GEMM.
                y = (torch.mm(x_q.float(), self.weight_fp8.float().t()) * x_s * self.weight_scale).to(dtype)
            else:
                y = torch._scaled_mm(x_q, self.weight_fp8.t(), scale_a=x_s, scale_b=self.weight_scale,
                                     out_dtype=dtype)
            if self.bias is not None:
                y = y + self.bias.to(y.dtype)
            return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    return _Fp8Linear(linear)


KEEP = (r"classifier", r"qa_outputs", r"pooler")


def calibrate_activations(model: torch.nn.Module, batches: list[dict[str, Any]], *,
                          keep: tuple[str, ...] = KEEP) -> dict[str, float]:
    """Max |input| of every encoder ``nn.Linear`` over ``batches`` (static FP8 activation ranges)."""
    import torch

    amax: dict[str, float] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and not any(re.search(k, name) for k in keep):
            def hook(_m: Any, args: tuple[Any, ...], name: str = name) -> None:
                amax[name] = max(amax.get(name, 0.0), float(args[0].detach().abs().max()))
            hooks.append(mod.register_forward_pre_hook(hook))
    from nbutils.core.device import model_device, to_device

    device = model_device(model)
    try:
        with torch.inference_mode():
            for b in batches:
                model(**to_device({k: v for k, v in b.items() if k != "labels"}, device))
    finally:
        for h in hooks:
            h.remove()
    if not amax:
        raise NbUtilsError("no activation statistics were collected", "pass at least one calibration batch")
    return amax


def convert_to_fp8(model: torch.nn.Module, *, keep: tuple[str, ...] = KEEP,
                   act_amax: dict[str, float] | None = None) -> int:
    """Replace every encoder ``nn.Linear`` of ``model`` (in place) by FP8; returns how many were replaced.

    With ``act_amax`` (from :func:`calibrate_activations`) the layers use static per-tensor scales.
    """
    import torch

    replaced = 0
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, torch.nn.Linear) and not any(re.search(k, full) for k in keep):
                setattr(module, child_name, fp8_linear(child, act_amax=None if act_amax is None else act_amax[full]))
                replaced += 1
    if not replaced:
        raise NbUtilsError("no linear layer was converted to FP8", "check the model (a BERT-family encoder)")
    return replaced
