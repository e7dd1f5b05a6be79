"""tnmtl: deep multi-task learning with tensor trace-norm regularisation.

Norms on numpy arrays (task axis last)::

    value, grad = tnmtl.norm(W, "tucker")          # float32 or float64, any shape
    W2 = tnmtl.prox(W, "laf", step=0.1)             # singular value thresholding

Training from numpy arrays (one row per example, a task id per row)::

    ds = tnmtl.Dataset.from_arrays(x, y, task)
    run = tnmtl.train(ds, method="tucker", steps=500, seed=0)
    run.evaluate()["test"]["mean_accuracy"], run.sharing()["rho"]
    run.save("runs/t1"); run = tnmtl.load("runs/t1")

PyTorch (when torch imports): tnmtl.torch.tensor_trace_norm and
tnmtl.torch.TraceNormRegulariser.  Every library failure raises tnmtl.Error,
a ValueError carrying the library's message.
"""
import json as _json
import os as _os

import numpy as _np

from ._core import Error
from ._core import norm as _norm
from ._core import prox as _prox
from . import _core

__all__ = ["Error", "norm", "prox", "Dataset", "Run", "train", "load"]
METHODS = ("laf", "tucker", "tt")


def norm(W, method="tucker", gamma=None, grad=True):
    """Tensor trace norm of W (float32 or float64, task axis last) and its
    subgradient: returns (value, grad), grad of W's shape and dtype (None
    with grad=False).  method: "laf", "tucker" or "tt"; gamma: None (every
    term weight 1), a number or one weight per term.  A C-contiguous array
    is not copied; the GIL is released while the norm is computed."""
    return _norm(W, method, gamma, bool(grad))


def prox(W, method, step, gamma=None, term=None):
    """Proximal step of the norm's terms by singular value thresholding: each
    term's unfolding X becomes U max(S - step * gamma_i, 0) V^T, the terms in
    order (exact for LAF or a single term=i; for Tucker and TT the terms are
    thresholded one after another).  Returns a new array of W's dtype
    (computed in float32)."""
    return _prox(W, method, float(step), gamma, -1 if term is None else int(term))


# ---- data ----

_DATA_OPTIONS = ("data", "size", "alphabets", "task_col", "target_col", "features", "regression",
                 "classification", "data_seed")


class Dataset:
    """Examples of several tasks, built from numpy arrays (or named by a CLI
    data spec).  Use Dataset.from_arrays."""

    def __init__(self, capsule, spec, n_tasks, task_names, shape, regression, arrays=None):
        self._capsule = capsule
        self.spec = spec
        self.n_tasks = n_tasks
        self.task_names = task_names
        self.example_shape = shape
        self.regression = regression
        self._arrays = arrays  # (x, y, task names per row) in dataset order, for save

    @classmethod
    def from_arrays(cls, x, y, task, regression=None, name="arrays"):
        """x: (N, d) features, or (N, H, W) / (N, H, W, C) images (floats);
        y: (N,) class labels (integers) or targets; task: (N,) task ids (any
        values; str() names them).  Tasks are numbered in order of first
        appearance and keep their rows' order; per task the distinct labels,
        sorted, become 0..k-1: exactly what the CLI's csv: loader does with
        the same rows.  regression: None = regression when y is a float
        array, classification for integers."""
        x = _np.asarray(x)
        y = _np.asarray(y)
        task = _np.asarray(task)
        if x.dtype.kind not in "fiu" or x.ndim not in (2, 3, 4) or x.shape[0] == 0 or x[0].size == 0:
            raise Error("x must be a non-empty numeric array of shape (N, d), (N, H, W) or (N, H, W, C), "
                        "not %s %s" % (x.dtype, x.shape))
        n = x.shape[0]
        if y.shape != (n,) or task.shape != (n,):
            raise Error("y and task must have shape (%d,) like x's first axis, not %s and %s" % (n, y.shape, task.shape))
        if regression is None:
            regression = y.dtype.kind == "f"
        if y.dtype.kind not in "fiub":
            raise Error("y must be numeric, not %s" % y.dtype)
        if not _np.all(_np.isfinite(x)) or not _np.all(_np.isfinite(y.astype(_np.float64))):
            bad = _np.flatnonzero(~_np.isfinite(x.reshape(n, -1).astype(_np.float64)).all(axis=1))
            where = ("x, row %d" % bad[0]) if bad.size else "y"
            raise Error("non-finite value (NaN or Inf) in %s" % where)
        names_per_row = [str(t) for t in task.tolist()]
        first = {}
        for i, t in enumerate(names_per_row):
            if t not in first:
                first[t] = len(first)
        names = list(first)
        if any(not t for t in names):
            raise Error("a task id is the empty string")
        tid = _np.fromiter((first[t] for t in names_per_row), dtype=_np.int64, count=n)
        order = _np.argsort(tid, kind="stable")
        counts = _np.bincount(tid, minlength=len(names))
        begin = _np.concatenate([[0], _np.cumsum(counts)]).astype(_np.int64)
        shape = x.shape[1:] if x.ndim == 4 else x.shape[1:] + (1,) if x.ndim == 3 else (1, 1, x.shape[1])
        xs = _np.ascontiguousarray(x[order].reshape((n,) + shape), dtype=_np.float32)
        ys = y[order]
        if regression:
            labels = n_classes = None
            targets = _np.ascontiguousarray(ys, dtype=_np.float32)
        else:
            if y.dtype.kind == "f" and not _np.all(ys == _np.round(ys)):
                raise Error("classification labels must be integers (pass regression=True for real targets)")
            labels = _np.empty(n, dtype=_np.int32)
            n_classes = _np.empty(len(names), dtype=_np.int32)
            for t in range(len(names)):
                part = ys[begin[t]:begin[t + 1]]
                values, inverse = _np.unique(part, return_inverse=True)
                labels[begin[t]:begin[t + 1]] = inverse
                n_classes[t] = len(values)
            targets = None
        cap = _core._dataset(xs, begin, n_classes, labels, targets, names, name)
        tabular = shape[0] == 1 and shape[1] == 1
        spec = ("csv:" if tabular else "arrays:") + name
        rows = [names[t] for t in tid[order]]
        kept = (xs.reshape(n, -1), labels if labels is not None else targets, rows) if tabular else None
        return cls(cap, spec, len(names), names, shape, bool(regression), kept)

    def to_csv(self, path):
        """Writes the (tabular) dataset as the CLI's csv: input: columns task,
        y, x0..x{d-1}, numbers with 9 significant digits (float32 round-trips),
        so `--data csv:PATH` loads exactly this dataset."""
        if self._arrays is None:
            raise Error("only tabular data (x of shape (N, d)) can be written as CSV")
        x, y, rows = self._arrays
        d = x.shape[1]
        with open(path, "w", newline="") as f:
            f.write("task,y," + ",".join("x%d" % j for j in range(d)) + "\n")
            yfmt = "%.9g" if self.regression else "%d"
            for i in range(x.shape[0]):
                t = rows[i]
                if any(c in t for c in ',"\r\n'):
                    t = '"' + t.replace('"', '""') + '"'
                f.write(t + "," + yfmt % y[i] + "," + ",".join("%.9g" % v for v in x[i]) + "\n")


# ---- runs ----

def _option_args(options):
    args = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, float):
            args += [flag, repr(value)]
        else:
            args += [flag, str(value)]
    return args


class Run:
    """A trained (or loaded) multi-task model with its data and split."""

    def __init__(self, capsule, dataset):
        self._capsule = capsule
        self.dataset = dataset

    @property
    def config(self):
        """The run's options, as stored in its checkpoint (dict)."""
        return _json.loads(_core._config(self._capsule))

    @property
    def step(self):
        return _core._parameters(self._capsule)[1]

    def parameters(self):
        """A float32 copy of the model's one parameter buffer (docs/design.md)."""
        return _core._parameters(self._capsule)[0]

    def evaluate(self):
        """The CLI's evaluation (`tnmtl eval`): dict with per part ("train",
        "val", "test") the mean metric, the loss and "per_task" (numpy array),
        and the per-layer "sharing" summary."""
        result = _json.loads(_core._evaluate(self._capsule, None))
        for part in ("train", "val", "test"):
            if part in result:
                result[part]["per_task"] = _np.array([_np.nan if v is None else v for v in result[part]["per_task"]])
        return result

    def sharing(self):
        """Which layers ended up shared: dict of numpy arrays over the
        shareable layers: "rho" (L,), "effective_rank" (L,), "relatedness"
        and "similarity" (L, T, T), "hard_shared" (L,), and lists "names",
        "singular_values" (normalised, per layer), "task_names"."""
        layers = _core._sharing(self._capsule)
        out = {"names": [l["name"] for l in layers], "singular_values": [l["singular_values"] for l in layers]}
        for key in ("rho", "effective_rank", "hard_shared"):
            out[key] = _np.array([l[key] for l in layers])
        for key in ("relatedness", "similarity"):
            out[key] = _np.stack([l[key] for l in layers]) if layers else _np.zeros((0, 0, 0))
        out["task_names"] = list(self.dataset.task_names) if self.dataset is not None else None
        return out

    def save(self, directory):
        """Writes the run as `tnmtl train --out DIR` does: checkpoint.safetensors
        (options, parameters, optimiser state), results.json and the sharing
        report.  Tabular array data is written beside it as data.csv and the
        checkpoint names it, so `tnmtl eval --model DIR` and `tnmtl train
        --resume DIR` work on it."""
        spec = None
        ds = self.dataset
        if ds is not None and ds._arrays is not None:
            _os.makedirs(directory, exist_ok=True)
            path = _os.path.abspath(_os.path.join(directory, "data.csv"))
            ds.to_csv(path)
            spec = "csv:" + path
        _core._save(self._capsule, str(directory), spec)


def _main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()


def train(dataset, method="tucker", arch=None, verbose=False, **options):
    """Trains a multi-task model and returns its Run.

    dataset: a Dataset, or a CLI data spec ("synthetic", "csv:FILE",
    "omniglot:PATH").  method: "stl", "ud", "laf", "tucker" or "tt".  arch:
    the layers (e.g. "conv8x5,pool2,fc32"; default as the CLI's).  options:
    any `tnmtl train` option with "_" for "-" (steps=500, lr=1e-3, gamma=0.01,
    batch=32, seed=0, train_frac=0.5, threads=2, task_loss="sum", ...); the
    same options on the same data give the same model as the CLI, bit for bit.
    verbose: progress on stderr.  Ctrl-C stops it after the current step
    with KeyboardInterrupt."""
    options = dict(options, method=method, arch=arch)
    if isinstance(dataset, Dataset):
        for key in _DATA_OPTIONS:
            if options.get(key) is not None:
                raise Error("option '%s' describes a data source; the Dataset is given" % key)
        capsule = _core._train(dataset._capsule, dataset.spec, _option_args(options), verbose, _main_thread())
    elif isinstance(dataset, str):
        capsule = _core._train(None, "", _option_args(dict(options, data=dataset)), verbose, _main_thread())
        dataset = None
    else:
        raise Error("dataset must be a tnmtl.Dataset or a data spec string, not %s" % type(dataset).__name__)
    return Run(capsule, dataset)


def load(directory, dataset=None):
    """Loads a run saved by Run.save or `tnmtl train --out`: its options,
    data (as its checkpoint names it, or the given Dataset), parameters and
    optimiser state."""
    return Run(_core._load(str(directory), None if dataset is None else dataset._capsule), dataset)


def __getattr__(name):
    if name == "torch":  # optional: only when PyTorch imports
        import importlib
        return importlib.import_module(".torch", __name__)
    raise AttributeError("module 'tnmtl' has no attribute %r" % name)
