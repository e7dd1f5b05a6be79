/* test_tune_cli.c - `tnmtl tune` end to end: a planted best configuration is
 * found, a killed tune resumes to the same choice, the choice does not
 * depend on the test labels, and bad options exit 2 leaving nothing behind. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "tnmtl.h"

static char out[1 << 16];

#define tnmtl(merge, ...) tu_cli_run(merge, out, sizeof out, __VA_ARGS__)

/* Planted multi-task regression: 8 tasks share ONE weight vector w of 12
 * features (y = w.x + noise 0.1), 10 examples per task, half for training:
 * 5 examples cannot fit 12 weights alone, the tasks together can.  So the
 * best configuration is the trace norm (LAF on the linear model: a rank-1
 * weight matrix) with a gamma large enough to share, not STL.  The targets of
 * the examples in test_rows (when given) are replaced by noise. */
enum { P_TASKS = 8, P_PER_TASK = 10, P_DIM = 12 };

static void write_planted(const char *path, const int *test_rows)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "task,y");
    for (int j = 0; j < P_DIM; j++) fprintf(f, ",x%d", j);
    fputc('\n', f);
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 42);
    double w[P_DIM];
    for (int j = 0; j < P_DIM; j++) w[j] = 2 * tnmtl_rng_uniform(&rng) - 1;
    for (int t = 0, row = 0; t < P_TASKS; t++)
        for (int i = 0; i < P_PER_TASK; i++, row++) {
            double x[P_DIM], y = 0;
            for (int j = 0; j < P_DIM; j++) {
                x[j] = 2 * tnmtl_rng_uniform(&rng) - 1;
                y += w[j] * x[j];
            }
            y += 0.1 * (2 * tnmtl_rng_uniform(&rng) - 1);
            const double noise = 5 * (2 * tnmtl_rng_uniform(&rng) - 1);
            if (test_rows && test_rows[row]) y = noise;
            fprintf(f, "t%d,%.6f", t, y);
            for (int j = 0; j < P_DIM; j++) fprintf(f, ",%.6f", x[j]);
            fputc('\n', f);
        }
    fclose(f);
}

#define PLANTED_OPTS "--regression --arch '' --steps 300 --lr 0.05 --train-frac 0.5 --quiet"

static cJSON *parse_out(void)
{
    const char *brace = strchr(out, '{');
    assert_non_null(brace);
    cJSON *j = cJSON_Parse(brace);
    assert_non_null(j);
    return j;
}

static const char *chosen_method(const cJSON *r, double *gamma)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "chosen");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "method"), *g = cJSON_GetObjectItemCaseSensitive(c, "gamma");
    assert_true(cJSON_IsString(m));
    *gamma = cJSON_IsNumber(g) ? g->valuedouble : NAN;
    return m->valuestring;
}

static void read_text(const char *path, char *buf, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cat '%s'", path);
    assert_int_equal(tu_run(cmd, 0, buf, cap), 0);
}

/* trials.csv without the seconds column: what the search saw and chose. */
static void trials_without_seconds(const char *dir, char *buf, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cut -d, -f1-7,9 '%s/trials.csv'", dir);
    assert_int_equal(tu_run(cmd, 0, buf, cap), 0);
}

/* Rows of a run's history.csv with a validation metric; *last: the step of
 * the last of them. */
static int history_val_rows(const char *path, int *last)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    int n = 0;
    *last = -1;
    while (fgets(line, sizeof line, f)) {
        int step;
        double loss, reg, val;
        if (sscanf(line, "%d,%lf,%lf,%lf", &step, &loss, &reg, &val) == 4) {
            n++;
            *last = step;
        }
    }
    fclose(f);
    return n;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* best_per_method's "at_range_edge" for LAF (-1 when absent). */
static int laf_at_edge(const cJSON *r)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r, "best_per_method"))
    {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "method"), *edge = cJSON_GetObjectItemCaseSensitive(e, "at_range_edge");
        if (cJSON_IsString(m) && !strcmp(m->valuestring, "laf")) return cJSON_IsBool(edge) ? cJSON_IsTrue(edge) : -1;
    }
    return -1;
}

/* The LAF rows of a path tune's trials.csv: the path's n rows, then the
 * confirmations from scratch.  Returns the number of rows. */
enum { MAX_ROWS = 16 };
typedef struct {
    double gamma, val;
    int steps, chosen;
} trial_row;

static int laf_rows(const char *dir, trial_row *rows)
{
    char text[1 << 14], *save = NULL;
    trials_without_seconds(dir, text, sizeof text);
    int n = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char meth[16];
        trial_row r;
        if (sscanf(line, "%15[^,],%lf,,,%*d,%d,%lf,%d", meth, &r.gamma, &r.steps, &r.val, &r.chosen) != 5 ||
            strcmp(meth, "laf"))
            continue;
        assert_true(n < MAX_ROWS);
        rows[n++] = r;
    }
    return n;
}

static void test_planted_best_found(void **state)
{
    (void)state;
    char csv[600], dir[600];
    snprintf(csv, sizeof csv, "%s/planted.csv", tu_group_dir);
    snprintf(dir, sizeof dir, "%s/planted", tu_group_dir);
    write_planted(csv, NULL);
    assert_int_equal(tnmtl(0, "tune --data csv:%s " PLANTED_OPTS " --methods stl,laf --gamma-range 1e-4,10 "
                              "--gamma-count 6 --folds 2 --search halving --out %s", csv, dir), 0);
    cJSON *r = parse_out();
    double gamma;
    const char *m = chosen_method(r, &gamma);
    fprintf(stderr, "planted, halving: chose %s gamma %g\n", m, gamma);
    assert_string_equal(m, "laf");
    assert_true(gamma > 1e-3); /* enough to share */
    /* The choice is the best of the last rung in trials.csv. */
    char text[1 << 14];
    trials_without_seconds(dir, text, sizeof text);
    assert_non_null(strstr(text, "method,gamma,weight_decay,share,batch,steps,val_rmse,chosen"));
    double best = INFINITY, chosen_val = NAN;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char meth[16];
        double g, v;
        int steps, ch;
        if (sscanf(line, "%15[^,],%lf,,,%*d,%d,%lf,%d", meth, &g, &steps, &v, &ch) != 5) continue;
        if (steps == 300 && v < best) best = v;
        if (ch) chosen_val = v;
    }
    assert_true(chosen_val == best);
    /* The outputs: chosen.json trains as train --config; final/ as train --out. */
    char path[700];
    snprintf(path, sizeof path, "%s/final/results.json", dir);
    assert_true(exists(path));
    snprintf(path, sizeof path, "%s/trials.svg", dir);
    assert_true(exists(path));
    assert_int_equal(tnmtl(0, "train --config %s/chosen.json --quiet", dir), 0);
    cJSON *t = parse_out();
    const cJSON *test = cJSON_GetObjectItemCaseSensitive(t, "test");
    const cJSON *rmse = cJSON_GetObjectItemCaseSensitive(test, "mean_rmse");
    const cJSON *tuned = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "test"), "mean_rmse");
    assert_true(cJSON_IsNumber(rmse) && cJSON_IsNumber(tuned));
    assert_true(fabs(rmse->valuedouble - tuned->valuedouble) < 1e-9); /* the same model, retrained */
    cJSON_Delete(t);
    cJSON_Delete(r);
    /* The gamma path finds it too, and its choice is trained from scratch. */
    snprintf(dir, sizeof dir, "%s/planted-path", tu_group_dir);
    assert_int_equal(tnmtl(0, "tune --data csv:%s " PLANTED_OPTS " --methods stl,laf --gamma-range 1e-4,10 "
                              "--gamma-count 6 --folds 2 --search path --out %s", csv, dir), 0);
    r = parse_out();
    m = chosen_method(r, &gamma);
    fprintf(stderr, "planted, path: chose %s gamma %g\n", m, gamma);
    assert_string_equal(m, "laf");
    assert_true(gamma > 1e-3);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "chosen"), "steps")->valuedouble, 300);
    assert_int_equal(laf_at_edge(r), fabs(gamma - 1e-4) < 1e-12 || fabs(gamma - 10) < 1e-9);
    cJSON_Delete(r);
    /* The path: the weakest gamma 300 steps from scratch, each next one 300/6
     * more from its neighbour (the path 1.83 runs, docs/performance.md); then
     * the confirmations, 300 each. */
    trial_row rows[MAX_ROWS];
    const int n_rows = laf_rows(dir, rows);
    for (int i = 0; i < 6; i++) assert_int_equal(rows[i].steps, 300 + 50 * i);
    for (int i = 6; i < n_rows; i++) assert_int_equal(rows[i].steps, 300);
    assert_true(n_rows >= 6 + 1 && n_rows <= 6 + 2); /* one or two confirmations */
    /* The weakest gamma's run from scratch records the validation curve (it
     * may be the final model); a warm start is scored at its end alone. */
    int last;
    snprintf(path, sizeof path, "%s/trials/laf-g0.0001-path/fold0/history.csv", dir);
    assert_true(history_val_rows(path, &last) >= 20);
    assert_int_equal(last, 300);
    snprintf(path, sizeof path, "%s/trials/laf-g0.001-path/fold0/history.csv", dir);
    assert_int_equal(history_val_rows(path, &last), 1);
    assert_int_equal(last, 350);
    /* Two gammas: whichever wins is at an end of the range, and is flagged. */
    snprintf(dir, sizeof dir, "%s/planted-edge", tu_group_dir);
    assert_int_equal(tnmtl(0, "tune --data csv:%s " PLANTED_OPTS " --methods laf --gamma-range 1e-6,1e-5 "
                              "--gamma-count 2 --folds 2 --search path --out %s", csv, dir), 0);
    r = parse_out();
    assert_int_equal(laf_at_edge(r), 1);
    cJSON_Delete(r);
    /* Without --steps the rungs divide the data source's default (csv: 2000). */
    snprintf(dir, sizeof dir, "%s/planted-default-steps", tu_group_dir);
    assert_int_equal(tnmtl(0, "tune --data csv:%s --regression --arch '' --lr 0.05 --quiet --methods laf "
                              "--gamma-count 2 --rungs 2 --folds 2 --search halving --out %s", csv, dir), 0);
    trials_without_seconds(dir, text, sizeof text);
    assert_non_null(strstr(text, ",667,"));
    assert_non_null(strstr(text, ",2000,"));
}

/* A LAF path tune of the planted data (6 gammas, 2 folds) in the group's
 * folder NAME; csv[600] and dir[600] receive the data file and the folder. */
#define PATH_TUNE "tune --data csv:%s " PLANTED_OPTS " --methods laf --gamma-range 1e-4,10 --gamma-count 6 --folds 2 --out %s"
static void planted_path_tune(const char *name, char *csv, char *dir)
{
    snprintf(csv, 600, "%s/%s.csv", tu_group_dir, name);
    snprintf(dir, 600, "%s/%s", tu_group_dir, name);
    write_planted(csv, NULL);
    assert_int_equal(tnmtl(0, PATH_TUNE, csv, dir), 0);
}

/* A tune folder's ledger.json (the resume state, which a rerun reads
 * instead of training), parsed; written back (and freed) by ledger_write. */
static cJSON *ledger_read(const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/ledger.json", dir);
    char *text = tu_read_file(path, NULL);
    assert_non_null(text);
    cJSON *ledger = cJSON_Parse(text);
    free(text);
    assert_non_null(ledger);
    return ledger;
}

static void ledger_write(const char *dir, cJSON *ledger)
{
    char path[700];
    snprintf(path, sizeof path, "%s/ledger.json", dir);
    char *text = cJSON_Print(ledger);
    cJSON_Delete(ledger);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(text);
}

/* In a LAF path tune's ledger (the resume state, which a rerun reads instead
 * of training), sets gamma g's path value, fold by fold, to `factor` times
 * the value of gamma g_conf's run from scratch. */
static void plant_path_value(const char *dir, double g, double g_conf, double factor)
{
    cJSON *ledger = ledger_read(dir);
    double conf[2] = {NAN, NAN};
    cJSON *rec;
    cJSON_ArrayForEach(rec, ledger)
    {
        double kg;
        int fold, steps;
        if (!strstr(rec->string, "-path/") &&
            sscanf(rec->string, "trials/laf-g%lf/fold%d@%d", &kg, &fold, &steps) == 3 && steps == 300 &&
            fabs(kg - g_conf) < 1e-3 * g_conf && fold >= 0 && fold < 2)
            conf[fold] = cJSON_GetObjectItemCaseSensitive(rec, "val")->valuedouble;
    }
    assert_true(isfinite(conf[0]) && isfinite(conf[1]));
    int planted = 0;
    cJSON_ArrayForEach(rec, ledger)
    {
        double kg;
        int fold;
        if (sscanf(rec->string, "trials/laf-g%lf-path/fold%d@", &kg, &fold) == 2 && fabs(kg - g) < 1e-3 * g) {
            cJSON_ReplaceItemInObjectCaseSensitive(rec, "val", cJSON_CreateNumber(factor * conf[fold]));
            planted++;
        }
    }
    assert_int_equal(planted, 2); /* two folds */
    ledger_write(dir, ledger);
}

/* Adds to a LAF path tune's ledger a run from scratch of gamma g (its two
 * folds, at 300 steps) that the search never asked for, as a build with
 * another search rule may have left it: validation `val`, `seconds`. */
static void plant_unasked_run(const char *dir, double g, double val, double seconds)
{
    cJSON *ledger = ledger_read(dir);
    char keys[2][320];
    int found = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, ledger)
    {
        double kg;
        int fold;
        const char *cut = strstr(rec->string, "-path/");
        if (cut && sscanf(rec->string, "trials/laf-g%lf-path/fold%d@", &kg, &fold) == 2 &&
            fabs(kg - g) < 1e-3 * g && fold >= 0 && fold < 2) {
            snprintf(keys[fold], sizeof keys[fold], "%.*s/fold%d@300", (int)(cut - rec->string), rec->string, fold);
            found++;
        }
    }
    assert_int_equal(found, 2);
    for (int f = 0; f < 2; f++) {
        assert_null(cJSON_GetObjectItemCaseSensitive(ledger, keys[f]));
        cJSON *r = cJSON_AddObjectToObject(ledger, keys[f]);
        cJSON_AddNumberToObject(r, "val", val);
        cJSON_AddNumberToObject(r, "seconds", seconds);
    }
    ledger_write(dir, ledger);
}

/* A confirmation stands when, from scratch, it keeps its place in the path's
 * ranking: it validates at least as well as the path's next gamma did on
 * the path.  Below that the warm start flattered it: the next is confirmed
 * too, and the best run from scratch wins (docs/results.md, "TT's gamma on
 * seeds 7 and 9").  In the planted tune the one confirmation stands; the
 * test moves path values in the ledger and reruns the same command. */
static void test_path_confirms_runner_up(void **state)
{
    (void)state;
    char csv[600], dir[600], path[700];
    planted_path_tune("planted-runner-up", csv, dir);
    trial_row before[MAX_ROWS];
    assert_int_equal(laf_rows(dir, before), 6 + 1); /* one confirmation ... */
    const trial_row first = before[6];
    assert_true(first.chosen && first.val < before[0].val); /* ... that beats the weakest gamma */
    int second = -1; /* the path's next (RMSE: lower is better; the weakest is a run from scratch) */
    for (int i = 1; i < 6; i++)
        if (fabs(before[i].gamma - first.gamma) > 1e-9 * first.gamma && (second < 0 || before[i].val < before[second].val))
            second = i;
    assert_true(second > 0 && first.val <= before[second].val); /* ... and keeps its place */

    /* trials.csv and search_seconds hold the evaluations this search asked
     * for, not whatever else the ledger holds: a run from scratch of a gamma
     * this rule never confirms, planted as the best and dearest of all,
     * leaves both (and the choice) as they were. */
    int unasked = 1;
    while (before[unasked].gamma == first.gamma || unasked == second) unasked++;
    plant_unasked_run(dir, before[unasked].gamma, 1e-3, 1e6);
    assert_int_equal(tnmtl(0, PATH_TUNE, csv, dir), 0);
    cJSON *rerun = parse_out();
    const cJSON *search = cJSON_GetObjectItemCaseSensitive(rerun, "search_seconds");
    assert_true(cJSON_IsNumber(search) && search->valuedouble < 1e5);
    cJSON_Delete(rerun);
    trial_row unasked_rows[MAX_ROWS];
    assert_int_equal(laf_rows(dir, unasked_rows), 6 + 1);
    for (int i = 0; i < 7; i++)
        assert_true(unasked_rows[i].gamma == before[i].gamma && unasked_rows[i].val == before[i].val &&
                    unasked_rows[i].chosen == before[i].chosen);

    /* Short of its own path value but still ahead of the next's: it stands. */
    plant_path_value(dir, first.gamma, first.gamma, 0.5);
    assert_int_equal(tnmtl(0, PATH_TUNE, csv, dir), 0);
    trial_row again_rows[MAX_ROWS];
    assert_int_equal(laf_rows(dir, again_rows), 6 + 1);
    assert_true(again_rows[6].chosen && again_rows[6].gamma == first.gamma);

    /* Behind the next's path value: the next is confirmed. */
    plant_path_value(dir, before[second].gamma, first.gamma, 0.75);
    /* final/ holds the fit of the first choice: the rerun chooses otherwise
     * (below), so it refuses to resume that model under the new choice's
     * name, and fits the choice once final/ is moved away. */
    assert_int_equal(tnmtl(1, PATH_TUNE, csv, dir), 2);
    assert_non_null(strstr(out, "final/ away"));
    char moved[700];
    snprintf(path, sizeof path, "%s/final", dir);
    snprintf(moved, sizeof moved, "%s/final-first-choice", dir);
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(tnmtl(0, PATH_TUNE, csv, dir), 0);
    cJSON *r = parse_out();
    double gamma;
    assert_string_equal(chosen_method(r, &gamma), "laf");
    cJSON_Delete(r);
    trial_row after[MAX_ROWS];
    assert_int_equal(laf_rows(dir, after), 6 + 2); /* the runner-up confirmed too */
    assert_true(fabs(after[second].val - 0.75 * first.val) < 1e-3); /* trials.csv: 4 decimals */
    /* trials.csv lists the confirmations in gamma order, not in the order run. */
    const int again = after[6].gamma == first.gamma ? 6 : 7, runner_up = 13 - again;
    assert_true(after[again].gamma == first.gamma && after[again].val == first.val && after[again].steps == 300);
    assert_true(after[runner_up].gamma == before[second].gamma && after[runner_up].steps == 300);
    /* The best run from scratch is chosen: the weakest gamma's or a confirmation's. */
    int chosen = -1;
    for (int i = 0; i < 8; i++)
        if (after[i].chosen) chosen = i;
    const double best = fmin(after[0].val, fmin(after[6].val, after[7].val));
    assert_true(chosen == 0 || chosen >= 6);
    assert_true(after[chosen].val == best);
    /* On this data the runner-up is the better gamma from scratch, so the
     * choice moved to it, and the fit in final/ is of it. */
    assert_true(after[runner_up].val < first.val);
    assert_int_equal(chosen, runner_up);
    assert_true(fabs(gamma - after[runner_up].gamma) < 1e-6 * gamma);
    fprintf(stderr, "runner-up: confirmed gamma %g (%.4f) and %g (%.4f), chose %g\n", first.gamma, first.val,
            after[runner_up].gamma, after[runner_up].val, after[chosen].gamma);
}

/* Divides the start's (the weakest gamma's) validation RMSE by 4 on both
 * folds at the steps that awk condition `when` selects ($1: the step). */
static void plant_start_curve(const char *dir, const char *when)
{
    char path[700];
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/trials/laf-g0.0001-path/fold%d/history.csv", dir, f);
        assert_int_equal(tu_history_scale_val(path, when, 0.25), 0);
    }
}

/* A confirmation from scratch that falls under the path start's validation
 * curve by a factor 2 (RMSE: over twice the start's at the same step) at three
 * points in a row, from the curve's first point on, stops there and is out:
 * the next is confirmed, and the best run from scratch is chosen among the
 * others (a collapsing gamma costs 0.15 of a run, not a whole one;
 * docs/results.md).  The planted tune's confirmations never fall so far
 * behind (it chose one, at 300 steps: test_path_confirms_runner_up); here the
 * start's curve (a point every 15 steps) is planted at a quarter of its RMSE,
 * first at step 15 alone (one point behind: no stop), then at steps 15 and 30
 * (two: a slow start, which catches up, no stop), then from step 15 on; each
 * time the confirmations are forgotten (ledger and folders) and the same
 * command reruns them. */
static void test_confirmation_stops_behind_start(void **state)
{
    (void)state;
    char csv[600], dir[600];
    planted_path_tune("planted-behind", csv, dir);
    trial_row before[MAX_ROWS], once[MAX_ROWS];
    assert_int_equal(laf_rows(dir, before), 6 + 1);
    assert_true(before[6].chosen && before[6].steps == 300);
    /* Behind at one point, then at two in a row: it trains on, to the same result. */
    static const char *const slow[2] = {"$1 == 15", "$1 == 30"};
    for (int k = 0; k < 2; k++) {
        plant_start_curve(dir, slow[k]);
        assert_int_equal(tu_tune_forget_confirmations(dir, 1), 0);
        assert_int_equal(tnmtl(0, PATH_TUNE, csv, dir), 0);
        assert_int_equal(laf_rows(dir, once), 6 + 1);
        for (int i = 0; i < 7; i++)
            assert_true(once[i].val == before[i].val && once[i].steps == before[i].steps &&
                        once[i].chosen == before[i].chosen);
    }
    /* Behind from step 15 on: stopped at the third point, 45. */
    plant_start_curve(dir, "$1 > 30");
    assert_int_equal(tu_tune_forget_confirmations(dir, 1), 0);
    char path[700], md[700], text[1 << 14];
    snprintf(path, sizeof path, "%s/final", dir);
    snprintf(md, sizeof md, "%s/final-before", dir);
    assert_int_equal(rename(path, md), 0); /* the choice changes (test_path_confirms_runner_up) */
    assert_int_equal(tnmtl(0, PATH_TUNE, csv, dir), 0);
    trial_row after[MAX_ROWS];
    assert_int_equal(laf_rows(dir, after), 6 + 2); /* two confirmations, both stopped */
    for (int i = 0; i < 6; i++) assert_true(after[i].val == before[i].val && after[i].steps == before[i].steps);
    for (int i = 6; i < 8; i++) {
        assert_int_equal(after[i].steps, 45); /* the curve's third point */
        assert_false(after[i].chosen);
    }
    assert_true(after[0].chosen); /* the weakest gamma: the one run from scratch left */
    /* The ledger: fold 0 stopped at 45, fold 1 never trained; the folder's
     * checkpoint and history end at step 45. */
    cJSON *ledger = ledger_read(dir), *rec;
    int stopped = 0;
    cJSON_ArrayForEach(rec, ledger)
    {
        if (strstr(rec->string, "-path/")) continue;
        assert_non_null(strstr(rec->string, "/fold0@300"));
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(rec, "stopped_at");
        assert_true(cJSON_IsNumber(at) && at->valuedouble == 45);
        stopped++;
    }
    assert_int_equal(stopped, 2);
    int last;
    snprintf(path, sizeof path, "%s/trials/laf-g%g/fold0/history.csv", dir, after[6].gamma);
    assert_int_equal(history_val_rows(path, &last), 3); /* steps 15, 30 and 45 */
    assert_int_equal(last, 45);
    snprintf(md, sizeof md, "%s/trials.md", dir);
    read_text(md, text, sizeof text);
    assert_non_null(strstr(text, "| 45 (stopped) |"));
    /* The report reads the stop from trials.csv (fewer steps than the start). */
    char page[1 << 17];
    assert_int_equal(tnmtl(0, "report %s --out %s/behind.html", dir, tu_group_dir), 0);
    snprintf(md, sizeof md, "%s/behind.html", tu_group_dir);
    read_text(md, page, sizeof page);
    const char *mark = strstr(page, "from scratch, stopped behind the path's start");
    assert_non_null(mark);
    assert_non_null(strstr(mark + 1, "from scratch, stopped behind the path's start"));
    /* ... and its figure (also the tune's trials.svg) draws the two as crosses
     * (one more in the legend), apart from the confirmations that ran on. */
    snprintf(md, sizeof md, "%s/trials.svg", dir);
    read_text(md, page, sizeof page);
    assert_int_equal(tu_count(page, "<path class=\"cross\""), 2 + 1);
    assert_non_null(strstr(page, ">laf, scratch, stopped</text>"));
    assert_null(strstr(page, ">laf, scratch</text>"));
    /* Killed after the stop's checkpoint, before the ledger had it: the
     * rerun finds the stop in the run's history and trains no further. */
    trial_row stopped_rows[MAX_ROWS];
    memcpy(stopped_rows, after, sizeof after);
    cJSON_Delete(ledger);
    assert_int_equal(tu_tune_forget_confirmations(dir, 0), 0);
    assert_int_equal(tnmtl(0, PATH_TUNE, csv, dir), 0);
    assert_int_equal(laf_rows(dir, after), 6 + 2);
    for (int i = 0; i < 8; i++)
        assert_true(after[i].val == stopped_rows[i].val && after[i].steps == stopped_rows[i].steps &&
                    after[i].chosen == stopped_rows[i].chosen);
    assert_int_equal(history_val_rows(path, &last), 3);
    assert_int_equal(last, 45);
    fprintf(stderr, "behind the start: gammas %g and %g stopped at step 45 (RMSE %.4f, %.4f), chose %g\n",
            after[6].gamma, after[7].gamma, after[6].val, after[7].val, after[0].gamma);
}

/* A gamma path walked by a version before 89ea6db (segments of
 * steps/(n-1): 60 steps here, now 50) is refused by name, not resumed at
 * other step counts, and the folder is left as it was. */
static void test_earlier_path_refused(void **state)
{
    (void)state;
    char csv[600], dir[600], path[700];
    planted_path_tune("planted-earlier", csv, dir);
    cJSON *ledger = ledger_read(dir);
    int moved = 0;
    for (int f = 0; f < 2; f++) { /* the first warm segment, as the earlier version keyed it */
        char key[128], old_key[128];
        snprintf(key, sizeof key, "trials/laf-g0.001-path/fold%d@350", f);
        snprintf(old_key, sizeof old_key, "trials/laf-g0.001-path/fold%d@360", f);
        cJSON *rec = cJSON_DetachItemFromObjectCaseSensitive(ledger, key);
        if (rec) {
            cJSON_AddItemToObject(ledger, old_key, rec);
            moved++;
        }
    }
    assert_int_equal(moved, 2);
    ledger_write(dir, ledger);
    snprintf(path, sizeof path, "%s/ledger.json", dir);
    char *before = tu_read_file(path, NULL);
    char trials_before[1 << 14], trials_after[1 << 14];
    trials_without_seconds(dir, trials_before, sizeof trials_before);
    assert_int_equal(tnmtl(1, PATH_TUNE, csv, dir), 2);
    assert_non_null(strstr(out, "steps/(n-1)"));
    char *after = tu_read_file(path, NULL);
    assert_non_null(before);
    assert_non_null(after);
    assert_string_equal(before, after);
    trials_without_seconds(dir, trials_after, sizeof trials_after);
    assert_string_equal(trials_before, trials_after);
    free(before);
    free(after);
}

#define SMALL_TUNE "tune --data synthetic --steps 40 --methods stl,ud,laf --gamma-count 4 --folds 2 --quiet"

static void test_killed_tune_resumes(void **state)
{
    (void)state;
    char a[600], b[600], ta[1 << 14], tb[1 << 14], ca[1 << 14], cb[1 << 14];
    snprintf(a, sizeof a, "%s/full", tu_group_dir);
    snprintf(b, sizeof b, "%s/killed", tu_group_dir);
    assert_int_equal(tnmtl(0, SMALL_TUNE " --out %s", a), 0);
    /* Kill -9 once the ledger holds a few evaluations, then run it again. */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s " SMALL_TUNE " --out %s >/dev/null 2>&1 & pid=$!; "
             "for i in $(seq 2000); do n=$(grep -o '@' %s/ledger.json 2>/dev/null | wc -l); "
             "[ \"$n\" -ge 6 ] && break; sleep 0.01; done; kill -9 $pid; wait $pid; "
             "test -e %s/trials.csv && echo finished || echo killed",
             tu_cli(), b, b, b);
    assert_int_equal(tu_run(cmd, 0, out, sizeof out), 0);
    fprintf(stderr, "tune was %s", out);
    assert_non_null(strstr(out, "killed"));
    assert_int_equal(tnmtl(0, SMALL_TUNE " --out %s", b), 0);
    /* Its search_seconds is the whole search's: the killed invocation's
     * evaluations count too, as trials.csv lists them (seconds to 3 places). */
    cJSON *r = parse_out();
    const cJSON *search = cJSON_GetObjectItemCaseSensitive(r, "search_seconds");
    assert_true(cJSON_IsNumber(search));
    char sums[128];
    snprintf(cmd, sizeof cmd, "awk -F, 'NR > 1 { s += $8; n++ } END { printf \"%%.6f %%d\", s, n }' '%s/trials.csv'", b);
    assert_int_equal(tu_run(cmd, 0, sums, sizeof sums), 0);
    double listed;
    int rows;
    assert_int_equal(sscanf(sums, "%lf %d", &listed, &rows), 2);
    fprintf(stderr, "search_seconds %.4f, trials.csv %.4f over %d rows\n", search->valuedouble, listed, rows);
    assert_true(rows >= 6 && fabs(search->valuedouble - listed) <= 0.0005 * rows + 1e-9);
    cJSON_Delete(r);
    trials_without_seconds(a, ta, sizeof ta);
    trials_without_seconds(b, tb, sizeof tb);
    assert_string_equal(ta, tb);
    char pa[700], pb[700];
    snprintf(pa, sizeof pa, "%s/chosen.json", a);
    snprintf(pb, sizeof pb, "%s/chosen.json", b);
    read_text(pa, ca, sizeof ca);
    read_text(pb, cb, sizeof cb);
    assert_string_equal(ca, cb);
    /* The same folder with other options is refused, and left as it was. */
    assert_int_equal(tnmtl(1, "tune --data synthetic --steps 50 --methods stl,ud,laf --gamma-count 4 --folds 2 "
                              "--quiet --out %s", b), 2);
    assert_non_null(strstr(out, "other options"));
    trials_without_seconds(b, tb, sizeof tb);
    assert_string_equal(ta, tb);
}

/* STL's search is the norms': its weight decay on the gammas' grid along the
 * path (the weakest from scratch, each next continuing its neighbour for
 * ceil(steps/n) more), then confirmations from scratch; the choice carries
 * its weight decay into chosen.json, and train --config retrains it.  A
 * folder of an earlier tnmtl's STL tune (its steps searched) is refused by
 * name, and left as it was. */
static void test_stl_searches_weight_decay(void **state)
{
    (void)state;
    char dir[600], text[1 << 14], path[700];
    snprintf(dir, sizeof dir, "%s/stl-wd", tu_group_dir);
#define STL_TUNE "tune --data synthetic --steps 40 --methods stl --gamma-range 1e-3,1 --gamma-count 3 --quiet --out %s"
    assert_int_equal(tnmtl(0, STL_TUNE, dir), 0);
    cJSON *r = parse_out();
    const cJSON *chosen = cJSON_GetObjectItemCaseSensitive(r, "chosen");
    const cJSON *wd = cJSON_GetObjectItemCaseSensitive(chosen, "weight_decay");
    assert_true(cJSON_IsNumber(wd) && wd->valuedouble > 0);
    assert_null(cJSON_GetObjectItemCaseSensitive(chosen, "gamma"));
    trials_without_seconds(dir, text, sizeof text);
    static const double grid[3] = {1e-3, 3.16228e-2, 1};
    int n = 0, n_chosen = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        double w, v;
        int steps, ch;
        if (sscanf(line, "stl,,%lf,,%*d,%d,%lf,%d", &w, &steps, &v, &ch) != 4) continue;
        if (n < 3) { /* the path */
            assert_true(fabs(w - grid[n]) < 1e-5 * grid[n]);
            assert_int_equal(steps, 40 + 14 * n);
        } else {
            assert_true(steps <= 40 && w > grid[0]); /* a confirmation from scratch (or one stopped) */
        }
        if (ch) {
            n_chosen++;
            assert_true(fabs(w - wd->valuedouble) < 1e-5 * w);
            assert_int_equal(steps, 40);
        }
        n++;
    }
    assert_true(n >= 4 && n <= 5);
    assert_int_equal(n_chosen, 1);
    snprintf(path, sizeof path, "%s/chosen.json", dir);
    read_text(path, text, sizeof text);
    cJSON *cfg = cJSON_Parse(text);
    assert_true(fabs(cJSON_GetObjectItemCaseSensitive(cfg, "weight_decay")->valuedouble - wd->valuedouble) < 1e-12);
    cJSON_Delete(cfg);
    assert_int_equal(tnmtl(0, "train --config %s --quiet", path), 0);
    cJSON *t = parse_out();
    const double retrained = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "test"), "mean_accuracy")->valuedouble;
    const double tuned = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "test"), "mean_accuracy")->valuedouble;
    assert_true(retrained == tuned);
    cJSON_Delete(t);
    cJSON_Delete(r);
    /* An earlier tnmtl's STL tune: its tune.json has no "stl_searches". */
    char cmd[1400], before[1 << 14], after[1 << 14];
    snprintf(cmd, sizeof cmd, "sed -i '/stl_searches/d; s/\"search\":\t\"path\",/\"search\":\t\"path\"/' %s/tune.json && "
             "grep -c stl_searches %s/tune.json", dir, dir);
    tu_run(cmd, 0, out, sizeof out);
    assert_true(out[0] == '0');
    trials_without_seconds(dir, before, sizeof before);
    assert_int_equal(tnmtl(1, STL_TUNE, dir), 2);
    assert_non_null(strstr(out, "searched its number of steps"));
    trials_without_seconds(dir, after, sizeof after);
    assert_string_equal(before, after);
}

/* A norm's tune over gamma with a fixed --weight-decay (e.g. STL's choice,
 * so that the norm is searched on top of it) trains every trial with that
 * weight decay and says so: in trials.csv, in the summary's choice and in
 * chosen.json, whose retraining gives the tuned model. */
static void test_fixed_weight_decay_reported(void **state)
{
    (void)state;
    char dir[600], text[1 << 14], path[700];
    snprintf(dir, sizeof dir, "%s/laf-wd", tu_group_dir);
    assert_int_equal(tnmtl(0, "tune --data synthetic --steps 30 --methods laf --gamma-range 1e-3,1e-1 --gamma-count 2 "
                              "--weight-decay 0.05 --quiet --out %s", dir), 0);
    cJSON *r = parse_out();
    const cJSON *wd = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "chosen"), "weight_decay");
    assert_true(cJSON_IsNumber(wd) && wd->valuedouble == 0.05);
    trials_without_seconds(dir, text, sizeof text);
    int n = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "laf,", 4)) continue;
        double g, w;
        assert_int_equal(sscanf(line, "laf,%lf,%lf,", &g, &w), 2);
        assert_true(w == 0.05);
        n++;
    }
    assert_true(n >= 2);
    snprintf(path, sizeof path, "%s/chosen.json", dir);
    read_text(path, text, sizeof text);
    cJSON *cfg = cJSON_Parse(text);
    assert_true(cJSON_GetObjectItemCaseSensitive(cfg, "weight_decay")->valuedouble == 0.05);
    cJSON_Delete(cfg);
    assert_int_equal(tnmtl(0, "train --config %s --quiet", path), 0);
    cJSON *t = parse_out();
    assert_true(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "test"), "mean_accuracy")->valuedouble ==
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "test"), "mean_accuracy")->valuedouble);
    cJSON_Delete(t);
    cJSON_Delete(r);
}

/* The rows of the planted data in the test part of the split tune uses
 * (train_frac 0.5, split seed 0; validation never comes from test). */
static void planted_test_rows(const char *csv, int *rows)
{
    tnmtl_csv_options co = {0};
    co.kind = TNMTL_TARGET_REAL;
    tnmtl_dataset ds;
    tnmtl_split split;
    tnmtl_error err;
    assert_int_equal(tnmtl_csv_load(csv, &co, &ds, &err), TNMTL_OK);
    assert_int_equal(tnmtl_split_make(&ds, 0.5, 0.0, 0, &split, &err), TNMTL_OK);
    memset(rows, 0, sizeof(int) * P_TASKS * P_PER_TASK);
    for (int64_t j = 0; j < split.begin[TNMTL_PART_TEST][P_TASKS]; j++) rows[split.idx[TNMTL_PART_TEST][j]] = 1;
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
}

static void test_no_test_leakage(void **state)
{
    (void)state;
    static const char *const validation[] = {"--folds 2", "--val-frac 0.4"};
    for (int v = 0; v < 2; v++) {
        char csv1[600], csv2[600], d1[600], d2[600], t1[1 << 14], t2[1 << 14];
        int rows[P_TASKS * P_PER_TASK];
        snprintf(csv1, sizeof csv1, "%s/leak-a.csv", tu_group_dir);
        snprintf(csv2, sizeof csv2, "%s/leak-b.csv", tu_group_dir);
        snprintf(d1, sizeof d1, "%s/leak-a%d", tu_group_dir, v);
        snprintf(d2, sizeof d2, "%s/leak-b%d", tu_group_dir, v);
        write_planted(csv1, NULL);
        planted_test_rows(csv1, rows);
        write_planted(csv2, rows); /* the same data but the test targets */
        double g1, g2, rm1, rm2;
        assert_int_equal(tnmtl(0, "tune --data csv:%s " PLANTED_OPTS " --methods stl,laf --gamma-count 4 %s --out %s",
                               csv1, validation[v], d1), 0);
        cJSON *r1 = parse_out();
        assert_int_equal(tnmtl(0, "tune --data csv:%s " PLANTED_OPTS " --methods stl,laf --gamma-count 4 %s --out %s",
                               csv2, validation[v], d2), 0);
        cJSON *r2 = parse_out();
        assert_string_equal(chosen_method(r1, &g1), chosen_method(r2, &g2));
        assert_true(g1 == g2 || (isnan(g1) && isnan(g2)));
        trials_without_seconds(d1, t1, sizeof t1);
        trials_without_seconds(d2, t2, sizeof t2);
        assert_string_equal(t1, t2);
        /* ... while the test metric does see the changed labels. */
        rm1 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r1, "test"), "mean_rmse")->valuedouble;
        rm2 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r2, "test"), "mean_rmse")->valuedouble;
        fprintf(stderr, "%s: test rmse %.3f vs %.3f with the test targets replaced\n", validation[v], rm1, rm2);
        assert_true(fabs(rm1 - rm2) > 0.5);
        cJSON_Delete(r1);
        cJSON_Delete(r2);
    }
}

/* --batches: one search per batch size, the choice the best over all of
 * them on validation.  STL alone, searched on a grid, so every row is a
 * candidate (a weight decay trained --steps): the chosen row is the best of trials.csv, both batch sizes
 * were trained (their rows differ), chosen.json carries the batch, and
 * train --config retrains the tuned model. */
static void test_batches_searched(void **state)
{
    (void)state;
    char csv[600], dir[600], text[1 << 14];
    snprintf(csv, sizeof csv, "%s/planted-batches.csv", tu_group_dir);
    snprintf(dir, sizeof dir, "%s/batches", tu_group_dir);
    write_planted(csv, NULL);
#define BATCH_TUNE "tune --data csv:%s " PLANTED_OPTS " --methods stl --search grid --gamma-count 3 --folds 2 --out %s"
    assert_int_equal(tnmtl(0, BATCH_TUNE " --batches 2,0", csv, dir), 0);
    cJSON *r = parse_out();
    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "chosen"), "batch");
    assert_true(cJSON_IsNumber(cb));
    trials_without_seconds(dir, text, sizeof text);
    double best = INFINITY, chosen_val = NAN, val_of[2][16];
    int best_batch = -1, chosen_batch = -1, rows_of[2] = {0, 0};
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char meth[16];
        int batch, steps, ch;
        double v;
        if (sscanf(line, "%15[^,],,%*[^,],,%d,%d,%lf,%d", meth, &batch, &steps, &v, &ch) != 5) continue;
        assert_true(batch == 2 || batch == 0);
        const int g = batch == 0;
        assert_true(rows_of[g] < 16);
        val_of[g][rows_of[g]++] = v;
        if (v < best) best = v, best_batch = batch;
        if (ch) chosen_val = v, chosen_batch = batch;
    }
    fprintf(stderr, "batches 2,0: chose batch %d (val rmse %.4f)\n", chosen_batch, chosen_val);
    assert_true(rows_of[0] >= 2 && rows_of[0] == rows_of[1]);
    int differ = 0;
    for (int k = 0; k < rows_of[0]; k++) differ |= val_of[0][k] != val_of[1][k];
    assert_true(differ); /* each batch size trained as itself */
    assert_true(chosen_val == best);
    assert_int_equal(chosen_batch, best_batch);
    assert_int_equal((int)cb->valuedouble, chosen_batch);
    char path[700];
    snprintf(path, sizeof path, "%s/chosen.json", dir);
    char cfg_text[1 << 14];
    read_text(path, cfg_text, sizeof cfg_text);
    cJSON *cfg = cJSON_Parse(cfg_text);
    assert_non_null(cfg);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(cfg, "batch")->valuedouble, chosen_batch);
    cJSON_Delete(cfg);
    assert_int_equal(tnmtl(0, "train --config %s --quiet", path), 0);
    cJSON *t = parse_out();
    const double retrained = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "test"), "mean_rmse")->valuedouble;
    const double tuned = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "test"), "mean_rmse")->valuedouble;
    assert_true(fabs(retrained - tuned) < 1e-9);
    cJSON_Delete(t);
    cJSON_Delete(r);
    /* Rerun: everything from the ledger, the same choice; the batch sizes in
     * another order, or none, are another tune and refused. */
    assert_int_equal(tnmtl(0, BATCH_TUNE " --batches 2,0", csv, dir), 0);
    r = parse_out();
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "chosen"), "batch")->valuedouble,
                     chosen_batch);
    cJSON_Delete(r);
    assert_int_equal(tnmtl(1, BATCH_TUNE " --batches 0,2", csv, dir), 2);
    assert_non_null(strstr(out, "other options"));
    assert_int_equal(tnmtl(1, BATCH_TUNE, csv, dir), 2);
    assert_non_null(strstr(out, "other options"));
#undef BATCH_TUNE
}

static void test_bad_options(void **state)
{
    (void)state;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/bad", tu_group_dir);
    static const struct {
        const char *args, *message;
    } cases[] = {
        {"--gamma-range ''", "empty range"},
        {"--gamma-range 1,1e-4", "inverted"},
        {"--gamma-range 0.1,0.1", "empty range"},
        {"--gamma-range 0,1", "LO must be > 0"},
        {"--methods laf,foo", "foo"},
        {"--methods ''", "empty"},
        {"--folds 1", "--folds"},
        {"--folds 500", "training examples per task"},
        {"--folds 3 --val-frac 0.2", "exclude each other"},
        {"--gamma 0.1", "tune chooses"},
        {"--rungs 0", "--rungs"},
        {"--search random", "--search"},
        {"--batches ''", "--batches: empty list"},
        {"--batches 8,8", "listed twice"},
        {"--batches 2.5", "not a batch size"},
        {"--batches -1", "not a batch size"},
        {"--batches 1,2,3,4,5", "more than 4"},
        {"--batches 4,0 --batch 8", "exclude each other"},
        {"--batches 4,0 --epochs 2", "give --steps"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(tnmtl(1, "tune --data synthetic --steps 10 %s --out %s", cases[i].args, dir), 2);
        if (!strstr(out, cases[i].message)) fprintf(stderr, "%s: %s\n", cases[i].args, out);
        assert_non_null(strstr(out, cases[i].message));
        assert_false(exists(dir)); /* no partial output */
    }
    assert_int_equal(tnmtl(1, "tune --data synthetic --steps 10"), 2);
    assert_non_null(strstr(out, "--out DIR is required"));
}

/* The run options tune relies on, through train: a cross-validation fold has
 * no test part; --gamma-scale init makes each layer's norm at initialisation
 * gamma times the data term (synthetic: 2 shareable layers), for either
 * convention, and a configuration read back keeps it. */
static void test_fold_and_gamma_scale_options(void **state)
{
    (void)state;
    assert_int_equal(tnmtl(0, "train --data synthetic --steps 2 --folds 3 --fold 2 --quiet"), 0);
    cJSON *r = parse_out();
    assert_null(cJSON_GetObjectItemCaseSensitive(r, "test"));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(r, "val"));
    cJSON_Delete(r);
    assert_int_equal(tnmtl(1, "train --data synthetic --steps 2 --fold 1 --quiet"), 2);
    assert_non_null(strstr(out, "--fold needs --folds"));
    static const char *const conv[] = {"mean", "sum"};
    for (int c = 0; c < 2; c++) {
        for (int scaled = 0; scaled < 2; scaled++) {
            assert_int_equal(tnmtl(1, "train --data synthetic --method tucker --gamma 0.1 --steps 1 --task-loss %s %s",
                                   conv[c], scaled ? "--gamma-scale init" : ""), 0);
            const char *line = strstr(out, "step 1/1");
            assert_non_null(line);
            double loss, reg;
            assert_int_equal(sscanf(line, "step 1/1 loss %lf reg %lf", &loss, &reg), 2);
            fprintf(stderr, "%s, %s: data term %.4f, norms %.4f\n", conv[c], scaled ? "init" : "none", loss, reg);
            if (scaled) assert_true(fabs(reg - 0.1 * 2 * loss) < 1e-3 * loss);
            else assert_true(fabs(reg - 0.1 * 2 * loss) > 0.1 * loss); /* the plain gamma is another scale */
        }
    }
    char dir[600], cfg[700];
    snprintf(dir, sizeof dir, "%s/scaled", tu_group_dir);
    assert_int_equal(tnmtl(0, "train --data synthetic --method laf --gamma-scale init --steps 3 --quiet --out %s", dir), 0);
    r = parse_out();
    const cJSON *gs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "config"), "gamma_scale");
    assert_true(cJSON_IsString(gs) && !strcmp(gs->valuestring, "init"));
    const double acc = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "test"), "mean_accuracy")->valuedouble;
    cJSON_Delete(r);
    /* The configuration as train --config reads it: the same model again. */
    snprintf(cfg, sizeof cfg, "%s/config.json", tu_group_dir);
    char path[700], text[1 << 14];
    snprintf(path, sizeof path, "%s/results.json", dir);
    read_text(path, text, sizeof text);
    cJSON *res = cJSON_Parse(text);
    assert_non_null(res);
    char *config = cJSON_Print(cJSON_GetObjectItemCaseSensitive(res, "config"));
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs(config, f);
    fclose(f);
    free(config);
    cJSON_Delete(res);
    assert_int_equal(tnmtl(0, "train --config %s --quiet", cfg), 0);
    r = parse_out();
    assert_true(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "test"), "mean_accuracy")->valuedouble == acc);
    cJSON_Delete(r);
}

/* A tune folder has one writer (issue 19's rules, as compare's): a second
 * tune on it, or a train into it, is refused at once naming the holder, and
 * a tune into a training run's folder is refused. */
static void test_one_writer(void **state)
{
    (void)state;
    char dir[600], cmd[4096];
    snprintf(dir, sizeof dir, "%s/locked", tu_group_dir);
    snprintf(cmd, sizeof cmd,
             "{ %s " SMALL_TUNE " --out %s >/dev/null 2>&1 & pid=$!; "
             "for i in $(seq 3000); do test -e %s/tune.json && break; sleep 0.01; done; "
             "%s " SMALL_TUNE " --out %s; echo \"second=$? holder=$pid\"; "
             "%s train --data synthetic --steps 2 --quiet --out %s; echo \"train=$?\"; wait $pid; echo \"first=$?\"; }",
             tu_cli(), dir, dir, tu_cli(), dir, tu_cli(), dir);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    fprintf(stderr, "%s", out);
    assert_non_null(strstr(out, "second=2"));
    assert_non_null(strstr(out, "train=2"));
    assert_non_null(strstr(out, "first=0"));
    const char *h = strstr(out, "holder="), *m = strstr(out, "is being written by another tnmtl process (pid ");
    assert_non_null(h);
    assert_non_null(m);
    assert_int_equal(atol(h + 7), atol(m + strlen("is being written by another tnmtl process (pid ")));
    /* a finished tune folder is not a place for a training run, nor a run folder for a tune */
    assert_int_equal(tnmtl(1, "train --data synthetic --steps 2 --quiet --out %s", dir), 2);
    snprintf(dir, sizeof dir, "%s/a-run", tu_group_dir);
    assert_int_equal(tnmtl(1, "train --data synthetic --steps 2 --quiet --out %s", dir), 0);
    assert_int_equal(tnmtl(1, SMALL_TUNE " --out %s", dir), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_fold_and_gamma_scale_options),
        cmocka_unit_test(test_planted_best_found),
        cmocka_unit_test(test_path_confirms_runner_up),
        cmocka_unit_test(test_confirmation_stops_behind_start),
        cmocka_unit_test(test_earlier_path_refused),
        cmocka_unit_test(test_no_test_leakage),
        cmocka_unit_test(test_batches_searched),
        cmocka_unit_test(test_killed_tune_resumes),
        cmocka_unit_test(test_stl_searches_weight_decay),
        cmocka_unit_test(test_fixed_weight_decay_reported),
        cmocka_unit_test(test_one_writer),
    };
    return cmocka_run_group_tests(tests, tu_group_setup_tmpdir, tu_group_teardown_tmpdir);
}
