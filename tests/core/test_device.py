"""The device parameter: what ``auto`` picks, what figures record, and the errors before any work (CPU only)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nbutils.core import device
from nbutils.core.errors import NbUtilsError
from nbutils.store.db import Measurement
from nbutils.store.notebook_run import with_device
from nbutils.training.baseline import BaselineConfig, train_baseline

NO_GPU = lambda: (False, "", None, False)  # noqa: E731
H100 = lambda: (True, "NVIDIA H100 80GB HBM3", 81_000.0, True)  # noqa: E731
OLD_GPU = lambda: (True, "Tesla T4", 15_000.0, False)  # noqa: E731


def test_auto_picks_cuda_when_a_gpu_is_visible_else_cpu():
    assert device.resolve("auto", probe=H100).kind == "cuda"
    assert device.resolve("auto", probe=H100).torch == "cuda:0"
    assert device.resolve("auto", probe=NO_GPU).kind == "cpu"
    assert device.resolve("cpu", probe=H100).kind == "cpu"  # an explicit cpu wins over a visible GPU
    assert device.resolve(" CUDA ", probe=H100).kind == "cuda"


def test_auto_on_this_machine_matches_torch():
    assert device.resolve("auto").is_cuda == torch.cuda.is_available()


def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(NbUtilsError, match="sees no CUDA GPU") as exc:
        device.resolve("cuda", probe=NO_GPU)
    assert "device='auto'" in exc.value.fix


def test_unknown_device_is_refused():
    with pytest.raises(NbUtilsError, match="unknown device 'gpu'"):
        device.resolve("gpu", probe=H100)


def test_train_precision_auto_is_bf16_only_on_a_bf16_gpu():
    assert device.resolve("auto", probe=H100).train_precision("auto") == "bf16"
    assert device.resolve("auto", probe=OLD_GPU).train_precision("auto") == "fp32"
    assert device.resolve("cpu").train_precision("auto") == "fp32"
    assert device.resolve("auto", probe=H100).train_precision("fp32") == "fp32"
    with pytest.raises(NbUtilsError, match="needs a GPU with BF16"):
        device.resolve("cpu").train_precision("bf16")
    with pytest.raises(NbUtilsError, match="unknown train_precision"):
        device.resolve("cpu").train_precision("fp8")


def test_meta_is_what_figures_record():
    meta = device.resolve("auto", probe=H100).meta()
    assert meta == {"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "device_requested": "auto"}


def test_with_device_fills_rows_by_runtime():
    gpu = device.resolve("auto", probe=H100)
    torch_row = with_device(Measurement("accuracy", 90.0, "qat", "torch-eager:int8-sim", "int8-sim"), gpu)
    ort_row = with_device(Measurement("accuracy", 89.0, "qat", "ort-cpu:int8-qdq", "int8"), gpu)
    trt_row = with_device(Measurement("accuracy", 89.0, "ptq", "ort-trt:int8", "int8"), gpu)
    kept = with_device(Measurement("accuracy", 1.0, "x", "torch-eager:fp32", "fp32", extra={"device": "cpu"}), gpu)
    assert torch_row.extra["device"] == "cuda" and torch_row.extra["device_name"].startswith("NVIDIA")
    assert ort_row.extra == {"device": "cpu"}  # ONNX Runtime's CPU provider ran it, wherever PyTorch ran
    assert trt_row.extra == {"device": "cuda"}
    assert kept.extra == {"device": "cpu"}


def test_memory_estimate_grows_with_batch_and_length():
    shape = {"n_params": 110_000_000, "hidden": 768, "layers": 12, "heads": 12}
    states = 110e6 * 16 / 2**20  # weights + gradients + AdamW moments, 4 bytes each
    small = device.training_memory_mb(**shape, batch=8, seq=128)
    assert small > states
    assert device.training_memory_mb(**shape, batch=64, seq=128) - states == pytest.approx(8 * (small - states))
    assert device.training_memory_mb(**shape, batch=8, seq=512) - states > 4 * (small - states)  # attention: s²
    assert device.training_memory_mb(**shape, batch=8, seq=128, precision="bf16") < small


def test_check_fits_refuses_a_batch_the_gpu_cannot_hold():
    gpu = device.resolve("auto", probe=H100)
    device.check_fits(gpu, 10_000, "fine-tuning", free_mb=lambda: 80_000)
    with pytest.raises(NbUtilsError, match="needs about 90,000 MB of GPU memory") as exc:
        device.check_fits(gpu, 90_000, "fine-tuning at batch 512", free_mb=lambda: 80_000)
    assert "lower batch_size" in exc.value.fix
    device.check_fits(device.resolve("cpu"), 1e12, "anything", free_mb=lambda: 0)  # no check on the CPU


def test_to_device_and_model_device():
    model = torch.nn.Linear(3, 2)
    assert device.model_device(model).type == "cpu"
    batch = device.to_device({"input_ids": np.ones((2, 3), dtype=np.int64)}, device.model_device(model))
    assert isinstance(batch["input_ids"], torch.Tensor) and batch["input_ids"].device.type == "cpu"
    assert device.model_device(torch.nn.ReLU()).type == "cpu"


def test_cpu_copy_leaves_a_gpu_model_where_it_is(monkeypatch):
    """Converters get a CPU model: the same object on the CPU, a copy (original untouched) from elsewhere."""
    model = torch.nn.Linear(3, 2)
    assert device.cpu_copy(model) is model
    monkeypatch.setattr(device, "model_device", lambda m: torch.device("cuda"))  # as if it lived on a GPU
    copy = device.cpu_copy(model)
    assert copy is not model and torch.equal(copy.weight, model.weight)
    copy.weight.data.zero_()
    assert model.weight.abs().sum() > 0


def test_config_key_ignores_the_device_but_not_bf16():
    common = dict(model="random:minilm", data="embedded", train_samples=16, eval_samples=8, epochs=1.0, lr=1e-4,
                  batch_size=8, max_length=32, seed=0, smoke=True)
    cpu = BaselineConfig.from_params(**common, device="cpu")
    legacy = BaselineConfig("random:minilm", "embedded", 16, 8, 1.0, 1e-4, 8, 32, 0)
    assert cpu.key() == legacy.key()  # FP32 checkpoints keep the keys of earlier runs
    assert cpu.where.kind == "cpu" and cpu.train_precision == "fp32"
    bf16 = BaselineConfig("random:minilm", "embedded", 16, 8, 1.0, 1e-4, 8, 32, 0, "bf16")
    assert bf16.key() != cpu.key()


def test_from_params_with_cuda_and_no_gpu_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(device, "_cuda_probe", NO_GPU)
    with pytest.raises(NbUtilsError, match="sees no CUDA GPU"):
        BaselineConfig.from_params(model="random:minilm", data="embedded", train_samples=16, eval_samples=8,
                                   epochs=1.0, lr=1e-4, batch_size=8, max_length=32, seed=0, smoke=True, device="cuda")
    assert not any(tmp_path.iterdir())


def test_training_that_cannot_fit_writes_no_checkpoint(tmp_path, monkeypatch):
    """A GPU without enough memory for the batch: refused after loading the model, before training or writing."""
    gpu = device.Device("cuda", "Tiny GPU", "cuda", 100.0, True)
    cfg = BaselineConfig("random:minilm", "embedded", 16, 8, 1.0, 1e-4, 8, 32, 0, "fp32", gpu)
    monkeypatch.setattr(device, "cuda_free_mb", lambda: 1.0)
    with pytest.raises(NbUtilsError, match="Tiny GPU has 1 MB free"):
        train_baseline(cfg, tmp_path, progress=False)
    assert not cfg.checkpoint_dir(tmp_path).exists()
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def test_int8_table_deltas_and_intervals_are_paired_per_example():
    import pandas as pd  # noqa: F401

    from nbutils.report.tables import int8_table
    from nbutils.training.tasks import EvalResult

    fp32 = EvalResult({"exact_match": 50.0, "f1": 60.0}, [], None, np.array([100.0, 20.0, 60.0, 60.0]))
    same = EvalResult({"exact_match": 50.0, "f1": 60.0}, [], None, fp32.scores.copy())
    worse = EvalResult({"exact_match": 25.0, "f1": 45.0}, [], None, np.array([100.0, 0.0, 20.0, 60.0]))
    table = int8_table([("qat (PyTorch)", "torch-eager:int8-sim", same), ("qat (ORT)", "ort-cpu:int8-qdq", worse)],
                       fp32)
    assert list(table["model"]) == ["fp32", "qat (PyTorch)", "qat (ORT)"]
    assert list(table.columns[:4]) == ["model", "engine", "exact_match", "f1"]
    assert table.loc[0, "Δ f1"] == ""  # the reference has no delta
    assert table.loc[1, "Δ f1"] == 0.0 and table.loc[1, "95% CI"] == "[+0.00, +0.00]"
    assert table.loc[2, "Δ f1"] == -15.0  # mean of the per-example F1 differences
    assert table.loc[1, "differs from FP32"] == "cannot tell"


def test_accuracy_provider_keeps_int8_files_on_the_cpu(monkeypatch):
    from nbutils.core import env
    from nbutils.engines import ort_session

    gpu = device.resolve("auto", probe=H100)
    monkeypatch.setattr(env, "ort_cuda_status", lambda: env.Capability("ort-cuda", True))
    assert ort_session.accuracy_provider("fp16", gpu) == "cuda"
    assert ort_session.accuracy_provider("fp32", gpu) == "cuda"
    assert ort_session.accuracy_provider("int8", gpu) == "cpu"  # ONNX Runtime's INT8 kernels are the CPU's
    assert ort_session.accuracy_provider("fp32", device.resolve("cpu")) == "cpu"
    monkeypatch.setattr(env, "ort_cuda_status", lambda: env.Capability("ort-cuda", False, reason="no onnxruntime-gpu"))
    assert ort_session.accuracy_provider("fp16", gpu) == "cpu"


def test_fine_tune_and_latency_follow_the_model_device():
    """On the CPU, bf16 autocast is a no-op (FP32 arithmetic) and timing uses the wall clock."""
    from nbutils.engines.timing import torch_latency
    from nbutils.training.inputs import synthetic_batch
    from nbutils.training.models import fine_tune, load_model

    model = load_model("random:minilm", num_labels=2, seed=0)
    batch = synthetic_batch(4, 16) | {"labels": np.array([0, 1, 0, 1])}
    result = fine_tune(model, [batch], epochs=2, progress=False, precision="bf16")
    assert len(result.history) == 2 and all(np.isfinite(r["loss"]) for r in result.history)
    stats = torch_latency(model, batches=[2], seq=16, iterations=3, warmup=1)
    assert stats[0].batch == 2 and stats[0].p50_ms > 0
