/* run.c - options of a training run: parsing, defaults, JSON, data, model. */
#include "run.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dist_internal.h"
#include "tnmtl/csv.h"
#include "tnmtl/imagefolder.h"
#include "tnmtl/npz.h"
#include "tnmtl/omniglot.h"
#include "tnmtl/synthetic.h"
#include "util.h"

/* The paper's Omniglot network (method.md); tanh after every conv and fc64. */
#define OMNIGLOT_ARCH "conv8x5,pool2,conv12x3,pool2,conv16x3,pool2,fc64"
#define SYNTHETIC_ARCH "conv8x5,pool2,fc32"

const char run_options_help[] =
    "data:\n"
    "  --data SPEC          synthetic (default; synthetic:tasks=N for N tasks) | csv:FILE |\n"
    "                       omniglot:PATH | images:DIR\n"
    "                       (DIR/TASK/CLASS/image.png|jpg) | npz:FILE (x, y, task arrays)\n"
    "  --size S             omniglot, images: resize images to S x S by area averaging\n"
    "                       (default: omniglot 105, images their own size)\n"
    "  --channels 1|3       images: grey or RGB (default: 1 if every image is grey)\n"
    "  --invert             images: use 255 - pixel (ink on paper, e.g. Omniglot's PNGs)\n"
    "  --alphabets A        omniglot: K (the first K) or a comma list of names (default all)\n"
    "  --task-col NAME      csv: task column (default task)\n"
    "  --target-col NAME    csv: target column (default y)\n"
    "  --features A,B,...   csv: feature columns (default: all others)\n"
    "  --regression | --classification   csv: kind of target (default regression)\n"
    "  --data-seed S        synthetic: generator seed (default 1)\n"
    "  --train-frac F       fraction of each class (task) used for training\n"
    "                       (omniglot 0.1 as in the paper, synthetic 0.25, csv 0.5)\n"
    "  --val-frac F         part of the training examples held out for validation (0)\n"
    "  --val-from-test N    per class (per task for regression), N of the examples not\n"
    "                       used for training go to validation instead of test; the\n"
    "                       training part is unchanged (omniglot: docs/results.md)\n"
    "  --folds K --fold I   validate on fold I (0..K-1) of a stratified K-fold split\n"
    "                       of the training part, train on the rest; no test part\n"
    "  --split-seed S       seed of the split (default: --seed)\n"
    "model:\n"
    "  --method M           stl | ud | laf | tucker | tt (default tucker)\n"
    "  --arch STR           layers, e.g. " OMNIGLOT_ARCH "\n"
    "                       (default: that for omniglot, " SYNTHETIC_ARCH " for synthetic,\n"
    "                       \"\" = linear for csv); the task output layer is appended\n"
    "  --act tanh|relu|none activation after each conv and hidden fc (default tanh)\n"
    "  --share N            ud: the first N shareable layers are shared (default: all but the last)\n"
    "  --gamma G            weight of every norm term (default 0.01, the paper's)\n"
    "  --gamma-scale none|init  none (default): every norm term weighs gamma;\n"
    "                       init: term i of layer k weighs gamma * L0 / (n_k * its value\n"
    "                       at initialisation), L0 = the data term at initialisation,\n"
    "                       n_k = the layer's number of terms: gamma is then each layer's\n"
    "                       norm relative to the data term, whatever the layer's size,\n"
    "                       the number of tasks and the loss convention\n"
    "  --task-loss mean|sum data term: mean or sum of the task losses (default: sum for\n"
    "                       omniglot, where the mean makes gamma 0.01 collapse Tucker/TT;\n"
    "                       mean otherwise)\n"
    "  --weight-decay WD    L2 penalty WD * ||W||^2 on every task's weights of the shareable\n"
    "                       layers (those the norms act on), weighted like the task losses;\n"
    "                       any method, STL included (default 0: none)\n"
    "  --reg-every K        approximation, off by default: compute the norms' value and\n"
    "                       subgradient every K steps and reuse them in between (1 = exact,\n"
    "                       the default; it weakens the regulariser: docs/performance.md)\n"
    "training:\n"
    "  --optim adam|sgd     optimiser (default adam)\n"
    "  --lr LR              learning rate (default 1e-3 adam, 1e-2 sgd)\n"
    "  --momentum M         sgd momentum (default 0.9)\n"
    "  --batch B            examples per task per step; 0 = full batch (default 0)\n"
    "  --steps N            training steps (default 400 omniglot, 300 synthetic, 2000 csv)\n"
    "  --epochs E           instead of --steps: passes over the largest task's training set\n"
    "  --seed S             initialisation and minibatch seed (default 0)\n"
    "  --save-every N       checkpoint period in steps with --out (default 100)\n"
    "  --threads N          worker threads (default: all CPUs; results do not depend on it)\n"
    "  --dist-norm M        under mpirun: replicated (default; every process evaluates the\n"
    "                       whole norm, bit-identical to one process) | split (the terms\n"
    "                       that are sums over tasks from each process's own tasks; agrees\n"
    "                       to rounding)\n";

void run_options_init(run_options *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->data, sizeof o->data, "synthetic");
    snprintf(o->task_col, sizeof o->task_col, "task");
    snprintf(o->target_col, sizeof o->target_col, "y");
    o->regression = -1;
    o->data_seed = 1;
    o->method = TNMTL_METHOD_TUCKER;
    o->act = TNMTL_ACT_TANH;
    o->gamma = 0.01;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &o->optim);
    o->steps = 300;
    o->save_every = 100;
}

static tnmtl_status parse_u64(const char *opt, const char *s, uint64_t *out, tnmtl_error *err)
{
    long v;
    tnmtl_status st = cli_parse_int(opt, s, 0, 2147483647L, &v, err);
    if (!st) *out = (uint64_t)v;
    return st;
}

static tnmtl_status copy_str(const char *opt, const char *s, char *dst, size_t cap, tnmtl_error *err)
{
    if (strlen(s) >= cap) return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: value is longer than %zu characters", opt, cap - 1);
    memcpy(dst, s, strlen(s) + 1);
    return TNMTL_OK;
}

/* "synthetic:tasks=N" (N in 2 .. TNMTL_MAX_TASKS): *tasks = N. */
static tnmtl_status synthetic_tasks(const char *spec, int *tasks, tnmtl_error *err)
{
    const char *v = spec + strlen("synthetic:");
    if (strncmp(v, "tasks=", 6))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "--data: '%s': the synthetic data takes tasks=N", spec);
    long n;
    tnmtl_status st = cli_parse_int("--data synthetic:tasks", v + 6, 2, TNMTL_MAX_TASKS, &n, err);
    if (!st) *tasks = (int)n;
    return st;
}

int run_parse_option(run_options *o, int argc, char **argv, int *i, tnmtl_error *err)
{
    const char *opt = argv[*i];
    /* Flags without a value. */
    if (!strcmp(opt, "--regression")) {
        o->regression = 1;
        return 1;
    }
    if (!strcmp(opt, "--classification")) {
        o->regression = 0;
        return 1;
    }
    if (!strcmp(opt, "--invert")) {
        o->invert = 1;
        return 1;
    }
    static const char *const with_value[] = {
        "--data", "--size", "--channels", "--alphabets", "--task-col", "--target-col", "--features", "--data-seed",
        "--train-frac", "--val-frac", "--val-from-test", "--folds", "--fold", "--split-seed", "--method", "--arch", "--act", "--share", "--gamma", "--gamma-scale", "--task-loss", "--weight-decay", "--reg-every",
        "--optim", "--lr", "--momentum", "--batch", "--steps", "--epochs", "--seed", "--save-every", "--threads",
        "--dist-norm"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(opt, with_value[k]);
    if (!known) return 0;
    if (*i + 1 >= argc) {
        tnmtl_fail(err, TNMTL_ERR_INVALID, "%s needs a value", opt);
        return -1;
    }
    const char *v = argv[++*i];
    long n;
    tnmtl_status st = TNMTL_OK;
    if (!strcmp(opt, "--data")) {
        const char *colon = strchr(v, ':');
        int tasks = 0;
        if (strcmp(v, "synthetic") && strncmp(v, "synthetic:", 10) && strncmp(v, "csv:", 4) &&
            strncmp(v, "omniglot:", 9) && strncmp(v, "images:", 7) && strncmp(v, "npz:", 4))
            st = tnmtl_fail(err, TNMTL_ERR_INVALID,
                            "--data: '%s' is not synthetic, synthetic:tasks=N, csv:FILE, omniglot:PATH, images:DIR or "
                            "npz:FILE", v);
        else if (!strncmp(v, "synthetic:", 10) && synthetic_tasks(v, &tasks, err))
            st = err->status;
        else if (colon && !colon[1])
            st = tnmtl_fail(err, TNMTL_ERR_INVALID, "--data: '%s' names no file", v);
        else
            st = copy_str(opt, v, o->data, sizeof o->data, err);
    } else if (!strcmp(opt, "--size")) {
        if (!(st = cli_parse_int(opt, v, 1, 4096, &n, err))) o->size = (int)n;
    } else if (!strcmp(opt, "--channels")) {
        if (strcmp(v, "1") && strcmp(v, "3")) st = tnmtl_fail(err, TNMTL_ERR_INVALID, "--channels: '%s' is not 1 or 3", v);
        else o->channels = v[0] - '0';
    } else if (!strcmp(opt, "--alphabets")) {
        st = copy_str(opt, v, o->alphabets, sizeof o->alphabets, err);
    } else if (!strcmp(opt, "--task-col")) {
        st = copy_str(opt, v, o->task_col, sizeof o->task_col, err);
    } else if (!strcmp(opt, "--target-col")) {
        st = copy_str(opt, v, o->target_col, sizeof o->target_col, err);
    } else if (!strcmp(opt, "--features")) {
        st = copy_str(opt, v, o->features, sizeof o->features, err);
    } else if (!strcmp(opt, "--data-seed")) {
        st = parse_u64(opt, v, &o->data_seed, err);
    } else if (!strcmp(opt, "--train-frac")) {
        if (!(st = cli_parse_double(opt, v, 1e-9, 1.0, &o->train_frac, err))) o->set_mask |= RUN_SET_TRAIN_FRAC;
    } else if (!strcmp(opt, "--val-frac")) {
        st = cli_parse_double(opt, v, 0.0, 0.9, &o->val_frac, err);
    } else if (!strcmp(opt, "--val-from-test")) {
        if (!(st = cli_parse_int(opt, v, 0, 1000000L, &n, err))) o->val_from_test = (int)n;
    } else if (!strcmp(opt, "--folds")) {
        if (!(st = cli_parse_int(opt, v, 2, 1000000L, &n, err))) o->folds = (int)n;
    } else if (!strcmp(opt, "--fold")) {
        if (!(st = cli_parse_int(opt, v, 0, 1000000L, &n, err))) o->fold = (int)n;
    } else if (!strcmp(opt, "--split-seed")) {
        if (!(st = parse_u64(opt, v, &o->split_seed, err))) o->set_mask |= RUN_SET_SPLIT_SEED;
    } else if (!strcmp(opt, "--method")) {
        st = tnmtl_method_parse(v, &o->method, err);
    } else if (!strcmp(opt, "--arch")) {
        if (!(st = copy_str(opt, v, o->arch, sizeof o->arch, err))) o->set_mask |= RUN_SET_ARCH;
    } else if (!strcmp(opt, "--act")) {
        if (!strcmp(v, "tanh")) o->act = TNMTL_ACT_TANH;
        else if (!strcmp(v, "relu")) o->act = TNMTL_ACT_RELU;
        else if (!strcmp(v, "none")) o->act = TNMTL_ACT_NONE;
        else st = tnmtl_fail(err, TNMTL_ERR_INVALID, "--act: '%s' is not tanh, relu or none", v);
        o->set_mask |= RUN_SET_ACT;
    } else if (!strcmp(opt, "--share")) {
        if (!(st = cli_parse_int(opt, v, 0, TNMTL_MAX_LAYERS, &n, err))) {
            o->ud_share = (int)n;
            o->set_mask |= RUN_SET_SHARE;
        }
    } else if (!strcmp(opt, "--gamma")) {
        st = cli_parse_double(opt, v, 0.0, 1e6, &o->gamma, err);
    } else if (!strcmp(opt, "--gamma-scale")) {
        if (!strcmp(v, "none")) o->gamma_scale = RUN_GAMMA_SCALE_NONE;
        else if (!strcmp(v, "init")) o->gamma_scale = RUN_GAMMA_SCALE_INIT;
        else st = tnmtl_fail(err, TNMTL_ERR_INVALID, "--gamma-scale: '%s' is not none or init", v);
    } else if (!strcmp(opt, "--task-loss")) {
        if (!strcmp(v, "mean")) o->sum_task_losses = 0;
        else if (!strcmp(v, "sum")) o->sum_task_losses = 1;
        else st = tnmtl_fail(err, TNMTL_ERR_INVALID, "--task-loss: '%s' is not mean or sum", v);
        o->set_mask |= RUN_SET_TASK_LOSS;
    } else if (!strcmp(opt, "--weight-decay")) {
        st = cli_parse_double(opt, v, 0.0, 1e6, &o->weight_decay, err);
    } else if (!strcmp(opt, "--reg-every")) {
        if (!(st = cli_parse_int(opt, v, 1, 1000000, &n, err))) o->reg_every = n > 1 ? (int)n : 0;
    } else if (!strcmp(opt, "--optim")) {
        double lr = o->optim.lr;
        if (!strcmp(v, "adam")) tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &o->optim);
        else if (!strcmp(v, "sgd")) tnmtl_optim_defaults(TNMTL_OPTIM_SGD, &o->optim);
        else st = tnmtl_fail(err, TNMTL_ERR_INVALID, "--optim: '%s' is not adam or sgd", v);
        if (o->set_mask & RUN_SET_LR) o->optim.lr = lr;
    } else if (!strcmp(opt, "--lr")) {
        if (!(st = cli_parse_double(opt, v, 1e-12, 1e3, &o->optim.lr, err))) o->set_mask |= RUN_SET_LR;
    } else if (!strcmp(opt, "--momentum")) {
        st = cli_parse_double(opt, v, 0.0, 0.9999, &o->optim.momentum, err);
    } else if (!strcmp(opt, "--batch")) {
        if (!(st = cli_parse_int(opt, v, 0, 1L << 20, &n, err))) {
            o->batch = (int)n;
            o->set_mask |= RUN_SET_BATCH;
        }
    } else if (!strcmp(opt, "--steps")) {
        if (!(st = cli_parse_int(opt, v, 0, 100000000L, &n, err))) {
            o->steps = n;
            o->epochs = 0;
            o->set_mask |= RUN_SET_STEPS;
        }
    } else if (!strcmp(opt, "--epochs")) {
        if (!(st = cli_parse_double(opt, v, 1e-6, 1e6, &o->epochs, err))) o->set_mask |= RUN_SET_STEPS;
    } else if (!strcmp(opt, "--seed")) {
        st = parse_u64(opt, v, &o->seed, err);
    } else if (!strcmp(opt, "--threads")) {
        if (!(st = cli_parse_int(opt, v, 1, 256, &n, err))) o->threads = (int)n;
    } else if (!strcmp(opt, "--dist-norm")) {
        if (!strcmp(v, "replicated") || !strcmp(v, "split")) o->dist_norm_split = !strcmp(v, "split");
        else st = tnmtl_fail(err, TNMTL_ERR_INVALID, "--dist-norm: '%s' is not replicated or split", v);
    } else if (!strcmp(opt, "--save-every")) {
        if (!(st = cli_parse_int(opt, v, 0, 100000000L, &n, err))) o->save_every = n;
    }
    return st ? -1 : 1;
}

static int data_is(const run_options *o, const char *prefix)
{
    return !strncmp(o->data, prefix, strlen(prefix));
}

tnmtl_status run_finalise(run_options *o, const tnmtl_dataset *ds, tnmtl_error *err)
{
    const int omniglot = data_is(o, "omniglot:"), csv = data_is(o, "csv:");
    const int arrays = data_is(o, "images:") || data_is(o, "npz:");
    /* Own data: the small convnet for images, linear for feature vectors. */
    const int vectors = csv || (arrays && ds && ds->in_h == 1 && ds->in_w == 1);
    if (!(o->set_mask & RUN_SET_ARCH))
        snprintf(o->arch, sizeof o->arch, "%s", omniglot ? OMNIGLOT_ARCH : vectors ? "" : SYNTHETIC_ARCH);
    if (!(o->set_mask & RUN_SET_STEPS)) o->steps = omniglot ? 400 : csv ? 2000 : 300;
    if (!(o->set_mask & RUN_SET_SPLIT_SEED)) o->split_seed = o->seed;
    if (!(o->set_mask & RUN_SET_TRAIN_FRAC)) o->train_frac = omniglot ? 0.1 : csv || arrays ? 0.5 : 0.25;
    if ((o->channels || o->invert) && !data_is(o, "images:"))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "--channels and --invert apply to images:DIR data only");
    if (o->size && !omniglot && !data_is(o, "images:"))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "--size applies to omniglot: and images: data only");
    /* Omniglot (50 tasks): with the mean, gamma = 0.01 outweighs each task's
     * data gradient and Tucker/TT collapse (docs/results.md). */
    if (!(o->set_mask & RUN_SET_TASK_LOSS)) o->sum_task_losses = omniglot;
    if (o->method == TNMTL_METHOD_UD && !(o->set_mask & RUN_SET_SHARE)) o->ud_share = -1; /* resolved below */
    if (ds && o->epochs > 0) {
        /* Steps for `epochs` passes over the largest task's training part. */
        int64_t most = 0;
        for (int t = 0; t < ds->n_tasks; t++) {
            int64_t n = ds->task_begin[t + 1] - ds->task_begin[t];
            most = n > most ? n : most;
        }
        double per_step = o->batch > 0 ? o->batch : most * o->train_frac;
        if (per_step < 1) per_step = 1;
        o->steps = (int64_t)ceil(o->epochs * most * o->train_frac / per_step);
        o->epochs = 0;
    }
    if (o->folds && (o->val_frac > 0 || o->val_from_test > 0))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "--folds makes its own validation part: drop --val-frac and --val-from-test");
    if (o->fold && !o->folds) return tnmtl_fail(err, TNMTL_ERR_INVALID, "--fold needs --folds");
    if (o->folds && o->fold >= o->folds)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "--fold %d is not in 0..%d (--folds %d)", o->fold, o->folds - 1, o->folds);
    if (o->val_frac > 0 && o->train_frac >= 1.0)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "--val-frac needs a training part: --train-frac must be < 1");
    return TNMTL_OK;
}

static const char *act_name(tnmtl_activation a)
{
    return a == TNMTL_ACT_RELU ? "relu" : a == TNMTL_ACT_NONE ? "none" : "tanh";
}

char *run_options_to_json(const run_options *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", o->data);
    cJSON_AddNumberToObject(j, "size", o->size);
    if (o->channels) cJSON_AddNumberToObject(j, "channels", o->channels); /* absent: native */
    if (o->invert) cJSON_AddNumberToObject(j, "invert", 1);
    cJSON_AddStringToObject(j, "alphabets", o->alphabets);
    cJSON_AddStringToObject(j, "task_col", o->task_col);
    cJSON_AddStringToObject(j, "target_col", o->target_col);
    cJSON_AddStringToObject(j, "features", o->features);
    cJSON_AddNumberToObject(j, "regression", o->regression);
    cJSON_AddNumberToObject(j, "data_seed", (double)o->data_seed);
    cJSON_AddNumberToObject(j, "train_frac", o->train_frac);
    cJSON_AddNumberToObject(j, "val_frac", o->val_frac);
    if (o->val_from_test > 0) cJSON_AddNumberToObject(j, "val_from_test", o->val_from_test); /* absent: 0 */
    if (o->folds > 0) { /* absent: no cross-validation */
        cJSON_AddNumberToObject(j, "folds", o->folds);
        cJSON_AddNumberToObject(j, "fold", o->fold);
    }
    cJSON_AddNumberToObject(j, "split_seed", (double)o->split_seed);
    cJSON_AddStringToObject(j, "method", tnmtl_method_name(o->method));
    cJSON_AddStringToObject(j, "arch", o->arch);
    cJSON_AddStringToObject(j, "act", act_name(o->act));
    cJSON_AddNumberToObject(j, "share", o->ud_share);
    cJSON_AddNumberToObject(j, "gamma", o->gamma);
    if (o->gamma_scale == RUN_GAMMA_SCALE_INIT) cJSON_AddStringToObject(j, "gamma_scale", "init"); /* absent: none */
    cJSON_AddStringToObject(j, "task_loss", o->sum_task_losses ? "sum" : "mean");
    if (o->weight_decay > 0) cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay); /* absent: none */
    if (o->reg_every > 1) cJSON_AddNumberToObject(j, "reg_every", o->reg_every); /* absent: exact */
    cJSON_AddStringToObject(j, "optim", o->optim.kind == TNMTL_OPTIM_SGD ? "sgd" : "adam");
    cJSON_AddNumberToObject(j, "lr", o->optim.lr);
    cJSON_AddNumberToObject(j, "momentum", o->optim.momentum);
    cJSON_AddNumberToObject(j, "beta1", o->optim.beta1);
    cJSON_AddNumberToObject(j, "beta2", o->optim.beta2);
    cJSON_AddNumberToObject(j, "eps", o->optim.eps);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "steps", (double)o->steps);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddNumberToObject(j, "save_every", (double)o->save_every);
    if (o->run_id[0]) cJSON_AddStringToObject(j, "run_id", o->run_id); /* absent: no identity */
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* Field readers that name the missing or mistyped field. */
static tnmtl_status json_num(const cJSON *j, const char *key, double lo, double hi, double *out, tnmtl_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "configuration field '%s' is missing or out of range", key);
    *out = v->valuedouble;
    return TNMTL_OK;
}

static tnmtl_status json_str(const cJSON *j, const char *key, char *dst, size_t cap, tnmtl_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "configuration field '%s' is missing or not a string", key);
    memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
    return TNMTL_OK;
}

tnmtl_status run_options_from_json(const char *json, run_options *o, tnmtl_error *err)
{
    run_options_init(o);
    cJSON *j = cJSON_Parse(json);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "the run configuration is not a JSON object");
    }
    char method[32], act[16], optim[16], task_loss[16];
    double size = 0, regression = 0, data_seed = 0, split_seed = 0, share = 0, batch = 0, steps = 0, seed = 0,
           save_every = 0;
    tnmtl_status st;
    if ((st = json_str(j, "data", o->data, sizeof o->data, err)) ||
        (st = json_num(j, "size", 0, 4096, &size, err)) ||
        (st = json_str(j, "alphabets", o->alphabets, sizeof o->alphabets, err)) ||
        (st = json_str(j, "task_col", o->task_col, sizeof o->task_col, err)) ||
        (st = json_str(j, "target_col", o->target_col, sizeof o->target_col, err)) ||
        (st = json_str(j, "features", o->features, sizeof o->features, err)) ||
        (st = json_num(j, "regression", -1, 1, &regression, err)) ||
        (st = json_num(j, "data_seed", 0, 4294967295.0, &data_seed, err)) ||
        (st = json_num(j, "train_frac", 0, 1, &o->train_frac, err)) ||
        (st = json_num(j, "val_frac", 0, 0.9, &o->val_frac, err)) ||
        (st = json_num(j, "split_seed", 0, 4294967295.0, &split_seed, err)) ||
        (st = json_str(j, "method", method, sizeof method, err)) ||
        (st = json_str(j, "arch", o->arch, sizeof o->arch, err)) ||
        (st = json_str(j, "act", act, sizeof act, err)) ||
        (st = json_num(j, "share", -1, TNMTL_MAX_LAYERS, &share, err)) ||
        (st = json_num(j, "gamma", 0, 1e6, &o->gamma, err)) ||
        (st = json_str(j, "task_loss", task_loss, sizeof task_loss, err)) ||
        (st = json_str(j, "optim", optim, sizeof optim, err)) ||
        (st = json_num(j, "lr", 0, 1e3, &o->optim.lr, err)) ||
        (st = json_num(j, "momentum", 0, 1, &o->optim.momentum, err)) ||
        (st = json_num(j, "beta1", 0, 1, &o->optim.beta1, err)) ||
        (st = json_num(j, "beta2", 0, 1, &o->optim.beta2, err)) ||
        (st = json_num(j, "eps", 0, 1, &o->optim.eps, err)) ||
        (st = json_num(j, "batch", 0, 1 << 20, &batch, err)) ||
        (st = json_num(j, "steps", 0, 1e8, &steps, err)) ||
        (st = json_num(j, "seed", 0, 4294967295.0, &seed, err)) ||
        (st = json_num(j, "save_every", 0, 1e8, &save_every, err))) {
        cJSON_Delete(j);
        return st;
    }
    /* Optional fields, absent at their defaults. */
    double reg_every = 0, val_from_test = 0, folds = 0, fold = 0, weight_decay = 0;
    if ((cJSON_GetObjectItemCaseSensitive(j, "weight_decay") &&
         (st = json_num(j, "weight_decay", 0, 1e6, &weight_decay, err))) ||
        (cJSON_GetObjectItemCaseSensitive(j, "reg_every") &&
         (st = json_num(j, "reg_every", 2, 1000000, &reg_every, err))) ||
        (cJSON_GetObjectItemCaseSensitive(j, "val_from_test") &&
         (st = json_num(j, "val_from_test", 0, 1000000, &val_from_test, err))) ||
        (cJSON_GetObjectItemCaseSensitive(j, "folds") &&
         ((st = json_num(j, "folds", 2, 1000000, &folds, err)) || (st = json_num(j, "fold", 0, folds - 1, &fold, err))))) {
        cJSON_Delete(j);
        return st;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "run_id");
    if (id && (st = json_str(j, "run_id", o->run_id, sizeof o->run_id, err))) {
        cJSON_Delete(j);
        return st;
    }
    double channels = 0, invert = 0;
    if ((cJSON_GetObjectItemCaseSensitive(j, "channels") && (st = json_num(j, "channels", 1, 3, &channels, err))) ||
        (cJSON_GetObjectItemCaseSensitive(j, "invert") && (st = json_num(j, "invert", 0, 1, &invert, err)))) {
        cJSON_Delete(j);
        return st;
    }
    o->channels = (int)channels;
    o->invert = (int)invert;
    const cJSON *gs = cJSON_GetObjectItemCaseSensitive(j, "gamma_scale");
    if (gs && !(cJSON_IsString(gs) && (!strcmp(gs->valuestring, "init") || !strcmp(gs->valuestring, "none")))) {
        cJSON_Delete(j);
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "configuration field 'gamma_scale' is not \"none\" or \"init\"");
    }
    o->gamma_scale = gs && !strcmp(gs->valuestring, "init") ? RUN_GAMMA_SCALE_INIT : RUN_GAMMA_SCALE_NONE;
    cJSON_Delete(j);
    o->val_from_test = (int)val_from_test;
    o->folds = (int)folds;
    o->fold = (int)fold;
    o->reg_every = (int)reg_every;
    o->weight_decay = weight_decay;
    o->size = (int)size;
    o->regression = (int)regression;
    o->data_seed = (uint64_t)data_seed;
    o->split_seed = (uint64_t)split_seed;
    o->ud_share = (int)share;
    o->batch = (int)batch;
    o->steps = (int64_t)steps;
    o->seed = (uint64_t)seed;
    o->save_every = (int64_t)save_every;
    o->sum_task_losses = !strcmp(task_loss, "sum");
    o->optim.kind = !strcmp(optim, "sgd") ? TNMTL_OPTIM_SGD : TNMTL_OPTIM_ADAM;
    o->act = !strcmp(act, "relu") ? TNMTL_ACT_RELU : !strcmp(act, "none") ? TNMTL_ACT_NONE : TNMTL_ACT_TANH;
    if ((st = tnmtl_method_parse(method, &o->method, err))) return st;
    o->set_mask = RUN_SET_ARCH | RUN_SET_STEPS | RUN_SET_LR | RUN_SET_BATCH | RUN_SET_TRAIN_FRAC |
                  RUN_SET_SPLIT_SEED | RUN_SET_SHARE | RUN_SET_ACT | RUN_SET_TASK_LOSS;
    return TNMTL_OK;
}

/* A progress line on stderr, on a terminal only. */
static void on_load_progress(void *user, const char *stage, int64_t done, int64_t total)
{
    (void)user;
    fprintf(stderr, "\rloading images: %s %lld / %lld%s", stage, (long long)done, (long long)total,
            done == total ? "\n" : "");
    fflush(stderr);
}

tnmtl_status run_task_weights(const run_options *o, const tnmtl_dataset *ds, int64_t *weight, tnmtl_error *err)
{
    tnmtl_split base;
    tnmtl_status st = tnmtl_split_make_holdout(ds, o->train_frac, o->val_frac, o->val_from_test, o->split_seed, &base,
                                               err);
    if (st) return st;
    for (int t = 0; t < ds->n_tasks; t++) weight[t] = tnmtl_split_count(&base, TNMTL_PART_TRAIN, t);
    tnmtl_split_free(&base);
    return TNMTL_OK;
}

tnmtl_status run_process_tasks(const run_options *o, const tnmtl_dataset *ds, int *begin, int *end, tnmtl_error *err)
{
    const int P = tnmtl_dist_size(cli_dist), r = tnmtl_dist_rank(cli_dist);
    *begin = 0;
    *end = ds->n_tasks;
    if (P <= 1) return TNMTL_OK;
    if (P > ds->n_tasks)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%d processes for %d tasks: run at most one process per task", P,
                          ds->n_tasks);
    int64_t *weight = tnmtl_calloc((size_t)ds->n_tasks, sizeof *weight, "task sizes", err);
    int *b = tnmtl_calloc((size_t)P + 1, sizeof *b, "task blocks", err);
    tnmtl_status st = weight && b ? run_task_weights(o, ds, weight, err) : TNMTL_ERR_NOMEM;
    if (!st) {
        tnmtl_dist_partition(weight, ds->n_tasks, P, b);
        *begin = b[r];
        *end = b[r + 1];
    }
    free(weight);
    free(b);
    return st;
}

tnmtl_status run_spread_tasks(const run_options *o, const tnmtl_dataset *ds, tnmtl_mtl *m, tnmtl_error *err)
{
    if (tnmtl_dist_size(cli_dist) <= 1) return TNMTL_OK;
    int64_t *weight = tnmtl_calloc((size_t)ds->n_tasks, sizeof *weight, "task sizes", err);
    tnmtl_status st = weight ? run_task_weights(o, ds, weight, err) : TNMTL_ERR_NOMEM;
    if (!st) st = tnmtl_mtl_set_dist(m, cli_dist, weight, err);
    free(weight);
    if (!st) tnmtl_mtl_set_dist_norm(m, o->dist_norm_split);
    if (!st && o->threads == 0) st = tnmtl_mtl_set_threads(m, cli_cores_per_process(), err);
    return st;
}

static tnmtl_status select_process_tasks(void *user, const tnmtl_dataset *ds, int *begin, int *end, tnmtl_error *err)
{
    return run_process_tasks(user, ds, begin, end, err);
}

/* The processes agree on the example shape their image files give: one
 * size (else --size is needed), and colour if any has colour. */
static tnmtl_status agree_image_shape(void *user, int *h, int *w, int *c, tnmtl_error *err)
{
    (void)user;
    int v[5] = {*h, -*h, *w, -*w, *c};
    tnmtl_dist_any(cli_dist, v, 5); /* the maximum of each over the processes */
    if (v[0] != -v[1] || v[2] != -v[3])
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "the images of different processes' tasks differ in size (from "
                          "%dx%d to %dx%d pixels): give a size (--size S) to resize them all", -v[3], -v[1], v[2],
                          v[0]);
    *c = v[4];
    return TNMTL_OK;
}

tnmtl_status run_load_dataset(const run_options *o, tnmtl_dataset *ds, void (*bad_input)(void *, const char *),
                              void *user, tnmtl_error *err)
{
    memset(ds, 0, sizeof *ds);
    tnmtl_input_select own = {0};
    if (tnmtl_dist_size(cli_dist) > 1) {
        own.select = select_process_tasks;
        own.agree_shape = agree_image_shape;
        own.user = (void *)o;
    }
    if (data_is(o, "arrays:")) /* saved by the Python package's Run.save */
        return tnmtl_fail(err, TNMTL_ERR_INVALID,
                          "the run was trained on numpy arrays (%s): load it in Python with tnmtl.load(dir, dataset=...)",
                          o->data + 7);
    tnmtl_status st;
    if (data_is(o, "images:")) {
        tnmtl_imagefolder_options io = {0};
        io.size = o->size;
        io.channels = o->channels;
        io.invert = o->invert;
        io.threads = o->threads;
        io.bad_input = bad_input;
        io.bad_input_user = user;
        if (isatty(2)) io.progress = on_load_progress;
        io.inputs = own;
        st = tnmtl_imagefolder_load(o->data + 7, &io, ds, err);
    } else if (data_is(o, "npz:")) {
        st = tnmtl_npz_load(o->data + 4, 0, ds, err);
    } else if (data_is(o, "omniglot:")) {
        tnmtl_omniglot_options oo = {0};
        oo.size = o->size;
        char *end;
        long k = strtol(o->alphabets, &end, 10);
        if (o->alphabets[0] && !*end && k > 0)
            oo.first_alphabets = (int)k;
        else
            oo.alphabets = o->alphabets;
        oo.inputs = own;
        st = tnmtl_omniglot_load(o->data + 9, &oo, ds, err);
    } else if (data_is(o, "csv:")) {
        enum { MAX_FEATURES = 1024 };
        char names[sizeof o->features];
        const char *feature[MAX_FEATURES];
        tnmtl_csv_options co = {0};
        co.task_column = o->task_col;
        co.target_column = o->target_col;
        co.kind = o->regression == 0 ? TNMTL_TARGET_CLASS : TNMTL_TARGET_REAL;
        if (o->features[0]) {
            snprintf(names, sizeof names, "%s", o->features);
            for (char *save = NULL, *tok = strtok_r(names, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (co.n_feature_columns == MAX_FEATURES)
                    return tnmtl_fail(err, TNMTL_ERR_INVALID, "--features: more than %d columns", MAX_FEATURES);
                feature[co.n_feature_columns++] = tok;
            }
            co.feature_columns = feature;
        }
        st = tnmtl_csv_load(o->data + 4, &co, ds, err);
    } else {
        tnmtl_synthetic_options so;
        tnmtl_synthetic_options_init(&so);
        so.seed = o->data_seed;
        int tasks = 0;
        if (!strncmp(o->data, "synthetic:", 10) && (st = synthetic_tasks(o->data, &tasks, err))) return st;
        if (tasks > 0) { /* the default's kind: two groups of related tasks and two (or three) unrelated ones */
            so.n_groups = tasks >= 4 ? 2 : 1;
            so.tasks_per_group = (tasks - 2) / so.n_groups > 0 ? (tasks - 2) / so.n_groups : 1;
            so.n_unrelated = tasks - so.n_groups * so.tasks_per_group;
        }
        st = tnmtl_synthetic_make(&so, ds, err);
    }
    int b, e;
    if (!st && !ds->inputs_task_end) st = tnmtl_dataset_select_inputs(ds, &own, &b, &e, err); /* read whole */
    if (!st) st = tnmtl_dataset_validate(ds, err);
    if (st) tnmtl_dataset_free(ds);
    return st;
}

tnmtl_status run_load_data(const run_options *o, tnmtl_dataset *ds, tnmtl_split *split, tnmtl_error *err)
{
    memset(split, 0, sizeof *split);
    tnmtl_status st = run_load_dataset(o, ds, NULL, NULL, err);
    if (!st) st = run_make_split(o, ds, split, err);
    if (st) {
        tnmtl_dataset_free(ds);
        tnmtl_split_free(split);
    }
    return st;
}

tnmtl_status run_make_split(const run_options *o, const tnmtl_dataset *ds, tnmtl_split *split, tnmtl_error *err)
{
    tnmtl_status st = tnmtl_split_make_holdout(ds, o->train_frac, o->val_frac, o->val_from_test, o->split_seed, split, err);
    if (st || o->folds < 2) return st;
    tnmtl_split base = *split;
    st = tnmtl_split_fold(ds, &base, o->folds, o->fold, o->split_seed, split, err);
    tnmtl_split_free(&base);
    return st;
}

tnmtl_status run_options_read_file(const char *path, run_options *o, tnmtl_error *err)
{
    unsigned char *text = NULL;
    size_t len;
    tnmtl_status st = tnmtl_read_file(path, 1 << 20, &text, &len, err);
    if (st) return st;
    st = run_options_from_json((const char *)text, o, err);
    free(text);
    if (st) tnmtl_error_prefix(err, "%s", path);
    return st;
}

void run_model_config(const run_options *o, const tnmtl_dataset *ds, tnmtl_mtl_config *out)
{
    tnmtl_mtl_config mc = {0};
    mc.arch = o->arch;
    mc.act = o->act;
    mc.in_h = ds->in_h;
    mc.in_w = ds->in_w;
    mc.in_c = ds->in_c;
    mc.n_tasks = ds->n_tasks;
    mc.n_out = ds->n_classes;
    mc.kind = ds->kind;
    mc.method = o->method;
    mc.ud_share = o->ud_share;
    mc.gamma = o->gamma;
    mc.sum_task_losses = o->sum_task_losses;
    mc.reg_every = o->reg_every;
    *out = mc;
}

static tnmtl_norm_method norm_of_method(tnmtl_method m)
{
    return m == TNMTL_METHOD_TT ? TNMTL_NORM_TT : m == TNMTL_METHOD_TUCKER ? TNMTL_NORM_TUCKER : TNMTL_NORM_LAF;
}

/* --gamma-scale init: table[k * TNMTL_NORM_MAX_NDIM + i] (shareable layer k,
 * term i) = gamma * L0 / (n_k * ||unfolding i of layer k||_*), L0 the data
 * term (mean or sum of the task losses, on the first minibatch) and the norms
 * of a model initialised with the run's seed (so a resumed run gets the same
 * table).  mc: the model's configuration without a table. */
static tnmtl_status gamma_table_at_init(const run_options *o, const tnmtl_mtl_config *mc, const tnmtl_dataset *ds,
                                        const tnmtl_split *split, double *table, tnmtl_error *err)
{
    if (!split) return tnmtl_fail(err, TNMTL_ERR_INTERNAL, "--gamma-scale init needs the split");
    tnmtl_mtl_config pc = *mc;
    pc.gamma = 0; /* the probe's objective skips the norms */
    tnmtl_mtl *probe;
    double data_term = 0, reg = 0;
    tnmtl_status st = tnmtl_mtl_create(&pc, &probe, err);
    if (st) return st;
    if (o->threads > 0) st = tnmtl_mtl_set_threads(probe, o->threads, err);
    if (!st) st = run_spread_tasks(o, ds, probe, err); /* each process's data holds its own tasks only */
    if (!st) st = tnmtl_mtl_init(probe, o->seed, err);
    if (!st) st = tnmtl_mtl_objective(probe, ds, split, o->seed, 0, o->batch, &data_term, &reg, err);
    for (int i = 0, k = 0; !st && i < probe->n_blocks; i++) {
        const tnmtl_param_block *b = &probe->blocks[i];
        if (!b->shareable) continue;
        const int n_terms = tnmtl_norm_n_terms(norm_of_method(o->method), b->ndim);
        double terms[TNMTL_NORM_MAX_NDIM], v;
        tnmtl_mtl_stack(probe, b, probe->params + b->w_offset, probe->stack);
        st = tnmtl_norm_eval(norm_of_method(o->method), b->ndim, b->shape, probe->stack, NULL, &v, terms, NULL, err);
        for (int t = 0; !st && t < n_terms; t++)
            table[k * TNMTL_NORM_MAX_NDIM + t] = terms[t] > 0 ? o->gamma * data_term / (n_terms * terms[t]) : o->gamma;
        k++;
    }
    tnmtl_mtl_free(probe);
    if (st) tnmtl_error_prefix(err, "--gamma-scale init");
    return st;
}

tnmtl_status run_build_model(const run_options *o, const tnmtl_dataset *ds, const tnmtl_split *split, tnmtl_mtl **m,
                             tnmtl_error *err)
{
    tnmtl_mtl_config mc;
    run_model_config(o, ds, &mc);
    if (o->method == TNMTL_METHOD_UD && o->ud_share < 0) {
        /* Default: every shareable layer but the last is shared. */
        mc.method = TNMTL_METHOD_STL;
        tnmtl_mtl *probe;
        tnmtl_status st = tnmtl_mtl_create(&mc, &probe, err);
        if (st) return st;
        int n = 0;
        for (int i = 0; i < probe->n_blocks; i++) n += probe->blocks[i].shareable;
        tnmtl_mtl_free(probe);
        mc.method = TNMTL_METHOD_UD;
        mc.ud_share = n > 1 ? n - 1 : n;
    }
    double table[TNMTL_MAX_LAYERS * TNMTL_NORM_MAX_NDIM];
    const int normed = mc.method == TNMTL_METHOD_LAF || mc.method == TNMTL_METHOD_TUCKER || mc.method == TNMTL_METHOD_TT;
    if (normed && o->gamma_scale == RUN_GAMMA_SCALE_INIT) {
        tnmtl_status st = gamma_table_at_init(o, &mc, ds, split, table, err);
        if (st) return st;
        mc.gamma_table = table;
    }
    tnmtl_status st = tnmtl_mtl_create(&mc, m, err);
    if (!st) (*m)->cfg.gamma_table = NULL; /* read at creation only; table is local */
    if (!st && ((o->threads > 0 && (st = tnmtl_mtl_set_threads(*m, o->threads, err))) ||
                (st = tnmtl_mtl_set_weight_decay(*m, o->weight_decay, err)))) {
        tnmtl_mtl_free(*m);
        *m = NULL;
    }
    return st;
}
