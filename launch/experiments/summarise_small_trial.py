#!/usr/bin/env python3
"""Writes the small-trial section of docs/results.md from launch/experiments/small_trial.sh's output.

Usage: summarise_small_trial.py OUT SEEDS. Standard library only. Reads per seed the train JSONs (what `auto`
derived), dfcl cluster's JSON (the K sweep and what selected), dfcl evaluate's JSON on 300k fresh users (DR and the
true tables) and dfcl allocate's JSONs (true spend under lambda by the IPW and by the DR spend of the trial's held-out
rows). Replaces the text between <!-- small_trial:begin --> and <!-- small_trial:end -->.
"""
import json
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summarise import ci, fmt, splice_section  # noqa: E402

MODELS = [("tsm", "TSM-SL (configs/train.yaml)"), ("bidfcl", "Bi-DFCL-PPL (configs/bidfcl.yaml)"),
          ("cluster", "cluster policy (configs/cluster.yaml)")]


def load(p):
    return json.load(open(p)) if os.path.exists(p) else None


def main():
    out, seeds = sys.argv[1], int(sys.argv[2])
    runs = [s for s in range(1, seeds + 1) if os.path.exists(os.path.join(out, str(s), "evaluate.json"))]
    if not runs:
        return
    body = ["## A small trial and a large log, with the shipped configs", "",
            "`launch/experiments/small_trial.sh` (then `summarise_small_trial.py`): per seed a fresh 10k-row trial and "
            "a 150k-row selection-biased log of the retail family, and nothing tuned: `configs/train.yaml`, "
            "`configs/bidfcl.yaml` and `configs/cluster.yaml` with only the data, the output, the seed and the budgets "
            "(0.3, 0.8, 1.5 per user) given. Every model is judged on 300,000 fresh users of the same population "
            "(dfcl evaluate, DR by default; regret from the true tables), and allocates them with λ from the trial's "
            f"held-out rows (2k: `calibration_split: auto`). Seeds: {len(runs)}.", ""]
    # 1. What auto derived.
    derived = []
    for s in runs:
        t = load(os.path.join(out, str(s), "tsm.json"))
        d = t["derived"]
        teacher = ""
        log = os.path.join(out, str(s), "bidfcl.log")
        if os.path.exists(log):  # the teacher's own auto values: the first lines Bi-DFCL's run printed
            lines = [l.strip() for l in open(log, errors="replace") if l.startswith("train.batch_size = auto:")]
            if lines:
                teacher = "; Bi-DFCL's teacher: " + lines[0].split(":", 1)[1].split("(")[0].strip()
        derived.append(f"seed {s}: {d['training_rows']} training rows, batch {d['batch_size']['value']}, "
                       f"{d['epochs']['value']} epochs, {t['steps']} steps, best epoch {t['best_epoch']}{teacher}")
    body += ["**Defaults that fit the data.** TSM-SL's `auto` batch size and epochs per seed: " + "; ".join(derived) +
             ". (A fixed batch of 4,096 gave this trial 2 steps an epoch.)", ""]
    # 2. Decisions on fresh users.
    ev = {s: load(os.path.join(out, str(s), "evaluate.json")) for s in runs}
    budgets = ev[runs[0]]["budgets"]
    def regret(sc):
        return statistics.fmean(o["regret"] for o in sc["oracle"])
    keyed = {}
    for s in runs:
        for name, sc in ev[s]["scorers"].items():
            base = os.path.basename(name)
            k = "cluster" if base.endswith(".policy") else name.split("/")[-2] if "/" in name else name
            keyed.setdefault(k, {})[s] = sc
    head = "| model | " + " | ".join(f"regret @ {b:g}" for b in budgets) + " | mean regret | DR revenue d vs TSM-SL (seeds resolved) | rank (DR) |"
    body += ["**Decisions on 300k fresh users** (mean ± 95% CI over seeds; d = the paired DR revenue difference against "
             "TSM-SL on the judged users, averaged over budgets; a seed counts as resolved when its paired CI excludes 0):",
             "", head, "|" + "---|" * (head.count("|") - 1)]
    for k, label in MODELS + [("random", "random targeting"), ("oracle", "oracle")]:
        if k not in keyed:
            continue
        r = keyed[k]
        cells = [fmt(ci([r[s]["oracle"][b]["regret"] for s in r])) for b in range(len(budgets))]
        md = [r[s]["estimate"]["mean_difference"] for s in r]
        resolved = sum(1 for x in md if x["lo"] is not None and (x["lo"] > 0 or x["hi"] < 0))
        ranks = [str(r[s]["estimate"].get("rank")) + ("=" if r[s]["estimate"].get("tied") else "") for s in r]
        body.append(f"| {label} | " + " | ".join(cells) + f" | {fmt(ci([regret(r[s]) for s in r]))} | "
                    f"{fmt(ci([x['value'] for x in md]), sign=True) if k != 'tsm' else '(reference)'}"
                    f"{f' ({resolved}/{len(md)})' if k != 'tsm' else ''} | {', '.join(ranks)} |")
    body.append("")
    # 3. The cluster K.
    ks = []
    for s in runs:
        c = load(os.path.join(out, str(s), "cluster.json"))
        if c:
            ks.append(f"K = {c['k']} on {c['selected_by']}")
    body += ["**The cluster K** is chosen on a decision metric of the validation rows (`cluster.metric: dr_eom`, the "
             "shipped default): " + "; ".join(ks) + ".", ""]
    # 4. Budgets in true spend.
    head = "| model | λ by | " + " | ".join(f"true spend @ {b:g}" for b in budgets) + " | CI half-width (trial) | trial rows for ±2% |"
    body += ["**What the allocations truly spend** (300k users; λ from the trial's 2k held-out rows by its IPW or its DR "
             "spend; cells: mean over seeds of the true spend per user and, in brackets, the largest |true / budget − 1|; "
             "the half-width of the spend estimate's 95% CI as a share of the budget, mean over seeds and budgets; and "
             "the trial size that would hold ±2%, from the measured variance):", "", head, "|" + "---|" * (head.count("|") - 1)]
    for k, label in MODELS:
        for kind in ("ipw", "dr"):
            js = [load(os.path.join(out, str(s), f"allocate_{k}_{kind}.json")) for s in runs]
            js = [j for j in js if j]
            if not js:
                continue
            cells = []
            for b in range(len(budgets)):
                t = [j["budgets"][b]["true_spend_per_user"] for j in js]
                dev = max(abs(x / budgets[b] - 1) for x in t)
                cells.append(f"{statistics.fmean(t):.4g} ({100 * dev:.1f}%)")
            hw = statistics.fmean(j["budgets"][b]["precision"]["half_width_share"] for j in js for b in range(len(budgets)))
            need = statistics.fmean(j["budgets"][b]["precision"]["rows_for_target"] for j in js for b in range(len(budgets)))
            body.append(f"| {label} | {kind.upper()} | " + " | ".join(cells) + f" | ±{100 * hw:.1f}% | {need:,.0f} |")
    body.append("")
    splice_section("small_trial", body, "discussion_small_trial.md")


if __name__ == "__main__":
    main()
