# %% [markdown]
# # 90 · Dashboard: which recipe and engine should I ship?
#
# **What you will do:** explore every figure the suite has measured (all runs in the results database): latency
# against batch size, speed-ups, accuracy against latency with its Pareto front, the accuracy and TensorRT-demo
# tables, where each figure came from, and two runs side by side. "Measure now" times a selected engine again
# without leaving the page.
#
# **What you will learn:** how to read a benchmark as a decision: which variants are dominated, how much a change
# of engine or machine buys, and whether a figure is trustworthy (its provenance: run, machine, versions).
#
# **What you need:** a results database (`make run`, or `python -m nbutils bench`). Open it as an app with
# `make dashboard` (Voilà); in JupyterLab run all cells. Under papermill the controls keep the values below.

# %% tags=["parameters"]
model: str = "(all)"  # model shown first ('(all)' or a model name from the database)
engine: str = "(all)"  # engine variant shown first (a full engine name such as ort-cpu:int8-dynamic)
batch: int = 0  # batch size shown first (0: all)
seq: int = 0  # sequence length shown first (0: all)
compare_a: str = "(all)"  # first run of the side-by-side comparison ('(all)': choose in the page)
compare_b: str = "(all)"  # second run of the side-by-side comparison
smoke: bool = False  # CI mode (reads the database as it is; nothing is trained)
run_dir: str = ""  # run folder of the suite (the dashboard shows every run in the database)
results_db: str = ""  # results database (empty: runs/results.sqlite)

# %%
from pathlib import Path

from nbutils.core.paths import default_db_path
from nbutils.ui.dashboard import ALL, Dashboard
from nbutils.ui.notebook import setup_display

setup_display()  # no run is opened: the dashboard only reads (a read-only database works)

db = Path(results_db) if results_db else default_db_path()
defaults = {"model": model, "engine": engine, "batch": batch or ALL, "seq": seq or ALL,
            "compare_a": compare_a, "compare_b": compare_b}
board = Dashboard(db, defaults, measure_iterations=5 if smoke else 20)
print(f"results database {db}: {len(board.data.frame)} figures" + (f" ({board.data.message})" if board.data.message else ""))

# %% [markdown]
# ## Step 1: choose, and read the views
# Each control narrows every view at once; `(all)` keeps everything. A selection that matches nothing says so in the
# view. The latency chart's band is the p95–p99 spread: a wide band means a noisy machine or a cold cache.

# %%
board.show()

# %% [markdown]
# ## Summary
# * Every view reads the results database read-only; the figures carry their provenance (machine, versions, run).
# * The Pareto front is the short list: a variant off the front is slower *and* less accurate than one on it.
# * "Measure now" adds rows under a new run id, so the new points sit beside the old ones.
#
# ## Exercises
# 1. Select one engine and batch 1: how far apart are p50 and p99? What would you quote to a user?
# 2. Compare two runs of the same grid (two dates, or a CPU and a GPU run): which ratios are close to 1, and why?
# 3. Which variants are on the Pareto front at batch 1, and does the front change at the largest batch?
