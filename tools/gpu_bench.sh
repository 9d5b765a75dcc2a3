#!/usr/bin/env bash
# GPU benchmark on the lent GPU machine (the `device` tool), after ../shared/tools/device-wheels.sh's bundles
# have been staged into /tmp/site in the same lease. Usage there:  bash tools/gpu_bench.sh [check|main|long]
#   check: versions and provider availability only
#   main:  BERT-base, seq 128, batch 1/8/64/128, every GPU engine (the issue's targets)
#   long:  BERT-base seq 384 and BERT-large seq 128, engines without per-shape compilation
# Results: $OUT/results.sqlite (the results database) and $OUT/bench-*.txt (plain tables).
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NBUTILS_RUNS_DIR=/tmp/nbruns TOKENIZERS_PARALLELISM=false
out=${OUT:-/tmp/out}; mkdir -p "$out" "$NBUTILS_RUNS_DIR"
python3 - <<'PY'
import torch, onnxruntime as ort, transformers, modelopt
from nbutils import env
print("torch", torch.__version__, "cuda", torch.version.cuda, "| onnxruntime", ort.__version__, ort.get_available_providers())
print("transformers", transformers.__version__, "| modelopt", modelopt.__version__, "| GPU", env.gpu_name())
for c in env.capabilities():
    print(f"  {c.name}: usable={c.usable} {c.detail} {c.reason}")
PY
mode=${1:-main}
[ "$mode" = check ] && exit 0
if [ "$mode" = placement ]; then
  python3 - <<'PY'
from pathlib import Path
from nbutils import engines, sessions
from nbutils.bench import synthetic_batch
assets = engines.Assets("random:minilm", Path("/tmp/nbruns/placement"), calib=[synthetic_batch(8, 128, seed=i) for i in range(4)])
feed = synthetic_batch(1, 128)
for recipe in ("fp32-fused", "fp16", "ptq"):
    path = assets.onnx(recipe)
    for provider in ("cuda", "tensorrt"):
        s = sessions.make_session(path, provider, qdq=recipe == "ptq", enable_profiling=True, fp16=True,
                                  int8=recipe == "ptq", cache_dir=Path("/tmp/nbruns/trt"))
        counts = sessions.node_placement(s, feed)
        by_ep = {}
        for (op, ep), n in counts.items():
            by_ep.setdefault(ep, {})[op] = n
        print(f"== {recipe} on {provider} (runs on {s.provider}; fallback: {s.fallback_reason or '-'})")
        for ep, ops in by_ep.items():
            print(f"   {ep}: {sum(ops.values())} nodes: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
PY
  exit 0
fi
if [ "$mode" = main ]; then
  python3 -m nbutils bench --model random:bert-base --batch 1,8,64,128 --seq 128 --warmup 20 --iterations 200 \
    --run-id gpu-bert-base-s128 | tee "$out/bench-bert-base-s128.txt"
else
  fast=torch-eager:fp16,torch-eager:bf16,ort-cuda:fp16,ort-cuda:fp16:cudagraph,ort-trt:fp16,ort-trt:int8
  python3 -m nbutils bench --model random:bert-base --batch 1,8,64,128 --seq 384 --engines "$fast,torch-compile:bf16:cudagraphs,torch-fp8:fp8-static:cudagraphs" --warmup 10 \
    --iterations 100 --run-id gpu-bert-base-s384 | tee "$out/bench-bert-base-s384.txt"
  python3 -m nbutils bench --model random:bert-large --batch 1,8,64 --seq 128 --engines "$fast,torch-compile:bf16:cudagraphs,torch-fp8:fp8-static:cudagraphs" \
    --warmup 10 --iterations 100 --run-id gpu-bert-large-s128 | tee "$out/bench-bert-large-s128.txt"
fi
cp "$NBUTILS_RUNS_DIR/results.sqlite" "$out/results-$mode.sqlite"
