#!/usr/bin/env bash
# \brief Build dfcl with sanitizers and run its tests under them (docs/reliability.md).
#
# Usage: launch/sanitize.sh address|thread [all|ci]
#   address  ASan + UBSan (build-asan): every finding fails its test (halt_on_error, no UBSan recovery)
#   thread   TSan (build-tsan): the threaded parts (named below): the loader's prefetch thread, the checkpoint writer
#            thread, the reducer, thread ranks, async collectives and the watchdog; all and ci are the same
#   all      (default) every ctest entry of that build, 2-rank tests included (ASan: ~30 min to build on 2 cores)
#   ci       the subset .ci/run runs (named below), to stay inside CI's time
# Dependencies (torch, MPI, HDF5) are not instrumented; tests/sanitizers/*.supp lists what is suppressed in them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kind=${1:?usage: launch/sanitize.sh address|thread [all|ci]}
scope=${2:-all}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
supp=$root/tests/sanitizers
case $kind in
  address)
    build=$root/build-asan flags=address,undefined
    # detect_odr_violation=0: torch and its dependencies define some symbols twice across their own libraries.
    # fast_unwind_on_malloc=0: full allocation stacks through the uninstrumented libraries (no frame pointers there),
    # so a leak suppressed by library name is matched; Open MPI keeps its plugins loaded to the end for the same reason
    # (after dlclose their frames are "<unknown module>").
    export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:detect_odr_violation=0:fast_unwind_on_malloc=0
    export OMPI_MCA_mca_base_component_disable_dlclose=1
    export LSAN_OPTIONS=suppressions=$supp/lsan.supp:print_suppressions=0
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    # Named subset for CI: the readers, the loader and its prefetch thread, training and checkpoints, the
    # communicators at 1 and 2 ranks, 2-rank training, the decision layer and its estimators, and the fuzz corpora.
    ci_targets=(dfcl dfcl_test_core dfcl_test_data dfcl_test_train dfcl_test_comm dfcl_test_dist_train dfcl_test_decide
                fuzz_config fuzz_checkpoint fuzz_csv_import fuzz_h5_dataset fuzz_score_file)
    ci_regex='^(dfcl_test_(core|data|train|comm|dist_train|decide)|fuzz_replay_.*|cli_.*)$'
    ;;
  thread)
    build=$root/build-tsan flags=thread
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
    # The threaded parts, in every scope: the loader and its prefetch thread (data), the trainer's checkpoint writer
    # thread (train), the reducer (dist), in-process thread ranks (metrics_dist), async MPI collectives (comm), and
    # the watchdog thread that ends a stalled job (dist_fault_stalled_rank).
    ci_targets=(dfcl_test_data dfcl_test_train dfcl_test_dist dfcl_test_metrics_dist dfcl_test_comm dfcl_fault_driver)
    ci_regex='^(dfcl_test_(data|train|dist|metrics_dist|comm)|dist_fault_stalled_rank)$'
    scope=ci
    ;;
  *) echo "sanitize.sh: unknown kind '$kind': address or thread"; exit 2 ;;
esac
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DDFCL_SANITIZE=$flags -DDFCL_BENCH=OFF >/dev/null
fi
start=$(date +%s)
if [ "$scope" = ci ]; then
  cmake --build "$build" -j "${DFCL_JOBS:-2}" --target "${ci_targets[@]}"
else
  cmake --build "$build" -j "${DFCL_JOBS:-2}"
fi
echo "sanitize.sh: $kind build ready after $(( $(date +%s) - start ))s"
if [ "$scope" = ci ]; then
  ctest --test-dir "$build" --output-on-failure -j "${DFCL_JOBS:-2}" -R "$ci_regex"
else
  ctest --test-dir "$build" --output-on-failure -j "${DFCL_JOBS:-2}"
fi
echo "sanitize.sh: $kind $scope done after $(( $(date +%s) - start ))s"
