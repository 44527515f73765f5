#!/usr/bin/env bash
# Every GPU row of BENCHMARKS.md in one run sized for one 10-minute command on a lent H100/H200.
#
#   bash bench/gpu_all.sh            # on the GPU machine, from the repository root (python3 there holds torch)
#   SMOKE=1 DEVICE=cpu bash bench/gpu_all.sh   # the same steps at toy sizes on CPU (checks the wiring only)
#
# Steps, most important first, each under its own time limit so that one slow step cannot eat the others:
# teacher MFU + CLIP L/14 images/s, the 3-seed protocol at full size (2,048 images: the reference's side alone is
# 15 teacher passes over them), head training, L/14 extraction end to end, suite scoring. Rows go to $OUT/rows.md
# when OUT is set (the device tool's output folder), else to BENCHMARKS.md; each step's output to its own log.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
PY=${PYTHON:-python3}
DEV=${DEVICE:-cuda}
LOGS=${OUT:-bench-logs}
mkdir -p "$LOGS"
[ -n "${OUT:-}" ] && export EXPCLIP_BENCH_LOG="$OUT/rows.md"

step() {  # step NAME SECONDS SCRIPT ARGS...
  local name=$1 limit=$2
  shift 2
  echo "=== $name (limit ${limit} s): $PY $*"
  local t0=$SECONDS
  timeout "$limit" "$PY" "$@" >"$LOGS/$name.log" 2>&1
  local rc=$?
  tail -n 12 "$LOGS/$name.log"
  echo "=== $name: rc $rc in $((SECONDS - t0)) s"
}

if [ -n "${SMOKE:-}" ]; then
  step throughput 120 bench/model_throughput.py --device "$DEV" --size small --iters 1 --repeats 1 --teacher-batch 2 --clip-batch 2
  step protocol 120 bench/protocol.py --device "$DEV" --images 64 --batch-size 32 --epochs 1 --seeds 1 2
  step training 120 bench/training.py --device "$DEV" --n 2048 --dim 64 --out-dim 128 --epochs 1 --batch-size 256 --repeats 1
  step extraction 120 bench/extraction.py --device "$DEV" --images 16 --batch-size 8 --workers 0 --repeats 1
  step evaluation 120 bench/evaluation.py --device "$DEV" --rate-images 1 1 1 --seeds 1
else
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true
  step throughput 150 bench/model_throughput.py --device "$DEV"
  step protocol 210 bench/protocol.py --device "$DEV" --size full --images 2048
  step training 60 bench/training.py --device "$DEV"
  step extraction 75 bench/extraction.py --device "$DEV" --arch L14 --images 2048 --batch-size 256 --repeats 3
  step evaluation 75 bench/evaluation.py --device "$DEV" --rate-images 512 256 128
fi
