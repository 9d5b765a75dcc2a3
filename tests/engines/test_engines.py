import numpy as np
import pandas as pd
import pytest
import torch

from nbutils import engines
from nbutils.core.errors import NbUtilsError
from nbutils.quant import fp8
from nbutils.report import tables
from nbutils.store.notebook_run import open_run
from nbutils.training.inputs import synthetic_batch
from nbutils.training.models import load_model


def test_grid_validation_before_timing():
    engines.validate_grid(["torch-eager:fp32"], [1, 8], [128], 512)
    with pytest.raises(NbUtilsError, match="unknown engine"):
        engines.validate_grid(["torch-eager:fp64"], [1], [128], 512)
    with pytest.raises(NbUtilsError, match="batch size"):
        engines.validate_grid(["torch-eager:fp32"], [0], [128], 512)
    with pytest.raises(NbUtilsError, match="outside 2..512"):
        engines.validate_grid(["torch-eager:fp32"], [1], [1024], 512)


def test_engine_names_are_consistent():
    from nbutils.core.vocab import RUNTIMES

    for name, spec in engines.ENGINES.items():
        assert spec.runtime in RUNTIMES and spec.name == name
        assert spec.precision in ("fp32", "tf32", "fp16", "bf16", "fp8", "int8"), name
    # the database identity is (engine, recipe): every engine variant must have its own
    labels = [(s.name, s.recipe) for s in engines.ENGINES.values()]
    assert len(labels) == len(set(labels)), "two engines would be indistinguishable in the database"


def test_fp8_linear_matches_dequantized_reference():
    lin = torch.nn.Linear(64, 32)
    x = torch.randn(4, 7, 64)
    dyn = fp8.fp8_linear(lin)
    ref = lin(x)
    out = dyn(x)
    assert out.shape == ref.shape
    rel = (out - ref).norm() / ref.norm()
    assert 1e-4 < rel < 0.08  # e4m3 has 3 mantissa bits: a few percent, never zero error
    static = fp8.fp8_linear(lin, act_amax=float(x.abs().max()))
    rel_s = (static(x) - ref).norm() / ref.norm()
    assert rel_s < 0.1
    # the CPU emulation computes what torch._scaled_mm computes (FP32 accumulation, then the scales)
    x2 = x.reshape(-1, 64)
    x_q, x_s = fp8._quantize_rows(x2)
    want = torch._scaled_mm(x_q, dyn.weight_fp8.t(), scale_a=x_s, scale_b=dyn.weight_scale, out_dtype=torch.float32)
    assert torch.allclose(dyn(x).reshape(-1, 32) - lin.bias, want, atol=1e-2, rtol=1e-2)
    with pytest.raises(NbUtilsError, match="divisible by 16"):
        fp8.fp8_linear(torch.nn.Linear(10, 32))


def test_fp8_model_conversion_keeps_head_and_predictions():
    m = load_model("random:bert-tiny")
    batches = [synthetic_batch(4, 16, seed=i) for i in range(2)]
    f = load_model("random:bert-tiny")
    amax = fp8.calibrate_activations(f, batches)
    assert fp8.convert_to_fp8(f, act_amax=amax) == 12
    assert isinstance(f.classifier, torch.nn.Linear)
    feed = {k: torch.as_tensor(v) for k, v in batches[0].items()}
    with torch.no_grad():
        assert torch.allclose(m(**feed).logits, f(**feed).logits, atol=0.05)


def test_cpu_grid_records_every_figure(tmp_path):
    run = open_run(str(tmp_path / "r1"), "test", str(tmp_path / "db.sqlite"))
    from nbutils.engines.driver import benchmark

    rows, skipped = benchmark(run, "random:bert-tiny", ["torch-eager:fp32", "ort-cpu:int8-dynamic", "ort-cuda:fp16"],
                              [1, 2], [16], warmup=1, iterations=3, progress=False)
    assert set(pd.DataFrame(rows)["engine"]) == {"torch-eager:fp32", "ort-cpu:int8-dynamic"}
    assert {(r["engine_name"], r["batch"]) for r in rows} == {(e, b) for e in ("torch-eager:fp32", "ort-cpu:int8-dynamic")
                                                              for b in (1, 2)}
    from nbutils.core import env

    if not env.ort_cuda_status().usable:
        assert [s["engine"] for s in skipped] == ["ort-cuda:fp16"] and "CUDAExecutionProvider" in skipped[0]["reason"]
    from nbutils.store.db import read_results

    df = read_results("r1", tmp_path / "db.sqlite", all_columns=True)
    assert len(df) == 4 * 6 and set(df.model) == {"bert-tiny (untrained)"}
    assert all('"untrained": true' in e for e in df.extra)
    mem = df[df.metric == "peak_memory_mb"]
    assert len(mem) == 4 and (mem.value >= 0).all() and (mem.unit == "MB").all()
    # RSS over the pre-setup baseline: the allocator may reuse pages an earlier model freed, so small models can
    # read near 0 MB here (the meter itself is checked on a known allocation below)
    assert all("RSS" in e for e in df[df.metric == "peak_memory_mb"].extra)


def test_memory_meter_sees_an_allocation():
    import numpy as np

    from nbutils.engines.memory import MemoryMeter

    meter = MemoryMeter("cpu").start()
    block = np.ones(200_000_000 // 8)  # 200 MB, touched
    peak = meter.peak_mb()
    del block
    meter.stop()
    assert 150 < peak < 400 and "RSS" in meter.method


def test_pareto_front_and_speedups():
    pts = pd.DataFrame({"p50_ms": [10.0, 5.0, 5.0, 2.0, 8.0], "accuracy": [90.0, 89.0, 85.0, 80.0, 88.0]})
    assert list(tables.pareto_front(pts, "p50_ms", "accuracy")) == [True, True, False, True, False]
    frame = pd.DataFrame({"model": "m", "seq": 128, "batch": 1, "metric": "latency_p50_ms",
                          "engine": ["torch-eager:fp32", "ort-cpu:fp32", "ort-cpu:int8-dynamic"],
                          "precision": ["fp32", "fp32", "int8"],
                          "recipe": ["fp32", "fp32", "ort-dynamic"], "value": [100.0, 40.0, 10.0]})
    sp = tables.speedups(frame).set_index("label")
    assert sp.loc["ort-cpu:int8-dynamic · ort-dynamic", "speedup_vs_eager_fp32"] == pytest.approx(10.0)
    assert sp.loc["ort-cpu:int8-dynamic · ort-dynamic", "speedup_vs_best_float"] == pytest.approx(4.0)
    assert np.isclose(sp.loc["torch-eager:fp32 · fp32", "speedup_vs_eager_fp32"], 1.0)


def test_ladder_ratios_are_between_neighbours_of_one_run():
    from nbutils.engines import ENGINES, LADDERS

    assert all(e in ENGINES for steps in LADDERS.values() for e, _ in steps)  # every step is a real engine
    steps = LADDERS["CPU: ONNX Runtime"]
    frame = pd.DataFrame({"id": [1, 2, 3, 4, 5], "seq": 128, "metric": "latency_p50_ms",
                          "batch": [1, 1, 1, 1, 8],
                          "engine": ["torch-eager:fp32", "ort-cpu:fp32", "ort-cpu:int8-dynamic-fused",
                                     "ort-cpu:fp32-fused", "torch-eager:fp32"],
                          "value": [40.0, 20.0, 5.0, 10.0, 300.0]})
    lad = tables.ladder(frame, steps)
    b1 = lad[lad.batch == 1].set_index("engine")
    assert list(b1.step) == [1, 2, 3, 4]  # ladder order, not timing order
    assert b1.loc["ort-cpu:fp32", "x_vs_previous"] == pytest.approx(2.0)
    assert b1.loc["ort-cpu:fp32-fused", "x_vs_previous"] == pytest.approx(2.0)
    assert b1.loc["ort-cpu:int8-dynamic-fused", "x_vs_previous"] == pytest.approx(2.0)
    assert b1.loc["ort-cpu:int8-dynamic-fused", "x_vs_first"] == pytest.approx(8.0)
    # a missing step leaves the next ratio empty: two changes at once are not one change's worth
    gap = tables.ladder(frame[frame.engine != "ort-cpu:fp32-fused"], steps).set_index(["batch", "engine"])
    assert np.isnan(gap.loc[(1, "ort-cpu:int8-dynamic-fused"), "x_vs_previous"])
    assert gap.loc[(1, "ort-cpu:int8-dynamic-fused"), "x_vs_first"] == pytest.approx(8.0)
    assert len(gap.loc[8]) == 1 and np.isnan(gap.loc[(8, "torch-eager:fp32"), "x_vs_previous"])


def test_bench_cli_prints_the_ladder_it_timed(capsys):
    from nbutils.suite.cli import main

    assert main(["bench", "--model", "random:bert-tiny", "--engines", "torch-eager:fp32,ort-cpu:fp32",
                 "--batch", "1", "--seq", "8", "--iterations", "3", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    p50 = {line.split()[0]: float(line.split()[4]) for line in out.splitlines() if line.startswith(("torch-", "ort-"))}
    step2 = next(line for line in out.splitlines() if " 2. ort-cpu:fp32 " in line)
    assert "ladder CPU: ONNX Runtime" in out
    assert float(step2.split()[5].lstrip("x")) == pytest.approx(p50["torch-eager:fp32"] / p50["ort-cpu:fp32"], rel=0.01)


def test_speed_sentences_are_computed_from_the_rows():
    rows = pd.DataFrame({"engine": ["ov-cpu:fp32", "ov-cpu:int8", "ort-cpu:int8-dynamic-fused", "ort-cpu:fp32"],
                         "recipe": ["fp32", "nncf-ptq", "ort-dynamic-fused", "fp32"], "batch": 1, "seq": 128,
                         "p50_ms": [21.8, 29.2, 16.9, 22.7]})  # the AVX2-only host's figures of issue 21
    text = "\n".join(tables.speed_findings(rows, "none"))
    assert "INT8 dot-product instructions: none" in text
    assert "OpenVINO INT8 is 1.34× slower than OpenVINO FP32" in text
    assert "fastest INT8 variant is ort-cpu:int8-dynamic-fused · ort-dynamic-fused (16.90 ms), 1.29× faster than" in text
    rows.loc[1, "p50_ms"] = 21.5
    assert "as fast (within 3%) as OpenVINO FP32" in "\n".join(tables.speed_findings(rows, "vnni"))
