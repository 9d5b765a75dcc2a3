# %% [markdown]
# # 50 · Graph: see where quantization is, where it is missing, and what it costs
#
# **What you will do:** draw the FP32 export and its INT8 Q/DQ files (ModelOpt's and ONNX Runtime's static one) as
# graphs inside the notebook, diff them against FP32, colour every quantized activation by its quantization error
# (SQNR), and colour ONNX Runtime's optimized graph by the execution provider that runs each node.
#
# **What you will learn:** what a QuantizeLinear/DequantizeLinear pair guards, which compute nodes a recipe leaves
# in floating point (and why TensorRT cares), which tensors lose the most to INT8, and how an ONNX file becomes
# the graph a runtime actually executes.
#
# **What you need:** notebook 40's ONNX files in the run folder (built here if the notebook runs alone). No server:
# the graphs are plotly figures, so they show in JupyterLab (even untrusted), in the exported HTML and in Voilà.
# Netron and Google's Model Explorer are optional extras (Step 6).

# %% tags=["parameters"]
model: str = "default"  # model spec, as in notebook 10
data: str = "embedded"  # data spec, as in notebook 10
train_samples: int = 0  # baseline training examples (0 means all)
eval_samples: int = 0  # baseline validation examples (0 means all)
epochs: float = 2.0  # baseline epochs (only used if the baseline must be trained here)
lr: float = 0.0001  # baseline learning rate
batch_size: int = 32  # baseline batch size
max_length: int = 64  # maximum tokens per sequence
seed: int = 0  # random seed
device: str = "auto"  # where PyTorch trains, calibrates and evaluates: auto (CUDA when a GPU is visible), cpu or cuda
train_precision: str = "auto"  # FP32 fine-tuning arithmetic: auto (BF16 autocast on a GPU), fp32 or bf16
calib_samples: int = 512  # calibration sentences for files that must be built here
int8_files: list = ["ptq", "ort-static-minmax"]  # INT8 recipes to inspect ('ptq' is the run's best ModelOpt PTQ)
expand_layer: int = 0  # encoder layer drawn node by node in the detailed views
search: str = "Softmax"  # node or tensor name (fragment) to find and ring in red
show_qdq: bool = False  # draw Q/DQ as nodes instead of one glyph on the edge they guard
sqnr_samples: int = 64  # calibration sentences (training split) for the SQNR overlay
provider: str = "cpu"  # execution provider for the placement overlay (cpu, cuda, tensorrt)
keep_all_files: bool = False  # keep ONNX Runtime's optimized graph of Step 6 on disk (sst2/gpu profiles)
smoke: bool = False  # CI mode: tiny baseline, few SQNR sentences
run_dir: str = ""  # run folder shared by the suite (empty: runs/standalone)
results_db: str = ""  # results database (empty: runs/results.sqlite)

# %%
import pandas as pd

from nbutils.engines.driver import model_slug, trained_assets
from nbutils.graph import layout, overlays, view
from nbutils.graph.inspector import COLLAPSED, WHOLE, Explorer
from nbutils.store import figures
from nbutils.training.baseline import BaselineConfig, ensure_baseline
from nbutils.training.inputs import synthetic_batch
from nbutils.training.tasks import encode
from nbutils.ui.notebook import start

run = start("50_graph", run_dir, results_db)
cfg = BaselineConfig.from_params(model=model, data=data, train_samples=train_samples, eval_samples=eval_samples,
                                 epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                                 smoke=smoke, device=device,
                                 train_precision=train_precision)
n_calib = min(calib_samples, 32) if smoke else calib_samples

# %% [markdown]
# ## Step 1: find the files
# Notebook 40 left one folder per variant in `<run>/onnx/`; anything missing is exported now.

# %%
base = ensure_baseline(cfg, run.run_dir)
assets, ptq_recipe = trained_assets(base, run.run_dir, calib_samples=n_calib, folder=run.path("bench", model_slug(model)))
files = {"fp32": assets.onnx("fp32")}
for r in int8_files:
    files[ptq_recipe if r == "ptq" else r] = assets.onnx(r)
ex = Explorer(files)
pd.DataFrame([{"file": k, "path": str(p), "nodes": len(ex.graph(k).nodes), "encoder layers": len(ex.graph(k).layers()),
               "QuantizeLinear": sum(n.op == "QuantizeLinear" for n in ex.graph(k).nodes.values())}
              for k, p in files.items()])

# %% [markdown]
# ## Step 2: the FP32 graph, one box per encoder layer
# Hover a box for its operators; hover a node for its attributes, inputs and outputs (shapes and dtypes from ONNX
# shape inference) and its initializers' statistics. Edges carry the tensor's shape on hover. Boxes are placed by
# Graphviz's `dot` (the layered layout Netron's dagre follows: edges routed around boxes as curves, arrowheads);
# where Graphviz is not installed a simpler built-in layout with straight edges stands in, and the `layout` entry
# printed in Step 3 says which one drew this run's figures. Weight-side `Transpose`s fold into the MatMul they feed.
# Drag to pan, scroll or box-select to zoom; a tall graph opens on its top part.

# %%
ex.figure("fp32", mode=COLLAPSED)

# %% [markdown]
# ## Step 3: the INT8 graphs, one layer opened
# Each orange diamond is a QuantizeLinear→DequantizeLinear pair drawn on the edge it guards (hover: scale and zero
# point; per-channel scales as min/median/max). A box marked "weight: INT8" reads a quantized weight.

# %%
int8_names = [k for k in files if k != "fp32"]
for name in int8_names:
    d = layout.build(ex.graph(name), expand=[expand_layer], show_qdq=show_qdq)
    print(name, layout.summary(d), "edge crossings:", layout.crossings(d))
    display(ex.figure(name, mode=f"layer {expand_layer}", show_qdq=show_qdq))

# %% [markdown]
# ## Step 4: diff against FP32 — what was quantized, and what was not
# For each INT8 file: Q/DQ nodes added, inputs now fed by a DequantizeLinear per operator type, and the compute
# nodes (MatMul/Gemm, the residual Add before a LayerNorm) that still take a floating-point input, ringed in red.
# Which of those are there on purpose (e.g. the classifier), and which would stop a TensorRT fusion?

# %%
diffs = {}
for name in int8_names:
    diffs[name] = overlays.diff(ex.graph("fp32"), ex.graph(name))
    dd = diffs[name]
    print(f"{name}: added {dd.added}; inputs fed by DequantizeLinear per op {dd.guarded}; "
          f"compute nodes with a float input: {len(dd.float_inputs)}")
    ex.add_overlay(name, "float inputs (diff)", highlight={r["node"]: r["why it matters"] for r in dd.float_inputs})
    display(dd.table()[["node", "op", "input", "layer"]])
display(ex.figure(int8_names[0], mode=WHOLE, overlay="float inputs (diff)"))

# %% [markdown]
# ## Step 5: per-tensor quantization error (SQNR)
# Both files run in ONNX Runtime (CPU, no graph optimizations so every tensor keeps its name) on calibration
# sentences. Each dequantized activation is paired with its FP32 tensor by following the graph (DQ output ← Q input
# ← producing node); where two exports number a node differently, the INT8 file with its Q/DQ bypassed is the
# reference (column `reference`). Low SQNR (red) means the INT8 tensor is far from FP32.

# %%
calib = encode(base.data, "train", base.tokenizer, max_length=cfg.max_length, batch_size=16,
               limit=min(sqnr_samples, 16) if smoke else sqnr_samples, pad_to_max=True).batches
errors = {}
rows = []
for name in int8_names:
    errors[name] = overlays.tensor_errors(files["fp32"], files[name], calib)
    ex.add_overlay(name, "SQNR (dB)", values=overlays.node_values(errors[name]), value_name="SQNR dB")
    worst = errors[name].head(10)
    print(f"{name}: ten worst of {len(errors[name])} quantized activations")
    display(worst.round(3))
    rows += [figures.figure("sqnr_db", r.sqnr_db, recipe=name, engine="ort-cpu:graph-debug", precision="int8",
                            seq=cfg.max_length, extra={"tensor": r.tensor, "producer": r.producer,
                                                       "reference": r.reference, "rel_error": float(r.rel_error),
                                                       "sentences": sum(len(b["input_ids"]) for b in calib)})
             for r in errors[name].itertuples() if pd.notna(r.sqnr_db) and abs(r.sqnr_db) != float("inf")]
print(f"recorded {run.record(rows, model=base.model_name, task=base.data.task, data=base.data.describe(), device=cfg.where)} figures")
display(ex.figure(int8_names[0], mode=f"layer {expand_layer}", overlay="SQNR (dB)"))

# %% [markdown]
# ## Step 6: which provider runs which node, and the files other viewers read
# ONNX Runtime rewrites the graph before running it (fusions, integer kernels); its profile names the nodes of that
# optimized graph, so we save it and colour it by provider. The SQNR and placement overlays are also written as
# Google Model Explorer node data (`<run>/graph/*.json`); `overlays.open_in_netron(path)` serves a file in Netron
# on your own machine (optional).

# %%
probe = synthetic_batch(1, cfg.max_length)
placement = {}
for name in int8_names[:1]:
    opt = run.path("graph", f"{name}-optimized-{provider}.onnx")
    placement[name] = overlays.providers(files[name], provider, probe, opt)
    ex.files[f"{name} (ORT-optimized, {provider})"] = opt
    ex.add_overlay(f"{name} (ORT-optimized, {provider})", "execution provider", categories=placement[name])
    print(f"{name}: nodes per provider", pd.Series(placement[name]).value_counts().to_dict())
    overlays.model_explorer_json(placement[name], run.path("graph", f"{name}-placement.nodedata.json"), model=opt)
    overlays.model_explorer_json(overlays.node_values(errors[name]), run.path("graph", f"{name}-sqnr.nodedata.json"),
                                 model=files[name])
    display(ex.figure(f"{name} (ORT-optimized, {provider})", mode=WHOLE, overlay="execution provider"))
    if not keep_all_files:  # drawn (the explorer holds it in memory); as big as the file it came from
        print(f"{opt.name} ({opt.stat().st_size / 1e6:.0f} MB) not kept: overlays.providers() writes it again "
              "(for Model Explorer's placement node data); keep_all_files=True keeps it")
        opt.unlink()
print("Model Explorer node data:", *sorted(p.name for p in (run.run_dir / "graph").glob("*.json")))

# %% [markdown]
# ## Step 7: explore
# Pick a file, a view (collapsed, one layer, whole, or a Loop/If/Scan body where the model has one), an overlay and
# a search; the figure follows. A search rings every match and centres the view on the first, opening the encoder
# layer it sits in. Any ONNX file opens here: `Explorer({"mine": "path/to/model.onnx"}).show({})`; a model without
# `layer.N` names has no one-layer view, and its control-flow bodies are views of their own (as a click opens them
# in Netron). Under papermill this shows the parameters' choice.

# %%
ex.show({"file": int8_names[0], "mode": f"layer {expand_layer}", "search": search, "show_qdq": show_qdq,
         "overlay": "SQNR (dB)"})

# %% [markdown]
# ## Summary
# * A Q/DQ graph is readable once Q/DQ pairs are drawn on the edges they guard and each encoder layer is one box.
# * The diff lists every compute node still fed in floating point: compare the two INT8 files' lists above.
# * The SQNR overlay points at the tensors INT8 hurts most: which operator types dominate the ten worst here?
# * The placement overlay shows the graph ONNX Runtime really runs, and on which provider.
#
# ## Exercises
# 1. Open layer 0 of the ModelOpt file with `show_qdq=True`: how many Q/DQ pairs guard one attention block?
# 2. In the diff of the ORT static file, which inputs are left in float? Would TensorRT fuse that attention?
# 3. Rerun with `int8_files=["ptq", "ort-static-percentile-99.99"]` (after notebook 40 made it, with
#    `keep_all_files=True`): does a percentile calibration raise the worst SQNR?
# 4. Open a model with a loop: save `onnx.backend.test.case.node.collect_testcases()`'s `test_loop11` case and pass
#    it to `Explorer`; which tensors does the loop body read from outside, and how are they drawn?
