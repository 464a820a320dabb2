#!/usr/bin/env bash
# \brief Fuzz dfcl's readers with libFuzzer (docs/reliability.md): CSV import, the YAML config with --set, the HDF5
# dataset reader, the checkpoint reader and the scores file reader.
#
# Usage: launch/fuzz.sh TARGET|all [SECONDS per target, default 600]
#   TARGET: config, checkpoint, csv_import, h5_dataset, score_file
# Builds build-fuzz (clang, ASan + UBSan + libFuzzer) on first use. Seeds come from tests/fuzz/corpus/<target>; the
# inputs libFuzzer finds go to build-fuzz/corpus/<target> (copy the interesting ones into tests/fuzz/corpus/ so CI
# replays them), crashes and leaks to build-fuzz/findings/<target>/. Prints the executions per target.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DFCL_FUZZ_BUILD:-$root/build-fuzz}
targets=(config checkpoint csv_import h5_dataset score_file)
want=${1:?usage: launch/fuzz.sh TARGET|all [SECONDS]}
secs=${2:-600}
[ "$want" = all ] || targets=("$want")
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found: apt-get install clang (libFuzzer ships with it)"; exit 2; }
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DDFCL_SANITIZE=address,undefined,fuzzer-no-link \
    -DDFCL_FUZZ=ON -DDFCL_BENCH=OFF -DDFCL_MPI=OFF >/dev/null
fi
cmake --build "$build" -j "${DFCL_JOBS:-2}" --target $(printf 'fuzz_%s ' "${targets[@]}")
export OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=print_stacktrace=1
status=0
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t" "$build/findings/$t"
  log="$build/findings/$t/fuzz.log"
  set +e
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -print_final_stats=1 \
    -artifact_prefix="$build/findings/$t/" "$build/corpus/$t" "$root/tests/fuzz/corpus/$t" > "$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "fuzz.sh: $t: exit $rc, ${execs:-?} executions in ${secs}s, $cov, corpus $(ls "$build/corpus/$t" | wc -l) inputs"
  [ $rc -eq 0 ] || { status=1; echo "fuzz.sh: $t: FINDING, see $log and $build/findings/$t/"; grep -m5 -E 'ERROR|finding|SUMMARY' "$log" || true; }
done
exit $status
