/* layers_direct.h - the DIRECT conv kernels for one instruction set (internal).
 *
 * Included by layers_impl.h (itself compiled for float and double) with:
 *   DVB      vector bytes (16: SSE2 or plain C, 32: AVX2)
 *   DBIG     1 with 32 vector registers (AVX-512VL, still 32-byte vectors):
 *            larger register blocks (weight and input gradients, some
 *            forward blocks); else 0
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
 * never changes the order in which an output element's terms are added
 * (except where a kernel says so), so the instances differ only in that the
 * AVX2 ones fuse each multiply-add (one rounding instead of two).
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

/* A block of rem <= 12 pixels as a block of constant size (so that its
 * accumulators stay in registers): the last rem < np pixels of a row as one
 * block (as rem single pixels, each would be one chain of dependent adds),
 * or a row cut into blocks of near-equal size. */
#define DTAIL(rem, CALL)                                                                         \
    switch (rem) {                                                                               \
    case 0: break;                                                                               \
    case 1: CALL(1); break;                                                                      \
    case 2: CALL(2); break;                                                                      \
    case 3: CALL(3); break;                                                                      \
    case 4: CALL(4); break;                                                                      \
    case 5: CALL(5); break;                                                                      \
    case 6: CALL(6); break;                                                                      \
    case 7: CALL(7); break;                                                                      \
    case 8: CALL(8); break;                                                                      \
    case 9: CALL(9); break;                                                                      \
    case 10: CALL(10); break;                                                                    \
    case 11: CALL(11); break;                                                                    \
    default: CALL(12); break;                                                                    \
    }

/* Pixels [p0, p1) in nb = ceil((p1 - p0) / np) blocks of near-equal size
 * (<= np <= 12, each a constant through DTAIL): no short last block.
 * CALL(m) sees its block's first pixel as `ow`. */
#define DBALANCED(p0, p1, np, CALL)                                                              \
    do {                                                                                         \
        const int n_ = (p1) - (p0), nb_ = (n_ + (np) - 1) / (np);                                \
        for (int i_ = 0; i_ < nb_; i_++) {                                                       \
            const int ow = (p0) + n_ * i_ / nb_, m_ = (p0) + n_ * (i_ + 1) / nb_ - ow;           \
            DTAIL(m_, CALL);                                                                     \
        }                                                                                        \
    } while (0)

/* Output columns the kernels compute: all Wo, or with a fused k x k pool
 * the (Wo / k) * k that a pooling window reads (the others are never read
 * in the forward pass and have a zero gradient in the backward pass). */
static inline int D(cols)(const tnmtl_conv_geom *g) { return g->pool ? g->Wo / g->pool * g->pool : g->Wo; }

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

/* One output row, one block of filters: blocks of at most np pixels. */
static inline __attribute__((always_inline)) DTARGET void D(fwd_row)(REAL *o, const REAL *img, const REAL *w,
                                                                     const REAL *b, int W, int C, int K, int F,
                                                                     int Wo, int f0, const int np, const int nv,
                                                                     const int hf)
{
#define BLK(n) D(fwd_px)(o, img, w, b, W, C, K, F, ow, f0, n, nv, hf)
    DBALANCED(0, Wo, np, BLK);
#undef BLK
}

#if DVB == 32 && defined(REAL_F32)
/* ---- pixel pairs for a block of 1.5 vectors (AVX2 float: 12 filters) ----
 * A pixel's 1.5 vectors would take a whole and a half multiply-add; the
 * 2 x 1.5 vectors of two neighbouring pixels fill 3 whole vectors:
 *   A = pixel 2i, filters [f0, f0 + 8)
 *   B = pixel 2i, filters [f0 + 8, f0 + 12) | pixel 2i+1, [f0, f0 + 4)
 *   C = pixel 2i+1, filters [f0 + 4, f0 + 12)
 * Each output element gets the same products in the same order as in
 * fwd_px, so the bits are the same. */
static inline __attribute__((always_inline)) DTARGET __m256 D(join)(const REAL *lo, const REAL *hi)
{
    return _mm256_set_m128(_mm_loadu_ps(hi), _mm_loadu_ps(lo));
}

/* np pixel pairs from ow, filters [f0, f0 + DVL + DHL) */
static inline __attribute__((always_inline)) DTARGET void D(fwd2_px)(REAL *o, const REAL *img, const REAL *w,
                                                                     const REAL *b, int W, int C, int K, int F,
                                                                     int ow, int f0, const int np)
{
    const int KC = K * C;
    D(vec) acc[3][3];
    for (int i = 0; i < np; i++) {
        acc[i][0] = D(ld)(b + f0);
        acc[i][1] = D(join)(b + f0 + DVL, b + f0);
        acc[i][2] = D(ld)(b + f0 + DHL);
    }
    for (int kh = 0; kh < K; kh++) {
        const REAL *r = img + ((size_t)kh * W + (size_t)ow) * C;
        const REAL *wk = w + (size_t)kh * KC * F + f0;
        for (int t = 0; t < KC; t++) {
            const REAL *wt = wk + (size_t)t * F;
            const D(vec) wa = D(ld)(wt), wb = D(join)(wt + DVL, wt), wc = D(ld)(wt + DHL);
            for (int i = 0; i < np; i++) {
                const __m256 x0 = _mm256_broadcast_ss(r + (2 * i) * C + t);
                const __m256 x1 = _mm256_broadcast_ss(r + (2 * i + 1) * C + t);
                acc[i][0] += x0 * wa;
                acc[i][1] += _mm256_blend_ps(x0, x1, 0xf0) * wb;
                acc[i][2] += x1 * wc;
            }
        }
    }
    for (int i = 0; i < np; i++) {
        REAL *o0 = o + (size_t)(ow + 2 * i) * F + f0, *o1 = o0 + F;
        D(st)(o0, acc[i][0]);
        _mm_storeu_ps(o0 + DVL, _mm256_castps256_ps128(acc[i][1]));
        _mm_storeu_ps(o1, _mm256_extractf128_ps(acc[i][1], 1));
        D(st)(o1 + DHL, acc[i][2]);
    }
}

/* One output row (Wc pixels), filters [f0, f0 + DVL + DHL): 3 pairs at a
 * time (6 pairs with 32 registers were slower), then the pixels left one
 * block of fwd_px. */
static inline __attribute__((always_inline)) DTARGET void D(fwd2_row)(REAL *o, const REAL *img, const REAL *w,
                                                                      const REAL *b, int W, int C, int K, int F,
                                                                      int Wc, int f0)
{
    int ow = 0;
    for (; ow + 6 <= Wc; ow += 6) D(fwd2_px)(o, img, w, b, W, C, K, F, ow, f0, 3);
#define TAIL(n) D(fwd_px)(o, img, w, b, W, C, K, F, ow, f0, n, 1, 1)
    DTAIL(Wc - ow, TAIL);
#undef TAIL
}
#endif

/* ---- forward with one input channel (C = 1, K = 3 or 5, F a multiple of
 * the vector) ----
 * The taps of a pixel in kernel row kh are K consecutive input values, and
 * input value q of that row serves pixels q - kw (kw < K): broadcast once,
 * it feeds up to K multiply-adds (a vector of filters each) instead of one
 * (idle, one thread: conv1 of the Omniglot net 7% faster).  Every output
 * element still adds its terms in the order of fwd_px (kh, then kw), so the
 * bits are the same.  (The same idea for the weight gradient, a window of 8
 * output-gradient vectors against K accumulators, was 15% slower than
 * dw_row: its K accumulators are K chains of dependent adds.) */

/* np (< 12) output pixels from ow, filters [f0, f0 + DVL) */
static inline __attribute__((always_inline)) DTARGET void D(fwd1_px)(REAL *o, const REAL *img, const REAL *w,
                                                                     const REAL *b, int W, int F, int ow, int f0,
                                                                     const int K, const int np)
{
    D(vec) acc[12];
    for (int p = 0; p < np; p++) acc[p] = D(ld)(b + f0);
    for (int kh = 0; kh < K; kh++) {
        const REAL *r = img + (size_t)kh * W + ow;
        D(vec) wv[5];
        for (int kw = 0; kw < K; kw++) wv[kw] = D(ld)(w + ((size_t)kh * K + (size_t)kw) * F + f0);
#pragma GCC unroll 16
        for (int q = 0; q < np + K - 1; q++) {
            const REAL x = r[q];
#pragma GCC unroll 5
            for (int kw = 0; kw < K; kw++)
                if (q - kw >= 0 && q - kw < np) acc[q - kw] += x * wv[kw];
        }
    }
    for (int p = 0; p < np; p++) D(st)(o + (size_t)(ow + p) * F + f0, acc[p]);
}

/* One output row (Wc pixels), filters [f0, f0 + DVL): blocks of at most 8
 * pixels (12 with 32 registers). */
static inline __attribute__((always_inline)) DTARGET void D(fwd1_row)(REAL *o, const REAL *img, const REAL *w,
                                                                      const REAL *b, int W, int F, int Wc, int f0,
                                                                      const int K)
{
#define BLK(n) D(fwd1_px)(o, img, w, b, W, F, ow, f0, K, n)
    DBALANCED(0, Wc, DBIG ? 12 : 8, BLK);
#undef BLK
}

/* These kernels apply to g (else the general ones run). */
static inline int D(direct1_ok)(const tnmtl_conv_geom *g)
{
    return g->C == 1 && (g->K == 3 || g->K == 5) && g->F % DVL == 0;
}

/* Output rows [u0, u1) of a DIRECT layer, without activation, into out
 * (which holds row u0 first).  Accumulators: np pixels x one block of
 * filters (at most 12 vector registers). */
static DTARGET void D(direct_fwd)(REAL *out, const REAL *in, const REAL *w, const REAL *b,
                                  const tnmtl_conv_geom *g, size_t u0, size_t u1)
{
    const int W = g->W, C = g->C, K = g->K, F = g->F, Wo = g->Wo, Ho = g->Ho, Wc = D(cols)(g);
    for (size_t u = u0; u < u1; u++) {
        const size_t bi = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        const REAL *img = in + (bi * g->H + (size_t)oh) * W * C; /* input row oh */
        REAL *o = out + (u - u0) * (size_t)Wo * F;
        if (D(direct1_ok)(g)) {
            for (int f0 = 0; f0 < F; f0 += DVL)
                if (K == 5) D(fwd1_row)(o, img, w, b, W, F, Wc, f0, 5);
                else D(fwd1_row)(o, img, w, b, W, F, Wc, f0, 3);
            continue;
        }
        int nv, hf;
        for (int f0 = 0; f0 < F; f0 += D(block)(F, f0, &nv, &hf)) {
            D(block)(F, f0, &nv, &hf);
            if (nv == 2) D(fwd_row)(o, img, w, b, W, C, K, F, Wc, f0, DBIG ? 12 : 6, 2, 0);
#if DVB == 32 && defined(REAL_F32)
            else if (nv == 1 && hf) D(fwd2_row)(o, img, w, b, W, C, K, F, Wc, f0);
#endif
            else if (nv == 1) D(fwd_row)(o, img, w, b, W, C, K, F, Wc, f0, 8, 1, 0);
            else D(fwd_row)(o, img, w, b, W, C, K, F, Wc, f0, 8, 0, 1);
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
    const int W = g->W, C = g->C, K = g->K, F = g->F, Wo = g->Wo, Ho = g->Ho, KC = K * C, Wc = D(cols)(g);
    D(vec) acc[6][2];
    REAL acch[6 * DVL / 2];
    memset(acc, 0, sizeof acc);
    memset(acch, 0, sizeof acch);
    for (size_t u = u0; u < u1; u++) {
        const size_t bi = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        const REAL *r = in + ((bi * g->H + (size_t)(oh + kh)) * W) * C + t0;
        const REAL *dr = dout + (u - u0) * (size_t)Wo * F + f0;
        D(dw_row)(acc, acch, nt, r, dr, Wc, C, F, nv, hf);
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

/* dw[kh .. kh+nr)[t][f0 ..) += ... for KC = nt taps per kernel row and one
 * vector of filters: nr kernel rows at once, nr * nt chains of additions
 * (one row's nt = 5 chains would wait on each other's latency); each output
 * gradient vector is loaded once for all of them.  nr = 2, or all K rows
 * with 32 vector registers. */
static inline __attribute__((always_inline)) DTARGET void D(dw_rows)(REAL *dw, const REAL *dout, const REAL *in,
                                                                      const tnmtl_conv_geom *g, size_t u0, size_t u1,
                                                                      int kh, int f0, const int nt, const int nr)
{
    const int W = g->W, C = g->C, F = g->F, Wo = g->Wo, Ho = g->Ho, Wc = D(cols)(g);
    D(vec) acc[5][6];
    memset(acc, 0, sizeof acc);
    for (size_t u = u0; u < u1; u++) {
        const size_t bi = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        const REAL *r0 = in + ((bi * g->H + (size_t)(oh + kh)) * W) * C;
        const REAL *dr = dout + (u - u0) * (size_t)Wo * F + f0;
        D(vec) a[5][6]; /* a local copy: stays in registers */
        for (int k = 0; k < nr; k++)
            for (int tt = 0; tt < nt; tt++) a[k][tt] = acc[k][tt];
        for (int ow = 0; ow < Wc; ow++) {
            const D(vec) d = D(ld)(dr + (size_t)ow * F);
            for (int k = 0; k < nr; k++) {
                const REAL *x = r0 + (size_t)k * W * C + (size_t)ow * C;
                for (int tt = 0; tt < nt; tt++) a[k][tt] += x[tt] * d;
            }
        }
        for (int k = 0; k < nr; k++)
            for (int tt = 0; tt < nt; tt++) acc[k][tt] = a[k][tt];
    }
    for (int k = 0; k < nr; k++)
        for (int tt = 0; tt < nt; tt++) {
            REAL *dp = dw + ((size_t)(kh + k) * nt + (size_t)tt) * F + f0;
            D(st)(dp, D(ld)(dp) + acc[k][tt]);
        }
}

#if DVB == 32 && defined(REAL_F32)
/* dw[kh][t0 .. t0+nt)[f0 .. f0+12) += ... for a block of 1.5 vectors, by
 * pixel pairs (see fwd2_px): the sums of the even and of the odd pixels are
 * kept apart and added at the end. */
static inline __attribute__((always_inline)) DTARGET void D(dw2_blk)(REAL *dw, const REAL *dout, const REAL *in,
                                                                     const tnmtl_conv_geom *g, size_t u0, size_t u1,
                                                                     int kh, int t0, int f0, const int nt)
{
    const int W = g->W, C = g->C, K = g->K, F = g->F, Wo = g->Wo, Ho = g->Ho, KC = K * C, Wc = D(cols)(g);
    __m256 acc[6][3];
    memset(acc, 0, sizeof acc);
    for (size_t u = u0; u < u1; u++) {
        const size_t bi = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        const REAL *r = in + ((bi * g->H + (size_t)(oh + kh)) * W) * C + t0;
        const REAL *dr = dout + (u - u0) * (size_t)Wo * F + f0;
        __m256 a[6][3]; /* a local copy: stays in registers */
        for (int tt = 0; tt < nt; tt++) a[tt][0] = acc[tt][0], a[tt][1] = acc[tt][1], a[tt][2] = acc[tt][2];
        int ow = 0;
        for (; ow + 2 <= Wc; ow += 2) {
            const REAL *d = dr + (size_t)ow * F, *x = r + (size_t)ow * C;
            const __m256 da = D(ld)(d), db = D(join)(d + DVL, d + F), dc = D(ld)(d + F + DHL);
            for (int tt = 0; tt < nt; tt++) {
                const __m256 x0 = _mm256_broadcast_ss(x + tt), x1 = _mm256_broadcast_ss(x + C + tt);
                a[tt][0] += x0 * da;
                a[tt][1] += _mm256_blend_ps(x0, x1, 0xf0) * db;
                a[tt][2] += x1 * dc;
            }
        }
        if (ow < Wc) { /* the last pixel, as an even one */
            const REAL *d = dr + (size_t)ow * F, *x = r + (size_t)ow * C;
            const __m256 da = D(ld)(d), db = _mm256_set_m128(_mm_setzero_ps(), _mm_loadu_ps(d + DVL));
            for (int tt = 0; tt < nt; tt++) {
                const __m256 x0 = _mm256_broadcast_ss(x + tt);
                a[tt][0] += x0 * da;
                a[tt][1] += _mm256_blend_ps(x0, _mm256_setzero_ps(), 0xf0) * db;
            }
        }
        for (int tt = 0; tt < nt; tt++) acc[tt][0] = a[tt][0], acc[tt][1] = a[tt][1], acc[tt][2] = a[tt][2];
    }
    for (int tt = 0; tt < nt; tt++) {
        REAL *dp = dw + ((size_t)kh * KC + (size_t)(t0 + tt)) * F + f0;
        /* filters [0, 8): even A + odd (B high | C low); [8, 12): even B low + odd C high */
        const __m256 odd = _mm256_set_m128(_mm256_castps256_ps128(acc[tt][2]), _mm256_extractf128_ps(acc[tt][1], 1));
        D(st)(dp, D(ld)(dp) + (acc[tt][0] + odd));
        const __m128 hi = _mm256_castps256_ps128(acc[tt][1]) + _mm256_extractf128_ps(acc[tt][2], 1);
        _mm_storeu_ps(dp + DVL, _mm_loadu_ps(dp + DVL) + hi);
    }
}
#endif

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
#if DBIG
            if (nv == 1 && !hf && KC == K && (K == 5 || K == 3)) { /* all K kernel rows at once */
                if (kh == 0 && K == 5) D(dw_rows)(dw, dout, in, g, u0, u1, 0, f0, 5, 5);
                else if (kh == 0) D(dw_rows)(dw, dout, in, g, u0, u1, 0, f0, 3, 3);
                continue;
            }
#endif
            const int rows2 = nv == 1 && !hf && (KC == 5 || KC == 3); /* kernel rows in pairs */
            if (rows2 && kh % 2) continue;                             /* done with kh - 1    */
            if (rows2 && kh + 1 < K) {
                if (KC == 5) D(dw_rows)(dw, dout, in, g, u0, u1, kh, f0, 5, 2);
                else D(dw_rows)(dw, dout, in, g, u0, u1, kh, f0, 3, 2);
                continue;
            }
#if DVB == 32 && defined(REAL_F32)
            if (nv == 1 && hf) {
#if DBIG
                if (KC % 6 == 0) { /* 6 taps: 18 accumulators */
                    for (int t0 = 0; t0 < KC; t0 += 6) D(dw2_blk)(dw, dout, in, g, u0, u1, kh, t0, f0, 6);
                    continue;
                }
#endif
                for (int t0 = 0; t0 < KC; t0 += 3) {
                    if (KC - t0 >= 3) D(dw2_blk)(dw, dout, in, g, u0, u1, kh, t0, f0, 3);
                    else if (KC - t0 == 2) D(dw2_blk)(dw, dout, in, g, u0, u1, kh, t0, f0, 2);
                    else D(dw2_blk)(dw, dout, in, g, u0, u1, kh, t0, f0, 1);
                }
                continue;
            }
#endif
            for (int t0 = 0; t0 < KC; t0 += 6) {
                const int nt = KC - t0 < 6 ? KC - t0 : 6;
                if (nv == 2) D(dw_taps)(dw, dout, in, g, u0, u1, kh, t0, f0, nt, 2, 0);
                else if (nv == 1 && hf) D(dw_taps)(dw, dout, in, g, u0, u1, kh, t0, f0, nt, 1, 1);
                else if (nv == 1) D(dw_taps)(dw, dout, in, g, u0, u1, kh, t0, f0, nt, 1, 0);
                else D(dw_taps)(dw, dout, in, g, u0, u1, kh, t0, f0, nt, 0, 1);
            }
        }
}

/* np input pixels x[j] = xrow + j*C (channels [c0, c0 + block) already
 * added), j < np: x[j] += sum over kw < nk, then f, of d[j - kw][f] *
 * wk[kw][f][c]; d = dr + j*F (dr: the output pixel under kw = 0). */
static inline __attribute__((always_inline)) DTARGET void D(dx_px)(REAL *x, const REAL *dr, const REAL *wk, int C,
                                                                   int F, int nk, const int np, const int nv,
                                                                   const int hf)
{
    D(vec) acc[12][2];
    for (int j = 0; j < np; j++)
        for (int v = 0; v < nv; v++) acc[j][v] = D(ld)(x + (size_t)j * C + v * DVL);
#if DVB > 16
    D(hvec) acch[12];
    for (int j = 0; j < np && hf; j++) acch[j] = D(ldh)(x + (size_t)j * C + nv * DVL);
#endif
    for (int kw = 0; kw < nk; kw++, wk += (size_t)F * C, dr -= F)
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

#if DVB == 32 && defined(REAL_F32)
/* dx_px for a block of 1.5 vectors of channels (AVX2 float: 12), np pairs
 * of pixels as 3 whole vectors each (see fwd2_px); same order of terms. */
static inline __attribute__((always_inline)) DTARGET void D(dx2_px)(REAL *x, const REAL *dr, const REAL *wk, int C,
                                                                    int F, int nk, const int np)
{
    __m256 acc[3][3];
    for (int i = 0; i < np; i++) {
        REAL *x0 = x + (size_t)(2 * i) * C, *x1 = x0 + C;
        acc[i][0] = D(ld)(x0);
        acc[i][1] = D(join)(x0 + DVL, x1);
        acc[i][2] = D(ld)(x1 + DHL);
    }
    for (int kw = 0; kw < nk; kw++, wk += (size_t)F * C, dr -= F)
        for (int f = 0; f < F; f++) {
            const REAL *wf = wk + (size_t)f * C;
            const __m256 wa = D(ld)(wf), wb = D(join)(wf + DVL, wf), wc = D(ld)(wf + DHL);
            for (int i = 0; i < np; i++) {
                const __m256 d0 = _mm256_broadcast_ss(dr + (size_t)(2 * i) * F + f);
                const __m256 d1 = _mm256_broadcast_ss(dr + (size_t)(2 * i + 1) * F + f);
                acc[i][0] += d0 * wa;
                acc[i][1] += _mm256_blend_ps(d0, d1, 0xf0) * wb;
                acc[i][2] += d1 * wc;
            }
        }
    for (int i = 0; i < np; i++) {
        REAL *x0 = x + (size_t)(2 * i) * C, *x1 = x0 + C;
        D(st)(x0, acc[i][0]);
        _mm_storeu_ps(x0 + DVL, _mm256_castps256_ps128(acc[i][1]));
        _mm_storeu_ps(x1, _mm256_extractf128_ps(acc[i][1], 1));
        D(st)(x1 + DHL, acc[i][2]);
    }
}

#endif

/* The input pixels [j0, j1) with all K taps each (dr: output pixel 0). */
static inline __attribute__((always_inline)) DTARGET void D(dx_run)(REAL *x, const REAL *dr, const REAL *wkh, int C,
                                                                    int F, int K, int j0, int j1, const int np,
                                                                    const int nv, const int hf)
{
    int j = j0;
#if DVB == 32 && defined(REAL_F32)
    if (nv == 1 && hf) /* pixel pairs (dx2_px) */
        for (; j + 6 <= j1; j += 6) D(dx2_px)(x + (size_t)j * C, dr + (ptrdiff_t)j * F, wkh, C, F, K, 3);
#endif
    /* the rest in blocks of near-equal size <= np (no short last block) */
    const int n = j1 - j, nb = (n + np - 1) / np;
    for (int i = 0; i < nb; i++) {
        const int b0 = j + n * i / nb, nblk = j + n * (i + 1) / nb - b0;
#define BLK(m) D(dx_px)(x + (size_t)b0 * C, dr + (ptrdiff_t)b0 * F, wkh, C, F, K, m, nv, hf)
        DTAIL(nblk, BLK);
#undef BLK
    }
}

#if DBIG
/* dx_px for the K = 3 kernel rows at once, one vector of channels (32
 * registers): input rows oh .. oh+2 (rs apart) of np pixels, 3 * np
 * accumulators; each output-gradient value is broadcast once for the three
 * rows.  The terms of an element come in the same order (kw, then f). */
static inline __attribute__((always_inline)) DTARGET void D(dx3_px)(REAL *x, size_t rs, const REAL *dr, const REAL *wk,
                                                                    int C, int F, const int np)
{
    D(vec) acc[3][12];
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < np; j++) acc[r][j] = D(ld)(x + r * rs + (size_t)j * C);
    const size_t kstep = (size_t)F * C, hstep = 3 * kstep;
    for (int kw = 0; kw < 3; kw++, wk += kstep, dr -= F)
        for (int f = 0; f < F; f++) {
            const REAL *wf = wk + (size_t)f * C;
            const D(vec) w0 = D(ld)(wf), w1 = D(ld)(wf + hstep), w2 = D(ld)(wf + 2 * hstep);
            for (int j = 0; j < np; j++) {
                const REAL d = dr[(size_t)j * F + f];
                acc[0][j] += d * w0;
                acc[1][j] += d * w1;
                acc[2][j] += d * w2;
            }
        }
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < np; j++) D(st)(x + r * rs + (size_t)j * C, acc[r][j]);
}
#endif

/* Input gradient of output rows [u0, u1) (dout holds row u0 first), added
 * into din: din[b][oh+kh][ow+kw][c] += sum over f of dout[u][ow][f] *
 * wt[kh][kw][f][c] (wt: the weights with the last two axes swapped).  An
 * input element's terms are added row u by row u, then kw by kw, then f by
 * f, whatever the blocking.  Needs C % 4 == 0 and K * F <= TNMTL_CONV_DX_PAD.
 *
 * Each output row is copied, a segment of input pixels at a time, into a
 * stack buffer between K - 1 zero pixels on each side: then every input
 * pixel takes all K taps (the missing ones as exact zeros), with no
 * tap-by-tap edges. */
static DTARGET void D(direct_dx)(REAL *din, const REAL *dout, const REAL *wt, const tnmtl_conv_geom *g,
                                 size_t u0, size_t u1)
{
    const int W = g->W, C = g->C, K = g->K, F = g->F, Wo = g->Wo, Ho = g->Ho, Wc = D(cols)(g);
    REAL pad[TNMTL_CONV_DX_PAD];
    const int n_in = Wc + K - 1;                              /* input pixels that receive terms */
    const int seg = (int)(TNMTL_CONV_DX_PAD / (size_t)F) - (K - 1); /* input pixels per segment (>= 1) */
    for (size_t u = u0; u < u1; u++) {
        const size_t bi = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        const REAL *dout_row = dout + (u - u0) * (size_t)Wo * F;
        for (int s0 = 0; s0 < n_in; s0 += seg) {
            const int s1 = s0 + seg < n_in ? s0 + seg : n_in;
            /* pad[i] = output pixel s0 - (K - 1) + i, zero outside [0, Wc): one
             * copy of the pixels [o0, o1) and zeros on either side */
            const int first = s0 - (K - 1), n_pad = s1 - s0 + K - 1;
            const int o0 = first > 0 ? first : 0, o1 = s1 < Wc ? s1 : Wc;
            memset(pad, 0, (size_t)(o0 - first) * F * sizeof *pad);
            memcpy(pad + (size_t)(o0 - first) * F, dout_row + (size_t)o0 * F, (size_t)(o1 - o0) * F * sizeof *pad);
            memset(pad + (size_t)(o1 - first) * F, 0, (size_t)(n_pad - (o1 - first)) * F * sizeof *pad);
            const REAL *dr = pad + (size_t)(K - 1) * F; /* output pixel s0 */
#if DBIG
            if (K == 3 && C % DVL == 0) { /* the 3 kernel rows at once, blocks of <= 8 pixels */
                REAL *row = din + (bi * g->H + (size_t)oh) * W * C + (size_t)s0 * C;
                for (int c0 = 0; c0 < C; c0 += DVL) {
#define BLK(m) D(dx3_px)(row + (size_t)ow * C + c0, (size_t)W * C, dr + (ptrdiff_t)ow * F, wt + c0, C, F, m)
                    DBALANCED(0, s1 - s0, 8, BLK);
#undef BLK
                }
                continue;
            }
#endif
            for (int kh = 0; kh < K; kh++) {
                REAL *row = din + (bi * g->H + (size_t)(oh + kh)) * W * C + (size_t)s0 * C;
                int nv, hf;
                for (int c0 = 0; c0 < C; c0 += D(block)(C, c0, &nv, &hf)) {
                    D(block)(C, c0, &nv, &hf);
                    REAL *xr = row + c0;
                    const REAL *wkh = wt + (size_t)kh * K * F * C + c0;
                    if (nv == 2) D(dx_run)(xr, dr, wkh, C, F, K, 0, s1 - s0, 6, 2, 0);
                    else if (nv == 1 && hf) D(dx_run)(xr, dr, wkh, C, F, K, 0, s1 - s0, 6, 1, 1);
                    else if (nv == 1) D(dx_run)(xr, dr, wkh, C, F, K, 0, s1 - s0, 12, 1, 0);
                    else D(dx_run)(xr, dr, wkh, C, F, K, 0, s1 - s0, 12, 0, 1);
                }
            }
        }
    }
}

/* ---- backward of a conv fused with a k x k max-pool, from the pooled gradient
 * The conv's output gradient is the pooled gradient at each window's argmax
 * and zero at its other k*k - 1 pixels, so only the argmax pixels add terms
 * to the weight and input gradients: 1 / k^2 of the dense kernels' work
 * (which would multiply the zeros).  Vectorised over a block of input
 * channels, one filter at a time: its K x K taps' weight-gradient block in
 * registers over a band of pooled rows, the input gradient added in place
 * (the windows' K x K patches overlap).  Needs C 4, 8, 12 or 16, K 3 or 5. */

/* Filter f over a band of rows x Wp windows of one example with C = NC
 * channels (a constant, so that every tap's offset within a kernel row is
 * one): dwf[t][c] (t = kh * K + kw) += g * x[o + t][c] and dx[o + t][c] +=
 * g * wtf[t * F * C + c] (if dx), over the windows' pooled gradients g
 * (gp[window][F]) and argmax pixels o (offs[window][F], element offsets in
 * the image).  The filter's weights and weight-gradient block stay in
 * registers over the band. */
static inline __attribute__((always_inline)) DTARGET void D(pooled_blk)(REAL *dwf, REAL *dx, const REAL *x,
                                                                       const REAL *wtf, const REAL *gp,
                                                                       const int32_t *offs,
                                                                       const tnmtl_conv_geom *g, int f, int rows,
                                                                       const int K, const int NC)
{
    enum { MAXV = 16 / DVL };
    const int nv = NC / DVL;
#if DVB > 16
    const int hf = NC % DVL != 0;
#endif
    const int F = g->F, k = g->pool, Wp = g->Wo / k;
    const size_t rs = (size_t)g->W * NC, tstep = (size_t)F * NC;
    /* the weights (wtf) are only read, and only filled in, for the input gradient */
    D(vec) acc[25][MAXV], wr[25][MAXV];
    for (int t = 0; t < K * K; t++)
        for (int v = 0; v < nv; v++) {
            acc[t][v] = D(ld)(dwf + t * NC + v * DVL);
            wr[t][v] = dx ? D(ld)(wtf + t * tstep + v * DVL) : (D(vec)){0};
        }
#if DVB > 16
    D(hvec) acch[25], wrh[25];
    for (int t = 0; t < K * K && hf; t++) {
        acch[t] = D(ldh)(dwf + t * NC + nv * DVL);
        wrh[t] = dx ? D(ldh)(wtf + t * tstep + nv * DVL) : (D(hvec)){0};
    }
#endif
    /* windows sp apart have disjoint patches: consecutive windows' input-
     * gradient updates never alias (a load that does waits on the store) */
    const int sp = (k - 1 + K + k - 1) / k;
    for (int r = 0; r < rows; r++)
        for (int p0 = 0; p0 < sp; p0++)
            for (int px = p0; px < Wp; px += sp) {
                const size_t i = ((size_t)r * Wp + (size_t)px) * F + (size_t)f;
                const REAL gv = gp[i];
                const REAL *xr = x + offs[i];
                for (int kh = 0; kh < K; kh++, xr += rs)
                    for (int kw = 0; kw < K; kw++) {
                        const int t = kh * K + kw;
                        for (int v = 0; v < nv; v++) acc[t][v] += gv * D(ld)(xr + kw * NC + v * DVL);
#if DVB > 16
                        if (hf) acch[t] += gv * D(ldh)(xr + kw * NC + nv * DVL);
#endif
                    }
                if (!dx) continue;
                REAL *xg = dx + offs[i];
                for (int kh = 0; kh < K; kh++, xg += rs)
                    for (int kw = 0; kw < K; kw++) {
                        const int t = kh * K + kw;
                        REAL *e = xg + kw * NC;
                        for (int v = 0; v < nv; v++) D(st)(e + v * DVL, D(ld)(e + v * DVL) + gv * wr[t][v]);
#if DVB > 16
                        if (hf) D(sth)(e + nv * DVL, D(ldh)(e + nv * DVL) + gv * wrh[t]);
#endif
                    }
            }
    for (int t = 0; t < K * K; t++)
        for (int v = 0; v < nv; v++) D(st)(dwf + t * NC + v * DVL, acc[t][v]);
#if DVB > 16
    for (int t = 0; t < K * K && hf; t++) D(sth)(dwf + t * NC + nv * DVL, acch[t]);
#endif
}

/* offs[r][px][f] = the element offset in the image of the argmax pixel of
 * filter f's window (py0 + r, px), from the pooled argmax offsets ip (conv
 * output offsets (oy * Wo + ox) * F + f of the example): local = that - the
 * window's own = dy * Wo * F + dx * F with dy, dx < k. */
static DTARGET void D(pooled_offsets)(int32_t *offs, const int32_t *ip, const tnmtl_conv_geom *g, int py0, int rows)
{
    const int F = g->F, C = g->C, W = g->W, Wo = g->Wo, k = g->pool, Wp = Wo / k;
    const int32_t WoF = (int32_t)Wo * F;
    for (int r = 0; r < rows; r++)
        for (int px = 0; px < Wp; px++) {
            const int py = py0 + r;
            const int32_t *ir = ip + ((size_t)py * Wp + (size_t)px) * F;
            int32_t *o = offs + ((size_t)r * Wp + (size_t)px) * F;
            const int32_t win = (py * k * Wo + px * k) * F, base = (py * k * W + px * k) * C;
            if (k == 2) { /* branch-free: the argmax is data */
                for (int f = 0; f < F; f++) {
                    const int32_t local = ir[f] - win - f, dy = local >= WoF;
                    o[f] = base + (dy * W + (local - dy * WoF != 0)) * C;
                }
                continue;
            }
            for (int f = 0; f < F; f++) {
                int32_t local = ir[f] - win - f, dy = 0, dx = 0;
                for (int j = 1; j < k; j++) dy += local >= j * WoF;
                local -= dy * WoF;
                for (int j = 1; j < k; j++) dx += local >= j * F;
                o[f] = base + (dy * W + dx) * C;
            }
        }
}

/* Examples [b0, b1) (in, din: their first example; gp, idx: their pooled
 * gradient and argmax offsets): dwf[f][t][c] += the weight gradient (the
 * part's sum, filter-major), din += the input gradient (if din).  Bands of
 * pooled rows whose input rows fit TNMTL_CONV_BAND_BYTES (and their argmax
 * offsets TNMTL_CONV_POOLED_OFFS), so that the filters' passes over a band
 * find it in L1.  C is 4, 8, 12 or 16, Wp * F <= TNMTL_CONV_POOLED_OFFS. */
static DTARGET void D(direct_pooled_bwd)(REAL *dwf, REAL *din, const REAL *in, const REAL *wt, const REAL *gp,
                                         const int32_t *idx, const tnmtl_conv_geom *g, size_t b0, size_t b1)
{
    const int C = g->C, K = g->K, F = g->F, k = g->pool, Hp = g->Ho / k, Wp = g->Wo / k;
    const size_t in_n = (size_t)g->H * g->W * C, pn = (size_t)Hp * Wp * F, KKC = (size_t)K * K * C;
    const size_t rows = TNMTL_CONV_BAND_BYTES / ((size_t)g->W * C * sizeof(REAL));
    int band = rows > (size_t)(K - 1 + k) ? (int)((rows - (size_t)(K - 1)) / (size_t)k) : 1;
    const int fit = (int)(TNMTL_CONV_POOLED_OFFS / ((size_t)Wp * F));
    if (band > fit) band = fit;
    int32_t offs[TNMTL_CONV_POOLED_OFFS];
    for (size_t b = b0; b < b1; b++) {
        const REAL *x = in + (b - b0) * in_n, *gb = gp + (b - b0) * pn;
        const int32_t *ib = idx + (b - b0) * pn;
        REAL *dx = din ? din + (b - b0) * in_n : NULL;
        for (int py0 = 0; py0 < Hp; py0 += band) {
            const int n = py0 + band < Hp ? band : Hp - py0;
            const REAL *gband = gb + (size_t)py0 * Wp * F;
            D(pooled_offsets)(offs, ib, g, py0, n);
            for (int f = 0; f < F; f++) {
#define BLK(KK, NC) D(pooled_blk)(dwf + (size_t)f * KKC, dx, x, wt + (size_t)f * C, gband, offs, g, f, n, KK, NC)
#define BYC(KK)                                                                                                \
    switch (C) {                                                                                               \
    case 4: BLK(KK, 4); break;                                                                                 \
    case 8: BLK(KK, 8); break;                                                                                 \
    case 12: BLK(KK, 12); break;                                                                               \
    default: BLK(KK, 16); break;                                                                               \
    }
                if (K == 3) BYC(3) else BYC(5)
#undef BYC
#undef BLK
            }
        }
    }
}

#if DVB == 32 && defined(REAL_F32)
/* ---- Winograd F(2x2, 3x3) forward (float, AVX2) -----------------------------
 * For a 3x3 valid conv fused with a 2x2 max-pool: each 2x2 block of output
 * pixels (one pooling window) is Y = A^T [U (.) V] A with V = B^T d B of its
 * 4x4 input patch d and U = G g G^T of the filter (Lavin and Gray 2016):
 * 16 multiply-adds per input channel and filter instead of 36.  The terms
 * differ from the direct sum, so the outputs agree with it to rounding. */

/* U[16][C][F] = G g G^T for every (c, f), w[3][3][C][F] (HWIO) */
static DTARGET void D(wino_filter)(REAL *U, const REAL *w, int C, int F)
{
    static const REAL G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
    const size_t CF = (size_t)C * F;
    for (size_t cf = 0; cf < CF; cf++) {
        REAL t[4][3];
        for (int i = 0; i < 4; i++)
            for (int kw = 0; kw < 3; kw++)
                t[i][kw] = G[i][0] * w[(size_t)(0 + kw) * CF + cf] + G[i][1] * w[(size_t)(3 + kw) * CF + cf] +
                           G[i][2] * w[(size_t)(6 + kw) * CF + cf];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                U[(size_t)(i * 4 + j) * CF + cf] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
    }
}

/* V[p][c0 ..] (p = 4 i + j, positions apart by vs) = (B^T d B)[i][j] for
 * one vector (TY = D(vec)) or half vector (D(hvec)) of channels of the 4x4
 * patch d (rows rs apart, pixels cs apart): rows, then columns. */
#define WINO_IN(TY, LD, ST)                                                                                  \
    do {                                                                                                     \
        TY h[4][4];                                                                                          \
        for (int j = 0; j < 4; j++) {                                                                        \
            const TY d0 = LD(d + j * cs), d1 = LD(d + rs + j * cs), d2 = LD(d + 2 * rs + j * cs),             \
                     d3 = LD(d + 3 * rs + j * cs);                                                           \
            h[0][j] = d0 - d2;                                                                               \
            h[1][j] = d1 + d2;                                                                               \
            h[2][j] = d2 - d1;                                                                               \
            h[3][j] = d1 - d3;                                                                               \
        }                                                                                                    \
        for (int i = 0; i < 4; i++) {                                                                        \
            ST(v + (4 * i + 0) * vs, h[i][0] - h[i][2]);                                                     \
            ST(v + (4 * i + 1) * vs, h[i][1] + h[i][2]);                                                     \
            ST(v + (4 * i + 2) * vs, h[i][2] - h[i][1]);                                                     \
            ST(v + (4 * i + 3) * vs, h[i][1] - h[i][3]);                                                     \
        }                                                                                                    \
    } while (0)

/* y = A^T M A + bias for one vector (or half) of filters: m[p] positions
 * apart by ms, y[0], y[ys] the block's first output row, y[os] its second */
#define WINO_OUT(TY, LD, ST)                                                                                 \
    do {                                                                                                     \
        TY r0[4], r1[4];                                                                                     \
        for (int j = 0; j < 4; j++) {                                                                        \
            const TY m1 = LD(m + (4 + j) * ms), m2 = LD(m + (8 + j) * ms);                                   \
            r0[j] = LD(m + j * ms) + m1 + m2;                                                                \
            r1[j] = m1 - m2 - LD(m + (12 + j) * ms);                                                         \
        }                                                                                                    \
        const TY bv = LD(bias);                                                                              \
        ST(y, bv + (r0[0] + r0[1] + r0[2]));                                                                 \
        ST(y + ys, bv + (r0[1] - r0[2] - r0[3]));                                                            \
        ST(y + os, bv + (r1[0] + r1[1] + r1[2]));                                                            \
        ST(y + os + ys, bv + (r1[1] - r1[2] - r1[3]));                                                       \
    } while (0)

/* 4 neighbouring 2x2 output blocks of one pair of output rows: r is the
 * input at (row oh, column 2 * first block) with rows rs apart, o the
 * output at (oh, 2 * first block) with rows os apart; C = NC, F = NF. */
static inline __attribute__((always_inline)) DTARGET void D(wino_tiles)(REAL *o, size_t os, const REAL *r, size_t rs,
                                                                       const REAL *U, const REAL *b, const int NC,
                                                                       const int NF)
{
    enum { NT = 4, VS = NT * 16 };
    REAL V[16][NT][16], M[16][NT][16]; /* [position][block][channel or filter] */
    const int cs = NC;
    for (int t = 0; t < NT; t++) { /* V = B^T d B */
        int c = 0;
        for (; c + DVL <= NC; c += DVL) {
            const REAL *d = r + (size_t)t * 2 * NC + c;
            REAL *v = &V[0][t][c];
            const size_t vs = VS;
            WINO_IN(D(vec), D(ld), D(st));
        }
        if (c < NC) {
            const REAL *d = r + (size_t)t * 2 * NC + c;
            REAL *v = &V[0][t][c];
            const size_t vs = VS;
            WINO_IN(D(hvec), D(ldh), D(sth));
        }
    }
    /* M[p][t][f] = sum over c of V[p][t][c] U[p][c][f]; a half vector of
     * filters (F = 12) for two blocks at once, as one whole vector */
    const int nv = NF / DVL, hf = NF % DVL != 0;
    for (int p = 0; p < 16; p++) {
        D(vec) acc[NT][2], acch[NT / 2];
        for (int t = 0; t < NT; t++)
            for (int v = 0; v < nv; v++) acc[t][v] = (D(vec)){0};
        for (int t = 0; t < NT / 2; t++) acch[t] = (D(vec)){0};
        const REAL *u = U + (size_t)p * NC * NF;
        for (int c = 0; c < NC; c++, u += NF) {
            D(vec) uv[2];
            for (int v = 0; v < nv; v++) uv[v] = D(ld)(u + v * DVL);
            const D(vec) uh = hf ? (D(vec))D(join)(u + nv * DVL, u + nv * DVL) : (D(vec)){0};
            D(vec) sv[NT];
            for (int t = 0; t < NT; t++) {
                sv[t] = (D(vec))_mm256_set1_ps(V[p][t][c]);
                for (int v = 0; v < nv; v++) acc[t][v] += sv[t] * uv[v];
            }
            if (hf)
                for (int t = 0; t < NT / 2; t++)
                    acch[t] += (D(vec))_mm256_blend_ps((__m256)sv[2 * t], (__m256)sv[2 * t + 1], 0xF0) * uh;
        }
        for (int t = 0; t < NT; t++)
            for (int v = 0; v < nv; v++) D(st)(&M[p][t][v * DVL], acc[t][v]);
        for (int t = 0; t < NT / 2 && hf; t++) {
            REAL pair[DVL];
            D(st)(pair, acch[t]);
            memcpy(&M[p][2 * t][nv * DVL], pair, DHL * sizeof(REAL));
            memcpy(&M[p][2 * t + 1][nv * DVL], pair + DHL, DHL * sizeof(REAL));
        }
    }
    for (int t = 0; t < NT; t++) { /* Y = A^T M A + bias */
        const size_t ms = VS, ys = (size_t)NF;
        int f = 0;
        for (; f + DVL <= NF; f += DVL) {
            const REAL *m = &M[0][t][f], *bias = b + f;
            REAL *y = o + (size_t)t * 2 * NF + f;
            WINO_OUT(D(vec), D(ld), D(st));
        }
        if (f < NF) {
            const REAL *m = &M[0][t][f], *bias = b + f;
            REAL *y = o + (size_t)t * 2 * NF + f;
            WINO_OUT(D(hvec), D(ldh), D(sth));
        }
    }
}
#undef WINO_IN
#undef WINO_OUT

/* The output rows [u0, u1) (pairs of rows of one example, from an even
 * row; out holds row u0 first, Wo * F per row), the (Wo / 2) * 2 columns
 * that the pool reads, in groups of 4 blocks (the last group shifted back
 * onto the one before: its blocks are computed twice, the same bits).
 * Needs C 4/8/12/16, F 8/12/16 and Wo >= 8 (tnmtl_conv_wino_ok). */
static DTARGET void D(wino_fwd)(REAL *out, const REAL *in, const REAL *U, const REAL *b, const tnmtl_conv_geom *g,
                                size_t u0, size_t u1)
{
    const int C = g->C, F = g->F, W = g->W, Ho = g->Ho, Wo = g->Wo, nb = Wo / 2;
    const size_t rs = (size_t)W * C, os = (size_t)Wo * F;
    for (size_t u = u0; u + 1 < u1; u += 2) {
        const size_t bi = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        const REAL *r = in + (bi * g->H + (size_t)oh) * rs;
        REAL *o = out + (u - u0) * os;
        for (int j = 0; j < nb; j += 4) {
            const int j0 = j + 4 <= nb ? j : nb - 4;
#define TILES(NC, NF) D(wino_tiles)(o + (size_t)j0 * 2 * NF, os, r + (size_t)j0 * 2 * NC, rs, U, b, NC, NF)
#define BYF(NC)                                                                                                \
    switch (F) {                                                                                               \
    case 8: TILES(NC, 8); break;                                                                               \
    case 12: TILES(NC, 12); break;                                                                             \
    default: TILES(NC, 16); break;                                                                             \
    }
            switch (C) {
            case 4: BYF(4); break;
            case 8: BYF(8); break;
            case 12: BYF(12); break;
            default: BYF(16); break;
            }
#undef BYF
#undef TILES
        }
    }
}
#endif

#if DVB > 16
#undef DHL
#endif
#undef DVL
#undef DTAIL
#undef DBALANCED
