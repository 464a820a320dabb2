#!/usr/bin/env bash
# \brief Files that are wrong in ways HDF5 would hide (issue 14, item 6), each a clear error from `dfcl info` naming the
# file and the dataset or attribute: a float treatment dataset (3.5 would be truncated to arm 3), attributes that
# disagree with the rows (rct_arm_rows, rct_rows), and strings in revenue (not "corrupt or truncated").
# Usage: bad_h5.sh DFCL WORKDIR. Needs Debian's python3 with h5py and numpy.
set -uo pipefail
dfcl=$1 work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
/usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null || { echo "skipped: /usr/bin/python3 lacks h5py or numpy"; exit 77; }
"$dfcl" -q generate --set generate.rct_rows=500 --set generate.observational_rows=0 --set generate.arms=3 \
  --set generate.features=4 --set generate.output=good.h5 > /dev/null || exit 1
"$dfcl" -q info good.h5 > /dev/null || { echo "FAIL: the good file"; exit 1; }
/usr/bin/python3 - <<'PY' || exit 1
import shutil, h5py, numpy as np
def variant(name, edit):
    shutil.copy("good.h5", name)
    with h5py.File(name, "r+") as f:
        edit(f)
def float_treatment(f):
    t = f["treatment"][:].astype(np.float32); t[7] = 3.5
    del f["treatment"]; f.create_dataset("treatment", data=t)
def arm_rows(f):
    a = f.attrs["rct_arm_rows"].copy(); a[0] += 5; a[1] -= 5
    f.attrs["rct_arm_rows"] = a
def rct_rows(f):
    f.attrs["rct_rows"] = np.int64(f.attrs["rct_rows"] + 10)
def string_revenue(f):
    r = np.array([b"%.3f" % v for v in f["revenue"][:]], dtype="S16")
    del f["revenue"]; f.create_dataset("revenue", data=r)
variant("float_treatment.h5", float_treatment)
variant("arm_rows.h5", arm_rows)
variant("rct_rows.h5", rct_rows)
variant("string_revenue.h5", string_revenue)
def empty(f):
    for k in list(f.keys()):
        d = f[k]; shape = (0,) + d.shape[1:]; dt = d.dtype
        del f[k]; f.create_dataset(k, shape=shape, dtype=dt, maxshape=(None,) + shape[1:], chunks=(64,) + shape[1:])
    f.attrs["rct_rows"] = np.int64(0); f.attrs["rct_arm_rows"] = np.zeros(3, dtype=np.int64)
variant("empty.h5", empty)
def zero_attr(f):  # the attributes say "no trial", the source column has 500 trial rows
    f.attrs["rct_rows"] = np.int64(0); f.attrs["observational_rows"] = np.int64(500); del f.attrs["rct_arm_rows"]
variant("zero_attr.h5", zero_attr)
PY
status=0
expect() {  # FILE PATTERN...
  local file=$1; shift
  "$dfcl" -q info "$file" > /dev/null 2> err.txt && { echo "FAIL: $file was accepted"; status=1; return; }
  for p in "$@"; do grep -q -- "$p" err.txt || { echo "FAIL: $file: message lacks '$p':"; cat err.txt; status=1; }; done
}
expect float_treatment.h5 "float_treatment.h5: dataset 'treatment' stores floating-point numbers, not integers"
expect arm_rows.h5 "arm_rows.h5: attribute 'rct_arm_rows'" "but the trial rows per arm are"
expect rct_rows.h5 "rct_rows.h5: attributes 'rct_rows'" "trial and 0 observational rows"
expect string_revenue.h5 "string_revenue.h5: dataset 'revenue' stores strings, not numbers"
# A file with no rows is a valid (empty) dataset, but nothing to allocate (issue 14, item 9).
"$dfcl" -q info empty.h5 > /dev/null || { echo "FAIL: an empty file is a valid dataset"; status=1; }
"$dfcl" -q allocate --set allocate.scores=oracle --set allocate.data=empty.h5 --set allocate.budgets_per_capita=[0.5] \
  > /dev/null 2> err.txt && { echo "FAIL: allocated 0 users"; status=1; }
grep -q "empty.h5: 0 rows, so no users to allocate" err.txt || { echo "FAIL: 0 rows:"; cat err.txt; status=1; }
expect zero_attr.h5 "zero_attr.h5: attributes 'rct_rows' = 0 and 'observational_rows' = 500, but the 'source' column has 500 trial"
# The commands decide from the rows, not the attributes: allocate calibrates on the 500 trial rows the attribute hides
# (it fell back to predicted spend).
"$dfcl" -q allocate --set allocate.scores=oracle --set allocate.data=zero_attr.h5 --set allocate.budgets_per_capita=[0.3] \
  --set allocate.output=z.csv > out.json 2> err.txt || { echo "FAIL: allocate on zero_attr.h5:"; cat err.txt; status=1; }
grep -q '"budget_calibration": "trial"' out.json || { echo "FAIL: allocate ignored the trial rows of zero_attr.h5"; status=1; }
[ $status -eq 0 ] && echo "bad_h5: every file refused with its dataset or attribute named"
exit $status
