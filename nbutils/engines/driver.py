"""The benchmark driver shared by notebook 60 and ``python -m nbutils bench`` (the CLI used on the GPU machine)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nbutils import engines
from nbutils.store.notebook_run import NotebookRun
from nbutils.training.inputs import synthetic_batch
from nbutils.training.models import display_name, is_untrained


def model_slug(spec: str) -> str:
    """A folder-safe name for a model spec."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", display_name(spec)).strip("_")


def benchmark(run: NotebookRun, model: str, names: Sequence[str], batch_sizes: Sequence[int],
              seq_lengths: Sequence[int], *, warmup: int, iterations: int, threads: int = 0,
              assets: engines.Assets | None = None, progress: bool = True, task: str = "classification",
              model_name: str | None = None, nncf: Any = None,
              device: Any = None) -> engines.GridResult:
    """Validate the grid, time every engine, record all figures; returns the grid's rows, skips and failures.

    ``model_name`` overrides the name stored with the figures (a trained checkpoint is stored under its model's
    name, so notebook 70 can join latency with accuracy); ``assets.ptq_recipe`` names the ModelOpt PTQ recipe
    behind the ``int8-qdq`` engines; ``device`` (a :class:`~nbutils.core.device.Device`) is where PyTorch engines run.
    Failures are *not* raised here (what was measured is recorded first): call
    ``result.raise_failures()``.
    """
    engines.validate_grid(names, batch_sizes, seq_lengths, warmup=warmup, iterations=iterations)
    if assets is None:
        calib = [synthetic_batch(8, min(128, max(seq_lengths)), seed=i) for i in range(4)]
        assets = engines.Assets(model, run.path("bench", model_slug(model)), task=task, calib=calib, nncf=nncf)
    max_pos = int(assets.torch_model().config.max_position_embeddings)
    engines.validate_grid(names, batch_sizes, seq_lengths, max_pos, warmup=warmup, iterations=iterations)
    profile = ((1, min(seq_lengths)), (max(batch_sizes), max(seq_lengths)), (max(batch_sizes), max(seq_lengths)))
    built = [engines.make_engine(n, assets, threads=threads, cache_dir=run.path("trt-cache"), profile=profile,
                                 device=device)
             for n in names]
    result = engines.run_grid(built, batch_sizes, seq_lengths, warmup=warmup, iterations=iterations,
                              progress=progress)
    result.rows = [{**r, "extra": {**r["extra"], "threads": threads or "default"}} for r in result.rows]
    if result.rows:
        run.record(engines.measurements(result.rows, untrained=is_untrained(model)),
                   model=model_name or display_name(model), task=task, data="synthetic token ids (latency only)")
    return result


def trained_assets(base: Any, run_dir: Path, *, calib_samples: int, folder: Path) -> tuple[engines.Assets, str]:
    """Assets for the run's trained baseline: its checkpoint, its PTQ model, and notebook 40's ONNX files."""
    from nbutils import quant
    from nbutils.core.vocab import variant_dir
    from nbutils.training.tasks import encode

    ptq_model, ptq_recipe = quant.ensure_ptq(base, run_dir, calib_samples=calib_samples)
    calib = encode(base.data, "train", base.tokenizer, max_length=base.config.max_length, batch_size=32,
                   limit=calib_samples, pad_to_max=True).batches
    recipes = ["fp32", "fp32-fused", "fp16", "ort-dynamic", "ort-dynamic-fused", "ort-static-minmax"]
    dirs = {**{r: variant_dir(run_dir, r) for r in recipes}, "ptq": variant_dir(run_dir, ptq_recipe),
            "nncf-ptq": variant_dir(run_dir, "nncf-ptq")}
    assets = engines.Assets(str(base.path), folder, task=base.data.task, num_labels=max(base.data.num_labels, 2),
                            calib=calib, ptq_model=ptq_model, onnx_dirs=dirs, ptq_recipe=ptq_recipe)
    return assets, ptq_recipe


def write_tables(frame: Any, dest: Path, stem: str) -> list[Path]:
    """Write a table as CSV and Markdown into the run folder (atomically); returns the paths."""
    from nbutils.core.paths import atomic_path

    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for ext, write in (("csv", lambda f, p: f.to_csv(p)), ("md", lambda f, p: p.write_text(f.to_markdown() + "\n"))):
        path = dest / f"{stem}.{ext}"
        with atomic_path(path) as tmp:
            write(frame, tmp)
        out.append(path)
    return out


def score_file(path: str | Path, *, data: str, tokenizer: str, providers: Sequence[str] = ("cpu",),
               max_length: int = 64, eval_samples: int = 0) -> list[dict[str, Any]]:
    """Accuracy of one ONNX file on a validation split through each ONNX Runtime provider (``python -m nbutils score``).

    The first provider is the reference: each later one's row says how often it agrees with it, so a provider that
    changes the answers (e.g. OpenVINO's execution provider against ONNX Runtime's CPU kernels on the same file)
    shows. ``tokenizer``: a checkpoint folder or model spec whose tokenizer made the file's training data. An
    unavailable provider is an error naming why (never a silent CPU fallback).
    """
    from nbutils.engines.ort_session import make_session, ort_predictor
    from nbutils.formats.files import check_model_file
    from nbutils.training.data import load_task_data
    from nbutils.training.metrics import paired_bootstrap
    from nbutils.training.models import load_tokenizer
    from nbutils.training.tasks import encode, evaluate

    check_model_file(path)
    sessions = [make_session(path, p, fallback=False) for p in providers]  # every provider checked before any work
    task_data = load_task_data(data, eval_samples=eval_samples)
    encoded = encode(task_data, "validation", load_tokenizer(tokenizer), max_length=max_length, batch_size=32)
    rows: list[dict[str, Any]] = []
    first = None
    for provider, info in zip(providers, sessions, strict=True):
        res = evaluate(ort_predictor(info), task_data, encoded, reference=first.predictions if first else None)
        row = {"provider": provider, "runs_on": info.provider, "examples": len(res.predictions),
               **{k: round(v, 2) for k, v in res.metrics.items()}}
        if first is not None:
            row["delta_95ci"] = "[{low:+.2f}, {high:+.2f}]".format(**paired_bootstrap(first.scores, res.scores))
        row["options"] = {k: v for k, v in info.provenance().items() if k not in ("provider", "provider_requested")}
        rows.append(row)
        first = first or res
    return rows
