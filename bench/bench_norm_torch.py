#!/usr/bin/python3
"""PyTorch baseline for bench/bench_norm.c: value + subgradient of the LAF,
Tucker and TT trace norms of the Omniglot layer tensors (T = 50 tasks, random
N(0, 0.1) data), torch.linalg.matrix_norm(X, 'nuc') per unfolding with
autograd backward, 2 threads, median of reps.

    /usr/bin/python3 bench/bench_norm_torch.py [reps]

Prints "layer method seconds value" lines like build/bench/bench_norm.
"""
import statistics
import sys
import time

import torch

LAYERS = [
    ("conv1", (5, 5, 1, 8, 50)),
    ("conv2", (3, 3, 8, 12, 50)),
    ("conv3", (3, 3, 12, 16, 50)),
    ("fc1", (1936, 64, 50)),
]


def unfoldings(W, method):
    N = W.dim()
    if method == "laf":
        return [W.movedim(N - 1, 0).reshape(W.shape[N - 1], -1)]
    if method == "tucker":
        return [W.movedim(i, 0).reshape(W.shape[i], -1) for i in range(N)]
    rows = 1
    out = []
    for i in range(N - 1):
        rows *= W.shape[i]
        out.append(W.reshape(rows, -1))
    return out


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    torch.set_num_threads(2)
    torch.manual_seed(1)
    total = {"laf": 0.0, "tucker": 0.0, "tt": 0.0}
    for name, shape in LAYERS:
        W = (0.1 * torch.randn(*shape)).requires_grad_(True)
        for method in ("laf", "tucker", "tt"):
            times = []
            for r in range(reps + 1):
                W.grad = None
                t0 = time.perf_counter()
                value = sum(torch.linalg.matrix_norm(X, "nuc") for X in unfoldings(W, method))
                value.backward()
                dt = time.perf_counter() - t0
                if r > 0:
                    times.append(dt)
            med = statistics.median(times)
            total[method] += med
            print("%-6s %-7s %10.6f %.10g" % (name, method, med, value.item()), flush=True)
    for method in ("laf", "tucker", "tt"):
        print("%-6s %-7s %10.6f" % ("total", method, total[method]))


if __name__ == "__main__":
    main()
