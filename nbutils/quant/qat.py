"""Quantization-aware training and logit distillation from the FP32 teacher."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbutils.core.vocab import main_metric
from nbutils.quant.persistence import qat_dir, save_quantized

if TYPE_CHECKING:
    import torch



# ---------------------------------------------------------------------------------------------
# Quantization-aware training with optional distillation.


@dataclass
class KDConfig:
    """Logit distillation from the FP32 teacher: ``loss = (1-w)·task + w·T²·KL(teacher‖student)``."""

    temperature: float = 2.0
    weight: float = 0.5


def distillation_loss(teacher: torch.nn.Module, kd: KDConfig) -> Callable[[Any, dict[str, torch.Tensor]], torch.Tensor]:
    """A :func:`nbutils.training.models.fine_tune` loss hook that mixes the task loss with logit KD."""
    import torch
    import torch.nn.functional as F

    from nbutils.training.tasks import MODEL_INPUTS

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


CURVE_SENTENCES = 256  # validation sentences each point of the QAT curves scores (the final figures use all)


@dataclass
class QATConfig:
    """Settings of one QAT run (notebook 30's parameters)."""

    epochs: float = 1.0
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    kd: KDConfig | None = None

    def as_meta(self) -> dict[str, Any]:
        """JSON-able description for checkpoint metadata."""
        return {"epochs": self.epochs, "lr": self.lr, "warmup_ratio": self.warmup_ratio,
                "kd": asdict(self.kd) if self.kd else None}


def run_qat(base: Any, ptq_model: Any, run_dir: Path, *, epochs: float, lr: float, kd: KDConfig | None,
            from_recipe: str, eval_every: int = 0, progress: bool = True,
            on_log: Callable[[list[dict[str, float]]], None] | None = None) -> tuple[Any, Any]:
    """Fine-tune a copy of ``ptq_model`` with fake quantization (and KD if given); save it to the run folder.

    Returns ``(model, TrainResult)``. The quantizer ranges stay at their calibrated values. ``on_log`` receives
    the training history while it grows (notebook 30's live curves).
    """
    from nbutils.core.device import check_training_fits
    from nbutils.training.models import fine_tune, torch_predictor
    from nbutils.training.tasks import encode, evaluate

    cfg = base.config
    check_training_fits(base.device, ptq_model, batch=cfg.batch_size, seq=cfg.max_length, precision="fp32",
                        what="QAT (fake quantization in FP32)" + (" with a distillation teacher" if kd else ""))
    train = encode(base.data, "train", base.tokenizer, max_length=cfg.max_length, batch_size=cfg.batch_size,
                   shuffle=True, seed=cfg.seed + 1).batches
    main = main_metric(base.data.task)
    student = copy.deepcopy(ptq_model)
    # The word-embedding table is not quantized (ModelOpt quantizes Linear inputs and weights), so QAT has nothing
    # to adapt there; frozen, it stays the baseline's and the checkpoint stores it once (save_quantized), and
    # AdamW keeps no state for its vocabulary x hidden values.
    student.get_input_embeddings().weight.requires_grad_(False)
    steps = max(1, int(len(train) * epochs))

    # The curve's points score CURVE_SENTENCES validation sentences spread over the split (Encoded.head);
    # the final figures use the whole split. QA keeps the whole split (its windows map to questions).
    curve = base.validation
    if base.data.task == "classification":
        curve = curve.head(CURVE_SENTENCES)

    def score() -> float:
        return evaluate(torch_predictor(student), base.data, curve).metrics[main]

    out = fine_tune(student, train, epochs=epochs, lr=lr, schedule="cosine", progress=progress,
                    loss_fn=distillation_loss(base.model, kd) if kd else None, desc="qat-kd" if kd else "qat",
                    eval_every=eval_every or max(1, steps // 8), eval_fn=score, on_log=on_log)
    save_quantized(student, base.tokenizer, qat_dir(run_dir, cfg.key(), kd is not None),
                   {"placement": "trt-bert", "recipe": "qat-kd" if kd else "qat", "from": from_recipe,
                    "baseline": str(base.path), "frozen": ["word embeddings"], "task": base.data.task,
                    "qat": QATConfig(epochs, lr, 0.1, kd).as_meta(), "train_s": out.train_s})
    return student, out
