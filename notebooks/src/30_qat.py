# %% [markdown]
# # 30 · Quantization-aware training (QAT), with and without distillation
#
# **What you will do:** start from the best PTQ model of notebook 20 and fine-tune it *with* fake quantization in the
# forward pass (ModelOpt's straight-through estimator passes gradients through the rounding), once with the task
# loss and once with logit distillation from the FP32 model; then compare FP32, PTQ, QAT and QAT+KD.
#
# **What you will learn:** how a few hundred steps at a small learning rate let the weights adapt to INT8 rounding, and
# why distillation from the FP32 teacher helps when labelled data is scarce.
#
# **What you need:** notebook 20's best PTQ checkpoint (built here if missing).
#
# **Default profile:** half an epoch of QAT per variant (about 25 steps on the embedded set); `--profile sst2` trains
# on 8,000 SST-2 sentences, where the curves have room to move.

# %% tags=["parameters"]
model: str = "default"  # model spec, as in notebook 10
data: str = "embedded"  # data spec, as in notebook 10
train_samples: int = 0  # training examples (baseline and QAT; 0 means all)
eval_samples: int = 0  # validation examples to evaluate (0 means all)
epochs: float = 2.0  # baseline fine-tuning epochs (only used if the baseline must be trained here)
lr: float = 0.0001  # baseline learning rate
batch_size: int = 32  # batch size (baseline and QAT)
max_length: int = 64  # maximum tokens per sequence
seed: int = 0  # random seed
device: str = "auto"  # where PyTorch trains, calibrates and evaluates: auto (CUDA when a GPU is visible), cpu or cuda
train_precision: str = "auto"  # FP32 fine-tuning arithmetic: auto (BF16 autocast on a GPU), fp32 or bf16
calib_samples: int = 512  # calibration sentences if the PTQ model must be built here
qat_epochs: float = 0.5  # QAT epochs over the training set
qat_lr: float = 0.00002  # QAT peak learning rate (cosine schedule after 10% warm-up)
kd: bool = True  # also run QAT with logit distillation from the FP32 model
kd_temperature: float = 2.0  # distillation temperature
kd_weight: float = 0.5  # weight of the distillation term (1 - weight goes to the task loss)
eval_every: int = 0  # score the curves every N steps on 256 validation sentences (0: about 8 points per run)
smoke: bool = False  # CI mode: tiny data, a handful of QAT steps
run_dir: str = ""  # run folder shared by the suite (empty: runs/standalone)
results_db: str = ""  # results database (empty: runs/results.sqlite)

# %%
import pandas as pd

from nbutils import quant
from nbutils.core.vocab import main_metric
from nbutils.training.baseline import BaselineConfig, ensure_baseline
from nbutils.training.tasks import evaluate
from nbutils.ui.explorers import LiveCurves
from nbutils.ui.notebook import start

run = start("30_qat", run_dir, results_db)
cfg = BaselineConfig.from_params(model=model, data=data, train_samples=train_samples, eval_samples=eval_samples,
                                 epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                                 smoke=smoke, device=device,
                                 train_precision=train_precision)
n_epochs = min(qat_epochs, 0.25) if smoke else qat_epochs

# %% [markdown]
# ## Step 1: load FP32 and the best PTQ model

# %%
base = ensure_baseline(cfg, run.run_dir)
fp32 = base.result
ptq_model, ptq_recipe = quant.ensure_ptq(base, run.run_dir, calib_samples=min(calib_samples, 32) if smoke else calib_samples)
# outputs kept for notebooks 40, 42, 70 and 80, which show the same models (quant.sim_predictor, tasks.recorded)
ptq = evaluate(quant.sim_predictor(run.run_dir, quant.ptq_dir(run.run_dir, cfg.key()), base.validation, lambda: ptq_model),
               base.data, base.validation, reference=fp32.predictions)
print(f"FP32 {fp32.metrics}\n{ptq_recipe} {ptq.metrics}")

# %% [markdown]
# ## Step 2: fine-tune with fake quantization (QAT), then with distillation (QAT+KD)
# The quantizer ranges stay fixed (from calibration); the weights learn to live with INT8 rounding.

# %%
main = main_metric(base.data.task)
variants = {"qat": None}
if kd:
    variants["qat-kd"] = quant.KDConfig(kd_temperature, kd_weight)
results, histories, times = {}, {}, {}
curves = LiveCurves({"FP32": fp32.metrics[main], ptq_recipe: ptq.metrics[main]}, metric=main)
curves.show()  # fills while training runs: loss per step, validation score (first 256 sentences) at each evaluation
for name, kd_cfg in variants.items():
    student, out = quant.run_qat(base, ptq_model, run.run_dir, epochs=n_epochs, lr=qat_lr, kd=kd_cfg,
                                 from_recipe=ptq_recipe, eval_every=eval_every, on_log=curves.update(name))
    kept = quant.qat_dir(run.run_dir, cfg.key(), kd_cfg is not None)
    results[name] = evaluate(quant.sim_predictor(run.run_dir, kept, base.validation, lambda s=student: s), base.data,
                             base.validation, reference=fp32.predictions)
    histories[name], times[name] = out.history, out.train_s
    print(f"{name}: {results[name].metrics} in {out.train_s:.1f} s")

# %% [markdown]
# ## Step 3: the final comparison

# %%
rows = [quant.score_row("fp32", fp32, fp32), quant.score_row(ptq_recipe, ptq, fp32)]
for name, res in results.items():
    row = quant.score_row(name, res, fp32)
    row["train_s"] = round(times[name], 1)
    rows.append(row)
final = pd.DataFrame(rows)
measurements = quant.rows_to_measurements(rows, seq=cfg.max_length)
print(f"recorded {run.record(measurements, model=base.model_name, task=base.data.task, data=base.data.describe(), device=cfg.where)} figures")
final

# %% [markdown]
# ## Summary
# * QAT starts from calibrated ranges and adapts the weights to INT8 rounding; the curves above show how far the
#   validation score moved from the PTQ starting point in `qat_epochs` epochs (compare it with FP32's line).
# * Distillation lets the FP32 model teach the INT8 student its full output distribution, not just the label.
# * Both checkpoints are in the run folder (`checkpoints/qat-*`, `checkpoints/qat-kd-*`) for ONNX export in notebook 40.
#
# ## Exercises
# 1. Raise `qat_lr` to `1e-4`: what happens to the curve in the first steps, and why is QAT's learning rate small?
# 2. Set `kd_weight=1.0` (distillation only, no labels). How close does it get?
# 3. Compare `kd_temperature=1` and `kd_temperature=4`: which softens the teacher enough to help?
