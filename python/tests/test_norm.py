"""tnmtl.norm and tnmtl.prox on numpy arrays against numpy's SVD; bad arrays raise."""
import threading

import numpy as np
import pytest

import tnmtl
from conftest import numpy_norm, unfoldings

SHAPES = [(7, 5), (5, 5, 1, 8, 6), (3, 3, 4, 5, 4), (40, 6, 9)]


@pytest.mark.parametrize("method", ["laf", "tucker", "tt"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_norm_matches_numpy_svd(method, shape, dtype):
    rng = np.random.default_rng(sum(shape))
    W = rng.standard_normal(shape).astype(dtype)
    gamma = list(rng.uniform(0.5, 2.0, len(unfoldings(W, method))))
    value, grad = tnmtl.norm(W, method, gamma)
    ref_value, ref_grad = numpy_norm(W, method, gamma)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    assert grad.dtype == dtype and grad.shape == W.shape
    assert value == pytest.approx(ref_value, rel=tol)
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=tol * 10 * np.abs(ref_grad).max())


def test_gamma_forms_and_value_only():
    W = np.random.default_rng(0).standard_normal((4, 5, 6)).astype(np.float32)
    v1, _ = tnmtl.norm(W, "tucker")
    v2, g2 = tnmtl.norm(W, "tucker", gamma=0.5, grad=False)
    v3, _ = tnmtl.norm(W, "tucker", gamma=[0.5, 0.5, 0.5])
    assert g2 is None and v2 == pytest.approx(0.5 * v1) and v3 == pytest.approx(v2)


def test_non_contiguous_and_rank_deficient():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((6, 2)) @ rng.standard_normal((2, 10))
    Wt = np.asarray(W.T, dtype=np.float32)[::2]  # strided view
    value, grad = tnmtl.norm(Wt, "laf")
    ref_value, ref_grad = numpy_norm(np.ascontiguousarray(Wt), "laf")
    assert value == pytest.approx(ref_value, rel=1e-5)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-4)


def test_zero_tensor_gives_zero_gradient():
    value, grad = tnmtl.norm(np.zeros((3, 4, 5), np.float32), "tt")
    assert value == 0 and not grad.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prox_is_singular_value_thresholding(dtype):
    W = np.random.default_rng(2).standard_normal((5, 6, 4)).astype(dtype)
    step = 1.5
    out = tnmtl.prox(W, "laf", step)
    X = np.moveaxis(W.astype(np.float64), 2, 0).reshape(4, -1)
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    ref = np.moveaxis(((U * np.maximum(s - step, 0)) @ Vt).reshape(4, 5, 6), 0, 2)
    assert out.dtype == dtype and not np.shares_memory(out, W)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    # one Tucker term is the same operation on that unfolding
    np.testing.assert_allclose(tnmtl.prox(W, "tucker", step, term=2), ref, atol=1e-4)
    assert np.array_equal(tnmtl.prox(W, "tt", 0.0), W.astype(np.float32).astype(dtype))


def test_threads_compute_concurrently_the_same_values():
    W = np.random.default_rng(3).standard_normal((60, 40, 8)).astype(np.float32)
    expect = tnmtl.norm(W, "tucker")[0]
    got = []
    threads = [threading.Thread(target=lambda: got.append(tnmtl.norm(W, "tucker")[0])) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [expect] * 4


BAD = [
    ("int", np.ones((3, 4), np.int64), "float32 or float64"),
    ("complex", np.ones((3, 4), np.complex64), "float32 or float64"),
    ("object", np.array([[object()]]), "float32 or float64"),
    ("nan", np.array([[1.0, np.nan], [0.0, 1.0]], np.float32), "NaN|not finite"),
    ("inf", np.array([[1.0, np.inf]]), "infinite|not finite"),
    ("scalar", np.float32(2.0), "axes"),
    ("nine axes", np.ones((1,) * 9, np.float32), "axes"),
    ("zero size", np.ones((3, 0, 2), np.float32), "is 0"),
    ("string", "abc", "float32 or float64"),
]


@pytest.mark.parametrize("name,W,message", BAD, ids=[b[0] for b in BAD])
def test_bad_arrays_raise(name, W, message):
    for call in (lambda: tnmtl.norm(W, "tucker"), lambda: tnmtl.prox(W, "laf", 0.1)):
        with pytest.raises(tnmtl.Error, match=message):
            call()


def test_bad_method_gamma_and_step_raise():
    W = np.ones((3, 4), np.float32)
    assert issubclass(tnmtl.Error, ValueError)
    with pytest.raises(tnmtl.Error, match="nuclear"):
        tnmtl.norm(W, "nuclear")
    with pytest.raises(tnmtl.Error, match="2 terms"):
        tnmtl.norm(W, "tucker", gamma=[1, 2, 3])
    with pytest.raises(tnmtl.Error, match="gamma"):
        tnmtl.norm(W, "tucker", gamma=-1.0)
    with pytest.raises(tnmtl.Error):
        tnmtl.prox(W, "laf", -1.0)
    with pytest.raises(tnmtl.Error, match="term 5"):
        tnmtl.prox(W, "tucker", 0.1, term=5)


def test_contiguous_float32_is_not_copied():
    import tracemalloc

    W = np.random.default_rng(4).standard_normal((200, 100, 50)).astype(np.float32)  # 4 MB
    tracemalloc.start()
    try:
        for arr, copied in ((W, False), (W[:, :, ::-1], True), (W.astype(np.float64), False)):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            tnmtl.norm(arr, "laf", grad=False)
            peak = tracemalloc.get_traced_memory()[1] - base
            assert (peak >= arr.nbytes) == copied, (arr.strides, arr.dtype, peak)
    finally:
        tracemalloc.stop()
