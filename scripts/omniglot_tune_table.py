#!/usr/bin/python3
"""The tuned Omniglot table of docs/results.md from scripts/omniglot-tune.sh's
output: per seed, each method's test accuracy (%) with the setting chosen on
validation, and the paired gain of each method over tuned STL; then the mean
and standard deviation over the seeds where every method is done.

    scripts/omniglot_tune_table.py [OUT_DIR]     (default runs/omniglot-tune)
"""
import json
import os
import statistics
import sys

METHODS = ["stl", "ud", "laf", "tucker", "tt"]


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
    if method == "stl":
        setting = f"{chosen['steps']} steps"
    elif method == "ud":
        setting = f"share {chosen.get('share', '?')}"
    else:
        setting = f"gamma {chosen['gamma']:.3g}"
    return 100 * d["test"]["mean_accuracy"], setting


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "runs/omniglot-tune"
    rows = {}
    for seed in range(10):
        r = {m: load(out, seed, m) for m in METHODS}
        if isinstance(r["stl"], tuple):
            rows[seed] = r
    print("| seed | " + " | ".join(m.upper() if m != "tucker" else "Tucker" for m in METHODS) +
          " | gain LAF | gain Tucker | gain TT |")
    print("|---" * (len(METHODS) + 4) + "|")
    for seed, r in rows.items():
        cells = [f"{r[m][0]:.2f} ({r[m][1]})" if isinstance(r[m], tuple) else (r[m] or "not yet") for m in METHODS]
        gains = [f"{r[m][0] - r['stl'][0]:+.2f}" if isinstance(r[m], tuple) else "" for m in ("laf", "tucker", "tt")]
        print(f"| {seed} | " + " | ".join(cells) + " | " + " | ".join(gains) + " |")
    for label, methods in (("all five methods", METHODS), ("STL, UD, LAF", ["stl", "ud", "laf"])):
        done = [r for r in rows.values() if all(isinstance(r[m], tuple) for m in methods)]
        if not done:
            continue
        parts = []
        for m in methods:
            acc = [r[m][0] for r in done]
            sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
            parts.append(f"{m} {statistics.mean(acc):.2f} +- {sd:.2f}")
        for m in methods[1:]:
            gain = [r[m][0] - r["stl"][0] for r in done]
            parts.append(f"gain {m} {statistics.mean(gain):+.2f} (min {min(gain):+.2f})")
        print(f"\nmean over the {len(done)} seeds with {label} done: " + ", ".join(parts))


if __name__ == "__main__":
    main()
