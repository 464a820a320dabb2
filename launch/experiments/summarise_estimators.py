#!/usr/bin/env python3
"""Writes the estimator section of docs/results.md from bench/run_estimator_sims.sh's output.

Usage: summarise_estimators.py DIR (default out/estimator_sims). Standard library only. Reads DIR/<family>_noise<s>_<rows>.json
(bench/estimator_sims) and replaces the text between <!-- estimators:begin --> and <!-- estimators:end -->.
"""
import glob
import json
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summarise import splice_section  # noqa: E402

LABEL = {"ipw": "IPW", "dr_ridge": "DR, ridge (cross-fitted)", "dr_tsm_sl_crossfit": "DR, TSM-SL (cross-fitted)",
         "dr_tsm_sl_model": "DR, the TSM-SL model itself"}


def family_label(j):
    f = j["family"]
    return f + (f", revenue noise {j['revenue_noise']:g}" if j["revenue_noise"] else "")


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "out/estimator_sims"
    runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(d, "*.json")))]
    if not runs:
        return
    runs.sort(key=lambda j: (family_label(j), j["trial_rows"]))
    j0 = runs[0]
    body = ["## Judging decisions on a small trial: what pairing and DR buy", "",
            "`bench/run_estimator_sims.sh` (`bench/estimator_sims`, then `summarise_estimators.py`), on this container's "
            "2 cores. Per generator family and trial size: TSM-SL trained on "
            f"{j0['train_rows']:,} trial rows, the same run stopped after 2 epochs (a close rival, like two epochs of one "
            "run), random targeting and the oracle are the policies, each with λ fixed per budget by the IPW spend of "
            "200k fresh trial rows. On "
            f"{j0['chunks']} independent small trials of fresh users each, every policy's revenue and spend are "
            "estimated by IPW and by DR with three outcome models, and each pair's difference is taken on the same "
            "rows; errors are against each trial's own true values. Then λ of the TSM-SL model is set on each small "
            "trial by its IPW or its DR spend, and its decisions' true spend on 200k new users is compared with the "
            "budget.", "",
            "**Noise removed** (variance of IPW's error over the estimator's; mean over the four policies and three "
            "budgets for revenue and spend; for the difference of the two TSM-SL models, the variance of two "
            "independent IPW estimates' difference over the paired estimate's):", ""]
    ests = j0["estimators"]
    head = "| family | trial rows | " + " | ".join(f"revenue: {LABEL[e]}" for e in ests[1:]) + \
           " | spend: DR, ridge | paired Δ: IPW | paired Δ: DR, ridge | paired Δ: DR, TSM-SL |"
    body += [head, "|" + "---|" * (head.count("|") - 1)]
    for j in runs:
        v, p = j["variance_vs_ipw"], j["pairing_vs_unpaired_ipw"]
        body.append(f"| {family_label(j)} | {j['trial_rows']:,} | " +
                    " | ".join(f"{v[e]['revenue']:.2f}x" for e in ests[1:]) +
                    f" | {v['dr_ridge']['spend']:.2f}x | {p['ipw']['close_rival']:.1f}x | {p['dr_ridge']['close_rival']:.1f}x "
                    f"| {p['dr_tsm_sl_crossfit']['close_rival']:.1f}x |")
    body += ["", "The largest |mean error| / its standard error over the 12 (policy, budget) cells of each run and "
             "estimator is " + ", ".join(sorted({f"{max(j['largest_bias_in_se'].values()):.1f}" for j in runs})) +
             ": no estimator shows a bias its noise cannot explain.", "",
             "**Budgets held by a small trial** (λ of TSM-SL set on one small trial; the true spend of its decisions on 200k "
             "new users; rms and worst |true spend / budget − 1| over the trials, and the mean half-width of the 95% CI "
             "the estimate reported, as shares of the budget; mean over the budgets λ reaches):", "",
             "| family | trial rows | IPW: rms | IPW: worst | IPW: CI ± | DR: rms | DR: worst | DR: CI ± |",
             "|---|---|---|---|---|---|---|---|"]
    unspendable = set()
    for j in runs:
        c = j["calibration"]
        def ok(e):  # the budgets lambda reached (a budget the model cannot spend is no calibration error)
            return [x for x in c[e] if x.get("reached", 1) > 0 and x["rms"] is not None]
        def avg(e, k):
            return 100 * statistics.fmean(x[k] for x in ok(e))
        def worst(e):
            return 100 * max(x["worst"] for x in ok(e))
        for x in c["ipw"]:
            if x.get("reached", 1) == 0:
                unspendable.add(f"{family_label(j)} at {x['budget']:g}")
        body.append(f"| {family_label(j)} | {j['trial_rows']:,} | {avg('ipw', 'rms'):.1f}% | {worst('ipw'):.1f}% | "
                    f"{avg('ipw', 'mean_half_width'):.1f}% | {avg('dr_ridge', 'rms'):.1f}% | {worst('dr_ridge'):.1f}% | "
                    f"{avg('dr_ridge', 'mean_half_width'):.1f}% |")
    if unspendable:
        body += ["", "Left out (the model's decisions at λ = 0 spend less than the budget: nothing more is worth its cost "
                 "to it, so no λ reaches it): " + "; ".join(sorted(unspendable)) + "."]
    # Where DR still cannot tell: the paired DR noise of the close rivals, as a share of revenue, and the trial size that
    # would resolve a 1% and a 2% difference (two-sided 95%: the difference must exceed 1.96 sd).
    body += ["", "**Where DR still cannot tell.** The noise of the paired DR difference of the two TSM-SL models "
             "(sd over the trials, as a share of the model's true revenue; mean over budgets) and the trial rows at which "
             "a difference of 1% or 2% of revenue would lie outside the 95% CI (the variance falls as 1/rows):", "",
             "| family | trial rows | sd of the paired DR Δ | rows to resolve 1% | rows to resolve 2% |", "|---|---|---|---|---|"]
    for j in runs:
        if "paired_sd" not in j:
            continue
        sd = j["paired_sd"]["dr_ridge"][0]["sd"]
        rev = j["model_true_revenue"]
        share = statistics.fmean(s / r for s, r in zip(sd, rev))
        need = lambda delta: j["trial_rows"] * (1.96 * share / delta) ** 2
        body.append(f"| {family_label(j)} | {j['trial_rows']:,} | {100 * share:.2f}% | {need(0.01):,.0f} | "
                    f"{need(0.02):,.0f} |")
    body.append("")
    splice_section("estimators", body, "discussion_estimators.md")


if __name__ == "__main__":
    main()
