#!/usr/bin/env bash
# \brief Disk full while writing: `dfcl generate` into a full file system (an 8 MiB tmpfs) exits 1 with the clear
# error, leaves no .partial and no output behind, and does not crash in HDF5's shutdown at exit (issue 14, item 3).
# Usage: disk_full.sh DFCL WORKDIR. Needs root (to mount the tmpfs); skipped (77) otherwise.
set -uo pipefail
dfcl=$1 work=$2
mkdir -p "$work"
mnt=$(mktemp -d "$work/full.XXXXXX")
mount -t tmpfs -o size=8m tmpfs "$mnt" 2>/dev/null || { echo "skipped: cannot mount a tmpfs here (needs root)"; rmdir "$mnt"; exit 77; }
trap 'umount "$mnt"; rmdir "$mnt"' EXIT
status=0
for rows in 100000 1000000; do  # the write fails in a chunk, or later, as the file is flushed and closed
  "$dfcl" -q generate --set generate.rct_rows=$rows --set generate.observational_rows=0 \
    --set generate.output="$mnt/x.h5" > /dev/null 2> "$work/err.txt"
  rc=$?
  if [ $rc -ne 1 ]; then echo "FAIL: $rows rows: exit code $rc (want 1: an I/O error, not a crash)"; status=1; fi
  grep -q "No space left on device" "$work/err.txt" || { echo "FAIL: $rows rows: no disk-full message"; cat "$work/err.txt"; status=1; }
  if [ -n "$(ls -A "$mnt")" ]; then echo "FAIL: $rows rows: left $(ls "$mnt")"; status=1; rm -f "$mnt"/*; fi
done
# Every other output goes through .partial and a rename too (issue 14, item 8): an allocation CSV, and --json, on a
# nearly full disk fail with the error and leave no file cut mid-row.
"$dfcl" -q generate --set generate.rct_rows=200000 --set generate.observational_rows=0 \
  --set generate.output="$work/users.h5" > /dev/null || { echo "FAIL: generate"; exit 1; }
head -c 7900000 /dev/zero > "$mnt/fill"
"$dfcl" -q allocate --set allocate.scores=oracle --set allocate.data="$work/users.h5" \
  --set allocate.budgets_per_capita=[0.5] --set allocate.output="$mnt/a.csv" > /dev/null 2> "$work/err.txt"
rc=$?
[ $rc -eq 1 ] || { echo "FAIL: allocate CSV on a full disk: exit code $rc"; status=1; }
grep -q "allocate.output) failed: No space left on device" "$work/err.txt" || { cat "$work/err.txt"; status=1; }
[ "$(ls "$mnt")" = fill ] || { echo "FAIL: allocate left $(ls "$mnt")"; status=1; }
cat /dev/zero >> "$mnt/fill" 2>/dev/null  # until the disk is full
"$dfcl" -q generate --set generate.rct_rows=1000 --set generate.observational_rows=0 --json "$mnt/r.json" \
  > /dev/null 2> "$work/err.txt"
rc=$?
[ $rc -eq 1 ] || { echo "FAIL: --json on a full disk: exit code $rc"; status=1; }
[ "$(ls "$mnt")" = fill ] || { echo "FAIL: --json left $(ls "$mnt")"; status=1; }
[ $status -eq 0 ] && echo "disk_full: exit 1, clear error, nothing left behind"
exit $status
