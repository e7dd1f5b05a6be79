#!/usr/bin/python3
"""Cost model of a distributed training step (docs/performance.md,
"Distributed training"), checked against scripts/bench-mpi.sh.

    t_step(P, T) = t_task * T / (P * c)          the tasks' forward/backward
                 + t_norm(T)                     the norm, on every process
                 + alpha * (P - 1) + B(P, T) / beta   the allgather (ring)
    B(P, T)      = 4 * n_stack * T * (P - 1) / P   bytes received per process
    t_norm(T)    = flops(T) / F, the unfolding's smaller side s = min(T, n_w):
                   Gram n_w*T*s + subgradient product 2*n_w*T*s + eigen 9*s^3
                   (LAF; Tucker and TT add their non-task modes, smaller here)

Usage: scripts/mpi_cost_model.py        (prints the check and the projection)
"""

# The synthetic model of bench-mpi.sh: conv 5x5x1x8 (200 weights per task)
# and fc 288x32 (9216), both stacked.  n_w of the largest stacked layer.
N_STACK = 200 + 9216
N_W = 9216

# Fitted on this machine (2 cores, AMD EPYC, bench-mpi.sh BENCH_STEPS=60, its first
# run, with P=1 bound by Open MPI to one core: one core per process throughout):
T_TASK_CORE = 71e-6     # s per task-step on one core (STL, P=2: 0.0142 s / 200 tasks)
F_HERE = 51e9           # flop/s of the LAF norm on one core (T=400: 5.1 Gflop in 0.100 s; the P=1 run was bound to a core)
BETA_HERE = 4e9         # bytes/s between two processes of one machine (shared memory)

MEASURED = {  # (method, T): (P=1 s/step, P=2 s/step, P=1 STL s/step)
    ("laf", 200): (0.0464, 0.0440, 0.0143),
    ("laf", 400): (0.1263, 0.1174, 0.0259),
    ("tucker", 200): (0.1100, 0.1105, 0.0143),
    ("tucker", 400): (0.2560, 0.2446, 0.0259),
    ("tt", 200): (0.0925, 0.0817, 0.0143),
    ("tt", 400): (0.2024, 0.1901, 0.0259),
}


def laf_flops(T, n_w=N_W):
    s = min(T, n_w)
    return 3.0 * n_w * T * s + 9.0 * s ** 3


def step(P, T, cores, F, beta, alpha, n_stack=N_STACK):
    task = T_TASK_CORE * T / (P * cores)
    norm = laf_flops(T) / F
    comm = (alpha * (P - 1) + 4.0 * n_stack * T * (P - 1) / P / beta) if P > 1 else 0.0
    return task, norm, comm


def main():
    print("check on this machine, P = 2 (one core each); the norm's time from the P = 1 run:")
    print(f"{'method':7} {'T':>5} {'model s/step':>13} {'measured':>9} {'error':>7}")
    for (m, T), (p1, p2, stl1) in MEASURED.items():
        norm = p1 - stl1                      # the replicated norm, measured
        model = T_TASK_CORE * T / 2 + norm + 4.0 * N_STACK * T / 2 / BETA_HERE
        print(f"{m:7} {T:5d} {model:13.4f} {p2:9.4f} {100 * (model - p2) / p2:6.1f}%")
    # A cluster: 16-core nodes, one process each; the norm at 8x this
    # machine's rate; 100 Gb/s network (beta 10 GB/s, alpha 2 us).
    cores, F, beta, alpha = 16, 8 * F_HERE, 10e9, 2e-6
    print("\nprojection, LAF, 16-core nodes, 100 Gb/s (s per step: tasks + norm + communication):")
    print(f"{'nodes':>5} {'tasks':>7} {'tasks s':>9} {'norm s':>9} {'comm s':>9} {'total':>9}  bottleneck")
    for P in (8, 64):
        for T in (1000, 10000, 100000):
            task, norm, comm = step(P, T, cores, F, beta, alpha)
            parts = {"tasks": task, "norm": norm, "communication": comm}
            print(f"{P:5d} {T:7d} {task:9.4f} {norm:9.3f} {comm:9.4f} {task + norm + comm:9.3f}  "
                  f"{max(parts, key=parts.get)}")
    # What takes over: the Gram of the weight side (n_w x n_w) summed over
    # the processes' task blocks, the eigenproblem solved once (or by
    # ScaLAPACK), the subgradient of each process's own columns.
    print("\nwith the norm distributed (Gram and product split over P, n_w x n_w reduced, eigen replicated):")
    for P in (8, 64):
        for T in (10000, 100000):
            s = min(T, N_W)
            split = 3.0 * N_W * T * s / P / F
            eig = 9.0 * s ** 3 / F
            red = 2 * 8.0 * s * s / beta
            task = T_TASK_CORE * T / (P * cores)
            # ScaLAPACK pdsyevd at 50% parallel efficiency: an assumption.  Measured
            # only with 2 processes on this 2-core machine (bench/bench_eig_mpi.c,
            # n 1936, under load): about 15% against one core's dsyevd.
            eig_dist = eig / (0.5 * P)
            print(f"{P:5d} {T:7d}  tasks {task:.4f}  gram+product {split:.3f}  eigen {eig:.3f}  "
                  f"reduce {red:.3f}  total {task + split + eig + red:.3f}; "
                  f"eigen over the nodes {eig_dist:.3f}, total {task + split + eig_dist + red:.3f}")


if __name__ == "__main__":
    main()
