#!/usr/bin/python3
"""How fast the trace norm's subgradient moves during training, on real
checkpoints (docs/performance.md, "Tucker and TT as cheap as STL").

    scripts/norm_drift.py CK0 CK1 ... [--layer NAME]

CK0, CK1, ... are checkpoint.safetensors files of ONE run at consecutive
steps (scripts/norm-drift.sh makes them).  For the largest stacked layer
(fc1 on Omniglot: 1936 x 64 x T) and its mode-1 unfolding X (1936 x 64T:
Tucker's mode 1 and TT's first term), in double precision with numpy:
  dX/X          ||X_k - X_0||_F / ||X_k||_F: how far the weights moved;
  stale         ||Q_0 - Q_k|| / ||Q_k||: the error of reusing step 0's
                subgradient Q = U V^T (as --reg-every does);
  frozen M      ||M_0 X_k - Q_k|| / ||Q_k||, M_0 = (X_0 X_0^T)^{-1/2}: keeping
                step 0's inverse square root (the gradient of the nuclear
                norm's IRLS majoriser at X_0);
  bound         ||P P^T - I||_F / (sqrt 2 ||Q_k||) for P = M_0 X_k: a first-
                order bound on that error, cheap to estimate by probes;
  value         relative error of the majoriser (<P, X_k> + ||X_0||_*) / 2.
Singular values below 1e-6 sigma_max are dropped, as in the library.
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        if h["dtype"] == "F32":
            b, e = h["data_offsets"]
            out[name] = np.frombuffer(data[b:e], dtype="<f4").reshape(h["shape"])
    return out, meta


def mode1(path, layer):
    t, meta = read_safetensors(path)
    if layer is None:  # the largest task-specific weight [T, d_in, d_out]
        layer = max((k for k in t if k.endswith(".weight") and t[k].ndim >= 3), key=lambda k: t[k].size)
    W = t[layer].astype(np.float64)              # [T, d1, ..., dk]
    W = np.moveaxis(W, 0, -1)                    # task axis last: [d1, ..., dk, T]
    return W.reshape(W.shape[0], -1), int(meta["step"]), layer


def polar(X):
    lam, V = np.linalg.eigh(X @ X.T)
    s = np.sqrt(np.maximum(lam, 0))
    w = np.where(s > 1e-6 * s.max(), 1 / np.where(s > 0, s, 1), 0)
    M = (V * w) @ V.T
    return M @ X, M, s


def main():
    args = sys.argv[1:]
    layer = None
    if "--layer" in args:
        i = args.index("--layer")
        layer = args[i + 1]
        del args[i:i + 2]
    if len(args) < 2:
        sys.exit(__doc__)
    X0, step0, layer = mode1(args[0], layer)
    Q0, M0, s0 = polar(X0)
    print(f"{layer}: mode-1 unfolding {X0.shape[0]} x {X0.shape[1]} at step {step0}, "
          f"condition number {s0.max() / s0[s0 > 1e-6 * s0.max()].min():.0f}")
    print("| step | dX/X | stale | frozen M | bound | value |")
    print("|---:|---:|---:|---:|---:|---:|")
    for path in args[1:]:
        X, step, _ = mode1(path, layer)
        Q, _, s = polar(X)
        nq = np.linalg.norm(Q)
        P = M0 @ X
        D = P @ P.T - (M0 @ X0) @ (M0 @ X0).T  # P P^T - projector (identity when full rank)
        value = 0.5 * (np.sum(P * X) + s0.sum())
        print(f"| {step} | {np.linalg.norm(X - X0) / np.linalg.norm(X):.2e} | {np.linalg.norm(Q0 - Q) / nq:.2e} "
              f"| {np.linalg.norm(P - Q) / nq:.2e} | {np.linalg.norm(D) / np.sqrt(2) / nq:.2e} "
              f"| {abs(value - s.sum()) / s.sum():.2e} |")


if __name__ == "__main__":
    main()
