/* gradcheck.h - finite-difference gradient checker for the tests (double).
 *
 * gc_check perturbs x[i] by +-h, evaluates the loss with f(ctx) and compares
 * the central difference (f(x+h) - f(x-h)) / 2h with the analytic grad[i]:
 *     err_i = |fd - an| / (atol + rtol * max(|fd|, |an|))
 * The check passes when the largest err_i is <= 1.  x is restored. */
#ifndef TNMTL_GRADCHECK_H
#define TNMTL_GRADCHECK_H

#include <stdint.h>

typedef double (*gc_loss_fn)(void *ctx);

typedef struct gc_result {
    double max_err;    /* largest err_i (NaN if any value was NaN) */
    int64_t worst;     /* index of the largest err_i               */
    double fd, an;     /* finite difference and analytic value there */
    int64_t checked;   /* entries compared                         */
} gc_result;

/* Checks every entry when n <= max_checks, else max_checks entries spread
 * over the array (a fixed stride, so the test is deterministic). */
gc_result gc_check(gc_loss_fn f, void *ctx, double *x, const double *grad, int64_t n, double h,
                   double atol, double rtol, int64_t max_checks);
int gc_ok(const gc_result *r);
/* Prints "name: max err ... at i (fd ..., analytic ...)" to stdout. */
void gc_print(const char *name, const gc_result *r);

#endif
