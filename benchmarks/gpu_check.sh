#!/usr/bin/env bash
# The GPU path on a real GPU, in one run with a global deadline (a lent GPU machine has minutes).
#
#   bash benchmarks/gpu_check.sh            from the repository root, on the GPU machine
#
# The machine's python3 has torch + CUDA, Lightning, numpy/pandas/scikit-learn, onnx and pytest,
# but not hydra-core, omegaconf or MLflow: their wheels travel in ./.whl (git-ignored; download
# them beside the project with `pip download --python-version 3.12 --only-binary=:all: --no-deps`
# for the versions of requirements.lock) and are installed under /tmp/site here.
# Steps (each capped by what is left of GPU_CHECK_BUDGET_S, default 420 s; a failure never stops
# the rest): versions; the GPU tests; a sweep on the tiny preset trained on the GPU with the cuda
# runtime beside eager, and its board; the float precisions of the brand-2 GRU model in the cuda
# runtime (benchmarks.cuda_runtimes). Everything kept is written to $OUT (default /tmp/gpu-check).
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
PY=${PY:-python3}
T0=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET_S:-420}
LOG=$OUT/gpu_check.log
SUMMARY=$OUT/summary.txt
: >"$LOG"
: >"$SUMMARY"
export PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1 TQDM_DISABLE=1 GIT_PYTHON_REFRESH=quiet
export MLFLOW_TRACKING_URI=sqlite:////tmp/gpu-check.db BENCHMARK_RESULTS=$OUT
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}

# step NAME MAX_S CMD...: CMD with a timeout of min(MAX_S, time left); skipped under 20 s left.
step() {
  local name=$1 max=$2
  shift 2
  local left=$((T0 + BUDGET - $(date +%s)))
  if ((left < 20)); then
    printf '%-12s SKIPPED (%ss left)\n' "$name" "$left" | tee -a "$SUMMARY"
    return 0
  fi
  local t=$((max < left ? max : left)) s=$(date +%s)
  echo "===== [$name] timeout ${t}s: $*" >>"$LOG"
  timeout -k 5 "$t" "$@" >>"$LOG" 2>&1
  local rc=$?
  printf '%-12s rc=%-4s %4ss\n' "$name" "$rc" "$(($(date +%s) - s))" | tee -a "$SUMMARY"
}

step install 90 "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
step versions 60 bash -c 'nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv;
  '"$PY"' -c "import torch, pytorch_lightning as pl; print(torch.__version__, torch.version.cuda,
  torch.cuda.get_device_name(0), pl.__version__)"'
step tests 120 "$PY" -m pytest -q -p no:cacheprovider tests/runtimes/test_cuda.py \
  tests/runtimes/test_base.py tests/pipeline/test_fit.py
step data 60 "$PY" -c "from src.data.synth import generate; generate('tiny', '/tmp/tiny', brand=3, seed=0)"
step sweep 180 "$PY" -m src.train -m +method=baseline,fp16,bf16,dynamic model=dyad_tiny \
  data.root=/tmp/tiny trainer=gpu trainer.max_epochs=2 'benchmark.runtimes=[eager,cuda]' \
  benchmark.iters=10 hydra.sweep.dir=/tmp/gpu-sweep
step board 60 "$PY" -m src.leaderboard sweep_id=gpu-sweep out_dir="$OUT/board" log_to_parent=false
step brand2 150 "$PY" -m benchmarks.cuda_runtimes
"$PY" - >>"$SUMMARY" 2>&1 <<'PY'
from mlflow.tracking import MlflowClient
runs = MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()])
for r in sorted(runs, key=lambda r: r.info.start_time):
    m, t = r.data.metrics, r.data.tags
    print(r.info.status, t.get("method"), t.get("train.device"), t.get("runtime.cuda.form") or
          t.get("runtime.cuda.skipped"), {k: round(v, 4) for k, v in m.items()
          if k.startswith(("latency/cuda/speedup_bs", "runtime/cuda/parity", "runtime/cuda/test/auroc"))})
PY
cp "$OUT"/board/leaderboard.md "$OUT"/board.md 2>/dev/null
rm -rf "$OUT"/board
echo "total $(($(date +%s) - T0)) s" | tee -a "$SUMMARY"
