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

from nbutils.data import TaskData, load_task_data
from nbutils.models import display_name, fine_tune, is_untrained, load_model, load_tokenizer, save_checkpoint
from nbutils.paths import read_json
from nbutils.tasks import Encoded, EvalResult, encode, evaluate


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

    @classmethod
    def from_params(cls, *, model: str, data: str, train_samples: int, eval_samples: int, epochs: float,
                    lr: float, batch_size: int, max_length: int, seed: int, smoke: bool) -> BaselineConfig:
        """Build the config from notebook parameters; ``smoke`` shrinks data and epochs for CI.

        Every notebook that needs the baseline calls this with its own (shared) parameters, so
        they all agree on the same checkpoint.
        """
        if smoke:
            train_samples = min(train_samples or 128, 128)
            eval_samples = min(eval_samples or 64, 64)
            epochs = min(epochs, 1.0)
            max_length = min(max_length, 64)
        return cls(model, data, train_samples, eval_samples, float(epochs), lr, batch_size, max_length, seed)

    def key(self) -> str:
        """Short hash of the settings: the checkpoint folder's suffix."""
        fields = asdict(self)
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

    @property
    def model_name(self) -> str:
        """Display name for results."""
        return display_name(self.config.model)


def load_data(cfg: BaselineConfig) -> TaskData:
    """The task data the baseline is trained and evaluated on."""
    return load_task_data(cfg.data, train_samples=cfg.train_samples, eval_samples=cfg.eval_samples, seed=cfg.seed)


def encode_validation(cfg: BaselineConfig, data: TaskData, tokenizer: Any, batch_size: int = 64) -> Encoded:
    """The validation split encoded once, at the baseline's maximum length."""
    return encode(data, "validation", tokenizer, max_length=cfg.max_length, batch_size=batch_size)


def train_baseline(cfg: BaselineConfig, run_dir: Path, *, progress: bool = True) -> Baseline:
    """Fine-tune the FP32 model, evaluate it on validation, save it into ``run_dir``."""
    from nbutils.models import torch_predictor

    data = load_data(cfg)
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model, task=data.task, num_labels=max(data.num_labels, 2), seed=cfg.seed)
    batches = encode(data, "train", tokenizer, max_length=cfg.max_length, batch_size=cfg.batch_size,
                     shuffle=True, seed=cfg.seed).batches
    trained = fine_tune(model, batches, epochs=cfg.epochs, lr=cfg.lr, progress=progress, desc="fine-tune FP32")
    val = encode_validation(cfg, data, tokenizer)
    result = evaluate(torch_predictor(model), data, val, progress=progress, desc="validate FP32")
    meta = {"config": asdict(cfg), "task": data.task, "data": data.describe(), "metrics": result.metrics,
            "train_s": trained.train_s, "untrained_architecture": is_untrained(cfg.model)}
    path = save_checkpoint(model, tokenizer, cfg.checkpoint_dir(run_dir), meta)
    return Baseline(cfg, path, data, tokenizer, model, val, result, trained.train_s, trained.history)


def ensure_baseline(cfg: BaselineConfig, run_dir: Path, *, progress: bool = True) -> Baseline:
    """Load the baseline from ``run_dir`` if notebook 10 made it, else train it now."""
    from nbutils.models import torch_predictor

    path = cfg.checkpoint_dir(run_dir)
    if not (path / "nbutils.json").is_file():
        print(f"No baseline for these settings in {run_dir}: training it now (notebook 10 does the same).")
        return train_baseline(cfg, run_dir, progress=progress)
    meta = read_json(path / "nbutils.json")
    data = load_data(cfg)
    tokenizer = load_tokenizer(str(path))
    model = load_model(str(path), task=data.task, num_labels=max(data.num_labels, 2))
    val = encode_validation(cfg, data, tokenizer)
    result = evaluate(torch_predictor(model), data, val, desc="validate FP32")
    return Baseline(cfg, path, data, tokenizer, model, val, result, float(meta.get("train_s", 0.0)))
