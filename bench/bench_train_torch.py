#!/usr/bin/python3
"""PyTorch counterpart of bench/bench_train.c: one full-batch training step of
the paper's Omniglot model and tnmtl's objective, written the way a PyTorch
user would write it.

    /usr/bin/python3 bench/bench_train_torch.py [--method stl|laf|tucker|tt]
                                                [--steps N] [--data DIR]

Data: the same images as bench_train.c: Omniglot from DIR (default
../shared/data/omniglot; images.npy |b1 with 0 = ink, mapped to ink = 1.0,
background = 0.0 as tnmtl scales its pixels), all 50 alphabets in
alphabet_ranges.tsv order, drawings 0 and 1 of every character for training
(3246 images at 105x105), kept as float tensors (NCHW) for the whole run.

Model: per-task parameters in PyTorch's layouts (conv [C_out][C_in][kh][kw],
fc [D_out][D_in]); conv8@5x5 valid, tanh, maxpool2, conv12@3x3, tanh, pool2,
conv16@3x3, tanh, pool2, fc64, tanh, fc(characters of the alphabet);
F.conv2d / F.max_pool2d / torch.tanh / F.linear.
Objective (tnmtl's, include/tnmtl/mtl.h): mean over tasks of each task's
mean cross-entropy + gamma * the norms of the four stacked weight tensors in
tnmtl's layout (conv H x W x C_in x C_out x T, fc D_in x D_out x T), each
unfolding's nuclear norm by torch.linalg.matrix_norm(X, 'nuc') with autograd.
Adam (lr 1e-3), torch.set_num_threads(2).

One step = zero_grad, objective, backward, Adam step.  After one warm-up
step, each timed step is followed by the regulariser alone (value +
backward).  Prints "torch METHOD KEY VALUE" lines like bench_train.c:
step and reg (seconds), step_cpu and reg_cpu (CPU seconds of the process,
all threads), one each per timed step; loss, reg_value, maxrss_mb.
"""
import argparse
import os
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench_norm_torch import unfoldings   # the same unfoldings as the norm benchmark

DRAWINGS_TRAIN = 2


def load_omniglot(path):
    """[(x [n,1,105,105] float32, y [n] int64, n_classes)] per alphabet."""
    sets = {}
    for name, row0 in (("background", 1), ("evaluation", 965)):
        with np.load(os.path.join(path, "images_%s.npz" % name)) as z:
            sets[name] = (z["images"][:, :DRAWINGS_TRAIN].copy(), row0)
    tasks = []
    with open(os.path.join(path, "alphabet_ranges.tsv")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            s, _, first, last, _ = line.rstrip("\n").split("\t")
            images, row0 = sets[s]
            rows = images[int(first) - row0:int(last) - row0 + 1]      # (chars, 2, 105, 105), 0 = ink
            k = rows.shape[0]
            x = torch.from_numpy((~rows).astype(np.float32).reshape(k * DRAWINGS_TRAIN, 1, 105, 105))
            y = torch.arange(k).repeat_interleave(DRAWINGS_TRAIN)
            tasks.append((x, y, k))
    return tasks


def glorot(*shape, fan_in, fan_out):
    a = (6.0 / (fan_in + fan_out)) ** 0.5
    return (torch.rand(*shape) * 2 - 1) * a


def make_params(n_classes):
    """Per-task parameters in PyTorch layouts."""
    p = []
    for k in n_classes:
        p.append({
            "c1": glorot(8, 1, 5, 5, fan_in=25, fan_out=200).requires_grad_(),
            "b1": torch.zeros(8, requires_grad=True),
            "c2": glorot(12, 8, 3, 3, fan_in=72, fan_out=108).requires_grad_(),
            "b2": torch.zeros(12, requires_grad=True),
            "c3": glorot(16, 12, 3, 3, fan_in=108, fan_out=144).requires_grad_(),
            "b3": torch.zeros(16, requires_grad=True),
            "f1": glorot(64, 1936, fan_in=1936, fan_out=64).requires_grad_(),
            "bf1": torch.zeros(64, requires_grad=True),
            "f2": glorot(k, 64, fan_in=64, fan_out=k).requires_grad_(),
            "bf2": torch.zeros(k, requires_grad=True),
        })
    return p


def forward(p, x):
    h = F.max_pool2d(torch.tanh(F.conv2d(x, p["c1"], p["b1"])), 2)
    h = F.max_pool2d(torch.tanh(F.conv2d(h, p["c2"], p["b2"])), 2)
    h = F.max_pool2d(torch.tanh(F.conv2d(h, p["c3"], p["b3"])), 2)
    h = torch.tanh(F.linear(h.flatten(1), p["f1"], p["bf1"]))
    return F.linear(h, p["f2"], p["bf2"])


def stacked(params):
    """The four shareable layers stacked in tnmtl's layout, task axis last."""
    out = [torch.stack([p[c].permute(2, 3, 1, 0) for p in params], dim=-1) for c in ("c1", "c2", "c3")]
    out.append(torch.stack([p["f1"].t() for p in params], dim=-1))
    return out


def regulariser(params, method, gamma):
    return gamma * sum(torch.linalg.matrix_norm(X, "nuc") for W in stacked(params) for X in unfoldings(W, method))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="stl", choices=("stl", "laf", "tucker", "tt"))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--data", default="../shared/data/omniglot")
    ap.add_argument("--gamma", type=float, default=0.01)
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(1)
    tasks = load_omniglot(a.data)
    params = make_params([k for _, _, k in tasks])
    opt = torch.optim.Adam([v for p in params for v in p.values()], lr=1e-3)
    T = len(tasks)

    for r in range(-1, a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = sum(F.cross_entropy(forward(p, x), y) for p, (x, y, _) in zip(params, tasks)) / T
        reg = regulariser(params, a.method, a.gamma) if a.method != "stl" else torch.zeros(())
        (loss + reg).backward()
        opt.step()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        if a.method != "stl":
            opt.zero_grad(set_to_none=True)
            regulariser(params, a.method, a.gamma).backward()
        dr, dcr = time.perf_counter() - t0, time.process_time() - c0
        if r >= 0:
            print("torch %s step %.6f" % (a.method, dt))
            print("torch %s reg %.6f" % (a.method, dr))
            print("torch %s step_cpu %.6f" % (a.method, dc))
            print("torch %s reg_cpu %.6f" % (a.method, dcr), flush=True)
    print("torch %s loss %.6f" % (a.method, loss.item()))
    print("torch %s reg_value %.6f" % (a.method, reg.item()))
    print("torch %s maxrss_mb %.1f" % (a.method, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))


if __name__ == "__main__":
    main()
