/* layers_direct.h - the DIRECT conv kernels for one instruction set (internal).
 *
 * Included by layers_impl.h (itself compiled for float and double) with:
 *   DVB      vector bytes (16: SSE2 or plain C, 32: AVX2)
 *   DTARGET  function attribute selecting the instruction set (or nothing)
 *   D(name)  the name of this instance
 * The vectors are GCC/Clang vector extensions: portable C that the compiler
 * maps onto the target's registers.
 *
 * Blocks: a run of channels (filters F, or input channels C for the input
 * gradient) is cut into blocks of 2 vectors, or 1 vector and a half vector
 * (AVX2 float: 16 or 12 channels), or 1 vector, or a half vector; a channel
 * count that is a multiple of 4 always cuts this way.  Each kernel keeps a
 * block of channels for a few pixels (or taps) in registers; the blocking
 * never changes the order in which an output element's terms are added, so
 * every instance (and every block size) gives the same bits.
 */

typedef REAL D(vec) __attribute__((vector_size(DVB)));
#define DVL ((int)(DVB / (int)sizeof(REAL)))

static inline __attribute__((always_inline)) DTARGET D(vec) D(ld)(const REAL *p)
{
    D(vec) v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) DTARGET void D(st)(REAL *p, D(vec) v)
{
    memcpy(p, &v, sizeof v);
}

#if DVB > 16
typedef REAL D(hvec) __attribute__((vector_size(DVB / 2)));
#define DHL (DVL / 2)

static inline __attribute__((always_inline)) DTARGET D(hvec) D(ldh)(const REAL *p)
{
    D(hvec) v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) DTARGET void D(sth)(REAL *p, D(hvec) v)
{
    memcpy(p, &v, sizeof v);
}
#endif

/* The next block of the channels [c0, n): *nv vectors and *hf (0 or 1)
 * half vectors; returns its width (n - c0 is a multiple of 4). */
static inline int D(block)(int n, int c0, int *nv, int *hf)
{
    const int r = n - c0;
    *nv = r >= 2 * DVL ? 2 : r >= DVL ? 1 : 0;
    *hf = 0;
#if DVB > 16
    if (*nv < 2 && r - *nv * DVL >= DHL) *hf = 1;
    return *nv * DVL + *hf * DHL;
#else
    return *nv * DVL;
#endif
}

/* np output pixels from ow, filters [f0, f0 + block) of one output row:
 * o[p][f] = b[f] + sum over kh, then the K*C taps t = (kw, c) in order, of
 * x[t] * w[kh][t][f].  For output pixel ow and kernel row kh the taps are
 * contiguous in the input at r = img + (kh * W + ow) * C, and the next pixel
 * starts C further. */
static inline __attribute__((always_inline)) DTARGET void D(fwd_px)(REAL *o, const REAL *img, const REAL *w,
                                                                    const REAL *b, int W, int C, int K, int F,
                                                                    int ow, int f0, const int np, const int nv,
                                                                    const int hf)
{
    const int KC = K * C;
    D(vec) acc[12][2];
    for (int p = 0; p < np; p++)
        for (int v = 0; v < nv; v++) acc[p][v] = D(ld)(b + f0 + v * DVL);
#if DVB > 16
    D(hvec) acch[12];
    for (int p = 0; p < np && hf; p++) acch[p] = D(ldh)(b + f0 + nv * DVL);
#endif
    for (int kh = 0; kh < K; kh++) {
        const REAL *r = img + ((size_t)kh * W + (size_t)ow) * C;
        const REAL *wk = w + (size_t)kh * KC * F + f0;
        for (int t = 0; t < KC; t++) {
            D(vec) wv[2];
            for (int v = 0; v < nv; v++) wv[v] = D(ld)(wk + (size_t)t * F + v * DVL);
#if DVB > 16
            const D(hvec) wh = hf ? D(ldh)(wk + (size_t)t * F + nv * DVL) : (D(hvec)){0};
#endif
            for (int p = 0; p < np; p++) {
                const REAL x = r[p * C + t];
                for (int v = 0; v < nv; v++) acc[p][v] += x * wv[v];
#if DVB > 16
                if (hf) acch[p] += x * wh;
#endif
            }
        }
    }
    for (int p = 0; p < np; p++) {
        for (int v = 0; v < nv; v++) D(st)(o + (size_t)(ow + p) * F + f0 + v * DVL, acc[p][v]);
#if DVB > 16
        if (hf) D(sth)(o + (size_t)(ow + p) * F + f0 + nv * DVL, acch[p]);
#endif
    }
}

/* One output row, one block of filters: pixels np at a time, then singly. */
static inline __attribute__((always_inline)) DTARGET void D(fwd_row)(REAL *o, const REAL *img, const REAL *w,
                                                                     const REAL *b, int W, int C, int K, int F,
                                                                     int Wo, int f0, const int np, const int nv,
                                                                     const int hf)
{
    int ow = 0;
    for (; ow + np <= Wo; ow += np) D(fwd_px)(o, img, w, b, W, C, K, F, ow, f0, np, nv, hf);
    for (; ow < Wo; ow++) D(fwd_px)(o, img, w, b, W, C, K, F, ow, f0, 1, nv, hf);
}

/* Output rows [u0, u1) of a DIRECT layer, without activation, into out
 * (which holds row u0 first).  Accumulators: np pixels x one block of
 * filters (at most 12 vector registers). */
static DTARGET void D(direct_fwd)(REAL *out, const REAL *in, const REAL *w, const REAL *b,
                                  const tnmtl_conv_geom *g, size_t u0, size_t u1)
{
    const int W = g->W, C = g->C, K = g->K, F = g->F, Wo = g->Wo, Ho = g->Ho;
    for (size_t u = u0; u < u1; u++) {
        const size_t bi = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        const REAL *img = in + (bi * g->H + (size_t)oh) * W * C; /* input row oh */
        REAL *o = out + (u - u0) * (size_t)Wo * F;
        int nv, hf;
        for (int f0 = 0; f0 < F; f0 += D(block)(F, f0, &nv, &hf)) {
            D(block)(F, f0, &nv, &hf);
            if (nv == 2) D(fwd_row)(o, img, w, b, W, C, K, F, Wo, f0, 6, 2, 0);
            else if (nv == 1 && hf) D(fwd_row)(o, img, w, b, W, C, K, F, Wo, f0, 6, 1, 1);
            else if (nv == 1) D(fwd_row)(o, img, w, b, W, C, K, F, Wo, f0, 8, 1, 0);
            else D(fwd_row)(o, img, w, b, W, C, K, F, Wo, f0, 8, 0, 1);
        }
    }
}

/* acc[nt][block] += sum over the Wo pixels of one output row of x[t] * d[f]:
 * x = r + ow*C (taps), d = dr + ow*F (one block of filters).  Inlined with
 * constant nt, nv, hf, the accumulators live in registers. */
static inline __attribute__((always_inline)) DTARGET void D(dw_row)(D(vec) (*acc)[2], REAL *acch, const int nt,
                                                                    const REAL *r, const REAL *dr, int Wo, int C,
                                                                    int F, const int nv, const int hf)
{
    D(vec) a[6][2];
    for (int tt = 0; tt < nt; tt++)
        for (int v = 0; v < nv; v++) a[tt][v] = acc[tt][v];
#if DVB > 16
    D(hvec) ah[6];
    for (int tt = 0; tt < nt && hf; tt++) ah[tt] = D(ldh)(acch + tt * DHL);
#endif
    for (int ow = 0; ow < Wo; ow++) {
        D(vec) d[2];
        for (int v = 0; v < nv; v++) d[v] = D(ld)(dr + (size_t)ow * F + v * DVL);
#if DVB > 16
        const D(hvec) dh = hf ? D(ldh)(dr + (size_t)ow * F + nv * DVL) : (D(hvec)){0};
#endif
        const REAL *x = r + (size_t)ow * C;
        for (int tt = 0; tt < nt; tt++) {
            for (int v = 0; v < nv; v++) a[tt][v] += x[tt] * d[v];
#if DVB > 16
            if (hf) ah[tt] += x[tt] * dh;
#endif
        }
    }
    for (int tt = 0; tt < nt; tt++)
        for (int v = 0; v < nv; v++) acc[tt][v] = a[tt][v];
#if DVB > 16
    for (int tt = 0; tt < nt && hf; tt++) D(sth)(acch + tt * DHL, ah[tt]);
#else
    (void)acch;
#endif
}

/* dw[kh][t0 .. t0+nt)[f0 .. block) += sum over the pixels of output rows
 * [u0, u1) of in[b][oh+kh][ow][t] * dout[pixel][f] */
static inline __attribute__((always_inline)) DTARGET void D(dw_blk)(REAL *dw, const REAL *dout, const REAL *in,
                                                                    const tnmtl_conv_geom *g, size_t u0, size_t u1,
                                                                    int kh, int t0, int f0, const int nt,
                                                                    const int nv, const int hf)
{
    const int W = g->W, C = g->C, K = g->K, F = g->F, Wo = g->Wo, Ho = g->Ho, KC = K * C;
    D(vec) acc[6][2];
    REAL acch[6 * DVL / 2];
    memset(acc, 0, sizeof acc);
    memset(acch, 0, sizeof acch);
    for (size_t u = u0; u < u1; u++) {
        const size_t bi = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        const REAL *r = in + ((bi * g->H + (size_t)(oh + kh)) * W) * C + t0;
        const REAL *dr = dout + (u - u0) * (size_t)Wo * F + f0;
        D(dw_row)(acc, acch, nt, r, dr, Wo, C, F, nv, hf);
    }
    for (int tt = 0; tt < nt; tt++) {
        REAL *dp = dw + ((size_t)kh * KC + (size_t)(t0 + tt)) * F + f0;
        for (int v = 0; v < nv; v++) D(st)(dp + v * DVL, D(ld)(dp + v * DVL) + acc[tt][v]);
#if DVB > 16
        if (hf) D(sth)(dp + nv * DVL, D(ldh)(dp + nv * DVL) + D(ldh)(acch + tt * DHL));
#endif
    }
}

static inline __attribute__((always_inline)) DTARGET void D(dw_taps)(REAL *dw, const REAL *dout, const REAL *in,
                                                                     const tnmtl_conv_geom *g, size_t u0, size_t u1,
                                                                     int kh, int t0, int f0, int nt, const int nv,
                                                                     const int hf)
{
    switch (nt) {
    case 1: D(dw_blk)(dw, dout, in, g, u0, u1, kh, t0, f0, 1, nv, hf); break;
    case 2: D(dw_blk)(dw, dout, in, g, u0, u1, kh, t0, f0, 2, nv, hf); break;
    case 3: D(dw_blk)(dw, dout, in, g, u0, u1, kh, t0, f0, 3, nv, hf); break;
    case 4: D(dw_blk)(dw, dout, in, g, u0, u1, kh, t0, f0, 4, nv, hf); break;
    case 5: D(dw_blk)(dw, dout, in, g, u0, u1, kh, t0, f0, 5, nv, hf); break;
    default: D(dw_blk)(dw, dout, in, g, u0, u1, kh, t0, f0, 6, nv, hf); break;
    }
}

/* dw[kh][t][f] += sum over the pixels of output rows [u0, u1) of
 * in[b][oh+kh][ow][t] * dout[pixel][f] (dout holds row u0 first): blocks of
 * up to 6 taps x one block of filters in registers (C = 1, K = 5: one tap
 * block per kernel row). */
static DTARGET void D(direct_dw)(REAL *dw, const REAL *dout, const REAL *in, const tnmtl_conv_geom *g,
                                 size_t u0, size_t u1)
{
    const int K = g->K, F = g->F, KC = K * g->C;
    int nv, hf;
    for (int kh = 0; kh < K; kh++)
        for (int f0 = 0; f0 < F; f0 += D(block)(F, f0, &nv, &hf)) {
            D(block)(F, f0, &nv, &hf);
            for (int t0 = 0; t0 < KC; t0 += 6) {
                const int nt = KC - t0 < 6 ? KC - t0 : 6;
                if (nv == 2) D(dw_taps)(dw, dout, in, g, u0, u1, kh, t0, f0, nt, 2, 0);
                else if (nv == 1 && hf) D(dw_taps)(dw, dout, in, g, u0, u1, kh, t0, f0, nt, 1, 1);
                else if (nv == 1) D(dw_taps)(dw, dout, in, g, u0, u1, kh, t0, f0, nt, 1, 0);
                else D(dw_taps)(dw, dout, in, g, u0, u1, kh, t0, f0, nt, 0, 1);
            }
        }
}

/* np input pixels x[j] = drow + j*C (channels [c0, c0 + block) already
 * added), j < np: x[j] += sum over f of d[j][f] * wk[f][c]; d = dr + j*F. */
static inline __attribute__((always_inline)) DTARGET void D(dx_px)(REAL *x, const REAL *dr, const REAL *wk, int C,
                                                                   int F, const int np, const int nv, const int hf)
{
    D(vec) acc[12][2];
    for (int j = 0; j < np; j++)
        for (int v = 0; v < nv; v++) acc[j][v] = D(ld)(x + (size_t)j * C + v * DVL);
#if DVB > 16
    D(hvec) acch[12];
    for (int j = 0; j < np && hf; j++) acch[j] = D(ldh)(x + (size_t)j * C + nv * DVL);
#endif
    for (int f = 0; f < F; f++) {
        D(vec) wv[2];
        for (int v = 0; v < nv; v++) wv[v] = D(ld)(wk + (size_t)f * C + v * DVL);
#if DVB > 16
        const D(hvec) wh = hf ? D(ldh)(wk + (size_t)f * C + nv * DVL) : (D(hvec)){0};
#endif
        for (int j = 0; j < np; j++) {
            const REAL d = dr[(size_t)j * F + f];
            for (int v = 0; v < nv; v++) acc[j][v] += d * wv[v];
#if DVB > 16
            if (hf) acch[j] += d * wh;
#endif
        }
    }
    for (int j = 0; j < np; j++) {
        for (int v = 0; v < nv; v++) D(st)(x + (size_t)j * C + v * DVL, acc[j][v]);
#if DVB > 16
        if (hf) D(sth)(x + (size_t)j * C + nv * DVL, acch[j]);
#endif
    }
}

/* One output row's contribution through kernel tap (kh, kw) to one input
 * row: pixels np at a time, then singly. */
static inline __attribute__((always_inline)) DTARGET void D(dx_row)(REAL *xrow, const REAL *dr, const REAL *wk, int C,
                                                                    int F, int Wo, const int np, const int nv,
                                                                    const int hf)
{
    int ow = 0;
    for (; ow + np <= Wo; ow += np) D(dx_px)(xrow + (size_t)ow * C, dr + (size_t)ow * F, wk, C, F, np, nv, hf);
    for (; ow < Wo; ow++) D(dx_px)(xrow + (size_t)ow * C, dr + (size_t)ow * F, wk, C, F, 1, nv, hf);
}

/* Input gradient of output rows [u0, u1) (dout holds row u0 first), added
 * into din: din[b][oh+kh][ow+kw][c] += sum over f of dout[u][ow][f] *
 * wt[kh][kw][f][c] (wt: the weights with the last two axes swapped).  An
 * input element's terms are added row u by row u, then kw by kw, then f by
 * f, whatever the blocking.  Needs C % 4 == 0. */
static DTARGET void D(direct_dx)(REAL *din, const REAL *dout, const REAL *wt, const tnmtl_conv_geom *g,
                                 size_t u0, size_t u1)
{
    const int W = g->W, C = g->C, K = g->K, F = g->F, Wo = g->Wo, Ho = g->Ho;
    for (size_t u = u0; u < u1; u++) {
        const size_t bi = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        const REAL *dr = dout + (u - u0) * (size_t)Wo * F;
        for (int kh = 0; kh < K; kh++) {
            REAL *row = din + (bi * g->H + (size_t)(oh + kh)) * W * C;
            int nv, hf;
            for (int c0 = 0; c0 < C; c0 += D(block)(C, c0, &nv, &hf)) {
                D(block)(C, c0, &nv, &hf);
                for (int kw = 0; kw < K; kw++) {
                    REAL *xr = row + (size_t)kw * C + c0;
                    const REAL *wk = wt + ((size_t)kh * K + (size_t)kw) * F * C + c0;
                    if (nv == 2) D(dx_row)(xr, dr, wk, C, F, Wo, 6, 2, 0);
                    else if (nv == 1 && hf) D(dx_row)(xr, dr, wk, C, F, Wo, 6, 1, 1);
                    else if (nv == 1) D(dx_row)(xr, dr, wk, C, F, Wo, 12, 1, 0);
                    else D(dx_row)(xr, dr, wk, C, F, Wo, 12, 0, 1);
                }
            }
        }
    }
}

#if DVB > 16
#undef DHL
#endif
#undef DVL
