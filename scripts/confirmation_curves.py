#!/usr/bin/env python3
"""How each confirmation of a gamma-path tune trained against the path's start.

For every from-scratch confirmation in the tune folders given (trials/M-gG/,
as opposed to the path's trials/M-gG-path/), its validation curve
(history.csv) is set against the path start's (the weakest gamma, trained
from scratch on the same fold, batches and seed) at the same steps, as the
ratio of the two (accuracy: its over the start's; RMSE: the start's over
its, so that under 1 is behind either way): the ratio at the curve's first
and second points, the lowest ratio from the third point on, and the step
where `tune`'s stop rule (cli/tune_search.c, behind_start: a ratio under
0.5 at two curve points in a row, from the first point on) stops it, or
"never", with the seconds its training took to that step (history.csv's
elapsed_s).  A confirmation that already stopped shows where it did.  Fold 0
only.

    scripts/confirmation_curves.py TUNE_DIR [TUNE_DIR ...]
"""
import csv
import os
import sys


def curve(path, column="val_metric"):
    """{step: validation metric} (or another column) of a run's history.csv,
    at the steps the validation was measured."""
    with open(path) as f:
        return {int(r["step"]): float(r[column]) for r in csv.DictReader(f) if r["val_metric"]}


def gamma_of(name):
    return float(name.rsplit("-g", 1)[1].removesuffix("-path"))


def main(dirs):
    print("| tune | confirmation | final validation | ratio at the first point | at the second "
          "| lowest from the third | stops at | s to the stop |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    for tune in dirs:
        trials = os.path.join(tune, "trials")
        try:
            names = sorted(os.listdir(trials))
            with open(os.path.join(tune, "trials.csv")) as f:
                rmse = "val_rmse" in f.readline()
        except OSError as e:
            sys.exit(f"{tune}: {e.strerror}: not a tune folder with its trials")
        for name in names:
            if name.endswith("-path") or "-g" not in name:
                continue
            method = name.rsplit("-g", 1)[0]
            starts = sorted((n for n in names if n.startswith(method + "-g") and n.endswith("-path")), key=gamma_of)
            if not starts:
                continue
            ref = curve(os.path.join(trials, starts[0], "fold0", "history.csv"))
            history = os.path.join(trials, name, "fold0", "history.csv")
            own, elapsed = curve(history), curve(history, "elapsed_s")
            ratios = [(k, own[k] / ref[k] if not rmse else ref[k] / own[k]) for k in sorted(own) if k in ref]
            if not ratios:
                continue
            stop = next((k for (_, r0), (k, r) in zip(ratios, ratios[1:]) if r0 < 0.5 and r < 0.5), None)

            def point(i):
                return f"{ratios[i][1]:.2f} (step {ratios[i][0]})" if i < len(ratios) else "-"

            rest = min((r for _, r in ratios[2:]), default=None)
            print(f"| {os.path.basename(os.path.normpath(tune))} | {method} gamma {gamma_of(name):g} "
                  f"| {own[max(own)]:.4f} | {point(0)} | {point(1)} | {'-' if rest is None else f'{rest:.2f}'} "
                  f"| {stop if stop is not None else 'never'} | {'-' if stop is None else f'{elapsed[stop]:.1f}'} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    main(sys.argv[1:])
