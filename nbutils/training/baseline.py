"""The FP32 baseline: fine-tune, evaluate, save, and find it again from any later notebook.

A checkpoint lives at ``<run_dir>/checkpoints/baseline-<key>/`` where ``key`` hashes the
settings that shape it (model, data, sample counts, epochs, learning rate, batch, length,
seed). Notebook 10 builds it; notebooks 20-70 call :func:`ensure_baseline` with the same
settings, which reuses it or, when a notebook runs alone, trains it first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nbutils.core.device import Device, check_training_fits, resolve
from nbutils.core.errors import NbUtilsError
from nbutils.core.paths import read_json
from nbutils.core.vocab import outputs_file
from nbutils.training.data import TaskData, load_task_data
from nbutils.training.models import (
    display_name,
    fine_tune,
    is_untrained,
    load_model,
    load_tokenizer,
    max_positions,
    save_checkpoint,
)
from nbutils.training.tasks import Encoded, EvalResult, encode, evaluate, recorded


@dataclass(frozen=True)
class BaselineConfig:
    """Everything that decides what the baseline checkpoint is."""

    model: str = "default"
    data: str = "embedded"
    train_samples: int = 0
    eval_samples: int = 0
    epochs: float = 2.0
    lr: float = 1e-4
    batch_size: int = 32
    max_length: int = 64
    seed: int = 0
    train_precision: str = "fp32"  # fp32, or bf16 (autocast on the GPU): part of the checkpoint's identity
    device: Device | None = field(default=None, compare=False)  # where PyTorch work runs (not part of the key)

    @classmethod
    def from_params(cls, *, model: str, data: str, train_samples: int, eval_samples: int, epochs: float,
                    lr: float, batch_size: int, max_length: int, seed: int, smoke: bool, device: str = "auto",
                    train_precision: str = "auto") -> BaselineConfig:
        """Build the config from notebook parameters; ``smoke`` shrinks data and epochs for CI.

        Every notebook that needs the baseline calls this with its own (shared) parameters, so
        they all agree on the same checkpoint. ``device`` is resolved here, before any work
        (:func:`nbutils.core.device.resolve`: ``cuda`` without a GPU is an error); ``train_precision`` ``auto`` is
        BF16 autocast on a GPU with BF16, FP32 elsewhere.
        """
        dev = resolve(device)
        precision = dev.train_precision(train_precision)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 8:
            raise NbUtilsError(f"max_length={max_length!r} is not a usable token count",
                               "use a whole number of tokens from 8 up to the model's positions, e.g. -p max_length=128")
        if smoke:  # data and epochs shrink; max_length is used as given (its default is already small)
            # 512 sentences x 2 epochs (32 steps, ~10 s on 2 cores): on the embedded set's hard sentences fewer
            # steps leave the model predicting one class (measured: 128 x 1 and 512 x 1 stay near 36% on the
            # first 64 validation sentences; 512 x 2 gives 72%)
            train_samples = min(train_samples or 512, 512)
            eval_samples = min(eval_samples or 64, 64)
            epochs = min(epochs, 2.0)
        return cls(model, data, train_samples, eval_samples, float(epochs), lr, batch_size, max_length, seed,
                   precision, dev)

    @property
    def where(self) -> Device:
        """The resolved device (the CPU when the config was built without one)."""
        return self.device or resolve("cpu")

    def key(self) -> str:
        """Short hash of the settings: the checkpoint folder's suffix (the device is not one of them)."""
        fields = asdict(self)
        fields.pop("device")
        if self.train_precision == "fp32":  # keys of FP32 baselines are those of runs made before the field existed
            fields.pop("train_precision")
        fields.update(epochs=float(self.epochs), lr=float(self.lr))  # 2 and 2.0 are the same setting
        blob = json.dumps(fields, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]

    def checkpoint_dir(self, run_dir: Path) -> Path:
        """Where this baseline lives in ``run_dir``."""
        return Path(run_dir) / "checkpoints" / f"baseline-{self.key()}"


@dataclass
class Baseline:
    """A trained (or loaded) baseline with its data, encodings and validation result."""

    config: BaselineConfig
    path: Path
    data: TaskData
    tokenizer: Any
    model: Any
    validation: Encoded
    result: EvalResult
    train_s: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    outputs: Path | None = None  # the FP32 model's recorded validation outputs (tasks.recorded), if kept

    def reference(self) -> Any:
        """The FP32 model as a predictor; on the validation split it replays the recorded outputs.

        Notebooks 40 and 42 compare every file with the model it came from; for the FP32 model that is the pass
        :func:`ensure_baseline` already made (and kept in ``outputs``), so it is read back, not computed again.
        Call it once per notebook: each call reads the file again.
        """
        from nbutils.training.models import torch_predictor
        from nbutils.training.tasks import memoize

        live = torch_predictor(self.model)
        return recorded(lambda: live, self.outputs, self.validation) if self.outputs else memoize(live)

    @property
    def model_name(self) -> str:
        """Display name for results."""
        return display_name(self.config.model)

    @property
    def device(self) -> Device:
        """Where this baseline's PyTorch work runs."""
        return self.config.where


def load_data(cfg: BaselineConfig) -> TaskData:
    """The task data the baseline is trained and evaluated on."""
    return load_task_data(cfg.data, train_samples=cfg.train_samples, eval_samples=cfg.eval_samples, seed=cfg.seed)


def encode_validation(cfg: BaselineConfig, data: TaskData, tokenizer: Any, batch_size: int = 64) -> Encoded:
    """The validation split encoded once, at the baseline's maximum length."""
    return encode(data, "validation", tokenizer, max_length=cfg.max_length, batch_size=batch_size)


def train_baseline(cfg: BaselineConfig, run_dir: Path, *, progress: bool = True) -> Baseline:
    """Fine-tune the FP32 model on ``cfg``'s device, evaluate it on validation, save it into ``run_dir``.

    On a GPU the memory the fine-tuning needs is checked first (:func:`nbutils.core.device.check_training_fits`): a batch
    that cannot fit fails here, before any training and before anything is written.
    """
    from nbutils.training.models import torch_predictor

    dev = cfg.where
    data = load_data(cfg)
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model, task=data.task, num_labels=max(data.num_labels, 2), seed=cfg.seed)
    if cfg.max_length > max_positions(model):  # before training: it would fail only after hours of it
        raise NbUtilsError(f"max_length={cfg.max_length} is longer than {cfg.model}'s {max_positions(model)} positions",
                           f"use -p max_length={min(max_positions(model), 512)} or less")
    check_training_fits(dev, model, batch=cfg.batch_size, seq=cfg.max_length, precision=cfg.train_precision,
                        what="FP32 fine-tuning")
    dev.put(model)
    batches = encode(data, "train", tokenizer, max_length=cfg.max_length, batch_size=cfg.batch_size,
                     shuffle=True, seed=cfg.seed).batches
    trained = fine_tune(model, batches, epochs=cfg.epochs, lr=cfg.lr, progress=progress, precision=cfg.train_precision,
                        desc=f"fine-tune FP32 ({dev.kind}{', BF16 autocast' if cfg.train_precision == 'bf16' else ''})")
    val = encode_validation(cfg, data, tokenizer)
    # recorded: the notebooks after this one replay these outputs (ensure_baseline) instead of computing them again
    cache = fp32_outputs_file(cfg, run_dir)
    result = evaluate(recorded(lambda: torch_predictor(model), cache, val), data, val, progress=progress,
                      desc="validate FP32")
    config = {k: v for k, v in asdict(cfg).items() if k != "device"}
    meta = {"config": config, "task": data.task, "data": data.describe(), "metrics": result.metrics,
            "train_s": trained.train_s, "untrained_architecture": is_untrained(cfg.model), **dev.meta()}
    path = save_checkpoint(model, tokenizer, cfg.checkpoint_dir(run_dir), meta)
    return Baseline(cfg, path, data, tokenizer, model, val, result, trained.train_s, trained.history, cache)


def ensure_baseline(cfg: BaselineConfig, run_dir: Path, *, progress: bool = True) -> Baseline:
    """Load the baseline from ``run_dir`` if notebook 10 made it, else train it now."""
    from nbutils.training.models import torch_predictor

    path = cfg.checkpoint_dir(run_dir)
    if not (path / "nbutils.json").is_file():
        print(f"No baseline for these settings in {run_dir}: training it now (notebook 10 does the same).")
        return train_baseline(cfg, run_dir, progress=progress)
    meta = read_json(path / "nbutils.json")
    data = load_data(cfg)
    tokenizer = load_tokenizer(str(path))
    model = cfg.where.put(load_model(str(path), task=data.task, num_labels=max(data.num_labels, 2)))
    val = encode_validation(cfg, data, tokenizer)
    # every later notebook needs FP32's validation outputs: computed once per run folder and device, then replayed
    cache = fp32_outputs_file(cfg, run_dir)
    result = evaluate(recorded(lambda: torch_predictor(model), cache, val), data, val, desc="validate FP32")
    return Baseline(cfg, path, data, tokenizer, model, val, result, float(meta.get("train_s", 0.0)), outputs=cache)


def fp32_outputs_file(cfg: BaselineConfig, run_dir: Path) -> Path:
    """Where the baseline's FP32 validation outputs on ``cfg``'s device are kept (:func:`tasks.recorded`)."""
    return outputs_file(run_dir, f"torch-eager:fp32-{cfg.where.kind}", cfg.key())
