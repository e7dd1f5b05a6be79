/* cluster.c - average-linkage hierarchical clustering (see cluster.h). */
#include "tnmtl/cluster.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void tnmtl_dendrogram_free(tnmtl_dendrogram *d)
{
    if (!d) return;
    free(d->merge);
    free(d->height);
    free(d->order);
    free(d->pos);
    memset(d, 0, sizeof *d);
}

/* Leaves of the tree below node `root` in left-to-right order into order[];
 * stack is scratch for 2n ints. */
static void leaf_order(const tnmtl_dendrogram *d, int root, int *stack, int *order)
{
    int top = 0, k = 0;
    stack[top++] = root;
    while (top) {
        const int v = stack[--top];
        if (v < d->n) {
            order[k++] = v;
            continue;
        }
        stack[top++] = d->merge[v - d->n][1]; /* right below left: left pops first */
        stack[top++] = d->merge[v - d->n][0];
    }
}

tnmtl_status tnmtl_cluster_average(int n, const double *dist, tnmtl_dendrogram *d, tnmtl_error *err)
{
    memset(d, 0, sizeof *d);
    if (n < 1) return tnmtl_fail(err, TNMTL_ERR_INVALID, "clustering needs at least one item (got %d)", n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && !isfinite(dist[(size_t)i * n + j]))
                return tnmtl_fail(err, TNMTL_ERR_INVALID, "distance between items %d and %d is not finite", i, j);
    const size_t nn = (size_t)n * n;
    d->n = n;
    d->merge = tnmtl_calloc((size_t)(n > 1 ? n - 1 : 1), sizeof *d->merge, "dendrogram", err);
    d->height = tnmtl_calloc((size_t)(n > 1 ? n - 1 : 1), sizeof *d->height, "dendrogram", err);
    d->order = tnmtl_calloc((size_t)n, sizeof *d->order, "dendrogram", err);
    d->pos = tnmtl_calloc((size_t)n, sizeof *d->pos, "dendrogram", err);
    double *D = tnmtl_malloc(nn * sizeof *D, "cluster distances", err);
    int *id = tnmtl_malloc((size_t)n * sizeof *id, "cluster ids", err);       /* node id of active slot i, -1 gone */
    int *size = tnmtl_malloc((size_t)n * sizeof *size, "cluster sizes", err);
    int *stack = tnmtl_malloc((size_t)2 * n * sizeof *stack, "cluster stack", err);
    if (!d->merge || !d->height || !d->order || !d->pos || !D || !id || !size || !stack) {
        free(D), free(id), free(size), free(stack);
        tnmtl_dendrogram_free(d);
        return TNMTL_ERR_NOMEM;
    }
    memcpy(D, dist, nn * sizeof *D);
    for (int i = 0; i < n; i++) id[i] = i, size[i] = 1;
    /* Slot i holds the cluster whose lowest leaf is i (a merged cluster stays
     * in the lower slot); pairs are visited in index order, so ties go to the
     * lowest indices, and merge[m][0] is the cluster with the lower leaf.
     * Distances are finite, so every round finds a pair. */
    for (int m = 0; m < n - 1; m++) {
        int bi = -1, bj = -1;
        double best = INFINITY;
        for (int i = 0; i < n; i++) {
            if (id[i] < 0) continue;
            for (int j = i + 1; j < n; j++)
                if (id[j] >= 0 && D[(size_t)i * n + j] < best) best = D[(size_t)i * n + j], bi = i, bj = j;
        }
        d->merge[m][0] = id[bi];
        d->merge[m][1] = id[bj];
        d->height[m] = best;
        for (int k = 0; k < n; k++) {
            if (id[k] < 0 || k == bi || k == bj) continue;
            const double v = (size[bi] * D[(size_t)k * n + bi] + size[bj] * D[(size_t)k * n + bj]) / (size[bi] + size[bj]);
            D[(size_t)k * n + bi] = D[(size_t)bi * n + k] = v;
        }
        size[bi] += size[bj];
        id[bi] = n + m;
        id[bj] = -1;
    }
    leaf_order(d, n > 1 ? 2 * n - 2 : 0, stack, d->order);
    for (int i = 0; i < n; i++) d->pos[d->order[i]] = i;
    free(D), free(id), free(size), free(stack);
    return TNMTL_OK;
}
