/* bench_eig_mpi.c - the n x n eigenproblem of a trace norm on P MPI
 * processes: solved by every process (what tnmtl does), solved once and
 * broadcast, or solved by ScaLAPACK's pdsyevd over the processes (issue 18;
 * docs/performance.md, "Eigensolver: replicated, broadcast or ScaLAPACK").
 *
 *   make bench-eig-mpi                  (needs Debian libscalapack-openmpi-dev)
 *   mpirun -np P build-mpi/bench/bench_eig_mpi [-n N] [-m M] [-nb NB] [-reps R]
 *   scripts/bench-eig-mpi.sh            (P = 1 and 2, several n)
 *
 * The problem: G = A A^T [n][n], A [n][m] N(0, 1) (tnmtl_rng, seed 1), the
 * Gram matrix tnmtl forms of an unfolding's smaller side (Omniglot's fc1:
 * n 1936, m 3200; by default m = round(n * 3200 / 1936), the same shape).
 * Every process holds G, as every process of a distributed run holds the
 * gathered weights and forms the same Gram.  Each variant starts from G on
 * every process and ends with the eigenpairs (w [n], U [n][n], column j the
 * eigenvector of w[j]) on every process, and then with the spectral matrix
 * M = U diag(f(w)) U^T [n][n] that tnmtl forms next (tnmtl_la_spectral_apply:
 * dsyrk of U diag(sqrt f)); f = w here, so that M = G is a check:
 *   replicated  every process: copy G, LAPACKE_dsyevd('V', 'L') as
 *               tnmtl_la_syev calls it; dsyrk
 *   bcast       process 0: copy G, dsyevd; MPI_Bcast of w and U (n + n^2
 *               doubles); dsyrk on every process
 *   scalapack   pdsyevd on a block-cyclic grid (NB x NB blocks; the grid as
 *               square as P allows, row-major): each process copies its
 *               blocks out of its G (no communication: G is replicated),
 *               pdsyevd, then either
 *                 gather: U to every process (MPI_Allgatherv of the local
 *                         pieces, unpacked), dsyrk on every process; or
 *                 pdsyrk: M formed distributed (pdsyrk, the same
 *                         product as tnmtl's dsyrk), only M gathered.
 * Stages are separated by barriers; a stage's time is the slowest
 * process's, a variant's total the sum of its stages.  R rounds, the
 * variants' order rotating each round.  The first round (replicated first)
 * also checks every variant after timing it (the exit status is 1 when an
 * error exceeds 1e-8 of the largest eigenvalue): eigenvalues against the
 * replicated ones, U diag(w) U^T - G on every process, M - G.  Every buffer
 * is allocated and touched before (LAPACKE_dsyevd allocates its workspace
 * per call, as in tnmtl; pdsyevd's is queried once).  The ratios are medians over rounds of the
 * variant's total over the replicated total of the same round (the machine
 * may be shared).  With P = 1 the broadcast is skipped.  Prints Markdown rows. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "tnmtl/rng.h"

/* ---- ScaLAPACK and BLACS (Fortran; Debian ships no C header) --------------
 * Fortran passes every argument by reference and, for each CHARACTER
 * argument, its length as a hidden trailing argument (gfortran: size_t). */
void Cblacs_pinfo(int *mypnum, int *nprocs);
void Cblacs_get(int context, int request, int *value);
void Cblacs_gridinit(int *context, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int context, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int context);
void Cblacs_exit(int keep_mpi);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb, const int *irsrc,
               const int *icsrc, const int *ictxt, const int *lld, int *info);
void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia, const int *ja,
              const int *desca, double *w, double *z, const int *iz, const int *jz, const int *descz, double *work,
              const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);
void pdsyrk_(const char *uplo, const char *trans, const int *n, const int *k, const double *alpha, const double *a,
             const int *ia, const int *ja, const int *desca, const double *beta, double *c, const int *ic,
             const int *jc, const int *descc, size_t uplo_len, size_t trans_len);

#define MAX_REPS 64
#ifndef CHECK_TOL
#define CHECK_TOL 1e-8
#endif

enum { V_REPLICATED, V_BCAST, V_SCALAPACK, N_VARIANTS };
/* Stages; a variant uses some of them. */
enum { S_COPY, S_SOLVE, S_BCAST, S_GATHER_U, S_DSYRK, S_PDSYRK, S_GATHER_M, N_STAGES };
static const char *stage_name[N_STAGES] = {"copy", "solve", "bcast", "gather U", "dsyrk", "pdsyrk", "gather M"};

/* The run: sizes, the grid, and every buffer (allocated once). */
typedef struct {
    int rank, P, n, m, nb, reps;
    int ctx, nprow, npcol, myrow, mycol, mloc, nloc, desc[9];
    int *counts, *displs, *row_of, *col_of; /* [P]: local piece sizes, offsets, grid coordinates */
    double *G;                              /* [n][n] the Gram, on every process           */
    double *U, *w, *B, *M;                  /* [n][n], [n], [n][n], [n][n]                  */
    double *Zl, *Al, *Bl, *Ml;              /* [nloc][mloc] local pieces (column-major)     */
    double *pieces;                         /* [n*n] the gathered local pieces              */
    double *work;                           /* pdsyevd workspace                            */
    int *iwork, lwork, liwork;
    double t[N_STAGES];                     /* this process's stage times, one round        */
} run;

static double *alloc_doubles(size_t n)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_eig_mpi: out of memory (%zu doubles)\n", n);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    return p;
}

/* Global index of local index l of process p of np, blocks of nb. */
static int l2g(int l, int nb, int p, int np) { return ((l / nb) * np + p) * nb + l % nb; }

/* Between full[n][n] (column-major) and the local piece [nloc][lld] of
 * grid process (pr, pc): to_local 1 copies full -> piece, 0 piece -> full.
 * Runs of nb rows are contiguous on both sides. */
static void copy_blocks(const run *R, int pr, int pc, int mloc, int nloc, double *piece, double *full, int to_local)
{
    for (int jl = 0; jl < nloc; jl++) {
        size_t j = (size_t)l2g(jl, R->nb, pc, R->npcol);
        for (int il = 0; il < mloc; il += R->nb) {
            size_t i = (size_t)l2g(il, R->nb, pr, R->nprow), len = (size_t)(mloc - il < R->nb ? mloc - il : R->nb);
            double *loc = piece + (size_t)jl * (size_t)mloc + (size_t)il, *glob = full + j * (size_t)R->n + i;
            if (to_local) memcpy(loc, glob, len * sizeof *loc);
            else memcpy(glob, loc, len * sizeof *loc);
        }
    }
}

static void stage_begin(double *t0)
{
    MPI_Barrier(MPI_COMM_WORLD);
    *t0 = MPI_Wtime();
}

static void stage_end(run *R, int s, double t0) { R->t[s] = MPI_Wtime() - t0; }

static void fill_lower(int n, double *M) /* column-major: copy the upper triangle to the lower */
{
    for (size_t j = 0; j < (size_t)n; j++)
        for (size_t i = j + 1; i < (size_t)n; i++) M[j * (size_t)n + i] = M[i * (size_t)n + j];
}

static int dsyevd(run *R)
{
    memcpy(R->U, R->G, (size_t)R->n * (size_t)R->n * sizeof *R->U);
    lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', R->n, R->U, R->n, R->w);
    if (info) fprintf(stderr, "bench_eig_mpi: dsyevd info %d\n", (int)info);
    return info != 0;
}

/* M = U diag(w) U^T as tnmtl_la_spectral_apply forms it: B = U diag(sqrt w), M = B B^T. */
static void product(run *R)
{
    double t0;
    stage_begin(&t0);
    const size_t n = (size_t)R->n;
    for (size_t j = 0; j < n; j++) {
        double s = sqrt(fmax(R->w[j], 0.0));
        for (size_t i = 0; i < n; i++) R->B[j * n + i] = R->U[j * n + i] * s;
    }
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, R->n, R->n, 1.0, R->B, R->n, 0.0, R->M, R->n);
    fill_lower(R->n, R->M);
    stage_end(R, S_DSYRK, t0);
}

/* The local pieces of every process into full[n][n] on every process. */
static void gather(run *R, const double *local, double *full)
{
    MPI_Allgatherv(local, R->mloc * R->nloc, MPI_DOUBLE, R->pieces, R->counts, R->displs, MPI_DOUBLE,
                   MPI_COMM_WORLD);
    for (int q = 0; q < R->P; q++) {
        int ml = numroc_(&R->n, &R->nb, &R->row_of[q], &(int){0}, &R->nprow);
        int nl = numroc_(&R->n, &R->nb, &R->col_of[q], &(int){0}, &R->npcol);
        copy_blocks(R, R->row_of[q], R->col_of[q], ml, nl, R->pieces + R->displs[q], full, 0);
    }
}

static int variant_replicated(run *R)
{
    double t0;
    stage_begin(&t0);
    int bad = dsyevd(R);
    stage_end(R, S_SOLVE, t0);
    product(R);
    return bad;
}

static int variant_bcast(run *R)
{
    double t0;
    int bad = 0;
    stage_begin(&t0);
    if (R->rank == 0) bad = dsyevd(R);
    stage_end(R, S_SOLVE, t0);
    stage_begin(&t0);
    MPI_Bcast(R->w, R->n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    MPI_Bcast(R->U, R->n * R->n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    stage_end(R, S_BCAST, t0);
    product(R);
    return bad;
}

/* Both ScaLAPACK variants share the copy and pdsyevd: gather U then dsyrk
 * (stages copy, solve, gather U, dsyrk), or pdsyrk then gather M (copy,
 * solve, pdsyrk, gather M).  Leaves U and the dsyrk's M in R->U, R->M and
 * the pdsyrk's M in R->B. */
static int variant_scalapack(run *R)
{
    double t0;
    const int one = 1;
    const double d1 = 1.0, d0 = 0.0;
    int info = 0;
    stage_begin(&t0);
    copy_blocks(R, R->myrow, R->mycol, R->mloc, R->nloc, R->Al, R->G, 1);
    stage_end(R, S_COPY, t0);
    stage_begin(&t0);
    pdsyevd_("V", "L", &R->n, R->Al, &one, &one, R->desc, R->w, R->Zl, &one, &one, R->desc, R->work, &R->lwork,
             R->iwork, &R->liwork, &info, 1, 1);
    stage_end(R, S_SOLVE, t0);
    if (info) { /* the other processes may wait inside pdsyevd */
        fprintf(stderr, "bench_eig_mpi: pdsyevd info %d\n", info);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    stage_begin(&t0);
    gather(R, R->Zl, R->U);
    stage_end(R, S_GATHER_U, t0);
    product(R);
    stage_begin(&t0);
    for (int jl = 0; jl < R->nloc; jl++) {
        double s = sqrt(fmax(R->w[l2g(jl, R->nb, R->mycol, R->npcol)], 0.0));
        for (size_t i = 0; i < (size_t)R->mloc; i++)
            R->Bl[(size_t)jl * (size_t)R->mloc + i] = R->Zl[(size_t)jl * (size_t)R->mloc + i] * s;
    }
    pdsyrk_("U", "N", &R->n, &R->n, &d1, R->Bl, &one, &one, R->desc, &d0, R->Ml, &one, &one, R->desc, 1, 1);
    stage_end(R, S_PDSYRK, t0);
    stage_begin(&t0);
    gather(R, R->Ml, R->B);
    fill_lower(R->n, R->B);
    stage_end(R, S_GATHER_M, t0);
    return info != 0;
}

/* ---- checks (warm-up round only) ---------------------------------------- */

static double max_abs_diff(const double *a, const double *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i]));
    return d;
}

/* max |U diag(w) U^T - G| on this process; scratch [n][n]. */
static double reconstruction_error(const run *R, double *scratch)
{
    const size_t n = (size_t)R->n;
    double *UW = malloc(n * n * sizeof *UW);
    if (!UW) return INFINITY;
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < n; i++) UW[j * n + i] = R->U[j * n + i] * R->w[j];
    memcpy(scratch, R->G, n * n * sizeof *scratch);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, R->n, R->n, R->n, 1.0, UW, R->n, R->U, R->n, -1.0, scratch,
                R->n);
    free(UW);
    double e = 0;
    for (size_t i = 0; i < n * n; i++) e = fmax(e, fabs(scratch[i]));
    return e;
}

static double max_all(double x)
{
    double y;
    MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return y;
}

/* Errors relative to the largest eigenvalue; 1 when one exceeds CHECK_TOL. */
static int check(run *R, int v, const double *w_ref, double *scratch)
{
    const size_t nn = (size_t)R->n * (size_t)R->n;
    double scale = fabs(w_ref[R->n - 1]);
    double ew = max_all(max_abs_diff(R->w, w_ref, (size_t)R->n)) / scale;
    double er = max_all(reconstruction_error(R, scratch)) / scale;
    double em = max_all(max_abs_diff(R->M, R->G, nn)) / scale;
    double ep = v == V_SCALAPACK ? max_all(max_abs_diff(R->B, R->G, nn)) / scale : 0.0;
    static const char *name[N_VARIANTS] = {"replicated", "bcast", "scalapack"};
    if (R->rank == 0) {
        printf("check %-10s eigenvalues vs replicated %.1e, U diag(w) U^T - G %.1e, M - G %.1e", name[v], ew, er, em);
        if (v == V_SCALAPACK) printf(", pdsyrk's M - G %.1e", ep);
        printf(" (max |.| over processes / largest eigenvalue)\n");
        fflush(stdout);
    }
    return ew > CHECK_TOL || er > CHECK_TOL || em > CHECK_TOL || ep > CHECK_TOL;
}

/* ---- set-up -------------------------------------------------------------- */

static void setup(run *R)
{
    const size_t n = (size_t)R->n, nn = n * n;
    int nprocs, pnum;
    Cblacs_pinfo(&pnum, &nprocs);
    R->nprow = 1;
    for (int r = 1; r * r <= R->P; r++)
        if (R->P % r == 0) R->nprow = r;
    R->npcol = R->P / R->nprow;
    Cblacs_get(-1, 0, &R->ctx);
    Cblacs_gridinit(&R->ctx, "Row", R->nprow, R->npcol);
    Cblacs_gridinfo(R->ctx, &R->nprow, &R->npcol, &R->myrow, &R->mycol);
    const int zero = 0;
    R->mloc = numroc_(&R->n, &R->nb, &R->myrow, &zero, &R->nprow);
    R->nloc = numroc_(&R->n, &R->nb, &R->mycol, &zero, &R->npcol);
    int holds = R->mloc > 0 && R->nloc > 0, all_hold;
    MPI_Allreduce(&holds, &all_hold, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all_hold) { /* pdsyevd's results were wrong with an empty process (n 40, NB 64, P 2) */
        if (R->rank == 0)
            fprintf(stderr, "bench_eig_mpi: n %d leaves a process of the %d x %d grid without a %d x %d block; "
                            "use a smaller -nb\n", R->n, R->nprow, R->npcol, R->nb, R->nb);
        MPI_Finalize();
        exit(2);
    }
    int lld = R->mloc > 1 ? R->mloc : 1, info;
    descinit_(R->desc, &R->n, &R->n, &R->nb, &R->nb, &zero, &zero, &R->ctx, &lld, &info);
    if (info) {
        fprintf(stderr, "bench_eig_mpi: descinit info %d\n", info);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    R->counts = malloc((size_t)R->P * sizeof *R->counts);
    R->displs = malloc((size_t)R->P * sizeof *R->displs);
    R->row_of = malloc((size_t)R->P * sizeof *R->row_of);
    R->col_of = malloc((size_t)R->P * sizeof *R->col_of);
    int mine[3] = {R->myrow, R->mycol, R->mloc * R->nloc}, *all = malloc((size_t)R->P * sizeof mine);
    MPI_Allgather(mine, 3, MPI_INT, all, 3, MPI_INT, MPI_COMM_WORLD);
    for (int q = 0, off = 0; q < R->P; q++) {
        R->row_of[q] = all[3 * q], R->col_of[q] = all[3 * q + 1], R->counts[q] = all[3 * q + 2];
        R->displs[q] = off, off += R->counts[q];
    }
    free(all);

    /* G = A A^T, the same on every process */
    double *A = alloc_doubles(n * (size_t)R->m);
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 1);
    for (size_t i = 0; i < n * (size_t)R->m; i++) A[i] = tnmtl_rng_normal(&rng);
    R->G = alloc_doubles(nn);
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, R->n, R->m, 1.0, A, R->n, 0.0, R->G, R->n);
    fill_lower(R->n, R->G);
    free(A);
    R->U = alloc_doubles(nn), R->w = alloc_doubles(n), R->B = alloc_doubles(nn), R->M = alloc_doubles(nn);
    size_t loc = (size_t)R->mloc * (size_t)R->nloc;
    R->Al = alloc_doubles(loc), R->Zl = alloc_doubles(loc), R->Bl = alloc_doubles(loc), R->Ml = alloc_doubles(loc);
    R->pieces = alloc_doubles(nn);
    /* touched now, not in the first round (Ml: pdsyrk leaves its lower triangle alone) */
    double *touch[] = {R->U, R->B, R->M, R->pieces, R->Al, R->Zl, R->Bl, R->Ml};
    for (int i = 0; i < 8; i++) memset(touch[i], 0, (i < 4 ? nn : loc) * sizeof *touch[i]);

    /* pdsyevd's workspace, queried once (tnmtl would keep it between steps) */
    const int one = 1, query = -1;
    double wq;
    int iq;
    pdsyevd_("V", "L", &R->n, R->Al, &one, &one, R->desc, R->w, R->Zl, &one, &one, R->desc, &wq, &query, &iq,
             &query, &info, 1, 1);
    if (info) {
        fprintf(stderr, "bench_eig_mpi: pdsyevd workspace query info %d\n", info);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    /* plus PDLASRT's max(n, mloc (nb + nloc)): the query leaves it out where
     * nloc < nb (n 100, NB 64, P 2: "PDLASRT parameter number 9") */
    R->lwork = (int)wq + 1 + (R->n > R->mloc * (R->nb + R->nloc) ? R->n : R->mloc * (R->nb + R->nloc));
    R->liwork = iq;
    R->work = alloc_doubles((size_t)R->lwork);
    memset(R->work, 0, (size_t)R->lwork * sizeof *R->work);
    R->iwork = malloc((size_t)R->liwork * sizeof *R->iwork);
}

static void usage(void)
{
    fprintf(stderr, "usage: mpirun -np P bench_eig_mpi [-n N] [-m M] [-nb NB] [-reps R]\n"
                    "  N: Gram size (default 1936), M: columns of A (default round(N * 3200 / 1936)),\n"
                    "  NB: ScaLAPACK block size (default 64), R: rounds (default 5, at most %d)\n",
            MAX_REPS);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    run R = {.n = 1936, .m = 0, .nb = 64, .reps = 5};
    MPI_Comm_rank(MPI_COMM_WORLD, &R.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &R.P);
    for (int i = 1; i < argc; i++) {
        int *opt = !strcmp(argv[i], "-n")      ? &R.n
                   : !strcmp(argv[i], "-m")    ? &R.m
                   : !strcmp(argv[i], "-nb")   ? &R.nb
                   : !strcmp(argv[i], "-reps") ? &R.reps
                                               : NULL;
        if (!opt || i + 1 == argc || (*opt = atoi(argv[++i])) <= 0 || R.reps > MAX_REPS || R.n > 20000) {
            if (R.rank == 0) usage();
            MPI_Finalize();
            return 2;
        }
    }
    if (!R.m) R.m = (int)lround(R.n * 3200.0 / 1936.0);
    setup(&R);
    cpu_set_t cpus; /* mpirun may bind a process to one core (Open MPI 4: -np 1 and 2 do) */
    int n_cpus = sched_getaffinity(0, sizeof cpus, &cpus) ? -1 : CPU_COUNT(&cpus);
    if (R.rank == 0) {
        printf("n %d, m %d, P %d (grid %d x %d, NB %d), OpenBLAS %s, core %s, %d thread(s) per process, "
               "%d cpu(s) allowed to process 0, %d rounds (the first checked)\n",
               R.n, R.m, R.P, R.nprow, R.npcol, R.nb, openblas_get_config(), openblas_get_corename(),
               openblas_get_num_threads(), n_cpus, R.reps);
        fflush(stdout);
    }

    /* totals[v][0] eigenpairs on every process, [1] M on every process;
     * [V_SCALAPACK][2] M by pdsyrk; stage[v][s][round] */
    static double totals[N_VARIANTS][3][MAX_REPS], stage[N_VARIANTS][N_STAGES][MAX_REPS];
    double *w_ref = alloc_doubles((size_t)R.n), *scratch = alloc_doubles((size_t)R.n * (size_t)R.n);
    int bad = 0;
    for (int r = 0; r < R.reps; r++) {
        for (int k = 0; k < N_VARIANTS; k++) {
            int v = (k + r) % N_VARIANTS; /* round 0 runs replicated first: the reference */
            if (v == V_BCAST && R.P == 1) continue;
            memset(R.t, 0, sizeof R.t);
            bad |= v == V_REPLICATED ? variant_replicated(&R) : v == V_BCAST ? variant_bcast(&R) : variant_scalapack(&R);
            double t[N_STAGES];
            MPI_Allreduce(R.t, t, N_STAGES, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (r == 0) { /* after the variant's timing */
                if (v == V_REPLICATED) memcpy(w_ref, R.w, (size_t)R.n * sizeof *w_ref);
                bad |= check(&R, v, w_ref, scratch);
            }
            double eig = t[S_COPY] + t[S_SOLVE] + t[S_BCAST] + t[S_GATHER_U];
            totals[v][0][r] = eig;
            totals[v][1][r] = eig + t[S_DSYRK];
            totals[v][2][r] = t[S_COPY] + t[S_SOLVE] + t[S_PDSYRK] + t[S_GATHER_M];
            for (int s = 0; s < N_STAGES; s++) stage[v][s][r] = t[s];
        }
    }
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);

    if (R.rank == 0) {
        static const char *label[N_VARIANTS][3] = {{"replicated", "replicated", ""},
                                                   {"bcast", "bcast", ""},
                                                   {"scalapack (gather U)", "scalapack (gather U)",
                                                    "scalapack (pdsyrk, gather M)"}};
        static const int stages_of[N_VARIANTS][3][5] = {
            {{S_SOLVE, -1}, {S_SOLVE, S_DSYRK, -1}},
            {{S_SOLVE, S_BCAST, -1}, {S_SOLVE, S_BCAST, S_DSYRK, -1}},
            {{S_COPY, S_SOLVE, S_GATHER_U, -1}, {S_COPY, S_SOLVE, S_GATHER_U, S_DSYRK, -1},
             {S_COPY, S_SOLVE, S_PDSYRK, S_GATHER_M, -1}}};
        printf("| n | P | threads | result on every process | variant | median s | ratio to replicated | "
               "stages (median s) |\n|---|---|---|---|---|---|---|---|\n");
        for (int what = 0; what < 2; what++) {
            for (int v = 0; v < N_VARIANTS; v++) {
                if (v == V_BCAST && R.P == 1) continue;
                for (int k = what; k <= (v == V_SCALAPACK && what == 1 ? 2 : what); k++) {
                    double ratio[MAX_REPS], tot[MAX_REPS];
                    for (int r = 0; r < R.reps; r++) {
                        tot[r] = totals[v][k][r];
                        ratio[r] = totals[v][k][r] / totals[V_REPLICATED][what][r];
                    }
                    printf("| %d | %d | %d | %s | %s | %.4f | %.2f | ", R.n, R.P, openblas_get_num_threads(),
                           what ? "eigenpairs + M" : "eigenpairs", label[v][k], bench_median(tot, R.reps),
                           bench_median(ratio, R.reps));
                    for (const int *s = stages_of[v][k]; *s >= 0; s++)
                        printf("%s%s %.4f", s == stages_of[v][k] ? "" : ", ", stage_name[*s],
                               bench_median(stage[v][*s], R.reps));
                    printf(" |\n");
                }
            }
        }
        if (bad) printf("FAILED: an error above %.0e of the largest eigenvalue (see the check lines)\n", CHECK_TOL);
        fflush(stdout);
    }
    Cblacs_gridexit(R.ctx);
    Cblacs_exit(1);
    MPI_Finalize();
    return bad ? 1 : 0;
}
