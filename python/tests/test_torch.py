"""tnmtl.torch: gradients against torch autograd of the nuclear norms, a
finite gradient where torch's SVD backward is NaN, the regulariser's layout."""
import os
import sys

import numpy as np
import pytest

# CI sets TNMTL_REQUIRE_TORCH=1: there a missing torch fails instead of skipping.
torch = __import__("torch") if os.environ.get("TNMTL_REQUIRE_TORCH") else pytest.importorskip("torch")
import tnmtl  # noqa: E402
import tnmtl.torch as tt  # noqa: E402
from conftest import ROOT  # noqa: E402


sys.path.insert(0, os.path.join(ROOT, "bench"))
from bench_norm_torch import unfoldings as torch_unfoldings  # noqa: E402  (the benchmark's reference)


def torch_norm(W, method):
    return sum(torch.linalg.matrix_norm(X, "nuc") for X in torch_unfoldings(W, method))


def uv_norm(W, method):
    """The nuclear norm written as <U V^T, X> with torch.linalg.svd: the same
    value, but autograd goes through U and V."""
    total = 0
    for X in torch_unfoldings(W, method):
        U, _, Vh = torch.linalg.svd(X, full_matrices=False)
        total = total + (U @ Vh * X).sum()
    return total


@pytest.mark.parametrize("method", ["laf", "tucker", "tt"])
@pytest.mark.parametrize("shape", [(5, 5, 1, 8, 6), (3, 3, 4, 5, 7), (30, 8, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradient_matches_torch_autograd(method, shape, dtype):
    torch.manual_seed(sum(shape))
    W = torch.randn(*shape, dtype=dtype, requires_grad=True)
    value = tt.tensor_trace_norm(W, method)
    value.backward()
    W2 = W.detach().clone().requires_grad_(True)
    ref = torch_norm(W2, method)
    ref.backward()
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert value.dtype == dtype and abs(value.item() - ref.item()) <= tol * ref.item()
    assert W.grad.dtype == dtype
    assert torch.allclose(W.grad, W2.grad, rtol=0, atol=tol * 10)


@pytest.mark.parametrize("name", ["zero", "repeated"])
def test_finite_gradient_where_torch_svd_backward_is_nan(name):
    W = torch.zeros(3, 3, 3, dtype=torch.float64)
    if name == "repeated":  # every unfolding has singular values 1, 1, 1
        for i in range(3):
            W[i, i, i] = 1.0
    Wt = W.clone().requires_grad_(True)
    uv_norm(Wt, "tucker").backward()
    assert torch.isnan(Wt.grad).any() or torch.isinf(Wt.grad).any()
    Wn = W.clone().requires_grad_(True)
    tt.tensor_trace_norm(Wn, "tucker").backward()
    assert torch.isfinite(Wn.grad).all()
    # the minimum-norm subgradient: sum of U_r V_r^T over the unfoldings
    _, expect = tnmtl.norm(W.numpy(), "tucker")
    assert np.allclose(Wn.grad.numpy(), expect)
    if name == "repeated":  # 3 unit singular values per unfolding: U V^T is unique
        Wr = W.clone().requires_grad_(True)
        torch_norm(Wr, "tucker").backward()
        assert torch.allclose(Wn.grad, Wr.grad, atol=1e-12)


class Net(torch.nn.Module):
    def __init__(self, n_out):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3)
        self.conv2 = torch.nn.Conv2d(4, 6, 3)
        self.fc1 = torch.nn.Linear(6 * 4 * 4, 10)
        self.out = torch.nn.Linear(10, n_out)


def test_regulariser_layout_and_gradient():
    torch.manual_seed(0)
    models = [Net(3 + t) for t in range(5)]
    reg = tt.TraceNormRegulariser(models, "tucker", gamma=0.01)
    assert reg.layers == ["conv1.weight", "conv2.weight", "fc1.weight"]
    W = reg.stacked("conv2.weight")
    assert W.shape == (3, 3, 4, 6, 5)  # (kh, kw, in, out, T)
    assert W[1, 2, 3, 4, 2].item() == models[2].conv2.weight[4, 3, 1, 2].item()
    F = reg.stacked("fc1.weight")
    assert F.shape == (96, 10, 5) and F[7, 3, 4].item() == models[4].fc1.weight[3, 7].item()
    reg().backward()
    got = [m.conv2.weight.grad.clone() for m in models] + [m.fc1.weight.grad.clone() for m in models]
    for m in models:
        m.zero_grad()
    ref = 0
    for name in reg.layers:
        mats = [dict(m.named_parameters())[name] for m in models]
        paper = [p.permute(2, 3, 1, 0) if p.dim() == 4 else p.t() for p in mats]
        ref = ref + 0.01 * torch_norm(torch.stack(paper, -1).double(), "tucker")
    ref.backward()
    want = [m.conv2.weight.grad for m in models] + [m.fc1.weight.grad for m in models]
    for a, b in zip(got, want):
        assert torch.allclose(a, b.float(), atol=1e-6)
    assert all(m.out.weight.grad is None or not m.out.weight.grad.any() for m in models)


def test_regulariser_bad_input_raises():
    with pytest.raises(tnmtl.Error, match="at least 2"):
        tt.TraceNormRegulariser([Net(3)])
    with pytest.raises(tnmtl.Error, match="shape"):
        tt.TraceNormRegulariser([Net(3), Net(4)], layers=["out.weight"])
    with pytest.raises(tnmtl.Error, match="no parameter"):
        tt.TraceNormRegulariser([Net(3), Net(4)], layers=["conv9.weight"])
    with pytest.raises(tnmtl.Error, match="method"):
        tt.TraceNormRegulariser([Net(3), Net(4)], method="svd")
    with pytest.raises(tnmtl.Error, match="NaN|finite"):
        tt.tensor_trace_norm(torch.full((3, 4), float("nan")), "laf")
    with pytest.raises(tnmtl.Error, match="float32 or float64"):
        tt.tensor_trace_norm(torch.ones(3, 4, dtype=torch.int32), "laf")
