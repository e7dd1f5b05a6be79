/* tune.h - the parts of `tnmtl tune` (cli/cmd_tune.c) that search: the
 * candidates, the tune folder's files, one evaluation (a trial trained to a
 * step count and scored on validation, or read back from the ledger) and the
 * three searches over one method's candidates (cli/tune_search.c). */
#ifndef TNMTL_CLI_TUNE_H
#define TNMTL_CLI_TUNE_H

#include <cJSON.h>
#include <signal.h>
#include <stdint.h>

#include "run.h"
#include "runfolder.h"
#include "session.h"
#include "util.h"

#define MAX_RUNGS 8
#define MAX_CANDIDATES 400

/* One candidate configuration of one method. */
typedef struct candidate {
    tnmtl_method method;
    double gamma;                 /* laf/tucker/tt: the gamma; NAN otherwise          */
    double weight_decay;          /* stl: the weight decay searched; NAN otherwise    */
    int share;                    /* ud: N; -1 otherwise                               */
    int64_t steps;                /* --steps                                           */
    int batch;                    /* examples per task per step (0: full batch)        */
    char dir[64];                 /* run folder under trials/                           */
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
    volatile sig_atomic_t *stop;  /* set by a signal: the trial in training checkpoints and stops */
} tune_state;

/* ---- the tune folder (under mpirun only the writer, process 0, writes) ---- */

void tune_path(const tune_state *ts, const char *rel, char *path, size_t cap);
tnmtl_status tune_write_json(const tune_state *ts, const char *rel, const cJSON *j, tnmtl_error *err);
tnmtl_status tune_write_text(const tune_state *ts, const char *rel, tnmtl_write_fn fn, void *user, tnmtl_error *err);
/* rel read as JSON: NULL when absent; err filled (and *bad set) when unreadable. */
cJSON *tune_read_json(const tune_state *ts, const char *rel, int *bad, tnmtl_error *err);
/* The writer's 1/0 (e.g. "the folder holds a checkpoint") on every process. */
int tune_writers_flag(int flag);

/* ---- candidates and their evaluation ---- */

/* a is a better validation metric than b (accuracy higher, RMSE lower; NaN never). */
int tune_better(const tune_state *ts, double a, double b);
/* The run options of candidate c on fold `fold` (< 0: the whole training part). */
run_options tune_candidate_options(const tune_state *ts, const candidate *c, int fold, int64_t steps);
/* The weight decay candidate c trains with: STL's searched one, or the
 * tune's --weight-decay for every other method; NaN when that is 0. */
double tune_candidate_weight_decay(const tune_state *ts, const candidate *c);
/* Claims a trial's or the final fit's run folder as `train --out` does. */
tnmtl_status tune_claim_run(runfolder *rf, const char *dir, int resumed, session *s, tnmtl_error *err);

/* ---- the searches over cand[] (one method, one batch size); *best: the chosen index ---- */

/* Successive halving: rungs, keeping the best 1/eta at each. */
tnmtl_status tune_halving(tune_state *ts, candidate *cand, int n, int rungs, int eta, int *best, tnmtl_error *err);
/* The regularisation path over n strengths (gammas; STL: weight decays)
 * with their n from-scratch twins after them (cand[2n]), at most `verify`
 * confirmations. */
tnmtl_status tune_gamma_path(tune_state *ts, candidate *cand, int n, int verify, int *best, tnmtl_error *err);

#endif
