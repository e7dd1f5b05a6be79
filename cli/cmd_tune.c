/* cmd_tune.c - `tnmtl tune`: the data choose the method and how strongly
 * the tasks share.  Per method it searches gamma (LAF, Tucker, TT), the
 * shared depth N (UD-MTL) or the weight decay (STL: an L2 penalty on the
 * weights the norms act on, over the same grid and with the same search) on
 * validation that never sees test data (k-fold cross-validation inside the
 * training part, or a held-out validation part), picks the best, fits it on
 * the whole training part and tests it.
 *
 * Search (cli/tune_search.c): gammas along the regularisation path (warm
 * starts from the neighbouring gamma's checkpoint rank them, the best are
 * confirmed from scratch), or successive halving (--search halving; UD's
 * depths always): every candidate trains for steps/eta^(R-1) steps, the
 * best 1/eta continue from their own checkpoint to the next rung, and so on
 * up to the full --steps; no method trains past --steps.  STL gets the
 * norms' search and budget: before 2026-12-06 it searched its number of
 * steps on one path, a third of their budget and no penalty, which left it
 * overfitting on Omniglot (docs/results.md).
 *
 * The folder (--out, required):
 *   tune.json            the tune's options; a tune with other options refuses it
 *   ledger.json          every finished evaluation (trial, fold, steps): the resume state
 *   trials/NAME/foldF/   the trials' run folders (checkpoints)
 *   trials.csv, .md      every evaluation the search asked for: method, gamma,
 *                        weight_decay (STL's searched one; other methods' fixed
 *                        --weight-decay), share, batch, steps, validation
 *                        metric, seconds, chosen
 *   trials.svg           validation metric against gamma, one line per method
 *   chosen.json          the chosen configuration, for `train --config`
 *   final/               the chosen configuration fitted: checkpoint, results.json,
 *                        sharing report (as `train --out` writes them)
 * A killed tune rerun with the same command reads the ledger, resumes the
 * unfinished trial from its checkpoint and reaches the same choice. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "dist_internal.h"
#include "report.h"
#include "run.h"
#include "runfolder.h"
#include "session.h"
#include "tnmtl/checkpoint.h"
#include "tune.h"
#include "util.h"

#define MAX_METHODS 5
#define MAX_BATCHES 4

static const char tune_usage[] =
    "usage: tnmtl tune --out DIR [OPTIONS]\n\n"
    "Chooses the method and its setting on validation data, fits the choice on\n"
    "the whole training part and evaluates it on test.  Searched per method:\n"
    "gamma (laf, tucker, tt; log grid, --search), the weight decay (stl: an L2\n"
    "penalty on the weights the norms act on; the same grid and search), the\n"
    "shared depth N (ud: 1..shareable layers, successive halving: each candidate\n"
    "trains steps/eta^(R-1) steps, the best 1/eta continue to the next rung, up\n"
    "to --steps).\n\n"
    "  --out DIR            tune folder (required): trials, ledger, trials.csv/.md/.svg,\n"
    "                       chosen.json (for train --config), final/ (the fitted choice);\n"
    "                       rerunning the same command resumes a killed tune\n"
    "  --methods LIST       comma list of stl,ud,laf,tucker,tt (default all five)\n"
    "  --gamma-range LO,HI  gamma range, log scale (default 1e-4,1); also STL's weight decays\n"
    "  --gamma-count N      gamma values in the range (default 9)\n"
    "  --folds K            validation: K-fold cross-validation inside the training part\n"
    "                       (default 3; stratified by class); --val-frac F or\n"
    "                       --val-from-test N hold out one validation part instead\n"
    "                       (omniglot default: --val-from-test 2, docs/results.md)\n"
    "  --search S           path (default): the gammas in ascending order, the first from\n"
    "                       scratch, each next warm-started from its neighbour for\n"
    "                       steps/n more (under two runs' cost); the path's best are then\n"
    "                       trained from scratch until one beats the weakest gamma and\n"
    "                       validates as well as the path's next did on the path (one or\n"
    "                       two runs; the best from scratch is chosen; one that falls under\n"
    "                       half the weakest gamma's validation 3 times in a row stops there)\n"
    "                       | halving: successive\n"
    "                       halving (below; it favours weak gammas, which learn faster\n"
    "                       early: docs/results.md) | grid: every gamma the full --steps\n"
    "  --batches LIST       comma list of batch sizes (examples per task per step, 0 = full\n"
    "                       batch; at most 4) to search too: each method's search runs\n"
    "                       once per batch size, and validation picks among them (instead\n"
    "                       of --batch; costs that many searches)\n"
    "  --rungs R            successive-halving rungs (default 3); UD's depths always use it\n"
    "  --eta E              keep the best 1/E at each rung (default 3)\n"
    "  --quiet              no progress lines\n\n"
    "It prints a progress line per evaluation on stderr and one JSON object on\n"
    "stdout.  Every option of 'tnmtl train' but --method, --gamma, --share, --fold\n"
    "applies to all trials; --weight-decay WD to all but STL's, which search it\n"
    "(e.g. STL's choice, to search a norm's gamma on top of it).\n";

/* With a held-out part outside the training examples the winner's trial
 * was trained on the whole training part: its checkpoint is the final
 * model when it stopped at the chosen steps. */
static tnmtl_status reuse_trial(const tune_state *ts, const candidate *c, const char *final_ckpt, tnmtl_error *err)
{
    char rel[256], path[4096], *config = NULL;
    snprintf(rel, sizeof rel, "trials/%s/fold0/%s", c->dir, TNMTL_CHECKPOINT_FILE);
    tune_path(ts, rel, path, sizeof path);
    tnmtl_status st = tnmtl_checkpoint_read_config(path, &config, err);
    if (st) return st;
    run_options o;
    st = run_options_from_json(config, &o, err);
    free(config);
    if (st || o.steps != c->steps) return st; /* trained further: fit afresh */
    unsigned char *data = NULL;
    size_t len;
    if ((st = tnmtl_read_file(path, (size_t)1 << 40, &data, &len, err))) return st;
    st = tnmtl_write_buffer_atomic(final_ckpt, data, len, err);
    free(data);
    return st;
}

/* A final/ left by an earlier run of this tune must hold the choice (it
 * does unless the tune was made by another version of tnmtl whose search
 * chose otherwise): resuming it would test one model under another's name. */
static tnmtl_status final_holds_choice(const char *final_ckpt, const run_options *fo, tnmtl_error *err)
{
    char *config = NULL;
    tnmtl_status st = tnmtl_checkpoint_read_config(final_ckpt, &config, err);
    if (st) return st;
    run_options o;
    st = run_options_from_json(config, &o, err);
    free(config);
    if (st) return st;
    if (o.method == fo->method && o.ud_share == fo->ud_share && o.batch == fo->batch && o.steps == fo->steps &&
        fabs(o.gamma - fo->gamma) <= 1e-12 * fabs(fo->gamma) &&
        fabs(o.weight_decay - fo->weight_decay) <= 1e-12 * fabs(fo->weight_decay))
        return TNMTL_OK;
    return tnmtl_fail(err, TNMTL_ERR_INVALID,
                      "%s holds %s (gamma %g, weight decay %g, share %d, batch %d, %lld steps) but the choice is %s "
                      "(gamma %g, weight decay %g, share %d, batch %d, %lld steps): it was fitted by a tune that "
                      "chose otherwise (another version of tnmtl); move the folder's final/ away to fit the choice",
                      final_ckpt, tnmtl_method_name(o.method), o.gamma, o.weight_decay, o.ud_share, o.batch,
                      (long long)o.steps, tnmtl_method_name(fo->method), fo->gamma, fo->weight_decay, fo->ud_share,
                      fo->batch, (long long)fo->steps);
}

/* ---- tables ---- */

typedef struct table_job {
    const tune_state *ts;
    const candidate *cand;
    int n;
    int chosen;                   /* index of the chosen candidate */
    int csv;
} table_job;

/* Every candidate's evaluations as the rows of trials.csv, in candidate
 * order (a candidate's by ascending steps), with each row's seconds in
 * (*secs)[k]; NULL when out of memory.  Both writers below use them. */
static rep_trial *trial_rows(const table_job *j, int *n_rows, double **secs)
{
    int n = 0, cap = 0;
    rep_trial *rows = NULL;
    double *sec = NULL;
    for (int i = 0; i < j->n; i++) {
        const candidate *c = &j->cand[i];
        const int m = c->n_evals;
        if (n + m > cap) {
            cap = 2 * (n + m);
            rep_trial *r = realloc(rows, (size_t)cap * sizeof *r);
            if (r) rows = r;
            double *q = realloc(sec, (size_t)cap * sizeof *q);
            if (q) sec = q;
            if (!r || !q) {
                free(rows);
                free(sec);
                return NULL;
            }
        }
        for (int k = 0; k < m; k++, n++) {
            rows[n] = (rep_trial){.gamma = c->gamma, .weight_decay = tune_candidate_weight_decay(j->ts, c), .share = c->share,
                                  .batch = c->batch, .steps = c->eval_steps[k], .val = c->eval_val[k], .chosen = i == j->chosen && k == m - 1, .scratch = c->twin,
                                  .stopped = c->stopped_at > 0 && k == m - 1};
            snprintf(rows[n].method, sizeof rows[n].method, "%s", tnmtl_method_name(c->method));
            sec[n] = c->eval_seconds[k];
        }
    }
    if (!rows) rows = malloc(sizeof *rows); /* no rows: an empty table, not an error */
    *n_rows = n;
    *secs = sec;
    return rows;
}

static int write_trials(FILE *f, void *user)
{
    const table_job *j = user;
    const double scale = j->ts->cls ? 100.0 : 1.0;
    const char *metric = j->ts->cls ? "val_accuracy_pct" : "val_rmse";
    int n;
    double *secs;
    rep_trial *rows = trial_rows(j, &n, &secs);
    if (!rows) return -1;
    if (j->csv) fprintf(f, "method,gamma,weight_decay,share,batch,steps,%s,seconds,chosen\n", metric);
    else
        fprintf(f, "| method | gamma | weight decay | share N | batch | steps | validation %s | seconds | chosen |\n"
                   "|---|---|---|---|---|---|---|---|---|\n", j->ts->cls ? "accuracy %" : "RMSE");
    for (int k = 0; k < n; k++) {
        const rep_trial *t = &rows[k];
        char g[32] = "", wd[32] = "", sh[16] = "", batch[16] = "full";
        if (isfinite(t->gamma)) snprintf(g, sizeof g, "%.6g", t->gamma);
        if (isfinite(t->weight_decay)) snprintf(wd, sizeof wd, "%.6g", t->weight_decay);
        if (t->share >= 0) snprintf(sh, sizeof sh, "%d", t->share);
        if (t->batch > 0) snprintf(batch, sizeof batch, "%d", t->batch);
        if (j->csv)
            fprintf(f, "%s,%s,%s,%s,%d,%lld,%.4f,%.3f,%d\n", t->method, g, wd, sh, t->batch, t->steps, scale * t->val,
                    secs[k], t->chosen);
        else
            fprintf(f, "| %s | %s | %s | %s | %s | %lld%s | %.2f | %.1f | %s |\n", t->method, g[0] ? g : "-",
                    wd[0] ? wd : "-", sh[0] ? sh : "-", batch, t->steps, t->stopped ? " (stopped)" : "",
                    scale * t->val, secs[k], t->chosen ? "**yes**" : "");
    }
    free(rows);
    free(secs);
    return ferror(f) ? -1 : 0;
}

/* SVG: the report's tuning figure (cli/svg.c) of the rows write_trials
 * writes, confirmations marked as such. */
static int write_plot(FILE *f, void *user)
{
    const table_job *j = user;
    rep_input in = {.n_tunes = 1, .tune_dirs = (char *[]){(char *)j->ts->out}, .trials_cls = j->ts->cls};
    double *secs;
    if (!(in.trials = trial_rows(j, &in.n_trials, &secs))) return -1;
    report_tuning_figure(f, &in, 760, 360);
    free(in.trials);
    free(secs);
    return ferror(f) ? -1 : 0;
}

/* ---- the command ---- */

/* Number of shareable layers of the model for the base options. */
static tnmtl_status count_shareable(const run_options *o, const tnmtl_dataset *ds, int *n, tnmtl_error *err)
{
    run_options p = *o;
    p.method = TNMTL_METHOD_STL;
    tnmtl_mtl *m;
    tnmtl_status st = run_build_model(&p, ds, NULL, &m, err);
    if (st) return st;
    *n = 0;
    for (int i = 0; i < m->n_blocks; i++) *n += m->blocks[i].shareable;
    tnmtl_mtl_free(m);
    return TNMTL_OK;
}

/* The candidates of every method, in method order, and within a method per
 * batch size (in --batches order): each (method, batch) group is searched on
 * its own.  A searched batch size is part of each run folder's name. */
static tnmtl_status make_candidates(const tune_state *ts, const tnmtl_method *methods, int n_methods,
                                    const int *batches, int n_batches, double glo, double ghi, int gcount, int path,
                                    candidate *cand, int *n, tnmtl_error *err)
{
    *n = 0;
    for (int k = 0; k < n_methods; k++)
        for (int b = 0; b < n_batches; b++) {
            const tnmtl_method m = methods[k];
            const char *name = tnmtl_method_name(m);
            char bs[24] = ""; /* the batch suffix of the folder names */
            if (ts->batches_searched) snprintf(bs, sizeof bs, "-b%d", batches[b]);
            int count = gcount;
            if (m == TNMTL_METHOD_UD) {
                tnmtl_status st = count_shareable(&ts->base, ts->ds, &count, err);
                if (st) return st;
            }
            const int twins = path && m != TNMTL_METHOD_UD;
            if (*n + (twins ? 2 : 1) * count > MAX_CANDIDATES)
                return tnmtl_fail(err, TNMTL_ERR_INVALID, "more than %d candidates: lower --gamma-count or give fewer "
                                  "--batches", MAX_CANDIDATES);
            for (int i = 0; i < count; i++) {
                candidate *c = &cand[(*n)++];
                memset(c, 0, sizeof *c);
                c->method = m;
                c->gamma = NAN;
                c->weight_decay = NAN;
                c->share = -1;
                c->steps = ts->base.steps;
                c->batch = batches[b];
                c->val = NAN;
                if (m == TNMTL_METHOD_UD) {
                    c->share = i + 1;
                    snprintf(c->dir, sizeof c->dir, "ud-n%d%s", c->share, bs);
                } else if (m == TNMTL_METHOD_STL) { /* the weight decay, on the gammas' grid */
                    c->weight_decay = gcount > 1 ? glo * pow(ghi / glo, (double)i / (gcount - 1)) : glo;
                    snprintf(c->dir, sizeof c->dir, "stl-wd%.4g%s%s", c->weight_decay, bs, path ? "-path" : "");
                } else {
                    c->gamma = gcount > 1 ? glo * pow(ghi / glo, (double)i / (gcount - 1)) : glo;
                    snprintf(c->dir, sizeof c->dir, "%s-g%.4g%s%s", name, c->gamma, bs, path ? "-path" : "");
                }
            }
            if (twins) /* the from-scratch twins */
                for (int i = 0; i < count; i++) {
                    candidate *c = &cand[*n];
                    *c = cand[*n - count];
                    c->twin = 1;
                    if (m == TNMTL_METHOD_STL) snprintf(c->dir, sizeof c->dir, "stl-wd%.4g%s", c->weight_decay, bs);
                    else snprintf(c->dir, sizeof c->dir, "%s-g%.4g%s", name, c->gamma, bs);
                    (*n)++;
                }
        }
    return TNMTL_OK;
}

/* --batches: distinct batch sizes, 0 (full batch) or more examples per task. */
static tnmtl_status parse_batches(const char *s, int *batches, int *n, tnmtl_error *err)
{
    double v[MAX_BATCHES];
    tnmtl_status st = cli_parse_double_list("--batches", s, v, MAX_BATCHES, n, err);
    for (int i = 0; i < *n && !st; i++) {
        if (!(v[i] >= 0 && v[i] <= (1 << 20) && v[i] == floor(v[i])))
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "--batches: %g is not a batch size (0 = full batch, or a "
                              "number of examples per task)", v[i]);
        batches[i] = (int)v[i];
        for (int j = 0; j < i; j++)
            if (batches[j] == batches[i])
                return tnmtl_fail(err, TNMTL_ERR_INVALID, "--batches: %d is listed twice", batches[i]);
    }
    return st;
}

static tnmtl_status parse_range(const char *s, double *lo, double *hi, tnmtl_error *err)
{
    double v[2];
    int n = 0;
    if (!s[0]) return tnmtl_fail(err, TNMTL_ERR_INVALID, "--gamma-range: empty range (give LO,HI)");
    tnmtl_status st = cli_parse_double_list("--gamma-range", s, v, 2, &n, err);
    if (st) return st;
    if (n != 2) return tnmtl_fail(err, TNMTL_ERR_INVALID, "--gamma-range: '%s' is not LO,HI", s);
    if (!(v[0] > 0)) return tnmtl_fail(err, TNMTL_ERR_INVALID, "--gamma-range: LO must be > 0 on a log scale, not %g", v[0]);
    if (!(v[1] >= v[0]))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "--gamma-range: inverted range %g,%g (LO must be <= HI)", v[0], v[1]);
    *lo = v[0];
    *hi = v[1];
    return TNMTL_OK;
}

/* The command line: tune's own options, then train's run options. */
typedef struct tune_args {
    run_options o;
    tnmtl_method methods[MAX_METHODS];
    int n_methods, quiet, folds, folds_set, rungs, eta, gcount, path;
    double glo, ghi;              /* the gamma range, log scale                     */
    int batches[MAX_BATCHES], n_batches; /* --batches; none: the one --batch          */
    const char *out_dir;
} tune_args;

/* Parses argv into *a: -1 to go on, else the exit code (--help, or a usage
 * error, reported). */
static int parse_tune_args(int argc, char **argv, tune_args *a)
{
    *a = (tune_args){.methods = {TNMTL_METHOD_STL, TNMTL_METHOD_UD, TNMTL_METHOD_LAF, TNMTL_METHOD_TUCKER,
                                 TNMTL_METHOD_TT},
                     .n_methods = 5, .folds = 3, .rungs = 3, .eta = 3, .gcount = 9, .path = 1, .glo = 1e-4, .ghi = 1.0};
    run_options_init(&a->o);
    tnmtl_error err = {0};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            printf("%s\n%s", tune_usage, run_options_help);
            return EXIT_OK;
        }
        if (!strcmp(arg, "--quiet")) {
            a->quiet = 1;
            continue;
        }
        static const char *const own[] = {"--methods", "--gamma-range", "--gamma-count", "--folds", "--rungs", "--eta", "--out",
                                          "--search", "--batches"};
        int is_own = 0;
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++) is_own |= !strcmp(arg, own[k]);
        if (is_own) {
            if (i + 1 >= argc) return cli_usage_error("tune", "%s needs a value", arg);
            const char *v = argv[++i];
            long n = 0;
            tnmtl_status st = TNMTL_OK;
            if (!strcmp(arg, "--methods")) st = cli_parse_methods(v, a->methods, MAX_METHODS, &a->n_methods, &err);
            else if (!strcmp(arg, "--gamma-range")) st = parse_range(v, &a->glo, &a->ghi, &err);
            else if (!strcmp(arg, "--gamma-count") && !(st = cli_parse_int(arg, v, 1, 32, &n, &err))) a->gcount = (int)n;
            else if (!strcmp(arg, "--folds")) {
                if (!(st = cli_parse_int(arg, v, 2, 1000, &n, &err))) a->folds = (int)n, a->folds_set = 1;
                else tnmtl_fail(&err, TNMTL_ERR_INVALID, "--folds: '%s' is not a number of folds >= 2", v);
            } else if (!strcmp(arg, "--rungs") && !(st = cli_parse_int(arg, v, 1, MAX_RUNGS, &n, &err))) a->rungs = (int)n;
            else if (!strcmp(arg, "--eta") && !(st = cli_parse_int(arg, v, 2, 16, &n, &err))) a->eta = (int)n;
            else if (!strcmp(arg, "--out")) a->out_dir = v;
            else if (!strcmp(arg, "--batches")) st = parse_batches(v, a->batches, &a->n_batches, &err);
            else if (!strcmp(arg, "--search")) {
                if (!strcmp(v, "halving")) a->path = 0;
                else if (!strcmp(v, "path")) a->path = 1;
                else if (!strcmp(v, "grid")) a->path = 0, a->rungs = 1;
                else st = tnmtl_fail(&err, TNMTL_ERR_INVALID, "--search: '%s' is not halving, path or grid", v);
            }
            if (st) return cli_usage_error("tune", "%s", err.msg);
            continue;
        }
        if (!strcmp(arg, "--method") || !strcmp(arg, "--gamma") || !strcmp(arg, "--share") || !strcmp(arg, "--fold"))
            return cli_usage_error("tune", "%s is what tune chooses: use --methods and --gamma-range", arg);
        int r = run_parse_option(&a->o, argc, argv, &i, &err);
        if (r < 0) return cli_usage_error("tune", "%s", err.msg);
        if (r == 0) return cli_usage_error("tune", "unknown option '%s'", arg);
    }
    if (!a->out_dir) return cli_usage_error("tune", "--out DIR is required (trials, checkpoints and the result go there)");
    if (a->glo == a->ghi && a->gcount > 1)
        return cli_usage_error("tune", "--gamma-range: empty range %g,%g for %d values", a->glo, a->ghi, a->gcount);
    if (a->n_batches && (a->o.set_mask & RUN_SET_BATCH))
        return cli_usage_error("tune", "--batch and --batches exclude each other (--batches searches the batch size)");
    if (a->n_batches && a->o.epochs > 0)
        return cli_usage_error("tune", "--epochs with --batches: an epoch is a different number of steps per batch "
                               "size; give --steps");
    /* Validation: a held-out part when asked for (omniglot: 2 drawings per
     * character from the non-training ones), else K folds. */
    if (a->o.folds) return cli_usage_error("tune", "use tune's --folds K (without --fold)");
    const int omniglot = !strncmp(a->o.data, "omniglot:", 9);
    if (omniglot && !a->o.val_from_test && a->o.val_frac == 0 && !a->folds_set) a->o.val_from_test = 2;
    if (a->folds_set && (a->o.val_frac > 0 || a->o.val_from_test > 0))
        return cli_usage_error("tune", "--folds and a held-out part (--val-frac, --val-from-test) exclude each other");
    return -1;
}

/* The tune's identity (tune.json): a folder made with other options is refused. */
static cJSON *tune_identity(const tune_args *a, const tune_state *ts)
{
    cJSON *ident = cJSON_CreateObject();
    char *base_json = run_options_to_json(&ts->base);
    cJSON_AddItemToObject(ident, "options", base_json ? cJSON_Parse(base_json) : cJSON_CreateNull());
    free(base_json);
    cJSON *mlist = cJSON_AddArrayToObject(ident, "methods");
    for (int k = 0; k < a->n_methods; k++)
        cJSON_AddItemToArray(mlist, cJSON_CreateString(tnmtl_method_name(a->methods[k])));
    cJSON_AddNumberToObject(ident, "gamma_lo", a->glo);
    cJSON_AddNumberToObject(ident, "gamma_hi", a->ghi);
    cJSON_AddNumberToObject(ident, "gamma_count", a->gcount);
    cJSON_AddNumberToObject(ident, "folds", ts->folds);
    cJSON_AddNumberToObject(ident, "rungs", a->rungs);
    cJSON_AddNumberToObject(ident, "eta", a->eta);
    cJSON_AddStringToObject(ident, "search", a->path ? "path" : "halving");
    /* STL searches its weight decay (before 2026-12-06: its steps, in folders
     * this key's absence now refuses) */
    for (int k = 0; k < a->n_methods; k++)
        if (a->methods[k] == TNMTL_METHOD_STL) cJSON_AddStringToObject(ident, "stl_searches", "weight_decay");
    if (ts->batches_searched) { /* (absent otherwise: the folders of tunes before --batches still resume) */
        cJSON *bl = cJSON_AddArrayToObject(ident, "batches");
        for (int b = 0; b < a->n_batches; b++) cJSON_AddItemToArray(bl, cJSON_CreateNumber(a->batches[b]));
    }
    return ident;
}

/* Opens the tune folder: refuses another tune's (tune.json), reads the
 * ledger (the writer; under mpirun it is sent to every process), claims the
 * folder (one writer at a time, as compare's) and writes tune.json. */
static tnmtl_status open_tune_folder(tune_state *ts, runfolder *top, const cJSON *ident, tnmtl_error *err)
{
    int bad = 0;
    const int writer = cli_is_writer(); /* under mpirun the writer reads the folder, the others its ledger */
    tnmtl_status st = TNMTL_OK;
    cJSON *stored = !writer ? NULL : tune_read_json(ts, "tune.json", &bad, err);
    if (bad) st = err->status ? err->status : TNMTL_ERR_FORMAT;
    if (!st && stored && !cJSON_Compare(stored, ident, 1)) {
        const int old_stl = cJSON_HasObjectItem(ident, "stl_searches") && !cJSON_HasObjectItem(stored, "stl_searches");
        cJSON *without = cJSON_Duplicate(ident, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(without, "stl_searches");
        if (old_stl && cJSON_Compare(stored, without, 1))
            st = tnmtl_fail(err, TNMTL_ERR_INVALID, "%s holds a tune made by an earlier tnmtl, whose STL searched its "
                            "number of steps; this one searches STL's weight decay: use another --out", ts->out);
        else
            st = tnmtl_fail(err, TNMTL_ERR_INVALID, "%s holds a tune made with other options; use another --out", ts->out);
        cJSON_Delete(without);
    }
    cJSON_Delete(stored);
    if (!st && writer) {
        ts->ledger = tune_read_json(ts, "ledger.json", &bad, err);
        if (bad) st = err->status ? err->status : TNMTL_ERR_FORMAT;
    }
    if (!st && tnmtl_dist_size(cli_dist) > 1 && tune_writers_flag(1)) { /* the writer got here: its ledger to all */
        char *text = writer && ts->ledger ? cJSON_PrintUnformatted(ts->ledger) : NULL;
        st = tnmtl_dist_bcast_text(cli_dist, 0, &text, err);
        if (!st && !writer && text) ts->ledger = cJSON_Parse(text);
        free(text);
    }
    if (!st && !ts->ledger) ts->ledger = cJSON_CreateObject();
    if (st) return st;
    char *ident_text = cJSON_PrintUnformatted(ident);
    st = !ident_text ? tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory")
         : writer    ? runfolder_claim(top, ts->out, "tune", RUNFOLDER_RESUME, ident_text, err)
                     : TNMTL_OK;
    free(ident_text);
    if (!st) st = tnmtl_dist_barrier(cli_dist, err);
    if (!st) st = tune_write_json(ts, "tune.json", ident, err);
    return st;
}

/* The search: per method and batch size, the best candidate on validation
 * (best_of[k]: method k's best over its batch sizes); *chosen the best of all. */
static tnmtl_status search_methods(tune_state *ts, const tune_args *a, candidate *cand, int n, int *best_of, int *chosen,
                                   tnmtl_error *err)
{
    tnmtl_status st = TNMTL_OK;
    *chosen = -1;
    for (int k = 0, first = 0; k < a->n_methods && !st; k++) {
        best_of[k] = -1;
        for (int g = 0; g < a->n_batches && !st; g++) {
            int count = 0;
            while (first + count < n && cand[first + count].method == a->methods[k] &&
                   cand[first + count].batch == a->batches[g])
                count++;
            int b = -1;
            if (a->path && a->methods[k] != TNMTL_METHOD_UD)
                st = tune_gamma_path(ts, cand + first, count / 2, 2, &b, err);
            else st = tune_halving(ts, cand + first, count, a->rungs, a->eta, &b, err);
            if (!st && b >= 0 && (best_of[k] < 0 || tune_better(ts, cand[first + b].val, cand[best_of[k]].val)))
                best_of[k] = first + b;
            first += count;
        }
        if (!st && best_of[k] >= 0 && (*chosen < 0 || tune_better(ts, cand[best_of[k]].val, cand[*chosen].val)))
            *chosen = best_of[k];
    }
    if (!st && *chosen < 0) st = tnmtl_fail(err, TNMTL_ERR_NUMERIC, "no candidate gave a finite validation metric");
    return st;
}

/* trials.md, trials.csv and trials.svg, as one set of files of the folder. */
static tnmtl_status write_tables(const tune_state *ts, runfolder *top, const candidate *cand, int n, int chosen,
                                 tnmtl_error *err)
{
    table_job job = {ts, cand, n, chosen, 0};
    char *tables[] = {"trials.md", "trials.csv", "trials.svg"};
    tnmtl_status st;
    if ((st = runfolder_files_begin(top, tables, 3, err)) ||
        (st = tune_write_text(ts, "trials.md", write_trials, &job, err)) ||
        (job.csv = 1, st = tune_write_text(ts, "trials.csv", write_trials, &job, err)) ||
        (st = tune_write_text(ts, "trials.svg", write_plot, &job, err)))
        return st;
    return runfolder_files_end(top, tables, 3, err);
}

/* The choice c fitted on the whole training part (a held-out part from the
 * training examples goes back to training; one from the non-training
 * examples stays validation) in final/, and tested: *result its
 * results.json.  s is left to the caller to free (s->model set). */
static tnmtl_status fit_final(tune_state *ts, const candidate *c, runfolder *final_rf, session *s, cJSON **result,
                              tnmtl_error *err)
{
    run_options fo = tune_candidate_options(ts, c, -1, c->steps);
    fo.val_frac = 0;
    char final_dir[4096], ckpt[4200];
    tune_path(ts, "final", final_dir, sizeof final_dir);
    snprintf(ckpt, sizeof ckpt, "%s/%s", final_dir, TNMTL_CHECKPOINT_FILE);
    struct stat sb;
    const int writer = cli_is_writer();
    const int had_final = tune_writers_flag(stat(ckpt, &sb) == 0);
    tnmtl_status st = TNMTL_OK;
    if (writer)
        st = runfolder_claim(final_rf, final_dir, "run", had_final ? RUNFOLDER_RESUME : RUNFOLDER_NEW, NULL, err);
    if (!st && had_final) st = final_holds_choice(ckpt, &fo, err); /* every process reads the same file */
    if (!st && writer && !had_final && !ts->folds && ts->base.val_frac == 0)
        st = reuse_trial(ts, c, ckpt, err); /* the winner trained on the whole training part already */
    const int resumed = tune_writers_flag(!st && stat(ckpt, &sb) == 0); /* (a failed writer stops everyone) */
    if (resumed) st = session_resume(s, final_dir, ts->ds, err);
    else if (!st) st = session_start(s, &fo, ts->ds, err);
    const int reused = resumed && !had_final;
    if (!st && writer && reused) runfolder_adopt(final_rf, s->opts.run_id); /* the folder takes the trial's run */
    if (!st && (st = tune_claim_run(final_rf, final_dir, resumed && had_final, s, err))) session_free(s);
    if (!st && writer && reused) {
        char trial_dir[4096], rel[256];
        snprintf(rel, sizeof rel, "trials/%s/fold0", c->dir);
        tune_path(ts, rel, trial_dir, sizeof trial_dir);
        st = session_take_history(s, trial_dir, final_dir, err);
    }
    if (!st) {
        if (!ts->quiet) fprintf(stderr, "fitting the choice on the whole training part: %s\n", final_dir);
        st = session_train(s, final_dir, 1, ts->stop, err);
    }
    if (!st) st = session_evaluate(s, final_dir, result, err);
    return st;
}

/* chosen.json: the fitted run's configuration, for `train --config`. */
static tnmtl_status write_chosen(const tune_state *ts, runfolder *top, const session *s, tnmtl_error *err)
{
    char *cj = run_options_to_json(&s->opts);
    cJSON *chosen_json = cj ? cJSON_Parse(cj) : NULL;
    free(cj);
    cJSON_DeleteItemFromObjectCaseSensitive(chosen_json, "run_id"); /* a configuration, not this run */
    char *chosen_name[] = {"chosen.json"};
    tnmtl_status st = chosen_json ? runfolder_files_begin(top, chosen_name, 1, err) : TNMTL_ERR_NOMEM;
    if (!st) st = tune_write_json(ts, "chosen.json", chosen_json, err);
    if (!st) st = runfolder_files_end(top, chosen_name, 1, err);
    cJSON_Delete(chosen_json);
    return st;
}

/* Candidate c as the JSON on stdout names it: method, setting, validation. */
static cJSON *candidate_json(const tune_state *ts, const candidate *c)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "method", tnmtl_method_name(c->method));
    if (isfinite(c->gamma)) cJSON_AddNumberToObject(e, "gamma", c->gamma);
    const double wd = tune_candidate_weight_decay(ts, c);
    if (isfinite(wd)) cJSON_AddNumberToObject(e, "weight_decay", wd);
    if (c->share >= 0) cJSON_AddNumberToObject(e, "share", c->share);
    cJSON_AddNumberToObject(e, "steps", (double)c->steps);
    cJSON_AddNumberToObject(e, "batch", c->batch);
    cJSON_AddNumberToObject(e, ts->cls ? "val_accuracy" : "val_rmse", c->val);
    return e;
}

/* The one JSON object on stdout: the choice, each method's best (a gamma at
 * an end of the searched range flagged, and noted on stderr), the search's
 * cost and the final model's test result. */
static void print_summary(const tune_state *ts, const tune_args *a, const candidate *cand, const int *best_of,
                          int chosen, const session *s, const cJSON *result)
{
    cJSON *outj = cJSON_CreateObject();
    cJSON_AddItemToObject(outj, "chosen", candidate_json(ts, &cand[chosen]));
    cJSON *per = cJSON_AddArrayToObject(outj, "best_per_method");
    for (int k = 0; k < a->n_methods; k++) {
        if (best_of[k] < 0) continue;
        const candidate *b = &cand[best_of[k]];
        cJSON *e = candidate_json(ts, b);
        /* The best strength (gamma, STL's weight decay) at an end of the
         * searched range: the best may lie beyond it. */
        const double g = isfinite(b->gamma) ? b->gamma : b->weight_decay;
        const int edge = isfinite(g) && a->gcount > 1 &&
                         (fabs(g - a->glo) <= 1e-9 * a->glo || fabs(g - a->ghi) <= 1e-9 * a->ghi);
        if (isfinite(g)) cJSON_AddBoolToObject(e, "at_range_edge", edge);
        if (edge && !ts->quiet)
            fprintf(stderr, "note: %s's best %s %g is at the %s end of the searched range [%g, %g]; a wider "
                    "--gamma-range may find a better one\n", tnmtl_method_name(b->method),
                    isfinite(b->gamma) ? "gamma" : "weight decay", g,
                    fabs(g - a->ghi) <= 1e-9 * a->ghi ? "upper" : "lower", a->glo, a->ghi);
        cJSON_AddItemToArray(per, e);
    }
    cJSON_AddStringToObject(outj, "validation", ts->folds ? "k-fold" : "held-out");
    cJSON_AddNumberToObject(outj, "folds", ts->folds);
    cJSON_AddNumberToObject(outj, "evaluations", ts->n_evals);
    cJSON_AddNumberToObject(outj, "search_seconds", ts->search_seconds);
    cJSON_AddNumberToObject(outj, "final_train_seconds", s->train_seconds);
    const cJSON *test = cJSON_GetObjectItemCaseSensitive(result, "test");
    cJSON_AddItemToObject(outj, "test", test ? cJSON_Duplicate(test, 1) : cJSON_CreateNull());
    cJSON_AddStringToObject(outj, "out", ts->out);
    char *text = cJSON_Print(outj);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(outj);
}

/* A failed step's exit code: 130 when a signal stopped it (resumable). */
static int fail_code(tnmtl_error *err)
{
    if (!cli_stop_requested) return cli_fail("tune", err);
    fprintf(stderr, "tnmtl tune: interrupted; run the same command again to resume\n");
    return 130;
}

int cmd_tune(int argc, char **argv)
{
    tune_args a;
    const int parsed = parse_tune_args(argc, argv, &a);
    if (parsed >= 0) return parsed;
    tnmtl_error err = {0};
    tune_state ts = {.out = a.out_dir, .quiet = a.quiet, .stop = &cli_stop_requested};
    ts.folds = a.o.val_frac > 0 || a.o.val_from_test > 0 ? 0 : a.folds;
    runfolder top = {.lock_fd = -1}, final_rf = {.lock_fd = -1};

    /* Everything that can be wrong with the input is checked before the
     * folder is touched: the data, the options, the first fold's split. */
    tnmtl_dataset ds;
    tnmtl_split split;
    tnmtl_status st = run_finalise(&a.o, NULL, &err);
    if (!st) st = run_load_data(&a.o, &ds, &split, &err);
    if (st) return cli_fail("tune", &err);
    tnmtl_split_free(&split);
    int code = EXIT_OK;
    candidate *cand = calloc(MAX_CANDIDATES, sizeof *cand);
    ts.ds = &ds;
    ts.cls = ds.kind == TNMTL_TARGET_CLASS;
    if (!cand) st = tnmtl_fail(&err, TNMTL_ERR_NOMEM, "out of memory");
    if (!st) st = run_finalise(&a.o, &ds, &err);
    ts.base = a.o;
    ts.batches_searched = a.n_batches > 0;
    if (!a.n_batches) a.batches[a.n_batches++] = a.o.batch;
    if (!st && ts.folds) {
        run_options f0 = a.o;
        f0.folds = ts.folds;
        st = run_make_split(&f0, &ds, &split, &err);
        if (st) tnmtl_error_prefix(&err, "--folds %d", ts.folds);
        tnmtl_split_free(&split);
    }
    int n = 0;
    if (!st)
        st = make_candidates(&ts, a.methods, a.n_methods, a.batches, a.n_batches, a.glo, a.ghi, a.gcount, a.path,
                             cand, &n, &err);
    cJSON *ident = tune_identity(&a, &ts);
    if (!st) st = open_tune_folder(&ts, &top, ident, &err);
    if (st) {
        code = cli_fail("tune", &err);
        goto done;
    }
    cli_catch_stop_signals();
    if (!a.quiet)
        fprintf(stderr, "tune on %s: %d candidates, %s validation, %d rung(s), eta %d\n", ds.source, n,
                ts.folds ? "k-fold" : "held-out", a.rungs, a.eta);

    int best_of[MAX_METHODS], chosen = -1;
    if ((st = search_methods(&ts, &a, cand, n, best_of, &chosen, &err))) {
        code = fail_code(&err);
        goto done;
    }
    if ((st = write_tables(&ts, &top, cand, n, chosen, &err))) {
        code = cli_fail("tune", &err);
        goto done;
    }
    session s;
    memset(&s, 0, sizeof s);
    cJSON *result = NULL;
    st = fit_final(&ts, &cand[chosen], &final_rf, &s, &result, &err);
    if (!st) st = write_chosen(&ts, &top, &s, &err);
    if (!st) print_summary(&ts, &a, cand, best_of, chosen, &s, result);
    cJSON_Delete(result);
    if (st) code = fail_code(&err);
    if (s.model) session_free(&s);
done:
    runfolder_release(&final_rf);
    runfolder_release(&top);
    cJSON_Delete(ident);
    cJSON_Delete(ts.ledger);
    free(cand);
    tnmtl_dataset_free(&ds);
    return code;
}
