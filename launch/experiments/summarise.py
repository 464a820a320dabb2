#!/usr/bin/env python3
"""Builds docs/results.md from out/experiments (launch/experiments/reproduce.sh).

Usage: summarise.py OUT SEEDS REGIME [REGIME ...]. Standard library only. Reads OUT/<regime>/eval_<seed>.json (every
method of a seed evaluated together), OUT/<regime>/tune/<method>/tune.json (the tuned values) and the regime configs.
Mean +- 95% CI over seeds uses Student's t. Regret is paired per seed against TSM-SL (the same seed, the same test
rows). The hand-written discussion, launch/experiments/discussion.md, is appended verbatim.
"""
import json
import math
import os
import platform
import statistics
import sys
import time

T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
NAMES = {
    "tsm_sl": "TSM-SL", "tsm_sl_eom": "TSM-SL, EOM-selected", "dhcl": "DHCL", "drp": "DRP", "dfcl_pl": "DFCL-PL",
    "dfcl_mer": "DFCL-MER", "dfcl_ifd": "DFCL-IFD", "dfcl_ppl": "DFCL-PPL", "dfcl_pifd": "DFCL-PIFD",
    "tsm_sl_both": "TSM-SL, trial + log", "bidfcl_ppl": "Bi-DFCL-PPL",
}
ORDER = ["tsm_sl", "tsm_sl_eom", "dhcl", "drp", "dfcl_pl", "dfcl_mer", "dfcl_ifd", "dfcl_ppl", "dfcl_pifd",
         "tsm_sl_both", "bidfcl_ppl"]
DECISION = [m for m in ORDER if m not in ("tsm_sl", "tsm_sl_eom", "tsm_sl_both")]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def splice_section(tag, body, discussion):
    """Writes `body` (lines) plus the hand-written `discussion` file (beside this script) between the markers
    <!-- TAG:begin --> and <!-- TAG:end --> of docs/results.md, appending them the first time."""
    path = os.path.join(ROOT, "docs", "results.md")
    lines = [f"<!-- {tag}:begin -->"] + body
    extra = os.path.join(os.path.dirname(os.path.abspath(__file__)), discussion)
    if os.path.exists(extra):
        lines += [open(extra).read().rstrip(), ""]
    lines.append(f"<!-- {tag}:end -->")
    text = open(path).read()
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    a, b = text.find(begin), text.find(end)
    new = "\n".join(lines)
    text = text[:a] + new + text[b + len(end):] if a >= 0 and b > a else text.rstrip() + "\n\n" + new + "\n"
    open(path, "w").write(text)


def ci(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, float("nan"), len(values)
    return m, T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values)), len(values)


def fmt(c, digits=4, sign=False):
    if c is None:
        return "-"
    m, h, _ = c
    s = f"{m:+.{digits}f}" if sign else f"{m:.{digits}f}"
    return f"{s} ± {h:.{digits}f}" if math.isfinite(h) else s


def regime_comment(regime):
    lines = []
    with open(os.path.join(ROOT, "configs/experiments/regimes", regime + ".yaml")) as f:
        for line in f:
            if not line.startswith("#"):
                break
            lines.append(line[1:].strip())
    return " ".join(lines)


def method_of(path):
    return path.rstrip("/").split("/")[-3]  # .../<regime>/<method>/<seed>/best.ckpt


def load_regime(out, regime, seeds, sub=""):
    per = {}  # method -> list over seeds of the scorer JSON
    meta = None
    for s in range(1, seeds + 1):
        p = os.path.join(out, regime, sub, f"eval_{s}.json")
        if not os.path.exists(p):
            continue
        ev = json.load(open(p))
        meta = ev
        for name, sc in ev["scorers"].items():
            key = name if name in ("oracle", "random") else method_of(name)
            per.setdefault(key, {})[s] = sc
    return meta, per


def reached(e):
    """lambda met the budget, or the budget lies in a jump of the IPW spend (stepped: lambda on the side that does not
    overspend, docs/metrics.md §2)."""
    return e["matched"] or e.get("stepped", False)


def feasible_only(record):
    """False for an epoch whose decisions overspent a validation budget in truth: a negative regret at some budget
    (runs made before infeasible decisions were charged the whole lift, docs/metrics.md §5)."""
    return all(e.get("regret", 0) >= -1e-6 for e in record["validation"].get("eom", []))


def reachable(out, regime, method):
    """The lowest validation regret any epoch of any tuning trial reached: what a selector that could see the true
    tables would have picked (an upper bound on what tuning can give a method), and the trial and epoch."""
    d = os.path.join(out, regime, "tune", method)
    best = None
    if not os.path.isdir(d):
        return None
    for t in sorted(os.listdir(d)):
        p = os.path.join(d, t, "metrics.jsonl")
        if not t.startswith("trial_") or not os.path.exists(p):
            continue
        for line in open(p):
            j = json.loads(line)
            v = j.get("validation", {}).get("regret_mean")
            if v is None or feasible_only(j) is False:
                continue
            if best is None or v < best[0]:
                best = (v, t, j["epoch"])
    return best


def tuned(out, regime, method):
    p = os.path.join(out, regime, "tune", method, "tune.json")
    if not os.path.exists(p):
        return None
    t = json.load(open(p))
    return t["best"]["overrides"], len(t["trials"]), sum(1 for x in t["trials"] if x["status"] == "ok")


def section(out, regime, seeds, summary):
    meta, per = load_regime(out, regime, seeds)
    if meta is None:
        return f"## {regime}\n\nNot run.\n", 0.0
    budgets = meta["budgets"]
    base = per.get("tsm_sl", {})
    lines = [f"## {regime}", "", regime_comment(regime), "",
             f"Test split: {meta['rows_evaluated']:,} trial rows, {meta['arms']} arms; budgets per user "
             f"{', '.join(f'{b:g}' for b in budgets)}; lambda calibrated by the IPW spend on the {meta['budget_calibration']['calibration_rows']:,} "
             f"held-out trial rows (validation and test splits). Seeds: {len(base)}.", ""]
    head = "| method | " + " | ".join(f"regret @ {b:g}" for b in budgets) + \
           " | mean regret | paired Δ vs TSM-SL | seeds better | EOM vs TSM-SL | worst true-spend error |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    worst_all = 0.0
    for m in ORDER + ["random"]:
        if m not in per:
            continue
        runs = per[m]
        cells = []
        for k in range(len(budgets)):
            cells.append(fmt(ci([runs[s]["oracle"][k]["regret"] for s in runs])))
        means = {s: statistics.fmean(o["regret"] for o in runs[s]["oracle"]) for s in runs}
        diffs = [means[s] - statistics.fmean(o["regret"] for o in base[s]["oracle"]) for s in runs if s in base]
        better = sum(1 for d in diffs if d < 0)
        eom = [statistics.fmean(runs[s]["eom"][k]["revenue"] / base[s]["eom"][k]["revenue"] for k in range(len(budgets)))
               for s in runs if s in base]
        # Calibration error where lambda reached the budget; a budget the decisions cannot spend (lambda = 0 spends
        # less: the scorer sees no arm worth its cost) is counted apart.
        spend = [abs(o["decisions_true_cost"] / o["budget"] - 1) for s in runs
                 for o, e in zip(runs[s]["oracle"], runs[s]["eom"]) if reached(e) or e["cost"] > e["budget"]]
        short = sum(1 for s in runs for e in runs[s]["eom"] if not reached(e) and e["cost"] < e["budget"])
        worst = max(spend) if spend else float("nan")
        if m != "random":
            worst_all = max(worst_all, worst)
        is_base = m == "tsm_sl"
        lines.append(f"| {NAMES.get(m, m)} | " + " | ".join(cells) + f" | {fmt(ci(list(means.values())))} | "
                     f"{'-' if is_base else fmt(ci(diffs), sign=True)} | {'-' if is_base else f'{better}/{len(diffs)}'} | "
                     f"{fmt(ci(eom))} | {100 * worst:.1f}%{f' ({short} unspendable)' if short else ''} |")
        if m in NAMES and not is_base:
            summary.setdefault(m, {})[regime] = (ci(diffs), better, len(diffs))
    lines += ["", f"Worst deviation of any method's true spend from its budget here: {100 * worst_all:.2f}%.", ""]
    # The tuned values, and what an oracle selector could have had from the same trials.
    lines += ["Tuned values (8 random trials each, tuning seed 100), and the lowest validation regret any epoch of any of "
              "the method's tuning trials reached (a selector that saw the true tables; TSM-SL's trials are the same "
              "for both of its rows):", ""]
    lines += ["| method | tuned values | trials ran | lowest validation regret (trial, epoch) |", "|---|---|---|---|"]
    for m in ORDER:
        if m == "tsm_sl_eom":
            continue
        t = tuned(out, regime, m)
        if t is None:
            continue
        r = reachable(out, regime, m)
        rr = f"{r[0]:.4f} ({r[1]}, {r[2]})" if r else "-"
        lines.append(f"| {NAMES[m]} | {', '.join(x.split('=')[0].split('.')[-1] + '=' + x.split('=')[1] for x in t[0])} | "
                     f"{t[2]}/{t[1]} | {rr} |")
        summary.setdefault("_reach", {}).setdefault(m, {})[regime] = r[0] if r else None
    lines.append("")
    return "\n".join(lines), worst_all


def mean_regrets(out, regime, seeds, sub):
    """method -> {seed: mean test regret over the budgets} for the evaluations under OUT/<regime>/<sub>."""
    meta, per = load_regime(out, regime, seeds, sub)
    if meta is None:
        return None
    return {m: {s: statistics.fmean(o["regret"] for o in runs[s]["oracle"]) for s in runs} for m, runs in per.items()}


def selected_section(out, regimes, seeds, sub, title, intro):
    """Paired regret when every method is selected another way (launch/experiments/select.sh)."""
    rows, have = {}, []
    for r in regimes:
        means = mean_regrets(out, r, seeds, sub)
        if means is None:
            continue
        have.append(r)
        base = means.get("tsm_sl", {})
        loss_base = (mean_regrets(out, r, seeds, "") or {}).get("tsm_sl", {})
        for m in ORDER:
            if m not in means:
                continue
            runs = means[m]
            if m == "tsm_sl":
                rows.setdefault(m, {})[r] = (ci(list(runs.values())), None, None)
                # TSM-SL selected this way against TSM-SL selected on its loss (the main tables' baseline).
                d = [runs[s] - loss_base[s] for s in runs if s in loss_base]
                rows.setdefault("tsm_sl_vs_loss", {})[r] = (ci(d), sum(1 for x in d if x < 0), len(d))
                continue
            diffs = [runs[s] - base[s] for s in runs if s in base]
            rows.setdefault(m, {})[r] = (ci(diffs), sum(1 for d in diffs if d < 0), len(diffs))
            d2 = [runs[s] - loss_base[s] for s in runs if s in loss_base]
            rows.setdefault(m + "@loss", {})[r] = (ci(d2), sum(1 for d in d2 if d < 0), len(d2))
    if not have:
        return []
    lines = [f"## {title}", "", intro, "", "| method | " + " | ".join(have) + " |", "|" + "---|" * (len(have) + 1)]
    def row(label, key):
        cells = []
        for r in have:
            c = rows.get(key, {}).get(r)
            if c is None:
                cells.append("-")
            elif c[1] is None:
                cells.append(fmt(c[0]))
            else:
                cells.append(f"{fmt(c[0], sign=True)} ({c[1]}/{c[2]})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for m in ORDER:
        if m in rows:
            row(NAMES[m], m)
    if "tsm_sl_vs_loss" in rows:
        row("TSM-SL selected this way − TSM-SL loss-selected", "tsm_sl_vs_loss")
    lines += ["", "The same methods' paired Δ against TSM-SL selected on its validation loss (the main tables' baseline):",
              "", "| method | " + " | ".join(have) + " |", "|" + "---|" * (len(have) + 1)]
    for m in ORDER:
        if m + "@loss" in rows:
            row(NAMES[m], m + "@loss")
    lines.append("")
    return lines


def recovery_section(out, regimes, seeds):
    """Mean test regret of every method under the three selections, and how much of the oracle selector's gain DR
    selection recovers, on the mean over the decision-focused methods (a ratio of two noisy differences is stable only
    on such a mean)."""
    have, cells, agg = [], {}, {}
    for r in regimes:
        eom, dr, orc = (mean_regrets(out, r, seeds, sub) for sub in ("", "dr", "oracle"))
        if not (eom and dr and orc):
            continue
        have.append(r)
        means = {"eom": [], "dr": [], "oracle": []}
        for m in ORDER:
            if m == "tsm_sl_eom" or m not in eom or m not in dr or m not in orc:
                continue
            e, d, o = (statistics.fmean(x[m].values()) for x in (eom, dr, orc))
            cells.setdefault(m, {})[r] = f"{e:.4f} / {d:.4f} / {o:.4f}"
            if m in DECISION:
                means["eom"].append(e), means["dr"].append(d), means["oracle"].append(o)
        if means["eom"]:
            e, d, o = (statistics.fmean(means[k]) for k in ("eom", "dr", "oracle"))
            share = f"{100 * (e - d) / (e - o):.0f}%" if e - o > 0.002 else "no gain to recover"
            agg[r] = (f"{e:.4f} / {d:.4f} / {o:.4f}", share)
    if not have:
        return []
    lines = ["## How much of the oracle selector's gain DR selection recovers", "",
             "Mean test regret per user (over the seeds and budgets) of every method under the three selections from "
             "the same tuning trials: EOM-selected (the papers' protocol; TSM-SL on its validation loss) / DR-selected / "
             "oracle-selected. The last rows average the decision-focused methods and give the share of the oracle "
             "selector's gain that DR selection recovers on that average: (EOM − DR) / (EOM − oracle); 100% = as good as "
             "the oracle selector, 0% = no better than IPW EOM, negative = worse.", "",
             "| method | " + " | ".join(have) + " |", "|" + "---|" * (len(have) + 1)]
    for m in ORDER:
        if m in cells:
            lines.append(f"| {NAMES[m]} | " + " | ".join(cells[m].get(r, "-") for r in have) + " |")
    lines.append("| mean of the decision-focused methods | " + " | ".join(agg.get(r, ("-", "-"))[0] for r in have) + " |")
    lines.append("| share of the oracle gain DR recovers | " + " | ".join(agg.get(r, ("-", "-"))[1] for r in have) + " |")
    lines.append("")
    return lines


def kendall_tau_b(x, y):
    n, conc, disc, tx, ty = len(x), 0, 0, 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tx += 1
            elif dy == 0:
                ty += 1
            elif (dx > 0) == (dy > 0):
                conc += 1
            else:
                disc += 1
    d = math.sqrt((conc + disc + tx) * (conc + disc + ty))
    return (conc - disc) / d if d > 0 else float("nan")


def tau_section(out, regimes):
    """Selection quality measured directly: over all tuning trials and epochs of each method, the rank correlation of
    the validation IPW EOM and of the validation DR EOM with the (negated) validation regret from the true tables."""
    have, cells = [], {}
    for r in regimes:
        found = False
        for m in ORDER:
            d = os.path.join(out, r, "tune", m)
            if not os.path.isdir(d):
                continue
            ipw, dr, reg = [], [], []
            for t in sorted(os.listdir(d)):
                p = os.path.join(d, t, "metrics.jsonl")
                if not t.startswith("trial_") or not os.path.exists(p):
                    continue
                for line in open(p):
                    v = json.loads(line).get("validation")
                    if not v or v.get("regret_mean") is None or not v.get("dr"):
                        continue
                    ipw.append(v["eom_mean"]), dr.append(v["dr"]["eom_mean"]), reg.append(-v["regret_mean"])
            if len(reg) < 5:
                continue
            found = True
            cells.setdefault(m, {})[r] = (kendall_tau_b(ipw, reg), kendall_tau_b(dr, reg), len(reg))
        if found:
            have.append(r)
    if not have:
        return []
    lines = ["## Selection quality: do the validation estimates order the candidates by their true regret?", "",
             "Kendall's τ_b between a validation estimate and the negated validation regret (from the true tables), over "
             "every epoch of every tuning trial of a method (8 trials; n = trials × epochs). Cells: τ of IPW EOM / τ of "
             "DR EOM (n). 1 = the estimate orders the candidates exactly as their true regret does; 0 = no better than "
             "chance.", "", "| method | " + " | ".join(have) + " |", "|" + "---|" * (len(have) + 1)]
    means = {r: ([], []) for r in have}
    for m in ORDER:
        if m not in cells:
            continue
        row = []
        for r in have:
            c = cells[m].get(r)
            if c is None:
                row.append("-")
                continue
            row.append(f"{c[0]:.2f} / {c[1]:.2f} ({c[2]})")
            means[r][0].append(c[0]), means[r][1].append(c[1])
        lines.append(f"| {NAMES[m]} | " + " | ".join(row) + " |")
    lines.append("| mean | " + " | ".join(f"{statistics.fmean(means[r][0]):.2f} / {statistics.fmean(means[r][1]):.2f}"
                                           for r in have) + " |")
    lines.append("")
    return lines


def calibration_section(out, regimes, seeds):
    """The true spend of the same models' decisions on the test rows, lambda by the IPW spend or by the DR spend of the
    held-out rows (eval_<seed>.json against eval_dr_<seed>.json)."""
    have, rows = [], []
    for r in regimes:
        errs = {"ipw": [], "dr": []}
        for kind, name in (("ipw", "eval_{}.json"), ("dr", "eval_dr_{}.json")):
            for s in range(1, seeds + 1):
                p = os.path.join(out, r, name.format(s))
                if not os.path.exists(p):
                    continue
                for sc in json.load(open(p))["scorers"].values():
                    for o, e in zip(sc.get("oracle", []), sc["eom"]):
                        if reached(e):
                            errs[kind].append(o["decisions_true_cost"] / o["budget"] - 1)
        if errs["ipw"] and errs["dr"]:
            have.append(r)
            rms = {k: math.sqrt(statistics.fmean(x * x for x in v)) for k, v in errs.items()}
            rows.append(f"| {r} | {100 * rms['ipw']:.2f}% | {100 * max(abs(x) for x in errs['ipw']):.2f}% | "
                        f"{100 * rms['dr']:.2f}% | {100 * max(abs(x) for x in errs['dr']):.2f}% |")
    if not have:
        return []
    return ["## Budgets held by the IPW or the DR spend", "",
            "Every model of every seed (all methods, EOM-selected), λ calibrated on the held-out trial rows by the IPW "
            "spend or by the DR spend (per-arm ridge, cross-fitted), the decisions' true spend on the test rows "
            "against the budget (|true / budget − 1|, every budget λ reaches).", "",
            "| regime | IPW: rms | IPW: worst | DR: rms | DR: worst |", "|---|---|---|---|---|"] + rows + [""]


def kept_section(header):
    """A section of the current docs/results.md that this run did not redo (deploy.sh and spend.sh run with DEPLOY=1),
    kept verbatim under a note."""
    path = os.path.join(ROOT, "docs", "results.md")
    if not os.path.exists(path):
        return []
    text = open(path).read()
    a = text.find(header)
    if a < 0:
        return []
    b = text.find("\n## ", a + len(header))
    body = text[a:b if b > 0 else len(text)].rstrip().split("\n")
    note = ("*Kept from the previous reproduction (models selected by IPW EOM as the papers do); not rerun with this "
            "one: `DEPLOY=1 launch/experiments/reproduce.sh` redoes it.*")
    if note not in body:
        body = body[:1] + ["", note] + body[1:]
    return body + [""]


def spend_section(out):
    d = os.path.join(out, "spend")
    if not os.path.isdir(d):
        return []
    models = [("tsm_sl", "TSM-SL"), ("dfcl_ifd", "DFCL-IFD (cost_head: calibrated)"),
              ("dfcl_ifd_decision", "DFCL-IFD (cost_head: decision, the papers' form)")]
    lines = ["## What the decisions spend: predicted against trial calibration", "",
             "The retail regime's seed-1 models allocate 2,000,000 new users of the retail population at 0.3, 0.8 and "
             "1.5 per user (`launch/experiments/spend.sh`). λ comes from the model's own predicted costs, or from the "
             "IPW spend on a new trial of 20k, 200k or 2M rows (`allocate.budget_calibration: trial`, "
             "`allocate.calibration_data`; neither file shares a user with the trial the models trained on); the true spend of each allocation is read off the true tables. Cells: true "
             "spend per user (its deviation from the budget); under trial calibration also the half-width of the 95% CI "
             "of the IPW spend, relative to the budget.", "",
             "| model | λ from | true spend @ 0.3 | @ 0.8 | @ 1.5 |", "|---|---|---|---|---|"]
    for m, name in models:
        for kind, label in [("predicted", "its predicted costs"), ("trial_20000", "a 20k trial"),
                            ("trial_200000", "a 200k trial"), ("trial_2000000", "a 2M trial")]:
            p = os.path.join(d, f"{m}_{kind}.json")
            if not os.path.exists(p):
                continue
            cells = []
            for b in json.load(open(p))["budgets"]:
                t, pc = b["true_spend_per_user"], b["per_capita"]
                cell = f"{t:.4g} ({100 * (t / pc - 1):+.1f}%)"
                if kind != "predicted" and "trial_spend_per_user" in b:
                    ts = b["trial_spend_per_user"]
                    cell += f", CI ±{100 * (ts['hi'] - ts['value']) / pc:.1f}%"
                cells.append(cell)
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def deploy_section(out, regimes, seeds):
    """True spend of every model's allocation of its regime's 1M-user population, lambda from the IPW spend on the
    regime's trial (launch/experiments/deploy.sh)."""
    cells, have, allb = {}, [], []
    for r in regimes:
        d = os.path.join(out, r, "deploy")
        if not os.path.isdir(d):
            continue
        have.append(r)
        for m in ORDER:
            errs, inside, saturated = [], 0, 0
            for s in range(1, seeds + 1):
                p = os.path.join(d, f"{m}_{s}.json")
                if not os.path.exists(p):
                    continue
                for b in json.load(open(p))["budgets"]:
                    if not b["reached"]:  # lambda = 0 spends less than the budget: nothing more is worth its cost
                        saturated += 1
                        continue
                    t, pc, ts = b["true_spend_per_user"], b["per_capita"], b["trial_spend_per_user"]
                    errs.append(t / pc - 1)
                    inside += ts["value"] - (ts["hi"] - ts["value"]) <= t <= ts["hi"]
                    allb.append((abs(t / pc - 1), (ts["hi"] - ts["value"]) / pc))
            if errs:
                cells.setdefault(m, {})[r] = (errs, inside, saturated)
    if not have:
        return []
    n = len(allb)
    within2 = sum(1 for e, _ in allb if e <= 0.02)
    inside_all = sum(c[1] for m in cells.values() for c in m.values())
    lines = ["## Deployed: the true spend of every model", "",
             "`launch/experiments/deploy.sh`: every seed's model of every method allocates 1,000,000 new users of its "
             "regime's population, λ calibrated at each budget by the IPW spend on a new trial of 200,000 rows of the "
             "same population (`allocate.budget_calibration: trial`; no model saw a user of either file); the allocation's true spend comes from the population's true "
             "tables. Cells: the largest |true spend / budget − 1| over 5 seeds and 3 budgets, and in brackets the mean "
             "signed deviation. The test-row figures in the regime tables above add the 20k test rows' own sampling "
             "variation to this.", "",
             f"Over all {n} allocations: {within2} ({100 * within2 / n:.0f}%) within 2% of the budget, the largest "
             f"deviation {100 * max(e for e, _ in allb):.2f}%; {inside_all} ({100 * inside_all / n:.0f}%) inside the 95% "
             f"CI that the IPW spend estimate reported (half-width {100 * min(h for _, h in allb):.1f}% to "
             f"{100 * max(h for _, h in allb):.1f}% of the budget).", "",
             "| method | " + " | ".join(have) + " |", "|" + "---|" * (len(have) + 1)]
    for m in ORDER:
        if m not in cells:
            continue
        row = []
        for r in have:
            c = cells[m].get(r)
            if c is None:
                row.append("-")
                continue
            errs, _, sat = c
            row.append(f"{100 * max(abs(e) for e in errs):.1f}% ({100 * statistics.fmean(errs):+.1f}%)"
                       + (f", {sat} unspendable" if sat else ""))
        lines.append(f"| {NAMES[m]} | " + " | ".join(row) + " |")
    lines.append("")
    return lines


def main():
    out, seeds, regimes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    summary, sections, worst = {}, [], 0.0
    for r in regimes:
        text, w = section(out, r, seeds, summary)
        sections.append(text)
        worst = max(worst, w)
    doc = ["# Reproduction: decision-focused losses against a correctly configured, equally tuned two-stage baseline", "",
           "Produced by `launch/experiments/reproduce.sh` (tables: `launch/experiments/summarise.py`; discussion: "
           "`launch/experiments/discussion.md`). Machine: "
           f"{platform.machine()} {os.cpu_count()} vCPU ({platform.platform()}), generated {time.strftime('%Y-%m-%d')}.", "",
           "**Protocol.** Every regime is a synthetic trial whose true outcome tables are known. Every method gets the "
           "same tuning budget: `dfcl tune`, 8 random trials over the learning rate (3e-4 to 3e-2, log), the epochs "
           "(5, 10, 20; 2, 4, 8 for TSM-SL on trial + log; 2, 4, 6 for Bi-DFCL) and its own keys (α in [0.1, 10] for "
           "the DFCL losses; τ in [0.03, 3] for MER and PPL; h in [0.03, 1] for IFD and PIFD), on a tuning seed of its "
           "own. Every epoch of every trial is validated by IPW and by DR (docs/metrics.md §13), and three selections "
           "are made from the same tuning trials: **EOM-selected** (the papers' protocol: TSM-SL, a prediction model, on "
           "its validation loss, the decision-focused methods on validation EOM at equal IPW spend; TSM-SL selected "
           "that way is shown too), **DR-selected** (every method on the validation DR revenue at equal DR spend) and "
           "**oracle-selected** (on the validation regret from the true tables, which a real trial does not have). Output "
           "heads are `auto` (softplus on every regime's labels); batch sizes `auto` (4096 on the 160k-row trials) "
           "unless a regime sets one; the DFCL losses keep the cost head calibrated (`cost_head: calibrated`, "
           "docs/methods.md) and fine-tune each seed's TSM-SL model (Bi-DFCL takes it as its teacher); DHCL and DRP "
           "train from scratch; DRP is binary only and runs on `marketing_m2`. Seeds 1 to 5 (initialisation and "
           "shuffling; the data are fixed). All methods of a seed are evaluated together on the test split: λ is set "
           "for each budget by the IPW spend on the held-out trial rows (`budget_calibration: trial`, "
           "`calibration_split: held_out`: the validation and test splits; on its own training rows a model's "
           "decisions follow the outcomes it fit, and their IPW spend is biased; `retail_trial_log` is judged on a file "
           "of 100k fresh users, calibrated on all of it) and the decisions are judged on the test rows. Regret does not "
           "depend on λ; the section \"Budgets held by the IPW or the DR spend\" repeats the evaluation with λ by the "
           "DR spend.", "",
           "**Regret** (per user, lower is better) is the oracle's true revenue at the budget minus the method's, with "
           "the method's ranking stopped where its true spend meets the budget (docs/metrics.md), from the true "
           "tables. **Paired Δ** is the method's mean regret over the budgets minus TSM-SL's on the same seed (negative "
           "= better than TSM-SL), mean ± 95% CI over seeds. **EOM vs TSM-SL** is the IPW revenue at the budgets, "
           "relative to TSM-SL. **True-spend error** is |true spend / budget − 1| of the trial-calibrated decisions, where "
           "λ reaches the budget; a budget a method cannot spend (its decisions at λ = 0 spend less: no further arm is "
           "worth its cost to it) is counted as unspendable instead.",
           "", f"Across every regime, method, seed and budget that λ reaches, the true spend of the trial-calibrated "
           f"decisions on the 20k test rows lies within {100 * worst:.2f}% of the budget (λ from the 40k held-out trial "
           "rows, 101k on the small trials, so the IPW error of that smaller trial and the test rows' own sampling "
           "both enter); deployed to 1M new users with λ from a new 200k-row trial, see \"Deployed\" below.", ""]
    # The overview.
    doc += ["## Overview: paired regret against TSM-SL (negative = the method beats the two-stage baseline)", ""]
    head = "| method | " + " | ".join(regimes) + " |"
    doc += [head, "|" + "---|" * (len(regimes) + 1)]
    for m in ORDER:
        if m not in summary or m.startswith("_"):
            continue
        cells = []
        for r in regimes:
            c = summary[m].get(r)
            cells.append("-" if c is None else f"{fmt(c[0], sign=True)} ({c[1]}/{c[2]})")
        doc.append(f"| {NAMES[m]} | " + " | ".join(cells) + " |")
    doc += ["", "(in brackets: seeds on which the method's regret is below TSM-SL's)", ""]
    reach = summary.get("_reach", {})
    if reach:
        doc += ["The lowest validation regret each method reached in any epoch of its 8 tuning trials (the choice a "
                "selector that saw the true tables would make; validation rows, not test rows):", ""]
        doc += [head, "|" + "---|" * (len(regimes) + 1)]
        for m in ORDER:
            if m not in reach:
                continue
            doc.append(f"| {NAMES[m]} | " + " | ".join("-" if reach[m].get(r) is None else f"{reach[m][r]:.4f}"
                                                       for r in regimes) + " |")
        doc.append("")
    doc += selected_section(
        out, regimes, seeds, "dr", "Selected by DR: the same tuning trials, judged by the doubly robust estimate",
        "`RULE=dr_eom launch/experiments/select.sh`: every method takes the tuning trial whose best epoch reached the "
        "highest validation DR EOM (the DR revenue at equal DR spend, outcome model per-arm ridge cross-fitted on the "
        "validation rows; docs/metrics.md §13), and its seeds keep the epoch of highest validation DR EOM; the DFCL "
        "losses fine-tune the TSM-SL model selected the same way. Test rows, calibration and evaluation as above. "
        "TSM-SL's row is its mean test regret; the others are paired Δ against it (negative = better), with the seeds on "
        "which the method is better.")
    doc += selected_section(
        out, regimes, seeds, "oracle", "Selected with the true tables: is it the method or its selection?",
        "`RULE=regret launch/experiments/select.sh`: every method takes the tuning trial whose best epoch reached the "
        "lowest validation regret, and its seeds keep the epoch of lowest validation regret (the true tables of the "
        "validation rows, which a real trial does not have); the DFCL losses fine-tune the TSM-SL model selected the "
        "same way. Test rows, calibration and evaluation as above. TSM-SL's row is its mean test regret; the others "
        "are paired Δ against it (negative = better), with the seeds on which the method is better.")
    doc += recovery_section(out, regimes, seeds)
    doc += tau_section(out, regimes)
    doc += calibration_section(out, regimes, seeds)
    doc += sections
    dep = deploy_section(out, regimes, seeds)
    doc += dep if dep else kept_section("## Deployed: the true spend of every model")
    sp = spend_section(out)
    doc += sp if sp else kept_section("## What the decisions spend: predicted against trial calibration")
    disc = os.path.join(ROOT, "launch/experiments/discussion.md")
    if os.path.exists(disc):
        doc += [open(disc).read()]
    print("\n".join(doc))


if __name__ == "__main__":
    main()
