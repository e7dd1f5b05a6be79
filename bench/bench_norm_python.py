#!/usr/bin/python3
"""tnmtl.torch.tensor_trace_norm against PyTorch's own nuclear norms, in one
run: value + backward of the LAF, Tucker and TT norms of the four Omniglot
layer tensors (T = 50 tasks, N(0, 0.1) data, float32), 2 threads, the two
implementations interleaved rep by rep (a rep of a small tensor repeats the
call to last about 50 ms), median of reps.

    make python
    PYTHONPATH=python /usr/bin/python3 bench/bench_norm_python.py [reps]

Prints per layer and method the seconds of each and their ratio, and the
gradients' largest difference (relative to the largest entry).
"""
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_norm_torch import LAYERS, unfoldings  # noqa: E402

import tnmtl.torch  # noqa: E402


def torch_nuclear(W, method):
    return sum(torch.linalg.matrix_norm(X, "nuc") for X in unfoldings(W, method))


def timed(fn, W, method, inner):
    """Seconds per value + backward (mean of inner calls), value, gradient."""
    t0 = time.perf_counter()
    for _ in range(inner):
        W.grad = None
        value = fn(W, method)
        value.backward()
    return (time.perf_counter() - t0) / inner, value.item(), W.grad.clone()


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    torch.set_num_threads(2)
    torch.manual_seed(1)
    print("%-6s %-7s %12s %12s %8s %10s" % ("layer", "method", "torch s", "tnmtl s", "speedup", "grad diff"))
    total = {m: [0.0, 0.0] for m in ("laf", "tucker", "tt")}
    for name, shape in LAYERS:
        W = (0.1 * torch.randn(*shape)).requires_grad_(True)
        for method in ("laf", "tucker", "tt"):
            t_torch, t_ours = [], []
            # small tensors: repeat the call to time about 50 ms at a go
            inner = max(1, int(0.05 / timed(torch_nuclear, W, method, 1)[0]))
            for r in range(reps + 1):
                a = timed(torch_nuclear, W, method, inner)
                b = timed(tnmtl.torch.tensor_trace_norm, W, method, inner)
                if r > 0:
                    t_torch.append(a[0])
                    t_ours.append(b[0])
            diff = ((a[2] - b[2]).abs().max() / a[2].abs().max()).item()
            assert abs(a[1] - b[1]) <= 1e-4 * abs(a[1]), (a[1], b[1])
            mt, mo = statistics.median(t_torch), statistics.median(t_ours)
            total[method][0] += mt
            total[method][1] += mo
            print("%-6s %-7s %12.6f %12.6f %7.2fx %10.2e" % (name, method, mt, mo, mt / mo, diff), flush=True)
    for method, (mt, mo) in total.items():
        print("%-6s %-7s %12.6f %12.6f %7.2fx" % ("total", method, mt, mo, mt / mo))


if __name__ == "__main__":
    main()
