#!/usr/bin/env bash
# \brief Training throughput of TSM-SL (samples/s): dfcl's fused path and autograd path against the PyTorch peer
# (bench/peer_train.py, Debian's python3-torch: the same LibTorch), in one run; prints the table in docs/benchmarks.md.
# The two alternate, one repetition each, so that load from other processes hits both alike; the table gives the
# median over the repetitions and the ratio of medians.
# Usage: bench/run_train_bench.sh [BUILD_DIR]   (default build/). Env: DFCL_BENCH_THREADS (2), DFCL_BENCH_REPS (3).
# Writes BUILD_DIR/bench_train_<rep>.json and BUILD_DIR/peer_train_<rep>.json.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
py=/usr/bin/python3  # Debian's python; a `python3` first on PATH may lack torch
threads=${DFCL_BENCH_THREADS:-2}
reps=${DFCL_BENCH_REPS:-3}

if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "installing python3-torch (the peer) ..." >&2
  apt-get install -y --no-install-recommends python3-torch >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends python3-torch >&2; }
fi
[ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -G Ninja -DDFCL_BENCH=ON >&2
cmake --build "$build" --target dfcl_bench_train >&2

for r in $(seq 1 "$reps"); do
  echo "repetition $r/$reps ..." >&2
  DFCL_BENCH_THREADS=$threads "$build/bench/dfcl_bench_train" --benchmark_format=json \
    > "$build/bench_train_$r.json"
  "$py" "$root/bench/peer_train.py" --threads "$threads" --repetitions 1 > "$build/peer_train_$r.json"
done

"$py" - "$build" "$reps" <<'PY'
import json, platform, statistics, sys
build, reps = sys.argv[1], int(sys.argv[2])
ours, peer, ctx = {}, {}, {}
for r in range(1, reps + 1):
    d = json.load(open(f"{build}/bench_train_{r}.json"))
    ctx = d["context"]
    for b in d["benchmarks"]:
        kind, case = b["name"].split("/", 1)
        case = case.split("/min_time")[0]
        ours.setdefault((kind, case), []).append(b["items_per_second"])
    p = json.load(open(f"{build}/peer_train_{r}.json"))
    for case, v in p["cases"].items():
        peer.setdefault(case, []).extend(v)
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
print(f"machine: {cpu[0]} x {len(cpu)} vCPU, {platform.platform()}; threads = {ctx.get('threads')}; "
      f"libtorch {ctx.get('libtorch')}, peer torch {p['torch']}; median of {reps} alternating repetitions")
print("| case (criteo preset: F -> 64-32-32 -> 10, M = 5) | dfcl fused (samples/s) | dfcl autograd (samples/s) "
      "| PyTorch peer (samples/s) | fused / peer | autograd / peer |")
print("|---|---|---|---|---|---|")
med = statistics.median
def k(v):
    return f"{med(v) / 1e3:,.0f}k" if v else "-"
def span(v):
    return f" ({min(v) / 1e3:,.0f}-{max(v) / 1e3:,.0f}k)" if len(v) > 1 else ""
for f in (12, 32):
    for b in (4096, 65536):
        case = f"features:{f}/batch:{b}"
        fu, ag, pe = ours.get(("BM_TrainFused", case), []), ours.get(("BM_TrainAutograd", case), []), peer.get(case, [])
        r = lambda a: f"{med(a) / med(pe):.2f}x" if a and pe else "-"
        print(f"| {f} features, batch {b:,} | {k(fu)}{span(fu)} | {k(ag)}{span(ag)} | {k(pe)}{span(pe)} "
              f"| {r(fu)} | {r(ag)} |")
PY
