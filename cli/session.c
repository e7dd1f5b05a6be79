/* session.c - one training run: set-up, resume, training with progress and
 * checkpoints, evaluation and the sharing report. */
#include "session.h"

#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tnmtl/checkpoint.h"
#include "tnmtl/report.h"
#include "tnmtl/resources.h"
#include "util.h"

void session_free(session *s)
{
    tnmtl_mtl_free(s->model);
    tnmtl_optim_free(&s->optim);
    if (!s->borrowed_data) tnmtl_dataset_free(&s->ds);
    tnmtl_split_free(&s->split);
    history_free(&s->history);
    memset(s, 0, sizeof *s);
}

/* Refuses up front a model, batch or thread count that would need more
 * memory than the machine has (TNMTL_ERR_TOO_BIG, exit 2), instead of being
 * killed by the kernel once the pages are touched.  The batch is the largest
 * a run uses: the training batch, or the evaluation chunk of 256. */
static tnmtl_status check_memory(const session *s, tnmtl_error *err)
{
    int64_t most = 0;
    for (int t = 0; t < s->split.n_tasks; t++) {
        const int64_t n = s->split.begin[TNMTL_PART_TRAIN][t + 1] - s->split.begin[TNMTL_PART_TRAIN][t];
        most = n > most ? n : most;
    }
    int64_t batch = s->opts.batch > 0 && s->opts.batch < most ? s->opts.batch : most;
    if (batch < 256) batch = 256;
    tnmtl_mtl_config mc;
    run_model_config(&s->opts, &s->ds, &mc);
    tnmtl_memory_estimate est;
    const int moments = s->opts.optim.kind == TNMTL_OPTIM_ADAM ? 2 : 1;
    tnmtl_status st = tnmtl_mtl_memory_estimate(&mc, batch > INT32_MAX ? INT32_MAX : (int)batch, s->opts.threads,
                                                moments, &est, err);
    return st ? st : tnmtl_memory_check(&est, 0, err);
}

/* The examples whose inputs this process holds (its own tasks' under mpirun). */
static int64_t held_inputs(const tnmtl_dataset *ds)
{
    return ds->task_begin[ds->inputs_task_end ? ds->inputs_task_end : ds->n_tasks] - ds->task_begin[ds->inputs_task_begin];
}

/* Data, split and an uninitialised model and optimiser for s->opts. */
static tnmtl_status build(session *s, tnmtl_error *err)
{
    tnmtl_status st = run_finalise(&s->opts, NULL, err);
    if (!st && s->borrowed_data)
        st = run_make_split(&s->opts, &s->ds, &s->split, err);
    else if (!st)
        st = run_load_data(&s->opts, &s->ds, &s->split, err);
    if (!st) st = run_finalise(&s->opts, &s->ds, err);
    if (!st) st = check_memory(s, err);
    if (!st) st = run_build_model(&s->opts, &s->ds, &s->split, &s->model, err);
    if (!st) st = run_spread_tasks(&s->opts, &s->ds, s->model, err);
    if (!st) st = tnmtl_optim_init(&s->optim, &s->opts.optim, s->model->n_params, err);
    if (!st) st = tnmtl_mtl_own_optim(s->model, &s->optim, err); /* under mpirun: this process's part */
    return st;
}

/* An empty session, on the caller's data when given. */
static void session_clear(session *s, const tnmtl_dataset *data)
{
    memset(s, 0, sizeof *s);
    s->val_step = -1;
    if (data) {
        s->ds = *data;
        s->borrowed_data = 1;
    }
}

tnmtl_status session_start(session *s, const run_options *o, const tnmtl_dataset *data, tnmtl_error *err)
{
    session_clear(s, data);
    s->opts = *o;
    tnmtl_status st = build(s, err);
    if (!st) st = tnmtl_mtl_init(s->model, s->opts.seed, err);
    if (st) session_free(s);
    return st;
}

tnmtl_status session_resume(session *s, const char *dir, const tnmtl_dataset *data, tnmtl_error *err)
{
    session_clear(s, data);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, TNMTL_CHECKPOINT_FILE);
    char *json = NULL;
    tnmtl_status st = tnmtl_checkpoint_read_config(path, &json, err);
    if (!st) {
        st = run_options_from_json(json, &s->opts, err);
        if (st) tnmtl_error_prefix(err, "%s", path);
    }
    free(json);
    if (!st) st = build(s, err);
    if (!st) st = tnmtl_checkpoint_load(path, s->model, &s->optim, err);
    if (!st) st = history_load(&s->history, dir, s->optim.step, err);
    if (st) session_free(s);
    return st;
}

tnmtl_status session_verify_folder(const session *s, const char *dir, tnmtl_error *err)
{
    char sig[4096];
    tnmtl_checkpoint_signature(s->model, sig, sizeof sig);
    return runfolder_verify(dir, s->opts.run_id, sig, 0, err);
}

typedef struct progress_state {
    int tty, quiet;
    int64_t every;          /* plain-line period in steps */
    const char *out_dir;
    session *s;
    int64_t last_saved;     /* step of the last checkpoint */
    int64_t first_step;     /* step training (re)started from */
    double elapsed0;        /* training seconds of earlier sessions */
    tnmtl_status history_st; /* first failure to record the history */
    tnmtl_error history_err;
    volatile sig_atomic_t *stop; /* the caller's stop request (signals)  */
    volatile int halt;      /* what tnmtl_train polls: the stop request, or s->halt's verdict */
} progress_state;

static void format_duration(double sec, char *buf, size_t cap)
{
    if (!(sec >= 0) || sec > 1e7) snprintf(buf, cap, "?");
    else if (sec < 60) snprintf(buf, cap, "%.0fs", sec);
    else if (sec < 3600) snprintf(buf, cap, "%dm%02ds", (int)sec / 60, (int)sec % 60);
    else snprintf(buf, cap, "%dh%02dm", (int)sec / 3600, ((int)sec % 3600) / 60);
}

static double mean_of(const double *x, int n);
/* The mean of x[n], NaN if any is. */
static double strict_mean(const double *x, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++) sum += x[i];
    return sum / n;
}

/* Appends the step to the run's history (with --out); the validation
 * metric at the last step, at checkpoints and, unless s->val_at_end_only,
 * every ps->every steps. */
static void record_history(progress_state *ps, const tnmtl_progress *p)
{
    session *s = ps->s;
    const int T = s->ds.n_tasks;
    history_row row = {p->step, p->loss, p->reg, NAN, ps->elapsed0 + p->elapsed};
    const int due = p->step == p->steps || (!s->val_at_end_only && p->step % ps->every == 0) ||
                    (s->opts.save_every > 0 && p->step % s->opts.save_every == 0);
    if (due && s->split.begin[TNMTL_PART_VAL][T] > 0) {
        double *metric = malloc((size_t)T * sizeof *metric), loss;
        if (metric && !tnmtl_mtl_evaluate(s->model, &s->ds, &s->split, TNMTL_PART_VAL, metric, &loss,
                                          &ps->history_err)) {
            row.val_metric = mean_of(metric, T);
            s->val_step = p->step;
            s->val_mean = strict_mean(metric, T);
            if (s->halt && isfinite(row.val_metric) && s->halt(s->halt_user, p->step, row.val_metric))
                s->halted_at = p->step;
        }
        free(metric);
    }
    if (!ps->history_st) ps->history_st = history_add(&s->history, &row, &ps->history_err);
}

static void on_progress(void *user, const tnmtl_progress *p)
{
    progress_state *ps = user;
    if (ps->out_dir) record_history(ps, p);
    ps->halt = (ps->stop && *ps->stop) || ps->s->halted_at > 0;
    if (ps->quiet) return;
    const int64_t done = p->step, total = p->steps;
    /* elapsed covers the steps since this session (re)started training. */
    const double per_step = p->elapsed / (double)(done - ps->first_step);
    char elapsed[32], eta[32];
    format_duration(p->elapsed, elapsed, sizeof elapsed);
    format_duration(per_step * (double)(total - done), eta, sizeof eta);
    if (ps->tty) {
        enum { WIDTH = 30 };
        char bar[WIDTH + 1];
        int filled = total > 0 ? (int)(WIDTH * done / total) : WIDTH;
        for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
        bar[WIDTH] = '\0';
        fprintf(stderr, "\r[%s] step %lld/%lld  loss %.4f  reg %.4f  %s left ", bar, (long long)done, (long long)total,
                p->loss, p->reg, eta);
        if (done == total) fputc('\n', stderr);
        fflush(stderr);
    } else if (done == total || done % ps->every == 0) {
        fprintf(stderr, "step %lld/%lld  loss %.4f  reg %.4f  elapsed %s  left %s\n", (long long)done,
                (long long)total, p->loss, p->reg, elapsed, eta);
    }
}

tnmtl_status session_save(const session *s, const char *dir, tnmtl_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, TNMTL_CHECKPOINT_FILE);
    char *json = run_options_to_json(&s->opts);
    if (!json) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory writing the configuration");
    runfolder *rf = s->folder; /* a claimed run folder: its switch and manifest around the save */
    tnmtl_status st = rf ? runfolder_checkpoint_begin(rf, err) : TNMTL_OK;
    if (!st) st = tnmtl_checkpoint_save(path, s->model, &s->optim, json, err);
    free(json);
    if (!st && rf) {
        char sig[4096];
        tnmtl_checkpoint_signature(s->model, sig, sizeof sig);
        st = runfolder_checkpoint_end(rf, sig, err);
    }
    return st;
}

/* history.csv, recorded in a claimed folder's manifest like every file of the run. */
static tnmtl_status save_history(const session *s, const char *dir, tnmtl_error *err)
{
    char *names[1] = {HISTORY_FILE};
    runfolder *rf = s->folder;
    tnmtl_status st = rf ? runfolder_files_begin(rf, names, 1, err) : TNMTL_OK;
    if (!st) st = history_write(&s->history, dir, err);
    if (!st && rf) st = runfolder_files_end(rf, names, 1, err);
    return st;
}

tnmtl_status session_take_history(session *s, const char *from_dir, const char *dir, tnmtl_error *err)
{
    history_free(&s->history);
    tnmtl_status st = history_load(&s->history, from_dir, s->optim.step, err);
    return st ? st : save_history(s, dir, err);
}

static tnmtl_status on_checkpoint(void *user, int64_t step, tnmtl_error *err)
{
    progress_state *ps = user;
    if (ps->history_st) { /* a history row could not be recorded */
        *err = ps->history_err;
        return ps->history_st;
    }
    /* The history is written just before the checkpoint, so it always reaches
     * its step; a history (and manifest) this call creates goes again if the
     * checkpoint fails (a failed first save leaves the folder as it was).  A run replacing
     * another (--overwrite) writes nothing there before its first checkpoint
     * has switched the folder to it, so its history follows that one. */
    const int after = ps->s->folder && ps->s->folder->replacing;
    char hpath[4096];
    snprintf(hpath, sizeof hpath, "%s/%s", ps->out_dir, HISTORY_FILE);
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/%s", ps->out_dir, RUNFOLDER_MANIFEST);
    const int fresh = access(hpath, F_OK) != 0, fresh_manifest = access(mpath, F_OK) != 0;
    tnmtl_status st = after ? TNMTL_OK : save_history(ps->s, ps->out_dir, err);
    if (!st) st = session_save(ps->s, ps->out_dir, err);
    if (!st && after) st = save_history(ps->s, ps->out_dir, err);
    if (!st) {
        ps->last_saved = step;
    } else if (!after) { /* what this call created goes again */
        if (fresh) remove(hpath);
        if (fresh_manifest) remove(mpath);
    }
    return st;
}

/* Parameters and optimiser moments all finite: a checkpoint of them loads. */
static int state_is_finite(const session *s)
{
    const size_t n = (size_t)s->model->n_params, held = (size_t)s->optim.n_held;
    return tnmtl_first_nonfinite_f32(s->model->params, n) < 0 &&
           (!s->optim.m || tnmtl_first_nonfinite_f32(s->optim.m, held) < 0) &&
           (!s->optim.v || tnmtl_first_nonfinite_f32(s->optim.v, held) < 0);
}

tnmtl_status session_train(session *s, const char *out_dir, int quiet, volatile sig_atomic_t *stop,
                           tnmtl_error *err)
{
    progress_state ps = {0};
    ps.tty = isatty(STDERR_FILENO);
    ps.quiet = quiet;
    ps.every = session_curve_every(s->opts.steps);
    ps.out_dir = out_dir;
    ps.s = s;
    ps.last_saved = s->optim.step;
    ps.first_step = s->optim.step;
    ps.elapsed0 = history_elapsed(&s->history);
    ps.stop = stop;
    ps.halt = stop && *stop;
    s->halted_at = 0;
    if (s->halt && out_dir) { /* resumed: the curve so far goes to halt, and where it halted before it stays */
        int64_t halted = 0;
        for (size_t i = 0; i < s->history.n; i++) {
            const history_row *r = &s->history.rows[i];
            if (isfinite(r->val_metric)) halted = s->halt(s->halt_user, r->step, r->val_metric) ? r->step : 0;
        }
        if (halted > 0 && halted == s->optim.step) {
            s->halted_at = s->optim.step;
            return TNMTL_OK;
        }
    }
    tnmtl_train_config tc = {0};
    tc.steps = s->opts.steps;
    tc.batch = s->opts.batch;
    tc.seed = s->opts.seed;
    tc.save_every = s->opts.save_every;
    tc.progress = on_progress;
    tc.progress_user = &ps;
    tc.checkpoint = out_dir && cli_is_writer() ? on_checkpoint : NULL; /* tnmtl_train gathers the model first */
    tc.checkpoint_user = &ps;
    tc.stop = &ps.halt;
    if (!quiet)
        fprintf(stderr, "training %s on %s: %d tasks, %lld parameters, steps %lld..%lld\n",
                tnmtl_method_name(s->opts.method), s->ds.source, s->ds.n_tasks, (long long)s->model->n_params,
                (long long)s->optim.step, (long long)s->opts.steps);
    const double t0 = tnmtl_now();
    const uint64_t bytes0 = tnmtl_dist_bytes(cli_dist);
    const int64_t step0 = s->optim.step;
    tnmtl_status st = tnmtl_train(s->model, &s->optim, &s->ds, &s->split, &tc, err);
    s->train_seconds = tnmtl_now() - t0;
    if (tnmtl_dist_size(cli_dist) > 1 && s->optim.step > step0) {
        s->received_per_step = (double)(tnmtl_dist_bytes(cli_dist) - bytes0) / (double)(s->optim.step - step0);
        const tnmtl_dataset *ds = &s->ds;
        const int64_t held = held_inputs(ds);
        const double input_bytes = (double)held * (double)tnmtl_dataset_example_size(ds) * (ds->pixels ? 1 : 4);
        if (!quiet)
            fprintf(stderr, "%d processes (this one: tasks %d..%d, inputs of %lld of %lld examples, %.1f MB, "
                    "optimiser state %lld bytes): %.1f kB received per step\n", tnmtl_dist_size(cli_dist),
                    s->model->task_begin, s->model->task_end - 1, (long long)held, (long long)ds->n_examples,
                    input_bytes / 1e6, (long long)tnmtl_optim_bytes(&s->optim), s->received_per_step / 1e3);
    }
    if (st && ps.tty && !quiet) fputc('\n', stderr);
    const int interrupted = st && stop && *stop, diverged = st == TNMTL_ERR_NUMERIC;
    if (st && !interrupted && !diverged && s->halted_at > 0 && s->optim.step == s->halted_at) {
        /* s->halt ended it: its step is kept as a checkpoint, like an end */
        if (!out_dir || !cli_is_writer() || s->optim.step == ps.last_saved) return TNMTL_OK;
        return on_checkpoint(&ps, s->optim.step, err);
    }
    if ((interrupted || diverged) && out_dir && s->folder && s->folder->replacing) {
        /* Stopped before its first checkpoint: the earlier run is kept. */
        const size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, "; stopped before its first checkpoint, so %s still holds the "
                 "earlier run, unchanged", out_dir);
    } else if ((interrupted || diverged) && out_dir && cli_is_writer() && s->optim.step > ps.last_saved &&
               state_is_finite(s)) {
        /* Interrupted, or diverged (the parameters are those of the last good
         * step): keep the work done since the last checkpoint. */
        tnmtl_error e2 = {0};
        if (on_checkpoint(&ps, s->optim.step, &e2) == TNMTL_OK) {
            if (interrupted) {
                tnmtl_fail(err, TNMTL_ERR_INVALID, "interrupted at step %lld; checkpoint saved in %s",
                           (long long)s->optim.step, out_dir);
            } else {
                const size_t n = strlen(err->msg);
                snprintf(err->msg + n, sizeof err->msg - n, "; checkpoint of step %lld saved in %s",
                         (long long)s->optim.step, out_dir);
            }
        }
    }
    return st;
}

tnmtl_status session_validation_mean(session *s, double *out, tnmtl_error *err)
{
    if (s->val_step == s->optim.step) { /* session_train measured it at this step */
        *out = s->val_mean;
        return TNMTL_OK;
    }
    const int T = s->ds.n_tasks;
    double *metric = tnmtl_calloc((size_t)T, sizeof(double), "metrics", err), loss;
    if (!metric) return TNMTL_ERR_NOMEM;
    tnmtl_status st = tnmtl_mtl_evaluate(s->model, &s->ds, &s->split, TNMTL_PART_VAL, metric, &loss, err);
    *out = st ? NAN : strict_mean(metric, T);
    free(metric);
    return st;
}

static double mean_of(const double *x, int n)
{
    double s = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) {
            s += x[i];
            k++;
        }
    return k ? s / k : NAN;
}

static cJSON *number_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

/* The files session_evaluate writes (tnmtl_sharing_report_write's, then
 * results.json) into names[] (malloc'd); their number, -1 out of memory. */
static int report_file_names(const tnmtl_sharing_report *rep, char **names)
{
    int n = 0, failed = 0;
    names[n++] = strdup("sharing.json");
    for (int which = 0; which < 2; which++) {
        const char *kind = which ? "relatedness" : "similarity";
        char name[64];
        snprintf(name, sizeof name, "%s.csv", kind);
        names[n++] = strdup(name);
        for (int k = 0; k < rep->n_layers; k++) {
            snprintf(name, sizeof name, "%s_layer%d.csv", kind, rep->layers[k].layer);
            names[n++] = strdup(name);
        }
    }
    names[n++] = strdup("results.json");
    for (int i = 0; i < n; i++) failed |= !names[i];
    if (failed) {
        for (int i = 0; i < n; i++) free(names[i]);
        return -1;
    }
    return n;
}

tnmtl_status session_evaluate(session *s, const char *out_dir, cJSON **result, tnmtl_error *err)
{
    const int T = s->ds.n_tasks;
    const int cls = s->ds.kind == TNMTL_TARGET_CLASS;
    double *metric = tnmtl_calloc((size_t)T, sizeof(double), "metrics", err);
    if (!metric) return TNMTL_ERR_NOMEM;
    cJSON *r = cJSON_CreateObject();
    if (s->opts.run_id[0]) { /* the run's identity (cli/runfolder.h) */
        char sig[4096];
        tnmtl_checkpoint_signature(s->model, sig, sizeof sig);
        cJSON_AddStringToObject(r, "run_id", s->opts.run_id);
        cJSON_AddStringToObject(r, "signature", sig);
    }
    cJSON_AddStringToObject(r, "method", tnmtl_method_name(s->opts.method));
    cJSON_AddStringToObject(r, "data", s->ds.source);
    cJSON_AddStringToObject(r, "arch", s->opts.arch);
    cJSON_AddNumberToObject(r, "tasks", T);
    cJSON *tn = cJSON_AddArrayToObject(r, "task_names"), *cn = s->ds.class_names ? cJSON_AddArrayToObject(r, "class_names") : NULL;
    for (int t = 0; t < T; t++) {
        const char *name = s->ds.task_names ? s->ds.task_names[t] : NULL;
        cJSON_AddItemToArray(tn, name ? cJSON_CreateString(name) : cJSON_CreateNull());
        cJSON *classes = cn ? cJSON_CreateArray() : NULL;
        for (int k = 0; classes && k < s->ds.n_classes[t]; k++) {
            const char *c = s->ds.class_names[t] ? s->ds.class_names[t][k] : NULL;
            cJSON_AddItemToArray(classes, c ? cJSON_CreateString(c) : cJSON_CreateNull());
        }
        if (classes) cJSON_AddItemToArray(cn, classes);
    }
    cJSON_AddNumberToObject(r, "steps", (double)s->optim.step);
    cJSON_AddNumberToObject(r, "seed", (double)s->opts.seed);
    cJSON_AddNumberToObject(r, "train_seconds", s->train_seconds);
    if (tnmtl_dist_size(cli_dist) > 1) {
        cJSON_AddNumberToObject(r, "processes", tnmtl_dist_size(cli_dist));
        if (s->received_per_step > 0) cJSON_AddNumberToObject(r, "received_bytes_per_step", s->received_per_step);
        cJSON_AddNumberToObject(r, "optimizer_bytes", (double)tnmtl_optim_bytes(&s->optim)); /* process 0's part */
        cJSON_AddNumberToObject(r, "input_examples", (double)held_inputs(&s->ds));         /* process 0's too  */
    }
    cJSON_AddStringToObject(r, "metric", cls ? "accuracy" : "rmse");
    char *config = run_options_to_json(&s->opts);
    cJSON_AddItemToObject(r, "config", config ? cJSON_Parse(config) : cJSON_CreateNull());
    free(config);
    static const char *const part_names[] = {"train", "val", "test"};
    tnmtl_status st = TNMTL_OK;
    for (int p = 0; p < 3 && !st; p++) {
        if (s->split.begin[p][T] == 0) continue; /* empty part */
        double loss;
        st = tnmtl_mtl_evaluate(s->model, &s->ds, &s->split, (tnmtl_part)p, metric, &loss, err);
        if (st) break;
        cJSON *part = cJSON_AddObjectToObject(r, part_names[p]);
        cJSON_AddItemToObject(part, cls ? "mean_accuracy" : "mean_rmse", number_or_null(mean_of(metric, T)));
        cJSON_AddItemToObject(part, "loss", number_or_null(loss));
        cJSON *per = cJSON_AddArrayToObject(part, "per_task");
        for (int t = 0; t < T; t++) cJSON_AddItemToArray(per, number_or_null(metric[t]));
    }
    free(metric);
    tnmtl_sharing_report rep;
    if (!st) st = tnmtl_sharing_report_make(s->model, &rep, err);
    if (!st && out_dir && (st = tnmtl_sharing_report_spectra(s->model, &rep, err))) tnmtl_sharing_report_free(&rep);
    if (st) {
        cJSON_Delete(r);
        return st;
    }
    cJSON *sh = cJSON_AddArrayToObject(r, "sharing");
    for (int k = 0; k < rep.n_layers; k++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddNumberToObject(l, "layer", rep.layers[k].layer);
        cJSON_AddStringToObject(l, "name", rep.layers[k].name);
        cJSON_AddNumberToObject(l, "rho", rep.layers[k].rho);
        cJSON_AddNumberToObject(l, "effective_rank", rep.layers[k].eff_rank);
        cJSON_AddBoolToObject(l, "hard_shared", rep.layers[k].shared);
        cJSON_AddItemToArray(sh, l);
    }
    if (out_dir && cli_is_writer()) {
        char *names[2 * TNMTL_MAX_LAYERS + 4];
        const int n = report_file_names(&rep, names);
        st = n < 0 ? tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory") : TNMTL_OK;
        if (!st && s->folder) st = runfolder_files_begin(s->folder, names, n, err);
        if (!st) st = tnmtl_sharing_report_write(&rep, s->ds.task_names, out_dir, err);
        if (!st) {
            char path[4096], *text = cJSON_Print(r);
            snprintf(path, sizeof path, "%s/results.json", out_dir);
            st = text ? tnmtl_write_buffer_atomic(path, text, strlen(text), err) : TNMTL_ERR_NOMEM;
            free(text);
        }
        if (!st && s->folder) st = runfolder_files_end(s->folder, names, n, err);
        for (int i = 0; i < n; i++) free(names[i]);
    }
    tnmtl_sharing_report_free(&rep);
    if (st) {
        cJSON_Delete(r);
        return st;
    }
    *result = r;
    return TNMTL_OK;
}

static void print_task(FILE *f, char *const *names, int t)
{
    if (names && names[t]) fputs(names[t], f);
    else fprintf(f, "task %d", t);
}

/* "most related: a ~ b 0.78, c ~ d 0.70, e ~ f 0.56": the three task pairs
 * of highest relatedness R[T][T] (symmetric), names when known. */
static void print_most_related(FILE *f, int T, const double *R, char *const *names)
{
    enum { TOP = 3 };
    int best_a[TOP], best_b[TOP], n = 0;
    for (int a = 0; a < T; a++) {
        for (int b = a + 1; b < T; b++) {
            int k = n < TOP ? n++ : TOP; /* insertion into the sorted top list */
            while (k > 0 && R[a * T + b] > R[best_a[k - 1] * T + best_b[k - 1]]) {
                if (k < TOP) best_a[k] = best_a[k - 1], best_b[k] = best_b[k - 1];
                k--;
            }
            if (k < TOP) best_a[k] = a, best_b[k] = b;
        }
    }
    fprintf(f, "  %-22s most related:", "");
    for (int k = 0; k < n; k++) {
        fprintf(f, "%s ", k ? "," : "");
        print_task(f, names, best_a[k]);
        fputs(" ~ ", f);
        print_task(f, names, best_b[k]);
        fprintf(f, " %.2f", R[best_a[k] * T + best_b[k]]);
    }
    fputc('\n', f);
}

void session_print_sharing(session *s, FILE *f)
{
    tnmtl_sharing_report rep;
    tnmtl_error err;
    if (tnmtl_sharing_report_make(s->model, &rep, &err)) return;
    const int T = rep.n_tasks;
    fprintf(f, "sharing per layer: rho = mean cosine of the task weights (1 shared, ~0 independent);\n"
               "relatedness = mean overlap of the tasks' input subspaces (sharing.json, *.csv in --out)\n");
    fprintf(f, "  %-22s %8s %16s %12s\n", "layer", "rho", "effective rank", "relatedness");
    for (int k = 0; k < rep.n_layers; k++) {
        const tnmtl_layer_sharing *L = &rep.layers[k];
        double rel = 0;
        for (int a = 0; a < T; a++)
            for (int b = a + 1; b < T; b++) rel += L->relatedness[a * T + b];
        rel = T > 1 ? rel / (0.5 * T * (T - 1)) : 1;
        fprintf(f, "  %-22s %8.3f %9.2f / %-4d %12.3f%s\n", L->name, L->rho, L->eff_rank, T, rel,
                L->shared ? "  (hard-shared)" : "");
        if (!L->shared && T >= 3) print_most_related(f, T, L->relatedness, s->ds.task_names);
    }
    tnmtl_sharing_report_free(&rep);
}
