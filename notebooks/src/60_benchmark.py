# %% [markdown]
# # 60 · Benchmark: every engine, one grid, one run
#
# **What you will do:** time the model on every engine this machine offers (PyTorch eager and `torch.compile`,
# ONNX Runtime CPU/CUDA/TensorRT, FP8 on Hopper GPUs) over a grid of batch sizes and sequence lengths, the way
# TensorRT's BERT demo measures: warm-up, many timed iterations, then mean, p50, p95 and p99.
#
# **What you will learn:** how to measure engines fairly, and how to read the result: does INT8 pay off on this
# machine's CPU (integer kernels), and by how much over the best floating-point engine? On a GPU without TensorRT,
# how does a Q/DQ file on the CUDA provider compare with FP16, and what do CUDA graphs change at batch 1, where
# kernel launches can dominate?
#
# **What you need:** nothing (it builds what it lacks); on a GPU machine, `pip install -e '.[gpu]'`.
# Engines that cannot run here are listed with the reason, never silently dropped.
#
# **Default profile:** 20 timed calls per grid point after 5 warm-ups (the notebook's own default is 100 after 10):
# enough to order the engines, with wider p95-p99 bands.

# %% tags=["parameters"]
model: str = "default"  # model to time: 'default' (the run's trained baseline) or random:bert-base / random:bert-large
data: str = "embedded"  # data spec of the baseline (when model is a trained one)
train_samples: int = 0  # baseline training examples (0 means all)
eval_samples: int = 0  # baseline validation examples (0 means all)
epochs: float = 2.0  # baseline epochs (only used if the baseline must be trained here)
lr: float = 0.0001  # baseline learning rate
batch_size: int = 32  # baseline training batch size
max_length: int = 64  # baseline maximum tokens per sequence
seed: int = 0  # random seed
device: str = "auto"  # where PyTorch trains, calibrates and evaluates: auto (CUDA when a GPU is visible), cpu or cuda
train_precision: str = "auto"  # FP32 fine-tuning arithmetic: auto (BF16 autocast on a GPU), fp32 or bf16
calib_samples: int = 512  # calibration sentences for INT8 engines that must be built here
engines: list = []  # engine names (empty: this machine's defaults; see nbutils.engines.ENGINES)
batch_sizes: list = [1, 8]  # batch sizes of the grid
seq_lengths: list = [128]  # sequence lengths of the grid
warmup: int = 10  # untimed calls before timing (compilation, caches)
iterations: int = 100  # timed calls per grid point
threads: int = 0  # ONNX Runtime CPU threads (0: ONNX Runtime's default)
smoke: bool = False  # CI mode: tiny baseline (the smoke profile also sets a one-point grid and five iterations)
run_dir: str = ""  # run folder shared by the suite (empty: runs/standalone)
results_db: str = ""  # results database (empty: runs/results.sqlite)

# %%
import pandas as pd

from nbutils import engines as eng
from nbutils.core import env
from nbutils.core.device import resolve
from nbutils.engines.driver import benchmark, model_slug, trained_assets, write_tables
from nbutils.report import charts, tables
from nbutils.store.db import read_results
from nbutils.training.baseline import BaselineConfig, ensure_baseline
from nbutils.training.models import display_name, is_untrained
from nbutils.ui.dashboard import Dashboard
from nbutils.ui.notebook import start

where = resolve(device)  # the device parameter reaches every PyTorch engine and the default engine list
names = engines or eng.default_engines(device=where)
# The grid is checked before any work (no baseline trained, nothing calibrated, no folder made for a bad grid);
# the parameters are used as given: an explicit -p always wins.
eng.validate_grid(names, batch_sizes, seq_lengths, warmup=warmup, iterations=iterations)
run = start("60_benchmark", run_dir, results_db)
print(f"CPU {env.cpu_info()['cpu']} ({env.cpu_info()['logical_cores']} threads, VNNI {env.has_vnni()}); "
      f"GPU {env.gpu_name() or 'none'}")
print("engines:", names)

# %% [markdown]
# ## Step 1: pick the model and its files
# A trained model (the run's baseline) is timed with its own INT8 files from notebooks 20 and 40, so latency joins
# accuracy in notebook 70. `random:` architectures are for latency only and are flagged untrained everywhere.

# %%
if is_untrained(model):
    assets, ptq_recipe, name, task = None, "ptq", display_name(model), "classification"
    spec = model
else:
    cfg = BaselineConfig.from_params(model=model, data=data, train_samples=train_samples, eval_samples=eval_samples,
                                     epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                                     smoke=smoke, device=device,
                                 train_precision=train_precision)
    base = ensure_baseline(cfg, run.run_dir)
    assets, ptq_recipe = trained_assets(base, run.run_dir, calib_samples=min(calib_samples, 32) if smoke else calib_samples,
                                        folder=run.path("bench", model_slug(model)))
    name, task, spec = base.model_name, base.data.task, str(base.path)
print(f"timing {name}")

# %% [markdown]
# ## Step 2: run the grid
# Engines this machine cannot run (no GPU, no TensorRT) are listed with the reason. An engine you asked for that
# fails to build or run is an error: the figures already measured are recorded, then the notebook stops and names it.

# %%
grid = benchmark(run, spec, names, batch_sizes, seq_lengths, warmup=warmup, iterations=iterations, threads=threads,
                 assets=assets, task=task, model_name=name, device=where)
print(f"timed {len(grid.rows)} grid points; skipped here: {len(grid.skipped)}; failed: {len(grid.failed)}")
for s in grid.skipped:
    print(f"  skipped {s['engine']}: {s['reason']}")
grid.raise_failures()

# %% [markdown]
# ## Step 3: the TensorRT-demo table
# Per sequence length and batch size: average, p95 and p99 latency (ms) and peak memory (MB) per engine and precision.
# Written to the run folder as CSV and Markdown too.

# %%
frame = read_results(run.run_id, run.db)
frame = frame[(frame.notebook == "60_benchmark") & (frame.model == name)]
demo = tables.demo_table(frame)
paths = write_tables(demo, run.path("benchmark"), f"latency-{model_slug(name)}")
print("written (avg, p95, p99 and peak MB):", *paths)
demo.xs("avg", axis=1, level="stat").round(3)  # the average here; p95/p99 are in the files and in Step 5

# %% [markdown]
# ## Step 4: latency against batch size, and speed-ups
# Speed-up over PyTorch eager FP32 and over the fastest floating-point engine at the same shape.

# %%
charts.latency_vs_batch(frame, title=f"{name}: p50 latency by engine")

# %%
speed = tables.speedups(frame)
write_tables(speed, run.path("benchmark"), f"speedups-{model_slug(name)}")
charts.bar(speed, x="label", y="speedup_vs_eager_fp32", color="batch",
          title="Speed-up over PyTorch eager FP32 (p50)").update_layout(xaxis_tickangle=-35)

# %% [markdown]
# Memory matters as much as speed when choosing an engine: every row also holds the engine's peak memory over its
# baseline (CPU: process RSS; GPU: PyTorch's allocator peak, or device memory in use for ONNX Runtime), measured
# while it was built and timed (`extra.memory_method` says how). Which engine is fast *and* small here?

# %%
charts.bar(speed, x="label", y="peak_memory_mb", color="batch",
          title="Peak memory over baseline (MB) while building and timing").update_layout(xaxis_tickangle=-35)

# %%
best = speed.loc[speed.groupby(["seq", "batch"])["p50_ms"].idxmin(), ["seq", "batch", "label", "p50_ms",
                                                                    "speedup_vs_eager_fp32", "peak_memory_mb"]]
print(*tables.speed_findings(speed, env.int8_isa(runtime="openvino")), sep="\n")
print("fastest engine variant per shape on this machine (from the table just measured):")
best.round(3)

# %% [markdown]
# ### What each change bought
# An engine is a stack of changes (runtime, fusions, precision, CUDA graphs). The ladders below change one thing
# per step (two where no engine separates them; the `change` column says what), so the ratio to the step above
# (`x_vs_previous`, from this run's p50) is what that change bought at each shape; `x_vs_first` is the stack so far.
# Steps this machine did not time are left out, and the step after a gap gets no ratio. Which change buys the most
# at batch 1, and which at the largest batch? Does any change cost time at one of them?

# %%
ladders = tables.ladders(frame, eng.LADDERS)  # the ladders with two or more steps timed in this run
if ladders.empty:
    print("no ladder has two timed steps here: add their engines to `engines` (see nbutils.engines.LADDERS)")
else:
    print("written:", *write_tables(ladders, run.path("benchmark"), f"ladders-{model_slug(name)}"))
ladders.set_index(["ladder", "seq", "batch", "step"]).round(3)

# %% [markdown]
# ## Step 5: explore the figures
# Choose engines, batch and sequence length: the latency chart, the speed-ups and the TensorRT-demo table follow,
# read from the results database (this run and model preselected; choose `(all)` to compare with other runs).

# %%
Dashboard(run.db, {"run_id": run.run_id, "model": name}, views_shown=("latency", "speedup", "demo"),
          measure=False).show()

# %% [markdown]
# ## Summary
# * Every engine ran on the same inputs with the same timing method; engines this machine cannot run are listed
#   with the reason, and an engine that failed would have stopped the notebook.
# * The "fastest engine variant per shape" table above is this machine's answer; is it an INT8 engine at every
#   batch size, and how large is its margin over the best floating-point engine (`speedup_vs_best_float`)?
# * All figures are in the results database with hardware, versions and thread settings; notebook 70 joins them
#   with accuracy.
#
# ## Exercises
# 1. Time `model=random:bert-base` with `batch_sizes=[1]`: how far is the best INT8 engine from PyTorch eager FP32?
# 2. Set `threads=1` and compare with the default: how much of the CPU speed-up is parallelism?
# 3. On a GPU, compare `torch-compile:fp16` with `torch-compile:fp16:cudagraphs` at batch 1 and 64: where do launches dominate?
