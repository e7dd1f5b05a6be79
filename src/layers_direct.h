/* layers_direct.h - the DIRECT conv kernels for one instruction set (internal).
 *
 * Included by layers_impl.h (itself compiled for float and double) with:
 *   DVB      vector bytes (16: SSE2 or plain C, 32: AVX2)
 *   NV       vectors of filters per block, NP output pixels per block
 *            (NV * NP accumulators in registers; NV * DVB / sizeof(REAL)
 *            filters per block, which divides F when F % 8 == 0)
 *   DTARGET  function attribute selecting the instruction set (or nothing)
 *   D(name)  the name of this instance
 * The vectors are GCC/Clang vector extensions: portable C that the compiler
 * maps onto the target's registers.
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

/* Output rows [u0, u1) of a DIRECT layer, without activation, into out
 * (which holds row u0 first).  For output pixel ow and kernel row kh the
 * K*C taps (kw, c) are contiguous in the input at in[b][oh+kh][ow][0], and
 * the next pixel starts C further. */
static DTARGET void D(direct_fwd)(REAL *out, const REAL *in, const REAL *w, const REAL *b,
                                  const tnmtl_conv_geom *g, size_t u0, size_t u1)
{
    const int W = g->W, C = g->C, K = g->K, F = g->F, Wo = g->Wo, Ho = g->Ho, KC = K * C;
    for (size_t u = u0; u < u1; u++) {
        const size_t bi = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        const REAL *img = in + (bi * g->H + (size_t)oh) * W * C; /* input row oh */
        REAL *o = out + (u - u0) * (size_t)Wo * F;
        for (int f0 = 0; f0 < F; f0 += NV * DVL) {
            D(vec) bias[NV];
            for (int v = 0; v < NV; v++) bias[v] = D(ld)(b + f0 + v * DVL);
            int ow = 0;
            for (; ow + NP <= Wo; ow += NP) {
                D(vec) acc[NP][NV];
                for (int p = 0; p < NP; p++)
                    for (int v = 0; v < NV; v++) acc[p][v] = bias[v];
                for (int kh = 0; kh < K; kh++) {
                    const REAL *r = img + ((size_t)kh * W + (size_t)ow) * C;
                    const REAL *wk = w + (size_t)kh * KC * F + f0;
                    for (int t = 0; t < KC; t++) {
                        D(vec) wv[NV];
                        for (int v = 0; v < NV; v++) wv[v] = D(ld)(wk + (size_t)t * F + v * DVL);
                        for (int p = 0; p < NP; p++) {
                            const REAL x = r[p * C + t];
                            for (int v = 0; v < NV; v++) acc[p][v] += x * wv[v];
                        }
                    }
                }
                for (int p = 0; p < NP; p++)
                    for (int v = 0; v < NV; v++) D(st)(o + (size_t)(ow + p) * F + f0 + v * DVL, acc[p][v]);
            }
            for (; ow < Wo; ow++) {
                D(vec) acc[NV];
                for (int v = 0; v < NV; v++) acc[v] = bias[v];
                for (int kh = 0; kh < K; kh++) {
                    const REAL *r = img + ((size_t)kh * W + (size_t)ow) * C;
                    const REAL *wk = w + (size_t)kh * KC * F + f0;
                    for (int t = 0; t < KC; t++)
                        for (int v = 0; v < NV; v++) acc[v] += r[t] * D(ld)(wk + (size_t)t * F + v * DVL);
                }
                for (int v = 0; v < NV; v++) D(st)(o + (size_t)ow * F + f0 + v * DVL, acc[v]);
            }
        }
    }
}

/* acc[nt][NV] += sum over the Wo pixels of one output row of x[t] * d[f]:
 * x = r + ow*C (taps), d = dr + ow*F (NV vectors of filters).  Inlined with
 * a constant nt, the accumulators live in registers. */
static inline __attribute__((always_inline)) DTARGET void D(dw_row)(D(vec) (*acc)[NV], const int nt,
                                                          const REAL *r, const REAL *dr, int Wo,
                                                          int C, int F)
{
    D(vec) a[6][NV];
    for (int tt = 0; tt < nt; tt++)
        for (int v = 0; v < NV; v++) a[tt][v] = acc[tt][v];
    for (int ow = 0; ow < Wo; ow++) {
        D(vec) d[NV];
        for (int v = 0; v < NV; v++) d[v] = D(ld)(dr + (size_t)ow * F + v * DVL);
        const REAL *x = r + (size_t)ow * C;
        for (int tt = 0; tt < nt; tt++)
            for (int v = 0; v < NV; v++) a[tt][v] += x[tt] * d[v];
    }
    for (int tt = 0; tt < nt; tt++)
        for (int v = 0; v < NV; v++) acc[tt][v] = a[tt][v];
}

/* dw[kh][t][f] += sum over the pixels of output rows [u0, u1) of
 * in[b][oh+kh][ow][t] * dout[pixel][f] (dout holds row u0 first): blocks of
 * up to 6 taps x NV vectors of filters in registers (C = 1, K = 5: one
 * block per kernel row). */
static DTARGET void D(direct_dw)(REAL *dw, const REAL *dout, const REAL *in, const tnmtl_conv_geom *g,
                                 size_t u0, size_t u1)
{
    const int W = g->W, C = g->C, K = g->K, F = g->F, Wo = g->Wo, Ho = g->Ho, KC = K * C;
    for (int kh = 0; kh < K; kh++)
        for (int f0 = 0; f0 < F; f0 += NV * DVL)
            for (int t0 = 0; t0 < KC; t0 += 6) {
                const int nt = KC - t0 < 6 ? KC - t0 : 6;
                D(vec) acc[6][NV];
                memset(acc, 0, sizeof acc);
                for (size_t u = u0; u < u1; u++) {
                    const size_t bi = u / (size_t)Ho;
                    const int oh = (int)(u % (size_t)Ho);
                    const REAL *r = in + ((bi * g->H + (size_t)(oh + kh)) * W) * C + t0;
                    const REAL *dr = dout + (u - u0) * (size_t)Wo * F + f0;
                    switch (nt) {
                    case 1: D(dw_row)(acc, 1, r, dr, Wo, C, F); break;
                    case 2: D(dw_row)(acc, 2, r, dr, Wo, C, F); break;
                    case 3: D(dw_row)(acc, 3, r, dr, Wo, C, F); break;
                    case 4: D(dw_row)(acc, 4, r, dr, Wo, C, F); break;
                    case 5: D(dw_row)(acc, 5, r, dr, Wo, C, F); break;
                    default: D(dw_row)(acc, 6, r, dr, Wo, C, F); break;
                    }
                }
                for (int tt = 0; tt < nt; tt++)
                    for (int v = 0; v < NV; v++) {
                        REAL *dp = dw + ((size_t)kh * KC + (size_t)(t0 + tt)) * F + f0 + v * DVL;
                        D(st)(dp, D(ld)(dp) + acc[tt][v]);
                    }
            }
}

#undef DVL
