#!/usr/bin/env bash
# \brief Solver benchmarks on one core against its peers (bisection; GLPK's LP simplex), printed as the table in
# docs/benchmarks.md. GLPK at 100k users takes ~30 minutes here: it runs only with DFCL_BENCH_GLPK_100K=1.
# Usage: bench/run_solver_bench.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
filter='DualPath|Bisection|GlpkLp/10000/'
[ "${DFCL_BENCH_GLPK_100K:-0}" = 1 ] && filter='.'
"$build/bench/dfcl_bench_solver" --benchmark_filter="$filter" --benchmark_format=json > "$build/bench_solver.json"
/usr/bin/python3 - "$build/bench_solver.json" <<'PY'
import json, sys
d = {b["name"].split("/iterations")[0]: b for b in json.load(open(sys.argv[1]))["benchmarks"]}
t = lambda k: d[k]["real_time"] / 1e3 if k in d else None
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
print(f"machine: {cpu[0]}, one core (threads = 1)")
print("| users x 5 arms | dual path, one budget (s) | dual path, whole curve (s) | bisection (s) | bisection / dual | GLPK LP (s) | GLPK / dual |")
print("|---|---|---|---|---|---|---|")
for n in (10000, 100000, 10000000):
    one, curve, bis, glpk = t(f"BM_DualPathOneBudget/{n}"), t(f"BM_DualPathWholeCurve/{n}"), t(f"BM_Bisection/{n}"), t(f"BM_GlpkLp/{n}")
    f = lambda v: f"{v:.4g}" if v is not None else "-"
    r = lambda a, b: f"{a / b:,.0f}x" if a is not None and b else "-"
    print(f"| {n:,} | {f(one)} | {f(curve)} | {f(bis)} | {r(bis, one)} | {f(glpk)} | {r(glpk, one)} |")
m = d.get("BM_DualPathOneBudget/10000000")
if m: print(f"peak RSS / input size at 10M users: {m['peak_rss_over_input']:.2f} (input: r_hat and c_hat, 400 MB)")
PY
