/* gradcheck.c - finite-difference gradient checker for the tests. */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>

gc_result gc_check(gc_loss_fn f, void *ctx, double *x, const double *grad, int64_t n, double h,
                   double atol, double rtol, int64_t max_checks)
{
    gc_result r = {0, -1, 0, 0, 0};
    int64_t stride = n <= max_checks ? 1 : (n + max_checks - 1) / max_checks;
    for (int64_t i = 0; i < n; i += stride) {
        const double keep = x[i];
        x[i] = keep + h;
        const double fp = f(ctx);
        x[i] = keep - h;
        const double fm = f(ctx);
        x[i] = keep;
        const double fd = (fp - fm) / (2 * h), an = grad[i];
        const double scale = fabs(fd) > fabs(an) ? fabs(fd) : fabs(an);
        const double e = fabs(fd - an) / (atol + rtol * scale);
        /* NaN counts as the worst and stays */
        if (r.worst < 0 || (isnan(e) && !isnan(r.max_err)) || e > r.max_err) {
            r.max_err = e;
            r.worst = i;
            r.fd = fd;
            r.an = an;
        }
        r.checked++;
    }
    return r;
}

int gc_ok(const gc_result *r) { return r->checked > 0 && r->max_err <= 1.0; }

void gc_print(const char *name, const gc_result *r)
{
    printf("  %-16s max err %.3g at %lld (fd %.10g, analytic %.10g), %lld checked\n", name,
           r->max_err, (long long)r->worst, r->fd, r->an, (long long)r->checked);
}
