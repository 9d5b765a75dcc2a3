"""Quantized models in the run folder: save, load, and the PTQ model notebooks 30/40 reuse."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbutils.core.errors import NbUtilsError
from nbutils.core.paths import atomic_path, link_if_identical, read_json, same_bytes, write_json
from nbutils.quant.calibration import quantize_ptq
from nbutils.quant.placement import insert_quantizers, quantizers
from nbutils.quant.recipes import PLACEMENTS, Recipe

if TYPE_CHECKING:
    import torch



# ---------------------------------------------------------------------------------------------
# Saving and restoring a quantized model (for QAT and ONNX export in notebooks 30 and 40).


def save_quantized(model: torch.nn.Module, tokenizer: Any, dest: str | Path, meta: dict[str, Any]) -> Path:
    """Save a quantized model: its weights, all quantizer ranges, and ``meta``.

    ``meta`` must hold ``placement`` (a :data:`PLACEMENTS` name). Written atomically. When ``meta["baseline"]``
    names the checkpoint the model came from, nothing is stored twice: unchanged weights (PTQ) make the weight
    file a hard link to the baseline's (:func:`~nbutils.core.paths.link_if_identical`); changed ones (QAT) are
    stored without the large tensors that still equal the baseline's, e.g. the frozen word embeddings
    (:func:`~nbutils.training.models.save_weights`; :func:`load_quantized` reads them back from the baseline),
    and with their quantized weights as INT8 codes and scales (:func:`int8_weights`): a quarter of the bytes,
    the same model.
    """
    import torch

    if meta.get("placement") not in PLACEMENTS:
        raise NbUtilsError(f"meta needs a known placement (got {meta.get('placement')!r})",
                           f"use one of: {', '.join(PLACEMENTS)}")
    amax = {name: q.amax.detach().cpu() for name, q in quantizers(model, enabled_only=False)
            if getattr(q, "amax", None) is not None}
    enabled = [name for name, _ in quantizers(model)]
    from nbutils.training.models import SHARED_KEY, WEIGHT_FILES, save_weights

    baseline = meta.get("baseline")
    plain = {k: v for k, v in model.state_dict().items() if "_quantizer" not in k}
    with atomic_path(dest, is_dir=True) as tmp:
        model.save_pretrained(tmp, state_dict=plain)
        tokenizer.save_pretrained(tmp)
        torch.save({"amax": amax, "enabled": enabled}, tmp / "quantizers.pt")
        if baseline and not same_bytes(tmp / WEIGHT_FILES[0], Path(str(baseline)) / WEIGHT_FILES[0]):
            (tmp / WEIGHT_FILES[0]).unlink()
            codes = int8_weights(model)
            meta = {**meta, SHARED_KEY: save_weights(model, tmp, plain, baseline, codes), "int8_weights": len(codes)}
        write_json(tmp / "nbutils.json", meta)
    if baseline:
        link_if_identical(Path(dest) / WEIGHT_FILES[0], Path(str(baseline)) / WEIGHT_FILES[0])
    return Path(dest)


def int8_weights(model: torch.nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each 8-bit-quantized weight as INT8 codes and a scale (``state_dict`` name -> (codes, scale)).

    The codes are those ModelOpt's weight quantizer rounds the weight to, with scale ``amax / 127``; the forward
    pass only ever sees the fake-quantized weight, so ``codes × scale`` reloaded under the same quantizer gives
    the same model. That is checked per weight (the quantizer maps ``codes × scale`` exactly to what it made of
    the float weight); a weight that fails it, or is not 8-bit, stays in float.
    """
    import torch

    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    with torch.no_grad():
        for name, mod in model.named_modules():
            wq, weight = getattr(mod, "weight_quantizer", None), getattr(mod, "weight", None)
            amax = getattr(wq, "amax", None)
            if (wq is None or weight is None or amax is None or not getattr(wq, "is_enabled", False)
                    or getattr(wq, "num_bits", None) != 8 or getattr(wq, "unsigned", False)):
                continue
            scale = amax.detach().float() / 127.0
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            on_grid = wq(weight.detach())
            codes = torch.round(on_grid / scale).clamp(-128, 127)
            if torch.equal(wq(codes * scale), on_grid):
                out[f"{name}.weight"] = (codes.to(torch.int8).cpu(), scale.cpu())
    return out


def load_quantized(path: str | Path, *, task: str = "classification", num_labels: int = 2,
                   device: Any = None) -> torch.nn.Module:
    """Rebuild a model saved by :func:`save_quantized`, with its quantizers and ranges (on ``device``; CPU default)."""
    import torch

    from nbutils.training.models import load_model

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
    return (model.to(device) if device is not None else model).eval()


# ---------------------------------------------------------------------------------------------
# Where notebooks 20/30/40 keep the quantized checkpoints in the run folder.


def ptq_dir(run_dir: Path, baseline_key: str) -> Path:
    """The best PTQ model for a baseline (written by notebook 20)."""
    return Path(run_dir) / "checkpoints" / f"ptq-best-{baseline_key}"


def qat_dir(run_dir: Path, baseline_key: str, kd: bool) -> Path:
    """The QAT (or QAT+KD) model for a baseline (written by notebook 30)."""
    return Path(run_dir) / "checkpoints" / f"{'qat-kd' if kd else 'qat'}-{baseline_key}"


def sim_outputs(run_dir: Path, checkpoint: Path) -> Path:
    """Where a quantized checkpoint's fake-quantized validation outputs are kept (:func:`~nbutils.training.tasks.recorded`).

    Notebook 30 scores the PTQ and QAT models on the validation split; 70's INT8 table and 80's sensitivity
    need the same numbers, so they replay them. The name holds a digest of the checkpoint's files: a checkpoint
    written again (other ranges or weights) is scored again.
    """
    import hashlib

    from nbutils.core.vocab import outputs_file

    h = hashlib.sha256()
    for f in sorted(p for p in Path(checkpoint).iterdir() if p.is_file() and p.suffix in (".json", ".pt", ".safetensors")):
        h.update(f.name.encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return outputs_file(run_dir, "torch-eager:int8-sim", h.hexdigest()[:16])


def sim_predictor(run_dir: Path, checkpoint: Path, validation: Any, load: Any) -> Any:
    """A quantized checkpoint's fake-quantized model as a predictor, replaying its kept validation outputs.

    ``load`` returns the model (a loaded one, or a function that loads it); it is called only if something must be
    computed (outputs not kept yet, or a batch that is not one of ``validation``'s). Notebook 30 records them;
    40, 42, 45, 70 and 80 compare files with, or score, the models it already ran (:func:`sim_outputs`).
    """
    from nbutils.training.models import torch_predictor
    from nbutils.training.tasks import recorded

    return recorded(lambda: torch_predictor(load()), sim_outputs(run_dir, checkpoint), validation)


# ---------------------------------------------------------------------------------------------
# Run-folder helpers shared by notebooks 30 and 40 (each builds what it lacks when run alone).


def ensure_ptq(base: Any, run_dir: Path, *, calib_samples: int, calibrator: str = "percentile-99.99") -> tuple[Any, str]:
    """The best PTQ model saved by notebook 20, or a fresh one calibrated with ``calibrator``.

    Returns the quantized model and its recipe name.
    """
    from nbutils.core.device import model_device
    from nbutils.training.tasks import encode

    path = ptq_dir(run_dir, base.config.key())
    if not (path / "quantizers.pt").is_file():
        print(f"No PTQ model in the run folder: calibrating with {calibrator} now (notebook 20 compares all methods).")
        calib = encode(base.data, "train", base.tokenizer, max_length=base.config.max_length, batch_size=32,
                       limit=calib_samples).batches
        qm, _ = quantize_ptq(base.model, calib, Recipe(calibrator))
        save_quantized(qm, base.tokenizer, path, {"placement": "trt-bert", "recipe": f"ptq-{calibrator}",
                                                  "baseline": str(base.path), "task": base.data.task})
    meta = read_json(path / "nbutils.json")
    model = load_quantized(path, task=base.data.task, num_labels=max(base.data.num_labels, 2),
                           device=model_device(base.model))
    return model, str(meta["recipe"])
