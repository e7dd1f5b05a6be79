/* report.c - sharing report: per-layer task similarity, rho, spectrum. */
#include "tnmtl/report.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void tnmtl_sharing_report_free(tnmtl_sharing_report *r)
{
    if (!r) return;
    for (int k = 0; k < r->n_layers && r->layers; k++) {
        free(r->layers[k].sv);
        free(r->layers[k].similarity);
        free(r->layers[k].relatedness);
        for (int u = 0; u < r->layers[k].n_unf; u++) free(r->layers[k].unf[u].sv);
        free(r->layers[k].unf);
    }
    free(r->layers);
    free(r->similarity);
    free(r->relatedness);
    memset(r, 0, sizeof *r);
}

static void layer_name(const tnmtl_layer_info *li, char *buf, size_t cap)
{
    if (li->kind == TNMTL_LAYER_CONV)
        snprintf(buf, cap, "conv %dx%dx%dx%d", li->weight_shape[0], li->weight_shape[1], li->weight_shape[2],
                 li->weight_shape[3]);
    else
        snprintf(buf, cap, "%s %dx%d", li->is_output ? "out" : "fc", li->weight_shape[0], li->weight_shape[1]);
}

/* Fills L from the Gram matrix G[T][T] of the task weight vectors. */
static tnmtl_status analyse_gram(int T, double *G, tnmtl_layer_sharing *L, tnmtl_error *err)
{
    double pair_sum = 0;
    for (int s = 0; s < T; s++)
        for (int t = 0; t < T; t++) {
            double den = sqrt(G[s * T + s] * G[t * T + t]);
            double c = s == t ? 1.0 : den > 0 ? G[s * T + t] / den : 0.0;
            L->similarity[s * T + t] = c;
            if (s < t) pair_sum += c;
        }
    L->rho = T > 1 ? pair_sum / (0.5 * T * (T - 1)) : 1.0;

    double *w = tnmtl_malloc((size_t)T * sizeof *w, "eigenvalues", err);
    if (!w) return TNMTL_ERR_NOMEM;
    /* Eigenvalues of G are the squared singular values of the unfolding. */
    lapack_int info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', T, G, T, w);
    if (info != 0) {
        free(w);
        return tnmtl_fail(err, TNMTL_ERR_NUMERIC, "eigenvalue solver failed (info %d)", (int)info);
    }
    double sum = 0;
    for (int i = 0; i < L->n_sv; i++) {
        double lam = w[T - 1 - i]; /* ascending -> descending */
        L->sv[i] = sqrt(lam > 0 ? lam : 0);
        sum += L->sv[i];
    }
    double entropy = 0;
    for (int i = 0; i < L->n_sv; i++) {
        L->sv[i] = sum > 0 ? L->sv[i] / sum : 0;
        if (L->sv[i] > 0) entropy -= L->sv[i] * log(L->sv[i]);
    }
    L->eff_rank = sum > 0 ? exp(entropy) : 0;
    free(w);
    return TNMTL_OK;
}

/* relatedness of the T task matrices W_t = W + t * d_in * d_out, each
 * [d_in][d_out] row-major (see report.h).  C is d_out x d_out scratch. */
static void relatedness(int T, const float *W, int64_t d_in, int64_t d_out, float *C, double *R)
{
    const int64_t n = d_in * d_out;
    double *self = R; /* diagonal first: ||W_t^T W_t||_F */
    for (int s = 0; s < T; s++)
        for (int t = s; t < T; t++) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d_out, (int)d_out, (int)d_in, 1.0f, W + s * n,
                        (int)d_out, W + t * n, (int)d_out, 0.0f, C, (int)d_out);
            double f = 0;
            for (int64_t i = 0; i < d_out * d_out; i++) f += (double)C[i] * C[i];
            R[s * T + t] = R[t * T + s] = f; /* ||W_s^T W_t||_F^2 */
        }
    for (int s = 0; s < T; s++)
        for (int t = 0; t < T; t++)
            if (s != t) {
                double den = sqrt(self[s * T + s] * self[t * T + t]);
                R[s * T + t] = den > 0 ? R[s * T + t] / den : 0;
            }
    for (int s = 0; s < T; s++) R[s * T + s] = 1;
}

tnmtl_status tnmtl_sharing_report_make(const tnmtl_mtl *m, tnmtl_sharing_report *r, tnmtl_error *err)
{
    memset(r, 0, sizeof *r);
    const int T = m->n_tasks;
    r->n_tasks = T;
    int n = 0;
    for (int i = 0; i < m->n_blocks; i++) n += m->blocks[i].shareable;
    r->layers = tnmtl_calloc((size_t)n, sizeof *r->layers, "sharing report", err);
    r->similarity = tnmtl_calloc((size_t)T * T, sizeof(double), "similarity matrix", err);
    r->relatedness = tnmtl_calloc((size_t)T * T, sizeof(double), "relatedness matrix", err);
    float *C = NULL;
    float *gram32 = tnmtl_calloc((size_t)T * T, sizeof(float), "Gram matrix", err);
    double *G = tnmtl_calloc((size_t)T * T, sizeof(double), "Gram matrix", err);
    tnmtl_status st = TNMTL_ERR_NOMEM;
    if (!r->layers || !r->similarity || !r->relatedness || !gram32 || !G) goto done;
    for (int i = 0; i < m->n_blocks; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        if (!b->shareable) continue;
        tnmtl_layer_sharing *L = &r->layers[r->n_layers++];
        L->layer = b->layer;
        L->shared = b->shared;
        L->stacked = b->stacked;
        layer_name(tnmtl_net_layer(m->nets[0], b->layer), L->name, sizeof L->name);
        L->n_sv = (int)(b->n_w < T ? b->n_w : T);
        L->sv = tnmtl_calloc((size_t)L->n_sv, sizeof(double), "singular values", err);
        L->similarity = tnmtl_calloc((size_t)T * T, sizeof(double), "similarity matrix", err);
        L->relatedness = tnmtl_calloc((size_t)T * T, sizeof(double), "relatedness matrix", err);
        if (!L->sv || !L->similarity || !L->relatedness) goto done;
        const tnmtl_layer_info *li = tnmtl_net_layer(m->nets[0], b->layer);
        const int64_t d_out = li->weight_shape[li->weight_ndim - 1], d_in = b->n_w / d_out;
        const float *W = m->params + b->w_offset; /* [T][n_w], or [n_w] if shared */
        if (b->shared) {
            double nn = 0;
            for (int64_t j = 0; j < b->n_w; j++) nn += (double)W[j] * W[j];
            for (int s = 0; s < T * T; s++) G[s] = nn;
        } else {
            /* G = W W^T: float products, then the small result in double. */
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, T, (int)b->n_w, 1.0f, W, (int)b->n_w, 0.0f,
                        gram32, T);
            for (int s = 0; s < T; s++)
                for (int t = s; t < T; t++) G[s * T + t] = G[t * T + s] = gram32[s * T + t];
        }
        if ((st = analyse_gram(T, G, L, err))) goto done;
        if (b->shared) {
            for (int s = 0; s < T * T; s++) L->relatedness[s] = 1;
        } else {
            free(C);
            C = tnmtl_malloc((size_t)(d_out * d_out) * sizeof(float), "relatedness scratch", err);
            if (!C) goto done;
            relatedness(T, W, d_in, d_out, C, L->relatedness);
        }
        for (int s = 0; s < T * T; s++) {
            r->similarity[s] += L->similarity[s];
            r->relatedness[s] += L->relatedness[s];
        }
    }
    for (int s = 0; s < T * T && r->n_layers; s++) {
        r->similarity[s] /= r->n_layers;
        r->relatedness[s] /= r->n_layers;
    }
    st = TNMTL_OK;
done:
    free(C);
    free(gram32);
    free(G);
    if (st) tnmtl_sharing_report_free(r);
    return st;
}

/* The unfoldings of an ndim-axis tensor the norms use: Tucker modes
 * 0..ndim-1, then TT terms 1..ndim-3 (TT's first is Tucker mode 0, its
 * last Tucker mode ndim-1).  Returns the count; fills method/term/used_by. */
static int list_unfoldings(int ndim, tnmtl_norm_method *method, int *term, unsigned *used_by)
{
    int n = 0;
    for (int i = 0; i < ndim; i++, n++) {
        method[n] = TNMTL_NORM_TUCKER, term[n] = i;
        used_by[n] = 1u << TNMTL_NORM_TUCKER;
        if (i == 0 && ndim >= 2) used_by[n] |= 1u << TNMTL_NORM_TT;
        if (i == ndim - 1) used_by[n] |= 1u << TNMTL_NORM_LAF | (ndim >= 2 ? 1u << TNMTL_NORM_TT : 0);
    }
    for (int i = 1; i <= ndim - 3; i++, n++) method[n] = TNMTL_NORM_TT, term[n] = i, used_by[n] = 1u << TNMTL_NORM_TT;
    return n;
}

tnmtl_status tnmtl_sharing_report_spectra(const tnmtl_mtl *m, tnmtl_sharing_report *r, tnmtl_error *err)
{
    float *W = NULL;
    tnmtl_status st = TNMTL_OK;
    for (int i = 0, k = 0; i < m->n_blocks && !st; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        if (!b->shareable) continue;
        tnmtl_layer_sharing *L = &r->layers[k++];
        if (b->shared || L->unf) continue;
        tnmtl_norm_method meth[2 * TNMTL_NORM_MAX_NDIM];
        int term[2 * TNMTL_NORM_MAX_NDIM];
        unsigned used[2 * TNMTL_NORM_MAX_NDIM];
        const int n = list_unfoldings(b->ndim, meth, term, used);
        free(W);
        W = tnmtl_malloc((size_t)(b->n_w * m->n_tasks) * sizeof *W, "stacked weights", err);
        L->unf = tnmtl_calloc((size_t)n, sizeof *L->unf, "unfolding spectra", err);
        if (!W || !L->unf) {
            st = TNMTL_ERR_NOMEM;
            break;
        }
        tnmtl_mtl_stack(m, b, m->params + b->w_offset, W);
        for (int u = 0; u < n && !st; u++) {
            tnmtl_unfolding_spectrum *S = &L->unf[L->n_unf++];
            snprintf(S->name, sizeof S->name, "%s %d", meth[u] == TNMTL_NORM_TT ? "tt" : "mode", term[u] + 1);
            S->used_by = used[u];
            tnmtl_norm_term_shape(meth[u], b->ndim, b->shape, term[u], &S->rows, &S->cols);
            S->n_sv = (int)(S->rows < S->cols ? S->rows : S->cols);
            S->sv = tnmtl_calloc((size_t)S->n_sv, sizeof *S->sv, "singular values", err);
            if (!S->sv) st = TNMTL_ERR_NOMEM;
            else st = tnmtl_norm_term_singular_values(meth[u], b->ndim, b->shape, W, term[u], S->sv, err);
            double sum = 0;
            for (int j = 0; j < S->n_sv && !st; j++) sum += S->sv[j];
            for (int j = 0; j < S->n_sv && !st && sum > 0; j++) S->sv[j] /= sum;
        }
        if (st) tnmtl_error_prefix(err, "spectra of layer %s", L->name);
    }
    free(W);
    return st;
}

struct csv_job { const tnmtl_sharing_report *r; const double *S; char *const *names; };

static void write_name(FILE *f, const char *name)
{
    fputc('"', f);
    for (const char *p = name; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static int write_similarity_csv(FILE *f, void *user)
{
    const struct csv_job *j = user;
    const int T = j->r->n_tasks;
    fprintf(f, "task");
    for (int t = 0; t < T; t++) {
        fputc(',', f);
        write_name(f, j->names[t]);
    }
    fputc('\n', f);
    for (int s = 0; s < T; s++) {
        write_name(f, j->names[s]);
        for (int t = 0; t < T; t++) fprintf(f, ",%.6f", j->S[s * T + t]);
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}

static int write_sharing_json(FILE *f, void *user)
{
    const tnmtl_sharing_report *r = user;
    fprintf(f, "{\"n_tasks\": %d, \"layers\": [", r->n_tasks);
    for (int k = 0; k < r->n_layers; k++) {
        const tnmtl_layer_sharing *L = &r->layers[k];
        fprintf(f, "%s\n  {\"layer\": %d, \"name\": \"%s\", \"shared\": %s, \"regularised\": %s, \"rho\": %.6f, "
                   "\"effective_rank\": %.4f, \"singular_values\": [",
                k ? "," : "", L->layer, L->name, L->shared ? "true" : "false", L->stacked ? "true" : "false", L->rho,
                L->eff_rank);
        for (int i = 0; i < L->n_sv; i++) fprintf(f, "%s%.6g", i ? ", " : "", L->sv[i]);
        fprintf(f, "]");
        if (L->n_unf) fprintf(f, ", \"unfoldings\": [");
        for (int u = 0; u < L->n_unf; u++) {
            const tnmtl_unfolding_spectrum *S = &L->unf[u];
            fprintf(f, "%s\n    {\"name\": \"%s\", \"rows\": %lld, \"cols\": %lld, \"used_by\": [", u ? "," : "",
                    S->name, (long long)S->rows, (long long)S->cols);
            for (int mth = 0, c = 0; mth < 3; mth++)
                if (S->used_by >> mth & 1) fprintf(f, "%s\"%s\"", c++ ? ", " : "", tnmtl_norm_method_name(mth));
            fprintf(f, "], \"singular_values\": [");
            for (int j = 0; j < S->n_sv; j++) fprintf(f, "%s%.4g", j ? ", " : "", S->sv[j]);
            fprintf(f, "]}");
        }
        fprintf(f, "%s}", L->n_unf ? "]" : "");
    }
    fprintf(f, "\n]}\n");
    return ferror(f) ? -1 : 0;
}

tnmtl_status tnmtl_sharing_report_write(const tnmtl_sharing_report *r, char *const *task_names,
                                        const char *dir, tnmtl_error *err)
{
    char path[4096];
    tnmtl_status st = tnmtl_mkdir_p(dir, err);
    if (st) return st;
    snprintf(path, sizeof path, "%s/sharing.json", dir);
    if ((st = tnmtl_write_file_atomic(path, write_sharing_json, (void *)r, err))) return st;
    for (int which = 0; which < 2; which++) {
        const char *name = which ? "relatedness" : "similarity";
        struct csv_job job = {r, which ? r->relatedness : r->similarity, task_names};
        snprintf(path, sizeof path, "%s/%s.csv", dir, name);
        if ((st = tnmtl_write_file_atomic(path, write_similarity_csv, &job, err))) return st;
        for (int k = 0; k < r->n_layers; k++) {
            job.S = which ? r->layers[k].relatedness : r->layers[k].similarity;
            snprintf(path, sizeof path, "%s/%s_layer%d.csv", dir, name, r->layers[k].layer);
            if ((st = tnmtl_write_file_atomic(path, write_similarity_csv, &job, err))) return st;
        }
    }
    return TNMTL_OK;
}
