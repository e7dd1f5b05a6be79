/* norm_only.c - the tensor trace norms of your own tensor and their
 * subgradient, for people who run their own optimiser.
 *
 * A tensor is a row-major float array with its task axis last.  Part 1 takes
 * a rank-one 3 x 4 x 2 tensor W = a o b o c, |a| = 3, |b| = 5, |c| = 1: every
 * unfolding has the single singular value 15, so LAF (1 term) is 15, Tucker
 * (3 terms) 45, TT (2 terms) 30, and each term's subgradient is W / 15.
 * Part 2 is a hand-written optimiser: subgradient descent on
 *   f(W) = 0.5 ||W - Y||_F^2 + gamma * Tucker(W)
 * for a noisy 6 x 5 x 4 tensor Y.
 *
 *   cc norm_only.c -o norm_only $(pkg-config --cflags --libs tnmtl)
 */
#include <stdio.h>

#include <tnmtl.h>

#define CHECK(call)                                          \
    if ((call) != TNMTL_OK) {                                \
        fprintf(stderr, "norm_only: error: %s\n", err.msg); \
        return 1;                                            \
    }

int main(void)
{
    tnmtl_error err;

    /* Part 1: values, unweighted terms, subgradient. */
    const float a[3] = {1, 2, 2}, b[4] = {0, 3, 4, 0}, c[2] = {0.6f, 0.8f};
    const int64_t shape[3] = {3, 4, 2};
    float W[3 * 4 * 2], G[3 * 4 * 2];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            for (int t = 0; t < 2; t++) W[(i * 4 + j) * 2 + t] = a[i] * b[j] * c[t];
    const tnmtl_norm_method methods[3] = {TNMTL_NORM_LAF, TNMTL_NORM_TUCKER, TNMTL_NORM_TT};
    for (int k = 0; k < 3; k++) {
        double value, terms[TNMTL_NORM_MAX_NDIM];
        /* gamma NULL: every term weighted 1 */
        CHECK(tnmtl_norm_eval(methods[k], 3, shape, W, NULL, &value, terms, G, &err));
        printf("%-6s value %.5f  terms", tnmtl_norm_method_name(methods[k]), value);
        for (int i = 0; i < tnmtl_norm_n_terms(methods[k], 3); i++) printf(" %.5f", terms[i]);
        printf("  subgradient[0][1][0] %.5f\n", G[2]); /* W[0][1][0] = 1.8 */
    }

    /* Part 2: Y = a rank-one tensor + noise; minimise f by subgradient steps. */
    enum { I = 6, J = 5, T = 4, N = I * J * T };
    const int64_t yshape[3] = {I, J, T};
    const double gamma[3] = {0.5, 0.5, 0.5}; /* one weight per Tucker term */
    float Y[N], X[N], S[N];
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 7);
    for (int n = 0; n < N; n++) {
        const int i = n / (J * T), j = n / T % J, t = n % T;
        Y[n] = (float)((1 + i) * (J - j) * (1 + 0.1 * t) / 10 + 0.3 * tnmtl_rng_normal(&rng));
        X[n] = Y[n];
    }
    const double lr = 0.05;
    for (int step = 0; step <= 200; step++) {
        double reg, terms[3], fit = 0;
        CHECK(tnmtl_norm_eval(TNMTL_NORM_TUCKER, 3, yshape, X, gamma, &reg, terms, S, &err));
        for (int n = 0; n < N; n++) fit += 0.5 * (X[n] - Y[n]) * (X[n] - Y[n]);
        if (step % 50 == 0)
            printf("step %3d  f %.4f  (fit %.4f, Tucker terms %.3f %.3f %.3f)\n", step, fit + reg, fit,
                   terms[0], terms[1], terms[2]);
        for (int n = 0; n < N; n++) X[n] -= (float)(lr * ((X[n] - Y[n]) + S[n])); /* S: sum gamma_i U_i V_i^T */
    }
    return 0;
}
