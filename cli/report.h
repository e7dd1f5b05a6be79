/* report.h - `tnmtl report`: what a run folder holds, as the report reads it
 * (report_load.c), the SVG figures (svg.c) and the page (cmd_report.c).
 *
 * The report only reads files that runs write (results.json, sharing.json,
 * relatedness_layer<k>.csv, history.csv; a compare folder's run folders; a
 * tune folder's trials.csv), never the model, so old runs still report. */
#ifndef TNMTL_CLI_REPORT_H
#define TNMTL_CLI_REPORT_H

#include <stdio.h>

#include "history.h"
#include "tnmtl/error.h"

typedef struct rep_spectrum {    /* one unfolding of a layer's stacked tensor */
    char name[24];               /* "mode 2", "tt 3"                           */
    char used_by[48];            /* "tucker, tt"                               */
    long long rows, cols;
    int n;
    double *sv;                  /* [n] normalised to sum 1                    */
} rep_spectrum;

typedef struct rep_layer {
    int layer;                   /* index in the task network                  */
    char name[48];               /* "conv 5x5x1x8"                             */
    int shared;                  /* hard-shared (UD)                           */
    double rho, eff_rank;
    int n_unf;
    rep_spectrum *unf;           /* [n_unf]: sharing.json's unfoldings, or the task mode alone */
    double *rel;                 /* [T][T] relatedness                         */
} rep_layer;

typedef struct rep_run {
    char dir[1024];
    char label[64];              /* "tucker seed 0"                            */
    char method[16], data[1024], arch[1024], metric[16]; /* metric: accuracy or rmse */
    int T;
    long long steps, seed;
    double gamma, train_seconds;
    double test_mean, val_mean;  /* NaN when the part is empty                 */
    double *test;                /* [T] per task, NaN if missing               */
    char **task_names;           /* [T]                                        */
    int n_layers;
    rep_layer *layers;
    run_history history;         /* empty for runs made before history.csv     */
} rep_run;

typedef struct rep_trial {       /* one row of a tune folder's trials.csv      */
    char method[16];
    double gamma;                /* NaN: no gamma (STL, UD)                    */
    double weight_decay;         /* STL's searched weight decay, other methods'
                                  * fixed --weight-decay; NaN: none (and STL in
                                  * tunes before it was searched)              */
    int share;                   /* UD's shared depth N; -1 otherwise          */
    int batch;                   /* examples per task per step, 0 full batch;
                                  * -1: the file has no batch column           */
    long long steps;
    double val;                  /* validation accuracy (0..1) or RMSE         */
    int chosen;
    int scratch;                 /* the path search's from-scratch confirmation
                                  * of a gamma its path reached first          */
    int stopped;                 /* such a confirmation stopped short, behind the
                                  * path's start (fewer steps than the start)  */
    int tune;                    /* index into rep_input.tune_dirs             */
} rep_trial;

typedef struct rep_input {
    int n_runs;
    rep_run *runs;
    int n_trials;
    rep_trial *trials;           /* every tune folder's rows, in file order    */
    int n_tunes;
    char **tune_dirs;            /* [n_tunes]                                  */
    int trials_cls;              /* the trials' metric: 1 accuracy, 0 RMSE     */
} rep_input;

/* Adds the runs of dir (a run folder, a compare folder of run folders, or a
 * tune folder with trials.csv and optionally run folders) to in.  Every
 * problem (not a run folder, a missing or malformed file) is a FORMAT/IO
 * error naming the file. */
tnmtl_status report_load(rep_input *in, const char *dir, tnmtl_error *err);
/* All runs on the same data with the same tasks; else INVALID naming two. */
tnmtl_status report_check_same_data(const rep_input *in, tnmtl_error *err);
void report_input_free(rep_input *in);
/* Runs in the order STL, UD, LAF, Tucker, TT, then by seed. */
void report_sort_runs(rep_input *in);

/* ---- SVG (svg.c) ---------------------------------------------------------- */

/* Writes s with &, <, >, " escaped. */
void xml_escape(FILE *f, const char *s);
/* Colour of a method's runs ("stl" grey, ...). */
const char *method_color(const char *method);
/* The tuning figure (w x h, svg_begin .. svg_end) of in's trials, shared by
 * the report and tune's trials.svg: per tune folder and regularised method
 * the validation metric against gamma (each gamma's last evaluation on the
 * path or at its last rung) as a line, the from-scratch confirmations as
 * open circles (crosses: stopped behind the path's start, at their last
 * validation), the best STL and UD validation as flat dashed references; the
 * choice ringed (at the left end of its reference when STL or UD won). */
void report_tuning_figure(FILE *f, const rep_input *in, double w, double h);

/* How a series is drawn: a line (solid or dashed) through its points, or
 * its points alone (open circles, or crosses) where they are separate
 * measurements that no line should join. */
enum { SVG_SOLID, SVG_DASHED, SVG_POINTS, SVG_CROSSES };

typedef struct svg_series {
    const char *name, *color;
    int style;                   /* SVG_SOLID .. SVG_CROSSES                   */
    int n;
    const double *x, *y;         /* NaN y: no point (the line breaks)          */
    int mark;                    /* index of a point to ring, or -1            */
} svg_series;

typedef struct svg_panel {
    double x, y, w, h;           /* place in the figure                        */
    const char *title, *xlabel, *ylabel;
    int logx, logy;
} svg_panel;

void svg_begin(FILE *f, double w, double h, const char *title);
void svg_end(FILE *f);
/* A line chart in panel p; with legend when legend != 0. */
void svg_lines(FILE *f, const svg_panel *p, const svg_series *s, int n, int legend);
/* Grouped bars: v[g * n_bars + b], groups along x. */
void svg_bars(FILE *f, const svg_panel *p, int n_groups, const char *const *groups, int n_bars,
              const char *const *bars, const char *const *colors, const double *v);
/* One row per item, a dot per series at x = v[s * n_rows + r]; a line at 0. */
void svg_dot_rows(FILE *f, const svg_panel *p, int n_rows, const char *const *rows, int n_series,
                  const char *const *series, const char *const *colors, const double *v);
/* Height of svg_dot_rows' figure for n rows. */
double svg_dot_rows_height(int n_rows);

/* Heat map of R[T][T] in the order `order` with the dendrogram on the left
 * and task names; `id` names its hover data (see cmd_report.c).  Returns the
 * figure's size in *w, *h when f is NULL. */
struct tnmtl_dendrogram;
void svg_heatmap(FILE *f, const char *title, int T, const double *R, char *const *names,
                 const struct tnmtl_dendrogram *d, const char *id, double *w, double *h);

#endif
