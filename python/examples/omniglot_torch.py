#!/usr/bin/python3
"""Per-task PyTorch CNNs on Omniglot, trained with tnmtl's trace-norm regulariser.

One task per alphabet, one CNN per task (the paper's network: conv 8x5,
pool, conv 12x3, pool, conv 16x3, pool, fc 64, a task-specific output
layer), 2 training drawings per character as in the paper, the other 18 for
testing.  tnmtl.torch.TraceNormRegulariser stacks each shareable layer of the
T networks into the paper's (kh, kw, in, out, T) / (in, out, T) tensor and adds
gamma times its tensor trace norm to the summed task losses; --method stl
trains the same networks without it.

    make python
    PYTHONPATH=python /usr/bin/python3 python/examples/omniglot_torch.py
    PYTHONPATH=python /usr/bin/python3 python/examples/omniglot_torch.py --method stl
    ... --alphabets 10 --steps 400 --method tt --gamma 0.01

Defaults: 5 alphabets, images averaged down to 35 x 35, 60 full-batch Adam
steps (a smoke run: about 45 s of CPU on 2 cores).  Data: ../shared/data/omniglot (the
numpy .npz pair with alphabet_ranges.tsv), or --data PATH.
"""
import argparse
import os
import time

import numpy as np
import torch

import tnmtl.torch

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "..", "shared", "data", "omniglot")


def load_omniglot(path, n_alphabets, factor):
    """[(images (n, 1, S, S) float32 with ink = 1, labels (n,), name)] per alphabet."""
    sets = {}
    tasks = []
    with open(os.path.join(path, "alphabet_ranges.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if not line.startswith("#")]
    for set_name, alphabet, first, last, _ in rows[:n_alphabets]:
        if set_name not in sets:
            sets[set_name] = np.load(os.path.join(path, "images_%s.npz" % set_name))["images"]
        offset = 1 if set_name == "background" else 965
        img = sets[set_name][int(first) - offset:int(last) - offset + 1]  # (chars, 20, 105, 105), 0 = ink
        chars = img.shape[0]
        ink = 1.0 - img.astype(np.float32)
        side = 105 // factor
        ink = ink.reshape(chars, 20, side, factor, side, factor).mean(axis=(3, 5))
        labels = np.repeat(np.arange(chars), 20)
        tasks.append((ink.reshape(chars * 20, 1, side, side), labels, alphabet))
    return tasks


def split(labels, rng, per_class=2):
    """Indices of per_class training drawings per character; the rest test."""
    train = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        train[rng.choice(idx, per_class, replace=False)] = True
    return np.flatnonzero(train), np.flatnonzero(~train)


class TaskNet(torch.nn.Module):
    def __init__(self, side, n_classes):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 5)
        self.conv2 = torch.nn.Conv2d(8, 12, 3)
        self.conv3 = torch.nn.Conv2d(12, 16, 3)
        s = ((((side - 4) // 2) - 2) // 2 - 2) // 2
        self.fc1 = torch.nn.Linear(16 * s * s, 64)
        self.out = torch.nn.Linear(64, n_classes)

    def forward(self, x):
        pool = torch.nn.functional.max_pool2d
        x = pool(torch.tanh(self.conv1(x)), 2)
        x = pool(torch.tanh(self.conv2(x)), 2)
        x = pool(torch.tanh(self.conv3(x)), 2)
        return self.out(torch.tanh(self.fc1(x.flatten(1))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--alphabets", type=int, default=5)
    ap.add_argument("--factor", type=int, default=3, help="average f x f pixel blocks (105 / f side)")
    ap.add_argument("--method", default="tucker", choices=["stl", "laf", "tucker", "tt"])
    ap.add_argument("--gamma", type=float, default=0.01)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    tasks = load_omniglot(args.data, args.alphabets, args.factor)
    side = tasks[0][0].shape[-1]
    data = []
    for x, y, name in tasks:
        tr, te = split(y, rng)
        data.append((torch.from_numpy(x[tr]), torch.from_numpy(y[tr]), torch.from_numpy(x[te]), torch.from_numpy(y[te])))
    models = [TaskNet(side, int(y.max()) + 1) for _, y, _ in tasks]
    reg = None if args.method == "stl" else tnmtl.torch.TraceNormRegulariser(models, args.method, args.gamma)
    params = [p for m in models for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=args.lr)
    print("%d tasks (%s), %dx%d images, method %s, regularised layers: %s"
          % (len(tasks), ", ".join(n for _, _, n in tasks), side, side, args.method, reg.layers if reg else "none"))
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        opt.zero_grad()
        loss = sum(torch.nn.functional.cross_entropy(m(xtr), ytr) for m, (xtr, ytr, _, _) in zip(models, data))
        penalty = reg() if reg else torch.zeros(())
        (loss + penalty).backward()
        opt.step()
        if step % max(1, args.steps // 5) == 0 or step == args.steps:
            print("step %4d  task losses %.4f  penalty %.4f  %.1f s" % (step, loss.item(), penalty.item(),
                                                                         time.perf_counter() - t0), flush=True)
    with torch.no_grad():
        acc = [(m(xte).argmax(1) == yte).float().mean().item() for m, (_, _, xte, yte) in zip(models, data)]
    print("test accuracy per task: %s" % " ".join("%.3f" % a for a in acc))
    print("mean test accuracy: %.2f%%" % (100 * np.mean(acc)))
    if reg:
        for name in reg.layers:
            W = reg.stacked(name).detach().numpy()
            X = np.moveaxis(W, -1, 0).reshape(W.shape[-1], -1)
            s = np.linalg.svd(X, compute_uv=False)
            p = s / s.sum()
            print("%-14s %-20s task-mode effective rank %.2f / %d" % (name, tuple(W.shape), np.exp(-(p * np.log(p + 1e-300)).sum()), W.shape[-1]))


if __name__ == "__main__":
    main()
