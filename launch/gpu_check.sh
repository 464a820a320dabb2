#!/usr/bin/env bash
# \brief One-shot check on a lent GPU host (CUDA + PyTorch's LibTorch, no network, maybe no MPI/HDF5), under 8 minutes
# on 16 cores: build the full CUDA mode against the host's LibTorch, then every GPU check issue 16 names, each in its
# own section of the log:
#   1. the kernels against the CPU path (dfcl_test_cuda: solver hulls/policies, the fused loss kernels in float64 to
#      1e-12 and float32 to 1e-5, λ*'s K-section pass and search, the CG vector kernels), then the rest of ctest;
#   2. `dfcl train --set train.device=cuda` on the default synthetic data (in memory) against the CPU: 3 seeds each,
#      mean validation regret, PASS when the CUDA mean lies within 2 standard deviations of the CPU seeds;
#   3. NCCL at runtime, when this host has mpirun and the nccl communicator was built: 1 rank, then 2 ranks on one GPU
#      (NCCL's own message is printed if it refuses a duplicate device);
#   4. benchmarks: the loss kernels' bandwidth and λ* on 10M x 5 against one CPU core (dfcl_bench_cuda_kernels), and
#      training samples/s against PyTorch on the same GPU (dfcl_bench_train with DFCL_BENCH_DEVICE=cuda against
#      bench/peer_train.py --device cuda), criteo preset, batch 4096 and 65536.
# Needs .deps/ from launch/bundle_deps.sh (carried with the working tree). Writes logs and results to ${OUT:-out/gpu}.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${OUT:-$root/out/gpu}
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1
cd "$root"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
echo "== host"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; gcc --version | head -1
torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)'
export LD_LIBRARY_PATH="$root/.deps/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
stamp "== configure"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DDFCL_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DDFCL_BENCH=ON -DCMAKE_PREFIX_PATH="$root/.deps;$torch_prefix" -DDFCL_CCACHE=OFF 2>&1 |
  grep -E "dfcl|Error|error|warning" | head -40
stamp "== build"
cmake --build build-gpu -j 16 2>&1 | grep -E "error|FAILED|warning: " | head -40
stamp "build rc=${PIPESTATUS[0]}"
dfcl=./build-gpu/src/cli/dfcl
echo "== dfcl info"
$dfcl info

stamp "== 1. GPU kernels vs CPU path"
./build-gpu/tests/dfcl_test_cuda 2>&1 | tee "$out/test_cuda.log" | grep -vE "^\[ +(RUN|OK) " | tail -40
stamp "== 1b. ctest (the rest, on this host)"
ctest --test-dir build-gpu -j 8 --timeout 120 --output-on-failure -E '^dfcl_test_cuda$' 2>&1 | tail -25

stamp "== 2. train.device=cuda vs cpu (default synthetic data, in memory, 3 seeds each)"
sed 's|^  data: out/synthetic.h5.*|  generate: true|' configs/train.yaml > "$out/train_mem.yaml"
for seed in 0 1 2; do
  for dev in cpu cuda; do
    threads=4; [ $dev = cuda ] && threads=2
    $dfcl -q train -c "$out/train_mem.yaml" --set train.seed=$seed --set train.device=$dev \
      --set runtime.threads=$threads --set train.output="$out/train_${dev}_$seed" > "$out/train_${dev}_$seed.log" 2>&1 &
  done
  wait
done
python3 - "$out" <<'PY'
import json, statistics, sys, os
out = sys.argv[1]
def regret(dev, seed):
    path = os.path.join(out, f"train_{dev}_{seed}", "metrics.jsonl")
    if not os.path.exists(path):
        return None
    rows = [json.loads(l) for l in open(path) if l.strip()]
    best = [r for r in rows if r.get("best")] or rows
    v = best[-1]["validation"]["eom"]
    return sum(e["regret"] for e in v) / len(v)
res = {d: [regret(d, s) for s in range(3)] for d in ("cpu", "cuda")}
print(json.dumps(res))
cpu = [x for x in res["cpu"] if x is not None]; gpu = [x for x in res["cuda"] if x is not None]
if len(cpu) < 2 or not gpu:
    print("train.device=cuda: FAILED to produce metrics (see train_*.log)")
else:
    m, sd, g = statistics.mean(cpu), statistics.stdev(cpu), statistics.mean(gpu)
    ok = abs(g - m) <= 2 * sd
    print(f"validation regret: cpu {m:.4f} +- {sd:.4f} (sd, 3 seeds), cuda {g:.4f}: {'PASS' if ok else 'FAIL'}")
PY
grep -h '"samples_per_s"' "$out"/train_cuda_0.log "$out"/train_cpu_0.log 2>/dev/null | head -2

stamp "== 3. NCCL at runtime"
if command -v mpirun >/dev/null 2>&1; then  # a dfcl built without NCCL says so in its error
  common=(-q train -c "$out/train_mem.yaml" --set train.device=cuda --set dist.backend=nccl --set train.epochs=2)
  timeout 120 mpirun --allow-run-as-root -n 1 $dfcl "${common[@]}" --set train.output="$out/nccl_1" 2>&1 | tail -5
  timeout 120 mpirun --allow-run-as-root --oversubscribe -n 2 $dfcl "${common[@]}" --set train.output="$out/nccl_2" 2>&1 |
    tail -15
  python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
for run in ("nccl_1", "nccl_2"):  # the global batch is fixed: 2 ranks should track 1 rank's losses closely
    path = os.path.join(out, run, "metrics.jsonl")
    rows = [json.loads(l) for l in open(path)] if os.path.exists(path) else []
    print(run, [round(r.get("train_loss", float("nan")), 6) for r in rows] or "no metrics")
PY
else
  echo "NCCL runtime checks SKIPPED: no mpirun on this host (the nccl communicator starts over MPI)"
fi

stamp "== 4a. kernel bandwidth and λ* on 10M x 5 (GPU vs one CPU core)"
./build-gpu/bench/dfcl_bench_cuda_kernels --rows 4194304 | tee "$out/bench_kernels_4m.json"
./build-gpu/bench/dfcl_bench_cuda_kernels --rows 10000000 | tee "$out/bench_kernels_10m.json"
stamp "== 4b. training samples/s on the GPU: dfcl vs PyTorch (criteo preset, 5 arms)"
DFCL_BENCH_DEVICE=cuda ./build-gpu/bench/dfcl_bench_train --benchmark_filter='BM_Train(Fused|Autograd)' \
  --benchmark_min_time=1 --benchmark_format=json > "$out/bench_train_gpu.json" 2>"$out/bench_train_gpu.err"
python3 bench/peer_train.py --device cuda --repetitions 1 --min-time 1 > "$out/peer_train_gpu.json"
python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
try:
    d = json.load(open(os.path.join(out, "bench_train_gpu.json")))
    p = json.load(open(os.path.join(out, "peer_train_gpu.json")))
except Exception as e:
    print("training benchmark: no result:", e); sys.exit(0)
for b in d["benchmarks"]:
    name = b["name"]
    f, batch = name.split("/")[1].split(":")[1], name.split("/")[2].split(":")[1]
    peer = p["cases"].get(f"features:{f}/batch:{batch}", [0])[0]
    ours = b["items_per_second"]
    print(f"{name}: {ours/1e6:.2f}M samples/s, torch {p['torch']} {peer/1e6:.2f}M, ratio {ours/max(peer,1):.2f}x")
PY
stamp "== done"
