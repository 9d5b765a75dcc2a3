# %% [markdown]
# # 00 · Environment: what this machine offers for INT8
#
# **What you will do:** list the library versions, the CPU's INT8 instructions, the GPU, and which
# execution paths (PyTorch CUDA, ONNX Runtime CUDA, TensorRT, ModelOpt) are usable here.
#
# **What you will learn:** why the same INT8 model runs fast on one machine and slowly (or wrongly)
# on another: VNNI/AMX on CPUs, the execution providers of ONNX Runtime, and TensorRT on GPUs.
#
# **What you need:** nothing but `make install`. No GPU is required; missing pieces are reported with
# the exact reason and what to install.

# %% tags=["parameters"]
smoke: bool = False  # CI mode (this notebook is already fast; kept for a uniform interface)
run_dir: str = ""  # run folder shared by the suite (empty: runs/standalone)
results_db: str = ""  # results database (empty: runs/results.sqlite)

# %%
import pandas as pd

from nbutils.core import env
from nbutils.ui.notebook import start

run = start("00_environment", run_dir, results_db)

# %% [markdown]
# ## Step 1: check the library versions
# Every figure the suite records carries these versions, so results from two machines can be compared honestly.

# %%
pd.DataFrame(sorted(env.versions().items()), columns=["package", "version"])

# %% [markdown]
# ## Step 2: inspect the CPU's INT8 instructions
# * **AVX512-VNNI / AVX-VNNI** compute int8 dot products in one instruction (`vpdpbusd`): ONNX Runtime's
#   INT8 kernels are several times faster with them.
# * Without VNNI, ONNX Runtime's fast u8×s8 kernels can **saturate** in the 16-bit intermediate. The suite checks
#   `env.has_vnni()`: ONNX Runtime's dynamic route (`quantize_dynamic`) then uses `reduce_range=True` (7-bit
#   weights), and sessions running symmetric Q/DQ files switch on ONNX Runtime's precise x64 int8 path instead.
# * **AMX** (Sapphire Rapids and later) adds int8/bf16 tile units.

# %%
cpu = env.cpu_info()
print(f"CPU: {cpu['cpu']}  ({cpu['logical_cores']} logical cores)")
print(f"VNNI available: {env.has_vnni()}")
pd.DataFrame([{"flag": k, "present": v} for k, v in cpu["flags"].items()])

# %% [markdown]
# ## Step 3: list the execution paths and why each one is (not) usable

# %%
print("GPU:", env.gpu_name() or "none visible")
print("ONNX Runtime execution providers:", ", ".join(env.ort_providers()) or "ONNX Runtime missing")
caps = pd.DataFrame([c.__dict__ for c in env.capabilities()])
caps

# %% [markdown]
# ## Summary
# * You listed the versions recorded with every result, the CPU's INT8 features and the usable engines.
# * A path marked unusable is skipped later with the reason shown above, never silently.
# * TensorRT needs NVIDIA's own package index: its PyPI package is a download stub, so on most machines
#   here it is reported absent. The TensorRT code paths in notebooks 40 and 60 are real and activate when it is installed.
#
# ## Exercises
# 1. On a machine without `avx512_vnni`, which files use `reduce_range` and which sessions use the precise x64 int8
#    path? (Search `has_vnni` in `nbutils`, then compare the `precise_int8` field in notebook 45's figures.)
# 2. Install `onnxruntime-gpu` on a CUDA machine (`pip install -e '.[gpu]'`) and re-run: which rows change?
