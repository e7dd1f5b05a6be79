/* tune_search.c - the searching half of `tnmtl tune` (cli/tune.h): the
 * tune folder's files, the ledger, one evaluation of a candidate, and the
 * searches (the regularisation path with its confirmations, successive
 * halving).  cli/cmd_tune.c holds the command: options, the folder's
 * identity, the tables, the final fit. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "dist_internal.h"
#include "history.h"
#include "tnmtl/checkpoint.h"
#include "tune.h"

int tune_better(const tune_state *ts, double a, double b)
{
    if (!isfinite(a)) return 0;
    if (!isfinite(b)) return 1;
    return ts->cls ? a > b : a < b;
}

/* ---- the tune folder: every file tune writes goes through here ---- */

void tune_path(const tune_state *ts, const char *rel, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", ts->out, rel);
}

/* Under mpirun only the writer (process 0) writes; the others follow its
 * decisions (shared with tnmtl_dist_bcast_*). */
tnmtl_status tune_write_json(const tune_state *ts, const char *rel, const cJSON *j, tnmtl_error *err)
{
    if (!cli_is_writer()) return TNMTL_OK;
    char path[4096], *text = cJSON_Print(j);
    if (!text) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory writing %s", rel);
    tune_path(ts, rel, path, sizeof path);
    tnmtl_status st = tnmtl_write_buffer_atomic(path, text, strlen(text), err);
    free(text);
    return st;
}

tnmtl_status tune_write_text(const tune_state *ts, const char *rel, tnmtl_write_fn fn, void *user, tnmtl_error *err)
{
    if (!cli_is_writer()) return TNMTL_OK;
    char path[4096];
    tune_path(ts, rel, path, sizeof path);
    return tnmtl_write_file_atomic(path, fn, user, err);
}

/* The writer's 1/0 (e.g. "the folder holds a checkpoint") on every process. */
int tune_writers_flag(int flag)
{
    tnmtl_dist_bcast_int(cli_dist, 0, &flag);
    return flag;
}

/* Reads rel as JSON: NULL when absent; err filled (and *bad set) when unreadable. */
cJSON *tune_read_json(const tune_state *ts, const char *rel, int *bad, tnmtl_error *err)
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

double tune_candidate_weight_decay(const tune_state *ts, const candidate *c)
{
    if (isfinite(c->weight_decay)) return c->weight_decay;
    return ts->base.weight_decay > 0 ? ts->base.weight_decay : NAN;
}

/* The run options of candidate c on fold f (f < 0: the whole training part). */
run_options tune_candidate_options(const tune_state *ts, const candidate *c, int fold, int64_t steps)
{
    run_options o = ts->base;
    o.method = c->method;
    if (isfinite(c->gamma)) o.gamma = c->gamma;
    const double wd = tune_candidate_weight_decay(ts, c);
    o.weight_decay = isfinite(wd) ? wd : 0;
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
tnmtl_status tune_claim_run(runfolder *rf, const char *dir, int resumed, session *s, tnmtl_error *err)
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
 * stops there: BEHIND_POINTS points of its validation curve in a row under
 * half the start's at the same steps (RMSE: over twice), from the curve's
 * first point on.  The start is the weakest gamma, trained from scratch on
 * the same fold with the same steps, batches and seed, so the two curves
 * are measured alike.  A strong gamma that collapses the model from scratch
 * falls to a half or less within a few points and stays there (full
 * Omniglot: 0.46 or under at steps 20 and 40 of 400, at chance from then
 * on); one that holds can lag at the first point (Omniglot Tucker 0.316:
 * 0.70 of the start at step 20, 0.95 at step 40), dip for a point while
 * both are near chance (Omniglot-5 LAF 0.1: 0.62 at step 45), or start
 * slowly for two points and then catch up (synthetic STL weight decay 1:
 * 0.45, 0.45, 0.63, 0.74 at steps 15-60 of 300, ending above the start and
 * at the best test accuracy of the grid), hence three points (two stopped
 * that one, and the tune chose a weaker penalty; docs/results.md, "A
 * confirmation that collapses stops early").  It saves most of a run of the
 * second-confirmation case: a collapsing gamma costs the curve's first
 * three points' steps, 0.15 of a run. */
#define BEHIND_POINTS 3
typedef struct behind_rule {
    const tune_state *ts;
    run_history start;            /* the path start's history on this fold     */
    int64_t from_step;            /* no verdict before it: the curve's first point */
    int run;                      /* points behind in a row, up to the last asked */
} behind_rule;

static int behind_start(void *user, int64_t step, double val)
{
    behind_rule *b = user;
    if (step < b->from_step) return 0;
    for (size_t i = 0; i < b->start.n; i++)
        if (b->start.rows[i].step == step) {
            const double ref = b->start.rows[i].val_metric;
            if (!isfinite(ref)) return 0;
            const int behind = b->ts->cls ? val < 0.5 * ref : val > 2 * ref;
            b->run = behind ? b->run + 1 : 0;
            return b->run >= BEHIND_POINTS;
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
    const int resumed = tune_writers_flag(stat(ckpt, &sb) == 0);
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
        run_options o = tune_candidate_options(ts, c, fold, steps);
        st = session_start(&s, &o, ts->ds, err);
        if (!st && from) { /* warm start: the neighbour's parameters, moments and step */
            char src_rel[256], src[4096];
            snprintf(src_rel, sizeof src_rel, "trials/%s/fold%d/%s", from->dir, fold, TNMTL_CHECKPOINT_FILE);
            tune_path(ts, src_rel, src, sizeof src);
            st = tnmtl_checkpoint_load(src, s.model, &s.optim, err);
            if (st) session_free(&s);
        }
    }
    if (!st && (st = tune_claim_run(&rf, dir, resumed, &s, err))) session_free(&s);
    if (st) {
        runfolder_release(&rf);
        return st;
    }
    /* The validation curve (every steps/20) only where the trial may be the
     * final model as one run from scratch; a warm start or an early rung is
     * scored at its end alone (docs/performance.md, "Tuning cost"). */
    s.val_at_end_only = from != NULL || steps < ts->base.steps;
    behind_rule rule = {.ts = ts, .from_step = session_curve_every(steps)};
    if (start) {
        char start_dir[4096];
        snprintf(rel, sizeof rel, "trials/%s/fold%d", start->dir, fold);
        tune_path(ts, rel, start_dir, sizeof start_dir);
        st = history_load(&rule.start, start_dir, steps, err);
        s.halt = behind_start;
        s.halt_user = &rule;
    }
    if (!st) st = session_train(&s, dir, 1, ts->stop, err);
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
    else if (c->method == TNMTL_METHOD_STL) snprintf(buf, cap, "stl wd=%.3g%s", c->weight_decay, batch);
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
                c->stopped_at ? "  stopped: clearly behind the path start's run" : "");
    }
    return TNMTL_OK;
}

/* Successive halving over cand[n] (all of one method): rung r trains the
 * alive candidates to steps / eta^(R-1-r); after each rung but the last the
 * best ceil(n_alive / eta) stay alive.  Returns the index of the best. */
tnmtl_status tune_halving(tune_state *ts, candidate *cand, int n, int rungs, int eta, int *best, tnmtl_error *err)
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
            for (int b = a; b > 0 && tune_better(ts, cand[rank[b]].val, cand[rank[b - 1]].val); b--) {
                int tmp = rank[b];
                rank[b] = rank[b - 1];
                rank[b - 1] = tmp;
            }
        for (int k = keep; k < m; k++) cand[rank[k]].alive = 0;
        alive = keep;
    }
    *best = -1;
    for (int i = 0; i < n; i++)
        if (cand[i].alive && (*best < 0 || tune_better(ts, cand[i].val, cand[*best].val))) *best = i;
    return TNMTL_OK;
}

/* The gamma path, as regularisation-path solvers walk it (for STL the
 * strength is the weight decay's, walked the same way): the weakest gamma
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
 * (behind_start): in the second-confirmation case it costs a tenth of a
 * run or so instead of a whole one.
 * cand[2n]: n path candidates, then their twins. */
tnmtl_status tune_gamma_path(tune_state *ts, candidate *cand, int n, int verify, int *best, tnmtl_error *err)
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
        for (; k > 0 && tune_better(ts, cand[i].val, cand[order[k - 1]].val); k--) order[k] = order[k - 1];
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
        if (!t->stopped_at && (tune_better(ts, t->val, cand[*best].val) || (*best == 0 && t->val == cand[0].val)))
            *best = n + order[r];
        /* It holds when it is that best and keeps its place in the path's
         * ranking: from scratch it validates at least as well as the path's
         * next gamma did on the path.  Below that, the warm start flattered
         * it, and the next is confirmed too (docs/results.md, "TT's gamma on
         * seeds 7 and 9"). */
        int next = r + 1;
        while (next < n && order[next] == 0) next++;
        if (*best == n + order[r] && (next == n || !tune_better(ts, cand[order[next]].val, t->val))) break;
    }
    return TNMTL_OK;
}
