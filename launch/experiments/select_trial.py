#!/usr/bin/env python3
"""The tuning trial whose best epoch is best by a selection rule, as a config layer (launch/experiments/select.sh).

    select_trial.py RULE TUNE_DIR OUT.yaml

RULE: regret (lowest validation regret from the true tables; an epoch with a negative regret, from runs before such
decisions were charged the whole lift, is no candidate), dr_eom (highest DR revenue at equal DR spend, never an epoch
whose DR spend overspends when another does not), eom (the same by IPW). Every epoch of every trial counts: their
metrics.jsonl hold all three numbers, whatever the trial was selected on while it ran.
"""
import json
import os
import sys


def candidates(rec, rule):
    """(meets, value) of one validated epoch, higher is better; None when the epoch has no such number."""
    v = rec.get("validation")
    if not v:
        return None
    if rule == "regret":
        x = v.get("regret_mean")
        if x is None or any(e.get("regret", 0) < -1e-6 for e in v.get("eom", [])):
            return None
        return (True, -x)
    if rule == "dr_eom":
        d = v.get("dr")
        if not d or d.get("eom_mean") is None:
            return None
        return (d.get("meets_budgets", True), d["eom_mean"] if d.get("meets_budgets", True) else -d.get("overspend", 0))
    x = v.get("eom_mean")
    if x is None:
        return None
    return (v.get("meets_budgets", True), x if v.get("meets_budgets", True) else -v.get("overspend", 0))


def main():
    rule, d, out = sys.argv[1], sys.argv[2], sys.argv[3]
    trials = json.load(open(os.path.join(d, "tune.json")))["trials"]
    best = None
    for t in trials:
        p = os.path.join(t["dir"], "metrics.jsonl")
        if not os.path.exists(p):
            continue
        for line in open(p):
            c = candidates(json.loads(line), rule)
            if c is not None and (best is None or c > best[0]):
                best = (c, t)
    if best is None:
        sys.exit(f"select_trial.py: no epoch of the trials in {d} has a {rule} value")
    lines = [f"# {rule} selection: trial {best[1]['trial']} reached {best[0][1]:.6f}"]
    sections = {}
    for o in best[1]["overrides"]:
        k, v = o.split("=", 1)
        section, key = k.split(".", 1)
        sections.setdefault(section, []).append(f"  {key}: {v}")
    for section, keys in sections.items():
        lines.append(f"{section}:")
        lines += keys
    open(out, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
