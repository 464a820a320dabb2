#!/usr/bin/env bash
# \brief The whole test suite from a fresh machine: install what is missing, build, run ctest.
# Also builds the CUDA kernels (compile-and-link check) when nvcc is installed, even without a GPU.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
start=$(date +%s)
bash "$root/launch/setup.sh"
cpu_build=$(( $(date +%s) - start ))
echo "test.sh: CPU build ready after ${cpu_build}s"
ctest --test-dir "$root/build" --output-on-failure -j "${DFCL_JOBS:-2}"
echo "test.sh: ctest done after $(( $(date +%s) - start ))s"
# The build a GPU host without HDF5 or MPI headers gets: it must build and pass on in-memory data.
echo "test.sh: build without HDF5 and MPI (build-minimal)"
cmake -S "$root" -B "$root/build-minimal" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDFCL_HDF5=OFF -DDFCL_MPI=OFF \
  -DDFCL_BENCH=OFF >/dev/null
cmake --build "$root/build-minimal" -j "${DFCL_JOBS:-2}"
ctest --test-dir "$root/build-minimal" --output-on-failure -j "${DFCL_JOBS:-2}"
echo "test.sh: minimal build tested after $(( $(date +%s) - start ))s"
nvcc=${CUDA_HOME:-/usr/local/cuda}/bin/nvcc
if [ -x "$nvcc" ] || command -v nvcc >/dev/null 2>&1; then
  echo "test.sh: nvcc found: CUDA compile-and-link check (build-cuda)"
  # Only what the check runs: the binary (with the nccl communicator when MPI is found, and the fused loss kernels in
  # its losses), the kernel tests and the kernel benchmark (launch/gpu_check.sh runs both on a GPU).
  PATH="$(dirname "$nvcc"):$PATH" cmake -S "$root" -B "$root/build-cuda" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DDFCL_CUDA=ON -DDFCL_BENCH=ON ${Torch_DIR:+-DTorch_DIR="$Torch_DIR"} >/dev/null
  PATH="$(dirname "$nvcc"):$PATH" cmake --build "$root/build-cuda" -j "${DFCL_JOBS:-2}" \
    --target dfcl dfcl_test_cuda dfcl_bench_cuda_kernels
  "$root/build-cuda/bench/dfcl_bench_cuda_kernels" --rows 1000   # says why it skips without a GPU
  "$root/build-cuda/src/cli/dfcl" info
  "$root/build-cuda/tests/dfcl_test_cuda" --gtest_brief=1   # kernels vs CPU path; skips without a GPU
  echo "test.sh: CUDA build done after $(( $(date +%s) - start ))s"
else
  echo "test.sh: no nvcc: CUDA compile check skipped"
fi
# Sanitizers (docs/reliability.md): ASan + UBSan on a named subset, and TSan on the threaded parts. CI must finish in
# 40 minutes on 2 cores: a stage starts only while the budget (DFCL_CI_BUDGET_MIN, default 40) leaves it the time it
# needs (warm ccache: ASan 15 min, TSan 3; cold, as the CPU build's time shows: 35 and 15), and says so when not.
# DFCL_SANITIZE_CI=0 leaves them out; launch/sanitize.sh address all runs every test under ASan + UBSan.
if [ "${DFCL_SANITIZE_CI:-1}" = 1 ]; then
  budget=$(( ${DFCL_CI_BUDGET_MIN:-40} * 60 ))
  # Minutes each stage takes with a warm ccache, and cold (a CPU build over 10 minutes means the cache was cold).
  cold=$(( cpu_build > 600 ))
  for stage in "address ci:15:35" "thread:3:15"; do
    IFS=: read -r args warm_min cold_min <<< "$stage"
    need=$(( (cold ? cold_min : warm_min) * 60 ))
    left=$(( budget - ($(date +%s) - start) ))
    if [ $left -lt $need ]; then
      echo "test.sh: SKIPPED sanitizer stage '$args': ${left}s of the CI budget left, it needs ~${need}s; run it by hand: bash launch/sanitize.sh $args"
      continue
    fi
    bash "$root/launch/sanitize.sh" $args
    echo "test.sh: sanitizer stage '$args' done after $(( $(date +%s) - start ))s"
  done
fi
