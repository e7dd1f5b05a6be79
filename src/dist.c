/* dist.c - processes of a distributed run (tnmtl/dist.h): set-up, the task
 * partition, and the collectives the model uses (dist_internal.h).  Built
 * without TNMTL_MPI every run is one process and the collectives return at
 * once. */
#include "tnmtl/dist.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist_internal.h"
#include "util.h"

#ifdef TNMTL_MPI
#include <mpi.h>
#endif

struct tnmtl_dist {
    int rank, size, local_size;
    int started_mpi;             /* tnmtl_dist_init called MPI_Init        */
    uint64_t bytes;              /* payload received in collectives        */
    int *counts, *displs;        /* [size] scratch of the gathers          */
#ifdef TNMTL_MPI
    MPI_Comm comm;               /* a duplicate of MPI_COMM_WORLD          */
#endif
};

int tnmtl_dist_has_mpi(void)
{
#ifdef TNMTL_MPI
    return 1;
#else
    return 0;
#endif
}

tnmtl_status tnmtl_dist_init(int *argc, char ***argv, tnmtl_dist **out, tnmtl_error *err)
{
    *out = NULL;
    tnmtl_dist *d = tnmtl_calloc(1, sizeof *d, "process group", err);
    if (!d) return TNMTL_ERR_NOMEM;
    d->size = d->local_size = 1;
#ifdef TNMTL_MPI
    int started = 0;
    MPI_Initialized(&started);
    if (!started) {
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            free(d);
            return tnmtl_fail(err, TNMTL_ERR_IO, "MPI could not start (MPI_Init_thread failed)");
        }
        d->started_mpi = 1;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    MPI_Comm local;
    MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &d->local_size);
    MPI_Comm_free(&local);
#else
    (void)argc;
    (void)argv;
#endif
    d->counts = tnmtl_calloc((size_t)d->size, sizeof(int), "gather counts", err);
    d->displs = tnmtl_calloc((size_t)d->size, sizeof(int), "gather offsets", err);
    if (!d->counts || !d->displs) {
        tnmtl_dist_finalize(d);
        return TNMTL_ERR_NOMEM;
    }
    *out = d;
    return TNMTL_OK;
}

void tnmtl_dist_finalize(tnmtl_dist *d)
{
    if (!d) return;
#ifdef TNMTL_MPI
    if (d->comm != MPI_COMM_NULL) MPI_Comm_free(&d->comm);
    if (d->started_mpi) MPI_Finalize();
#endif
    free(d->counts);
    free(d->displs);
    free(d);
}

void tnmtl_dist_abort(const tnmtl_dist *d, int code)
{
#ifdef TNMTL_MPI
    if (d && d->size > 1) MPI_Abort(d->comm, code);
#else
    (void)d;
    (void)code;
#endif
}

int tnmtl_dist_rank(const tnmtl_dist *d) { return d ? d->rank : 0; }
int tnmtl_dist_size(const tnmtl_dist *d) { return d ? d->size : 1; }
int tnmtl_dist_local_size(const tnmtl_dist *d) { return d ? d->local_size : 1; }
uint64_t tnmtl_dist_bytes(const tnmtl_dist *d) { return d ? d->bytes : 0; }

tnmtl_status tnmtl_dist_barrier(const tnmtl_dist *d, tnmtl_error *err)
{
    (void)err;
#ifdef TNMTL_MPI
    if (d && d->size > 1) MPI_Barrier(d->comm);
#else
    (void)d;
#endif
    return TNMTL_OK;
}

void tnmtl_dist_partition(const int64_t *weight, int n_tasks, int n_parts, int *begin)
{
    begin[0] = 0;
    begin[n_parts] = n_tasks;
    if (n_tasks <= n_parts) { /* one task per block, then empty blocks */
        for (int r = 1; r < n_parts; r++) begin[r] = r < n_tasks ? r : n_tasks;
        return;
    }
    double total = 0;
    for (int t = 0; t < n_tasks; t++) total += weight ? (double)weight[t] : 1.0;
    int c = 0;        /* the cut being placed */
    double below = 0; /* weight of tasks 0 .. c-1 */
    for (int r = 1; r < n_parts; r++) {
        /* Every block keeps at least one task; within that, the cut moves
         * right while it brings the weight before it closer to r/P of the total. */
        const double target = total * r / n_parts;
        const int min_c = begin[r - 1] + 1, max_c = n_tasks - (n_parts - r);
        for (; c < min_c; c++) below += weight ? (double)weight[c] : 1.0;
        for (; c < max_c; c++) {
            const double w = weight ? (double)weight[c] : 1.0;
            if (!(fabs(below + w - target) < fabs(below - target))) break;
            below += w;
        }
        begin[r] = c;
    }
}

/* Counts and displacements (in elements, from off[0]) of each process's
 * segment off[begin[r]] .. off[begin[r+1]]; the elements this one receives. */
static tnmtl_status gather_layout(tnmtl_dist *d, const int64_t *off, const int *begin, int64_t *received,
                                  tnmtl_error *err)
{
    int64_t recv = 0;
    for (int r = 0; r < d->size; r++) {
        const int64_t c = off[begin[r + 1]] - off[begin[r]], o = off[begin[r]] - off[0];
        if (c > INT_MAX || o > INT_MAX)
            return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "a block of %lld values is too large for one MPI message",
                              (long long)c);
        d->counts[r] = (int)c;
        d->displs[r] = (int)o;
        if (r != d->rank) recv += c;
    }
    *received = recv;
    return TNMTL_OK;
}

/* Both allgathers: elements of elem bytes (4: float, 8: double). */
static tnmtl_status allgather(tnmtl_dist *d, void *buf, size_t elem, const int64_t *off, const int *begin,
                              tnmtl_error *err)
{
    if (!d || d->size == 1) return TNMTL_OK;
    int64_t recv = 0;
    tnmtl_status st = gather_layout(d, off, begin, &recv, err);
    if (st) return st;
#ifdef TNMTL_MPI
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, (char *)buf + (size_t)off[0] * elem, d->counts, d->displs,
                   elem == sizeof(double) ? MPI_DOUBLE : MPI_FLOAT, d->comm);
#else
    (void)buf;
#endif
    d->bytes += (uint64_t)recv * elem;
    return TNMTL_OK;
}

tnmtl_status tnmtl_dist_allgather_f32(tnmtl_dist *d, float *buf, const int64_t *off, const int *begin,
                                      tnmtl_error *err)
{
    return allgather(d, buf, sizeof *buf, off, begin, err);
}

tnmtl_status tnmtl_dist_allgather_f64(tnmtl_dist *d, double *buf, const int64_t *off, const int *begin,
                                      tnmtl_error *err)
{
    return allgather(d, buf, sizeof *buf, off, begin, err);
}

tnmtl_status tnmtl_dist_gather_f32(tnmtl_dist *d, int root, float *buf, const float *mine, const int64_t *off,
                                   const int *begin, tnmtl_error *err)
{
    if (!d || d->size == 1) return TNMTL_OK;
    int64_t recv = 0;
    tnmtl_status st = gather_layout(d, off, begin, &recv, err);
    if (st) return st;
#ifdef TNMTL_MPI
    if (d->rank == root)
        MPI_Gatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf + off[0], d->counts, d->displs, MPI_FLOAT, root, d->comm);
    else
        MPI_Gatherv(mine, d->counts[d->rank], MPI_FLOAT, NULL, NULL, NULL, MPI_FLOAT, root, d->comm);
#else
    (void)buf;
    (void)mine;
#endif
    if (d->rank == root) d->bytes += (uint64_t)recv * sizeof(float);
    return TNMTL_OK;
}

tnmtl_status tnmtl_dist_sum_ordered(tnmtl_dist *d, double *buf, int64_t n, tnmtl_error *err)
{
    if (!d || d->size == 1) return TNMTL_OK;
    if (n > INT_MAX)
        return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "a sum of %lld values is too large for one MPI message", (long long)n);
#ifdef TNMTL_MPI
    if (d->rank > 0) {
        double *prev = tnmtl_malloc((size_t)n * sizeof *prev, "partial sum", err);
        if (!prev) return TNMTL_ERR_NOMEM;
        MPI_Recv(prev, (int)n, MPI_DOUBLE, d->rank - 1, 0, d->comm, MPI_STATUS_IGNORE);
        for (int64_t i = 0; i < n; i++) buf[i] = prev[i] + buf[i];
        free(prev);
    }
    if (d->rank + 1 < d->size) MPI_Send(buf, (int)n, MPI_DOUBLE, d->rank + 1, 0, d->comm);
    MPI_Bcast(buf, (int)n, MPI_DOUBLE, d->size - 1, d->comm);
#else
    (void)buf;
#endif
    d->bytes += (uint64_t)n * sizeof(double) * (d->rank > 0 && d->rank + 1 < d->size ? 2 : 1);
    return TNMTL_OK;
}

tnmtl_status tnmtl_dist_bcast_text(tnmtl_dist *d, int root, char **text, tnmtl_error *err)
{
    if (!d || d->size == 1) return TNMTL_OK;
    long long len = d->rank == root ? (*text ? (long long)strlen(*text) : -1) : 0;
#ifdef TNMTL_MPI
    MPI_Bcast(&len, 1, MPI_LONG_LONG, root, d->comm);
#endif
    if (len > INT_MAX) return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "a text of %lld bytes is too long to broadcast", len);
    if (d->rank != root) {
        *text = NULL;
        d->bytes += sizeof len + (uint64_t)(len > 0 ? len : 0);
    }
    if (len < 0) return TNMTL_OK;
    if (d->rank != root && !(*text = tnmtl_calloc((size_t)len + 1, 1, "broadcast text", err))) return TNMTL_ERR_NOMEM;
#ifdef TNMTL_MPI
    MPI_Bcast(*text, (int)len, MPI_CHAR, root, d->comm);
#endif
    return TNMTL_OK;
}

void tnmtl_dist_bcast_int(tnmtl_dist *d, int root, int *v)
{
    if (!d || d->size == 1) return;
#ifdef TNMTL_MPI
    MPI_Bcast(v, 1, MPI_INT, root, d->comm);
#else
    (void)root;
    (void)v;
#endif
    if (d->rank != root) d->bytes += sizeof *v;
}

void tnmtl_dist_any(tnmtl_dist *d, int *flags, int n)
{
    if (!d || d->size == 1) return;
#ifdef TNMTL_MPI
    MPI_Allreduce(MPI_IN_PLACE, flags, n, MPI_INT, MPI_MAX, d->comm);
#endif
    d->bytes += (uint64_t)n * sizeof(int);
}

tnmtl_status tnmtl_dist_share_status(tnmtl_dist *d, int root, tnmtl_status st, tnmtl_error *err)
{
    if (!d || d->size == 1) return st;
#ifdef TNMTL_MPI
    int s = (int)st;
    MPI_Bcast(&s, 1, MPI_INT, root, d->comm);
    if (s != TNMTL_OK) { /* every process takes part, with or without err */
        char msg[sizeof err->msg] = "";
        if (err && d->rank == root) memcpy(msg, err->msg, sizeof msg);
        MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, root, d->comm);
        if (err) {
            memcpy(err->msg, msg, sizeof msg);
            err->msg[sizeof err->msg - 1] = '\0';
            err->status = (tnmtl_status)s;
        }
    }
    st = (tnmtl_status)s;
#else
    (void)root;
    (void)err;
#endif
    return st;
}
