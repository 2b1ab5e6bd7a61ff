#!/usr/bin/env bash
# The GPU check: what a search costs on one H100/H200, in one script that fits in 8 minutes.
#
# Records, each in its own file under OUT_DIR (default experiments/results/gpu):
#   environment.txt  the GPU model, driver and CUDA version; Python, jax and jaxlib versions
#   ptb.txt          paper-size PTB search: shared and controller step times, the epoch and the
#                    projected 150-epoch search (experiments/bench/search_epoch_time.py), with the
#                    default activation dispatch ("auto": "select" on a GPU); then 3 shared and
#                    3 controller steps traced (trace_ptb/) and summarised: kernels per step, the
#                    device's busy fraction, the longest kernels (experiments/bench/device_trace.py)
#   micro.txt        paper-size CIFAR-10 micro search: the same projection
#   ptb_deterministic.txt   the PTB projection again with --config.deterministic=True
#   ptb_unroll.txt   the PTB projection with model.scan_unroll=5 (five time steps per iteration
#                    of the time loop: fewer loop iterations; a candidate, not yet measured there)
# Measured once and not repeated here (experiments/results/gpu/run2): "switch" dispatch (2.32 h
# against 1.41 h), bfloat16 products (1.08 h with "select").
# Targets: the PTB search and the CIFAR-10 micro search each in at most 1 hour.
#
# On the device machine (no internet: the two pure-Python packages its image lacks travel as
# wheels, fetched beforehand on a machine with internet):
#   pip download --no-deps -d .gpu_wheels ml-collections tensorboardX    # once, here
#   bash experiments/bench/gpu_check.sh "$OUT"                           # there (carry .gpu_wheels)
# Anywhere, a quick run of the same script at small sizes: SMALL=1 bash experiments/bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT_DIR=${1:-experiments/results/gpu}
PY=${PYTHON:-python3}
SIZE=${SMALL:+--small}
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
missing=$($PY -c "
import importlib.util as u
print(' '.join(p for m, p in (('ml_collections', 'ml-collections'), ('tensorboardX', 'tensorboardX'))
               if u.find_spec(m) is None))")
if [ -n "$missing" ]; then
  $PY -m pip install -q --no-index --no-deps --find-links .gpu_wheels $missing
fi
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null \
    || echo "nvidia-smi: not found (no NVIDIA GPU)"
  nvidia-smi 2>/dev/null | grep -o "CUDA Version: [0-9.]*" || true
  $PY -c "import sys, jax, jaxlib; print('python', sys.version.split()[0], '| jax', jax.__version__,
'| jaxlib', jaxlib.__version__, '| devices', jax.devices())"
} 2>&1 | tee "$OUT_DIR/environment.txt"
run() {  # name, seconds, arguments...
  local name=$1 limit=$2; shift 2
  timeout "$limit" $PY experiments/bench/search_epoch_time.py $SIZE "$@" 2>&1 \
    | tee "$OUT_DIR/$name.txt" || echo "($name: stopped or failed, status $?)" | tee -a "$OUT_DIR/$name.txt"
}
# Limits from the runs on an H200 (2026-12-04, run2): a PTB run takes 50-65 s at --steps=10
# (setup 18 s, compiling, two derives; the first run here also traces 6 steps, last), the micro
# run about 245 s (setup 102 s, compiling ~100 s).
# Each run prints its figures as it measures them, so one stopped at its limit keeps its steps.
run ptb 90 --space=rnn --steps=20 --trace_dir="$OUT_DIR/trace_ptb"
run micro 260 --space=micro --steps=10
run ptb_deterministic 65 --space=rnn --steps=5 --deterministic
run ptb_unroll 65 --space=rnn --steps=5 --set=model.scan_unroll=5
find "$OUT_DIR" -name "*.xplane.pb" -delete  # the traces' perfetto_trace.json.gz stay
