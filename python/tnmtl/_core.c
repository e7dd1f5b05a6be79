/* _core.c - the tnmtl Python extension: trace norms on numpy arrays, and
 * training runs (cli/run.c options, cli/session.c sessions) on numpy data.
 *
 * Plain CPython + numpy C API.  Every library failure is raised as
 * tnmtl.Error (a ValueError) with the library's message; the GIL is released
 * while the library computes.  The Python layer (tnmtl/__init__.py) wraps
 * these functions; they are not a public interface of their own.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <cJSON.h>
#include <signal.h>
#include <string.h>

#include "run.h"
#include "session.h"
#include "tnmtl.h"
#include "tnmtl/norm.h"
#include "tnmtl/report.h"
#include "util.h"

static PyObject *Error; /* tnmtl.Error, a ValueError */

/* Raises tnmtl.Error(msg) with .status set to the status name; returns NULL. */
static PyObject *raise_status(tnmtl_status st, const char *msg)
{
    PyObject *exc = PyObject_CallFunction(Error, "s", msg && msg[0] ? msg : tnmtl_status_name(st));
    if (!exc) return NULL;
    PyObject *name = PyUnicode_FromString(tnmtl_status_name(st));
    if (name) PyObject_SetAttrString(exc, "status", name);
    Py_XDECREF(name);
    PyErr_SetObject(Error, exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *raise_err(const tnmtl_error *err)
{
    return raise_status(err->status ? err->status : TNMTL_ERR_INTERNAL, err->msg);
}

/* W as an aligned C-contiguous float32 or float64 array (no copy when it
 * already is one; copy forces a fresh one).  Other dtypes, and arrays of
 * more than TNMTL_NORM_MAX_NDIM or no axes, raise tnmtl.Error. */
static PyArrayObject *float_array(PyObject *W, int copy, int *type)
{
    PyArrayObject *probe = (PyArrayObject *)PyArray_FROM_O(W);
    if (!probe) return NULL;
    const int t = PyArray_TYPE(probe), nd = PyArray_NDIM(probe);
    if (t != NPY_FLOAT32 && t != NPY_FLOAT64) {
        PyArray_Descr *d = PyArray_DESCR(probe);
        PyErr_Format(Error, "W must be a float32 or float64 array, not %s", d->typeobj->tp_name);
        Py_DECREF(probe);
        return NULL;
    }
    if (nd < 1 || nd > TNMTL_NORM_MAX_NDIM) {
        PyErr_Format(Error, "W has %d axes; a tensor for the norms has 1 to %d (task axis last)", nd,
                     TNMTL_NORM_MAX_NDIM);
        Py_DECREF(probe);
        return NULL;
    }
    int flags = NPY_ARRAY_IN_ARRAY | (copy ? NPY_ARRAY_ENSURECOPY : 0);
    PyArrayObject *a = (PyArrayObject *)PyArray_FROM_OTF((PyObject *)probe, t, flags);
    Py_DECREF(probe);
    *type = t;
    return a;
}

/* gamma: None (NULL, all 1), a number (every term) or a sequence of n
 * numbers; fills g[TNMTL_NORM_MAX_NDIM]. */
static int parse_gamma(PyObject *gamma, int n, double *g, const double **out)
{
    *out = NULL;
    if (!gamma || gamma == Py_None) return 0;
    if (PyNumber_Check(gamma) && !PySequence_Check(gamma)) {
        double v = PyFloat_AsDouble(gamma);
        if (v == -1.0 && PyErr_Occurred()) return -1;
        for (int i = 0; i < n; i++) g[i] = v;
    } else {
        PyObject *seq = PySequence_Fast(gamma, "gamma must be None, a number or a sequence of numbers");
        if (!seq) return -1;
        if (PySequence_Fast_GET_SIZE(seq) != n) {
            PyErr_Format(Error, "gamma has %zd values; this method and shape have %d terms",
                         PySequence_Fast_GET_SIZE(seq), n);
            Py_DECREF(seq);
            return -1;
        }
        for (int i = 0; i < n; i++) {
            g[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
            if (g[i] == -1.0 && PyErr_Occurred()) {
                Py_DECREF(seq);
                return -1;
            }
        }
        Py_DECREF(seq);
    }
    *out = g;
    return 0;
}

/* The arguments of a norm function: W as an array (a float32 copy for
 * the operators that work in place), its method, shape, terms and gamma. */
typedef struct norm_call {
    PyArrayObject *a;                          /* owned                     */
    int type;                                  /* W's dtype                 */
    tnmtl_norm_method m;
    int nd, n_terms;
    int64_t shape[TNMTL_NORM_MAX_NDIM];
    double g[TNMTL_NORM_MAX_NDIM];
    const double *gamma;                       /* g, or NULL: all 1         */
} norm_call;

static int norm_call_init(norm_call *c, PyObject *W, const char *method, PyObject *gamma, int f32_copy)
{
    memset(c, 0, sizeof *c);
    if (!(c->a = float_array(W, 0, &c->type))) return -1;
    if (f32_copy) {
        PyArrayObject *copy = (PyArrayObject *)PyArray_FROM_OTF(
            (PyObject *)c->a, NPY_FLOAT32, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_ENSURECOPY | NPY_ARRAY_FORCECAST);
        Py_DECREF(c->a);
        if (!(c->a = copy)) return -1;
    }
    tnmtl_error err = {0};
    if (tnmtl_norm_method_parse(method, &c->m, &err)) {
        raise_err(&err);
        Py_CLEAR(c->a);
        return -1;
    }
    c->nd = PyArray_NDIM(c->a);
    for (int i = 0; i < c->nd; i++) c->shape[i] = PyArray_DIM(c->a, i);
    c->n_terms = tnmtl_norm_n_terms(c->m, c->nd);
    if (c->n_terms < 1) c->n_terms = 1; /* the library names the bad shape */
    if (parse_gamma(gamma, c->n_terms, c->g, &c->gamma)) {
        Py_CLEAR(c->a);
        return -1;
    }
    return 0;
}

static PyObject *py_norm(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"W", "method", "gamma", "grad", NULL};
    PyObject *W, *gamma = Py_None;
    const char *method = "tucker";
    int want_grad = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|sOp", kwlist, &W, &method, &gamma, &want_grad)) return NULL;
    norm_call c;
    if (norm_call_init(&c, W, method, gamma, 0)) return NULL;
    PyArrayObject *grad = NULL;
    if (want_grad && !(grad = (PyArrayObject *)PyArray_SimpleNew(c.nd, PyArray_DIMS(c.a), c.type))) {
        Py_DECREF(c.a);
        return NULL;
    }
    double value = 0;
    tnmtl_error err = {0};
    tnmtl_status st;
    void *gd = grad ? PyArray_DATA(grad) : NULL;
    Py_BEGIN_ALLOW_THREADS
    if (c.type == NPY_FLOAT32)
        st = tnmtl_norm_eval(c.m, c.nd, c.shape, PyArray_DATA(c.a), c.gamma, &value, NULL, gd, &err);
    else
        st = tnmtl_norm_eval_f64(c.m, c.nd, c.shape, PyArray_DATA(c.a), c.gamma, &value, NULL, gd, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(c.a);
    if (st) {
        Py_XDECREF(grad);
        return raise_err(&err);
    }
    if (!grad) return Py_BuildValue("(dO)", value, Py_None);
    return Py_BuildValue("(dN)", value, (PyObject *)grad);
}

static PyObject *py_prox(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"W", "method", "step", "gamma", "term", NULL};
    PyObject *W, *gamma = Py_None;
    const char *method;
    double step;
    int term = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Osd|Oi", kwlist, &W, &method, &step, &gamma, &term)) return NULL;
    norm_call c; /* the library's operator works in place on float32: a copy */
    if (norm_call_init(&c, W, method, gamma, 1)) return NULL;
    PyArrayObject *a = c.a;
    const int n_terms = c.n_terms;
    if (term < -1 || term >= n_terms) {
        Py_DECREF(a);
        return PyErr_Format(Error, "term %d does not exist: this method and shape have %d terms", term, n_terms);
    }
    tnmtl_error err = {0};
    tnmtl_status st = TNMTL_OK;
    Py_BEGIN_ALLOW_THREADS
    for (int i = term < 0 ? 0 : term; i < (term < 0 ? n_terms : term + 1) && !st; i++)
        st = tnmtl_norm_prox_term(c.m, c.nd, c.shape, PyArray_DATA(a), i, step * (c.gamma ? c.gamma[i] : 1.0), &err);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(a);
        return raise_err(&err);
    }
    if (c.type == NPY_FLOAT32) return (PyObject *)a;
    PyObject *d = PyArray_Cast(a, NPY_FLOAT64);
    Py_DECREF(a);
    return d;
}

/* ---- datasets ---- */

static void dataset_destroy(PyObject *cap)
{
    tnmtl_dataset *ds = PyCapsule_GetPointer(cap, "tnmtl.dataset");
    if (!ds) return;
    tnmtl_dataset_free(ds);
    PyMem_Free(ds);
}

/* _dataset(features float32 (N, h, w, c), task_begin int64 (T+1,),
 *          n_classes int32 (T,) or None, labels int32 (N,) or None,
 *          targets float32 (N,) or None, names [T] str, source str)
 * -> capsule of a validated tnmtl_dataset (arrays copied). */
static PyObject *py_dataset(PyObject *self, PyObject *args)
{
    PyArrayObject *x, *begin, *ncls, *lab, *tgt;
    PyObject *names;
    const char *source;
    if (!PyArg_ParseTuple(args, "O!O!OOOOs", &PyArray_Type, &x, &PyArray_Type, &begin, &ncls, &lab, &tgt, &names,
                          &source))
        return NULL;
    const int cls = (PyObject *)lab != Py_None;
    if (PyArray_NDIM(x) != 4 || PyArray_TYPE(x) != NPY_FLOAT32 || !PyArray_IS_C_CONTIGUOUS(x) ||
        PyArray_TYPE(begin) != NPY_INT64 || !PyArray_IS_C_CONTIGUOUS(begin) || !PyList_Check(names) ||
        PyArray_DIM(begin, 0) != PyList_GET_SIZE(names) + 1 ||
        (cls && (!PyArray_Check(ncls) || !PyArray_Check(lab) || PyArray_TYPE(lab) != NPY_INT32 ||
                 PyArray_TYPE(ncls) != NPY_INT32 || !PyArray_IS_C_CONTIGUOUS(lab))) ||
        (!cls && (!PyArray_Check(tgt) || PyArray_TYPE(tgt) != NPY_FLOAT32 || !PyArray_IS_C_CONTIGUOUS(tgt))))
        return raise_status(TNMTL_ERR_INTERNAL, "_dataset: arrays of the wrong type or layout");
    const int T = (int)PyList_GET_SIZE(names);
    const int64_t N = PyArray_DIM(x, 0);
    tnmtl_dataset *ds = PyMem_Calloc(1, sizeof *ds);
    if (!ds) return PyErr_NoMemory();
    tnmtl_error err = {0};
    tnmtl_status st = tnmtl_dataset_init(ds, T, N, (int)PyArray_DIM(x, 1), (int)PyArray_DIM(x, 2),
                                         (int)PyArray_DIM(x, 3), cls ? TNMTL_TARGET_CLASS : TNMTL_TARGET_REAL, 0,
                                         &err);
    if (st) {
        PyMem_Free(ds);
        return raise_err(&err);
    }
    memcpy(ds->features, PyArray_DATA(x), (size_t)PyArray_NBYTES(x));
    memcpy(ds->task_begin, PyArray_DATA(begin), sizeof(int64_t) * (size_t)(T + 1));
    if (cls) {
        memcpy(ds->label, PyArray_DATA(lab), sizeof(int) * (size_t)N);
        memcpy(ds->n_classes, PyArray_DATA(ncls), sizeof(int) * (size_t)T);
    }
    else
        memcpy(ds->target, PyArray_DATA(tgt), sizeof(float) * (size_t)N);
    snprintf(ds->source, sizeof ds->source, "%s", source);
    for (int t = 0; t < T && !st; t++) {
        const char *name = PyUnicode_AsUTF8(PyList_GET_ITEM(names, t));
        if (!name) {
            tnmtl_dataset_free(ds);
            PyMem_Free(ds);
            return NULL;
        }
        st = tnmtl_dataset_set_task_name(ds, t, name, &err);
    }
    if (!st) st = tnmtl_dataset_validate(ds, &err);
    if (st) {
        tnmtl_dataset_free(ds);
        PyMem_Free(ds);
        return raise_err(&err);
    }
    PyObject *cap = PyCapsule_New(ds, "tnmtl.dataset", dataset_destroy);
    if (!cap) {
        tnmtl_dataset_free(ds);
        PyMem_Free(ds);
    }
    return cap;
}

/* ---- runs ---- */

typedef struct py_run {
    session s;
    PyObject *data; /* the dataset capsule the session borrows, or NULL */
} py_run;

static void run_destroy(PyObject *cap)
{
    py_run *r = PyCapsule_GetPointer(cap, "tnmtl.run");
    if (!r) return;
    session_free(&r->s);
    Py_XDECREF(r->data);
    PyMem_Free(r);
}

static py_run *get_run(PyObject *cap)
{
    return PyCapsule_GetPointer(cap, "tnmtl.run");
}

/* The dataset of a capsule, or NULL for None. */
static int get_dataset(PyObject *cap, const tnmtl_dataset **ds)
{
    *ds = NULL;
    if (cap == Py_None) return 0;
    *ds = PyCapsule_GetPointer(cap, "tnmtl.dataset");
    return *ds ? 0 : -1;
}

static PyObject *wrap_run(py_run *r, PyObject *data)
{
    r->data = data == Py_None ? NULL : data;
    Py_XINCREF(r->data);
    PyObject *cap = PyCapsule_New(r, "tnmtl.run", run_destroy);
    if (!cap) {
        session_free(&r->s);
        Py_XDECREF(r->data);
        PyMem_Free(r);
    }
    return cap;
}

/* Ctrl-C while the library trains without the GIL: a C handler sets the
 * session's stop flag (the CLI's way), and KeyboardInterrupt follows. */
static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* _train(dataset capsule or None, data spec, [option strings], verbose,
 *        main thread) -> run capsule.  The options are the CLI's (`--steps`, "300", ...),
 * parsed by run_parse_option; the data spec, when a dataset is given, only
 * names it in the run's configuration (it picks the defaults). */
static PyObject *py_train(PyObject *self, PyObject *args)
{
    PyObject *data, *argl;
    const char *spec;
    int verbose, main_thread; /* only Python's main thread handles SIGINT */
    if (!PyArg_ParseTuple(args, "OsO!pp", &data, &spec, &PyList_Type, &argl, &verbose, &main_thread)) return NULL;
    const tnmtl_dataset *ds;
    if (get_dataset(data, &ds)) return NULL;
    run_options o;
    run_options_init(&o);
    tnmtl_error err = {0};
    const int argc = (int)PyList_GET_SIZE(argl);
    char **argv = PyMem_Calloc((size_t)argc + 1, sizeof *argv);
    if (!argv) return PyErr_NoMemory();
    for (int i = 0; i < argc; i++)
        if (!(argv[i] = (char *)PyUnicode_AsUTF8(PyList_GET_ITEM(argl, i)))) {
            PyMem_Free(argv);
            return NULL;
        }
    tnmtl_status st = TNMTL_OK;
    for (int i = 0; i < argc && !st; i++) {
        const char *given = argv[i];
        int r = run_parse_option(&o, argc, argv, &i, &err);
        if (r == 0) st = tnmtl_fail(&err, TNMTL_ERR_INVALID, "unknown option '%s'", given);
        else if (r < 0) st = err.status ? err.status : TNMTL_ERR_INVALID;
    }
    PyMem_Free(argv);
    if (st) return raise_err(&err);
    if (ds) {
        snprintf(o.data, sizeof o.data, "%s", spec);
        o.regression = ds->kind == TNMTL_TARGET_REAL;
    }
    py_run *r = PyMem_Calloc(1, sizeof *r);
    if (!r) return PyErr_NoMemory();
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    stop_requested = 0;
    if (main_thread) sigaction(SIGINT, &sa, &old);
    Py_BEGIN_ALLOW_THREADS
    st = session_start(&r->s, &o, ds, &err);
    if (!st) st = session_train(&r->s, NULL, !verbose, main_thread ? &stop_requested : NULL, &err);
    Py_END_ALLOW_THREADS
    if (main_thread) sigaction(SIGINT, &old, NULL);
    if (st) {
        session_free(&r->s);
        PyMem_Free(r);
        if (stop_requested) {
            PyErr_SetNone(PyExc_KeyboardInterrupt);
            return NULL;
        }
        return raise_err(&err);
    }
    return wrap_run(r, data);
}

/* _load(dir, dataset capsule or None) -> run capsule (session_resume). */
static PyObject *py_load(PyObject *self, PyObject *args)
{
    const char *dir;
    PyObject *data;
    if (!PyArg_ParseTuple(args, "sO", &dir, &data)) return NULL;
    const tnmtl_dataset *ds;
    if (get_dataset(data, &ds)) return NULL;
    py_run *r = PyMem_Calloc(1, sizeof *r);
    if (!r) return PyErr_NoMemory();
    tnmtl_error err = {0};
    tnmtl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = session_resume(&r->s, dir, ds, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        PyMem_Free(r);
        return raise_err(&err);
    }
    return wrap_run(r, data);
}

/* A str of a malloc'd C string (NULL: out of memory), which it frees. */
static PyObject *take_string(char *text)
{
    if (!text) return PyErr_NoMemory();
    PyObject *s = PyUnicode_FromString(text);
    free(text);
    return s;
}

/* _config(run) -> the run's options as JSON text (as in its checkpoint). */
static PyObject *py_config(PyObject *self, PyObject *cap)
{
    py_run *r = get_run(cap);
    return r ? take_string(run_options_to_json(&r->s.opts)) : NULL;
}

/* _evaluate(run, out_dir or None) -> the CLI's result object as JSON text;
 * with out_dir also results.json and the sharing report there. */
static PyObject *py_evaluate(PyObject *self, PyObject *args)
{
    PyObject *cap;
    const char *dir = NULL;
    if (!PyArg_ParseTuple(args, "Oz", &cap, &dir)) return NULL;
    py_run *r = get_run(cap);
    if (!r) return NULL;
    cJSON *result = NULL;
    tnmtl_error err = {0};
    tnmtl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = session_evaluate(&r->s, dir, &result, &err);
    Py_END_ALLOW_THREADS
    if (st) return raise_err(&err);
    char *text = cJSON_PrintUnformatted(result);
    cJSON_Delete(result);
    return take_string(text);
}

/* _save(run, dir, data spec or None): creates dir, writes the checkpoint
 * (with the data spec recorded in place of the run's, when given), the
 * sharing report and results.json, as `tnmtl train --out dir` does. */
static PyObject *py_save(PyObject *self, PyObject *args)
{
    PyObject *cap;
    const char *dir, *spec = NULL;
    if (!PyArg_ParseTuple(args, "Os|z", &cap, &dir, &spec)) return NULL;
    py_run *r = get_run(cap);
    if (!r) return NULL;
    if (spec) snprintf(r->s.opts.data, sizeof r->s.opts.data, "%s", spec);
    tnmtl_error err = {0};
    tnmtl_status st;
    cJSON *result = NULL;
    Py_BEGIN_ALLOW_THREADS
    st = tnmtl_mkdir_p(dir, &err);
    if (!st) st = session_save(&r->s, dir, &err);
    if (!st) st = session_evaluate(&r->s, dir, &result, &err);
    Py_END_ALLOW_THREADS
    cJSON_Delete(result);
    if (st) return raise_err(&err);
    Py_RETURN_NONE;
}

/* _parameters(run) -> (float32 copy of the parameter buffer, step). */
static PyObject *py_parameters(PyObject *self, PyObject *cap)
{
    py_run *r = get_run(cap);
    if (!r) return NULL;
    npy_intp n = (npy_intp)r->s.model->n_params;
    PyArrayObject *a = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_FLOAT32);
    if (!a) return NULL;
    memcpy(PyArray_DATA(a), r->s.model->params, sizeof(float) * (size_t)n);
    return Py_BuildValue("(NL)", (PyObject *)a, (long long)r->s.optim.step);
}

static PyObject *f64_array(int nd, npy_intp *dims, const double *src)
{
    PyArrayObject *a = (PyArrayObject *)PyArray_SimpleNew(nd, dims, NPY_FLOAT64);
    if (a) memcpy(PyArray_DATA(a), src, (size_t)PyArray_NBYTES(a));
    return (PyObject *)a;
}

/* _sharing(run) -> list of per-layer dicts (name, layer, hard_shared,
 * stacked, rho, effective_rank, singular_values, similarity, relatedness). */
static PyObject *py_sharing(PyObject *self, PyObject *cap)
{
    py_run *r = get_run(cap);
    if (!r) return NULL;
    tnmtl_sharing_report rep;
    tnmtl_error err = {0};
    tnmtl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = tnmtl_sharing_report_make(r->s.model, &rep, &err);
    Py_END_ALLOW_THREADS
    if (st) return raise_err(&err);
    PyObject *list = PyList_New(rep.n_layers);
    npy_intp tt[2] = {rep.n_tasks, rep.n_tasks};
    for (int k = 0; list && k < rep.n_layers; k++) {
        const tnmtl_layer_sharing *L = &rep.layers[k];
        npy_intp nsv = L->n_sv;
        PyObject *d = Py_BuildValue("{s:s,s:i,s:O,s:O,s:d,s:d,s:N,s:N,s:N}", "name", L->name, "layer", L->layer,
                                    "hard_shared", L->shared ? Py_True : Py_False, "stacked",
                                    L->stacked ? Py_True : Py_False, "rho", L->rho, "effective_rank", L->eff_rank,
                                    "singular_values", f64_array(1, &nsv, L->sv), "similarity",
                                    f64_array(2, tt, L->similarity), "relatedness", f64_array(2, tt, L->relatedness));
        if (!d) Py_CLEAR(list);
        else PyList_SET_ITEM(list, k, d);
    }
    tnmtl_sharing_report_free(&rep);
    return list;
}

static PyMethodDef methods[] = {
    {"norm", (PyCFunction)(void (*)(void))py_norm, METH_VARARGS | METH_KEYWORDS,
     "norm(W, method='tucker', gamma=None, grad=True) -> (value, grad)"},
    {"prox", (PyCFunction)(void (*)(void))py_prox, METH_VARARGS | METH_KEYWORDS,
     "prox(W, method, step, gamma=None, term=None) -> array"},
    {"_dataset", py_dataset, METH_VARARGS, NULL},
    {"_train", py_train, METH_VARARGS, NULL},
    {"_load", py_load, METH_VARARGS, NULL},
    {"_config", py_config, METH_O, NULL},
    {"_evaluate", py_evaluate, METH_VARARGS, NULL},
    {"_save", py_save, METH_VARARGS, NULL},
    {"_parameters", py_parameters, METH_O, NULL},
    {"_sharing", py_sharing, METH_O, NULL},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "tnmtl._core", "tnmtl's C extension", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__core(void)
{
    import_array();
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Error = PyErr_NewExceptionWithDoc("tnmtl.Error",
                                      "A tnmtl library error; the message is the library's, .status its kind.",
                                      PyExc_ValueError, NULL);
    if (!Error || PyModule_AddObject(m, "Error", Error)) {
        Py_XDECREF(Error);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(Error);
    return m;
}
