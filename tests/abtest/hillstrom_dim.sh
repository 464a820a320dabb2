#!/usr/bin/env bash
# \brief `dfcl abtest` on Hillstrom: DIM equals the difference of the arm means that awk computes from the CSV itself,
# to 1e-9, for spend, visit and conversion, Mens and Womens E-Mail against No E-Mail (and the JSON's arm means match).
# Usage: hillstrom_dim.sh DFCL HILLSTROM_CSV WORKDIR. Exit 77 (ctest: skipped) when the CSV is not there.
set -euo pipefail
dfcl=$1 csv=$2 work=$3
[[ -f $csv ]] || { echo "skipped: $csv not found"; exit 77; }
mkdir -p "$work"

# Arm means straight from the file: columns found by name; commas inside quoted fields ("6) $750 - $1,000") are
# replaced before splitting (plain POSIX awk: the pieces between quotes at even positions are inside quotes).
arm_means() {  # ARM METRIC -> "mean_arm mean_no_email"
  awk -v arm="$1" -v col="$2" '
    {
      sub(/\r$/, "")
      if (index($0, "\"")) {
        k = split($0, part, "\"")
        line = part[1]
        for (i = 2; i <= k; i++) { if (i % 2 == 0) gsub(/,/, ";", part[i]); line = line "\"" part[i] }
        $0 = line
      }
      n = split($0, f, ",")
    }
    NR == 1 { for (i = 1; i <= n; i++) h[f[i]] = i; next }
    f[h["segment"]] == arm { st += f[h[col]]; nt++ }
    f[h["segment"]] == "No E-Mail" { sc += f[h[col]]; nc++ }
    END { printf "%.17g %.17g\n", st / nt, sc / nc }' "$csv"
}
json_values() {  # FILE KEY -> every value of "KEY" in the JSON, one a line
  grep -o "\"$2\": [-0-9.eE+]*" "$1" | sed 's/.*: //'
}
close() {  # A B -> success when |A - B| <= 1e-9
  awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-9) }'
}

checked=0
for arm in "Mens E-Mail" "Womens E-Mail"; do
  for metric in spend visit conversion; do
    out="$work/dim_${arm%% *}_$metric.json"
    "$dfcl" -q abtest --set "abtest.data=$csv" --set abtest.arm_column=segment --set "abtest.control=No E-Mail" \
      --set "abtest.treatments=[$arm]" --set "abtest.metrics=[$metric]" --set "abtest.methods=[dim]" --json "$out"
    read -r mt mc < <(arm_means "$arm" "$metric")
    want=$(awk -v a="$mt" -v b="$mc" 'BEGIN { printf "%.17g", a - b }')
    effects=$(json_values "$out" effect)
    [[ $(grep -c . <<<"$effects") == 1 ]] || { echo "FAIL: expected one \"effect\" (DIM only) in $out"; exit 1; }
    echo "$arm vs No E-Mail, $metric: DIM $effects; arm means (awk) $mt - $mc = $want"
    close "$effects" "$want" || { echo "FAIL: DIM $effects != $want"; exit 1; }
    # The arm means the JSON reports (the command's and the estimator's details) match too.
    [[ $(json_values "$out" mean_treatment | grep -c .) -ge 1 ]] || { echo "FAIL: no mean_treatment in $out"; exit 1; }
    for v in $(json_values "$out" mean_treatment); do close "$v" "$mt" || { echo "FAIL: mean_treatment $v != $mt"; exit 1; }; done
    for v in $(json_values "$out" mean_control); do close "$v" "$mc" || { echo "FAIL: mean_control $v != $mc"; exit 1; }; done
    if [[ $arm == "Mens E-Mail" && $metric == spend ]]; then  # the issue's anchor: 1.4226 - 0.6528
      [[ $(printf '%.4f %.4f' "$mt" "$mc") == "1.4226 0.6528" ]] || { echo "FAIL: spend means $mt, $mc"; exit 1; }
    fi
    checked=$((checked + 1))
  done
done
echo "OK: DIM equals the difference of the arm means in $checked of 6 comparisons"
