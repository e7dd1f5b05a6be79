/* tnmtl/cluster.h - hierarchical clustering (average linkage, UPGMA).
 *
 * Groups n items from their pairwise distances: start with every item alone,
 * repeatedly merge the two clusters of smallest average distance (the mean
 * of the distances between their members) until one is left.  The merge
 * tree is a dendrogram; reading its leaves left to right gives an order in
 * which every cluster is a contiguous run, so a matrix permuted by it shows
 * related items as blocks on the diagonal (the report's heat maps).
 * Deterministic: ties go to the pair of lowest indices.  O(n^3) time, n^2
 * memory: meant for task counts (tens to a few hundred).
 */
#ifndef TNMTL_CLUSTER_H
#define TNMTL_CLUSTER_H

#include "tnmtl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tnmtl_dendrogram {
    int n;                       /* leaves                                      */
    int (*merge)[2];             /* [n-1] the two clusters joined by merge i:   */
                                 /* 0..n-1 leaves, n+j the result of merge j;   */
                                 /* the one holding the lower leaf first        */
    double *height;              /* [n-1] their average distance, nondecreasing */
    int *order;                  /* [n] leaves in dendrogram order              */
    int *pos;                    /* [n] pos[leaf] = its place in order          */
} tnmtl_dendrogram;

/* Average-linkage clustering of n >= 1 items from dist[n][n] (symmetric,
 * finite, the diagonal ignored).  TNMTL_ERR_INVALID on n < 1 or a NaN/Inf
 * distance (naming the pair), TNMTL_ERR_NOMEM. */
tnmtl_status tnmtl_cluster_average(int n, const double *dist, tnmtl_dendrogram *d, tnmtl_error *err);
void tnmtl_dendrogram_free(tnmtl_dendrogram *d);

#ifdef __cplusplus
}
#endif
#endif
