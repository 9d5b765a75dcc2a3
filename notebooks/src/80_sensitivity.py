# %% [markdown]
# # 80 · Sensitivity: which layers cost accuracy, and a mixed-precision recipe
#
# **What you will do:** take notebook 20's calibrated PTQ model and switch its quantizers group by group (per
# encoder block: the Q/K/V projections, the attention-matmul inputs, the softmax output, the attention output, FFN in,
# FFN out, the residual/LayerNorm inputs) to see which cost accuracy; build recipes that leave the *k* most sensitive
# groups in floating point, sweep *k*, compare with ModelOpt's own search (`mtq.auto_quantize`) and the `ffn-only` /
# `linear-only` placements, then export the chosen recipe to ONNX and time it beside FP32 and full INT8.
#
# **What you will learn:** how to find the layers that make INT8 lose accuracy without re-quantizing anything, how
# much of the model's arithmetic (MatMul FLOPs) a mixed recipe still runs in INT8, and what that costs in latency.
#
# **What you need:** notebook 20's PTQ checkpoint for the same baseline (run notebooks 10 and 20 first, in the same
# run folder). CPU only.

# %% tags=["parameters"]
model: str = "default"  # model spec, as in notebook 10
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
ptq_checkpoint: str = ""  # PTQ checkpoint folder (empty: notebook 20's best for this baseline in this run)
ranking: str = "quant-alone-sqnr"  # how groups are ordered (nbutils.quant.sensitivity.RANKINGS)
ks: list = [0, 1, 2, 4, 8]  # numbers of most-sensitive groups left in floating point (the sweep)
rank_samples: int = 64  # validation sentences each group's score uses in the ranking (0: all; the sweep uses all)
k: int = -1  # the recipe to keep (-1: the smallest k of the sweep meeting the targets, else the best point)
target_delta: float = 0.3  # accuracy target: at most this many points below FP32
min_int8_share: float = 0.95  # FLOP target: at least this share of MatMul FLOPs in INT8
flop_seq: int = 128  # sequence length at which FLOP shares and latency are measured
autoq_bits: float = 8.4  # mtq.auto_quantize effective-bits constraint (INT8 or 16-bit float per layer)
autoq_method: str = "gradient"  # mtq.auto_quantize score: gradient (Taylor) or kl_div
autoq_batches: int = 16  # labelled training batches auto_quantize calibrates and scores on
bench_batches: list = [1, 8]  # batch sizes of the latency comparison
bench_iterations: int = 50  # timed iterations per cell (after warm-up)
smoke: bool = False  # CI mode: tiny baseline, a short sweep, few timing iterations
run_dir: str = ""  # run folder shared by the suite (empty: runs/standalone)
results_db: str = ""  # results database (empty: runs/results.sqlite)

# %%
import numpy as np
import pandas as pd

from nbutils import engines, quant
from nbutils.core.vocab import main_metric, outputs_file, variant_dir
from nbutils.engines import validate_grid
from nbutils.engines.registry import engine_for_file
from nbutils.engines.ort_session import make_session, ort_predictor
from nbutils.formats import to_onnx
from nbutils.quant import sensitivity
from nbutils.report import charts, tables
from nbutils.store import figures
from nbutils.store.db import read_results
from nbutils.training.baseline import BaselineConfig, ensure_baseline
from nbutils.training.metrics import paired_bootstrap, sqnr_db
from nbutils.training.models import torch_predictor
from nbutils.training.tasks import encode, evaluate, recorded
from nbutils.ui.notebook import start

if ranking not in sensitivity.RANKINGS:
    raise ValueError(f"ranking={ranking!r} is unknown; use one of {list(sensitivity.RANKINGS)}")
validate_grid(["ort-cpu:fp32"], bench_batches, [flop_seq], warmup=2, iterations=bench_iterations)
run = start("80_sensitivity", run_dir, results_db)
cfg = BaselineConfig.from_params(model=model, data=data, train_samples=train_samples, eval_samples=eval_samples,
                                 epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                                 smoke=smoke, device=device,
                                 train_precision=train_precision)

# %% [markdown]
# ## Step 1: the calibrated PTQ model and its groups
# The checkpoint must come from *this* baseline (its recorded baseline and its weights are checked): sensitivity of
# another model's quantizers would mean nothing here.

# %%
base = ensure_baseline(cfg, run.run_dir)
fp32, task, main = base.result, base.data.task, main_metric(base.data.task)
ckpt = sensitivity.check_ptq_checkpoint(ptq_checkpoint or quant.ptq_dir(run.run_dir, cfg.key()), base.path)
ptq_path = ptq_checkpoint or quant.ptq_dir(run.run_dir, cfg.key())
ptq_recipe = str(ckpt["recipe"])
qmodel = quant.load_quantized(ptq_path, task=task, num_labels=max(base.data.num_labels, 2), device=cfg.where.torch)
groups = sensitivity.groups(qmodel)
sites = sensitivity.matmul_sites(qmodel, flop_seq)
all_on = sensitivity.enabled_quantizers(qmodel)
print(f"{ptq_recipe}: {len(all_on)} enabled quantizers in {len(groups)} groups; "
      f"{sensitivity.int8_flop_share(sites, all_on):.1%} of MatMul FLOPs in INT8 at seq {flop_seq}")
# One row per role (every block has the same shapes): what one group holds and what leaving it float costs.
pd.DataFrame([{"role": g.role, "quantizers per group": len(g.quantizers), "example": g.quantizers[0],
               "INT8 FLOP share if this one group is left float": round(sensitivity.int8_flop_share(
                   sites, set(all_on) - set(g.quantizers)), 4)} for g in groups if g.block == groups[0].block]
             ).set_index("role")

# %% [markdown]
# ## Step 2: every group alone, quantized and left in floating point
# For each group: the validation score and the output SQNR against FP32 when **only** that group is quantized,
# and when **only** that group is left in floating point (everything else quantized). Same model, same ranges;
# only quantizers are switched. With 84 groups × 2 evaluations, the ranking scores `rank_samples` validation
# sentences spread over the split (`Encoded.head`); the sweep of Step 3 scores the whole split.

# %%
# the full PTQ model's outputs on the whole split were kept by notebook 30 (quant.sim_predictor): replayed there
as_saved = {n for n, _ in quant.quantizers(qmodel)}


def ptq_predict():  # replayed only while every quantizer of the checkpoint is on (the blocks below switch some off)
    whole = {n for n, _ in quant.quantizers(qmodel)} == as_saved
    return quant.sim_predictor(run.run_dir, ptq_path, base.validation, lambda: qmodel) if whole else torch_predictor(qmodel)


ptq_score = sensitivity.scorer(lambda: evaluate(ptq_predict(), base.data, base.validation,
                                                reference=fp32.predictions), fp32.outputs, main)
# The ranking scores every group twice: on `rank_samples` validation sentences spread over the split
# (classification), the sweep of Step 3 on the whole split.
rank_val = base.validation.head(rank_samples) if rank_samples and task == "classification" else base.validation
at = rank_val.positions if rank_val.positions is not None else np.arange(len(fp32.predictions))  # FP32 on those
n_rank = len(at)
rank_score = sensitivity.scorer(lambda: evaluate(torch_predictor(qmodel), base.data, rank_val,
                                                 reference=[fp32.predictions[i] for i in at]), fp32.outputs[at], main)
fp32_rank = float(np.mean(fp32.scores[at]))
full = rank_score()
table = sensitivity.sensitivity_table(qmodel, groups, rank_score)
table["drop_quant_alone"] = fp32_rank - table["metric_quant_alone"]
table["gain_float_alone"] = table["metric_float_alone"] - full.metric
print(f"on {n_rank} validation sentences: FP32 {fp32_rank:.2f}; full {ptq_recipe} {full.metric:.2f} "
      f"(SQNR {full.sqnr_db:.1f} dB)")
measurements = []
for row in table.to_dict("records"):
    for metric in ("metric_quant_alone", "sqnr_quant_alone", "metric_float_alone", "sqnr_float_alone"):
        name = metric.replace("metric", main).replace("sqnr", "sqnr_db")
        measurements.append(figures.figure(name, row[metric], recipe=ptq_recipe, engine="torch-eager:int8-sim",
                                           precision="int8", seq=cfg.max_length,
                                           extra={"group": row["group"], "block": row["block"], "role": row["role"]}))
run.record(measurements, model=base.model_name, task=task, data=base.data.describe(), device=cfg.where)
order = sensitivity.rank(table, ranking)
table.set_index("group").loc[order].round(3).head(12)

# %%
charts.bar(table.set_index("group").loc[order].reset_index(), x="group", y="sqnr_quant_alone", color="role",
          title="Output SQNR (dB) with only this group quantized: lowest = most sensitive").update_layout(
              xaxis_tickangle=-60, barmode="relative")

# %%
charts.heatmap(table, x="role", y="block", z="sqnr_quant_alone", x_order=sensitivity.ROLES, zmid=None,
              colorscale="Viridis", title="SQNR (dB) with only this group quantized, block × role")

# %% [markdown]
# Which roles are the sensitive ones on this model: the residual/LayerNorm inputs, the softmax output, or the
# projections? And do the two measurements agree (compare `sqnr_quant_alone` with `gain_float_alone`)?
#
# ## Step 3: mixed-precision recipes: leave the k most sensitive groups in floating point
# For each k: accuracy with its paired bootstrap interval against FP32, output SQNR, and the share of MatMul FLOPs
# still in INT8 at `flop_seq` (counted from the module shapes; Step 5 counts it again from the exported graph).

# %%
sweep = []
for kk in sorted(set(ks)):
    sensitivity.check_k(kk, len(groups))
    floated = sensitivity.find_groups(groups, order[:kk])
    with sensitivity.keep_float(qmodel, floated) as on:
        s = ptq_score()
    ci = paired_bootstrap(fp32.scores, s.result.scores)
    sweep.append({"k": kk, "recipe": sensitivity.mixed_recipe(ptq_recipe, kk), main: s.metric,
                  "delta": s.metric - fp32.metrics[main], "ci_low": ci["low"], "ci_high": ci["high"],
                  "sqnr_db": s.sqnr_db, "int8_flop_share": sensitivity.int8_flop_share(sites, on),
                  "float_groups": ", ".join(order[:kk])})
sweep = pd.DataFrame(sweep)
sweep["meets_targets"] = ((sweep["delta"] >= -target_delta) & (sweep["ci_low"] <= 0) & (sweep["ci_high"] >= 0)
                          & (sweep["int8_flop_share"] >= min_int8_share))
if k >= 0:
    sensitivity.check_k(k, len(groups))
    chosen_k = k
elif sweep["meets_targets"].any():
    chosen_k = int(sweep[sweep["meets_targets"]]["k"].min())
else:  # no k meets both targets: the best point among those keeping the FLOP share, else the most accurate
    pool = sweep[sweep["int8_flop_share"] >= min_int8_share]
    chosen_k = int((pool if not pool.empty else sweep).sort_values(main, ascending=False)["k"].iloc[0])
    print("no k of the sweep meets both targets: keeping the best point of the curve")
print(f"chosen k = {chosen_k}")
sweep.round(4)

# %%
charts.curve(sweep.assign(label=[f"k={x}" for x in sweep["k"]]), x="int8_flop_share", y=main, text="label",
            highlight=(sweep["k"] == chosen_k).tolist(), x_title=f"share of MatMul FLOPs in INT8 (seq {flop_seq})",
            y_title=f"{main} (%)", title=f"{main} against the INT8 share, leaving the k most sensitive groups float")

# %% [markdown]
# ## Step 4: the peers: `ffn-only`, `linear-only`, and ModelOpt's `mtq.auto_quantize`
# The two placements are quantizer sets of the same calibrated model. `mtq.auto_quantize` searches on its own
# (INT8 or no quantization per linear layer, scored by a Taylor estimate of the loss change on labelled training
# batches, under an effective-bits constraint), with ModelOpt's own calibration; attention matmuls stay float there.

# %%
peers = []
for placement in ("ffn-only", "linear-only"):
    with sensitivity.enabled_only(qmodel, sensitivity.placement_set(qmodel, placement)) as on:
        s = ptq_score()
    ci = paired_bootstrap(fp32.scores, s.result.scores)
    peers.append({"recipe": f"{ptq_recipe}-{placement}", main: s.metric, "delta": s.metric - fp32.metrics[main],
                  "ci_low": ci["low"], "ci_high": ci["high"], "sqnr_db": s.sqnr_db,
                  "int8_flop_share": sensitivity.int8_flop_share(sites, on), "float_groups": f"placement {placement}"})
train = encode(base.data, "train", base.tokenizer, max_length=cfg.max_length, batch_size=cfg.batch_size,
               limit=(4 if smoke else autoq_batches) * cfg.batch_size).batches
aq_model, aq = sensitivity.auto_quantize(base.model, train, effective_bits=autoq_bits, method=autoq_method,
                                         score_steps=4 if smoke else autoq_batches)
aq_res = evaluate(torch_predictor(aq_model), base.data, base.validation, reference=fp32.predictions)
ci = paired_bootstrap(fp32.scores, aq_res.scores)
peers.append({"recipe": f"autoq-{autoq_method}-{autoq_bits:g}b", main: aq_res.metrics[main],
              "delta": aq_res.metrics[main] - fp32.metrics[main], "ci_low": ci["low"], "ci_high": ci["high"],
              "sqnr_db": sqnr_db(fp32.outputs, aq_res.outputs),
              "int8_flop_share": sensitivity.int8_flop_share(sensitivity.matmul_sites(aq_model, flop_seq), aq["enabled"]),
              "float_groups": "float layers: " + (", ".join(aq["float_layers"]) or "none")})
chosen_row = sweep[sweep["k"] == chosen_k].iloc[0].to_dict()
whole = ptq_score()  # the full INT8 model on the whole split (the ranking above scored `rank_samples` sentences)
compare = pd.DataFrame([{"recipe": ptq_recipe, main: whole.metric, "delta": whole.metric - fp32.metrics[main],
                         "sqnr_db": whole.sqnr_db, "int8_flop_share": sensitivity.int8_flop_share(sites, all_on),
                         "float_groups": "none"}, chosen_row, *peers]).set_index("recipe")
rows = []
for recipe, r in compare.iterrows():
    extra = {"int8_flop_share": float(r["int8_flop_share"]), "flop_seq": flop_seq, "float_groups": r["float_groups"]}
    where = {"recipe": recipe, "engine": "torch-eager:int8-sim", "precision": "int8", "extra": extra}
    rows += [figures.figure(main, r[main], seq=cfg.max_length, **where),
             figures.figure("int8_flop_share", r["int8_flop_share"], seq=flop_seq, **where)]
run.record(rows, model=base.model_name, task=task, data=base.data.describe(), device=cfg.where)
print(f"auto_quantize: constraint satisfied {aq['satisfied']}; {len(aq['int8_layers'])} INT8 layers, "
      f"{len(aq['float_layers'])} float")
compare.drop(columns=["k", "meets_targets"], errors="ignore").round(4)

# %% [markdown]
# ## Step 5: the chosen recipe, end to end
# Saved in the run folder, exported with notebook 40's code to `onnx/<recipe>/`, checked through ONNX Runtime on
# the CPU (agreement with its PyTorch model on the validation split; INT8 FLOP share counted from the graph), and
# timed in one benchmark run with FP32 and the full INT8 file (notebook 60's engines). Rerun notebook 70 after this
# one and the dashboard to see it beside every other variant.

# %%
name = sensitivity.mixed_recipe(ptq_recipe, chosen_k)
floated = sensitivity.find_groups(groups, order[:chosen_k])
with sensitivity.keep_float(qmodel, floated):
    quant.save_quantized(qmodel, base.tokenizer, run.path("checkpoints", f"{name}-{cfg.key()}"),
                         {"placement": "trt-bert", "recipe": name, "baseline": str(base.path),
                          "float_groups": [g.name for g in floated], "ranking": ranking})
    mixed_torch = ptq_predict()  # with k = 0 this is the PTQ model itself: its kept outputs are replayed
    variant = to_onnx.export_torch(qmodel, variant_dir(run.run_dir, name), recipe=name, precision="int8",
                                  source=str(base.path), task=task, config_src=base.path)
    torch_res = evaluate(mixed_torch, base.data, base.validation, reference=fp32.predictions)
session = make_session(variant.path, "cpu")
# kept for notebook 70 (tasks.recorded); a file with the same bytes as notebook 40's PTQ file replays 40's outputs
on_ort = recorded(lambda: ort_predictor(session), outputs_file(run.run_dir, engine_for_file("ort-cpu", name, "int8"),
                                                                variant.meta["sha256"]), base.validation)
ort_res = evaluate(on_ort, base.data, base.validation, reference=torch_res.predictions)
graph_share = sensitivity.onnx_int8_flop_share(variant.path, flop_seq)
ci = paired_bootstrap(fp32.scores, ort_res.scores)
check = {"recipe": name, "torch " + main: torch_res.metrics[main], "ORT " + main: ort_res.metrics[main],
         "ORT agreement with its PyTorch model %": ort_res.metrics["agreement"],
         "INT8 FLOP share (graph)": graph_share["int8_share"], "INT8 FLOP share (modules)": chosen_row["int8_flop_share"],
         "ORT delta 95% CI": f"[{ci['low']:+.2f}, {ci['high']:+.2f}]"}
extra = {"file": str(variant.path), "sha256": variant.meta["sha256"], **session.provenance(),
         "torch_agreement": ort_res.metrics["agreement"], "int8_flop_share": graph_share["int8_share"],
         "float_groups": [g.name for g in floated]}
where = {"recipe": name, "engine": "ort-cpu:int8-qdq", "precision": "int8", "extra": extra}
run.record(figures.scores(ort_res.metrics, seq=cfg.max_length, skip=("agreement",), **where)
           + [figures.figure("int8_flop_share", graph_share["int8_share"], seq=flop_seq, **where)],
           model=base.model_name, task=task, data=base.data.describe(), device=cfg.where)
pd.Series(check).to_frame("value")

# %%
# FP32 and the full INT8 file were timed by notebook 60 of this run at the same shapes when it ran: their figures
# are read back, not measured twice (one figure per identity); only what this run lacks is timed here.
done = read_results(run.run_id, run.db)
reused = {key: rows for key in (("ort-cpu:fp32", "fp32"), ("ort-cpu:int8-qdq", ptq_recipe))
          if (rows := tables.timed_in_run(done, base.model_name, *key, bench_batches, [flop_seq])) is not None}
assets = engines.Assets(str(base.path), run.path("bench", "sensitivity"), task=task,
                        num_labels=max(base.data.num_labels, 2), ptq_model=quant.load_quantized(ptq_path, task=task,
                                                                                               num_labels=max(base.data.num_labels, 2)),
                        onnx_dirs={"fp32": variant_dir(run.run_dir, "fp32"),
                                   "ptq": variant_dir(run.run_dir, ptq_recipe)})
mixed_assets = engines.Assets(str(base.path), run.path("bench", "sensitivity"), task=task,
                              onnx_dirs={"ptq": variant.path.parent})
built = [engines.make_engine(e, assets, **({"recipe": r} if r != "fp32" else {}))
         for e, r in (("ort-cpu:fp32", "fp32"), ("ort-cpu:int8-qdq", ptq_recipe)) if (e, r) not in reused]
built.append(engines.make_engine("ort-cpu:int8-qdq", mixed_assets, recipe=name))
grid = engines.run_grid(built, bench_batches, [flop_seq], warmup=2 if smoke else 10,
                        iterations=5 if smoke else bench_iterations)
grid.raise_failures()
run.record(engines.measurements(grid.rows, untrained=False), model=base.model_name, task=task,
           data="synthetic token ids (latency only)")
print("timed here:", sorted({f"{r['engine']} · {r['recipe']}" for r in grid.rows}),
      "| read from notebook 60 of this run:", [f"{e} · {r}" for e, r in reused] or "nothing")
lat = pd.DataFrame([{"engine": r["engine"], "recipe": r["recipe"], "batch": r["batch"], "p50_ms": r["p50_ms"]}
                    for r in grid.rows]
                   + [{"engine": e, "recipe": r, "batch": tables.as_int(b), "p50_ms": v}
                      for (e, r), rows in reused.items()
                      for b, s_, v in zip(rows["batch"], rows["seq"], rows["value"], strict=True)
                      if tables.as_int(b) in bench_batches and tables.as_int(s_) == flop_seq])
lat["vs fp32"] = [lat[(lat.batch == b) & (lat.recipe == "fp32")]["p50_ms"].iloc[0] / p
                  for b, p in zip(lat.batch, lat.p50_ms, strict=True)]
lat.pivot_table(index="recipe", columns="batch", values=["p50_ms", "vs fp32"]).round(3)

# %% [markdown]
# ## Summary
# * Every group was measured twice on the one calibrated model (alone quantized, alone float); the ranking, the
#   sweep and the peers are in the tables above and in the results database (`*_quant_alone`, `*_float_alone`,
#   `int8_flop_share`; the group is in each row's `extra`).
# * Did a recipe meet both targets (accuracy within `target_delta` with an interval that includes 0, and at least
#   `min_int8_share` of MatMul FLOPs in INT8)? The sweep's `meets_targets` column says; the chosen recipe's ONNX
#   file, its agreement with PyTorch and its latency beside FP32 and full INT8 are in Step 5.
#
# ## Exercises
# 1. Rank by `float-alone-sqnr` instead: does the order, and the k you need, change?
# 2. Which role dominates the top of the ranking? Leave only that role float in every block (pass those groups
#    to `sensitivity.keep_float`) and compare with the sweep.
# 3. Lower `autoq_bits` to 8.1: which layers does `mtq.auto_quantize` keep in INT8, and how do they compare with ours?
# 4. Time the chosen recipe at `flop_seq=384`: does the attention share of the FLOPs change the picture?
