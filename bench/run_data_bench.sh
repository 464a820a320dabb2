#!/usr/bin/env bash
# \brief Data-layer benchmarks and their peer (numpy + h5py) in one run; prints the table for docs/benchmarks.md.
# Usage: bench/run_data_bench.sh [BUILD_DIR]   (default build/). Writes BUILD_DIR/bench_data.json.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
py=/usr/bin/python3   # Debian's python3 with python3-h5py
export DFCL_BENCH_DIR=${DFCL_BENCH_DIR:-/tmp}
"$build/bench/dfcl_bench_data" --benchmark_format=json --benchmark_repetitions=1 > "$build/bench_data.json"
# The last writer run is deflate 4; rewrite deflate 1 for the read comparison (the dfcl default).
"$build/src/cli/dfcl" -q generate --set generate.rct_rows=209715 --set generate.observational_rows=838861 \
  --set generate.output="$DFCL_BENCH_DIR/dfcl_bench.h5" --set io.deflate_level=1 > /dev/null
"$build/bench/dfcl_bench_data" --benchmark_filter='ReadChunks|LoaderEpoch' --benchmark_format=json > "$build/bench_read.json"
peer=$("$py" "$root/bench/peer_h5py.py" "$DFCL_BENCH_DIR/dfcl_bench.h5" --deflate 1)
"$py" - "$build/bench_data.json" "$build/bench_read.json" "$peer" <<'PY'
import json, sys, platform, os
w = {b["name"]: b["items_per_second"] for b in json.load(open(sys.argv[1]))["benchmarks"]}
r = {b["name"]: b["items_per_second"] for b in json.load(open(sys.argv[2]))["benchmarks"]}
p = json.loads(sys.argv[3])
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
print(f"machine: {cpu[0]} x {len(cpu)} threads, {platform.platform()}; peer: numpy {p['numpy']}, h5py {p['h5py']}")
M = 1e6
def row(name, v, peer=None):
    ratio = f"{v / peer:.2f}x" if peer else ""
    print(f"| {name} | {v / M:.2f} | {peer / M if peer else '':{'.2f' if peer else ''}} | {ratio} |")
print("| benchmark (1,048,576 rows x 32 features x 5 arms) | dfcl M rows/s | peer M rows/s | dfcl / peer |")
print("|---|---|---|---|")
row("generate in memory, 1 thread", w["BM_GenerateInMemory/threads:1/real_time"])
row("generate in memory, 2 threads", w["BM_GenerateInMemory/threads:2/real_time"])
row("generate + write HDF5, deflate 0", w["BM_GenerateToHdf5/deflate:0/real_time"])
row("generate + write HDF5, deflate 1 (default)", w["BM_GenerateToHdf5/deflate:1/real_time"], p["write_rows_per_s"])
row("generate + write HDF5, deflate 4", w["BM_GenerateToHdf5/deflate:4/real_time"])
row("read every chunk (deflate 1 file)", r["BM_ReadChunks/real_time"], p["read_rows_per_s"])
row("loader epoch, no shuffle buffer", r["BM_LoaderEpoch/shuffle_buffer:0/real_time"])
row("loader epoch, 65,536-row shuffle buffer", r["BM_LoaderEpoch/shuffle_buffer:65536/real_time"])
PY
