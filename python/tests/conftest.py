"""Shared helpers of the pytest suite: run from the repository root or from
python/; the extension is built in place (`make python`)."""
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)
ROOT = os.path.dirname(PYDIR)
sys.path.insert(0, PYDIR)


def unfoldings(W, method):
    """(matrix, fold-back function) per term of the norm, in numpy."""
    N = W.ndim
    out = []
    if method == "laf":
        out.append((np.moveaxis(W, N - 1, 0).reshape(W.shape[-1], -1),
                    lambda G: np.moveaxis(G.reshape((W.shape[-1],) + W.shape[:-1]), 0, N - 1)))
    elif method == "tucker":
        for i in range(N):
            moved = np.moveaxis(W, i, 0).shape
            out.append((np.moveaxis(W, i, 0).reshape(W.shape[i], -1),
                        lambda G, i=i, moved=moved: np.moveaxis(G.reshape(moved), 0, i)))
    else:
        for i in range(1, N):
            out.append((W.reshape(int(np.prod(W.shape[:i])), -1), lambda G: G.reshape(W.shape)))
    return out


def numpy_norm(W, method, gamma=None):
    """Value and subgradient sum_i gamma_i U_i V_i^T from numpy's SVD."""
    W = W.astype(np.float64)
    terms = unfoldings(W, method)
    gammas = [1.0] * len(terms) if gamma is None else list(gamma)
    value, grad = 0.0, np.zeros_like(W)
    for g, (X, fold) in zip(gammas, terms):
        U, s, Vt = np.linalg.svd(X, full_matrices=False)
        value += g * s.sum()
        r = int((s > 1e-6 * s[0]).sum()) if s[0] > 0 else 0
        grad += g * fold(U[:, :r] @ Vt[:r])
    return value, grad


@pytest.fixture
def cli():
    path = os.environ.get("TNMTL_CLI", os.path.join(ROOT, "build", "tnmtl"))
    if not os.access(path, os.X_OK):
        pytest.fail("the tnmtl CLI is not built (%s); run make, or set TNMTL_CLI" % path)
    return path
