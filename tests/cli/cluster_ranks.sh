#!/usr/bin/env bash
# \brief dfcl cluster on 2 MPI ranks equals 1 rank: the same K chosen, the same validation metric per K, the same
# cluster sizes and the same S2 plans over the budget grid (K-means sums and group statistics are reduced across
# ranks; each rank clusters half the training rows). The representation is a fixed checkpoint; no distillation (its
# batches differ with the world size by design).
#   cluster_ranks.sh DFCL MPIEXEC REPRESENTATION.ckpt WORKDIR
set -euo pipefail
dfcl=$1 mpiexec=$2 rep=$3 work=$4
mkdir -p "$work"
args=(cluster --set train.generate=true --set generate.rct_rows=6000 --set generate.observational_rows=0
  --set "cluster.representation=$rep" --set cluster.k=[4,8,16] --set cluster.distill.epochs=0
  --set cluster.serve=teacher --set cluster.budget_points=5 --set runtime.threads=1)
"$dfcl" -q "${args[@]}" --set "train.output=$work/one" --json "$work/one.json"
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$mpiexec" -n 2 --oversubscribe --bind-to none \
  "$dfcl" -q "${args[@]}" --set "train.output=$work/two" --json "$work/two.json"
/usr/bin/python3 - "$work/one.json" "$work/two.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert b["world_size"] == 2 and a["world_size"] == 1, (a["world_size"], b["world_size"])
assert a["k"] == b["k"], ("K", a["k"], b["k"])
for x, y in zip(a["sweep"], b["sweep"]):
    for key in ("dr_eom", "eom_mean"):  # the selection metric (DR) and the IPW EOM per K
        assert x["k"] == y["k"] and abs(x[key] - y[key]) <= 1e-9 * max(1, abs(x[key])), (key, x, y)
    assert abs(x["inertia"] - y["inertia"]) <= 1e-9 * x["inertia"], (x["inertia"], y["inertia"])
assert a["cluster_sizes"] == b["cluster_sizes"], "cluster sizes differ"
for x, y in zip(a["budgets"], b["budgets"]):
    assert x["s2"]["arm"] == y["s2"]["arm"], ("S2 plan", x["budget"])
    assert abs(x["s2"]["revenue"] - y["s2"]["revenue"]) <= 1e-9 * max(1, abs(x["s2"]["revenue"]))
print(f"cluster 1 rank = 2 ranks: K = {a['k']}, {len(a['sweep'])} K values, {len(a['budgets'])} budgets")
PY
