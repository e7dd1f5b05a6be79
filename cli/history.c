/* history.c - the per-step training history (history.csv), see history.h. */
#include "history.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char history_header[] = "step,data_loss,regulariser,val_metric,elapsed_s";

void history_free(run_history *h)
{
    free(h->rows);
    memset(h, 0, sizeof *h);
}

tnmtl_status history_add(run_history *h, const history_row *row, tnmtl_error *err)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 256;
        history_row *r = realloc(h->rows, cap * sizeof *r);
        if (!r) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory for the training history");
        h->rows = r, h->cap = cap;
    }
    h->rows[h->n++] = *row;
    return TNMTL_OK;
}

double history_elapsed(const run_history *h)
{
    return h->n ? h->rows[h->n - 1].elapsed : 0;
}

/* One field of a history line: a number, or empty (NaN). */
static int parse_field(char **p, double *v)
{
    char *end;
    if (**p == ',' || **p == '\n' || **p == '\0') {
        *v = NAN;
    } else {
        errno = 0;
        *v = strtod(*p, &end);
        if (end == *p || errno) return -1;
        *p = end;
    }
    if (**p == ',') (*p)++;
    return 0;
}

tnmtl_status history_load(run_history *h, const char *dir, int64_t upto, tnmtl_error *err)
{
    memset(h, 0, sizeof *h);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, HISTORY_FILE);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return TNMTL_OK;
        return tnmtl_fail(err, TNMTL_ERR_IO, "%s: %s", path, strerror(errno));
    }
    char line[512];
    tnmtl_status st = TNMTL_OK;
    int lineno = 0;
    while (!st && fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1) {
            if (strncmp(line, history_header, strlen(history_header)))
                st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: line 1 is not the header '%s'", path, history_header);
            continue;
        }
        history_row r;
        double step;
        char *p = line;
        if (parse_field(&p, &step) || parse_field(&p, &r.data_loss) || parse_field(&p, &r.reg) ||
            parse_field(&p, &r.val_metric) || parse_field(&p, &r.elapsed) || !(step >= 0) ||
            (h->n && step <= (double)h->rows[h->n - 1].step)) {
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: line %d is not 'step,loss,reg,val,elapsed' with increasing steps",
                            path, lineno);
            break;
        }
        r.step = (int64_t)step;
        if (r.step > upto) break;
        st = history_add(h, &r, err);
    }
    fclose(f);
    if (st) history_free(h);
    return st;
}

static void put_number(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, ",%.9g", v);
    else fputc(',', f);
}

static int write_rows(FILE *f, void *user)
{
    const run_history *h = user;
    fprintf(f, "%s\n", history_header);
    for (size_t i = 0; i < h->n; i++) {
        const history_row *r = &h->rows[i];
        fprintf(f, "%lld", (long long)r->step);
        put_number(f, r->data_loss);
        put_number(f, r->reg);
        put_number(f, r->val_metric);
        fprintf(f, ",%.3f\n", r->elapsed);
    }
    return ferror(f) ? -1 : 0;
}

tnmtl_status history_write(const run_history *h, const char *dir, tnmtl_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, HISTORY_FILE);
    return tnmtl_write_file_atomic(path, write_rows, (void *)h, err);
}
