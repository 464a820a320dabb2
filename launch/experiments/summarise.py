#!/usr/bin/env python3
"""Builds docs/results.md from out/experiments/<bench>/<method>/<seed>/{train,eval}.json (launch/experiments/reproduce.sh).

Standard library only. Mean +- 95% CI over seeds uses Student's t (n - 1 degrees of freedom). EOM is normalised per
seed to that seed's TSM-SL (TSM-SL = 1, as the papers report), then averaged. The hand-written discussion in
launch/experiments/discussion.md is appended verbatim.
"""
import json
import math
import os
import platform
import statistics
import sys
import time

T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
NAMES = {
    "tsm_sl": "TSM-SL", "drp": "DRP", "dhcl": "DHCL", "dfcl_pl": "DFCL-PL", "dfcl_mer": "DFCL-MER",
    "dfcl_ifd": "DFCL-IFD", "dfcl_ppl": "DFCL-PPL", "dfcl_pifd": "DFCL-PIFD",
}
ORDER = ["tsm_sl", "drp", "dhcl", "dfcl_pl", "dfcl_mer", "dfcl_ifd", "dfcl_ppl", "dfcl_pifd"]


def ci(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, float("nan"), len(values)
    half = T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return m, half, len(values)


def fmt(c, digits=4):
    if c is None:
        return "-"
    m, h, n = c
    return f"{m:.{digits}f} ± {h:.{digits}f}" if math.isfinite(h) else f"{m:.{digits}f}"


def load(out, bench, method, seed):
    d = os.path.join(out, bench, method, str(seed))
    try:
        with open(os.path.join(d, "eval.json")) as f:
            ev = json.load(f)
        with open(os.path.join(d, "train.json")) as f:
            tr = json.load(f)
    except FileNotFoundError:
        return None
    sc = ev["scorers"][ev["scores"]]
    return ev, sc, tr


def bench_rows(out, bench, seeds):
    methods = [m for m in ORDER if os.path.isdir(os.path.join(out, bench, m))]
    runs = {m: [load(out, bench, m, s) for s in range(1, seeds + 1)] for m in methods}
    return methods, runs


def table_m5(out, seeds):
    methods, runs = bench_rows(out, "synthetic_m5", seeds)
    if "tsm_sl" not in runs:
        return "(not run)\n"
    budgets = None
    for r in runs["tsm_sl"]:
        if r:
            budgets = r[0]["budgets"]
            break
    head = "| method | " + " | ".join(f"EOM @ {b:g} (TSM-SL = 1)" for b in budgets) + \
        " | mean regret | " + " | ".join(f"true revenue @ {b:g}" for b in budgets) + " | revenue MSE |\n"
    head += "|---" * (2 + 2 * len(budgets) + 1) + "|\n"
    lines = []
    for m in methods:
        eom = [[] for _ in budgets]
        tru = [[] for _ in budgets]
        reg, mse = [], []
        for s, r in enumerate(runs[m]):
            base = runs["tsm_sl"][s]
            if not r or not base:
                continue
            sc, bsc = r[1], base[1]
            for k in range(len(budgets)):
                eom[k].append(sc["eom"][k]["revenue"] / bsc["eom"][k]["revenue"])
                if "oracle" in sc:
                    tru[k].append(sc["oracle"][k]["true_revenue"])
            if "oracle" in sc:
                reg.append(statistics.fmean(o["regret"] for o in sc["oracle"]))
            if "prediction" in sc:
                mse.append(sc["prediction"]["revenue"]["mse"])
        lines.append(f"| {NAMES[m]} | " + " | ".join(fmt(ci(e)) for e in eom) + f" | {fmt(ci(reg))} | " +
                     " | ".join(fmt(ci(t)) for t in tru) + f" | {fmt(ci(mse), 3)} |")
    return head + "\n".join(lines) + "\n"


def table_binary(out, seeds, benches):
    head = "| method | " + " | ".join(f"AUCC, {b}" for b in benches) + " | " + \
        " | ".join(f"EOM vs TSM-SL, {b}" for b in benches) + " | mean regret, synthetic_m2 |\n"
    head += "|---" * (1 + 2 * len(benches) + 1) + "|\n"
    all_methods = [m for m in ORDER if any(os.path.isdir(os.path.join(out, b, m)) for b in benches)]
    lines = []
    for m in all_methods:
        auccs, eoms, reg = [], [], []
        for b in benches:
            _, runs = bench_rows(out, b, seeds)
            vals, rel = [], []
            for s, r in enumerate(runs.get(m, [])):
                base = runs.get("tsm_sl", [None] * seeds)[s]
                if not r:
                    continue
                sc = r[1]
                if sc.get("aucc"):
                    vals.append(sc["aucc"]["value"])
                if base:
                    bsc = base[1]
                    rel.append(statistics.fmean(sc["eom"][k]["revenue"] / bsc["eom"][k]["revenue"]
                                                for k in range(len(sc["eom"]))))
                if b == "synthetic_m2" and "oracle" in sc:
                    reg.append(statistics.fmean(o["regret"] for o in sc["oracle"]))
            auccs.append(fmt(ci(vals)))
            eoms.append(fmt(ci(rel)))
        lines.append(f"| {NAMES[m]} | " + " | ".join(auccs) + " | " + " | ".join(eoms) + f" | {fmt(ci(reg))} |")
    return head + "\n".join(lines) + "\n"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "out/experiments"
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    here = os.path.dirname(os.path.abspath(__file__))
    print("# Reproduction: decision-focused losses against the two-stage baseline\n")
    print("Produced by `launch/experiments/reproduce.sh` (tables: `launch/experiments/summarise.py`; discussion: "
          "`launch/experiments/discussion.md`). Every number is mean ± 95% CI (Student t) over "
          f"{seeds} seeds (seed = initialisation and shuffling; the data and the split are fixed). Machine: "
          f"{platform.machine()} {os.cpu_count()} vCPU ({platform.platform()}), generated "
          f"{time.strftime('%Y-%m-%d')}.\n")
    print("Protocol: per seed, TSM-SL trains 10 epochs (Adam 3e-3, cosine) and keeps its best validation loss; DHCL "
          "and DRP train from scratch the same way and keep their best validation decision metric; the DFCL "
          "variants fine-tune the seed's TSM-SL model for 5 epochs (Adam 1e-3) with α = 1 and keep their best "
          "validation EOM (M = 5) or AUCC (M = 2). All are evaluated on the test split's RCT rows (10% of the "
          "trial; 30% for Hillstrom), which no run saw. Configs: `configs/experiments/`.\n")
    print("## Benchmark 1: synthetic, M = 5 (200k RCT rows, 32 features)\n")
    print("EOM: IPW per-capita revenue at the budget, divided by the same seed's TSM-SL. Regret and true revenue "
          "come from the generator's true outcome tables (per user, mean over the three budgets for regret). "
          "Revenue MSE: prediction error of r̂ on the factual arm (decision losses trade some of it away; for "
          "factor models such as DHCL r̂ is not a revenue prediction).\n")
    print(table_m5(out, seeds))
    print("## Benchmark 2: binary (M = 2)\n")
    print("AUCC with Q = 200 on the test split (ranking by (Δr̂)/(Δĉ), or by the learned factor). synthetic_m2: "
          "the generator with arms {control, coupon 1}, 200k RCT rows; hillstrom_m2: Hillstrom "
          "{No E-Mail, Mens E-Mail}, revenue = conversion, cost = visit (12.8k test rows with ~110 conversions: wide CIs).\n")
    print(table_binary(out, seeds, ["synthetic_m2", "hillstrom_m2"]))
    disc = os.path.join(here, "discussion.md")
    if os.path.exists(disc):
        with open(disc) as f:
            print(f.read())


if __name__ == "__main__":
    main()
