/* layers_impl.h - layer kernels, written once for a scalar type (internal).
 *
 * Included twice by layers.c with:
 *   REAL       float | double
 *   S(name)    name##_f32 | name##_f64      (internal kernels)
 *   PUB(name)  name       | name##_f64      (public loss functions)
 *   GEMM       cblas_sgemm | cblas_dgemm
 *   TANH_N     y[n] = tanh(x[n]) for REAL arrays
 * See layers.h for the contract of each function.
 */

/* ---- im2col / col2im ------------------------------------------------------
 * Chunk of output rows [u0, u1) (row u = (b, oh), b = u / Ho): column matrix
 * col[(u - u0) * Wo + ow][(kh * K + kw) * C + c] = in[b][oh+kh-pad][ow+kw-pad][c]
 * (0 outside the image).  For fixed (ow, kh) the kw*C entries that fall inside
 * the image are contiguous in NHWC memory, so each is one copy. */
static void S(im2col)(REAL *col, const REAL *in, const tnmtl_conv_geom *g, size_t u0, size_t u1)
{
    const int H = g->H, W = g->W, C = g->C, K = g->K, pad = g->pad, Wo = g->Wo, Ho = g->Ho;
    const size_t KC = (size_t)K * C, KKC = (size_t)K * KC;
    for (size_t u = u0; u < u1; u++) {
        const size_t b = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        const REAL *img = in + b * (size_t)H * W * C;
        for (int ow = 0; ow < Wo; ow++) {
            REAL *row = col + ((u - u0) * (size_t)Wo + (size_t)ow) * KKC;
            /* kw range whose input column lies inside the image */
            const int kw0 = ow - pad < 0 ? pad - ow : 0;
            const int kw1 = ow - pad + K > W ? W - ow + pad : K;
            for (int kh = 0; kh < K; kh++) {
                REAL *dst = row + (size_t)kh * KC;
                const int ih = oh + kh - pad;
                if (ih < 0 || ih >= H) {
                    memset(dst, 0, KC * sizeof *dst);
                    continue;
                }
                if (kw0 > 0) memset(dst, 0, (size_t)kw0 * C * sizeof *dst);
                const REAL *src = img + ((size_t)ih * W + (size_t)(ow - pad + kw0)) * C;
                const size_t len = (size_t)(kw1 - kw0) * C;
                REAL *d = dst + (size_t)kw0 * C;
                for (size_t i = 0; i < len; i++) d[i] = src[i];
                if (kw1 < K) memset(dst + (size_t)kw1 * C, 0, (size_t)(K - kw1) * C * sizeof *dst);
            }
        }
    }
}

/* The adjoint of im2col: din[b][ih][iw][c] += col[...] over the chunk. */
static void S(col2im)(REAL *din, const REAL *col, const tnmtl_conv_geom *g, size_t u0, size_t u1)
{
    const int H = g->H, W = g->W, C = g->C, K = g->K, pad = g->pad, Wo = g->Wo, Ho = g->Ho;
    const size_t KC = (size_t)K * C, KKC = (size_t)K * KC;
    for (size_t u = u0; u < u1; u++) {
        const size_t b = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        REAL *img = din + b * (size_t)H * W * C;
        for (int ow = 0; ow < Wo; ow++) {
            const REAL *row = col + ((u - u0) * (size_t)Wo + (size_t)ow) * KKC;
            const int kw0 = ow - pad < 0 ? pad - ow : 0;
            const int kw1 = ow - pad + K > W ? W - ow + pad : K;
            for (int kh = 0; kh < K; kh++) {
                const int ih = oh + kh - pad;
                if (ih < 0 || ih >= H) continue;
                REAL *dst = img + ((size_t)ih * W + (size_t)(ow - pad + kw0)) * C;
                const REAL *src = row + (size_t)kh * KC + (size_t)kw0 * C;
                const size_t len = (size_t)(kw1 - kw0) * C;
                for (size_t i = 0; i < len; i++) dst[i] += src[i];
            }
        }
    }
}

/* ---- activations ---------------------------------------------------------- */

void S(tnmtl_act_forward)(REAL *y, const REAL *x, size_t n, tnmtl_activation act)
{
    switch (act) {
    case TNMTL_ACT_TANH:
        TANH_N(y, x, n);
        break;
    case TNMTL_ACT_RELU:
        /* x < 0 ? 0 : x lets NaN through, as torch.relu does */
        for (size_t i = 0; i < n; i++) y[i] = x[i] < 0 ? (REAL)0 : x[i];
        break;
    case TNMTL_ACT_NONE:
        if (y != x) memmove(y, x, n * sizeof *y);
        break;
    }
}

void S(tnmtl_act_backward)(REAL *dx, const REAL *dy, const REAL *y, size_t n, tnmtl_activation act)
{
    switch (act) {
    case TNMTL_ACT_TANH:
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * ((REAL)1 - y[i] * y[i]);
        break;
    case TNMTL_ACT_RELU:
        for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : (REAL)0;
        break;
    case TNMTL_ACT_NONE:
        if (dx != dy) memmove(dx, dy, n * sizeof *dx);
        break;
    }
}

/* out[rows][F] += b[F], then the activation, on a block that is in cache. */
static void S(bias_act)(REAL *out, const REAL *b, size_t rows, int F, tnmtl_activation act)
{
    for (size_t r = 0; r < rows; r++) {
        REAL *o = out + r * (size_t)F;
        for (int f = 0; f < F; f++) o[f] += b[f];
    }
    if (act != TNMTL_ACT_NONE) S(tnmtl_act_forward)(out, out, rows * (size_t)F, act);
}

/* db[F] += sum over rows of d[rows][F] */
static void S(bias_grad)(REAL *db, const REAL *d, size_t rows, int F)
{
    for (size_t r = 0; r < rows; r++) {
        const REAL *dr = d + r * (size_t)F;
        for (int f = 0; f < F; f++) db[f] += dr[f];
    }
}

/* ---- convolution -----------------------------------------------------------
 * Per chunk of output rows: out_chunk[M][F] = col[M][KKC] w[KKC][F] with
 * M = rows * Wo; the NHWC output of the chunk is exactly that matrix. */
void S(tnmtl_conv_forward)(REAL *out, const REAL *in, const REAL *w, const REAL *b, REAL *col,
                           const tnmtl_conv_geom *g, int B, tnmtl_activation act)
{
    const int F = g->F, KKC = g->K * g->K * g->C;
    const size_t units = (size_t)B * g->Ho;
    /* a 1x1 valid conv is a plain matrix product on the input */
    const int direct = g->K == 1 && g->pad == 0;
    for (size_t u0 = 0; u0 < units; u0 += (size_t)g->chunk) {
        const size_t u1 = u0 + (size_t)g->chunk < units ? u0 + (size_t)g->chunk : units;
        const size_t M = (u1 - u0) * (size_t)g->Wo;
        REAL *o = out + u0 * (size_t)g->Wo * F;
        const REAL *a = direct ? in + u0 * (size_t)g->Wo * KKC : col;
        if (!direct) S(im2col)(col, in, g, u0, u1);
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, F, KKC, 1, a, KKC, w, F, 0, o, F);
        S(bias_act)(o, b, M, F, act);
    }
}

void S(tnmtl_conv_backward)(REAL *din, REAL *dw, REAL *db, const REAL *dout, const REAL *in,
                            const REAL *w, REAL *col, const tnmtl_conv_geom *g, int B)
{
    const int F = g->F, KKC = g->K * g->K * g->C;
    const size_t units = (size_t)B * g->Ho;
    const int direct = g->K == 1 && g->pad == 0;
    if (din && !direct) memset(din, 0, (size_t)B * g->H * g->W * g->C * sizeof *din);
    for (size_t u0 = 0; u0 < units; u0 += (size_t)g->chunk) {
        const size_t u1 = u0 + (size_t)g->chunk < units ? u0 + (size_t)g->chunk : units;
        const size_t M = (u1 - u0) * (size_t)g->Wo;
        const REAL *d = dout + u0 * (size_t)g->Wo * F;
        const REAL *a = direct ? in + u0 * (size_t)g->Wo * KKC : col;
        if (!direct && dw) S(im2col)(col, in, g, u0, u1);
        /* dw[KKC][F] += col^T d */
        if (dw) GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, KKC, F, (int)M, 1, a, KKC, d, F, 1, dw, F);
        if (db) S(bias_grad)(db, d, M, F);
        if (!din) continue;
        if (direct) { /* din rows of the chunk = d w^T */
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, KKC, F, 1, d, F, w, F, 0,
                 din + u0 * (size_t)g->Wo * KKC, KKC);
            continue;
        }
        /* dcol[M][KKC] = d w^T, then scattered back onto the image */
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, KKC, F, 1, d, F, w, F, 0, col, KKC);
        S(col2im)(din, col, g, u0, u1);
    }
}

/* ---- max-pooling ---------------------------------------------------------- */

void S(tnmtl_maxpool_forward)(REAL *out, int32_t *idx, const REAL *in, int B, int H, int W, int C,
                              int k)
{
    const int Ho = H / k, Wo = W / k;
    for (size_t b = 0; b < (size_t)B; b++) {
        const REAL *img = in + b * (size_t)H * W * C;
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                const size_t o = ((b * Ho + (size_t)oh) * Wo + (size_t)ow) * C;
                REAL *best = out + o;
                int32_t *bi = idx + o;
                /* window scanned row by row; strictly greater keeps the first
                 * maximum (as PyTorch does), NaN wins so that it propagates */
                for (int kh = 0; kh < k; kh++)
                    for (int kw = 0; kw < k; kw++) {
                        const int32_t off = (int32_t)((((oh * k + kh) * W) + ow * k + kw) * C);
                        const REAL *src = img + off;
                        if (kh == 0 && kw == 0) {
                            for (int c = 0; c < C; c++) {
                                best[c] = src[c];
                                bi[c] = off + c;
                            }
                            continue;
                        }
                        for (int c = 0; c < C; c++)
                            if (src[c] > best[c] || (src[c] != src[c] && best[c] == best[c])) {
                                best[c] = src[c];
                                bi[c] = off + c;
                            }
                    }
            }
    }
}

void S(tnmtl_maxpool_backward)(REAL *din, const REAL *dout, const int32_t *idx, int B, int H,
                               int W, int C, int k)
{
    const size_t in_n = (size_t)H * W * C, out_n = (size_t)(H / k) * (W / k) * C;
    memset(din, 0, (size_t)B * in_n * sizeof *din);
    for (size_t b = 0; b < (size_t)B; b++) {
        REAL *img = din + b * in_n;
        const REAL *d = dout + b * out_n;
        const int32_t *ix = idx + b * out_n;
        for (size_t i = 0; i < out_n; i++) img[ix[i]] += d[i];
    }
}

/* ---- fully connected ------------------------------------------------------ */

void S(tnmtl_fc_forward)(REAL *out, const REAL *in, const REAL *w, const REAL *b, int B, int D,
                         int N, tnmtl_activation act)
{
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, N, D, 1, in, D, w, N, 0, out, N);
    S(bias_act)(out, b, (size_t)B, N, act);
}

void S(tnmtl_fc_backward)(REAL *din, REAL *dw, REAL *db, const REAL *dout, const REAL *in,
                          const REAL *w, int B, int D, int N)
{
    if (dw) GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, D, N, B, 1, in, D, dout, N, 1, dw, N);
    if (db) S(bias_grad)(db, dout, (size_t)B, N);
    if (din) GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, B, D, N, 1, dout, N, w, N, 0, din, D);
}

/* ---- losses (public) -------------------------------------------------------
 * Sums are taken in double in both variants.  A label outside [0, C) makes
 * the loss NaN (its row's gradient is then the plain softmax). */
double PUB(tnmtl_softmax_xent)(const REAL *logits, const int *labels, int B, int C, REAL *dlogits)
{
    double total = 0;
    for (size_t b = 0; b < (size_t)B; b++) {
        const REAL *z = logits + b * (size_t)C;
        double m = z[0];
        for (int c = 1; c < C; c++)
            if (z[c] > m || z[c] != z[c]) m = z[c];
        double s = 0;
        for (int c = 0; c < C; c++) s += exp((double)z[c] - m);
        const double lse = m + log(s);
        const int y = labels[b];
        const int ok = y >= 0 && y < C;
        total += ok ? lse - (double)z[y] : NAN;
        if (!dlogits) continue;
        REAL *d = dlogits + b * (size_t)C;
        for (int c = 0; c < C; c++) d[c] = (REAL)(exp((double)z[c] - lse) / B);
        if (ok) d[y] -= (REAL)(1.0 / B);
    }
    return total / B;
}

double PUB(tnmtl_mse)(const REAL *out, const REAL *target, int B, int D, REAL *dout)
{
    const size_t n = (size_t)B * D;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = (double)out[i] - (double)target[i];
        total += e * e;
        if (dout) dout[i] = (REAL)(2.0 * e / (double)n);
    }
    return total / (double)n;
}
