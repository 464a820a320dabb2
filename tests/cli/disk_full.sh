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
[ $status -eq 0 ] && echo "disk_full: exit 1, clear error, nothing left behind"
exit $status
