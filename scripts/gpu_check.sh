#!/usr/bin/env bash
# GPU check: on a machine with a GPU (or TPU), in under 5 minutes, record what the
# accelerator gives: the devices JAX sees, the device tests, and the benchmark including
# many models at once with K = 1, 64 and 1024. Everything lands in one folder.
#
#   bash scripts/gpu_check.sh [OUT_DIR]        # default: $OUT or ./gpu_check_results
#
# Expects JAX with CUDA (pip install -e ".[cuda]") and the project installed; the
# benchmark's Keras column is skipped when keras is absent.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu_check_results}}"
mkdir -p "$out"
log="$out/gpu_check.md"
{
  echo "# gpu_check $(date -u +%FT%TZ)"
  echo '```'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | head -5
  python -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, \
'optax', optax.__version__); print('devices', jax.devices())"
  echo '```'
} > "$log" 2>&1

# Device tests: the engine, K models at once and the end-to-end runs, on the accelerator.
echo "## tests" >> "$log"
timeout 150 python -m pytest -q -p no:cacheprovider tests/test_engine.py tests/test_multi.py \
  tests/test_models.py tests/test_losses.py 2>&1 | tail -n 15 >> "$log"

# Benchmark: throughput vs the plain loop (and Keras if present), K = 1/64/1024 together,
# the compute-bound MLP against the measured matmul peak.
echo "## benchmark" >> "$log"
timeout 240 python scripts/benchmark.py --quick --only=throughput,compute,many --many_models=1,64,1024 \
  --out="$out/benchmark.md" > "$out/benchmark.log" 2>&1
echo "exit $? (full output: benchmark.md, benchmark.log)" >> "$log"
cat "$out/benchmark.md" >> "$log" 2>/dev/null
echo "wrote $log"
