/* cmd_tune.c - `tnmtl tune`: the data choose the method and how strongly
 * the tasks share.  Per method it searches gamma (LAF, Tucker, TT), the
 * shared depth N (UD-MTL) or the number of steps (STL, early stopping) on
 * validation that never sees test data (k-fold cross-validation inside the
 * training part, or a held-out validation part), picks the best, fits it on
 * the whole training part and tests it.
 *
 * Search: gammas along the regularisation path (gamma_path: warm starts from
 * the neighbouring gamma's checkpoint rank them, the best are confirmed from
 * scratch), or successive halving (--search halving; UD's depths always):
 * every candidate trains for steps/eta^(R-1) steps, the best 1/eta continue
 * from their own checkpoint to the next rung, and so on up to the full
 * --steps.  STL's candidates are the points of one
 * training path (each continues the previous one, up to --steps), so STL
 * spends at most the budget of one run; no method trains past --steps.
 *
 * The folder (--out, required):
 *   tune.json            the tune's options; a tune with other options refuses it
 *   ledger.json          every finished evaluation (trial, fold, steps): the resume state
 *   trials/NAME/foldF/   the trials' run folders (checkpoints)
 *   trials.csv, .md      every evaluation the search asked for: method, gamma,
 *                        share, batch, steps, validation metric, seconds, chosen
 *   trials.svg           validation metric against gamma, one line per method
 *   chosen.json          the chosen configuration, for `train --config`
 *   final/               the chosen configuration fitted: checkpoint, results.json,
 *                        sharing report (as `train --out` writes them)
 * A killed tune rerun with the same command reads the ledger, resumes the
 * unfinished trial from its checkpoint and reaches the same choice. */
#include <cJSON.h>
#include <math.h>
#include <signal.h>
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
#include "util.h"

#define MAX_METHODS 5
#define MAX_BATCHES 4
#define MAX_CANDIDATES 400
#define MAX_RUNGS 8

static const char tune_usage[] =
    "usage: tnmtl tune --out DIR [OPTIONS]\n\n"
    "Chooses the method and its setting on validation data, fits the choice on\n"
    "the whole training part and evaluates it on test.  Searched per method:\n"
    "gamma (laf, tucker, tt; log grid, --search), the shared depth N (ud:\n"
    "1..shareable layers, successive halving: each candidate trains\n"
    "steps/eta^(R-1) steps, the best 1/eta continue to the next rung, up to\n"
    "--steps), the number of steps (stl: early stopping on one path up to\n"
    "--steps).\n\n"
    "  --out DIR            tune folder (required): trials, ledger, trials.csv/.md/.svg,\n"
    "                       chosen.json (for train --config), final/ (the fitted choice);\n"
    "                       rerunning the same command resumes a killed tune\n"
    "  --methods LIST       comma list of stl,ud,laf,tucker,tt (default all five)\n"
    "  --gamma-range LO,HI  gamma range, log scale (default 1e-4,1)\n"
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
    "                       half the weakest gamma's validation twice in a row stops there)\n"
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
    "applies to all trials.\n";

/* One candidate configuration of one method. */
typedef struct candidate {
    tnmtl_method method;
    double gamma;                 /* laf/tucker/tt: the gamma; NAN otherwise          */
    int share;                    /* ud: N; -1 otherwise                               */
    int64_t steps;                /* stl: this candidate's step count; else --steps    */
    int batch;                    /* examples per task per step (0: full batch)        */
    char dir[64];                 /* run folder under trials/ (stl: the shared path)    */
    double val;                   /* validation metric at its last evaluation          */
    int64_t val_steps;            /* steps of that evaluation                          */
    int64_t stopped_at;           /* a confirmation stopped behind the path's start: the
                                     step it stopped at (0: none); never chosen         */
    int alive;
    int twin;                     /* path search: the from-scratch twin of the candidate n_gammas before */
    /* This search's evaluations of it (ascending steps): its rows of
     * trials.csv.  The ledger may hold more, made by a build whose search
     * asked for other evaluations. */
    int n_evals;
    int64_t eval_steps[MAX_RUNGS];
    double eval_val[MAX_RUNGS], eval_seconds[MAX_RUNGS];
} candidate;

typedef struct tune_state {
    const char *out;              /* the tune folder                                    */
    run_options base;             /* the user's options, finalised                      */
    const tnmtl_dataset *ds;
    int folds;                    /* 0: one held-out validation part                    */
    int cls;                      /* classification: higher is better                   */
    int batches_searched;         /* --batches: candidates differ in batch size         */
    int quiet;
    cJSON *ledger;                /* {"DIR/foldF@STEPS": {"val":, "seconds":}}           */
    int n_evals;                  /* evaluations made (or read) so far                  */
    double search_seconds;        /* their seconds, across the invocations of a resumed tune */
} tune_state;

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int better(const tune_state *ts, double a, double b)
{
    if (!isfinite(a)) return 0;
    if (!isfinite(b)) return 1;
    return ts->cls ? a > b : a < b;
}

/* ---- the tune folder: every file tune writes goes through here ---- */

static void tune_path(const tune_state *ts, const char *rel, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", ts->out, rel);
}

/* Under mpirun only the writer (process 0) writes; the others follow its
 * decisions (shared with tnmtl_dist_bcast_*). */
static tnmtl_status tune_write_json(const tune_state *ts, const char *rel, const cJSON *j, tnmtl_error *err)
{
    if (!cli_is_writer()) return TNMTL_OK;
    char path[4096], *text = cJSON_Print(j);
    if (!text) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory writing %s", rel);
    tune_path(ts, rel, path, sizeof path);
    tnmtl_status st = tnmtl_write_buffer_atomic(path, text, strlen(text), err);
    free(text);
    return st;
}

static tnmtl_status tune_write_text(const tune_state *ts, const char *rel, tnmtl_write_fn fn, void *user,
                                    tnmtl_error *err)
{
    if (!cli_is_writer()) return TNMTL_OK;
    char path[4096];
    tune_path(ts, rel, path, sizeof path);
    return tnmtl_write_file_atomic(path, fn, user, err);
}

/* The writer's 1/0 (e.g. "the folder holds a checkpoint") on every process. */
static int writers_flag(int flag)
{
    tnmtl_dist_bcast_int(cli_dist, 0, &flag);
    return flag;
}

/* Reads rel as JSON: NULL when absent; err filled (and *bad set) when unreadable. */
static cJSON *tune_read_json(const tune_state *ts, const char *rel, int *bad, tnmtl_error *err)
{
    char path[4096];
    tune_path(ts, rel, path, sizeof path);
    unsigned char *text = NULL;
    size_t len;
    *bad = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) return NULL;
    if (tnmtl_read_file(path, 1 << 26, &text, &len, err)) {
        *bad = 1;
        return NULL;
    }
    cJSON *j = cJSON_Parse((const char *)text);
    free(text);
    if (!j) {
        *bad = 1;
        tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s is not valid JSON", path);
    }
    return j;
}

/* ---- one evaluation: a trial's fold trained to `steps`, scored on validation ---- */

static const char *part_metric_name(int cls) { return cls ? "accuracy" : "rmse"; }

/* The run options of candidate c on fold f (f < 0: the whole training part). */
static run_options candidate_options(const tune_state *ts, const candidate *c, int fold, int64_t steps)
{
    run_options o = ts->base;
    o.method = c->method;
    if (isfinite(c->gamma)) o.gamma = c->gamma;
    if (c->share >= 0) o.ud_share = c->share;
    if (c->method == TNMTL_METHOD_UD) o.set_mask |= RUN_SET_SHARE;
    o.steps = steps;
    o.set_mask |= RUN_SET_STEPS; /* not the data source's default */
    o.batch = c->batch;
    o.folds = fold >= 0 ? ts->folds : 0;
    o.fold = fold >= 0 && ts->folds ? fold : 0;
    return o;
}

/* A trial's or the final fit's run folder is claimed as `train --out` claims
 * its folder (locked, one run, its identity in every file): resumed, the run
 * there is verified and continued under its id; new, s takes the folder's. */
static tnmtl_status claim_run(runfolder *rf, const char *dir, int resumed, session *s, tnmtl_error *err)
{
    if (!cli_is_writer()) return TNMTL_OK; /* the writer's folder */
    if (resumed) {
        tnmtl_status st = session_verify_folder(s, dir, err);
        if (st) return st;
        runfolder_adopt(rf, s->opts.run_id);
    } else {
        snprintf(s->opts.run_id, sizeof s->opts.run_id, "%s", rf->run_id);
    }
    s->folder = rf;
    return TNMTL_OK;
}

/* Seconds the ledger records for the evaluations of trial folder rel
 * ("trials/DIR/foldF") below `steps` (its earlier rungs). */
static double ledger_seconds(const tune_state *ts, const char *rel, int64_t steps)
{
    const size_t len = strlen(rel);
    double sum = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, ts->ledger)
    {
        if (strncmp(rec->string, rel, len) || rec->string[len] != '@' || atoll(rec->string + len + 1) >= steps)
            continue;
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(rec, "seconds");
        if (cJSON_IsNumber(sec)) sum += sec->valuedouble;
    }
    return sum;
}

/* A confirmation from scratch that falls clearly behind the path's start
 * stops there: from a tenth of its steps on, two points of its validation
 * curve in a row under half the start's at the same steps (RMSE: over
 * twice).  The start is the weakest gamma, trained from scratch on the same
 * fold with the same steps, batches and seed, so the two curves are measured
 * alike.  A strong gamma that collapses the model from scratch falls to a
 * half or less within a few tenths of the run; one that holds can lag in its
 * first tenth (Omniglot TT 0.316: 0.76 of the start at step 20) and, while
 * both are near chance, dip for a point (Omniglot-5 LAF 0.1: 0.62), hence
 * the tenth and the two points (docs/results.md, "A confirmation that
 * collapses stops early").  It saves most of a run of the
 * second-confirmation case. */
typedef struct behind_rule {
    const tune_state *ts;
    run_history start;            /* the path start's history on this fold     */
    int64_t from_step;            /* no verdict before it: steps/10             */
    int behind;                   /* the last point it was asked about was behind */
} behind_rule;

static int behind_start(void *user, int64_t step, double val)
{
    behind_rule *b = user;
    if (step < b->from_step) return 0;
    for (size_t i = 0; i < b->start.n; i++)
        if (b->start.rows[i].step == step) {
            const double ref = b->start.rows[i].val_metric;
            if (!isfinite(ref)) return 0;
            const int behind = b->ts->cls ? val < 0.5 * ref : val > 2 * ref, twice = behind && b->behind;
            b->behind = behind;
            return twice;
        }
    return 0;
}

/* Trains candidate c's fold to `steps` (resuming its folder) and scores it;
 * reads the result from the ledger when it was made before.  start: for a
 * confirmation from scratch, the path's start, which it stops behind
 * (behind_start; *stopped_at the step, else 0). */
static tnmtl_status evaluate_fold(tune_state *ts, const candidate *c, const candidate *from, const candidate *start,
                                  int fold, int64_t steps, double *val, double *seconds, int64_t *stopped_at,
                                  tnmtl_error *err)
{
    *stopped_at = 0;
    char rel[256], key[320], dir[4096], ckpt[4200];
    snprintf(rel, sizeof rel, "trials/%s/fold%d", c->dir, fold);
    snprintf(key, sizeof key, "%s@%lld", rel, (long long)steps);
    const cJSON *rec = cJSON_GetObjectItemCaseSensitive(ts->ledger, key);
    if (rec) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, "val"), *sec = cJSON_GetObjectItemCaseSensitive(rec, "seconds");
        *val = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        *seconds = cJSON_IsNumber(sec) ? sec->valuedouble : 0;
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(rec, "stopped_at");
        if (cJSON_IsNumber(at)) *stopped_at = (int64_t)at->valuedouble;
        return TNMTL_OK;
    }
    tune_path(ts, rel, dir, sizeof dir);
    snprintf(ckpt, sizeof ckpt, "%s/%s", dir, TNMTL_CHECKPOINT_FILE);
    double t0 = tnmtl_now();
    session s;
    struct stat sb;
    const int resumed = writers_flag(stat(ckpt, &sb) == 0);
    runfolder rf = {.lock_fd = -1};
    tnmtl_status st = cli_is_writer() ? runfolder_claim(&rf, dir, "run", resumed ? RUNFOLDER_RESUME : RUNFOLDER_NEW,
                                                        NULL, err)
                                      : TNMTL_OK;
    if (st) return st;
    if (resumed) { /* an earlier rung, or a killed evaluation */
        st = session_resume(&s, dir, ts->ds, err);
        if (!st && s.optim.step > steps) {
            st = tnmtl_fail(err, TNMTL_ERR_INVALID, "%s is at step %lld, past %lld: not this tune's trial", dir,
                            (long long)s.optim.step, (long long)steps);
            session_free(&s);
        }
        if (!st) s.opts.steps = steps;
        /* A killed evaluation's training before its checkpoint counts too:
         * the history's time, less the earlier rungs the ledger has. */
        if (!st) t0 -= fmax(0, history_elapsed(&s.history) - ledger_seconds(ts, rel, steps));
    } else {
        run_options o = candidate_options(ts, c, fold, steps);
        st = session_start(&s, &o, ts->ds, err);
        if (!st && from) { /* warm start: the neighbour's parameters, moments and step */
            char src_rel[256], src[4096];
            snprintf(src_rel, sizeof src_rel, "trials/%s/fold%d/%s", from->dir, fold, TNMTL_CHECKPOINT_FILE);
            tune_path(ts, src_rel, src, sizeof src);
            st = tnmtl_checkpoint_load(src, s.model, &s.optim, err);
            if (st) session_free(&s);
        }
    }
    if (!st && (st = claim_run(&rf, dir, resumed, &s, err))) session_free(&s);
    if (st) {
        runfolder_release(&rf);
        return st;
    }
    /* The validation curve (every steps/20) only where the trial may be the
     * final model as one run from scratch; a warm start or an early rung is
     * scored at its end alone (docs/performance.md, "Tuning cost"). */
    s.val_at_end_only = from != NULL || steps < ts->base.steps;
    behind_rule rule = {.ts = ts, .from_step = steps / 10};
    if (start) {
        char start_dir[4096];
        snprintf(rel, sizeof rel, "trials/%s/fold%d", start->dir, fold);
        tune_path(ts, rel, start_dir, sizeof start_dir);
        st = history_load(&rule.start, start_dir, steps, err);
        s.halt = behind_start;
        s.halt_user = &rule;
    }
    if (!st) st = session_train(&s, dir, 1, &stop_requested, err);
    if (!st) st = session_validation_mean(&s, val, err);
    *stopped_at = s.halted_at;
    history_free(&rule.start);
    session_free(&s);
    runfolder_release(&rf);
    if (st) return st;
    *seconds = tnmtl_now() - t0;
    cJSON *r = cJSON_AddObjectToObject(ts->ledger, key);
    cJSON_AddItemToObject(r, "val", isfinite(*val) ? cJSON_CreateNumber(*val) : cJSON_CreateNull());
    cJSON_AddNumberToObject(r, "seconds", *seconds);
    if (*stopped_at) cJSON_AddNumberToObject(r, "stopped_at", (double)*stopped_at);
    return tune_write_json(ts, "ledger.json", ts->ledger, err);
}

static void candidate_label(const tune_state *ts, const candidate *c, char *buf, size_t cap)
{
    char batch[24] = "";
    if (ts->batches_searched) snprintf(batch, sizeof batch, " batch=%d", c->batch);
    if (c->method == TNMTL_METHOD_UD) snprintf(buf, cap, "ud N=%d%s", c->share, batch);
    else if (c->method == TNMTL_METHOD_STL) snprintf(buf, cap, "stl steps=%lld%s", (long long)c->steps, batch);
    else snprintf(buf, cap, "%s gamma=%.3g%s", tnmtl_method_name(c->method), c->gamma, batch);
}

/* Candidate c at `steps` (warm-started from `from` when not NULL), averaged
 * over the folds; one progress line.  A confirmation from scratch (start:
 * the path's start) stops at the first fold where it falls behind the start
 * (behind_start): scored on the folds trained, at the step it stopped. */
static tnmtl_status evaluate(tune_state *ts, candidate *c, const candidate *from, const candidate *start, int64_t steps,
                             tnmtl_error *err)
{
    const int nf = ts->folds ? ts->folds : 1;
    double sum = 0, secs = 0;
    int done = 0;
    c->stopped_at = 0;
    while (done < nf && !c->stopped_at) {
        double v, s;
        tnmtl_status st = evaluate_fold(ts, c, from, start, done, steps, &v, &s, &c->stopped_at, err);
        if (st) return st;
        sum += v;
        secs += s;
        done++;
    }
    if (c->stopped_at) steps = c->stopped_at;
    c->val = sum / done;
    c->val_steps = steps;
    ts->n_evals++;
    ts->search_seconds += secs;
    int k = c->n_evals; /* halving's rungs ascend; a repeated step count replaces its row */
    if (k > 0 && c->eval_steps[k - 1] == steps) k--;
    if (k < MAX_RUNGS) {
        c->eval_steps[k] = steps;
        c->eval_val[k] = c->val;
        c->eval_seconds[k] = secs;
        c->n_evals = k + 1;
    }
    if (!ts->quiet) {
        char label[96];
        candidate_label(ts, c, label, sizeof label);
        fprintf(stderr, "trial %3d  %-*s steps %6lld  validation %s %.4f  (%d fold%s, %.1f s)%s\n", ts->n_evals,
                ts->batches_searched ? 30 : 22, label, (long long)steps, part_metric_name(ts->cls), c->val, done,
                done > 1 ? "s" : "", secs,
                c->stopped_at ? "  stopped: clearly behind the weakest gamma's run" : "");
    }
    return TNMTL_OK;
}

/* Successive halving over cand[n] (all of one method): rung r trains the
 * alive candidates to steps / eta^(R-1-r); after each rung but the last the
 * best ceil(n_alive / eta) stay alive.  Returns the index of the best. */
static tnmtl_status halving(tune_state *ts, candidate *cand, int n, int rungs, int eta, int *best, tnmtl_error *err)
{
    for (int i = 0; i < n; i++) cand[i].alive = 1;
    int alive = n;
    for (int r = 0; r < rungs; r++) {
        double div = pow((double)eta, (double)(rungs - 1 - r));
        int64_t steps = (int64_t)ceil((double)ts->base.steps / div);
        if (steps < 1) steps = 1;
        for (int i = 0; i < n; i++) {
            if (!cand[i].alive) continue;
            tnmtl_status st = evaluate(ts, &cand[i], NULL, NULL, steps, err);
            if (st) return st;
        }
        if (r == rungs - 1) break;
        int keep = (alive + eta - 1) / eta;
        if (keep < 1) keep = 1;
        /* Keep the `keep` best (ties: the earlier candidate). */
        int rank[MAX_CANDIDATES], m = 0;
        for (int i = 0; i < n; i++)
            if (cand[i].alive) rank[m++] = i;
        for (int a = 1; a < m; a++) /* insertion sort, stable */
            for (int b = a; b > 0 && better(ts, cand[rank[b]].val, cand[rank[b - 1]].val); b--) {
                int tmp = rank[b];
                rank[b] = rank[b - 1];
                rank[b - 1] = tmp;
            }
        for (int k = keep; k < m; k++) cand[rank[k]].alive = 0;
        alive = keep;
    }
    *best = -1;
    for (int i = 0; i < n; i++)
        if (cand[i].alive && (*best < 0 || better(ts, cand[i].val, cand[*best].val))) *best = i;
    return TNMTL_OK;
}

/* The gamma path, as regularisation-path solvers walk it: the weakest gamma
 * trains --steps from scratch, each next (stronger) gamma continues from its
 * neighbour's checkpoint for ceil(steps / n) more, so the path costs under
 * two runs whatever n, and with one confirmation the search stays under
 * three with room for each evaluation's fixed cost (docs/performance.md).
 * A strong gamma is judged on a model that already fits the
 * data, not on how slowly it starts from scratch (which misleads halving's
 * early rungs: docs/results.md).  A warm start can also carry a gamma that
 * collapses the model from scratch, or flatter one that a model fitted by
 * weaker gammas suits, so the path only ranks: its candidates are then
 * trained from scratch (their twins, cand[n .. 2n)) in path order, at most
 * `verify` of them, until one holds: it is the best run from scratch so far
 * (the weakest gamma is one already) and validates at least as well as the
 * path's next gamma on the path.  The best run from scratch is chosen.
 * A confirmation that falls clearly behind the start as it trains (a gamma
 * that collapses the model from scratch) stops there and is out
 * (behind_start): in the second-confirmation case it costs a sixth of a
 * run or so instead of a whole one.
 * cand[2n]: n path candidates, then their twins. */
static tnmtl_status gamma_path(tune_state *ts, candidate *cand, int n, int verify, int *best, tnmtl_error *err)
{
    *best = 0;
    const int64_t seg = n > 1 ? (ts->base.steps + n - 1) / n : 0;
    /* Before 89ea6db the segments were ceil(steps/(n-1)); such a path
     * cannot be resumed step for step, so it is refused by name. */
    const int64_t old_seg = n > 1 ? (ts->base.steps + n - 2) / (n - 1) : 0;
    if (old_seg != seg) {
        char old_key[320];
        snprintf(old_key, sizeof old_key, "trials/%s/fold0@%lld", cand[1].dir, (long long)(ts->base.steps + old_seg));
        if (cJSON_HasObjectItem(ts->ledger, old_key))
            return tnmtl_fail(err, TNMTL_ERR_INVALID,
                              "%s holds a gamma path walked in segments of steps/(n-1) by an earlier tnmtl (before "
                              "89ea6db); this one walks ceil(steps/n): finish the tune with that version, or use "
                              "another --out", ts->out);
    }
    int order[MAX_CANDIDATES];
    for (int i = 0; i < n; i++) {
        tnmtl_status st = evaluate(ts, &cand[i], i ? &cand[i - 1] : NULL, NULL, ts->base.steps + i * seg, err);
        if (st) return st;
        cand[i].alive = 1;
        int k = i; /* insertion into the path ranking */
        for (; k > 0 && better(ts, cand[i].val, cand[order[k - 1]].val); k--) order[k] = order[k - 1];
        order[k] = i;
    }
    for (int r = 0, tried = 0; r < n && tried < verify; r++) {
        if (order[r] == 0) continue; /* the weakest gamma is a from-scratch run already */
        candidate *t = &cand[n + order[r]];
        tnmtl_status st = evaluate(ts, t, NULL, &cand[0], ts->base.steps, err);
        if (st) return st;
        tried++;
        /* The best from-scratch run wins (ties: the weakest gamma gives way,
         * an earlier confirmation does not); one stopped behind the start
         * (behind_start) is out, and the next is confirmed. */
        if (!t->stopped_at && (better(ts, t->val, cand[*best].val) || (*best == 0 && t->val == cand[0].val)))
            *best = n + order[r];
        /* It holds when it is that best and keeps its place in the path's
         * ranking: from scratch it validates at least as well as the path's
         * next gamma did on the path.  Below that, the warm start flattered
         * it, and the next is confirmed too (docs/results.md, "TT's gamma on
         * seeds 7 and 9"). */
        int next = r + 1;
        while (next < n && order[next] == 0) next++;
        if (*best == n + order[r] && (next == n || !better(ts, cand[order[next]].val, t->val))) break;
    }
    return TNMTL_OK;
}

/* STL: one training path, evaluated at each candidate's step count (ascending). */
static tnmtl_status stl_path(tune_state *ts, candidate *cand, int n, int *best, tnmtl_error *err)
{
    *best = -1;
    for (int i = 0; i < n; i++) {
        tnmtl_status st = evaluate(ts, &cand[i], NULL, NULL, cand[i].steps, err);
        if (st) return st;
        cand[i].alive = 1;
        if (*best < 0 || better(ts, cand[i].val, cand[*best].val)) *best = i;
    }
    return TNMTL_OK;
}

/* With a held-out part outside the training examples the winner's trial
 * was trained on the whole training part: its checkpoint is the final
 * model when it stopped at the chosen steps (not so on STL's path). */
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
        fabs(o.gamma - fo->gamma) <= 1e-12 * fabs(fo->gamma))
        return TNMTL_OK;
    return tnmtl_fail(err, TNMTL_ERR_INVALID,
                      "%s holds %s (gamma %g, share %d, batch %d, %lld steps) but the choice is %s (gamma %g, "
                      "share %d, batch %d, %lld steps): it was fitted by a tune that chose otherwise (another "
                      "version of tnmtl); move the folder's final/ away to fit the choice",
                      final_ckpt, tnmtl_method_name(o.method), o.gamma, o.ud_share, o.batch, (long long)o.steps,
                      tnmtl_method_name(fo->method), fo->gamma, fo->ud_share, fo->batch, (long long)fo->steps);
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
            rows[n] = (rep_trial){.gamma = c->gamma, .share = c->share, .batch = c->batch, .steps = c->eval_steps[k],
                                  .val = c->eval_val[k], .chosen = i == j->chosen && k == m - 1, .scratch = c->twin,
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
    if (j->csv) fprintf(f, "method,gamma,share,batch,steps,%s,seconds,chosen\n", metric);
    else
        fprintf(f, "| method | gamma | share N | batch | steps | validation %s | seconds | chosen |\n"
                   "|---|---|---|---|---|---|---|---|\n", j->ts->cls ? "accuracy %" : "RMSE");
    for (int k = 0; k < n; k++) {
        const rep_trial *t = &rows[k];
        char g[32] = "", sh[16] = "", batch[16] = "full";
        if (isfinite(t->gamma)) snprintf(g, sizeof g, "%.6g", t->gamma);
        if (t->share >= 0) snprintf(sh, sizeof sh, "%d", t->share);
        if (t->batch > 0) snprintf(batch, sizeof batch, "%d", t->batch);
        if (j->csv)
            fprintf(f, "%s,%s,%s,%d,%lld,%.4f,%.3f,%d\n", t->method, g, sh, t->batch, t->steps, scale * t->val, secs[k],
                    t->chosen);
        else
            fprintf(f, "| %s | %s | %s | %s | %lld%s | %.2f | %.1f | %s |\n", t->method, g[0] ? g : "-",
                    sh[0] ? sh : "-", batch, t->steps, t->stopped ? " (stopped)" : "",
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
                                    const int *batches, int n_batches, double glo, double ghi, int gcount, int rungs,
                                    int eta, int path, candidate *cand, int *n, tnmtl_error *err)
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
            const int twins = path && m != TNMTL_METHOD_STL && m != TNMTL_METHOD_UD;
            if (*n + (twins ? 2 : 1) * count > MAX_CANDIDATES)
                return tnmtl_fail(err, TNMTL_ERR_INVALID, "more than %d candidates: lower --gamma-count or give fewer "
                                  "--batches", MAX_CANDIDATES);
            for (int i = 0; i < count; i++) {
                candidate *c = &cand[(*n)++];
                memset(c, 0, sizeof *c);
                c->method = m;
                c->gamma = NAN;
                c->share = -1;
                c->steps = ts->base.steps;
                c->batch = batches[b];
                c->val = NAN;
                if (m == TNMTL_METHOD_UD) {
                    c->share = i + 1;
                    snprintf(c->dir, sizeof c->dir, "ud-n%d%s", c->share, bs);
                } else if (m == TNMTL_METHOD_STL) {
                    /* Log-spaced from the first rung's budget to --steps. */
                    const double lo = (double)ts->base.steps / pow((double)eta, (double)(rungs - 1)),
                                 hi = (double)ts->base.steps;
                    const double s = count > 1 ? lo * pow(hi / lo, (double)i / (count - 1)) : ts->base.steps;
                    c->steps = (int64_t)llround(s);
                    if (c->steps < 1) c->steps = 1;
                    if (i > 0 && c->steps <= cand[*n - 2].steps) { /* tiny --steps: no repeats */
                        (*n)--;
                        continue;
                    }
                    snprintf(c->dir, sizeof c->dir, "stl-path%s", bs);
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
                    snprintf(c->dir, sizeof c->dir, "%s-g%.4g%s", name, c->gamma, bs);
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

int cmd_tune(int argc, char **argv)
{
    run_options o;
    run_options_init(&o);
    tnmtl_method methods[MAX_METHODS] = {TNMTL_METHOD_STL, TNMTL_METHOD_UD, TNMTL_METHOD_LAF, TNMTL_METHOD_TUCKER,
                                         TNMTL_METHOD_TT};
    int n_methods = 5, quiet = 0, folds = 3, folds_set = 0, rungs = 3, eta = 3, gcount = 9, path = 1;
    double glo = 1e-4, ghi = 1.0;
    int batches[MAX_BATCHES], n_batches = 0; /* --batches; none: the one --batch */
    const char *out_dir = NULL;
    tnmtl_error err = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s\n%s", tune_usage, run_options_help);
            return EXIT_OK;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        static const char *const own[] = {"--methods", "--gamma-range", "--gamma-count", "--folds", "--rungs", "--eta", "--out",
                                          "--search", "--batches"};
        int is_own = 0;
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++) is_own |= !strcmp(a, own[k]);
        if (is_own) {
            if (i + 1 >= argc) return cli_usage_error("tune", "%s needs a value", a);
            const char *v = argv[++i];
            long n = 0;
            tnmtl_status st = TNMTL_OK;
            if (!strcmp(a, "--methods")) st = cli_parse_methods(v, methods, MAX_METHODS, &n_methods, &err);
            else if (!strcmp(a, "--gamma-range")) st = parse_range(v, &glo, &ghi, &err);
            else if (!strcmp(a, "--gamma-count") && !(st = cli_parse_int(a, v, 1, 32, &n, &err))) gcount = (int)n;
            else if (!strcmp(a, "--folds")) {
                if (!(st = cli_parse_int(a, v, 2, 1000, &n, &err))) folds = (int)n, folds_set = 1;
                else tnmtl_fail(&err, TNMTL_ERR_INVALID, "--folds: '%s' is not a number of folds >= 2", v);
            } else if (!strcmp(a, "--rungs") && !(st = cli_parse_int(a, v, 1, MAX_RUNGS, &n, &err))) rungs = (int)n;
            else if (!strcmp(a, "--eta") && !(st = cli_parse_int(a, v, 2, 16, &n, &err))) eta = (int)n;
            else if (!strcmp(a, "--out")) out_dir = v;
            else if (!strcmp(a, "--batches")) st = parse_batches(v, batches, &n_batches, &err);
            else if (!strcmp(a, "--search")) {
                if (!strcmp(v, "halving")) path = 0;
                else if (!strcmp(v, "path")) path = 1;
                else if (!strcmp(v, "grid")) path = 0, rungs = 1;
                else st = tnmtl_fail(&err, TNMTL_ERR_INVALID, "--search: '%s' is not halving, path or grid", v);
            }
            if (st) return cli_usage_error("tune", "%s", err.msg);
            continue;
        }
        if (!strcmp(a, "--method") || !strcmp(a, "--gamma") || !strcmp(a, "--share") || !strcmp(a, "--fold"))
            return cli_usage_error("tune", "%s is what tune chooses: use --methods and --gamma-range", a);
        int r = run_parse_option(&o, argc, argv, &i, &err);
        if (r < 0) return cli_usage_error("tune", "%s", err.msg);
        if (r == 0) return cli_usage_error("tune", "unknown option '%s'", a);
    }
    if (!out_dir) return cli_usage_error("tune", "--out DIR is required (trials, checkpoints and the result go there)");
    if (glo == ghi && gcount > 1) return cli_usage_error("tune", "--gamma-range: empty range %g,%g for %d values", glo, ghi, gcount);
    if (n_batches && (o.set_mask & RUN_SET_BATCH))
        return cli_usage_error("tune", "--batch and --batches exclude each other (--batches searches the batch size)");
    if (n_batches && o.epochs > 0)
        return cli_usage_error("tune", "--epochs with --batches: an epoch is a different number of steps per batch "
                               "size; give --steps");
    /* Validation: a held-out part when asked for (omniglot: 2 drawings per
     * character from the non-training ones), else K folds. */
    if (o.folds) return cli_usage_error("tune", "use tune's --folds K (without --fold)");
    const int omniglot = !strncmp(o.data, "omniglot:", 9);
    if (omniglot && !o.val_from_test && o.val_frac == 0 && !folds_set) o.val_from_test = 2;
    if (folds_set && (o.val_frac > 0 || o.val_from_test > 0))
        return cli_usage_error("tune", "--folds and a held-out part (--val-frac, --val-from-test) exclude each other");
    tune_state ts = {0};
    runfolder top = {.lock_fd = -1}, final_rf = {.lock_fd = -1};
    ts.out = out_dir;
    ts.quiet = quiet;
    ts.folds = o.val_frac > 0 || o.val_from_test > 0 ? 0 : folds;

    /* Everything that can be wrong with the input is checked before the
     * folder is touched: the data, the options, the first fold's split. */
    tnmtl_dataset ds;
    tnmtl_split split;
    tnmtl_status st = run_finalise(&o, NULL, &err);
    if (!st) st = run_load_data(&o, &ds, &split, &err);
    if (st) return cli_fail("tune", &err);
    tnmtl_split_free(&split);
    int code = EXIT_OK;
    candidate *cand = calloc(MAX_CANDIDATES, sizeof *cand);
    ts.ds = &ds;
    ts.cls = ds.kind == TNMTL_TARGET_CLASS;
    if (!cand) st = tnmtl_fail(&err, TNMTL_ERR_NOMEM, "out of memory");
    if (!st) st = run_finalise(&o, &ds, &err);
    ts.base = o;
    ts.batches_searched = n_batches > 0;
    if (!n_batches) batches[n_batches++] = o.batch;
    if (!st && ts.folds) {
        run_options f0 = o;
        f0.folds = ts.folds;
        st = run_make_split(&f0, &ds, &split, &err);
        if (st) tnmtl_error_prefix(&err, "--folds %d", ts.folds);
        tnmtl_split_free(&split);
    }
    int n = 0;
    if (!st)
        st = make_candidates(&ts, methods, n_methods, batches, n_batches, glo, ghi, gcount, rungs, eta, path, cand, &n,
                             &err);
    /* The tune's identity: a folder made with other options is refused. */
    cJSON *ident = cJSON_CreateObject();
    char *base_json = run_options_to_json(&o);
    cJSON_AddItemToObject(ident, "options", base_json ? cJSON_Parse(base_json) : cJSON_CreateNull());
    free(base_json);
    cJSON *mlist = cJSON_AddArrayToObject(ident, "methods");
    for (int k = 0; k < n_methods; k++) cJSON_AddItemToArray(mlist, cJSON_CreateString(tnmtl_method_name(methods[k])));
    cJSON_AddNumberToObject(ident, "gamma_lo", glo);
    cJSON_AddNumberToObject(ident, "gamma_hi", ghi);
    cJSON_AddNumberToObject(ident, "gamma_count", gcount);
    cJSON_AddNumberToObject(ident, "folds", ts.folds);
    cJSON_AddNumberToObject(ident, "rungs", rungs);
    cJSON_AddNumberToObject(ident, "eta", eta);
    cJSON_AddStringToObject(ident, "search", path ? "path" : "halving");
    if (ts.batches_searched) { /* (absent otherwise: the folders of tunes before --batches still resume) */
        cJSON *bl = cJSON_AddArrayToObject(ident, "batches");
        for (int b = 0; b < n_batches; b++) cJSON_AddItemToArray(bl, cJSON_CreateNumber(batches[b]));
    }
    int bad = 0;
    const int writer = cli_is_writer(); /* under mpirun the writer reads the folder, the others its ledger */
    cJSON *stored = st || !writer ? NULL : tune_read_json(&ts, "tune.json", &bad, &err);
    if (!st && bad) st = err.status ? err.status : TNMTL_ERR_FORMAT;
    if (!st && stored && !cJSON_Compare(stored, ident, 1))
        st = tnmtl_fail(&err, TNMTL_ERR_INVALID, "%s holds a tune made with other options; use another --out", out_dir);
    cJSON_Delete(stored);
    if (!st && writer) {
        ts.ledger = tune_read_json(&ts, "ledger.json", &bad, &err);
        if (bad) st = err.status ? err.status : TNMTL_ERR_FORMAT;
    }
    if (!st && tnmtl_dist_size(cli_dist) > 1 && writers_flag(1)) { /* the writer got here: its ledger to all */
        char *text = writer && ts.ledger ? cJSON_PrintUnformatted(ts.ledger) : NULL;
        st = tnmtl_dist_bcast_text(cli_dist, 0, &text, &err);
        if (!st && !writer && text) ts.ledger = cJSON_Parse(text);
        free(text);
    }
    if (!st && !ts.ledger) ts.ledger = cJSON_CreateObject();
    if (st) {
        code = cli_fail("tune", &err);
        goto done;
    }
    /* The folder: one writer at a time, one tune (its identity), as compare's. */
    char *ident_text = cJSON_PrintUnformatted(ident);
    st = !ident_text ? tnmtl_fail(&err, TNMTL_ERR_NOMEM, "out of memory")
         : writer    ? runfolder_claim(&top, out_dir, "tune", RUNFOLDER_RESUME, ident_text, &err)
                     : TNMTL_OK;
    free(ident_text);
    if (!st) st = tnmtl_dist_barrier(cli_dist, &err);
    if (st || (st = tune_write_json(&ts, "tune.json", ident, &err))) {
        code = cli_fail("tune", &err);
        goto done;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (!quiet)
        fprintf(stderr, "tune on %s: %d candidates, %s validation, %d rung(s), eta %d\n", ds.source, n,
                ts.folds ? "k-fold" : "held-out", rungs, eta);

    /* The search: per method and batch size, the best candidate on
     * validation; per method, the best over its batch sizes. */
    int best_of[MAX_METHODS], chosen = -1;
    for (int k = 0, first = 0; k < n_methods && !st; k++) {
        best_of[k] = -1;
        for (int g = 0; g < n_batches && !st; g++) {
            int count = 0;
            while (first + count < n && cand[first + count].method == methods[k] &&
                   cand[first + count].batch == batches[g])
                count++;
            int b = -1;
            if (methods[k] == TNMTL_METHOD_STL) st = stl_path(&ts, cand + first, count, &b, &err);
            else if (path && methods[k] != TNMTL_METHOD_UD) st = gamma_path(&ts, cand + first, count / 2, 2, &b, &err);
            else st = halving(&ts, cand + first, count, rungs, eta, &b, &err);
            if (!st && b >= 0 && (best_of[k] < 0 || better(&ts, cand[first + b].val, cand[best_of[k]].val)))
                best_of[k] = first + b;
            first += count;
        }
        if (!st && best_of[k] >= 0 && (chosen < 0 || better(&ts, cand[best_of[k]].val, cand[chosen].val)))
            chosen = best_of[k];
    }
    if (!st && chosen < 0) st = tnmtl_fail(&err, TNMTL_ERR_NUMERIC, "no candidate gave a finite validation metric");
    if (st) {
        if (stop_requested) {
            fprintf(stderr, "tnmtl tune: interrupted; run the same command again to resume\n");
            code = 130;
        } else {
            code = cli_fail("tune", &err);
        }
        goto done;
    }

    /* The tables and the plot. */
    table_job job = {&ts, cand, n, chosen, 0};
    char *tables[] = {"trials.md", "trials.csv", "trials.svg"};
    if ((st = runfolder_files_begin(&top, tables, 3, &err)) ||
        (st = tune_write_text(&ts, "trials.md", write_trials, &job, &err)) ||
        (job.csv = 1, st = tune_write_text(&ts, "trials.csv", write_trials, &job, &err)) ||
        (st = tune_write_text(&ts, "trials.svg", write_plot, &job, &err)) ||
        (st = runfolder_files_end(&top, tables, 3, &err))) {
        code = cli_fail("tune", &err);
        goto done;
    }

    /* The choice fitted on the whole training part (a held-out part from the
     * training examples goes back to training; one from the non-training
     * examples stays validation) and tested. */
    const candidate *c = &cand[chosen];
    run_options fo = candidate_options(&ts, c, -1, c->steps);
    fo.val_frac = 0;
    char final_dir[4096];
    tune_path(&ts, "final", final_dir, sizeof final_dir);
    session s;
    memset(&s, 0, sizeof s);
    struct stat sb;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/%s", final_dir, TNMTL_CHECKPOINT_FILE);
    const int had_final = writers_flag(stat(ckpt, &sb) == 0);
    if (writer)
        st = runfolder_claim(&final_rf, final_dir, "run", had_final ? RUNFOLDER_RESUME : RUNFOLDER_NEW, NULL, &err);
    if (!st && had_final) st = final_holds_choice(ckpt, &fo, &err); /* every process reads the same file */
    if (!st && writer && !had_final && !ts.folds && ts.base.val_frac == 0)
        st = reuse_trial(&ts, c, ckpt, &err); /* the winner trained on the whole training part already */
    const int resumed = writers_flag(!st && stat(ckpt, &sb) == 0); /* (a failed writer stops everyone) */
    if (resumed) st = session_resume(&s, final_dir, &ds, &err);
    else if (!st) st = session_start(&s, &fo, &ds, &err);
    const int reused = resumed && !had_final;
    if (!st && writer && reused) runfolder_adopt(&final_rf, s.opts.run_id); /* the folder takes the trial's run */
    if (!st && (st = claim_run(&final_rf, final_dir, resumed && had_final, &s, &err))) session_free(&s);
    if (!st && writer && reused) {
        char trial_dir[4096], rel[256];
        snprintf(rel, sizeof rel, "trials/%s/fold0", c->dir);
        tune_path(&ts, rel, trial_dir, sizeof trial_dir);
        st = session_take_history(&s, trial_dir, final_dir, &err);
    }
    if (!st) {
        if (!quiet) fprintf(stderr, "fitting the choice on the whole training part: %s\n", final_dir);
        st = session_train(&s, final_dir, 1, &stop_requested, &err);
    }
    cJSON *result = NULL;
    if (!st) st = session_evaluate(&s, final_dir, &result, &err);
    if (!st) {
        char *cj = run_options_to_json(&s.opts);
        cJSON *chosen_json = cj ? cJSON_Parse(cj) : NULL;
        free(cj);
        cJSON_DeleteItemFromObjectCaseSensitive(chosen_json, "run_id"); /* a configuration, not this run */
        char *chosen_name[] = {"chosen.json"};
        st = chosen_json ? runfolder_files_begin(&top, chosen_name, 1, &err) : TNMTL_ERR_NOMEM;
        if (!st) st = tune_write_json(&ts, "chosen.json", chosen_json, &err);
        if (!st) st = runfolder_files_end(&top, chosen_name, 1, &err);
        cJSON_Delete(chosen_json);
    }
    if (!st) {
        cJSON *outj = cJSON_CreateObject();
        cJSON *ch = cJSON_AddObjectToObject(outj, "chosen");
        cJSON_AddStringToObject(ch, "method", tnmtl_method_name(c->method));
        if (isfinite(c->gamma)) cJSON_AddNumberToObject(ch, "gamma", c->gamma);
        if (c->share >= 0) cJSON_AddNumberToObject(ch, "share", c->share);
        cJSON_AddNumberToObject(ch, "steps", (double)c->steps);
        cJSON_AddNumberToObject(ch, "batch", c->batch);
        cJSON_AddNumberToObject(ch, ts.cls ? "val_accuracy" : "val_rmse", c->val);
        cJSON *per = cJSON_AddArrayToObject(outj, "best_per_method");
        for (int k = 0; k < n_methods; k++) {
            if (best_of[k] < 0) continue;
            const candidate *b = &cand[best_of[k]];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "method", tnmtl_method_name(b->method));
            if (isfinite(b->gamma)) cJSON_AddNumberToObject(e, "gamma", b->gamma);
            if (b->share >= 0) cJSON_AddNumberToObject(e, "share", b->share);
            cJSON_AddNumberToObject(e, "steps", (double)b->steps);
            cJSON_AddNumberToObject(e, "batch", b->batch);
            cJSON_AddNumberToObject(e, ts.cls ? "val_accuracy" : "val_rmse", b->val);
            /* The best gamma at an end of the searched range: the best may lie beyond it. */
            const int edge = isfinite(b->gamma) && gcount > 1 &&
                             (fabs(b->gamma - glo) <= 1e-9 * glo || fabs(b->gamma - ghi) <= 1e-9 * ghi);
            if (isfinite(b->gamma)) cJSON_AddBoolToObject(e, "at_range_edge", edge);
            if (edge && !quiet)
                fprintf(stderr, "note: %s's best gamma %g is at the %s end of the searched range [%g, %g]; a wider "
                        "--gamma-range may find a better one\n", tnmtl_method_name(b->method), b->gamma,
                        fabs(b->gamma - ghi) <= 1e-9 * ghi ? "upper" : "lower", glo, ghi);
            cJSON_AddItemToArray(per, e);
        }
        cJSON_AddStringToObject(outj, "validation", ts.folds ? "k-fold" : "held-out");
        cJSON_AddNumberToObject(outj, "folds", ts.folds);
        cJSON_AddNumberToObject(outj, "evaluations", ts.n_evals);
        cJSON_AddNumberToObject(outj, "search_seconds", ts.search_seconds);
        cJSON_AddNumberToObject(outj, "final_train_seconds", s.train_seconds);
        const cJSON *test = cJSON_GetObjectItemCaseSensitive(result, "test");
        cJSON_AddItemToObject(outj, "test", test ? cJSON_Duplicate(test, 1) : cJSON_CreateNull());
        cJSON_AddStringToObject(outj, "out", out_dir);
        char *text = cJSON_Print(outj);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(outj);
    }
    cJSON_Delete(result);
    if (st && stop_requested) {
        fprintf(stderr, "tnmtl tune: interrupted; run the same command again to resume\n");
        code = 130;
    } else if (st) {
        code = cli_fail("tune", &err);
    }
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
