# %% [markdown]
# # 42 · The OpenVINO route: NNCF quantization and the OpenVINO runtime
#
# **What you will do:** convert the FP32 export to OpenVINO's IR, quantize it with NNCF (post-training, and with an
# accuracy bound), train NNCF's fake-quantized PyTorch model (quantization-aware training), run ModelOpt's QAT Q/DQ
# file on OpenVINO too, and check every IR against the model it came from before measuring its accuracy.
#
# **What you will learn:** where NNCF places INT8 in a transformer (and where it does not), what the CPU plugin
# actually runs (its runtime graph names every kernel and its precision), why an "FP32" model can silently run in
# BF16, and how OpenVINO's INT8 compares with ONNX Runtime's on this CPU (latency in notebook 60, accuracy in 70).
#
# **What you need:** notebook 10's baseline and notebook 40's FP32 export (both built here if missing). CPU only.
#
# **Default profile:** NNCF accuracy control is skipped (`max_drop=0`), NNCF QAT starts from 32 sentences and runs
# 0.1 epoch; `--profile sst2` runs accuracy control (`max_drop=0.5`), starts NNCF QAT from 128 sentences and runs
# half an epoch of it, and keeps every IR (`keep_all_files`).

# %% tags=["parameters"]
model: str = "default"  # model spec, as in notebook 10
data: str = "embedded"  # data spec, as in notebook 10
train_samples: int = 0  # training examples used by the baseline and NNCF QAT (0 means all)
eval_samples: int = 0  # validation examples to evaluate (0 means all)
epochs: float = 2.0  # baseline fine-tuning epochs (only used if the baseline must be trained here)
lr: float = 0.0001  # baseline learning rate
batch_size: int = 32  # batch size (baseline and NNCF QAT)
max_length: int = 64  # maximum tokens per sequence
seed: int = 0  # random seed
device: str = "auto"  # where PyTorch trains, calibrates and evaluates: auto (CUDA when a GPU is visible), cpu or cuda
train_precision: str = "auto"  # FP32 fine-tuning arithmetic: auto (BF16 autocast on a GPU), fp32 or bf16
calib_samples: int = 512  # training sentences NNCF calibrates on (never validation)
nncf_preset: str = "mixed"  # NNCF preset: mixed (asymmetric activations) or performance (symmetric)
smooth_quant_alpha: float = 0.95  # SmoothQuant strength for MatMuls (NNCF's transformer default; negative: off)
fast_bias_correction: bool = True  # NNCF fast bias correction (False: the slower full bias correction)
ignored_patterns: list = []  # regexes of node names NNCF leaves in floating point, e.g. [".*Softmax.*"]
overflow_fix: str = "auto"  # NNCF overflow fix: auto (enable without VNNI/AMX, else disable), enable, first_layer, disable
max_drop: float = 0.0  # nncf-ptq-ac: accuracy-control bound in points (0: skip; sst2/gpu profiles: 0.5)
ac_samples: int = 256  # held-out *training* sentences accuracy control scores on
qat_epochs: float = 0.1  # NNCF QAT epochs over the training set (0: skip; sst2/gpu profiles: 0.5)
qat_lr: float = 0.00002  # NNCF QAT peak learning rate (cosine after 10% warm-up, as notebook 30)
qat_init_samples: int = 32  # training sentences NNCF QAT initialises its quantizers on (sst2/gpu profiles: 128)
keep_all_files: bool = False  # keep every IR made here (sst2/gpu profiles); default: only what later notebooks run
smoke: bool = False  # CI mode: tiny data, few calibration sentences, a handful of QAT steps
run_dir: str = ""  # run folder shared by the suite (empty: runs/standalone)
results_db: str = ""  # results database (empty: runs/results.sqlite)

# %%
import pandas as pd

from nbutils import engines, quant
from nbutils.core import env
from nbutils.core.vocab import main_metric, outputs_file, recipe_of_folder, variant_dir
from nbutils.engines import ort_session
from nbutils.engines.registry import engine_for_file, recipes_read
from nbutils.formats import to_onnx, to_openvino
from nbutils.formats.files import release
from nbutils.report import charts, tables
from nbutils.store import figures
from nbutils.training.baseline import BaselineConfig, ensure_baseline
from nbutils.training.metrics import paired_bootstrap
from nbutils.training.models import fine_tune, load_model, torch_predictor
from nbutils.training.tasks import encode, evaluate, labelled_accuracy, memoize, recorded
from nbutils.ui.notebook import start

run = start("42_openvino", run_dir, results_db)
cfg = BaselineConfig.from_params(model=model, data=data, train_samples=train_samples, eval_samples=eval_samples,
                                 epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                                 smoke=smoke, device=device,
                                 train_precision=train_precision)
n_calib = min(calib_samples, 32) if smoke else calib_samples
n_held = min(ac_samples, 32) if smoke else ac_samples
options = to_openvino.NncfOptions(preset=nncf_preset, smooth_quant_alpha=smooth_quant_alpha,
                         fast_bias_correction=fast_bias_correction, ignored_patterns=list(ignored_patterns),
                         subset_size=n_calib, overflow_fix=overflow_fix)
_ = options.kwargs()  # checks the options (preset, patterns, overflow fix) before any work

# %% [markdown]
# ## Step 1: the FP32 model in OpenVINO
# `to_openvino.convert_onnx` converts notebook 40's FP32 ONNX file (the same file ONNX Runtime runs) with
# `openvino.convert_model`. OpenVINO reads ONNX files directly, so the run keeps no IR copy of them (an FP32 IR of
# this model would be another 91 MB of the same weights): `onnx/fp32/openvino/variant.json` names the ONNX file
# and its sha256. NNCF's models below exist nowhere else and are saved as IRs (`model.xml` + `model.bin`);
# `openvino.save_model(model, "model.xml")` writes one for any model. Then the first check: does OpenVINO compute
# what PyTorch computes? Once with FP32 inference precision, once with the plugin's *default* precision on this CPU.

# %%
base = ensure_baseline(cfg, run.run_dir)
fp32 = base.result
task, main = base.data.task, main_metric(base.data.task)
eager = load_model(str(base.path), task=task, num_labels=max(base.data.num_labels, 2), attn_implementation="eager")
fp32_dir = variant_dir(run.run_dir, "fp32")
if to_onnx.verify_variant(fp32_dir):
    to_onnx.export_torch(eager, fp32_dir, recipe="fp32", precision="fp32", source=str(base.path), task=task,
                        config_src=base.path)
irs = {"fp32": to_openvino.convert_onnx(fp32_dir / to_onnx.MODEL_FILE, to_openvino.ir_dir(run.run_dir, "fp32"), recipe="fp32",
                               precision="fp32")}
# the PyTorch model each IR came from, as a predictor (parity is checked against it); FP32's outputs on the
# validation split were kept by ensure_baseline and are replayed, not computed again
reference = base.reference()
sources = {"fp32": reference}
checks = {}
for precision in ("f32", "bf16"):
    compiled = to_openvino.compile_model(irs["fp32"].path, precision=precision)
    on_ov = to_openvino.predictor(compiled)
    if precision == "f32":  # compiled as Step 5 compiles `ov-cpu:fp32`: its outputs are kept and replayed there
        on_ov = recorded(lambda p=on_ov: p, outputs_file(run.run_dir, engine_for_file("ov-cpu", "fp32", "fp32"),
                                                         irs["fp32"].meta["sha256"]), base.validation)
    checks[f"IR FP32, inference precision {precision}"] = to_onnx.parity(reference, on_ov, base.validation.batches,
                                                                          "fp32")
print("CPU plugin capabilities here:", compiled.settings["ov_capabilities"])
pd.DataFrame(checks).T

# %% [markdown]
# Read the table: which precision keeps the IR within the FP32 tolerance (max |Δ| ≤ 1e-3)? Every `ov-cpu:fp32`
# figure in this suite is compiled with `INFERENCE_PRECISION_HINT=f32` (`to_openvino.compile_model`), and records the
# precision the plugin reports.
#
# ## Step 2: NNCF post-training quantization
# `nncf.quantize(model, nncf.Dataset(sentences), model_type=TRANSFORMER)`: SmoothQuant moves activation outliers into
# the weights, statistics from `calib_samples` training sentences (one per item, padding trimmed) set the scales,
# fast bias correction restores the mean shift. The result is the same graph with `FakeQuantize` operations, which
# the CPU plugin turns into INT8 kernels. Where did NNCF put them?

# %%
# file order (pad_to_max: no length ordering), so the held-out batches are the sentences after the calibration
# ones, not the longest of them; NNCF trims each sentence's padding (to_openvino.feeds_for)
calib = encode(base.data, "train", base.tokenizer, max_length=cfg.max_length, batch_size=32,
               limit=n_calib + n_held, pad_to_max=True).batches
calib_batches, held_batches = calib[: max(1, n_calib // 32)], calib[max(1, n_calib // 32):]
irs["nncf-ptq"] = to_openvino.nncf_ptq(irs["fp32"].path.parent, calib_batches, to_openvino.ir_dir(run.run_dir, "nncf-ptq"),
                              options=options)
meta = irs["nncf-ptq"].meta
print(f"{meta['fake_quantize']} FakeQuantize operations over {meta['matmuls']} MatMuls; "
      f"calibrated on {meta['calibration_sentences']} training sentences")
pd.Series(meta["fake_quantize_feeds"], name="FakeQuantize outputs feeding").to_frame()

# %% [markdown]
# ## Step 3: what the CPU plugin runs
# The compiled model's *runtime* graph lists every kernel the plugin chose on this CPU, with its precision and
# primitive (`brgemm_avx512...`, `jit_...`). Compare the FP32 IR with the INT8 one: how many layers run in `i8`/`u8`,
# and which layer types stayed in `f32`?

# %%
kernels = []
for name in ("fp32", "nncf-ptq"):
    for row in to_openvino.runtime_kernels(to_openvino.compile_model(irs[name].path)):
        kernels.append({"ir": name, **row})
kernels = pd.DataFrame(kernels)
by_precision = kernels.pivot_table(index=["layer"], columns=["ir", "precision"], values="count", aggfunc="sum",
                                   fill_value=0)
heavy = kernels[kernels.layer.isin(["FullyConnected", "MatMul", "ScaledDotProductAttention", "MHA"])]
print("the heavy layers and the primitives that run them:")
print(heavy.to_string(index=False))
by_precision

# %% [markdown]
# ### Why would it be faster? Measure the two INT8 routes side by side
# ONNX Runtime's dynamic INT8 (`ort-dynamic`) computes every activation's
# scale at run time (`DynamicQuantizeLinear` before each integer MatMul); NNCF's IR has *static* scales, folded into
# the INT8 kernels listed above. The CPU's flags decide which integer instructions those kernels can use. Timed here
# at `max_length`, batch 1 and 8, one engine after the other (notebook 60 times every engine on a wider grid):

# %%
ort_dyn = variant_dir(run.run_dir, "ort-dynamic")
if to_onnx.verify_variant(ort_dyn):
    to_onnx.ort_dynamic(to_onnx.load_variant(fp32_dir), ort_dyn)
optimized = run.path("kernels", "ort-dynamic-optimized.onnx")
ort_session.make_session(ort_dyn / to_onnx.MODEL_FILE, "cpu", optimized_model_path=optimized)
print("CPU INT8 flags:", {k: v for k, v in env.cpu_info()["flags"].items() if v})
print("ONNX Runtime dynamic INT8 after optimisation:", ort_session.integer_kernel_counts(optimized))
optimized.unlink(missing_ok=True)  # counted; no later notebook reads it (22 MB kept for nothing otherwise)
assets = engines.Assets(str(base.path), run.path("bench", "openvino"), task=task, num_labels=max(base.data.num_labels, 2),
                        onnx_dirs={r: variant_dir(run.run_dir, r) for r in ("fp32", "ort-dynamic", "nncf-ptq")})
grid = engines.run_grid([engines.make_engine(n, assets) for n in ("ort-cpu:int8-dynamic", "ov-cpu:fp32", "ov-cpu:int8")],
                        [1, 8], [cfg.max_length], warmup=2, iterations=5 if smoke else 30)
grid.raise_failures()
why = pd.DataFrame(grid.rows).pivot_table(index="engine_name", columns="batch", values="p50_ms")
why.columns = [f"p50 ms, batch {b}" for b in why.columns]
why["ort-dynamic / this (batch 1)"] = why.loc["ort-cpu:int8-dynamic", why.columns[0]] / why[why.columns[0]]
print(*tables.speed_findings(pd.DataFrame(grid.rows), env.int8_isa(runtime="openvino")), sep="\n")
print(f"NNCF's overflow fix for this CPU: {meta['options'].get('overflow_fix', 'NNCF default')} (without VNNI/AMX the u8×s8 kernels saturate "
      "with 8-bit weights; 'enable' keeps weights on 7 bits everywhere)")
why.round(3)

# %% [markdown]
# The sentences above are computed from this run's timings, not written in advance. Whether static INT8 beats
# FP32 depends on the CPU's integer dot-product instructions (VNNI, AMX): without them an INT8 MatMul has no faster
# instruction than FP32's FMA, and the quantize/dequantize work around it is extra. Which is true on yours, and by
# how much at each batch? (These timings are not recorded; notebook 60's are.)
#
# ## Step 4: accuracy control, and quantization-aware training with NNCF
# * **Accuracy control** (`nncf.quantize_with_accuracy_control`, recipe `nncf-ptq-ac`): quantize, rank the
#   quantized operations by harm on `ac_samples` held-out *training* sentences, and revert the worst to floating
#   point until the drop there is at most `max_drop` points. The validation split stays unseen.
# * **NNCF QAT** (recipe `nncf-qat`): `nncf.quantize` on the PyTorch model inserts NNCF's fake quantizers; the model
#   is fine-tuned like notebook 30's QAT (same loop, cosine schedule), then converted with `to_openvino.convert_model`.
# * **ModelOpt's QAT file on OpenVINO**: notebook 30/40's `qat` Q/DQ ONNX file converted as it is, so one file runs
#   on two runtimes (its ONNX Runtime accuracy is in notebook 40).

# %%
qat_note = ""
if max_drop > 0 and task == "classification" and held_batches:
    irs["nncf-ptq-ac"] = to_openvino.nncf_ptq_accuracy_control(
        irs["fp32"].path.parent, calib_batches, held_batches, labelled_accuracy,
        to_openvino.ir_dir(run.run_dir, "nncf-ptq-ac"), max_drop=max_drop, options=options)
    print(f"nncf-ptq-ac: {irs['nncf-ptq-ac'].meta['fake_quantize']} FakeQuantize left "
          f"(nncf-ptq had {meta['fake_quantize']})")
elif max_drop > 0:
    print(f"accuracy control skipped: it scores {task} here by accuracy on labelled batches (classification only)")
else:
    print("accuracy control skipped (max_drop=0): the sst2 and gpu profiles run it with max_drop=0.5")

qat_history = []
if qat_epochs > 0:
    train = encode(base.data, "train", base.tokenizer, max_length=cfg.max_length, batch_size=cfg.batch_size,
                   shuffle=True, seed=cfg.seed + 1).batches
    # on the run's device (a GPU trains NNCF's fake quantizers there too; the IR is converted from a CPU copy)
    student = cfg.where.put(load_model(str(base.path), task=task, num_labels=max(base.data.num_labels, 2)))
    # QAT only needs a starting point: its quantizers are initialised on the first `qat_init_samples` calibration
    # sentences, then training adapts them. nncf.quantize on PyTorch runs them one at a time in two statistics
    # passes, so this step's time grows with the count (measured on 2 cores: 32 sentences 10 s, 128 sentences 30 s)
    student = to_openvino.nncf_qat_model(student, calib_batches[:max(1, qat_init_samples // 32)], options=options)
    trained = fine_tune(student, train, epochs=0.05 if smoke else qat_epochs, lr=qat_lr, schedule="cosine",
                        desc="nncf-qat")
    qat_history = trained.history
    # the IR below is what later notebooks read; the 87 MB PyTorch model is not kept (exercise 5 saves it)
    sources["nncf-qat"] = memoize(torch_predictor(student))
    irs["nncf-qat"] = to_openvino.torch_to_ir(student, to_openvino.ir_dir(run.run_dir, "nncf-qat"), recipe="nncf-qat", precision="int8",
                                     meta={"source": str(base.path), "tool": "nncf.quantize (PyTorch) + fine-tune",
                                           "train_s": trained.train_s, "options": options.as_meta()})
    print(f"NNCF QAT: {len(train)} batches/epoch, {trained.train_s:.0f} s")
for name in ("qat", "qat-kd"):
    onnx_dir = variant_dir(run.run_dir, name)
    qat_path = quant.qat_dir(run.run_dir, cfg.key(), name == "qat-kd")
    if not to_onnx.verify_variant(onnx_dir) and (qat_path / "quantizers.pt").is_file():
        # notebook 30 kept this model's outputs (quant.sim_outputs): replayed; the model is loaded only if they are not
        sources[name] = quant.sim_predictor(run.run_dir, qat_path, base.validation,
                                            lambda p=qat_path: quant.load_quantized(
                                                p, task=task, num_labels=max(base.data.num_labels, 2)))
        irs[name] = to_openvino.convert_onnx(onnx_dir / to_onnx.MODEL_FILE, to_openvino.ir_dir(run.run_dir, name), recipe=name,
                                    precision="int8")
if qat_history:
    charts.training_curves({"nncf-qat": qat_history}, title="NNCF QAT: training loss").show()
print("IR files:", {k: str(v.path.relative_to(run.run_dir)) for k, v in irs.items()})

# %% [markdown]
# ## Step 5: every IR through OpenVINO: parity, then accuracy
# Each IR is compared with the PyTorch model it came from (the FP32 model for `fp32` and NNCF's post-training IRs,
# the fake-quantized model for the QAT IRs; top-1 agreement, the thresholds of `to_onnx.PARITY`), then scored
# on the validation split with a paired bootstrap 95% interval of its delta to FP32. Figures go to the results
# database as engine `ov-cpu:fp32` / `ov-cpu:int8`, recipe = the IR's recipe, so notebooks 60, 70 and the
# dashboard show them beside every other engine.

# %%
rows, measurements = [], []
for name, ir in irs.items():
    compiled = to_openvino.compile_model(ir.path)
    engine = engine_for_file("ov-cpu", name, ir.precision)
    # parity and accuracy share one pass; the outputs are kept for notebook 70 (tasks.recorded)
    predict = recorded(lambda c=compiled: to_openvino.predictor(c), outputs_file(run.run_dir, engine, ir.meta["sha256"]),
                       base.validation)
    reference = sources.get(name, sources["fp32"])  # NNCF's post-training IRs came from the FP32 model
    par = to_onnx.parity(reference, predict, base.validation.batches, ir.precision)
    res = evaluate(predict, base.data, base.validation, reference=fp32.predictions, desc=name)
    row = {"recipe": name, "precision": ir.precision, "FakeQuantize": ir.meta["fake_quantize"],
           "size_mb": round(ir.size_mb, 1), **{k: round(x, 3) for k, x in res.metrics.items()},
           f"delta_{main}_pts": round(res.metrics[main] - fp32.metrics[main], 3),
           "delta_95ci": "[{low:+.2f}, {high:+.2f}]".format(**paired_bootstrap(fp32.scores, res.scores)),
           "parity_max_abs": par["max_abs_diff"], "parity_top1_%": round(par["top1_agreement"], 2),
           "parity_ok": par["parity_ok"]}
    rows.append(row)
    extra = {"variant": name, "file": str(ir.path), "sha256": ir.meta["sha256"], **compiled.settings,
             **{k: row[k] for k in ("delta_95ci", "parity_max_abs", "parity_top1_%", "parity_ok")}}
    measurements += figures.scores(res.metrics, recipe=name, engine=engine, precision=ir.precision,
                                   seq=cfg.max_length, extra=extra)
    measurements.append(figures.file_size(ir.size_mb, recipe=name, engine=engine, precision=ir.precision, extra=extra))
print(f"recorded {run.record(measurements, model=base.model_name, task=task, data=base.data.describe(), device=cfg.where)} figures")
table = pd.DataFrame(rows).set_index("recipe")
failed = table.index[~table.parity_ok].tolist()
print("parity failures:", failed or "none")
table

# %%
charts.bar(table.reset_index(), x="recipe", y=f"delta_{main}_pts", color="precision",
          title=f"OpenVINO: {main} delta to FP32 (points), validation split")

# %% [markdown]
# The run keeps the IRs later notebooks run (`ov-cpu:int8` is NNCF's post-training IR,
# `nbutils.engines.registry.recipes_read`); the others (NNCF QAT, accuracy control) were measured above, their
# outputs are kept for notebook 70, and their `variant.json` says they were not kept (`keep_all_files=True` keeps
# them, as the sst2 and gpu profiles do).

# %%
freed = {}
for name, ir in irs.items():
    if not keep_all_files and ir.path.suffix == ".xml" and name not in recipes_read(cfg.where):
        freed[name] = round(release(ir, "not run by later notebooks on this device; keep_all_files=True keeps it"), 1)
print("IRs not kept (MB):", freed or "none")

# %% [markdown]
# ## Step 6: the other OpenVINO route: ONNX Runtime with the OpenVINO execution provider
# An application built on ONNX Runtime can keep its API and still get OpenVINO's kernels: the provider ships as an
# ONNX Runtime plugin (`onnxruntime-ep-openvino`, registered by `ort_session.make_session(path, "openvino")`). It
# runs the ONNX files themselves (no IR): notebook 40's FP32 export and every INT8 file of this run. Parity is
# measured against the *same file* on ONNX Runtime's CPU provider (so it isolates the provider), accuracy as above;
# figures go to the database as engine `ort-ov:fp32` / `ort-ov:int8`.

# %%
ov_ep = ort_session.provider_unavailable_reason("openvino")
ep_rows, ep_measurements = [], []
onnx_files = sorted(p.parent for p in (run.run_dir / "onnx").glob(f"*/{to_onnx.MODEL_FILE}"))
for folder in onnx_files if not ov_ep else []:
    v = to_onnx.load_variant(folder)
    name = recipe_of_folder(folder)
    if v.precision not in ("fp32", "int8") or name.startswith("fp32-"):  # the plain FP32 export stands for FP32
        continue
    on_ov = ort_session.make_session(v.path, "openvino")
    engine = engine_for_file("ort-ov", name, v.precision)
    predict = recorded(lambda s=on_ov: ort_session.ort_predictor(s), outputs_file(run.run_dir, engine, v.meta["sha256"]),
                       base.validation)
    on_cpu = recorded(lambda p=v.path: ort_session.ort_predictor(ort_session.make_session(p, "cpu")),  # 40's outputs
                      outputs_file(run.run_dir, engine_for_file("ort-cpu", name, v.precision), v.meta["sha256"]),
                      base.validation)
    par = to_onnx.parity(on_cpu, predict, base.validation.batches, v.precision)
    res = evaluate(predict, base.data, base.validation, reference=fp32.predictions, desc=f"{name} (OV EP)")
    row = quant.score_row(name, res, fp32) | {  # metrics, delta to FP32 and its interval, as notebook 70's rows
        "precision": v.precision, "vs_ort_cpu_max_abs": par["max_abs_diff"],
        "vs_ort_cpu_top1_%": round(par["top1_agreement"], 2), "parity_ok": par["parity_ok"]}
    ep_rows.append(row)
    extra = {"variant": name, "file": str(v.path), "sha256": v.meta["sha256"], **on_ov.provenance(),
             **{k: row[k] for k in ("delta_95ci", "vs_ort_cpu_max_abs", "vs_ort_cpu_top1_%", "parity_ok")}}
    ep_measurements += figures.scores(res.metrics, recipe=name, engine=engine, precision=v.precision,
                                      seq=cfg.max_length, extra=extra)
if ov_ep:
    print(f"ONNX Runtime's OpenVINO execution provider cannot run here: {ov_ep}")
else:
    print(f"recorded {run.record(ep_measurements, model=base.model_name, task=task, data=base.data.describe(), device=cfg.where)} figures")
pd.DataFrame(ep_rows).set_index("recipe") if ep_rows else None

# %% [markdown]
# ## Summary
# * Every OpenVINO variant sits beside its ONNX file (`onnx/<recipe>/openvino/`) with a sidecar and sha256: NNCF's
#   as IRs, converted ONNX files as the ONNX file itself (no second copy); a missing, corrupt or changed file is a
#   clear error (`to_openvino.load_ir`), and engines rebuild it.
# * Step 1 showed which inference precision keeps the FP32 IR at FP32 parity on this CPU; Step 3 listed the
#   kernels the plugin runs for each IR, so "INT8" is a measured fact here, not a label.
# * Which NNCF recipe lost the least accuracy, and by how much (with its interval)? The table above answers it;
#   notebook 60 times `ov-cpu:fp32`/`ov-cpu:int8` beside ONNX Runtime and PyTorch, notebook 70 places them on the
#   Pareto chart.
# * Step 6 ran the ONNX files themselves through ONNX Runtime's OpenVINO execution provider: its agreement with the
#   same file on ONNX Runtime's CPU provider says whether the route changes the answers; notebook 60 times
#   `ort-ov:int8` beside `ov-cpu:int8`.
#
# ## Exercises
# 1. Set `smooth_quant_alpha=-1` (SmoothQuant off): how do the accuracy and the latency of `nncf-ptq` move?
# 2. Add `ignored_patterns=[".*Softmax.*"]` or keep the attention MatMuls in floating point: which rows of Step 3
#    change, and what does it cost in notebook 60?
# 3. Tighten `max_drop` to 0.2: how many `FakeQuantize` operations does accuracy control revert?
# 4. Compile the INT8 IR with `precision="bf16"`: which layers change precision in Step 3's table, and does the
#    accuracy move?
# 5. Keep the NNCF QAT model to train it further: `to_openvino.save_nncf_torch(student, run.path("checkpoints",
#    "nncf-qat.pt"), {"epochs": qat_epochs})`, then run more epochs of `fine_tune` on it.
