/* cmd_compare.c - `tnmtl compare`: STL, UD-MTL and TNRMTL side by side over
 * seeds, as a Markdown table (stdout) and CSV.  With --out every run keeps
 * its own folder; a killed comparison restarted with the same command skips
 * the finished runs and resumes the unfinished one from its checkpoint. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "dist_internal.h"
#include "run.h"
#include "runfolder.h"
#include "session.h"
#include "tnmtl/checkpoint.h"
#include "util.h"

#define MAX_METHODS 5
#define MAX_SEEDS 100
#define MAX_REPORTED_LAYERS 16

static const char compare_usage[] =
    "usage: tnmtl compare [OPTIONS]\n\n"
    "Trains every method on the same data, splits and initialisations, one run\n"
    "per method and seed, and prints a table: mean (std) held-out accuracy (or\n"
    "RMSE), the paired difference to STL, per-layer sharing (rho: the mean\n"
    "cosine of the task weights, 1 = shared; rank: the effective rank of the\n"
    "task-mode unfolding, 1 = shared, T = independent), training time.\n\n"
    "  --methods LIST       comma list of stl,ud,laf,tucker,tt (default all five)\n"
    "  --seeds LIST         seeds: 0-9 or 0,1,2 (default 0); each seed sets --seed\n"
    "                       and the split\n"
    "  --out DIR            write table.md, table.csv and one folder per run\n"
    "                       (rerunning the same command resumes a killed comparison;\n"
    "                       one writer at a time; runs of other options are refused)\n"
    "  --overwrite          replace runs in --out made with other options (each is kept\n"
    "                       until its replacement's first checkpoint) and the table\n"
    "  --quiet              no progress output\n\n"
    "Every option of 'tnmtl train' applies to all runs.\n";

typedef struct run_result {
    int done;
    double metric;                     /* test mean accuracy or RMSE */
    double val_metric;                 /* the same on the validation part (NaN if none) */
    double seconds;
    int n_layers;
    double rho[MAX_REPORTED_LAYERS];
    double eff_rank[MAX_REPORTED_LAYERS]; /* of the task-mode unfolding, 1..T */
    char layer_name[MAX_REPORTED_LAYERS][48];
} run_result;

static tnmtl_status parse_seeds(const char *s, long *out, int *n, tnmtl_error *err)
{
    *n = 0;
    char buf[512];
    if (strlen(s) >= sizeof buf) return tnmtl_fail(err, TNMTL_ERR_INVALID, "--seeds: list too long");
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long lo, hi;
        char *dash = strchr(tok, '-');
        tnmtl_status st;
        if (dash) {
            *dash = '\0';
            if ((st = cli_parse_int("--seeds", tok, 0, 2147483647L, &lo, err)) ||
                (st = cli_parse_int("--seeds", dash + 1, lo, 2147483647L, &hi, err)))
                return st;
        } else {
            if ((st = cli_parse_int("--seeds", tok, 0, 2147483647L, &lo, err))) return st;
            hi = lo;
        }
        for (long v = lo; v <= hi; v++) {
            if (*n >= MAX_SEEDS) return tnmtl_fail(err, TNMTL_ERR_INVALID, "--seeds: at most %d seeds", MAX_SEEDS);
            out[(*n)++] = v;
        }
    }
    if (*n == 0) return tnmtl_fail(err, TNMTL_ERR_INVALID, "--seeds: empty list");
    return TNMTL_OK;
}

static void collect(const cJSON *r, int cls, run_result *out)
{
    const cJSON *test = cJSON_GetObjectItemCaseSensitive(r, "test");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(test, cls ? "mean_accuracy" : "mean_rmse");
    out->metric = cJSON_IsNumber(m) ? m->valuedouble : NAN;
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(r, "val");
    const cJSON *vm = cJSON_GetObjectItemCaseSensitive(val, cls ? "mean_accuracy" : "mean_rmse");
    out->val_metric = cJSON_IsNumber(vm) ? vm->valuedouble : NAN;
    const cJSON *secs = cJSON_GetObjectItemCaseSensitive(r, "train_seconds");
    out->seconds = cJSON_IsNumber(secs) ? secs->valuedouble : NAN;
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(r, "sharing"), *l;
    out->n_layers = 0;
    cJSON_ArrayForEach(l, sh)
    {
        if (out->n_layers >= MAX_REPORTED_LAYERS) break;
        const cJSON *rho = cJSON_GetObjectItemCaseSensitive(l, "rho");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(l, "name");
        const cJSON *erank = cJSON_GetObjectItemCaseSensitive(l, "effective_rank");
        out->rho[out->n_layers] = cJSON_IsNumber(rho) ? rho->valuedouble : NAN;
        out->eff_rank[out->n_layers] = cJSON_IsNumber(erank) ? erank->valuedouble : NAN;
        snprintf(out->layer_name[out->n_layers], sizeof out->layer_name[0], "%s",
                 cJSON_IsString(name) ? name->valuestring : "?");
        out->n_layers++;
    }
    out->done = 1;
}

/* A run configuration (JSON) without its run id, as text: what two runs of
 * the same options share. */
static char *options_of(const cJSON *config)
{
    cJSON *c = cJSON_Duplicate(config, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(c, "run_id");
    char *text = c ? cJSON_PrintUnformatted(c) : NULL;
    cJSON_Delete(c);
    return text;
}

static tnmtl_status other_options(const char *path, const char *dir, tnmtl_error *err)
{
    char desc[1024];
    if (!runfolder_describe(dir, desc, sizeof desc)) snprintf(desc, sizeof desc, "a run");
    return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s holds %s made with other options (%s); use another --out, or "
                      "--overwrite to replace it (kept until the new run's first checkpoint)", dir, desc, path);
}

/* What DIR holds for a run with configuration `want` (JSON): 0 nothing,
 * 1 an unfinished run (checkpoint), 2 a finished run (results.json, read into
 * out, its run id into run_id[cap]); -1 (err filled) a run made with other
 * options. */
static int stored_run(const char *dir, const char *want, int cls, run_result *out, char *run_id, size_t cap,
                      tnmtl_error *err)
{
    char path[8192];
    unsigned char *text = NULL;
    size_t len;
    char *config = NULL;
    snprintf(path, sizeof path, "%s/results.json", dir);
    if (tnmtl_read_file(path, 1 << 24, &text, &len, NULL) == TNMTL_OK) {
        cJSON *r = cJSON_Parse((const char *)text);
        free(text);
        config = r ? options_of(cJSON_GetObjectItemCaseSensitive(r, "config")) : NULL;
        int same = config && !strcmp(config, want);
        free(config);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "run_id");
        snprintf(run_id, cap, "%s", cJSON_IsString(id) ? id->valuestring : "");
        if (same) collect(r, cls, out);
        cJSON_Delete(r);
        if (!same) {
            other_options(path, dir, err);
            return -1;
        }
        return 2;
    }
    snprintf(path, sizeof path, "%s/%s", dir, TNMTL_CHECKPOINT_FILE);
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    if (tnmtl_checkpoint_read_config(path, &config, err)) return -1;
    /* Same run, whatever step it reached. */
    cJSON *c = cJSON_Parse(config);
    free(config);
    config = c ? options_of(c) : NULL;
    cJSON_Delete(c);
    int same = config && !strcmp(config, want);
    free(config);
    if (!same) {
        other_options(path, dir, err);
        return -1;
    }
    return 1;
}

static void mean_std(const double *x, int n, double *mean, double *sd)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = n ? s / n : NAN;
    for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

typedef struct table_job {
    int n_methods, n_seeds, cls;
    const tnmtl_method *methods;
    const long *seeds;
    run_result (*res)[MAX_SEEDS];
    int csv;
} table_job;

static int write_table(FILE *f, void *user)
{
    const table_job *j = user;
    const double scale = j->cls ? 100.0 : 1.0;
    int stl = -1;
    for (int m = 0; m < j->n_methods; m++)
        if (j->methods[m] == TNMTL_METHOD_STL) stl = m;
    const run_result *first = &j->res[0][0];
    const int has_val = isfinite(first->val_metric);
    if (j->csv) {
        fprintf(f, "method,seeds,mean_%s,std,diff_vs_stl,diff_std,wins_vs_stl,train_seconds,val_mean",
                j->cls ? "accuracy_pct" : "rmse");
        for (int k = 0; k < first->n_layers; k++) fprintf(f, ",rho_layer%d", k);
        for (int k = 0; k < first->n_layers; k++) fprintf(f, ",erank_layer%d", k);
        fputc('\n', f);
    } else {
        fprintf(f, "| method | %s (std) | vs STL, paired (std) | wins | train s |", j->cls ? "test accuracy %" : "test RMSE");
        if (has_val) fprintf(f, " validation |");
        for (int k = 0; k < first->n_layers; k++) fprintf(f, " rho / rank %s |", first->layer_name[k]);
        fprintf(f, "\n|---|---|---|---|---|%s", has_val ? "---|" : "");
        for (int k = 0; k < first->n_layers; k++) fprintf(f, "---|");
        fputc('\n', f);
    }
    for (int m = 0; m < j->n_methods; m++) {
        double x[MAX_SEEDS], d[MAX_SEEDS], secs[MAX_SEEDS], v[MAX_SEEDS], mean, sd, dmean = NAN, dsd = NAN, tmean, tsd,
            vmean, vsd;
        int wins = 0;
        for (int s = 0; s < j->n_seeds; s++) {
            x[s] = scale * j->res[m][s].metric;
            secs[s] = j->res[m][s].seconds;
            v[s] = scale * j->res[m][s].val_metric;
            if (stl >= 0) {
                d[s] = x[s] - scale * j->res[stl][s].metric;
                wins += j->cls ? d[s] > 0 : d[s] < 0;
            }
        }
        mean_std(x, j->n_seeds, &mean, &sd);
        mean_std(secs, j->n_seeds, &tmean, &tsd);
        mean_std(v, j->n_seeds, &vmean, &vsd);
        if (stl >= 0 && m != stl) mean_std(d, j->n_seeds, &dmean, &dsd);
        const char *name = tnmtl_method_name(j->methods[m]);
        if (j->csv) {
            fprintf(f, "%s,%d,%.4f,%.4f,%.4f,%.4f,%d,%.2f,%.4f", name, j->n_seeds, mean, sd, dmean, dsd,
                    (stl >= 0 && m != stl) ? wins : 0, tmean, vmean);
        } else {
            fprintf(f, "| %s | %.2f (%.2f) | ", name, mean, sd);
            if (stl >= 0 && m != stl) fprintf(f, "%+.2f (%.2f) | %d/%d |", dmean, dsd, wins, j->n_seeds);
            else fprintf(f, "- | - |");
            fprintf(f, " %.1f |", tmean);
            if (has_val) fprintf(f, " %.2f |", vmean);
        }
        double rho[MAX_REPORTED_LAYERS], erank[MAX_REPORTED_LAYERS];
        for (int k = 0; k < first->n_layers; k++) {
            double r[MAX_SEEDS], e[MAX_SEEDS], sd_unused;
            for (int s = 0; s < j->n_seeds; s++) {
                r[s] = j->res[m][s].rho[k];
                e[s] = j->res[m][s].eff_rank[k];
            }
            mean_std(r, j->n_seeds, &rho[k], &sd_unused);
            mean_std(e, j->n_seeds, &erank[k], &sd_unused);
        }
        if (j->csv) {
            for (int k = 0; k < first->n_layers; k++) fprintf(f, ",%.4f", rho[k]);
            for (int k = 0; k < first->n_layers; k++) fprintf(f, ",%.2f", erank[k]);
        } else {
            for (int k = 0; k < first->n_layers; k++) fprintf(f, " %.3f / %.1f |", rho[k], erank[k]);
        }
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}

/* What makes a comparison the same one: the options of its runs, less
 * method and seed.  Other methods or seeds extend it (its runs are reused);
 * the tables describe the last command's runs. */
static char *comparison_identity(const run_options *o)
{
    char *base = run_options_to_json(o);
    cJSON *opts = base ? cJSON_Parse(base) : NULL;
    free(base);
    cJSON_DeleteItemFromObjectCaseSensitive(opts, "method");
    cJSON_DeleteItemFromObjectCaseSensitive(opts, "seed");
    char *text = opts ? cJSON_PrintUnformatted(opts) : NULL;
    cJSON_Delete(opts);
    return text;
}

typedef struct compare_args {
    run_options o;
    tnmtl_method methods[MAX_METHODS];
    int n_methods, n_seeds, quiet, overwrite;
    long seeds[MAX_SEEDS];
    const char *out_dir;
} compare_args;

/* The command line into *a; -1 to go on, else the exit code (--help, or a
 * usage error, already printed). */
static int parse_compare_args(int argc, char **argv, compare_args *a)
{
    *a = (compare_args){.methods = {TNMTL_METHOD_STL, TNMTL_METHOD_UD, TNMTL_METHOD_LAF, TNMTL_METHOD_TUCKER,
                                    TNMTL_METHOD_TT},
                        .n_methods = 5, .n_seeds = 1};
    run_options_init(&a->o);
    tnmtl_error err = {0};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            printf("%s\n%s", compare_usage, run_options_help);
            return EXIT_OK;
        }
        if (!strcmp(arg, "--quiet") || !strcmp(arg, "--overwrite")) {
            *(!strcmp(arg, "--quiet") ? &a->quiet : &a->overwrite) = 1;
            continue;
        }
        if (!strcmp(arg, "--methods") || !strcmp(arg, "--seeds") || !strcmp(arg, "--out")) {
            if (i + 1 >= argc) return cli_usage_error("compare", "%s needs a value", arg);
            const char *v = argv[++i];
            tnmtl_status st = TNMTL_OK;
            if (!strcmp(arg, "--methods")) st = cli_parse_methods(v, a->methods, MAX_METHODS, &a->n_methods, &err);
            else if (!strcmp(arg, "--seeds")) st = parse_seeds(v, a->seeds, &a->n_seeds, &err);
            else a->out_dir = v;
            if (st) return cli_usage_error("compare", "%s", err.msg);
            continue;
        }
        if (!strcmp(arg, "--method") || !strcmp(arg, "--seed"))
            return cli_usage_error("compare", "use --methods and --seeds with compare");
        int r = run_parse_option(&a->o, argc, argv, &i, &err);
        if (r < 0) return cli_usage_error("compare", "%s", err.msg);
        if (r == 0) return cli_usage_error("compare", "unknown option '%s'", arg);
    }
    if (a->overwrite && !a->out_dir) return cli_usage_error("compare", "--overwrite needs --out DIR");
    return -1;
}

/* The comparison's folder, claimed before anything is loaded: a second
 * writer, a folder of something else or of another comparison is refused at
 * once.  Under mpirun the writer holds the folders for every process. */
static tnmtl_status claim_compare_folder(const compare_args *a, runfolder *top, tnmtl_error *err)
{
    if (!a->out_dir || !cli_is_writer()) return TNMTL_OK;
    char *identity = comparison_identity(&a->o);
    if (!identity) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory");
    tnmtl_status st = runfolder_claim(top, a->out_dir, "compare", a->overwrite ? RUNFOLDER_OVERWRITE : RUNFOLDER_RESUME,
                                      identity, err);
    free(identity);
    return st;
}

/* What the writer finds in a run's folder (stored_run), and so what every
 * process does with the run: -1 stop (err says why), 0 start it, 1 continue
 * it from its checkpoint, 2 read its finished result into *out.  The folder
 * stays claimed in *sub for 0 and 1.  Each run's folder is locked as well (a
 * `train --out` there waits its turn); what it holds decides: the same run is
 * continued, a run of other options is refused or, with --overwrite, replaced. */
static int run_folder_decision(const compare_args *a, const run_options *ro, const char *dir, int cls, runfolder *sub,
                               run_result *out, tnmtl_error *err)
{
    int stored = 0;
    char stored_id[64] = "";
    if (a->out_dir && cli_is_writer()) {
        char *want = run_options_to_json(ro);
        if (runfolder_claim(sub, dir, "run", RUNFOLDER_OVERWRITE, NULL, err)) stored = -1;
        else {
            stored = stored_run(dir, want, cls, out, stored_id, sizeof stored_id, err);
            if (stored == -1 && a->overwrite) stored = 0; /* replaced at the new run's first checkpoint */
            else if (stored == 0 && sub->replacing && !a->overwrite) { /* report files of some other run */
                other_options("files of a run", dir, err);
                stored = -1;
            }
        }
        free(want);
        if (stored == 2 && runfolder_verify(dir, stored_id, NULL, 1, err)) stored = -1;
        if (stored < 0 || stored == 2) runfolder_release(sub);
    }
    /* The writer read the folder: every process follows its decision. */
    tnmtl_dist_bcast_int(cli_dist, 0, &stored);
    return stored;
}

/* One method and seed of the comparison: read back when it finished
 * earlier, else started or continued, trained, evaluated, into *out.
 * Returns the exit code (EXIT_OK to go on). */
static int compare_run(const compare_args *a, tnmtl_dataset *ds, int cls, tnmtl_method method, long seed,
                       run_result *out)
{
    const char *name = tnmtl_method_name(method);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s-seed%ld", a->out_dir ? a->out_dir : ".", name, seed);
    tnmtl_error err = {0};
    run_options ro = a->o;
    ro.method = method;
    ro.seed = (uint64_t)seed;
    if (run_finalise(&ro, ds, &err)) return cli_fail("compare", &err);
    runfolder sub = {.lock_fd = -1};
    const int writer = cli_is_writer();
    const int stored = run_folder_decision(a, &ro, dir, cls, &sub, out, &err);
    if (stored < 0) return writer ? cli_fail("compare", &err) : EXIT_BAD_INPUT;
    if (stored == 2) {
        if (!a->quiet) fprintf(stderr, "%s seed %ld: finished earlier, read from %s\n", name, seed, dir);
        return EXIT_OK;
    }
    session sess;
    tnmtl_status st;
    if (stored == 1) { /* same configuration (stored_run), so the same data: no second copy */
        st = session_resume(&sess, dir, ds, &err);
        if (!st && (st = session_verify_folder(&sess, dir, &err))) session_free(&sess);
        if (!st && writer) runfolder_adopt(&sub, sess.opts.run_id);
    } else {
        st = session_start(&sess, &ro, ds, &err);
        if (!st && a->out_dir && writer) snprintf(sess.opts.run_id, sizeof sess.opts.run_id, "%s", sub.run_id);
    }
    if (!st && a->out_dir && writer) sess.folder = &sub;
    if (!st) {
        if (!a->quiet) fprintf(stderr, "== %s, seed %ld\n", name, seed);
        st = session_train(&sess, a->out_dir ? dir : NULL, a->quiet, &cli_stop_requested, &err);
    }
    cJSON *r = NULL;
    if (!st) st = session_evaluate(&sess, a->out_dir ? dir : NULL, &r, &err);
    if (!st) {
        collect(r, cls, out);
        cJSON_Delete(r);
    }
    session_free(&sess);
    runfolder_release(&sub);
    if (st && cli_stop_requested) {
        fprintf(stderr, "tnmtl compare: interrupted%s\n", a->out_dir ? "; run the same command again to resume" : "");
        return 130;
    }
    return st ? cli_fail("compare", &err) : EXIT_OK;
}

/* The table on stdout, and with --out as table.md and table.csv. */
static tnmtl_status write_tables(const compare_args *a, table_job *job, const char *source, runfolder *top,
                                 tnmtl_error *err)
{
    printf("\n%s on %s, %d seed(s), %s\n\n", job->cls ? "accuracy" : "RMSE", source, a->n_seeds, a->o.arch);
    write_table(stdout, job);
    if (!a->out_dir || !cli_is_writer()) return TNMTL_OK;
    char path[4096], *names[] = {"table.md", "table.csv"};
    tnmtl_status st = runfolder_files_begin(top, names, 2, err);
    snprintf(path, sizeof path, "%s/table.md", a->out_dir);
    if (!st) st = tnmtl_write_file_atomic(path, write_table, job, err);
    job->csv = 1;
    snprintf(path, sizeof path, "%s/table.csv", a->out_dir);
    if (!st) st = tnmtl_write_file_atomic(path, write_table, job, err);
    if (!st) st = runfolder_files_end(top, names, 2, err);
    return st;
}

int cmd_compare(int argc, char **argv)
{
    compare_args a;
    const int parsed = parse_compare_args(argc, argv, &a);
    if (parsed >= 0) return parsed;
    tnmtl_error err = {0};
    tnmtl_status st = run_finalise(&a.o, NULL, &err);
    if (st) return cli_fail("compare", &err);
    runfolder top = {.lock_fd = -1};
    if ((st = claim_compare_folder(&a, &top, &err))) return cli_fail("compare", &err);
    /* Load the data once; every run makes its own split from its seed. */
    tnmtl_dataset ds;
    tnmtl_split probe_split;
    if (!(st = tnmtl_dist_barrier(cli_dist, &err)) && !(st = run_load_data(&a.o, &ds, &probe_split, &err)))
        tnmtl_split_free(&probe_split);
    if (st) {
        runfolder_release(&top);
        return cli_fail("compare", &err);
    }
    const int cls = ds.kind == TNMTL_TARGET_CLASS;
    cli_catch_stop_signals();

    run_result(*res)[MAX_SEEDS] = calloc(MAX_METHODS, sizeof *res);
    int code = EXIT_OK;
    if (!res) {
        tnmtl_fail(&err, TNMTL_ERR_NOMEM, "out of memory");
        code = cli_fail("compare", &err);
    }
    for (int s = 0; s < a.n_seeds && code == EXIT_OK; s++)
        for (int m = 0; m < a.n_methods && code == EXIT_OK; m++)
            code = compare_run(&a, &ds, cls, a.methods[m], a.seeds[s], &res[m][s]);
    if (code == EXIT_OK) {
        table_job job = {a.n_methods, a.n_seeds, cls, a.methods, a.seeds, res, 0};
        if ((st = write_tables(&a, &job, ds.source, &top, &err))) code = cli_fail("compare", &err);
    }
    runfolder_release(&top);
    free(res);
    tnmtl_dataset_free(&ds);
    return code;
}
