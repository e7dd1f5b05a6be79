"""tnmtl for PyTorch: tensor trace norms as autograd functions and a
regulariser for T per-task models (needs torch; `import tnmtl.torch`).

    reg = tnmtl.torch.TraceNormRegulariser(models, method="tucker", gamma=0.01)
    loss = sum(task_losses) + reg()          # backward as usual

The value and its subgradient come from tnmtl's exact norms (docs/design.md,
"Trace norms"); the backward pass is that subgradient, which is finite for
repeated and zero singular values (it drops directions below 1e-6 sigma_max).
Tensors are moved to the CPU for the norm; the gradient returns to W's device.
"""
import numpy as _np
import torch as _torch

from . import Error, norm as _norm

__all__ = ["tensor_trace_norm", "TraceNormRegulariser", "stack_task_weights"]


class _TensorTraceNorm(_torch.autograd.Function):
    @staticmethod
    def forward(ctx, W, method, gamma):
        if W.dtype not in (_torch.float32, _torch.float64):
            raise Error("W must be a float32 or float64 tensor, not %s" % W.dtype)
        need_grad = ctx.needs_input_grad[0]
        value, grad = _norm(W.detach().cpu().contiguous().numpy(), method, gamma, need_grad)
        if need_grad:
            ctx.save_for_backward(_torch.from_numpy(grad).to(W.device))
        return _torch.tensor(value, dtype=W.dtype, device=W.device)

    @staticmethod
    def backward(ctx, g):
        (grad,) = ctx.saved_tensors
        return g * grad, None, None


def tensor_trace_norm(W, method="tucker", gamma=None):
    """The LAF, Tucker or TT trace norm of W (task axis last; gamma None, a
    number or one weight per term) as a 0-d tensor whose backward is tnmtl's
    exact subgradient."""
    return _TensorTraceNorm.apply(W, method, gamma)


def _to_paper_layout(p):
    """A task's weight in the paper's axis order: conv (out, in, kh, kw) ->
    (kh, kw, in, out), linear (out, in) -> (in, out); others unchanged."""
    if p.dim() == 4:
        return p.permute(2, 3, 1, 0)
    if p.dim() == 2:
        return p.t()
    return p


def stack_task_weights(params):
    """Stacks the T per-task weights of one layer with the task axis last:
    conv weights (out, in, kh, kw) give (kh, kw, in, out, T), linear weights
    (out, in) give (in, out, T) (the paper's tensors, method.md)."""
    return _torch.stack([_to_paper_layout(p) for p in params], dim=-1)


class TraceNormRegulariser(_torch.nn.Module):
    """The trace-norm penalty of T per-task models of one architecture.

    task_models: T nn.Modules with the same parameter names.  layers: the
    parameter names to stack (e.g. ["conv1.weight", "fc1.weight"]); default:
    the weight of every nn.Conv2d and nn.Linear but the last one (the output
    layer, task-specific as in the paper) whose shape agrees across the tasks.
    gamma: a number or one weight per term for every layer, or a dict
    {layer name: gamma}.  Calling it returns the penalty sum_k gamma_k ||W_k||
    to add to the loss."""

    def __init__(self, task_models, method="tucker", gamma=0.01, layers=None):
        super().__init__()
        models = list(task_models)
        if len(models) < 2:
            raise Error("TraceNormRegulariser needs at least 2 task models, got %d" % len(models))
        if method not in ("laf", "tucker", "tt"):
            raise Error("method '%s' is not laf, tucker or tt" % method)
        self.models = _torch.nn.ModuleList(models)
        self.method = method
        self.gamma = gamma
        named = [dict(m.named_parameters()) for m in models]
        if layers is None:
            mods = [(n, m) for n, m in models[0].named_modules() if isinstance(m, (_torch.nn.Conv2d, _torch.nn.Linear))]
            layers = [n + ".weight" if n else "weight" for n, _ in mods[:-1]]
            layers = [n for n in layers if all(n in d and d[n].shape == named[0][n].shape for d in named)]
        for n in layers:
            for t, d in enumerate(named):
                if n not in d:
                    raise Error("task model %d has no parameter '%s'" % (t, n))
                if d[n].shape != named[0][n].shape:
                    raise Error("parameter '%s' has shape %s in task model %d but %s in task model 0"
                                % (n, tuple(d[n].shape), t, tuple(named[0][n].shape)))
        self.layers = list(layers)
        self._named = named

    def stacked(self, layer):
        """The task-last tensor of one layer (differentiable)."""
        return stack_task_weights([d[layer] for d in self._named])

    def forward(self):
        total = None
        for n in self.layers:
            g = self.gamma.get(n, 0.0) if isinstance(self.gamma, dict) else self.gamma
            term = tensor_trace_norm(self.stacked(n), self.method, g)
            total = term if total is None else total + term
        if total is None:
            return _torch.zeros(())
        return total
