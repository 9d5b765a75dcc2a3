# %% [markdown]
# # 45 · Kernels and providers: is it really INT8?
#
# **What you will do:** look inside ONNX Runtime after it optimizes each INT8 file (which integer kernels replaced
# the Q/DQ arithmetic), compare each ModelOpt file with its PyTorch model under three kernel choices, and list which
# execution provider runs which nodes.
#
# **What you will learn:** how to tell real integer kernels from fake quantization, why CPUs without VNNI need ONNX
# Runtime's precise int8 path, and why a Q/DQ file on the CUDA provider is not INT8 speed.
#
# **What you need:** notebook 40's ONNX files (built here if missing). The CUDA/TensorRT rows say plainly when
# those providers are absent.

# %% tags=["parameters"]
model: str = "default"  # model spec, as in notebook 10
data: str = "embedded"  # data spec, as in notebook 10
train_samples: int = 0  # baseline training examples (0 means all)
eval_samples: int = 0  # validation examples to compare on (0 means all)
epochs: float = 2.0  # baseline epochs (only used if the baseline must be trained here)
lr: float = 0.0001  # baseline learning rate
batch_size: int = 32  # baseline batch size
max_length: int = 64  # maximum tokens per sequence
seed: int = 0  # random seed
device: str = "auto"  # where PyTorch trains, calibrates and evaluates: auto (CUDA when a GPU is visible), cpu or cuda
train_precision: str = "auto"  # FP32 fine-tuning arithmetic: auto (BF16 autocast on a GPU), fp32 or bf16
calib_samples: int = 512  # calibration sentences for files that must be built here
providers: list = ["cpu", "cuda", "tensorrt"]  # execution providers for the node-placement table
smoke: bool = False  # CI mode: tiny baseline
run_dir: str = ""  # run folder shared by the suite (empty: runs/standalone)
results_db: str = ""  # results database (empty: runs/results.sqlite)

# %%
import pandas as pd

from nbutils import quant
from nbutils.core import env
from nbutils.core.vocab import variant_dir
from nbutils.engines import ort_session
from nbutils.engines.driver import model_slug, trained_assets
from nbutils.formats import to_onnx
from nbutils.training.baseline import BaselineConfig, ensure_baseline
from nbutils.training.inputs import synthetic_batch
from nbutils.ui.notebook import start

run = start("45_kernels", run_dir, results_db)
cfg = BaselineConfig.from_params(model=model, data=data, train_samples=train_samples, eval_samples=eval_samples,
                                 epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                                 smoke=smoke, device=device,
                                 train_precision=train_precision)
n_calib = min(calib_samples, 32) if smoke else calib_samples

# %% [markdown]
# ## Step 1: find the INT8 files and the PyTorch models they came from
# The ModelOpt files (PTQ, and QAT / QAT+KD where notebook 30 made them) and ONNX Runtime's own INT8 files.

# %%
base = ensure_baseline(cfg, run.run_dir)
assets, ptq_recipe = trained_assets(base, run.run_dir, calib_samples=n_calib, folder=run.path("bench", model_slug(model)))
# the quantized checkpoint each ModelOpt file came from (its PyTorch model is loaded only if Step 2 must run it)
checkpoints = {ptq_recipe: quant.ptq_dir(run.run_dir, cfg.key())}
variants = {"fp32-fused": to_onnx.load_variant(assets.onnx("fp32-fused").parent),
            ptq_recipe: to_onnx.load_variant(assets.onnx("ptq").parent)}
for kd in (False, True):
    path = quant.qat_dir(run.run_dir, cfg.key(), kd)
    name = "qat-kd" if kd else "qat"
    if (path / "quantizers.pt").is_file() and (variant_dir(run.run_dir, name) / to_onnx.MODEL_FILE).is_file():
        checkpoints[name] = path
        variants[name] = to_onnx.load_variant(variant_dir(run.run_dir, name))
for recipe in ("ort-dynamic", "ort-dynamic-fused", "ort-static-minmax"):
    variants[recipe] = to_onnx.load_variant(assets.onnx(recipe).parent)
qat_models = [n for n in checkpoints if n.startswith("qat")]
print("INT8 files:", [n for n, v in variants.items() if v.precision == "int8"], "; PyTorch sources:", list(checkpoints))

# %% [markdown]
# ## Step 2: is it really INT8? Integer kernels on the CPU
# A Q/DQ model can run as slow fake quantization (DequantizeLinear → float MatMul). After ONNX Runtime's optimizations,
# real INT8 shows up as QLinearMatMul / MatMulIntegerToFloat / DynamicQuantizeMatMul / QAttention nodes.
# We also compare each ModelOpt Q/DQ file with its PyTorch model three ways: without ONNX Runtime's fusions (pure
# Q/DQ arithmetic in float), with the fast integer kernels, and with the precise x64 integer kernels. On CPUs
# without VNNI the fast u8s8 kernels saturate (the guide's "INT8 collapse" trap), so `ort_session.make_session` turns
# the precise kernels on there by default and records it with every figure.

# %%
kernel_rows = []
for name, v in variants.items():
    if v.precision != "int8":
        continue
    opt_path = v.path.parent / "optimized-cpu.onnx"
    ort_session.make_session(v.path, "cpu", optimized_model_path=opt_path)
    kernel_rows.append({"variant": name, **ort_session.integer_kernel_counts(opt_path)})
    opt_path.unlink(missing_ok=True)
print(f"CPU: {env.cpu_info()['cpu']}; VNNI: {env.has_vnni()} (without VNNI, u8s8 kernels saturate more)")
kernels = pd.DataFrame(kernel_rows).fillna(0)
kernels

# %%
qdq_rows = []
for name in [ptq_recipe]:  # the QAT files run the same kernels (exercise: add them, `*qat_models`)
    # the PyTorch model's outputs on the validation split, kept by notebook 30 (replayed; computed once if missing)
    load = assets.quantized if name == ptq_recipe else (lambda p=checkpoints[name]: quant.load_quantized(
        p, task=base.data.task, num_labels=max(base.data.num_labels, 2)))
    reference = quant.sim_predictor(run.run_dir, checkpoints[name], base.validation, load)
    for level, precise, label in (("disable", False, "float Q/DQ"), ("all", False, "integer, fast"),
                                  ("all", True, "integer, precise x64")):
        s = ort_session.make_session(variants[name].path, "cpu", graph_optimization=level, precise_int8=precise)
        par = to_onnx.parity(reference, ort_session.ort_predictor(s), base.validation.batches, "int8")
        qdq_rows.append({"variant": name, "ORT graph optimization": level, "kernels": label,
                         **{k: round(float(x), 5) for k, x in par.items()}})
pd.DataFrame(qdq_rows)

# %% [markdown]
# ## Step 3: which execution provider runs which nodes
# From ONNX Runtime's per-node profile. A provider that is not available here is listed with the reason; the
# session falls back to CPU, and that fallback is recorded with every figure.

# %%
placement_rows = []
probe = synthetic_batch(1, cfg.max_length)
for provider in providers:
    for name in ("fp32-fused", ptq_recipe):
        s = ort_session.make_session(variants[name].path, provider, qdq=variants[name].precision == "int8",
                                  enable_profiling=True, cache_dir=run.path("trt-cache"),
                                  profile_shapes=((1, 8), (1, cfg.max_length), (64, cfg.max_length)))
        counts = ort_session.node_placement(s, probe)
        by_ep: dict[str, int] = {}
        for (_, ep), n in counts.items():
            by_ep[ep] = by_ep.get(ep, 0) + n
        placement_rows.append({"requested": provider, "runs on": s.provider, "variant": name,
                               **{f"nodes on {k}": v for k, v in by_ep.items()},
                               "fallback reason": s.fallback_reason or "-"})
pd.DataFrame(placement_rows).fillna(0)

# %% [markdown]
# ## Summary
# * After ONNX Runtime's optimizations, the kernel table shows which integer operators replaced each file's Q/DQ
#   arithmetic: compare the ModelOpt files with ONNX Runtime's own.
# * The three-way comparison shows what the kernel choice costs in agreement with PyTorch on this CPU
#   (VNNI: see the line above the kernel table).
# * The placement table shows which provider each node ran on here; on CUDA without TensorRT a Q/DQ file runs as
#   floating point plus Q/DQ work.
#
# ## Exercises
# 1. Which file has the most `QLinearMatMul` nodes, and which uses `MatMulIntegerToFloat`? Why would they differ?
# 2. On a CPU with VNNI, rerun Step 2: does the fast kernel path still lose agreement?
# 3. On a GPU machine with TensorRT, rerun Step 3: which nodes does TensorRT take, and which stay on CUDA?
# 4. Run the float/fast/precise comparison on the QAT files too (`for name in [ptq_recipe, *qat_models]`): do the
#    fast kernels agree with PyTorch better or worse after QAT?
