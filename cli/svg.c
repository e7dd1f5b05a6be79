/* svg.c - the report's figures as standalone SVG: line charts, grouped bars,
 * dot rows and a clustered heat map with its dendrogram.  Everything is
 * drawn with presentation attributes (no CSS, no script, no external
 * reference), so each figure is also a file a paper or a slide can use. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "tnmtl/cluster.h"

#define FONT "font-family=\"Helvetica,Arial,sans-serif\""

void xml_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') fputc(*s, f); /* no control characters in XML */
        }
    }
}

const char *method_color(const char *method)
{
    static const char *const names[] = {"stl", "ud", "laf", "tucker", "tt"};
    static const char *const colors[] = {"#7f7f7f", "#9467bd", "#2ca02c", "#1f77b4", "#d62728"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(method, names[i])) return colors[i];
    return "#ff7f0e";
}

void svg_begin(FILE *f, double w, double h, const char *title)
{
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" " FONT
               " font-size=\"12\">\n<title>",
            w, h, w, h);
    xml_escape(f, title);
    fprintf(f, "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
}

void svg_end(FILE *f)
{
    fputs("</svg>\n", f);
}

static void text(FILE *f, double x, double y, const char *anchor, double size, const char *extra, const char *s)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%.1f\"%s%s>", x, y, anchor, size,
            extra ? " " : "", extra ? extra : "");
    xml_escape(f, s);
    fputs("</text>\n", f);
}

/* A scale from data [lo, hi] (log10 of it when log) to pixels [a, b]. */
typedef struct scale { double lo, hi, a, b; int log; } scale;

static double to_px(const scale *s, double v)
{
    if (s->log) v = log10(v);
    return s->hi > s->lo ? s->a + (v - s->lo) / (s->hi - s->lo) * (s->b - s->a) : 0.5 * (s->a + s->b);
}

static double nice_step(double span, int n)
{
    const double raw = span / n, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * p;
}

/* Data range of the finite (positive when log) values, padded, and ticks. */
static void fit_scale(scale *s, double lo, double hi, int log)
{
    s->log = log;
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (log) {
        lo = floor(log10(lo)), hi = ceil(log10(hi));
        if (hi == lo) hi = lo + 1;
    } else {
        if (hi == lo) lo -= lo ? fabs(lo) * 0.1 : 0.5, hi += hi ? fabs(hi) * 0.1 : 0.5;
        const double step = nice_step(hi - lo, 5); /* out to whole ticks */
        lo = floor(lo / step + 1e-9) * step, hi = ceil(hi / step - 1e-9) * step;
    }
    s->lo = lo, s->hi = hi;
}

static void fmt_tick(char *buf, size_t cap, double v, int log)
{
    if (log) snprintf(buf, cap, "1e%d", (int)lround(v));
    else if (fabs(v) < 1e-12) snprintf(buf, cap, "0");
    else snprintf(buf, cap, "%g", v);
}

/* Axes with ticks and grid for x and y scales inside panel p. */
static void axes(FILE *f, const svg_panel *p, const scale *sx, const scale *sy, int x_ticks, int y_ticks)
{
    const double x0 = sx->a, x1 = sx->b, y0 = sy->a, y1 = sy->b;
    char buf[32];
    for (int axis = 0; axis < 2; axis++) {
        const scale *s = axis ? sy : sx;
        if ((!axis && !x_ticks) || (axis && !y_ticks)) continue;
        double step = s->log ? ceil((s->hi - s->lo) / 6) : nice_step(s->hi - s->lo, 5);
        for (double v = ceil(s->lo / step - 1e-9) * step; v <= s->hi + 1e-9 * step; v += step) {
            const double px = s->a + (v - s->lo) / (s->hi - s->lo) * (s->b - s->a);
            fmt_tick(buf, sizeof buf, v, s->log);
            if (axis) {
                fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", x0, px, x1, px);
                text(f, x0 - 4, px + 4, "end", 10, NULL, buf);
            } else {
                fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", px, y0, px, y1);
                text(f, px, y0 + 14, "middle", 10, NULL, buf);
            }
        }
    }
    fprintf(f, "<path d=\"M%.1f %.1fV%.1fH%.1f\" fill=\"none\" stroke=\"#333\"/>\n", x0, y1, y0, x1);
    if (p->title) text(f, 0.5 * (x0 + x1), p->y + 14, "middle", 12, "font-weight=\"bold\"", p->title);
    if (p->xlabel) text(f, 0.5 * (x0 + x1), y0 + 30, "middle", 11, NULL, p->xlabel);
    if (p->ylabel) {
        char rot[96];
        snprintf(rot, sizeof rot, "transform=\"rotate(-90 %.1f %.1f)\"", p->x + 12, 0.5 * (y0 + y1));
        text(f, p->x + 12, 0.5 * (y0 + y1), "middle", 11, rot, p->ylabel);
    }
}

/* A point marker of a SVG_POINTS (open circle) or SVG_CROSSES series. */
static void marker(FILE *f, int style, double x, double y, const char *color)
{
    if (style == SVG_CROSSES)
        fprintf(f,
                "<path class=\"cross\" d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f\" stroke=\"%s\" "
                "stroke-width=\"2\"/>\n",
                x - 4, y - 4, x + 4, y + 4, x - 4, y + 4, x + 4, y - 4, color);
    else
        fprintf(f,
                "<circle class=\"open\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#fff\" stroke=\"%s\" "
                "stroke-width=\"1.8\"/>\n",
                x, y, color);
}

/* styles: each entry's SVG_* (NULL: all solid); lines drawn as a sample
 * line, points as their marker. */
static void legend(FILE *f, double x, double y, int n, const char *const *names, const char *const *colors,
                   const int *styles)
{
    for (int i = 0; i < n; i++) {
        const int st = styles ? styles[i] : SVG_SOLID;
        if (st >= SVG_POINTS) marker(f, st, x + 8, y + 14 * i - 4, colors[i]);
        else
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s/>\n",
                    x, y + 14 * i - 4, x + 16, y + 14 * i - 4, colors[i],
                    st == SVG_DASHED ? " stroke-dasharray=\"4 3\"" : "");
        text(f, x + 20, y + 14 * i, "start", 10, NULL, names[i]);
    }
}

enum { PAD_L = 52, PAD_R = 12, PAD_T = 24, PAD_B = 40, LEGEND_W = 120 };

/* The legend's width for series names: LEGEND_W, or wider for long names (10 px
 * text, about 5.6 px a character, after the 20 px sample line), at most half
 * the panel. */
static double legend_width(const svg_panel *p, const svg_series *s, int n)
{
    size_t longest = 0;
    for (int i = 0; i < n; i++)
        if (s[i].name && strlen(s[i].name) > longest) longest = strlen(s[i].name);
    const double w = 30 + 5.6 * (double)longest;
    return w < LEGEND_W ? LEGEND_W : w > 0.5 * p->w ? 0.5 * p->w : w;
}

void svg_lines(FILE *f, const svg_panel *p, const svg_series *s, int n, int with_legend)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s[i].n; k++) {
            const double x = s[i].x[k], y = s[i].y[k];
            if (!isfinite(x) || !isfinite(y) || (p->logx && x <= 0) || (p->logy && y <= 0)) continue;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        }
    scale sx, sy;
    fit_scale(&sx, xlo, xhi, p->logx);
    fit_scale(&sy, ylo, yhi, p->logy);
    if (!p->logy && sy.lo > 0 && sy.lo < 0.3 * sy.hi) sy.lo = 0;
    sx.a = p->x + PAD_L, sx.b = p->x + p->w - PAD_R - (with_legend ? legend_width(p, s, n) : 0);
    sy.a = p->y + p->h - PAD_B, sy.b = p->y + PAD_T;
    axes(f, p, &sx, &sy, 1, 1);
    if (!(xlo <= xhi)) text(f, 0.5 * (sx.a + sx.b), 0.5 * (sy.a + sy.b), "middle", 11, NULL, "no data");
    for (int i = 0; i < n; i++) {
#define DRAWN(k) \
    (isfinite(s[i].x[k]) && isfinite(s[i].y[k]) && !(p->logx && s[i].x[k] <= 0) && !(p->logy && s[i].y[k] <= 0))
        int points = 0;
        for (int k = 0; k < s[i].n; k++) points += DRAWN(k);
        if (s[i].style < SVG_POINTS) {
            fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s d=\"", s[i].color,
                    s[i].style == SVG_DASHED ? " stroke-dasharray=\"5 3\"" : "");
            for (int k = 0, pen = 0; k < s[i].n; k++) {
                if (!DRAWN(k)) {
                    pen = 0;
                    continue;
                }
                fprintf(f, "%s%.1f %.1f", pen ? "L" : "M", to_px(&sx, s[i].x[k]), to_px(&sy, s[i].y[k]));
                pen = 1;
            }
            fputs("\"/>\n", f);
        }
        for (int k = 0; k < s[i].n; k++) {
            if (!DRAWN(k)) continue;
            if (s[i].style >= SVG_POINTS)
                marker(f, s[i].style, to_px(&sx, s[i].x[k]), to_px(&sy, s[i].y[k]), s[i].color);
            else if (points < 40) /* dots on a sparse line: a single point shows */
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", to_px(&sx, s[i].x[k]),
                        to_px(&sy, s[i].y[k]), s[i].color);
        }
#undef DRAWN
        const int m = s[i].mark;
        if (m >= 0 && m < s[i].n && isfinite(s[i].y[m]))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" stroke=\"#000\" stroke-width=\"2\"/>\n",
                    to_px(&sx, s[i].x[m]), to_px(&sy, s[i].y[m]));
    }
    if (with_legend) {
        const char *names[64], *colors[64];
        int styles[64], k = n < 64 ? n : 64;
        for (int i = 0; i < k; i++) names[i] = s[i].name, colors[i] = s[i].color, styles[i] = s[i].style;
        legend(f, sx.b + 10, p->y + PAD_T + 10, k, names, colors, styles);
    }
}

void svg_bars(FILE *f, const svg_panel *p, int n_groups, const char *const *groups, int n_bars,
              const char *const *bars, const char *const *colors, const double *v)
{
    double lo = 0, hi = 0;
    for (int i = 0; i < n_groups * n_bars; i++)
        if (isfinite(v[i])) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
    scale sx = {0, 1, p->x + PAD_L, p->x + p->w - PAD_R - LEGEND_W, 0}, sy;
    fit_scale(&sy, lo, hi > lo ? hi : lo + 1, 0);
    sy.a = p->y + p->h - PAD_B, sy.b = p->y + PAD_T;
    axes(f, p, &sx, &sy, 0, 1);
    const double gw = (sx.b - sx.a) / n_groups, bw = 0.8 * gw / n_bars;
    for (int g = 0; g < n_groups; g++) {
        const double gx = sx.a + g * gw + 0.1 * gw;
        for (int b = 0; b < n_bars; b++) {
            const double val = v[g * n_bars + b];
            if (!isfinite(val)) continue;
            const double y0 = to_px(&sy, 0), y1 = to_px(&sy, val);
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>", gx + b * bw,
                    fmin(y0, y1), fmax(bw - 1, 1), fabs(y1 - y0), colors[b]);
            xml_escape(f, bars[b]);
            fprintf(f, ": %.3f</title></rect>\n", val);
        }
        text(f, sx.a + (g + 0.5) * gw, sy.a + 14, "middle", 10, NULL, groups[g]);
    }
    legend(f, sx.b + 10, p->y + PAD_T + 10, n_bars, bars, colors, NULL);
}

double svg_dot_rows_height(int n_rows)
{
    return PAD_T + PAD_B + 14.0 * n_rows + 10;
}

void svg_dot_rows(FILE *f, const svg_panel *p, int n_rows, const char *const *rows, int n_series,
                  const char *const *series, const char *const *colors, const double *v)
{
    double lo = 0, hi = 0;
    size_t longest = 4;
    for (int i = 0; i < n_rows * n_series; i++)
        if (isfinite(v[i])) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
    for (int r = 0; r < n_rows; r++) longest = strlen(rows[r]) > longest ? strlen(rows[r]) : longest;
    const double label_w = fmin(6.0 * (double)longest + 10, 260);
    scale sx, sy = {0, n_rows, p->y + PAD_T, p->y + PAD_T + 14.0 * n_rows, 0};
    fit_scale(&sx, lo, hi, 0);
    sx.a = p->x + label_w, sx.b = p->x + p->w - PAD_R - LEGEND_W;
    svg_panel q = *p;
    q.ylabel = NULL;
    scale sy_axis = {0, 1, sy.b, sy.a, 0};
    axes(f, &q, &sx, &sy_axis, 1, 0);
    const double zx = to_px(&sx, 0);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", zx, sy.a, zx, sy.b);
    for (int r = 0; r < n_rows; r++) {
        const double y = sy.a + 14.0 * r + 7;
        if (r % 2 == 0)
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"14\" fill=\"#f4f4f4\"/>\n", sx.a, y - 7,
                    sx.b - sx.a);
        text(f, sx.a - 6, y + 4, "end", 10, NULL, rows[r]);
        for (int s = 0; s < n_series; s++) {
            const double val = v[s * n_rows + r];
            if (!isfinite(val)) continue;
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>", to_px(&sx, val), y, colors[s]);
            xml_escape(f, series[s]);
            fputs(", ", f);
            xml_escape(f, rows[r]);
            fprintf(f, ": %+.2f</title></circle>\n", val);
        }
    }
    legend(f, sx.b + 10, p->y + PAD_T + 10, n_series, series, colors, NULL);
}

/* Sequential colour map (viridis, 5 anchors) at t in [0, 1]. */
static void colormap(double t, char *buf)
{
    static const double c[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const double u = t * 4;
    const int i = u >= 4 ? 3 : (int)u;
    const double w = u - i;
    snprintf(buf, 8, "#%02x%02x%02x", (int)lround(c[i][0] + w * (c[i + 1][0] - c[i][0])),
             (int)lround(c[i][1] + w * (c[i + 1][1] - c[i][1])), (int)lround(c[i][2] + w * (c[i + 1][2] - c[i][2])));
}

enum { LEVELS = 32, DENDRO_W = 110, TOP = 30 };

void svg_heatmap(FILE *f, const char *title, int T, const double *R, char *const *names,
                 const tnmtl_dendrogram *d, const char *id, double *w_out, double *h_out)
{
    const double cell = T <= 8 ? 36 : T <= 20 ? 20 : T <= 40 ? 13 : 10, fs = fmin(11, cell - 1), side = cell * T;
    size_t longest = 1;
    for (int t = 0; t < T; t++) longest = strlen(names[t]) > longest ? strlen(names[t]) : longest;
    const double label = fmin(0.62 * fs * (double)longest + 8, 240);
    const double hx = DENDRO_W, hy = TOP, H = hy + side + label + 10;
    const double W = fmax(hx + side + label + 70, hx + 7.5 * (double)strlen(title)); /* the title fits */
    if (w_out) *w_out = W;
    if (h_out) *h_out = H;
    if (!f) return;
    double lo = INFINITY, hi = -INFINITY;
    for (int a = 0; a < T; a++)
        for (int b = 0; b < T; b++)
            if (a != b) lo = fmin(lo, R[a * T + b]), hi = fmax(hi, R[a * T + b]);
    if (!(lo < hi)) lo = fmin(T > 1 ? lo : 0, 0), hi = fmax(T > 1 ? hi : 1, 1); /* one pair, or all equal */
    svg_begin(f, W, H, title);
    text(f, hx, 18, "start", 13, "font-weight=\"bold\"", title);
    /* Cells, one path per colour level (a 50 x 50 map stays ~50 kB). */
    char col[8];
    for (int lev = 0; lev < LEVELS; lev++) {
        int any = 0;
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) {
                const double v = i == j ? hi : R[d->order[i] * T + d->order[j]];
                int q = (int)((v - lo) / (hi - lo) * LEVELS);
                q = q < 0 ? 0 : q >= LEVELS ? LEVELS - 1 : q;
                if (q != lev) continue;
                if (!any) {
                    colormap((lev + 0.5) / LEVELS, col);
                    fprintf(f, "<path fill=\"%s\" d=\"", col);
                    any = 1;
                }
                fprintf(f, "M%.0f %.0fh%.0fv%.0fh-%.0fz", hx + j * cell, hy + i * cell, cell, cell, cell);
            }
        if (any) fputs("\"/>\n", f);
    }
    /* The hover target: cmd_report.c's script maps a position to a cell. */
    fprintf(f, "<rect class=\"hm-hit\" data-hm=\"%s\" x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#000\" "
               "fill-opacity=\"0\"/>\n",
            id, hx, hy, side, side);
    /* Dendrogram: leaves at the rows' centres, merges at x by height. */
    if (T > 1) {
        /* x from the lowest merge (near the names) to the highest (left edge) */
        const double h0 = d->height[0], span = d->height[T - 2] > h0 ? d->height[T - 2] - h0 : 1;
        double *nx = malloc(2 * (size_t)T * sizeof *nx), *ny = malloc(2 * (size_t)T * sizeof *ny);
        if (nx && ny) {
            for (int i = 0; i < T; i++) ny[i] = hy + (d->pos[i] + 0.5) * cell, nx[i] = hx - 4;
            fputs("<path fill=\"none\" stroke=\"#444\" stroke-width=\"1\" d=\"", f);
            for (int m = 0; m < T - 1; m++) {
                const int a = d->merge[m][0], b = d->merge[m][1], v = T + m;
                nx[v] = hx - 14 - (DENDRO_W - 20) * (d->height[m] - h0) / span;
                ny[v] = 0.5 * (ny[a] + ny[b]);
                fprintf(f, "M%.1f %.1fH%.1fV%.1fH%.1f", nx[a], ny[a], nx[v], ny[b], nx[b]);
            }
            fputs("\"/>\n", f);
        }
        free(nx);
        free(ny);
    }
    /* Names: rows on the right, columns below (rotated). */
    for (int i = 0; i < T; i++) {
        char rot[96];
        const double y = hy + (i + 0.5) * cell + 0.35 * fs, x = hx + (i + 0.5) * cell + 0.35 * fs;
        text(f, hx + side + 4, y, "start", fs, NULL, names[d->order[i]]);
        snprintf(rot, sizeof rot, "transform=\"rotate(90 %.1f %.1f)\"", x, hy + side + 4);
        text(f, x, hy + side + 4, "start", fs, rot, names[d->order[i]]);
    }
    /* Colour bar. */
    const double bx = hx + side + label + 12, bh = fmin(side, 200);
    for (int k = 0; k < LEVELS; k++) {
        colormap((k + 0.5) / LEVELS, col);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"%.2f\" fill=\"%s\"/>\n", bx,
                hy + bh - (k + 1) * bh / LEVELS, bh / LEVELS + 0.3, col);
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%.2f", hi);
    text(f, bx + 16, hy + 9, "start", 10, NULL, buf);
    snprintf(buf, sizeof buf, "%.2f", lo);
    text(f, bx + 16, hy + bh, "start", 10, NULL, buf);
    svg_end(f);
}

/* ---- the tuning figure ----------------------------------------------------- */

/* The series' label: the method (", from scratch" for confirmations), after
 * the tune folder's name when several folders tuned that method. */
static void trial_label(char *buf, size_t cap, const rep_input *in, int tune, const char *method, const char *what)
{
    int folders = 0;
    for (int u = 0; u < in->n_tunes; u++)
        for (int i = 0; i < in->n_trials; i++)
            if (in->trials[i].tune == u && !strcmp(in->trials[i].method, method)) {
                folders++;
                break;
            }
    const char *base = strrchr(in->tune_dirs[tune], '/');
    base = base && base[1] ? base + 1 : in->tune_dirs[tune];
    if (folders > 1) snprintf(buf, cap, "%.16s: %s%s", base, method, what);
    else snprintf(buf, cap, "%s%s", method, what);
}

/* The method's colour in the shade of its k-th searched batch size (the
 * method's own colour first, then a light, a dark and a darker one). */
static const char *batch_color(const char *method, int k)
{
    static const char *const names[] = {"stl", "ud", "laf", "tucker", "tt"};
    static const char *const shades[][3] = {{"#c7c7c7", "#4d4d4d", "#262626"}, {"#c5b0d5", "#5e3c82", "#3b2552"},
                                            {"#98df8a", "#1a6b1a", "#0d3d0d"}, {"#aec7e8", "#114a73", "#092a42"},
                                            {"#ff9896", "#8c1a1b", "#520f10"}};
    for (int i = 0; i < 5 && k > 0; i++)
        if (!strcmp(method, names[i])) return shades[i][(k - 1) % 3];
    return method_color(method);
}

/* The distinct batch sizes of tune u's rows, in order of appearance (at most
 * cap; one -1 for a file without the column). */
static int tune_batches(const rep_input *in, int u, int *batches, int cap)
{
    int nb = 0;
    for (int i = 0; i < in->n_trials; i++) {
        const rep_trial *t = &in->trials[i];
        int k = 0;
        while (k < nb && batches[k] != t->batch) k++;
        if (t->tune == u && k == nb && nb < cap) batches[nb++] = t->batch;
    }
    return nb;
}

/* A trial's searched strength, the figure's x: its gamma (a norm's fixed
 * weight decay is not searched), or STL's weight decay (NaN for UD, and for
 * STL's step search before 2026-12-06). */
static double trial_strength(const rep_trial *t)
{
    if (isfinite(t->gamma)) return t->gamma;
    return !strcmp(t->method, "stl") ? t->weight_decay : NAN;
}

void report_tuning_figure(FILE *f, const rep_input *in, double w, double h)
{
    static const char *const methods[] = {"stl", "ud", "laf", "tucker", "tt"};
    enum { MAX_TUNE_BATCHES = 8 };
    const int n = in->n_trials, cap = in->n_tunes * 10 * MAX_TUNE_BATCHES;
    const double unit = in->trials_cls ? 100 : 1;
    double glo = INFINITY, ghi = -INFINITY;
    int stl_decays = 0; /* some STL searched its weight decay: x is gamma or weight decay */
    for (int i = 0; i < n; i++) {
        const double g = trial_strength(&in->trials[i]);
        if (isfinite(g)) glo = fmin(glo, g), ghi = fmax(ghi, g);
        stl_decays |= !strcmp(in->trials[i].method, "stl") && isfinite(in->trials[i].weight_decay);
    }
    svg_series *ser = calloc((size_t)cap + 1, sizeof *ser);
    double *pool = malloc(sizeof *pool * (size_t)(2 * n + 4 * cap + 1));
    char(*names)[64] = calloc((size_t)cap + 1, sizeof *names);
    int ns = 0;
    size_t used = 0;
    for (int u = 0; u < in->n_tunes && ser && pool && names; u++) {
        int batches[MAX_TUNE_BATCHES];
        const int nb = tune_batches(in, u, batches, MAX_TUNE_BATCHES);
        for (int bi = 0; bi < nb; bi++) {
            for (int mi = 0; mi < 5; mi++) {
                const char *m = methods[mi];
                char bs[24] = ""; /* several batch sizes searched: each its own series */
                if (nb > 1 && batches[bi] > 0) snprintf(bs, sizeof bs, ", batch %d", batches[bi]);
                else if (nb > 1) snprintf(bs, sizeof bs, ", full batch");
#define TUNE_ROW(t) ((t)->tune == u && (t)->batch == batches[bi] && !strcmp((t)->method, m))
                int searched = 0; /* STL's rows have a weight decay: drawn as the norms' */
                for (int i = 0; i < n && mi == 0; i++)
                    searched |= TUNE_ROW(&in->trials[i]) && isfinite(in->trials[i].weight_decay);
                if (mi < 2 && !searched) { /* UD, STL by steps: their best validation as a flat reference */
                    int best = -1, chosen = 0;
                    for (int i = 0; i < n; i++) {
                        const rep_trial *t = &in->trials[i];
                        chosen |= TUNE_ROW(t) && t->chosen;
                        if (TUNE_ROW(t) && isfinite(t->val) &&
                            (best < 0 || (in->trials_cls ? t->val > in->trials[best].val : t->val < in->trials[best].val)))
                            best = i;
                    }
                    if (best < 0 || !(glo <= ghi)) continue;
                    char what[48];
                    if (mi == 0) snprintf(what, sizeof what, " (best%s)", bs);
                    else snprintf(what, sizeof what, " (best, N = %d%s)", in->trials[best].share, bs);
                    trial_label(names[ns], sizeof names[ns], in, u, m, what);
                    double *x = pool + used, *y = x + 2;
                    used += 4;
                    x[0] = glo, x[1] = ghi, y[0] = y[1] = unit * in->trials[best].val;
                    ser[ns] = (svg_series){names[ns], batch_color(m, bi), SVG_DASHED, 2, x, y, chosen ? 0 : -1};
                    ns++;
                    continue;
                }
                /* the path (or halving's rungs) as a line; the confirmations from
                 * scratch as points, those stopped behind the start apart */
                for (int kind = 0; kind < 3; kind++) {
                    /* each strength's last row (its last rung or path evaluation), sorted by it */
#define SERIES_ROW(t) \
    (TUNE_ROW(t) && (t)->scratch == (kind > 0) && (t)->stopped == (kind == 2) && isfinite(trial_strength(t)))
                    int rows = 0;
                    for (int i = 0; i < n; i++) rows += SERIES_ROW(&in->trials[i]);
                    double *x = pool + used, *y = x + rows;
                    int k = 0, mark = -1;
                    for (int i = 0; i < n; i++) {
                        const rep_trial *t = &in->trials[i];
                        if (!SERIES_ROW(t)) continue;
                        const double g = trial_strength(t);
                        int j = 0;
                        while (j < k && x[j] < g) j++;
                        if (j == k || x[j] != g) {
                            memmove(x + j + 1, x + j, sizeof *x * (size_t)(k - j));
                            memmove(y + j + 1, y + j, sizeof *y * (size_t)(k - j));
                            if (mark >= j) mark++;
                            k++;
                        }
                        x[j] = g, y[j] = unit * t->val;
                        if (t->chosen) mark = j;
                        else if (mark == j) mark = -1;
                    }
#undef SERIES_ROW
                    if (!k) continue;
                    used += 2 * (size_t)rows;
                    char what[48];
                    static const char *const kinds[] = {"", ", scratch", ", scratch, stopped"};
                    static const int styles[] = {SVG_SOLID, SVG_POINTS, SVG_CROSSES};
                    snprintf(what, sizeof what, "%s%s%s", searched ? " (weight decay)" : "", bs, kinds[kind]);
                    trial_label(names[ns], sizeof names[ns], in, u, m, what);
                    ser[ns] = (svg_series){names[ns], batch_color(m, bi), styles[kind], k, x, y, mark};
                    ns++;
                }
#undef TUNE_ROW
            }
        }
    }
    svg_begin(f, w, h, "validation against gamma");
    const svg_panel p = {0, 0, w, h, "validation against gamma (ringed: the choice)",
                         stl_decays ? "gamma (STL: weight decay)" : "gamma",
                         in->trials_cls ? "validation accuracy %" : "validation RMSE", 1, 0};
    svg_lines(f, &p, ser, ns, 1);
    svg_end(f);
    free(ser);
    free(pool);
    free(names);
}
