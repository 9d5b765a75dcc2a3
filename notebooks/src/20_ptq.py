# %% [markdown]
# # 20 · Post-training quantization with ModelOpt: placement and calibration
#
# **What you will do:** insert INT8 quantizers into the FP32 model from notebook 10, calibrate their ranges
# on training sentences with six methods (max, three percentiles, entropy, MSE), and compare validation
# accuracy, agreement with FP32 and output SQNR in one table, plus per-tensor weights and an FFN-only recipe.
#
# **What you will learn:** where INT8 goes in a BERT layer (TensorRT's rules), why a calibration *range* decides
# accuracy, and why percentile/entropy usually beat max on transformer activations (long-tailed outliers).
#
# **What you need:** notebook 10's checkpoint (built here if missing). CPU is enough: ModelOpt fake-quantizes in PyTorch.
#
# ### Why ModelOpt, and the names you know from older tutorials
# NVIDIA's `pytorch-quantization` (used by Hugging Face's QDQBERT example) is no longer maintained and its PyPI
# package is a placeholder that refuses to install. **NVIDIA ModelOpt** (`nvidia-modelopt`) is its successor: the same
# `TensorQuantizer`, max/histogram calibrators and Q/DQ ONNX export, applied to the *stock* Hugging Face model by
# `mtq.quantize(model, config, forward_loop)` instead of a special `QDQBert*` class.
#
# | pytorch-quantization / QDQBERT `quant_trainer` | here (ModelOpt + `nbutils.quant`) |
# |---|---|
# | `QDQBertForSequenceClassification` + `quant_modules.initialize()` | stock `BertForSequenceClassification` + `insert_quantizers(model, placement)` (calls `mtq.quantize`) |
# | `QuantDescriptor(num_bits=8, axis=(0,))` | quant_cfg entry `{"num_bits": 8, "axis": 0}` |
# | `--calibrator max / percentile / entropy / mse`, `--percentile 99.99` | `calibrators` parameter: `max`, `percentile-99.99`, `entropy`, `mse` |
# | `--quant-per-tensor` | placement `per-tensor` |
# | `--quant-disable-keyword embeddings`, `--quant-disable-layer-module` | `Placement(keep_float=..., only=...)` |
# | `quant_trainer.print_quant_summary` | `quant.quant_summary(model)` (a DataFrame) |
# | `matmul_q/k/v_input_quantizer`, `matmul_a_input_quantizer` (softmax output) | ModelOpt's `q/k/v_bmm_quantizer` + our `softmax_quantizer` |

# %% tags=["parameters"]
model: str = "default"  # model spec, as in notebook 10 (must match to reuse its checkpoint)
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
calib_samples: int = 512  # training sentences used for calibration (never validation)
calibrators: list = ["max", "percentile-99.9", "percentile-99.99", "percentile-99.999", "entropy", "mse"]  # methods to compare
placements: list = ["per-tensor", "ffn-only"]  # extra placements, calibrated with the best method
histogram_layer: str = ""  # quantizer whose histogram is plotted (empty: a middle FFN-output input)
explore_percentile: float = 99.99  # starting percentile of the clipping explorer (Step 4)
smoke: bool = False  # CI mode: tiny baseline, 32 calibration sentences
run_dir: str = ""  # run folder shared by the suite (empty: runs/standalone)
results_db: str = ""  # results database (empty: runs/results.sqlite)

# %%
import pandas as pd

from nbutils import quant
from nbutils.core.vocab import main_metric
from nbutils.report import charts
from nbutils.training.baseline import BaselineConfig, ensure_baseline
from nbutils.training.models import torch_predictor
from nbutils.training.tasks import encode, evaluate
from nbutils.ui.explorers import CalibrationExplorer
from nbutils.ui.notebook import start

run = start("20_ptq", run_dir, results_db)
cfg = BaselineConfig.from_params(model=model, data=data, train_samples=train_samples, eval_samples=eval_samples,
                                 epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                                 smoke=smoke, device=device,
                                 train_precision=train_precision)
n_calib = min(calib_samples, 32) if smoke else calib_samples
recipes = [quant.Recipe(c) for c in calibrators] + [quant.Recipe("max", p) for p in placements]
for r in recipes:
    r.validate()  # unknown calibrator or placement: a clear error before any work

# %% [markdown]
# ## Step 1: load the FP32 baseline and the calibration set
# Calibration uses *training* sentences; accuracy is measured on the validation split only.

# %%
base = ensure_baseline(cfg, run.run_dir)
calib = encode(base.data, "train", base.tokenizer, max_length=cfg.max_length, batch_size=32, limit=n_calib).batches
fp32 = base.result
print(base.data.describe())
print(f"FP32 validation: {fp32.metrics}; calibration set: {sum(len(b['input_ids']) for b in calib)} sentences")

# %% [markdown]
# ## Step 2: place the quantizers (TensorRT's BERT rules)
# Weights per channel; activations per tensor at every linear input, at Q, K, V and the softmax output (both
# attention matmuls), and at the LayerNorm inputs (the residual sums). Embeddings and the classifier stay FP32.
#
# ModelOpt's SDPA patch quantizes Q, K and V, but the softmax output stays inside the fused SDPA call, so the
# softmax·V matmul would take an unquantized input. `insert_quantizers` closes that gap with an explicit attention
# forward and a `softmax_quantizer`, as QDQBERT and TensorRT's fused attention expect.

# %%
qmodel, collect_s = quant.quantize_ptq(base.model, calib, quant.Recipe("max"), progress=True)
print("enabled quantizers by kind:", quant.count_enabled(qmodel))
summary = quant.quant_summary(qmodel)
summary[summary.enabled].head(12)

# %% [markdown]
# ## Step 3: compare the calibration methods
# The histograms are collected once; each method then picks its own range from them.

# %%
import time

rows = [quant.score_row("fp32", fp32, fp32)]
for name in calibrators:
    t0 = time.perf_counter()
    quant.apply_calibrator(qmodel, name)
    amax_s = time.perf_counter() - t0
    res = evaluate(torch_predictor(qmodel), base.data, base.validation, reference=fp32.predictions, desc=name)
    rows.append(quant.score_row(f"ptq-{name}", res, fp32, calibration_s=collect_s + amax_s, calib_samples=n_calib))
table = pd.DataFrame(rows)
table

# %% [markdown]
# ## Step 4: explore what a clipping range does to one tensor
# Each activation's |value| histogram (log scale) with the range every calibrator chose. Max keeps the rarest
# outlier; a percentile clips the tail so the 127 levels resolve the bulk more finely. Pick any quantizer (grouped by
# layer and role) and drag the percentile: the SQNR and the share of clipped values are recomputed from the
# histogram already collected (no recalibration). Where does SQNR peak for this tensor, and which calibrator above
# lands closest to it? Does the answer change between an FFN input and the softmax output?

# %%
qnames = [n for n, _ in quant.quantizers(qmodel) if n.endswith("output.dense.input_quantizer") and "attention" not in n]
layer_q = histogram_layer or qnames[len(qnames) // 2]
explorer = CalibrationExplorer.from_model(qmodel, calibrators, quantizer=layer_q, percentile=explore_percentile)
explorer.show()

# %% [markdown]
# ## Step 5: per-tensor weights and an FFN-only recipe
# Same data, the best calibrator; only the placement changes.

# %%
ptq_rows = table[table.recipe.str.startswith("ptq-")]
main = main_metric(base.data.task)
best_cal = ptq_rows.sort_values([main, "sqnr_db"], ascending=False).iloc[0]["recipe"][4:]
for placement in placements:
    recipe = quant.Recipe(best_cal, placement)
    pm, cal_s = quant.quantize_ptq(base.model, calib, recipe)
    res = evaluate(torch_predictor(pm), base.data, base.validation, reference=fp32.predictions, desc=recipe.name)
    row = quant.score_row(recipe.name, res, fp32, calibration_s=cal_s, calib_samples=n_calib)
    row["enabled_quantizers"] = sum(quant.count_enabled(pm).values())
    rows.append(row)
table = pd.DataFrame(rows)
table

# %% [markdown]
# ## Step 6: keep the best recipe and record everything

# %%
quant.apply_calibrator(qmodel, best_cal)
best_path = quant.save_quantized(qmodel, base.tokenizer, quant.ptq_dir(run.run_dir, cfg.key()),
                                 {"placement": "trt-bert", "recipe": f"ptq-{best_cal}", "baseline": str(base.path),
                                  "calib_samples": n_calib, "task": base.data.task})
print(f"best PTQ recipe: ptq-{best_cal} -> {best_path}")
n = run.record(quant.rows_to_measurements(rows, seq=cfg.max_length), model=base.model_name, task=base.data.task,
               data=base.data.describe(), device=cfg.where)
print(f"recorded {n} figures")
charts.bar(table, x="recipe", y=main, title=f"Validation {main} by recipe (FP32 = {fp32.metrics[main]:.2f})")

# %% [markdown]
# ## Summary
# * INT8 placement follows TensorRT's BERT rules; the quantizer table shows every range that was chosen.
# * One histogram pass serves every calibrator; the table shows accuracy, agreement, SQNR and calibration time.
# * The best recipe is saved in the run folder; notebook 30 fine-tunes it (QAT) and notebook 40 exports it to ONNX.
#
# ## Exercises
# 1. Set `calib_samples=32` and then `2048`: which calibrators are sensitive to the calibration-set size?
# 2. Plot the histogram of a `softmax_quantizer`: why does max calibration work well there?
# 3. Add a placement to `quant.PLACEMENTS` that keeps the last two layers in FP32 (`keep_float`). Does it recover accuracy?
