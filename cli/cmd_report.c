/* cmd_report.c - `tnmtl report`: one self-contained HTML page (inline SVG,
 * a few lines of inline script for the heat maps' hover, nothing fetched)
 * from run, compare and tune folders, and every figure as an SVG file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report.h"
#include "tnmtl/cluster.h"
#include "util.h"

static const char report_usage[] =
    "usage: tnmtl report DIR... [--out FILE.html] [--figures DIR]\n\n"
    "Writes one self-contained HTML page (no network, nothing beside it) from run\n"
    "folders (train --out), compare folders (compare --out) and tune folders\n"
    "(trials.csv): overview, per-layer sharing (rho, effective rank, spectra of\n"
    "every unfolding the norms use), task relatedness heat maps ordered by\n"
    "hierarchical clustering, training curves, the comparison with STL and the\n"
    "tuning curve.  All runs must be of the same data.\n\n"
    "  --out FILE.html      the page (default report.html)\n"
    "  --figures DIR        also every figure as DIR/NAME.svg\n";

#define MAX_FIGS 512
#define MAX_PLOT_POINTS 400

typedef struct figure { char name[96]; char *svg; size_t len; } figure;

typedef struct page {
    FILE *f;                     /* the HTML                                  */
    FILE *js;                    /* hover data, emitted in the final script   */
    const rep_input *in;
    figure figs[MAX_FIGS];
    int n_figs, n_heatmaps;
    FILE *cur;                   /* the figure being drawn                    */
} page;

/* ---- small writers ------------------------------------------------------ */

static void h(page *pg, const char *s) { xml_escape(pg->f, s); }

/* A JS string literal (safe inside <script>: no "</" can appear). */
static void js_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == '<' || c == '>' || c == '&') fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static int is_cls(const rep_run *r) { return strcmp(r->metric, "rmse") != 0; }

/* A metric for display: accuracy in %, RMSE as is. */
static void put_metric(page *pg, const rep_run *r, double v)
{
    if (!isfinite(v)) fputs("-", pg->f);
    else if (is_cls(r)) fprintf(pg->f, "%.2f", 100 * v);
    else fprintf(pg->f, "%.4f", v);
}

static const char *metric_name(const rep_run *r) { return is_cls(r) ? "accuracy %" : "RMSE"; }

/* Starts a figure: drawn into memory, embedded in the page on fig_end and
 * kept for --figures. */
static FILE *fig_begin(page *pg, const char *name)
{
    if (pg->n_figs == MAX_FIGS) return NULL;
    figure *fg = &pg->figs[pg->n_figs];
    snprintf(fg->name, sizeof fg->name, "%s", name);
    pg->cur = open_memstream(&fg->svg, &fg->len);
    return pg->cur;
}

static void fig_end(page *pg, const char *caption)
{
    if (!pg->cur) return;
    fclose(pg->cur);
    pg->cur = NULL;
    figure *fg = &pg->figs[pg->n_figs++];
    fputs("<figure>\n", pg->f);
    fwrite(fg->svg, 1, fg->len, pg->f);
    fputs("<figcaption>", pg->f);
    h(pg, caption);
    fprintf(pg->f, " <span class=\"file\">(%s.svg)</span></figcaption>\n</figure>\n", fg->name);
}

static void note(page *pg, const char *s)
{
    fputs("<p class=\"note\">", pg->f);
    h(pg, s);
    fputs("</p>\n", pg->f);
}

/* The layer of run r with the same index as `layer`, or NULL. */
static const rep_layer *find_layer(const rep_run *r, int layer)
{
    for (int k = 0; k < r->n_layers; k++)
        if (r->layers[k].layer == layer) return &r->layers[k];
    return NULL;
}

static void mean_sd(const double *x, int n, double *mean, double *sd)
{
    double s = 0, ss = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) s += x[i], k++;
    *mean = k ? s / k : NAN;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) ss += (x[i] - *mean) * (x[i] - *mean);
    *sd = k > 1 ? sqrt(ss / (k - 1)) : 0;
}

/* ---- 1. overview -------------------------------------------------------- */

static void section_overview(page *pg)
{
    const rep_input *in = pg->in;
    const rep_run *r0 = &in->runs[0];
    fputs("<section id=\"overview\">\n<h2>1. Overview</h2>\n<p><b>Data</b> ", pg->f);
    h(pg, r0->data);
    fprintf(pg->f, ", %d tasks; <b>metric</b> test %s.</p>\n", r0->T, metric_name(r0));
    fprintf(pg->f, "<table>\n<tr><th>run</th><th>method</th><th>seed</th><th>architecture</th><th>gamma</th>"
                   "<th>steps</th><th>train s</th><th>test %s</th><th>validation</th></tr>\n",
            metric_name(r0));
    for (int i = 0; i < in->n_runs; i++) {
        const rep_run *r = &in->runs[i];
        fputs("<tr><td>", pg->f);
        h(pg, r->dir);
        fputs("</td><td>", pg->f);
        h(pg, r->method);
        fprintf(pg->f, "</td><td>%lld</td><td>", r->seed);
        h(pg, r->arch);
        fprintf(pg->f, "</td><td>%g</td><td>%lld</td><td>%.1f</td><td>", r->gamma, r->steps, r->train_seconds);
        put_metric(pg, r, r->test_mean);
        fputs("</td><td>", pg->f);
        put_metric(pg, r, r->val_mean);
        fputs("</td></tr>\n", pg->f);
    }
    fprintf(pg->f, "</table>\n<details%s><summary>Test %s per task</summary>\n<table>\n<tr><th>task</th>",
            r0->T <= 10 ? " open" : "", metric_name(r0));
    for (int i = 0; i < in->n_runs; i++) {
        fputs("<th>", pg->f);
        h(pg, in->runs[i].label);
        fputs("</th>", pg->f);
    }
    fputs("</tr>\n", pg->f);
    for (int t = 0; t < r0->T; t++) {
        fputs("<tr><td>", pg->f);
        h(pg, r0->task_names[t]);
        fputs("</td>", pg->f);
        for (int i = 0; i < in->n_runs; i++) {
            fputs("<td>", pg->f);
            put_metric(pg, &in->runs[i], in->runs[i].test[t]);
            fputs("</td>", pg->f);
        }
        fputs("</tr>\n", pg->f);
    }
    fputs("</table>\n</details>\n</section>\n", pg->f);
}

/* One run per method, its lowest seed, into idx (in run order); without
 * baselines, STL and UD only when there is no other method.  Figures that
 * overlay runs use these: 5 methods x 7 seeds would be illegible (and heavy). */
static int focus_runs(const rep_input *in, int baselines, int *idx)
{
    int n = 0, other = 0;
    for (int i = 0; i < in->n_runs && !baselines; i++)
        other |= strcmp(in->runs[i].method, "stl") && strcmp(in->runs[i].method, "ud");
    for (int i = 0; i < in->n_runs; i++) {
        const rep_run *r = &in->runs[i];
        if (other && (!strcmp(r->method, "stl") || !strcmp(r->method, "ud"))) continue;
        int k = 0;
        while (k < n && strcmp(in->runs[idx[k]].method, r->method)) k++;
        if (k == n) idx[n++] = i;
        else if (r->seed < in->runs[idx[k]].seed) idx[k] = i;
    }
    return n;
}

/* ---- 2. how shared, per layer ------------------------------------------- */

static void section_sharing(page *pg, const rep_input *in)
{
    const rep_run *r0 = &in->runs[0];
    const int nl = r0->n_layers, nr = in->n_runs;
    fputs("<section id=\"sharing\">\n<h2>2. How shared, per layer</h2>\n"
          "<p>rho: mean cosine similarity of the tasks' weights (1 = one shared copy, about 0 = independent). "
          "Effective rank of the task-mode unfolding: 1 when all tasks use one direction, T when they are "
          "orthogonal. Spectra: singular values of every unfolding a trace norm uses, normalised to sum 1; "
          "sharing shows as a faster decay than STL's (dashed).</p>\n",
          pg->f);
    if (nl == 0) {
        note(pg, "The runs have no shareable layers.");
        fputs("</section>\n", pg->f);
        return;
    }
    const char **groups = calloc((size_t)nl, sizeof *groups), **bars = calloc((size_t)nr, sizeof *bars),
               **colors = calloc((size_t)nr, sizeof *colors);
    double *rho = calloc((size_t)nl * nr, sizeof *rho), *erank = calloc((size_t)nl * nr, sizeof *erank);
    if (groups && bars && colors && rho && erank) {
        for (int i = 0; i < nr; i++) bars[i] = in->runs[i].label, colors[i] = method_color(in->runs[i].method);
        for (int k = 0; k < nl; k++) {
            groups[k] = r0->layers[k].name;
            for (int i = 0; i < nr; i++) {
                const rep_layer *L = find_layer(&in->runs[i], r0->layers[k].layer);
                rho[k * nr + i] = L ? L->rho : NAN;
                erank[k * nr + i] = L ? L->eff_rank : NAN;
            }
        }
        const double w = fmax(520, 180 + nl * (40 + 18.0 * nr));
        for (int which = 0; which < 2; which++) {
            FILE *f = fig_begin(pg, which ? "sharing_effective_rank" : "sharing_rho");
            if (!f) break;
            svg_panel p = {0, 0, w, 300, which ? "effective rank of the task-mode unfolding" : "rho (mean task cosine)",
                           NULL, which ? "effective rank" : "rho", 0, 0};
            svg_begin(f, w, 300, p.title);
            svg_bars(f, &p, nl, groups, nr, bars, colors, which ? erank : rho);
            svg_end(f);
            fig_end(pg, which ? "Effective rank of the task-mode unfolding per layer (T = independent tasks)."
                              : "rho per layer: how alike the tasks' weights are.");
        }
    }
    free(groups), free(bars), free(colors), free(rho), free(erank);

    /* Spectra: one figure per layer, a panel per unfolding, a line per run. */
    svg_series *ser = calloc((size_t)nr, sizeof *ser);
    double *xs = NULL, *ys = calloc((size_t)nr * MAX_PLOT_POINTS, sizeof *ys);
    xs = calloc((size_t)nr * MAX_PLOT_POINTS, sizeof *xs);
    for (int k = 0; k < nl && ser && xs && ys; k++) {
        const rep_layer *L0 = &r0->layers[k];
        if (L0->shared) continue;
        int n_panels = 0; /* unfoldings with one singular value (a dimension of 1) say nothing */
        for (int u = 0; u < L0->n_unf; u++) n_panels += L0->unf[u].n > 1;
        if (!n_panels) continue;
        const int cols = n_panels < 3 ? n_panels : 3, rows = (n_panels + cols - 1) / cols;
        const double pw = 330, ph = 240, W = cols * pw + 10, H = rows * ph + 30;
        char name[96], title[160];
        snprintf(name, sizeof name, "spectra_layer%d", L0->layer);
        snprintf(title, sizeof title, "singular-value spectra, layer %s", L0->name);
        FILE *f = fig_begin(pg, name);
        if (!f) break;
        svg_begin(f, W, H, title);
        fprintf(f, "<text x=\"8\" y=\"18\" font-size=\"13\" font-weight=\"bold\">");
        xml_escape(f, title);
        fputs("</text>\n", f);
        for (int u = 0, panel = 0; u < L0->n_unf; u++) {
            if (L0->unf[u].n <= 1) continue;
            int ns = 0;
            for (int i = 0; i < nr; i++) {
                const rep_layer *L = find_layer(&in->runs[i], L0->layer);
                const rep_spectrum *S = NULL;
                for (int v = 0; L && v < L->n_unf; v++)
                    if (!strcmp(L->unf[v].name, L0->unf[u].name)) S = &L->unf[v];
                if (!S) continue;
                const int stride = (S->n + MAX_PLOT_POINTS - 1) / MAX_PLOT_POINTS;
                double *x = xs + (size_t)ns * MAX_PLOT_POINTS, *y = ys + (size_t)ns * MAX_PLOT_POINTS;
                int n = 0;
                for (int j = 0; j < S->n && n < MAX_PLOT_POINTS; j += stride) x[n] = j + 1, y[n++] = S->sv[j];
                ser[ns++] = (svg_series){in->runs[i].label, method_color(in->runs[i].method),
                                         !strcmp(in->runs[i].method, "stl") ? SVG_DASHED : SVG_SOLID, n, x, y, -1};
            }
            char ptitle[160];
            const rep_spectrum *S0 = &L0->unf[u];
            if (S0->cols > 0)
                snprintf(ptitle, sizeof ptitle, "%s: %lld x %lld (%s)", S0->name, S0->rows, S0->cols, S0->used_by);
            else
                snprintf(ptitle, sizeof ptitle, "%s (%s)", S0->name, S0->used_by);
            svg_panel p = {(panel % cols) * pw, 24 + (panel / cols) * ph, pw, ph, ptitle, "index", "sigma / sum", 0, 1};
            panel++;
            svg_lines(f, &p, ser, ns, 0);
        }
        svg_end(f);
        char cap[160];
        snprintf(cap, sizeof cap, "Normalised singular values of every unfolding of layer %s (log scale); colours as in the bars above, STL dashed.",
                 L0->name);
        fig_end(pg, cap);
    }
    free(ser), free(xs), free(ys);
    fputs("</section>\n", pg->f);
}

/* ---- 3. who shares with whom --------------------------------------------- */

typedef struct pair { int a, b; double v; } pair;

static int cmp_pair(const void *x, const void *y)
{
    const pair *p = x, *q = y;
    return p->v < q->v ? 1 : p->v > q->v ? -1 : p->a != q->a ? p->a - q->a : p->b - q->b;
}

static tnmtl_status heatmap(page *pg, const rep_run *r, const rep_layer *L, tnmtl_error *err)
{
    const int T = r->T;
    double *D = tnmtl_malloc((size_t)T * T * sizeof *D, "distances", err);
    pair *pairs = tnmtl_malloc((size_t)(T * (T - 1) / 2 + 1) * sizeof *pairs, "pairs", err);
    if (!D || !pairs) {
        free(D), free(pairs);
        return TNMTL_ERR_NOMEM;
    }
    for (int i = 0; i < T * T; i++) D[i] = 1 - L->rel[i];
    tnmtl_dendrogram d;
    tnmtl_status st = tnmtl_cluster_average(T, D, &d, err);
    free(D);
    if (st) {
        free(pairs);
        return st;
    }
    char name[96], id[16], title[200];
    snprintf(name, sizeof name, "relatedness_%s_seed%lld_layer%d", r->method, r->seed, L->layer);
    snprintf(id, sizeof id, "h%d", pg->n_heatmaps++);
    snprintf(title, sizeof title, "task relatedness, %s, layer %s", r->label, L->name);
    FILE *f = fig_begin(pg, name);
    if (f) {
        svg_heatmap(f, title, T, L->rel, r->task_names, &d, id, NULL, NULL);
        fig_end(pg, "Relatedness of every task pair (overlap of their input subspaces, 1 = the same), rows and "
                    "columns ordered by average-linkage clustering of 1 - relatedness. Hover a cell for its tasks.");
    }
    fprintf(pg->js, "HM[\"%s\"]={o:[", id);
    for (int i = 0; i < T; i++) fprintf(pg->js, "%s%d", i ? "," : "", d.order[i]);
    fputs("],v:[", pg->js);
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) fprintf(pg->js, "%s%.3f", i || j ? "," : "", L->rel[d.order[i] * T + d.order[j]]);
    fputs("]};\n", pg->js);
    int np = 0;
    for (int a = 0; a < T; a++)
        for (int b = a + 1; b < T; b++) pairs[np++] = (pair){a, b, L->rel[a * T + b]};
    qsort(pairs, (size_t)np, sizeof *pairs, cmp_pair);
    fputs("<p>Most related pairs:</p>\n<ol class=\"pairs\">\n", pg->f);
    for (int k = 0; k < np && k < 10; k++) {
        fputs("<li>", pg->f);
        h(pg, r->task_names[pairs[k].a]);
        fputs(" ~ ", pg->f);
        h(pg, r->task_names[pairs[k].b]);
        fprintf(pg->f, ": %.3f</li>\n", pairs[k].v);
    }
    fputs("</ol>\n", pg->f);
    free(pairs);
    tnmtl_dendrogram_free(&d);
    return TNMTL_OK;
}

static tnmtl_status section_relatedness(page *pg, tnmtl_error *err)
{
    const rep_input *in = pg->in;
    fputs("<section id=\"relatedness\">\n<h2>3. Who shares with whom, per layer</h2>\n", pg->f);
    int *idx = tnmtl_malloc((size_t)in->n_runs * sizeof *idx, "runs", err);
    if (!idx) return TNMTL_ERR_NOMEM;
    const int n = focus_runs(in, 0, idx);
    tnmtl_status st = TNMTL_OK;
    int shown = 0;
    for (int i = 0; i < n && !st; i++) {
        const rep_run *r = &in->runs[idx[i]];
        for (int k = 0; k < r->n_layers && !st; k++) {
            if (r->layers[k].shared || r->T < 2) continue;
            fputs("<h3>", pg->f);
            h(pg, r->label);
            fputs(", layer ", pg->f);
            h(pg, r->layers[k].name);
            fputs("</h3>\n", pg->f);
            st = heatmap(pg, r, &r->layers[k], err);
            shown++;
        }
    }
    if (!st && !shown) note(pg, "No layer with separate task weights (one task, or every layer hard-shared).");
    free(idx);
    fputs("</section>\n", pg->f);
    return st;
}

/* ---- 4. training curves ------------------------------------------------- */

static void section_training(page *pg, const rep_input *in)
{
    const int nr = in->n_runs;
    fputs("<section id=\"training\">\n<h2>4. Training curves</h2>\n", pg->f);
    int any = 0, val = 0;
    for (int i = 0; i < nr; i++) {
        any |= in->runs[i].history.n > 0;
        for (size_t k = 0; k < in->runs[i].history.n; k++) val |= isfinite(in->runs[i].history.rows[k].val_metric);
    }
    if (!any) {
        note(pg, "No history.csv in these runs (made before tnmtl kept a training history).");
        fputs("</section>\n", pg->f);
        return;
    }
    svg_series *ser = calloc((size_t)nr * 3, sizeof *ser);
    double *buf = calloc((size_t)nr * 4 * MAX_PLOT_POINTS, sizeof *buf);
    if (ser && buf) {
        for (int i = 0; i < nr; i++) {
            const run_history *hi = &in->runs[i].history;
            double *x = buf + (size_t)i * 4 * MAX_PLOT_POINTS, *yl = x + MAX_PLOT_POINTS, *yr = yl + MAX_PLOT_POINTS,
                   *yv = yr + MAX_PLOT_POINTS;
            const size_t stride = (hi->n + MAX_PLOT_POINTS - 1) / MAX_PLOT_POINTS;
            int n = 0, nv = 0;
            double *xv = calloc(MAX_PLOT_POINTS, sizeof *xv); /* validation points are sparse: own x */
            for (size_t k = 0; k < hi->n && n < MAX_PLOT_POINTS; k += stride ? stride : 1) {
                x[n] = (double)hi->rows[k].step, yl[n] = hi->rows[k].data_loss, yr[n++] = hi->rows[k].reg;
            }
            for (size_t k = 0; xv && k < hi->n && nv < MAX_PLOT_POINTS; k++)
                if (isfinite(hi->rows[k].val_metric))
                    xv[nv] = (double)hi->rows[k].step,
                    yv[nv++] = hi->rows[k].val_metric * (is_cls(&in->runs[i]) ? 100 : 1);
            const char *c = method_color(in->runs[i].method);
            const int dash = !strcmp(in->runs[i].method, "stl") ? SVG_DASHED : SVG_SOLID;
            ser[i] = (svg_series){in->runs[i].label, c, dash, n, x, yl, -1};
            ser[nr + i] = (svg_series){in->runs[i].label, c, dash, n, x, yr, -1};
            ser[2 * nr + i] = (svg_series){in->runs[i].label, c, dash, nv, xv, yv, -1};
        }
        const int panels = val ? 3 : 2;
        const double pw = 360, ph = 280, W = panels * pw + 130;
        FILE *f = fig_begin(pg, "training");
        if (f) {
            svg_begin(f, W, ph, "training curves");
            svg_panel p1 = {0, 0, pw, ph, "data loss (sum of task losses)", "step", "loss", 0, 1};
            svg_panel p2 = {pw, 0, pw + (val ? 0 : 130), ph, "regulariser", "step", "value", 0, 0};
            svg_panel p3 = {2 * pw, 0, pw + 130, ph, "validation", "step", metric_name(&in->runs[0]), 0, 0};
            svg_lines(f, &p1, ser, nr, 0);
            svg_lines(f, &p2, ser + nr, nr, !val);
            if (val) svg_lines(f, &p3, ser + 2 * nr, nr, 1);
            svg_end(f);
            fig_end(pg, val ? "Data loss, regulariser and validation metric against step."
                            : "Data loss and regulariser against step (no validation part).");
        }
        for (int i = 0; i < nr; i++) free((void *)ser[2 * nr + i].x);
    }
    free(ser);
    free(buf);
    fputs("</section>\n", pg->f);
}

/* ---- 5. comparison ------------------------------------------------------- */

/* Methods in order of first appearance. */
static int list_methods(const rep_input *in, const char **m)
{
    int n = 0;
    for (int i = 0; i < in->n_runs; i++) {
        int k = 0;
        while (k < n && strcmp(m[k], in->runs[i].method)) k++;
        if (k == n && n < 16) m[n++] = in->runs[i].method;
    }
    return n;
}

/* STL's run of the same seed as r, or NULL. */
static const rep_run *stl_of(const rep_input *in, const rep_run *r)
{
    for (int i = 0; i < in->n_runs; i++)
        if (!strcmp(in->runs[i].method, "stl") && in->runs[i].seed == r->seed) return &in->runs[i];
    return NULL;
}

static void section_comparison(page *pg)
{
    const rep_input *in = pg->in;
    const rep_run *r0 = &in->runs[0];
    const int T = r0->T, cls = is_cls(r0);
    const double scale = cls ? 100 : 1, sign = cls ? 1 : -1; /* gain: higher accuracy, lower RMSE */
    fputs("<section id=\"comparison\">\n<h2>5. Comparison</h2>\n", pg->f);
    const char *methods[16];
    const int nm = list_methods(in, methods);
    if (in->n_runs < 2) {
        note(pg, "One run: give several runs (or a compare folder) to compare methods.");
        fputs("</section>\n", pg->f);
        return;
    }
    fprintf(pg->f, "<table>\n<tr><th>method</th><th>runs</th><th>test %s (std)</th><th>gain over STL, paired (std)</th>"
                   "<th>wins</th><th>validation</th><th>train s</th></tr>\n",
            metric_name(r0));
    double *gain = calloc((size_t)nm * T, sizeof *gain);
    int n_gain = 0;
    const char *gnames[16], *gcolors[16];
    for (int m = 0; m < nm; m++) {
        double x[1024], d[1024], v[1024], s[1024], mean, sd, dm, dsd, vm, vsd, sm, ssd;
        int n = 0, nd = 0, wins = 0;
        double *g = gain ? gain + (size_t)n_gain * T : NULL;
        int *gk = calloc((size_t)T, sizeof *gk);
        for (int i = 0; i < in->n_runs && n < 1024; i++) {
            const rep_run *r = &in->runs[i];
            if (strcmp(r->method, methods[m])) continue;
            x[n] = scale * r->test_mean, v[n] = scale * r->val_mean, s[n++] = r->train_seconds;
            const rep_run *b = strcmp(r->method, "stl") ? stl_of(in, r) : NULL;
            if (!b) continue;
            d[nd] = sign * scale * (r->test_mean - b->test_mean);
            wins += d[nd++] > 0;
            for (int t = 0; t < T && g && gk; t++)
                if (isfinite(r->test[t]) && isfinite(b->test[t])) g[t] += sign * scale * (r->test[t] - b->test[t]), gk[t]++;
        }
        mean_sd(x, n, &mean, &sd);
        mean_sd(d, nd, &dm, &dsd);
        mean_sd(v, n, &vm, &vsd);
        mean_sd(s, n, &sm, &ssd);
        fputs("<tr><td>", pg->f);
        h(pg, methods[m]);
        fprintf(pg->f, "</td><td>%d</td><td>%.*f (%.*f)</td>", n, cls ? 2 : 4, mean, cls ? 2 : 4, sd);
        if (nd) fprintf(pg->f, "<td>%+.*f (%.*f)</td><td>%d/%d</td>", cls ? 2 : 4, dm, cls ? 2 : 4, dsd, wins, nd);
        else fputs("<td>-</td><td>-</td>", pg->f);
        if (isfinite(vm)) fprintf(pg->f, "<td>%.*f</td>", cls ? 2 : 4, vm);
        else fputs("<td>-</td>", pg->f);
        fprintf(pg->f, "<td>%.1f</td></tr>\n", sm);
        if (nd && g && gk && n_gain < 16) {
            for (int t = 0; t < T; t++) g[t] = gk[t] ? g[t] / gk[t] : NAN;
            gnames[n_gain] = methods[m], gcolors[n_gain++] = method_color(methods[m]);
        }
        free(gk);
    }
    fputs("</table>\n", pg->f);
    if (n_gain && gain) {
        /* Tasks sorted by their mean gain over the methods, largest first. */
        int *ord = malloc((size_t)T * sizeof *ord);
        double *key = malloc((size_t)T * sizeof *key), *v = malloc((size_t)n_gain * T * sizeof *v);
        const char **rows = malloc((size_t)T * sizeof *rows);
        if (ord && key && v && rows) {
            for (int t = 0; t < T; t++) {
                double sum = 0;
                for (int m = 0; m < n_gain; m++) sum += isfinite(gain[m * T + t]) ? gain[m * T + t] : 0;
                key[t] = sum / n_gain, ord[t] = t;
            }
            for (int a = 1; a < T; a++) /* insertion sort: T is small */
                for (int b = a; b > 0 && key[ord[b]] > key[ord[b - 1]]; b--) {
                    int tmp = ord[b];
                    ord[b] = ord[b - 1], ord[b - 1] = tmp;
                }
            for (int t = 0; t < T; t++) {
                rows[t] = r0->task_names[ord[t]];
                for (int m = 0; m < n_gain; m++) v[m * T + t] = gain[m * T + ord[t]];
            }
            const double H = svg_dot_rows_height(T), W = 760;
            FILE *f = fig_begin(pg, "gain_per_task");
            if (f) {
                char xl[64];
                snprintf(xl, sizeof xl, "gain over STL (%s)", cls ? "accuracy points" : "RMSE decrease");
                svg_panel p = {0, 0, W, H, "gain over STL per task", xl, NULL, 0, 0};
                svg_begin(f, W, H, p.title);
                svg_dot_rows(f, &p, T, rows, n_gain, gnames, gcolors, v);
                svg_end(f);
                fig_end(pg, "Per task, each method's test gain over STL (mean over the paired seeds): right of the "
                            "line gained, left lost.");
            }
        }
        free(ord), free(key), free(v), free(rows);
    } else {
        note(pg, "No STL run with the same seed: no gains to show.");
    }
    free(gain);
    fputs("</section>\n", pg->f);
}

/* ---- 6. tuning ------------------------------------------------------------ */

static void section_tuning(page *pg)
{
    const rep_input *in = pg->in;
    fputs("<section id=\"tuning\">\n<h2>6. Tuning</h2>\n", pg->f);
    if (!in->n_trials) {
        note(pg, "No tune folder (trials.csv) among the inputs.");
        fputs("</section>\n", pg->f);
        return;
    }
    FILE *f = fig_begin(pg, "tuning");
    if (f) {
        report_tuning_figure(f, in, 760, 360);
        fig_end(pg, "Validation metric against gamma per regularised method (STL: against its weight decay): each "
                    "strength's last evaluation (along the path search, or at the last successive-halving rung it "
                    "reached), joined; open circles: the same strength trained from scratch to confirm it; crosses: "
                    "such a confirmation stopped early, behind the path start's run (the weakest strength's), at its "
                    "last validation; dashed lines: the best UD-MTL validation, and STL's where it searched its "
                    "steps (tunes before 2026-12-06); ringed: the configuration tune chose.");
    }
    fprintf(pg->f, "<table>\n<tr>%s<th>method</th><th>gamma</th><th>weight decay</th><th>shared depth N</th>"
                   "<th>batch</th><th>steps</th>"
                   "<th>validation %s</th>"
                   "<th>run</th><th>chosen</th></tr>\n",
            in->n_tunes > 1 ? "<th>tune folder</th>" : "", in->trials_cls ? "accuracy %" : "RMSE");
    for (int i = 0; i < in->n_trials; i++) {
        const rep_trial *t = &in->trials[i];
        fputs("<tr>", pg->f);
        if (in->n_tunes > 1) {
            fputs("<td>", pg->f);
            h(pg, in->tune_dirs[t->tune]);
            fputs("</td>", pg->f);
        }
        fputs("<td>", pg->f);
        h(pg, t->method);
        fputs("</td><td>", pg->f);
        if (isfinite(t->gamma)) fprintf(pg->f, "%g", t->gamma);
        else fputs("-", pg->f);
        fputs("</td><td>", pg->f);
        if (isfinite(t->weight_decay)) fprintf(pg->f, "%g", t->weight_decay);
        else fputs("-", pg->f);
        fputs("</td><td>", pg->f);
        if (t->share >= 0) fprintf(pg->f, "%d", t->share);
        else fputs("-", pg->f);
        fputs("</td><td>", pg->f);
        if (t->batch > 0) fprintf(pg->f, "%d", t->batch);
        else fputs(t->batch == 0 ? "full" : "-", pg->f);
        fprintf(pg->f, "</td><td>%lld</td><td>", t->steps);
        if (in->trials_cls) fprintf(pg->f, "%.2f", 100 * t->val);
        else fprintf(pg->f, "%.4f", t->val);
        fprintf(pg->f, "</td><td>%s</td><td>%s</td></tr>\n",
                t->stopped ? "from scratch, stopped behind the path's start" : t->scratch ? "from scratch" : "",
                t->chosen ? "<b>yes</b>" : "");
    }
    fputs("</table>\n", pg->f);
    fputs("</section>\n", pg->f);
}

/* ---- the page ------------------------------------------------------------- */

static const char page_style[] =
    "body{font-family:Helvetica,Arial,sans-serif;max-width:1200px;margin:0 auto;padding:0 16px 40px;color:#222}"
    "h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-top:12px}h3{font-size:1em;margin-bottom:4px}"
    "table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;"
    "text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f2f2f2}"
    "figure{margin:10px 0;overflow-x:auto}figcaption{font-size:13px;color:#444}.file{color:#999}"
    ".note{color:#666;font-style:italic}nav a{margin-right:12px}ol.pairs{columns:2;font-size:13px}"
    "#tip{position:absolute;display:none;background:#fff;border:1px solid #888;padding:2px 6px;font-size:12px;"
    "pointer-events:none;box-shadow:1px 1px 3px #aaa}";

/* Hover on heat maps (data in HM, names in TASKS) and a marker that the
 * page rendered with every section (the browser test reads it). */
static const char page_script[] =
    "(function(){var tip=document.getElementById('tip');\n"
    "document.querySelectorAll('.hm-hit').forEach(function(r){var d=HM[r.getAttribute('data-hm')],n=d.o.length;\n"
    " r.addEventListener('mousemove',function(e){var b=r.getBoundingClientRect(),"
    "j=Math.floor((e.clientX-b.left)/b.width*n),i=Math.floor((e.clientY-b.top)/b.height*n);\n"
    "  if(i<0||j<0||i>=n||j>=n){tip.style.display='none';return;}\n"
    "  tip.textContent=TASKS[d.o[i]]+' ~ '+TASKS[d.o[j]]+': '+d.v[i*n+j].toFixed(3);\n"
    "  tip.style.left=(e.pageX+12)+'px';tip.style.top=(e.pageY+12)+'px';tip.style.display='block';});\n"
    " r.addEventListener('mouseleave',function(){tip.style.display='none';});});\n"
    "var ok=['overview','sharing','relatedness','training','comparison','tuning'].every(function(s){"
    "return document.getElementById(s);});\n"
    "document.body.setAttribute('data-report',ok?'ok':'incomplete');})();\n";

static tnmtl_status write_page(page *pg, tnmtl_error *err)
{
    const rep_input *in = pg->in;
    FILE *f = pg->f;
    const rep_run *r0 = in->n_runs ? &in->runs[0] : NULL;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>tnmtl report: ", f);
    h(pg, r0 ? r0->data : "tuning");
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>tnmtl report: ", page_style);
    h(pg, r0 ? r0->data : "tuning");
    char tunings[48] = "";
    if (in->n_tunes) snprintf(tunings, sizeof tunings, ", %d tuning%s", in->n_tunes, in->n_tunes > 1 ? "s" : "");
    fprintf(f, "</h1>\n<p>%d run(s)%s. Made by <code>tnmtl %s report</code>; every figure is also an SVG file with "
               "<code>--figures DIR</code>.</p>\n",
            in->n_runs, tunings, TNMTL_VERSION);
    fputs("<nav><a href=\"#overview\">overview</a><a href=\"#sharing\">how shared</a><a href=\"#relatedness\">who "
          "with whom</a><a href=\"#training\">training</a><a href=\"#comparison\">comparison</a><a "
          "href=\"#tuning\">tuning</a></nav>\n",
          f);
    tnmtl_status st = TNMTL_OK;
    if (r0) {
        /* Figures that overlay runs show one run per method (all runs when
         * each method has one). */
        rep_input focus = {0};
        int *idx = tnmtl_malloc((size_t)in->n_runs * sizeof *idx, "runs", err);
        focus.runs = tnmtl_malloc((size_t)in->n_runs * sizeof *focus.runs, "runs", err);
        if (!idx || !focus.runs) {
            free(idx), free(focus.runs);
            return TNMTL_ERR_NOMEM;
        }
        focus.n_runs = focus_runs(in, 1, idx);
        for (int i = 0; i < focus.n_runs; i++) focus.runs[i] = in->runs[idx[i]]; /* shallow copies */
        section_overview(pg);
        section_sharing(pg, &focus);
        st = section_relatedness(pg, err);
        if (!st) section_training(pg, &focus);
        if (!st) section_comparison(pg);
        free(idx);
        free(focus.runs);
    } else {
        static const char *const ids[] = {"overview", "sharing", "relatedness", "training", "comparison"};
        for (int i = 0; i < 5; i++)
            fprintf(f, "<section id=\"%s\"><p class=\"note\">No run folders, only a tuning.</p></section>\n", ids[i]);
    }
    if (!st) section_tuning(pg);
    fputs("<div id=\"tip\"></div>\n<script>\nvar TASKS=[", f);
    for (int t = 0; r0 && t < r0->T; t++) {
        if (t) fputc(',', f);
        js_string(f, r0->task_names[t]);
    }
    fputs("];\nvar HM={};\n", f);
    fflush(pg->js);
    return st;
}

int cmd_report(int argc, char **argv)
{
    const char *out = "report.html", *fig_dir = NULL;
    const char **dirs = calloc((size_t)argc, sizeof *dirs);
    int n_dirs = 0;
    if (!dirs) return EXIT_FAILURE_OTHER;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s", report_usage);
            free(dirs);
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "--figures")) {
            if (i + 1 >= argc) {
                free(dirs);
                return cli_usage_error("report", "%s needs a value", argv[i]);
            }
            *(!strcmp(argv[i], "--out") ? &out : &fig_dir) = argv[i + 1];
            i++;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            free(dirs);
            return cli_usage_error("report", "unknown option '%s'", argv[i]);
        }
        dirs[n_dirs++] = argv[i];
    }
    if (!n_dirs) {
        free(dirs);
        return cli_usage_error("report", "give at least one run, compare or tune folder");
    }
    rep_input in = {0};
    tnmtl_error err = {0};
    tnmtl_status st = TNMTL_OK;
    for (int i = 0; i < n_dirs && !st; i++) st = report_load(&in, dirs[i], &err);
    free(dirs);
    if (!st) st = report_check_same_data(&in, &err);
    report_sort_runs(&in);
    if (st) {
        report_input_free(&in);
        return cli_fail("report", &err);
    }
    page *pg = calloc(1, sizeof *pg);
    char *html = NULL, *js = NULL;
    size_t html_len = 0, js_len = 0;
    if (!pg || !(pg->f = open_memstream(&html, &html_len)) || !(pg->js = open_memstream(&js, &js_len))) {
        st = tnmtl_fail(&err, TNMTL_ERR_NOMEM, "out of memory for the page");
    } else {
        pg->in = &in;
        st = write_page(pg, &err);
        fwrite(js, 1, js_len, pg->f);
        fprintf(pg->f, "%s</script>\n</body>\n</html>\n", page_script);
    }
    if (pg && pg->js) fclose(pg->js);
    if (pg && pg->f) fclose(pg->f);
    free(js);
    /* Nothing is written unless the whole page was made: no partial output. */
    if (!st) st = tnmtl_write_buffer_atomic(out, html, html_len, &err);
    if (!st && fig_dir) st = tnmtl_mkdir_p(fig_dir, &err);
    for (int i = 0; !st && fig_dir && i < pg->n_figs; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.svg", fig_dir, pg->figs[i].name);
        st = tnmtl_write_buffer_atomic(path, pg->figs[i].svg, pg->figs[i].len, &err);
    }
    if (!st)
        fprintf(stderr, "tnmtl report: wrote %s (%zu bytes, %d figures%s%s)\n", out, html_len, pg->n_figs,
                fig_dir ? " also in " : "", fig_dir ? fig_dir : "");
    for (int i = 0; pg && i < pg->n_figs; i++) free(pg->figs[i].svg);
    free(pg);
    free(html);
    report_input_free(&in);
    return st ? cli_fail("report", &err) : EXIT_OK;
}
