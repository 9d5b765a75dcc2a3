#!/usr/bin/env bash
# The suite on a lent GPU machine (the `device` tool: H100/H200, Python 3.12, its own torch cu130, no package
# registry, 64 MiB carried per call, /tmp kept only while the machine stays warm). One script, few calls:
#
#   here:  bash tools/gpu.sh prepare
#            downloads the wheels in constraints-gpu.txt (../shared/tools/device-wheels.sh) into 48 MiB bundles
#            .device-wheels/b0..bN (git-ignored) and copies the shared SST-2 and SQuAD data into
#            .device-wheels/data (ignored; carried, never committed). Prints the device calls.
#   there, back to back (the machine goes back after a short idle time):
#          bash tools/gpu.sh stage K      carry [".device-wheels/bK"]        one call per bundle; the last installs
#          bash tools/gpu.sh check        carry [".device-wheels/data"]      versions, CUDA, providers, ModelOpt's and
#                                                                            NNCF's CUDA extensions (built once), data in place
#          bash tools/gpu.sh run PROFILE [runner args]                       e.g. run sst2 --only 10,20,30, then
#                                                                            run sst2 --resume ID --only 40,...
#          bash tools/gpu.sh bench [main|long|placement]                     GPU benchmark grids (notebook 60's engines)
# Results come back under $OUT: results-*.sqlite (the results database), run-*/ (executed notebooks, summary,
# report tables; checkpoints and ONNX files stay there), bench-*.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:-}; shift || true
out=${OUT:-/tmp/out}
export PYTHONPATH=/tmp/site:$root PYTHONUNBUFFERED=1 NBUTILS_RUNS_DIR=/tmp/nbruns TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

wheels() { grep -v '^\s*#' constraints-gpu.txt | grep -v '^\s*$'; }

case "$mode" in
prepare)
  mapfile -t list < <(wheels)
  ../shared/tools/device-wheels.sh "${list[@]}"
  rm -rf .device-wheels/data && mkdir -p .device-wheels/data
  cp -r ../shared/data/sst2 ../shared/data/squad-v1.1 .device-wheels/data/
  n=$(ls -d .device-wheels/b* | wc -l)
  echo "device calls, back to back: for K in 0..$((n - 1)): carry [\".device-wheels/bK\"] bash tools/gpu.sh stage K;"
  echo "then carry [\".device-wheels/data\"] bash tools/gpu.sh check; then bash tools/gpu.sh run PROFILE ..."
  ;;
stage)
  k=${1:?stage needs the bundle number}
  bash ".device-wheels/b$k/stage.sh"
  ;;
check)
  # The data the profiles name (../shared/data/...) is put where they look for it.
  if [ -d .device-wheels/data ]; then
    rm -rf /tmp/gpu-data && cp -r .device-wheels/data /tmp/gpu-data
  fi
  if [ ! -e ../shared/data ] && [ -d /tmp/gpu-data ]; then mkdir -p ../shared && ln -sfn /tmp/gpu-data ../shared/data; fi
  python3 - <<'PY'
import importlib.metadata as md, sys
import torch
from nbutils.core import device
from nbutils.core import env
want = {}
for line in open("constraints-gpu.txt"):
    line = line.split("#")[0].strip()
    if line:
        name, version = line.split("==")
        want[name] = version
bad = {n: (v, env.package_version(n)) for n, v in want.items() if env.package_version(n) != v}
print(f"staged wheels: {len(want) - len(bad)}/{len(want)} at their pinned versions")
for n, (v, got) in bad.items():
    print(f"  MISMATCH {n}: want {v}, found {got}")
dev = device.resolve("auto")
print("device:", dev, "| torch", torch.__version__, "CUDA", torch.version.cuda)
for c in env.capabilities():
    print(f"  {c.name}: usable={c.usable} {c.detail} {c.reason}")
import onnxruntime as ort, papermill, ipykernel, plotly, openvino, nncf, modelopt  # noqa: F401 - import check
print("onnxruntime", ort.__version__, ort.get_available_providers())
# ModelOpt's CUDA extension (fake quantization kernels): built once per machine, here rather than mid-notebook.
import modelopt.torch.quantization.extensions as ext
print("modelopt CUDA extension:", "loaded" if ext.get_cuda_ext() is not None else "NOT available (pure PyTorch fallback)")
# NNCF's CUDA quantizer kernels (notebook 42's QAT trains on the GPU): the same one-off build, here.
import time
t0 = time.perf_counter()
try:
    import nncf.torch
    nncf.torch.force_build_cuda_extensions()
    print(f"nncf CUDA extension: built in {time.perf_counter() - t0:.0f} s")
except Exception as exc:  # noqa: BLE001 - reported; notebook 42 would then build it (or fail) itself
    print(f"nncf CUDA extension: NOT built ({type(exc).__name__}: {exc})")
from pathlib import Path
for p in ("../shared/data/sst2/train.tsv", "../shared/data/squad-v1.1/dev-v1.1.json"):
    print(p, "present" if Path(p).is_file() else "MISSING (carry .device-wheels/data with this call)")
sys.exit(1 if bad or not dev.is_cuda else 0)
PY
  ;;
run)
  profile=${1:?run needs a profile}; shift
  mkdir -p "$out" "$NBUTILS_RUNS_DIR"
  start=$(date +%s)
  set +e
  python3 -m nbutils run --profile "$profile" "$@" 2>&1 | tee "$out/run-$profile.log" | grep -v "^  cell " | tail -n 60
  rc=${PIPESTATUS[0]}
  set -e
  echo "gpu.sh run $profile $*: exit $rc after $(( $(date +%s) - start )) s"
  latest=$(ls -td "$NBUTILS_RUNS_DIR"/*/ | head -n 1)
  dest="$out/run-$(basename "$latest")"
  mkdir -p "$dest"
  (cd "$latest" && cp -r --parents -- *.ipynb *.json summary.html report "$dest"/ 2>/dev/null || true)
  cp "$NBUTILS_RUNS_DIR/results.sqlite" "$out/results-$profile.sqlite"
  exit "$rc"
  ;;
bench)
  bmode=${1:-main}
  mkdir -p "$out" "$NBUTILS_RUNS_DIR"
  if [ "$bmode" = placement ]; then
    python3 - <<'PY'
from pathlib import Path
from nbutils import engines
from nbutils.engines import ort_session
from nbutils.training.inputs import synthetic_batch
assets = engines.Assets("random:minilm", Path("/tmp/nbruns/placement"), calib=[synthetic_batch(8, 128, seed=i) for i in range(4)])
feed = synthetic_batch(1, 128)
for recipe in ("fp32-fused", "fp16", "ptq"):
    path = assets.onnx(recipe)
    for provider in ("cuda", "tensorrt"):
        s = ort_session.make_session(path, provider, qdq=recipe == "ptq", enable_profiling=True, fp16=True,
                                  int8=recipe == "ptq", cache_dir=Path("/tmp/nbruns/trt"))
        counts = ort_session.node_placement(s, feed)
        by_ep = {}
        for (op, ep), n in counts.items():
            by_ep.setdefault(ep, {})[op] = n
        print(f"== {recipe} on {provider} (runs on {s.provider}; fallback: {s.fallback_reason or '-'})")
        for ep, ops in by_ep.items():
            print(f"   {ep}: {sum(ops.values())} nodes: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
PY
  elif [ "$bmode" = main ]; then
    python3 -m nbutils bench --model random:bert-base --batch 1,8,64,128 --seq 128 --warmup 20 --iterations 200 --engines gpu-all \
      --run-id gpu-bert-base-s128 | tee "$out/bench-bert-base-s128.txt"
  else
    fast=torch-eager:fp16,torch-eager:bf16,ort-cuda:fp16,ort-cuda:fp16:cudagraph,ort-trt:fp16,ort-trt:int8
    python3 -m nbutils bench --model random:bert-base --batch 1,8,64,128 --seq 384 \
      --engines "$fast,torch-compile:bf16:cudagraphs,torch-fp8:fp8-static:cudagraphs" --warmup 10 \
      --iterations 100 --run-id gpu-bert-base-s384 | tee "$out/bench-bert-base-s384.txt"
    python3 -m nbutils bench --model random:bert-large --batch 1,8,64 --seq 128 \
      --engines "$fast,torch-compile:bf16:cudagraphs,torch-fp8:fp8-static:cudagraphs" \
      --warmup 10 --iterations 100 --run-id gpu-bert-large-s128 | tee "$out/bench-bert-large-s128.txt"
  fi
  cp "$NBUTILS_RUNS_DIR/results.sqlite" "$out/results-bench-$bmode.sqlite"
  ;;
*)
  sed -n '2,20p' "$0"
  exit 2
  ;;
esac
