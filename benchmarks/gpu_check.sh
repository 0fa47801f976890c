#!/usr/bin/env bash
# The one GPU run of issue 8, prepared to run as a single command on a lent GPU machine
# (the device tool), whose image has torch, CuPy, hypothesis and pytest but not
# array-api-compat. It runs the GPU benchmark grid, then the `gpu`-marked tests (the
# property suites on torch-CUDA and CuPy against autograd on the GPU, the CUDA unit tests,
# the CUDA-graph tests), each capped at 5 minutes, and leaves logs, the GPU table and the
# updated benchmarks/README.md in $OUT (./gpu-out when OUT is unset).
#
# Before calling it, here, from the repository's root (the wheel is pure Python):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl array-api-compat==1.16.0
# then: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)
# and copy $OUT/README.md over benchmarks/README.md (only its GPU section changes).
#
# On a machine without a GPU it runs through too (the gpu tests skip, the benchmark exits
# 2), which is how it was tried before any GPU run.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
out="${OUT:-gpu-out}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"  # the packages from this tree, not installed

{ nvidia-smi 2>&1 || echo "no nvidia-smi"; "$PYTHON" -c \
    'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__,
    "cuda", torch.cuda.is_available())'; "$PYTHON" -c \
    'import cupy; print("cupy", cupy.__version__, "gpus", cupy.cuda.runtime.getDeviceCount())' \
    2>&1 | tail -1; } | tee "$out/machine.txt"

# The benchmark first (about 2 minutes): its table is what the session is for.
timeout 300 "$PYTHON" -m benchmarks --gpu --readme --out "$out" 2>&1 | tee "$out/benchmark-gpu.log"
bench_status=${PIPESTATUS[0]}
cp benchmarks/README.md "$out/README.md"

# Then the gpu-marked tests, on the short "gpu" hypothesis profile (no shrinking), capped
# so that the whole script ends inside one 10-minute call.
timeout 300 "$PYTHON" -W error -m pytest -m gpu -q -p no:cacheprovider -o addopts="-ra" \
    --hypothesis-profile=gpu tests 2>&1 | tee "$out/pytest-gpu.log"
tests_status=${PIPESTATUS[0]}

echo "gpu tests: exit $tests_status; gpu benchmark: exit $bench_status" | tee -a "$out/machine.txt"
[ "$tests_status" -eq 0 ] && [ "$bench_status" -eq 0 ]
