# %% [markdown]
# # 40 · Export to ONNX, ONNX Runtime quantization, and parity
#
# **What you will do:** turn every model variant into an ONNX file (FP32, FP16, INT8 Q/DQ from ModelOpt's PTQ and
# QAT, and ONNX Runtime's own static and dynamic INT8 through Optimum), check each file, prove it computes what the
# PyTorch model computed, and measure its accuracy through ONNX Runtime on the CPU.
#
# **What you will learn:** what a deployable INT8 BERT looks like (QuantizeLinear/DequantizeLinear pairs around every
# MatMul), why the FP32 export goes through eager attention (so ONNX Runtime fuses Attention, SkipLayerNorm and
# BiasGelu), and how to tell real integer kernels from fake quantization.
#
# **What you need:** notebooks 10-30 (anything missing is built here; QAT variants need notebook 30 or are trained
# here briefly). CPU only; the CUDA/TensorRT rows say plainly when those providers are absent.
#
# **Default profile:** two of ONNX Runtime's four static calibrators (minmax, percentile-99.999) and no Optimum
# optimizer level: Optimum's `ORTOptimizer` runs the same `onnxruntime.transformers` fusions as Step 2's fused
# graph, so the default does that once; `--profile sst2` (or `-p optimum_levels=[O2]`) runs all four calibrators
# and O1-O3, to compare the levels with the fused graph. The default keeps only the
# files later notebooks read (Step 6); `keep_all_files` (on in the sst2 and gpu profiles) keeps every file.

# %% tags=["parameters"]
model: str = "default"  # model spec, as in notebook 10
data: str = "embedded"  # data spec, as in notebook 10
train_samples: int = 0  # training examples used by the baseline (0 means all)
eval_samples: int = 0  # validation examples to evaluate (0 means all)
epochs: float = 2.0  # baseline fine-tuning epochs (only used if the baseline must be trained here)
lr: float = 0.0001  # baseline learning rate
batch_size: int = 32  # baseline batch size
max_length: int = 64  # maximum tokens per sequence
seed: int = 0  # random seed
device: str = "auto"  # where PyTorch trains, calibrates and evaluates: auto (CUDA when a GPU is visible), cpu or cuda
train_precision: str = "auto"  # FP32 fine-tuning arithmetic: auto (BF16 autocast on a GPU), fp32 or bf16
calib_samples: int = 512  # calibration sentences (training split) for ONNX Runtime static quantization
opset: int = 17  # ONNX opset (17 or newer)
ort_calibrators: list = ["minmax", "percentile-99.999"]  # ONNX Runtime static calibrators (sst2/gpu profiles: all four)
optimum_levels: list = []  # Optimum ORTOptimizer levels to export (sst2/gpu profiles: O1-O3; O4 needs a GPU)
qat_epochs: float = 0.5  # QAT epochs if notebook 30 has not produced the QAT models
keep_all_files: bool = False  # keep every file made here (sst2/gpu profiles); default: only what later notebooks read
smoke: bool = False  # CI mode: tiny data, few calibration sentences (the smoke profile also picks one calibrator)
run_dir: str = ""  # run folder shared by the suite (empty: runs/standalone)
results_db: str = ""  # results database (empty: runs/results.sqlite)

# %%
import time

import pandas as pd

from nbutils import quant
from nbutils.core import env
from nbutils.core.vocab import main_metric, outputs_file, variant_dir
from nbutils.engines import ort_session
from nbutils.engines.registry import engine_for_file, recipes_read
from nbutils.engines.timing import time_callable
from nbutils.formats import to_onnx
from nbutils.formats.files import release
from nbutils.store import figures
from nbutils.training.baseline import BaselineConfig, ensure_baseline
from nbutils.training.inputs import synthetic_batch
from nbutils.training.metrics import paired_bootstrap
from nbutils.training.models import load_model
from nbutils.training.tasks import encode, evaluate, recorded
from nbutils.ui.explorers import VariantExplorer
from nbutils.ui.notebook import start

run = start("40_export", run_dir, results_db)
cfg = BaselineConfig.from_params(model=model, data=data, train_samples=train_samples, eval_samples=eval_samples,
                                 epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                                 smoke=smoke, device=device,
                                 train_precision=train_precision)
n_calib = min(calib_samples, 32) if smoke else calib_samples
calibrators, levels = ort_calibrators, optimum_levels  # explicit -p values always win (smoke profile sets short lists)

# %% [markdown]
# ## Step 1: collect the PyTorch models

# %%
base = ensure_baseline(cfg, run.run_dir)
fp32 = base.result
ptq_model, ptq_recipe = quant.ensure_ptq(base, run.run_dir, calib_samples=n_calib)
qat_models = {}
for kd in (False, True):
    path = quant.qat_dir(run.run_dir, cfg.key(), kd)
    name = "qat-kd" if kd else "qat"
    if (path / "quantizers.pt").is_file():
        qat_models[name] = quant.load_quantized(path, task=base.data.task, num_labels=max(base.data.num_labels, 2),
                                                device=cfg.where.torch)
    else:
        kd_cfg = quant.KDConfig() if kd else None
        qat_models[name], _ = quant.run_qat(base, ptq_model, run.run_dir, epochs=0.05 if smoke else qat_epochs,
                                            lr=2e-5, kd=kd_cfg, from_recipe=ptq_recipe)
eager = load_model(str(base.path), task=base.data.task, num_labels=max(base.data.num_labels, 2),
                   attn_implementation="eager")
heads, hidden = eager.config.num_attention_heads, eager.config.hidden_size
print(f"FP32 {fp32.metrics}; PTQ recipe {ptq_recipe}; QAT models: {list(qat_models)}")

# %% [markdown]
# ## Step 2: export FP32 (eager attention), fuse it, convert to FP16, and try Optimum's optimizer levels

# %%
task, src = base.data.task, str(base.path)
variants = {}
variants["fp32"] = to_onnx.export_torch(eager, variant_dir(run.run_dir, "fp32"), recipe="fp32", precision="fp32",
                                       source=src, task=task, opset=opset, config_src=base.path)
variants["fp32-fused"], fused = to_onnx.optimize_transformer(variants["fp32"], variant_dir(run.run_dir, "fp32-fused"),
                                                            num_heads=heads, hidden_size=hidden, recipe="fp32-fused")
variants["fp16"], _ = to_onnx.optimize_transformer(variants["fp32"], variant_dir(run.run_dir, "fp16"),
                                                  num_heads=heads, hidden_size=hidden, recipe="fp16", fp16=True)
for level in levels:
    v = to_onnx.optimum_optimize(variants["fp32"], variant_dir(run.run_dir, f"fp32-{level.lower()}"), level)
    variants[v.recipe] = v
print("fused operators in the FP32 graph:", fused)

# %% [markdown]
# ## Step 3: export INT8 Q/DQ from ModelOpt (PTQ, QAT, QAT+KD)
# ModelOpt's quantizers become QuantizeLinear/DequantizeLinear pairs: symmetric INT8, per-channel weights,
# explicit quantization as TensorRT expects.

# %%
for name, qm in [(ptq_recipe, ptq_model), *qat_models.items()]:
    variants[name] = to_onnx.export_torch(qm, variant_dir(run.run_dir, name), recipe=name, precision="int8",
                                         source=src, task=task, opset=opset, config_src=base.path)

# %% [markdown]
# ## Step 4: ONNX Runtime's own INT8 routes (Optimum)
# * **Dynamic INT8** (CPU): weights INT8 offline, activations quantized per call. We quantize both the plain export
#   (`ort-dynamic`) and the fused graph (`ort-dynamic-fused`; it needs `DefaultTensorType`, handled in
#   `to_onnx.ort_dynamic`), keep both as their own variants, and time them once here: which order is faster on this CPU?
# * **Static INT8 Q/DQ** with Optimum's `AutoCalibrationConfig` (the calibrators in `ort_calibrators`: minmax,
#   entropy, percentiles) and the `avx512_vnni` preset (asymmetric u8 activations, s8 per-channel weights).
#   `to_onnx.ort_static(..., preset="tensorrt")` makes the symmetric variant TensorRT expects; try it in exercise 4.

# %%
variants["ort-dynamic"] = to_onnx.ort_dynamic(variants["fp32"], variant_dir(run.run_dir, "ort-dynamic"))
variants["ort-dynamic-fused"] = to_onnx.ort_dynamic(variants["fp32-fused"],
                                                   variant_dir(run.run_dir, "ort-dynamic-fused"),
                                                   recipe="ort-dynamic-fused")
feed = synthetic_batch(1, cfg.max_length)
order = {}
for label, name in (("quantize, then ONNX Runtime optimizes", "ort-dynamic"),
                    ("optimize (fuse), then quantize", "ort-dynamic-fused")):
    s = ort_session.make_session(variants[name].path, "cpu")
    stats = time_callable(lambda s=s: s.session.run(None, {n: feed[n] for n in s.input_names}), batch=1,
                          warmup=3, iterations=10 if smoke else 50)
    order[f"{name} ({label})"] = round(stats.p50_ms, 3)
print("p50 ms at batch 1:", order, "-> faster here:", min(order, key=order.get))

calib = encode(base.data, "train", base.tokenizer, max_length=cfg.max_length, batch_size=32, limit=n_calib,
               pad_to_max=True).batches
calib_ds = to_onnx.calibration_dataset(calib, ort_session.make_session(variants["fp32"].path).input_names)
for c in calibrators:
    v = to_onnx.ort_static(variants["fp32"], variant_dir(run.run_dir, f"ort-static-{c}"), calib_ds, calibrator=c)
    variants[v.recipe] = v

# %% [markdown]
# ## Step 5: check every file and measure it through ONNX Runtime (CPU)
# `onnx.checker` + shape inference, Q/DQ counts, parity with the PyTorch model the file came from (max |Δ|, cosine,
# top-1 agreement, with a pass/fail threshold per precision), and task accuracy on the validation split.

# %%
rows, measurements = [], []
# Each file is compared with the PyTorch model it came from: the FP32 checkpoint, or ModelOpt's fake-quantized
# model for its Q/DQ exports. Their passes over the validation split were made before (the FP32 one by
# ensure_baseline, the fake-quantized ones by notebook 30) and kept: they are replayed, not computed again.
checkpoints = {ptq_recipe: quant.ptq_dir(run.run_dir, cfg.key()), "qat": quant.qat_dir(run.run_dir, cfg.key(), False),
               "qat-kd": quant.qat_dir(run.run_dir, cfg.key(), True)}
references = {name: quant.sim_predictor(run.run_dir, checkpoints[name], base.validation, lambda m=qm: m)
              for name, qm in [(ptq_recipe, ptq_model), *qat_models.items()]}
fp32_reference = base.reference()
for name, v in variants.items():
    provider = ort_session.accuracy_provider(v.precision, cfg.where)  # float files on the GPU there; INT8 on the CPU
    session = ort_session.make_session(v.path, provider)
    engine = engine_for_file(f"ort-{provider}", name, v.precision)  # one identity per variant (nbutils.core.vocab)
    # parity and accuracy share one pass over the file; the outputs are kept for notebook 70 (tasks.recorded)
    predict = recorded(lambda s=session: ort_session.ort_predictor(s), outputs_file(run.run_dir, engine, v.meta["sha256"]),
                       base.validation)
    reference = references.get(name, fp32_reference)
    par = to_onnx.parity(reference, predict, base.validation.batches, v.precision)
    res = evaluate(predict, base.data, base.validation, reference=fp32.predictions)
    main = main_metric(base.data.task)
    row = {"variant": name, "precision": v.precision, "size_mb": round(v.size_mb, 1),
           "size_vs_fp32": round(v.size_mb / variants["fp32"].size_mb, 2), "opset": v.meta["opset"],
           "Q (activations)": v.meta["QuantizeLinear"], "DQ": v.meta["DequantizeLinear"],
           "INT8-stored weights": v.meta.get("int8_weights", 0), "int8 matmuls (both inputs)": v.meta["matmuls_int8_both_inputs"],
           "matmuls": v.meta["matmuls"], **{k: round(x, 3) for k, x in res.metrics.items()},
           f"delta_{main}_pts": round(res.metrics[main] - fp32.metrics[main], 3),
           "delta_95ci": "[{low:+.2f}, {high:+.2f}]".format(**paired_bootstrap(fp32.scores, res.scores)),
           "parity_max_abs": par["max_abs_diff"], "parity_cosine": round(par["cosine"], 5),
           "parity_top1_%": round(par["top1_agreement"], 2), "parity_ok": par["parity_ok"]}
    rows.append(row)
    extra = {"variant": name, "file": str(v.path), "sha256": v.meta["sha256"], **session.provenance(),
             **{k: row[k] for k in ("parity_max_abs", "parity_cosine", "parity_top1_%", "parity_ok")}}
    measurements += figures.scores(res.metrics, recipe=name, engine=engine, precision=v.precision, seq=cfg.max_length,
                                   extra=extra)
    measurements.append(figures.file_size(v.size_mb, recipe=name, engine=engine, precision=v.precision, extra=extra))
table = pd.DataFrame(rows)
print(f"recorded {run.record(measurements, model=base.model_name, task=task, data=base.data.describe(), device=cfg.where)} figures")
table

# %% [markdown]
# ## Step 6: keep what later notebooks read
# An Optimum level's graph holds the fused graph's weights again (O2: 90.9 of its 91 MB on all-MiniLM-L6-v2), FP16
# is a GPU format, and a second ONNX Runtime calibrator changes only activation scales: each was measured above (its rows
# are in the results database, its outputs in `<run>/cache/outputs/`, so notebook 70 still scores it). The run then
# keeps the files later notebooks run or draw (`nbutils.engines.registry.recipes_read`); the others keep their
# `variant.json`, which says they were not kept. `keep_all_files=True` keeps everything (70 then times them too).

# %%
read_later = recipes_read(cfg.where)
freed = {}
for name, v in variants.items():
    later = name if name != ptq_recipe else "ptq"
    if not keep_all_files and later not in read_later:
        freed[name] = round(release(v, "not read by later notebooks on this device; keep_all_files=True keeps it"), 1)
print(f"kept {len(variants) - len(freed)} files; not kept (MB):", freed or "none")

# %% [markdown]
# ## Step 7: one variant beside FP32
# Pick a variant: its size, operator and Q/DQ counts, accuracy and parity figures next to the FP32 file's. Which
# INT8 file is smallest, and which stays closest to its PyTorch model? Notebook 45 asks whether the INT8 files
# really run in integer kernels; notebook 50 draws their graphs.

# %%
VariantExplorer(table, variant=ptq_recipe).show()

# %% [markdown]
# ## Summary
# * Every variant is a checked ONNX file with a sidecar (`onnx/<recipe>/variant.json`: recipe, source, opset, size,
#   sha256, operator and Q/DQ counts), written atomically, and its own rows in the results database.
# * Parity is judged per precision (thresholds in `to_onnx.PARITY`): the `parity_ok` column above says which files
#   passed on this run; a file that fails is shown as failing, never relaxed.
# * Which INT8 route lost the least accuracy here, and is it also the smallest file? The table answers both;
#   `size_vs_fp32` is each file's size as a fraction of the FP32 export's. ModelOpt's Q/DQ files store their
#   encoder weights as INT8 tensors behind DequantizeLinear (`INT8-stored weights`); their embedding table stays FP32,
#   which is most of what is left.
#
# ## Exercises
# 1. Open `onnx/<recipe>/variant.json` of the PTQ model: how many Q/DQ pairs guard weights, and how many activations?
# 2. Compare `ort-static-minmax` and `ort-static-percentile-99.999`: which calibration suits BERT activations better, and why?
# 3. Time `ort-dynamic` against `ort-dynamic-fused` with more iterations (Step 4): is the faster order stable?
# 4. Export `to_onnx.ort_static(variants["fp32"], variant_dir(run.run_dir, "ort-static-minmax-tensorrt"),
#    calib_ds, calibrator="minmax", preset="tensorrt")` and compare its accuracy and Q/DQ count with the VNNI preset.
