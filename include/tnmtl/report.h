/* tnmtl/report.h - which layers ended up shared, which tasks are related.
 *
 * For every shareable layer k, with w_t the weight vector of task t:
 *   similarity[s][t]  cosine similarity of w_s and w_t
 *   rho               mean of similarity over the task pairs s < t: 1 for a
 *                     hard-shared layer, about 0 for independent random ones
 *   sv                singular values of the T x n_w task-mode unfolding
 *                     [w_1; ...; w_T], divided by their sum
 *   eff_rank          exp(entropy of sv) (Roy & Vetterli's effective rank):
 *                     1 when all tasks use one direction, T when orthogonal
 *   relatedness[s][t] how much tasks s and t use the same input subspace:
 *                     with W_t the layer's weights as a d_in x d_out matrix,
 *                     ||W_s^T W_t||_F^2 / (||W_s^T W_s||_F ||W_t^T W_t||_F),
 *                     the cosine of the Gram matrices W_s W_s^T and W_t W_t^T.
 *                     In [0, 1]; unlike the cosine it does not change when a
 *                     task permutes, flips or rotates its output units (which
 *                     the next layer can undo), so it shows related tasks
 *                     even when their weights are not aligned entry by entry.
 * and over all layers the mean similarity and relatedness matrices.
 */
#ifndef TNMTL_REPORT_H
#define TNMTL_REPORT_H

#include "tnmtl/error.h"
#include "tnmtl/mtl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Spectrum of one unfolding of a layer's stacked tensor W (weight dims x T)
 * that some trace norm uses: Tucker mode i (D_i x the rest; mode N is the
 * task mode, LAF's only term and TT's last) or TT term i (D_1..D_i x the
 * rest), each listed once (TT's first term is Tucker mode 1). */
typedef struct tnmtl_unfolding_spectrum {
    char name[24];               /* "mode 2", "tt 3"                           */
    unsigned used_by;            /* bit (1 << tnmtl_norm_method) per norm using it */
    int64_t rows, cols;
    int n_sv;                    /* min(rows, cols)                            */
    double *sv;                  /* [n_sv] normalised to sum 1, descending     */
} tnmtl_unfolding_spectrum;

typedef struct tnmtl_layer_sharing {
    int layer;                   /* index in the task network                  */
    char name[48];               /* e.g. "conv 5x5x1x8"                        */
    int shared;                  /* hard-shared copy (UD)                      */
    int stacked;                 /* regularised by the norm                    */
    double rho;
    double eff_rank;
    int n_sv;                    /* min(T, n_w)                                */
    double *sv;                  /* [n_sv] normalised, descending              */
    double *similarity;          /* [T][T]                                     */
    double *relatedness;         /* [T][T]                                     */
    int n_unf;                   /* 0 unless tnmtl_sharing_report_spectra ran  */
    tnmtl_unfolding_spectrum *unf; /* [n_unf]; none for a hard-shared layer    */
} tnmtl_layer_sharing;

typedef struct tnmtl_sharing_report {
    int n_tasks;
    int n_layers;                /* shareable layers reported                  */
    tnmtl_layer_sharing *layers; /* [n_layers]                                 */
    double *similarity;          /* [T][T] mean over the layers                */
    double *relatedness;         /* [T][T] mean over the layers                */
} tnmtl_sharing_report;

tnmtl_status tnmtl_sharing_report_make(const tnmtl_mtl *m, tnmtl_sharing_report *r, tnmtl_error *err);
void tnmtl_sharing_report_free(tnmtl_sharing_report *r);
/* Adds to every layer of r (made from m) the spectra of all unfoldings the
 * three norms use, whatever m's method (an STL run's spectra are the
 * baseline a regularised run's decay is compared with).  Costs one
 * values-only norm evaluation per unfolding (Omniglot's fc1: ~0.5 s). */
tnmtl_status tnmtl_sharing_report_spectra(const tnmtl_mtl *m, tnmtl_sharing_report *r, tnmtl_error *err);

/* Writes dir/sharing.json (every layer: rho, eff_rank, sv, and "unfoldings"
 * when the spectra were computed: name, rows, cols, used_by, singular_values), and the task
 * matrices as CSV with task names as header and first column:
 * dir/similarity.csv, dir/relatedness.csv (means over layers) and
 * dir/similarity_layer<k>.csv, dir/relatedness_layer<k>.csv. */
tnmtl_status tnmtl_sharing_report_write(const tnmtl_sharing_report *r, char *const *task_names,
                                        const char *dir, tnmtl_error *err);

#ifdef __cplusplus
}
#endif
#endif
