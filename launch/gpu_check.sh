#!/usr/bin/env bash
# \brief One-shot check on a lent GPU host (CUDA + PyTorch's LibTorch, no network, maybe no MPI/HDF5):
# configure and build the full CUDA mode against the host's LibTorch, run the test suite, report the devices,
# and run the data benchmarks. Needs .deps/ from launch/bundle_deps.sh (carried with the working tree).
# Writes logs and results to ${OUT:-out/gpu}.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${OUT:-$root/out/gpu}
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1
cd "$root"
echo "== host"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; gcc --version | head -1
torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)'
export LD_LIBRARY_PATH="$root/.deps/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
echo "== configure"
t0=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DDFCL_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCMAKE_PREFIX_PATH="$root/.deps;$torch_prefix" -DDFCL_CCACHE=OFF 2>&1 | grep -E "dfcl|Error|error|warning" | head -40
echo "== build"
cmake --build build-gpu -j 16 2>&1 | grep -E "error|FAILED|warning: " | head -40
echo "build: $(( $(date +%s) - t0 ))s, rc=${PIPESTATUS[0]}"
echo "== dfcl info"
./build-gpu/src/cli/dfcl info
echo "== ctest"
ctest --test-dir build-gpu -j 8 --output-on-failure 2>&1 | tail -25
echo "== GPU kernels vs CPU path (timing printed by the test)"
./build-gpu/tests/dfcl_test_cuda 2>&1 | grep -E "row_hull|OK|FAILED|SKIPPED" | head
echo "== solver on one core of this host"
./build-gpu/bench/dfcl_bench_solver --benchmark_filter='DualPath|Bisection' 2>/dev/null | grep -E "^BM_" || true
echo "== data benchmarks (CPU side of this host)"
./build-gpu/bench/dfcl_bench_data --benchmark_filter=InMemory --benchmark_format=json > "$out/bench_data_gpu_host.json" 2>/dev/null
python3 - "$out/bench_data_gpu_host.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for b in d["benchmarks"]:
    print(f'{b["name"]}: {b["items_per_second"]/1e6:.2f}M rows/s')
PY
echo "== done in $(( $(date +%s) - t0 ))s"
