#!/usr/bin/env bash
# \brief Runs one fault-injection job (tests/dist/fault_driver.cpp) and checks that it fails, fast, and says why.
# usage: fault_run.sh MAX_SECONDS REGEX... -- COMMAND...
# Passes when COMMAND exits non-zero within MAX_SECONDS and its output (stdout + stderr) matches every REGEX
# (grep -E). Prints the output, then the exit code and the measured time. A hung job is killed at MAX_SECONDS + 30.
set -u
max=$1
shift
regexes=()
while [[ $# -gt 0 && $1 != "--" ]]; do
  regexes+=("$1")
  shift
done
shift
start=$(date +%s.%N)
out=$(timeout --kill-after=5 $((max + 30)) "$@" 2>&1)
rc=$?
end=$(date +%s.%N)
elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
printf '%s\n' "$out"
echo "---- fault test: exit code $rc after $elapsed s (limit $max s)"
fail=0
if [[ $rc -eq 0 ]]; then
  echo "FAIL: the job exited 0; it should have failed"
  fail=1
fi
if awk -v e="$elapsed" -v m="$max" 'BEGIN { exit !(e > m) }'; then
  echo "FAIL: the job took $elapsed s, more than $max s"
  fail=1
fi
for re in "${regexes[@]}"; do
  if ! grep -Eq -- "$re" <<<"$out"; then
    echo "FAIL: the output does not match /$re/"
    fail=1
  fi
done
[[ $fail -eq 0 ]] && echo "PASS"
exit $fail
