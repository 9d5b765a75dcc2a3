# %% [markdown]
# # 70 · Accuracy vs latency: the report
#
# **What you will do:** run every model variant through the engine that deploys it (PyTorch, ONNX Runtime with each
# INT8 recipe, OpenVINO with NNCF's, FP8) on the validation split, put FP32 / FP16 / INT8 / FP8 side by side with their delta to FP32 and
# agreement with FP32's predictions, and join that with notebook 60's latencies into an accuracy-vs-latency chart.
#
# **What you will learn:** how to choose a deployment: the Pareto front shows which variants are worth it (no other
# variant is both faster and more accurate).
#
# **What you need:** notebooks 10-40 (their checkpoints and ONNX files; missing ones are built here) and notebook 60's
# latencies for the chart (without them the table is still complete).

# %% tags=["parameters"]
model: str = "default"  # model spec, as in notebook 10
data: str = "embedded"  # data spec, as in notebook 10
train_samples: int = 0  # baseline training examples (0 means all)
eval_samples: int = 0  # validation examples to evaluate (0 means all)
epochs: float = 2.0  # baseline epochs (only used if the baseline must be trained here)
lr: float = 0.0001  # baseline learning rate
batch_size: int = 32  # baseline batch size
max_length: int = 64  # maximum tokens per sequence
seed: int = 0  # random seed
device: str = "auto"  # where PyTorch trains, calibrates and evaluates: auto (CUDA when a GPU is visible), cpu or cuda
train_precision: str = "auto"  # FP32 fine-tuning arithmetic: auto (BF16 autocast on a GPU), fp32 or bf16
calib_samples: int = 512  # calibration sentences for variants that must be built here
fp8: bool = True  # include the FP8 recipes (emulated exactly on CPUs by torch._scaled_mm; fast on Hopper GPUs)
latency_batch: int = 1  # batch size whose p50 latency is plotted against accuracy
latency_iterations: int = 15  # timed calls for each variant notebook 60 did not time (its grid uses more)
playground_sentence: str = "a gripping, beautifully shot film that never drags"  # first sentence of the playground
smoke: bool = False  # CI mode: tiny baseline and data
run_dir: str = ""  # run folder shared by the suite (empty: runs/standalone)
results_db: str = ""  # results database (empty: runs/results.sqlite)

# %%
import pandas as pd

from nbutils import quant
from nbutils.core.device import engine_device
from nbutils.core.paths import read_json
from nbutils.core.vocab import main_metric, outputs_file, recipe_of_folder, runtime_of
from nbutils.engines import make_engine
from nbutils.engines.driver import model_slug, trained_assets, write_tables
from nbutils.engines.ort_session import accuracy_provider, make_session, ort_predictor, provider_unavailable_reason
from nbutils.engines.registry import engine_for_file
from nbutils.engines.timing import time_callable
from nbutils.formats import to_openvino
from nbutils.formats.to_onnx import MODEL_FILE
from nbutils.report import charts, tables
from nbutils.store import figures
from nbutils.store.db import read_results
from nbutils.training.baseline import BaselineConfig, ensure_baseline
from nbutils.training.inputs import synthetic_batch
from nbutils.training.models import torch_predictor
from nbutils.training.tasks import evaluate, recorded
from nbutils.ui.dashboard import Dashboard
from nbutils.ui.explorers import Playground
from nbutils.ui.notebook import start

run = start("70_accuracy", run_dir, results_db)
cfg = BaselineConfig.from_params(model=model, data=data, train_samples=train_samples, eval_samples=eval_samples,
                                 epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                                 smoke=smoke, device=device,
                                 train_precision=train_precision)
n_calib = min(calib_samples, 32) if smoke else calib_samples

# %% [markdown]
# ## Step 1: gather the variants and the engines that run them
# ONNX files come from notebook 40 (`<run>/onnx/<recipe>/`), OpenVINO's variants from notebook 42
# (`<run>/onnx/<recipe>/openvino/`); anything missing is exported now. Files notebook 40 measured and did not keep
# (default profile: Optimum's level, FP16 on a CPU, the second calibrator) are scored from the outputs it recorded;
# they have no latency point unless the run kept them (`keep_all_files`, on in the sst2 profile).

# %%
base = ensure_baseline(cfg, run.run_dir)
fp32 = base.result
assets, ptq_recipe = trained_assets(base, run.run_dir, calib_samples=n_calib, folder=run.path("bench", model_slug(model)))
variants = []  # (recipe, engine, precision, predictor)
untimed = set()  # (recipe, engine) whose file notebook 40/42 did not keep: scored from its outputs, not timed
onnx_root = run.run_dir / "onnx"
found = sorted(p.parent for p in onnx_root.glob("*/variant.json")) if onnx_root.is_dir() else []
if not found:
    for recipe in ("fp32", "fp16", "ort-dynamic", "ort-static-minmax", "ptq"):
        found.append(assets.onnx(recipe).parent)


def add_variant(folder, runtime, provider):
    meta = read_json(folder / "variant.json")
    recipe = recipe_of_folder(folder) if meta["recipe"] != "ptq" else ptq_recipe
    engine = engine_for_file(runtime, recipe, meta["precision"])
    outputs = outputs_file(run.run_dir, engine, meta["sha256"])
    if not (folder / MODEL_FILE).is_file():  # measured by notebook 40, not kept (its Step 6)
        if not outputs.is_file():
            return
        untimed.add((recipe, engine))
    # notebook 40 (or 42) kept this file's outputs on this engine: rescored, not recomputed (tasks.recorded)
    variants.append((recipe, engine, meta["precision"],
                     recorded(lambda p=folder / MODEL_FILE, pr=provider: ort_predictor(make_session(p, pr)),
                              outputs, base.validation)))


for folder in found:
    provider = accuracy_provider(read_json(folder / "variant.json")["precision"], cfg.where)  # FP32/FP16: GPU there
    add_variant(folder, f"ort-{provider}", provider)
# The same ONNX files through ONNX Runtime's OpenVINO execution provider (the plain FP32 export and every INT8 file).
ov_ep = provider_unavailable_reason("openvino")
for folder in found if not ov_ep else []:
    if read_json(folder / "variant.json")["precision"] in ("fp32", "int8") and not folder.name.startswith("fp32-"):
        add_variant(folder, "ort-ov", "openvino")
if ov_ep:
    print(f"ONNX Runtime + OpenVINO execution provider rows skipped: {ov_ep}")
# OpenVINO IRs (notebook 42: onnx/<recipe>/openvino/); without them, the FP32 and NNCF INT8 IRs are built now.
irs = sorted(p.parent for p in onnx_root.glob(f"*/{to_openvino.IR_FOLDER}/variant.json")) if onnx_root.is_dir() else []
if not to_openvino.unavailable_reason():
    if not irs:
        for recipe in ("fp32", "nncf-ptq"):
            irs.append(assets.openvino(recipe))
    for folder in irs:
        meta = read_json(folder / "variant.json")
        engine = engine_for_file("ov-cpu", meta["recipe"], meta["precision"])
        outputs = outputs_file(run.run_dir, engine, meta["sha256"])
        if to_openvino.verify_ir(folder):  # measured by notebook 42, not kept: scored from its outputs, not timed
            if not outputs.is_file():
                continue
            untimed.add((meta["recipe"], engine))
        variants.append((meta["recipe"], engine, meta["precision"],
                         recorded(lambda f=folder: to_openvino.predictor(to_openvino.compile_model(f)), outputs,
                                  base.validation)))
else:
    print(f"OpenVINO rows skipped: {to_openvino.unavailable_reason()}")
if untimed:
    print("scored from notebooks 40/42's outputs (files not kept, so not timed below):", sorted(r for r, _ in untimed))
if fp8:
    for name in ("torch-fp8:fp8", "torch-fp8:fp8-static"):
        e = make_engine(name, assets)
        variants.append((e.recipe, e.spec.name, e.spec.precision, e.predictor()))
print(f"{len(variants)} variants:", [v[0] for v in variants])

# %% [markdown]
# ## Step 2: evaluate each on the validation split
# Each delta to FP32 comes with a paired bootstrap 95% interval over the same sentences: where it includes 0, the
# two cannot be told apart on this validation set (one sentence of 872 is 0.11 point). Files that notebooks 40 and
# 42 already ran over this split on the same engine are rescored from the outputs they kept
# (`<run>/cache/outputs/`, `tasks.recorded`): the same numbers, without running the models a second time.

# %%
rows = [quant.score_row("fp32", fp32, fp32) | {"engine": "torch-eager:fp32", "precision": "fp32"}]
measurements = figures.scores(fp32.metrics, recipe="fp32", engine="torch-eager:fp32", precision="fp32",
                              seq=cfg.max_length)
evaluated = {}  # (recipe, engine) -> EvalResult, for the INT8 table below
for recipe, engine, precision, predict in variants:
    res = evaluate(predict, base.data, base.validation, reference=fp32.predictions, desc=recipe)
    evaluated[(recipe, engine)] = res
    row = quant.score_row(recipe, res, fp32) | {"engine": engine, "precision": precision}
    rows.append(row)
    extra = {k: row[k] for k in ("delta_95ci", "differs_from_fp32") if k in row}
    measurements += figures.scores(res.metrics, recipe=recipe, engine=engine, precision=precision,
                                   seq=cfg.max_length, extra=extra)
print(f"recorded {run.record(measurements, model=base.model_name, task=base.data.task, data=base.data.describe(), device=cfg.where)} figures")
frame = read_results(run.run_id, run.db)
acc = tables.accuracy_table(frame[(frame.notebook == "70_accuracy") & (frame.model == base.model_name)])
write_tables(acc.set_index("recipe"), run.path("report"), "accuracy")
pd.DataFrame(rows).set_index("recipe").round(3)

# %% [markdown]
# ## Step 2b: the INT8 table
# The layout of the published INT8 results (e.g. the TensorRT BERT demo's SQuAD table: FP32 against INT8 F1): FP32,
# the best PTQ model of notebook 20, QAT and QAT with distillation from notebook 30 (all three as PyTorch fake
# quantization on this run's device), and the QAT model's ONNX file run by ONNX Runtime's INT8 kernels on the CPU.
# Each delta comes with a paired bootstrap 95% interval over the same validation examples. The PyTorch rows simulate
# INT8 (fake quantization): they are references for the files, not deployments, so they get no latency point below.

# %%
ptq_model = assets.quantized()
int8_routes = [(ptq_recipe, "torch-eager:int8-sim", lambda: cfg.where.put(ptq_model),
                quant.ptq_dir(run.run_dir, cfg.key()))]
for kd in (False, True):
    path = quant.qat_dir(run.run_dir, cfg.key(), kd)
    if (path / "quantizers.pt").is_file():
        int8_routes.append(("qat-kd" if kd else "qat", "torch-eager:int8-sim",
                            lambda p=path: quant.load_quantized(p, task=base.data.task,
                                                                num_labels=max(base.data.num_labels, 2),
                                                                device=cfg.where.torch), path))
    else:
        print(f"{path.name} missing: run notebook 30 for the QAT rows")
table_rows, int8_measurements, qmodels = [], [], {}
for recipe, engine, load, path in int8_routes:
    # notebook 30 kept these models' outputs (quant.sim_predictor): replayed; a model is loaded only if they are not
    predict = quant.sim_predictor(run.run_dir, path, base.validation, lambda ld=load, r=recipe: qmodels.setdefault(r, ld()))
    res = evaluate(predict, base.data, base.validation, reference=fp32.predictions, desc=recipe)
    table_rows.append((f"{recipe} (PyTorch fake-quant, {cfg.where.kind})", engine, res))
    int8_measurements += figures.scores(res.metrics, recipe=recipe, engine=engine, precision="int8-sim",
                                        seq=cfg.max_length)
for recipe in ("qat", "qat-kd"):
    ort_int8 = [(e, r) for (rc, e), r in evaluated.items() if rc == recipe and e.startswith("ort-cpu")]
    table_rows += [(f"{recipe} (ONNX Runtime INT8, CPU)", e, r) for e, r in ort_int8]
run.record(int8_measurements, model=base.model_name, task=base.data.task, data=base.data.describe(), device=cfg.where)
int8 = tables.int8_table(table_rows, fp32)
write_tables(int8.set_index("model"), run.path("report"), "int8-table")
print(base.data.describe())
int8

# %% [markdown]
# ## Step 3: accuracy against latency, with the Pareto front
# Latency is notebook 60's p50 at `latency_batch` for the same model and engine variant. Variants notebook 60 did not
# time (e.g. the QAT files, FP16, Optimum's O1) are timed here at the same shape with the engine that ran them
# above, so every variant gets a point. (FP8 on a CPU is exact emulation, not FP8 hardware: its latency is shown,
# and it is not a deployment option there.)

# %%
lat = frame[(frame.notebook == "60_benchmark") & (frame.model == base.model_name)]
main = main_metric(base.data.task)
seq = int(lat["seq"].max()) if not lat.empty else 128
timed = set(zip(lat[lat.batch == latency_batch]["engine"], lat[lat.batch == latency_batch]["recipe"], strict=True))
feed = synthetic_batch(latency_batch, seq)
extra_lat = []
for recipe, engine, precision, predict in variants:
    if (engine, recipe) in timed or (recipe, engine) in untimed:
        continue
    stats = time_callable(lambda p=predict: p(feed), batch=latency_batch, warmup=2,
                          iterations=5 if smoke else latency_iterations)
    extra_lat += stats.measurements(recipe=recipe, engine=engine, precision=precision, seq=seq,
                                    extra={"timed_by": "70_accuracy",
                                           "device": engine_device(runtime_of(engine), cfg.where)})
if extra_lat:
    run.record(extra_lat, model=base.model_name, task=base.data.task, data="synthetic token ids (latency only)")
    frame = read_results(run.run_id, run.db)
lat = frame[frame.model == base.model_name]
lat = lat[lat.notebook.isin(["60_benchmark", "70_accuracy", "80_sensitivity"])]
points = tables.accuracy_latency_points(acc, lat, latency_batch)
if points.empty:
    print("No latency for this model in this run.")
else:
    write_tables(points.set_index("label"), run.path("report"), "accuracy-vs-latency")
    display(charts.accuracy_vs_latency(points, points["pareto"].tolist(), y=main,
                                      title=f"{base.model_name}: {main} vs p50 latency (batch {latency_batch}, seq {seq})"))
    print(*tables.pareto_findings(points, main), sep="\n")
points.round(3) if not points.empty else None

# %% [markdown]
# ## Step 4: explore
# Choose engines, batch and sequence length: the Pareto front and the accuracy table follow, read from the database.

# %%
Dashboard(run.db, {"run_id": run.run_id, "model": base.model_name}, views_shown=("pareto", "accuracy"),
          measure=False).show()

# %% [markdown]
# ## Step 5: the playground
# Type a sentence: FP32, the best PTQ model, QAT (where notebook 30 made it) and ONNX Runtime's dynamic INT8
# predict it, with class probabilities and each one's latency for that sentence (median of 5 calls).

# %%
players = {"fp32 (PyTorch)": torch_predictor(base.model), f"{ptq_recipe} (PyTorch, fake-quant)": torch_predictor(ptq_model)}
for recipe, _engine, load, _path in int8_routes[1:2]:
    players[f"{recipe} (PyTorch, fake-quant)"] = torch_predictor(qmodels.get(recipe) or load())
players["ort-dynamic (ONNX Runtime INT8)"] = ort_predictor(make_session(assets.onnx("ort-dynamic"), "cpu"))
if base.data.task == "classification":
    Playground(base.tokenizer, players, sentence=playground_sentence, max_length=cfg.max_length).show()
else:
    print("The playground classifies sentences; this run's task is extractive QA.")

# %% [markdown]
# ## Summary
# * The INT8 table puts FP32, the best PTQ, QAT, QAT+KD and the QAT file on ONNX Runtime INT8 side by side in the
#   layout of the published INT8 results; is QAT's delta inside its interval's noise here?
# * One table holds every variant's validation score, its delta to FP32 with a 95% interval, and its agreement with
#   FP32's predictions; "cannot tell" marks deltas this validation set cannot separate from 0.
# * The Pareto front marks the variants worth deploying on this machine; the others are beaten on both axes.
# * The tables are in `<run>/report/` as CSV and Markdown, and every figure is in the results database.
#
# ## Exercises
# 1. Which INT8 recipe is on the Pareto front here, and does it change at `latency_batch=8`?
# 2. Compare `fp8` (dynamic row-wise scales) with `fp8-static`: can this validation set tell them apart?
# 3. Run the suite with `-p data=../shared/data/sst2 -p train_samples=8000` and compare the front with the embedded data's.
