#!/usr/bin/env python3
"""How each confirmation of a gamma-path tune trained against the path's start.

For every from-scratch confirmation in the tune folders given (trials/M-gG/,
as opposed to the path's trials/M-gG-path/; STL's weight decays: stl-wdW), its validation curve
(history.csv) is set against the path start's (the weakest gamma, trained
from scratch on the same fold, batches and seed) at the same steps, as the
ratio of the two (accuracy: its over the start's; RMSE: the start's over
its, so that under 1 is behind either way): the ratio at the curve's first
and second points, the lowest ratio from the third point on, and the step
where `tune`'s stop rule (cli/tune_search.c, behind_start: a ratio under
0.5 at three curve points in a row, from the first point on; two before
2026-12-06) stops it, or
"never", with the seconds its training took to that step (history.csv's
elapsed_s).  A confirmation that already stopped shows where it did.  Fold 0
only.

    scripts/confirmation_curves.py TUNE_DIR [TUNE_DIR ...]
"""
import csv
import os
import re
import sys

BEHIND_POINTS = 3  # cli/tune_search.c


def curve(path, column="val_metric"):
    """{step: validation metric} (or another column) of a run's history.csv,
    at the steps the validation was measured."""
    with open(path) as f:
        return {int(r["step"]): float(r[column]) for r in csv.DictReader(f) if r["val_metric"]}


def parse(name):
    """A trial folder's (method, strength, on the path): "tt-g0.316-path" ->
    ("tt", 0.316, True), "stl-wd1" -> ("stl", 1.0, False); None for others."""
    m = re.fullmatch(r"(.+?)-(?:g|wd)([0-9.e+-]+?)(-path)?", name)
    return (m.group(1), float(m.group(2)), bool(m.group(3))) if m else None


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
        parsed = {name: parse(name) for name in names}
        # the path's start per method: its weakest strength's "-path" trial
        starts = {}
        for name, trial in sorted((kv for kv in parsed.items() if kv[1] and kv[1][2]), key=lambda kv: kv[1][1]):
            starts.setdefault(trial[0], name)
        for name in names:
            trial = parsed[name]
            if trial is None or trial[2] or trial[0] not in starts:
                continue
            method, strength = trial[0], trial[1]
            ref = curve(os.path.join(trials, starts[method], "fold0", "history.csv"))
            history = os.path.join(trials, name, "fold0", "history.csv")
            own, elapsed = curve(history), curve(history, "elapsed_s")
            ratios = [(k, own[k] / ref[k] if not rmse else ref[k] / own[k]) for k in sorted(own) if k in ref]
            if not ratios:
                continue
            stop = next((ratios[i][0] for i in range(BEHIND_POINTS - 1, len(ratios))
                         if all(r < 0.5 for _, r in ratios[i - BEHIND_POINTS + 1:i + 1])), None)

            def point(i):
                return f"{ratios[i][1]:.2f} (step {ratios[i][0]})" if i < len(ratios) else "-"

            rest = min((r for _, r in ratios[2:]), default=None)
            what = "weight decay" if method == "stl" else "gamma"
            print(f"| {os.path.basename(os.path.normpath(tune))} | {method} {what} {strength:g} "
                  f"| {own[max(own)]:.4f} | {point(0)} | {point(1)} | {'-' if rest is None else f'{rest:.2f}'} "
                  f"| {stop if stop is not None else 'never'} | {'-' if stop is None else f'{elapsed[stop]:.1f}'} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    main(sys.argv[1:])
