#!/usr/bin/env python3
# \brief statsmodels peer of bench/bench_abtest.cpp: MLRATE's regression and a t-likelihood / robust regression on the
# same y, t and cross-fitted g (the file bench_abtest --write wrote), timed in one process (one BLAS thread when the
# runner sets OMP_NUM_THREADS=1 / OPENBLAS_NUM_THREADS=1).
#   mlrate: OLS of y on [1, t, g, t (g - gbar)] with HC1 standard errors (cov_type="HC1"), as dfcl's MLRATE;
#   tlinear: statsmodels.miscmodels.tmodel.TLinearModel on [1, t, g]: the maximum-likelihood linear model with
#     Student-t errors, df and scale estimated (the same model as STATE), fitted by statsmodels' generic MLE: its
#     default optimiser (Nelder-Mead from OLS, df = 5) with maxiter raised to 5000 so that it converges, SEs from the
#     numerical Hessian. (Its BFGS with the default gtol stops ~0.15 SE short of the optimum, and Newton diverges
#     in df, on this data.) Its log-likelihood at the optimum is reported, to check against STATE's;
#   rlm_huber: RLM on [1, t, g] with sm.robust.norms.HuberT() (IRLS, MAD scale): RLM has no t norm, and Huber is the
#     closest convex M-estimator to the t score (TukeyBiweight redescends to zero weight, as t does only slowly).
# Each model runs on the first --rows-<model> rows (default: all) and its time is also scaled linearly to the file's n.
# Prints JSON: {"statsmodels": version, "n": file rows, "models": {name: {"rows", "seconds": [...], "median_s",
# "scaled_to_n_s", "effect", "se", ...}}}.
# Usage: /usr/bin/python3 bench/peer_abtest.py --data FILE [--reps 3] [--rows-mlrate N] [--rows-tlinear N]
#        [--rows-rlm N] [--models mlrate,tlinear,rlm_huber] [--json OUT]
import argparse
import json
import statistics
import sys
import time
import warnings

import numpy as np
import statsmodels
import statsmodels.api as sm
from statsmodels.miscmodels.tmodel import TLinearModel


def load(path):
    with open(path, "rb") as f:
        magic = f.read(8)
        if magic != b"DFCLABT1":
            sys.exit(f"peer_abtest: {path} is not a bench_abtest --write file (magic {magic!r})")
        n = int(np.frombuffer(f.read(8), dtype=np.int64)[0])
    cols = np.memmap(path, dtype=np.float64, mode="r", offset=16, shape=(3, n))
    return n, np.array(cols[0]), np.array(cols[1]), np.array(cols[2])


def fit_mlrate(y, t, g):
    x = np.column_stack([np.ones_like(y), t, g, t * (g - g.mean())])
    res = sm.OLS(y, x).fit(cov_type="HC1")
    return {"effect": float(res.params[1]), "se": float(res.bse[1])}


def fit_tlinear(y, t, g):
    x = np.column_stack([np.ones_like(y), t, g])
    model = TLinearModel(y, x)
    res = model.fit(maxiter=5000, disp=0)  # method="nm"
    bse = res.bse  # numerical Hessian
    return {"effect": float(res.params[1]), "se": float(bse[1]), "df": float(res.params[-2]),
            "scale": float(abs(res.params[-1])), "loglike": float(model.loglike(res.params)),
            "converged": bool(res.mle_retvals.get("converged", False)),
            "iterations": int(res.mle_retvals.get("iterations", -1))}


def fit_rlm(y, t, g):
    x = np.column_stack([np.ones_like(y), t, g])
    res = sm.RLM(y, x, M=sm.robust.norms.HuberT()).fit()
    return {"effect": float(res.params[1]), "se": float(res.bse[1]), "iterations": int(res.fit_history["iteration"])}


MODELS = {"mlrate": fit_mlrate, "tlinear": fit_tlinear, "rlm_huber": fit_rlm}


def main():
    warnings.simplefilter("ignore")  # statsmodels' df_model / df_resid notes on the generic MLE
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--models", default="mlrate,tlinear,rlm_huber")
    for m in ("mlrate", "tlinear", "rlm"):
        ap.add_argument(f"--rows-{m}", type=int, default=0, help="rows used (0: all)")
    ap.add_argument("--json")
    a = ap.parse_args()
    n, y, t, g = load(a.data)
    out = {"statsmodels": statsmodels.__version__, "numpy": np.__version__, "n": n, "models": {}}
    for name in a.models.split(","):
        rows = {"mlrate": a.rows_mlrate, "tlinear": a.rows_tlinear, "rlm_huber": a.rows_rlm}[name] or n
        rows = min(rows, n)
        secs, res = [], None
        for _ in range(a.reps):
            t0 = time.perf_counter()
            res = MODELS[name](y[:rows], t[:rows], g[:rows])
            secs.append(time.perf_counter() - t0)
        med = statistics.median(secs)
        out["models"][name] = dict(res, rows=rows, seconds=secs, median_s=med, scaled_to_n_s=med * n / rows)
        print(f"peer_abtest: {name} on {rows} rows: median {med:.3f} s (x{n / rows:g} -> {med * n / rows:.2f} s), "
              f"effect {res['effect']:.4f} se {res['se']:.4f}", file=sys.stderr, flush=True)
    text = json.dumps(out, indent=2)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
