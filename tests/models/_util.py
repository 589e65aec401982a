"""Helpers for the model tests: batched group orbits in float64."""

import torch

from sreconv.groups import group_elements


def max_invariance_error(model, x, group):
    """Max relative deviation of ``model(g x)`` from ``model(x)`` over the group (eval mode, one batch)."""
    elements = group_elements(group)
    batch = torch.cat([g.apply(x) for g in elements])
    with torch.no_grad():
        out = model(batch)
    ref = out[: x.shape[0]]
    scale = ref.abs().max().clamp_min(1e-30)
    return max(float((out[i * x.shape[0]:(i + 1) * x.shape[0]] - ref).abs().max() / scale)
               for i in range(len(elements)))


def max_equivariance_error(module, x, group):
    """Max relative deviation of ``module(g x)`` from ``g module(x)`` (module applied per element)."""
    with torch.no_grad():
        return _equivariance_error(module, x, group)


def _equivariance_error(module, x, group):
    y = module(x)
    scale = y.abs().max().clamp_min(1e-30)
    errs = []
    for g in group_elements(group):
        errs.append(float((module(g.apply(x)) - g.apply(y)).abs().max() / scale))
    return max(errs)
