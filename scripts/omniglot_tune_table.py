#!/usr/bin/python3
"""The tuned Omniglot table of docs/results.md from scripts/omniglot-tune.sh's
output: per seed, each method's test accuracy (%) with the setting chosen on
validation, and the paired gain of each method over tuned STL; then the mean
and standard deviation over the seeds where every method is done (and over
those where STL and the three norms are; STL, UD and LAF; STL and LAF; STL and
UD; each only where it covers other seeds than a wider group printed before
it).  OUT_DIR may be a folder of results/ (scripts/keep-tune-results.sh): the
summaries suffice.

    scripts/omniglot_tune_table.py [OUT_DIR ...]      (default runs/omniglot-tune)
    scripts/omniglot_tune_table.py --each OUT_DIR OUT_DIR ...
    scripts/omniglot_tune_table.py --cost [OUT_DIR]
    scripts/omniglot_tune_table.py --searches [OUT_DIR]
    scripts/omniglot_tune_table.py --stl-searches [OUT_DIR]
    scripts/omniglot_tune_table.py --stl STL_DIR ... -- OUT_DIR ...

With several OUT_DIRs (the same experiment run with other training settings,
e.g. `BATCH=0 scripts/omniglot-tune.sh` for the full batch), each seed and
method takes the tune whose choice validates best: the setting is chosen on
validation too, never on test.  A cell waits until every directory has it.

--each prints instead, per seed and method, every directory's tune side by side
(its setting, validation and test accuracy), the one validation chooses marked
with *, so that the choice between the directories can be checked.

--cost prints instead the search cost of each finished LAF, Tucker and TT tune
(docs/performance.md "Tuning cost"): the seconds of all its evaluations (the
sum of trials.csv's seconds, which is search_seconds when the tune ran in one
go) against one training run of the method, which is a from-scratch run of
--steps inside the same search (the weakest gamma, the path's start, and the
chosen gamma's confirmation), so both are timed under the same load; and the
steps trained, in units of --steps.

--searches prints instead how each finished LAF, Tucker and TT gamma-path search
came to its choice (the "Full batch" table of docs/results.md): the path's two
best gammas (validation % on the path), the confirmations from scratch in the
order the search made them (a stopped one with the step it stopped at, a
confirmation under the path's next with that value), the choice's validation /
test %, its gain over the STL tune of the same OUT_DIR, the steps trained and
the search's seconds over the mean of its two runs from scratch.
--stl-searches prints the same for STL's weight-decay searches (tunes from
2026-12-06 on; STL's earlier tunes searched its steps, on one path), gain "-".

--stl DIR ... --: STL's tunes from these folders instead (one per OUT_DIR, in
the same order), the norms' from the OUT_DIRs: the weight-decay STL tunes kept
apart from the step-tuned ones while they are made (results/README.md).
"""
import csv
import json
import os
import statistics
import sys

METHODS = ["stl", "ud", "laf", "tucker", "tt"]


def signed(gain):
    """A gain in points with its sign, +0.00 for one that rounds to zero (not -0.00)."""
    return f"{round(gain, 2) + 0.0:+.2f}"


def load(out, seed, method):
    path = os.path.join(out, f"seed{seed}-{method}.json")
    try:
        with open(path) as f:
            d = json.load(f)
    except OSError:
        return None  # not started
    except ValueError:
        return "running"  # started: its JSON comes at the end
    chosen = d["chosen"]
    if method == "stl" and "weight_decay" in chosen:
        setting = f"wd {chosen['weight_decay']:.3g}"
    elif method.startswith("stl"):  # the step-tuned STL of tunes before 2026-12-06
        setting = f"{chosen['steps']} steps"
    elif method == "ud":
        setting = f"share {chosen.get('share', '?')}"
    else:
        setting = f"gamma {chosen['gamma']:.3g}"
    if method != "stl" and chosen.get("weight_decay"):  # a fixed weight decay under the searched setting
        setting += f", wd {chosen['weight_decay']:.3g}"
    return 100 * d["test"]["mean_accuracy"], setting, chosen["val_accuracy"], batch_label(out, seed, method)


def batch_label(out, seed, method):
    """The tune's training batch, from its tune.json: "full batch" or "batch N"."""
    try:
        with open(os.path.join(out, f"seed{seed}-{method}", "tune.json")) as f:
            batch = json.load(f)["options"]["batch"]
    except (OSError, ValueError, KeyError):
        return "?"
    return "full batch" if batch == 0 else f"batch {batch}"


def validation_best(results):
    """Index of the finished tune that validates best (ties: the first): the
    choice between directories, on validation accuracy only."""
    return max(range(len(results)), key=lambda i: results[i][2])


def load_chosen(outs, seed, method):
    """load() of the directory whose tune validates best; with one directory
    its own; a missing or running tune in any directory wins (not done)."""
    results = [load(out, seed, method) for out in outs]
    for r in results:
        if not isinstance(r, tuple):
            return r
    best = results[validation_best(results)]
    if len(outs) > 1:
        return best[0], f"{best[1]}, {best[3]}"
    return best[0], best[1]


def finished_tune(out, seed, method):
    """(the tune's JSON, its trials.csv rows), or None while it is not finished."""
    try:
        with open(os.path.join(out, f"seed{seed}-{method}.json")) as f:
            d = json.load(f)
        with open(os.path.join(out, f"seed{seed}-{method}", "trials.csv")) as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError):
        return None
    return (d, rows) if "test" in d and rows else None


def strength(r):
    """A trials.csv row's searched strength: its gamma, or STL's weight decay."""
    return r["gamma"] or r.get("weight_decay", "")


def path_and_confirmations(rows):
    """trials.csv's rows split into the path (each strength's first row, whose
    steps are the path's total so far) and the confirmations (the same gamma
    or weight decay again, trained from scratch)."""
    path, confirmations = [], []
    for r in rows:
        (confirmations if any(strength(p) == strength(r) for p in path) else path).append(r)
    return path, confirmations


def search_cost(rows):
    """(search s, weakest-gamma run s, chosen run s, steps trained / S, evaluations)
    of a finished tune's trials.csv rows."""
    S = int(rows[0]["steps"])  # the path's start: the weakest gamma, from scratch
    path, confirmations = path_and_confirmations(rows)
    trained = int(path[-1]["steps"]) + sum(int(r["steps"]) for r in confirmations)
    chosen = [float(r["seconds"]) for r in rows if r["chosen"] == "1" and int(r["steps"]) == S]
    return (sum(float(r["seconds"]) for r in rows), float(rows[0]["seconds"]), chosen[0] if chosen else float("nan"),
            trained / S, len(rows))


def cost_table(out):
    print("| tune | search s | run s, weakest gamma | run s, chosen gamma | search / mean run | "
          "search / chosen run | steps trained | evaluations |")
    print("|---" * 8 + "|")
    for method in ("stl", "laf", "tucker", "tt"):
        for seed in range(10):
            tune = finished_tune(out, seed, method)
            if tune is None or not path_search(tune[1]):
                continue
            search, weak, chosen, trained, evals = search_cost(tune[1])
            mean = (weak + chosen) / 2
            print(f"| {method} seed {seed} | {search:.0f} | {weak:.0f} | {chosen:.0f} | {search / mean:.2f}x | "
                  f"{search / chosen:.2f}x | {trained:.2f} S | {evals} |")


def path_search(rows):
    """The tune searched a gamma path (STL: a weight-decay path, from 2026-12-06)."""
    return bool(rows) and strength(rows[0]) != ""


def gamma_label(g):
    return f"{float(g):.3g}"


def search_row(out, seed, method):
    """One row of the --searches table, or None while the tune is not finished."""
    tune = finished_tune(out, seed, method)
    if tune is None or not path_search(tune[1]):
        return None
    d, rows = tune
    S = int(rows[0]["steps"])
    path, confirmations = path_and_confirmations(rows)
    ranked = sorted(path, key=lambda r: -float(r["val_accuracy_pct"]))  # stable: ties to the earlier
    order = [strength(p) for p in ranked]
    conf = []
    for r in sorted(confirmations, key=lambda r: order.index(strength(r))):  # the search confirms in path order
        g, val = strength(r), float(r["val_accuracy_pct"])
        if int(r["steps"]) < S:
            conf.append(f"{gamma_label(g)}: stopped at {r['steps']} ({val:.2f})")
            continue
        text = f"{gamma_label(g)}: {val:.2f}"
        rank = order.index(g)
        if rank + 1 < len(ranked):
            nxt = ranked[rank + 1]
            if val < float(nxt["val_accuracy_pct"]):
                text += f", under {gamma_label(strength(nxt))}'s {float(nxt['val_accuracy_pct']):.2f} on the path"
        conf.append(text)
    chosen = d["chosen"]
    test = 100 * d["test"]["mean_accuracy"]
    stl = load(out, seed, "stl")
    gain = "-" if method == "stl" else signed(test - stl[0]) if isinstance(stl, tuple) else "?"
    search, weak, chosen_s, trained, _ = search_cost(rows)
    first_two = ", ".join(f"{gamma_label(strength(r))} ({float(r['val_accuracy_pct']):.2f})" for r in ranked[:2])
    setting = chosen["gamma"] if "gamma" in chosen else chosen["weight_decay"]
    return (f"| {'Tucker' if method == 'tucker' else method.upper()} seed {seed} | {first_two} | {'; '.join(conf)} | "
            f"{gamma_label(setting)}: {100 * chosen['val_accuracy']:.2f} / {test:.2f} | {gain} | "
            f"{trained:.2f} S, {search / ((weak + chosen_s) / 2):.2f}x |")


def searches_table(out, methods=("laf", "tucker", "tt")):
    print("| tune | path's first two (validation % on the path) | confirmations | choice: validation / test % | "
          "gain | steps, search / mean run |")
    print("|---|---|---|---|---:|---|")
    for seed in range(10):
        for method in methods:
            row = search_row(out, seed, method)
            if row:
                print(row)


def each_table(outs):
    print("| seed | method | " + " | ".join(f"{os.path.basename(os.path.normpath(o))}: setting, validation / test %"
                                           for o in outs) + " |")
    print("|---" * (len(outs) + 2) + "|")
    for seed in range(10):
        for m in METHODS:
            results = [load(out, seed, m) for out in outs]
            if not all(isinstance(r, tuple) for r in results):
                continue  # not every directory has it yet
            best = validation_best(results)
            cells = [f"{'*' if i == best else ''}{r[1]}, {100 * r[2]:.2f} / {r[0]:.2f}" for i, r in enumerate(results)]
            print(f"| {seed} | {m} | " + " | ".join(cells) + " |")


# The groups of methods whose means are taken over the seeds where all are done
# (a group is left out where a wider one above it covers the same seeds).
GROUPS = (("all five methods", METHODS), ("STL and the three norms", ["stl", "laf", "tucker", "tt"]),
          ("STL, UD, LAF", ["stl", "ud", "laf"]), ("STL and LAF", ["stl", "laf"]), ("STL and UD", ["stl", "ud"]))


def seed_rows(outs, stl_outs=None):
    """{seed: {method: (test %, setting) or "running" or None}} for the seeds whose STL is done
    (STL's from stl_outs when given)."""
    rows = {}
    for seed in range(10):
        r = {m: load_chosen(stl_outs if m == "stl" and stl_outs else outs, seed, m) for m in METHODS}
        if isinstance(r["stl"], tuple):
            rows[seed] = r
    return rows


def group_stats(rows, methods):
    """Over the seeds where every one of methods is done: those seeds, each
    method's mean and standard deviation of test %, and each method's mean and
    least paired gain over STL; None where no seed is."""
    done = {seed: r for seed, r in rows.items() if all(isinstance(r[m], tuple) for m in methods)}
    if not done:
        return None
    acc = {m: [r[m][0] for r in done.values()] for m in methods}
    gain = {m: [r[m][0] - r["stl"][0] for r in done.values()] for m in methods}
    return {"seeds": sorted(done), "mean": {m: statistics.mean(a) for m, a in acc.items()},
            "sd": {m: statistics.stdev(a) if len(a) > 1 else 0.0 for m, a in acc.items()},
            "gain": {m: statistics.mean(g) for m, g in gain.items()},
            "min_gain": {m: min(g) for m, g in gain.items()}}


def chosen_table(outs, stl_outs=None):
    """Per seed, each method's chosen tune (over the folders given, the one
    that validates best): test % and setting, the norms' gains over STL;
    then, for each group of methods, the means over the seeds where all of
    them are done, as a list."""
    rows = seed_rows(outs, stl_outs)
    print("| seed | " + " | ".join(m.upper() if m != "tucker" else "Tucker" for m in METHODS) +
          " | gain LAF | gain Tucker | gain TT |")
    print("|---" * (len(METHODS) + 4) + "|")
    for seed, r in rows.items():
        cells = [f"{r[m][0]:.2f} ({r[m][1]})" if isinstance(r[m], tuple) else (r[m] or "not yet") for m in METHODS]
        gains = [signed(r[m][0] - r['stl'][0]) if isinstance(r[m], tuple) else "" for m in ("laf", "tucker", "tt")]
        print(f"| {seed} | " + " | ".join(cells) + " | " + " | ".join(gains) + " |")
    means, printed = [], []
    for label, methods in GROUPS:
        g = group_stats(rows, methods)
        if g is None or any(set(methods) <= set(wider) and g["seeds"] == seeds for wider, seeds in printed):
            continue
        printed.append((methods, g["seeds"]))
        parts = [f"{m} {g['mean'][m]:.2f} +- {g['sd'][m]:.2f}" for m in methods]
        parts += [f"gain {m} {signed(g['gain'][m])} (min {signed(g['min_gain'][m])})" for m in methods[1:]]
        n = len(g['seeds'])
        means.append(f"- mean over the {n} seed{'s' if n > 1 else ''} with {label} done: " + ", ".join(parts))
    if means:
        print("\n" + "\n".join(means))


def main():
    args = sys.argv[1:]
    if args and args[0] == "--each":
        each_table(args[1:])
        return
    if args and args[0] == "--searches":
        searches_table(args[1] if len(args) > 1 else "runs/omniglot-tune")
        return
    if args and args[0] == "--stl-searches":
        searches_table(args[1] if len(args) > 1 else "runs/omniglot-tune", ("stl",))
        return
    if args and args[0] == "--cost":
        cost_table(args[1] if len(args) > 1 else "runs/omniglot-tune")
        return
    stl_outs = None
    if args and args[0] == "--stl":
        end = args.index("--")
        stl_outs, args = args[1:end], args[end + 1:]
        if len(stl_outs) != len(args):
            sys.exit("--stl: one STL folder per OUT_DIR")
    chosen_table(args or ["runs/omniglot-tune"], stl_outs)


if __name__ == "__main__":
    main()
