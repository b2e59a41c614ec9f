#!/usr/bin/env bash
# GPU check: on a machine with a GPU (or TPU), in about 7 minutes, record what the
# accelerator gives: the devices JAX sees, the device tests and the benchmark (K = 1, 64 and
# 1024 models at once first, then per-epoch throughput, the compute-bound MLP and a single run
# end to end). Everything lands in one folder; each step's outcome (exit status, pytest's
# summary) is written even when it fails.
#
#   bash scripts/gpu_check.sh [OUT_DIR]        # default: $OUT or ./gpu_check_results
#
# Runs the repository in place (PYTHONPATH, no install) with $PYTHON (default python3), which
# must hold JAX with its accelerator plugin. Packages that interpreter lacks are installed
# offline from .gpu_wheels/ when that folder exists: on a machine with a network, for the
# accelerator machine's Python (3.12 here),
#   pip download --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#     -d .gpu_wheels ml-collections tensorboardX google-crc32c zlib-ng
# (all four ship such wheels; pip download fetches their dependencies too). Add keras to that
# folder the same way (with its dependencies; of those, the H200 image lacked only namex and
# optree) for the benchmark's Keras columns: it is installed from there too when the
# interpreter lacks it, and the Keras columns are left out when it is absent. With
# GPU_CHECK_ALLOW_CPU=1 it runs on a CPU-only JAX as a dry run; otherwise it stops, after
# recording the devices, when JAX sees no accelerator.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu_check_results}}"
mkdir -p "$out"
log="$out/gpu_check.md"
py="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# Each process takes what it needs instead of 75% of the GPU up front: the tests start several.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
# The CPU suite's conftest pins JAX to the CPU unless told the tests are for the accelerator.
export AE_JAX_TEST_ON_ACCELERATOR=1
need="ml_collections tensorboardX google_crc32c zlib_ng absl flax optax orbax.checkpoint sklearn
matplotlib pyarrow pytest"
missing() { "$py" -c "import importlib.util as u, sys
print(' '.join(m for m in sys.argv[1:] if u.find_spec(m.split('.')[0]) is None))" $need; }

{
  # (not `| grep -q`: under pipefail, git killed by SIGPIPE on a long listing read as clean)
  dirty=$([ -n "$(git status --porcelain 2> /dev/null)" ] && echo ' + uncommitted changes')
  echo "# gpu_check $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null)$dirty"
  echo '```'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | head -5
  if [ -n "$(missing)" ] && [ -d .gpu_wheels ]; then
    echo "installing from .gpu_wheels: $(missing)"
    "$py" -m pip install -q --no-index --find-links .gpu_wheels \
      ml-collections tensorboardX google-crc32c zlib-ng 2>&1 | tail -3
  fi
  if ls .gpu_wheels/keras-*.whl > /dev/null 2>&1 && [ -n "$(need=keras missing)" ]; then
    echo "installing keras from .gpu_wheels (the benchmark's Keras columns)"
    "$py" -m pip install -q --no-index --find-links .gpu_wheels keras 2>&1 | tail -3
  fi
  echo "missing packages: $(missing)"
  timeout 120 "$py" -c "import jax, flax, optax, sys
print('python', sys.version.split()[0], 'jax', jax.__version__, 'flax', flax.__version__,
      'optax', optax.__version__)
print('backend', jax.default_backend(), 'devices', jax.devices())"
  echo '```'
} > "$log" 2>&1
cat "$log"
if [ -n "$(missing)" ]; then
  echo "stopped: packages missing (see above); prepare .gpu_wheels as this script's header says" \
    | tee -a "$log"
  exit 2
fi
backend=$(timeout 120 "$py" -c "import jax; print(jax.default_backend())" 2>/dev/null)
if [ "$backend" = "cpu" ] && [ "${GPU_CHECK_ALLOW_CPU:-0}" != "1" ]; then
  echo "stopped: JAX sees no accelerator (backend cpu); nothing below would measure one" \
    | tee -a "$log"
  exit 3
fi

# Device tests: the engine, K models at once, the models and losses, the native convolutions
# (the one code path that differs off CPU), end-to-end training and bit-for-bit resume, in 6
# processes sharing the GPU (pytest-xdist; one process took over 200 s on an H200, as every
# test compiles its own programs). (test_parallel and test_multihost need 4 CPU devices: they
# are the CPU suite's.)
echo "## tests (backend $backend)" >> "$log"
workers=$("$py" -c "import xdist" 2> /dev/null && echo "-n 6" || echo "-p no:xdist")
# shellcheck disable=SC2086  # $workers is two words on purpose
timeout 200 "$py" -m pytest -p no:cacheprovider $workers -o addopts="" -q -rfE \
  tests/test_engine.py tests/test_multi.py tests/test_models.py tests/test_losses.py \
  tests/test_conv.py tests/test_train.py tests/test_resume.py > "$out/tests.log" 2>&1
status=$?
{
  echo '```'
  grep -E "^(FAILED|ERROR)|passed|failed|error" "$out/tests.log" | tail -n 25
  echo "pytest exit $status$([ $status = 124 ] && echo ' (stopped at 200 s)') (full output: tests.log)"
  echo '```'
} >> "$log"

# Start-up: where a command's first seconds go before its first line (the first H200 run's
# single run printed its first line after 5-7 s, Keras' script after 3.6-4.3 s): the
# interpreter alone, the command's imports (and the biggest of them), JAX's backend start.
echo "## start-up" >> "$log"
{
  echo '```'
  timeout 60 "$py" - << 'EOF'
import subprocess, sys, time
t = time.perf_counter()
subprocess.run([sys.executable, "-c", "pass"], check=True)
bare = time.perf_counter() - t
t = time.perf_counter()
import ae_jax.commands  # noqa: E402,F401  the command's imports
t1 = time.perf_counter()
import jax  # noqa: E402
jax.devices()
t2 = time.perf_counter()
print(f"interpreter alone {bare:.2f} s; import ae_jax.commands {t1 - t:.2f} s; "
      f"JAX's backend start (jax.devices()) {t2 - t1:.2f} s")
EOF
  echo "the largest imports (python -X importtime; microseconds, cumulative):"
  timeout 60 "$py" -X importtime -c "import ae_jax.commands" 2>&1 | sort -t'|' -k2 -n -r \
    | sed -n 2,13p
  echo '```'
} >> "$log" 2>&1

# Benchmark: K = 1/64/1024 together first (the headline), then throughput against the plain
# loop (and Keras if present), the compute-bound MLP (its accelerator size: batch 4,096)
# against the measured matmul peak, and last a single run as whole processes, cold and warm
# cache, against the Keras script (each section's table is written as soon as it is done).
echo "## benchmark" >> "$log"
timeout 300 "$py" scripts/benchmark.py --quick --only=many,throughput,compute,single \
  --many_models=1,64,1024 --out="$out/benchmark.md" > "$out/benchmark.log" 2>&1
status=$?
echo "benchmark exit $status$([ $status = 124 ] && echo ' (stopped at 300 s)') (full output: benchmark.md, benchmark.log)" >> "$log"
cat "$out/benchmark.md" >> "$log" 2>/dev/null
echo "wrote $log"
