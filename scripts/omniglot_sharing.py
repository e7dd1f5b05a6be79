#!/usr/bin/python3
"""Sharing figures of finished Omniglot runs, as docs/results.md and
docs/performance.md quote them.

    scripts/omniglot_sharing.py runs/omniglot-sum/stl-seed0 runs/omniglot-sum/tucker-seed0 ...

Per run folder (written by `tnmtl train|compare --out`):
  - sigma_min / sigma_max of the fc1 tensor's mode-1 unfolding (1936 x 64*T,
    numpy SVD in double of `layer10.weight` from checkpoint.safetensors): how
    well conditioned the matrix the Tucker/TT norms decompose is;
  - for conv1 (layer 0) and fc1 (layer 10): the mean relatedness over task
    pairs and the three most related pairs (relatedness_layer<l>.csv).
Needs numpy (Debian's python3-numpy).
"""
import csv
import json
import struct
import sys

import numpy as np


def fc1_conditioning(run):
    with open(run + "/checkpoint.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    t = header["layer10.weight"]  # [T, 1936, 64], float32
    a, b = t["data_offsets"]
    W = np.frombuffer(data[a:b], dtype=np.float32).reshape(t["shape"]).astype(np.float64)
    X = W.transpose(1, 2, 0).reshape(W.shape[1], -1)  # mode 1 of the (1936, 64, T) tensor
    s = np.linalg.svd(X, compute_uv=False)
    return s[-1] / s[0]


def relatedness(run, layer):
    with open("%s/relatedness_layer%d.csv" % (run, layer)) as f:
        rows = list(csv.reader(f))
    names = rows[0][1:]
    R = np.array([[float(x) for x in r[1:]] for r in rows[1:]])
    iu = np.triu_indices(len(names), 1)
    vals = R[iu]
    top = np.argsort(-vals)[:3]
    pairs = ", ".join("%s ~ %s %.2f" % (names[iu[0][k]], names[iu[1][k]], vals[k]) for k in top)
    return vals.mean(), pairs


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for run in sys.argv[1:]:
        print("%s: fc1 mode-1 sigma_min/sigma_max %.2g" % (run, fc1_conditioning(run)))
        for layer in (0, 10):
            mean, pairs = relatedness(run, layer)
            print("  layer %d relatedness: mean %.3f; most related %s" % (layer, mean, pairs))


if __name__ == "__main__":
    main()
