"""Equivariance checker for any ``nn.Module``: per-layer deviation under the grid group, first broken layer.

For every element ``g`` of the group (the 8 symmetries of the square, the 48 of the cube, or the 2 of a
line) the model runs on ``x`` and on ``g x``. Every module's output is compared, through forward hooks:

* outputs shaped like the input, ``(N, C, *spatial)``, must be *equivariant*: ``f(g x) == g f(x)``;
* any other output (logits, pooled or flattened features) must be *invariant*: ``f(g x) == f(x)``.

The deviation is ``max |f(g x) - expected| / max |expected|``, maximised over the group. Hooks fire in
execution order (children before the containers that call them), so the first module whose deviation
exceeds the tolerance is the innermost, earliest layer that breaks the symmetry.

Example:
    >>> import torch.nn as nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    >>> report = check_equivariance(net, (1, 8, 8))
    >>> report.first_broken
    '0'
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from .groups import GROUPS, GridSymmetry, group_elements

__all__ = ["LayerDeviation", "EquivarianceReport", "check_equivariance", "default_group"]

_DEFAULT_GROUP = {1: "flip", 2: "d4", 3: "cube"}


def default_group(spatial_dims: int) -> str:
    """``'flip'``, ``'d4'`` or ``'cube'`` for 1, 2 or 3 spatial dimensions."""
    if spatial_dims not in _DEFAULT_GROUP:
        raise ValueError(f"inputs need 1, 2 or 3 spatial dimensions, got {spatial_dims}")
    return _DEFAULT_GROUP[spatial_dims]


@dataclass
class LayerDeviation:
    """Deviation of one module call.

    Attributes:
        name: qualified module name (``''`` is the model itself); ``name#2`` for its second call.
        type: class name of the module.
        kind: ``'equivariant'`` (spatial output) or ``'invariant'``.
        error: max relative deviation over the group (``inf`` when the shapes do not match).
        worst_element: the group element with the largest deviation.
        shape: output shape for the untransformed input.
    """

    name: str
    type: str
    kind: str
    error: float
    worst_element: str
    shape: tuple[int, ...]


@dataclass
class EquivarianceReport:
    """Result of :func:`check_equivariance`.

    Attributes:
        group: name of the group.
        input_shape: shape of the random input.
        tol: tolerance used.
        output_error: deviation of the model's output (the last entry of ``layers``).
        output_kind: ``'equivariant'`` or ``'invariant'``.
        per_element: output deviation per group element name.
        layers: per-call deviations in execution order.
        first_broken: name of the first module whose deviation exceeds ``tol`` (``None`` if none).
    """

    group: str
    input_shape: tuple[int, ...]
    tol: float
    output_error: float
    output_kind: str
    per_element: dict[str, float]
    layers: list[LayerDeviation] = field(default_factory=list)
    first_broken: str | None = None

    @property
    def passed(self) -> bool:
        """Whether the output deviation is within ``tol``."""
        return self.output_error <= self.tol

    def broken_layers(self) -> list[LayerDeviation]:
        return [layer for layer in self.layers if layer.error > self.tol]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {
            "group": self.group, "input_shape": list(self.input_shape), "tol": self.tol,
            "output_error": self.output_error, "output_kind": self.output_kind, "passed": self.passed,
            "first_broken": self.first_broken, "per_element": self.per_element,
            "layers": [dict(name=rec.name, type=rec.type, kind=rec.kind, error=rec.error,
                            worst_element=rec.worst_element, shape=list(rec.shape)) for rec in self.layers],
        }

    def summary(self, max_layers: int | None = 30) -> str:
        """Human-readable table: output verdict, first broken layer, then the per-layer deviations."""
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"{verdict}: output {self.output_kind} under '{self.group}' ({len(self.per_element)} elements), "
            f"max relative deviation {self.output_error:.3e} (tol {self.tol:.1e}), input {tuple(self.input_shape)}",
        ]
        if self.first_broken is not None:
            first = next(rec for rec in self.layers if rec.name == self.first_broken)
            lines.append(f"first layer breaking {first.kind}: {first.name or '<model>'} ({first.type}), "
                         f"deviation {first.error:.3e} under {first.worst_element}")
        else:
            lines.append("no layer breaks the symmetry")
        if max_layers == 0:
            return "\n".join(lines)
        shown = self.layers if max_layers is None else self.layers[:max_layers]
        width = max([len(rec.name) for rec in shown] + [7])
        lines.append(f"{'layer':<{width}}  {'type':<22} {'kind':<12} {'deviation':>10}")
        for rec in shown:
            flag = "  <-- first broken" if rec.name == self.first_broken else ""
            lines.append(f"{rec.name or '<model>':<{width}}  {rec.type:<22} {rec.kind:<12} {rec.error:>10.3e}{flag}")
        if max_layers is not None and len(self.layers) > max_layers:
            lines.append(f"... {len(self.layers) - max_layers} more layers (use max_layers=None)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            t = _first_tensor(v)
            if t is not None:
                return t
    if isinstance(value, dict):
        for v in value.values():
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def _model_spatial_dims(model: nn.Module) -> int | None:
    """Spatial dims of the first convolution/pooling found in ``model`` (``None`` if there is none)."""
    for module in model.modules():
        dims = getattr(module, "_spatial_dims", None) or getattr(module, "spatial_dims", None)
        if isinstance(dims, int):
            return dims
        if isinstance(module, nn.modules.conv._ConvNd):
            return len(module.kernel_size)
    return None


def _deviation(actual: torch.Tensor, expected: torch.Tensor) -> float:
    if actual.shape != expected.shape:
        return math.inf
    if not (actual.is_floating_point() or actual.is_complex()):
        return 0.0 if torch.equal(actual, expected) else math.inf
    diff = (actual.detach() - expected.detach()).abs().max().item() if actual.numel() else 0.0
    scale = expected.detach().abs().max().item() if expected.numel() else 0.0
    if diff == 0.0:
        return 0.0
    return diff / scale if scale > 0 else math.inf


def check_equivariance(
    model: nn.Module,
    input_shape: Sequence[int],
    group: str | None = None,
    *,
    dtype: torch.dtype | None = torch.float64,
    device: torch.device | None = None,
    train: bool = False,
    tol: float | None = None,
    seed: int = 0,
    input: torch.Tensor | None = None,
    copy_model: bool = True,
) -> EquivarianceReport:
    """Checks a model's equivariance/invariance under the grid group, layer by layer.

    Args:
        model: any ``nn.Module`` taking one tensor ``(N, C, *spatial)``.
        input_shape: ``(C, *spatial)`` or ``(N, C, *spatial)``; use equal spatial sizes for groups with
            rotations (odd sizes such as 33 catch more bugs than powers of two).
        group: ``'d4'`` (2D), ``'cube'`` (3D) or ``'flip'`` (1D); default from the number of spatial dims.
        dtype: dtype to run in (default float64, so rounding does not hide or fake deviations); ``None``
            keeps the model's dtype.
        device: device to run on (default: the model's).
        train: run in train mode (batch-norm batch statistics) instead of eval mode.
        tol: deviation above which a layer counts as broken (default ``1e-8`` in float64, ``1e-4`` else).
        seed: seed of the random normal input.
        input: use this tensor instead of a random one.
        copy_model: work on a deep copy (default) so ``model`` keeps its dtype, mode and buffers.

    Returns:
        :class:`EquivarianceReport`.

    Example:
        >>> from sreconv.models import create_model
        >>> model = create_model("sre_resnet18", num_classes=3, inplanes=4)
        >>> report = check_equivariance(model, (3, 33, 33))
        >>> report.passed, report.first_broken
        (True, None)
    """
    shape = tuple(int(s) for s in (input.shape if input is not None else input_shape))
    if len(shape) < 2:
        raise ValueError(f"input_shape must be (C, *spatial) or (N, C, *spatial), got {shape}")
    if group is None:
        spatial = _model_spatial_dims(model)
        if spatial is None:  # no convolution to tell: read the shape as (C, *spatial)
            spatial = len(shape) - 1 if input is None else len(shape) - 2
        group = default_group(spatial)
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(map(repr, GROUPS))}, got {group!r}")
    ndim = GROUPS[group]
    if len(shape) == ndim + 1:
        shape = (1, *shape)
    if len(shape) != ndim + 2:
        raise ValueError(f"group {group!r} acts on {ndim} spatial dims: input_shape must be (C, {ndim} sizes) or "
                         f"(N, C, {ndim} sizes), got {tuple(input_shape)}")
    elements = group_elements(group)

    net = copy.deepcopy(model) if copy_model else model
    params = list(net.parameters()) + list(net.buffers())
    if device is None:
        device = params[0].device if params else torch.device("cpu")
    if dtype is None:
        floats = [p.dtype for p in params if p.is_floating_point()]
        dtype = floats[0] if floats else torch.get_default_dtype()
    net.to(device=device, dtype=dtype)
    net.train(train)
    if tol is None:
        tol = 1e-8 if dtype == torch.float64 else 1e-4

    if input is not None:
        x = input.to(device=device, dtype=dtype)
        if x.dim() == ndim + 1:
            x = x.unsqueeze(0)
    else:
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(shape, generator=generator, dtype=dtype).to(device)

    names = {m: n for n, m in net.named_modules()}
    reference: list[tuple[str, str, torch.Tensor | None]] = []
    errors: list[float] = []
    worst: list[str] = []
    state = {"mode": "record", "g": None, "i": 0}
    calls: dict[str, int] = {}

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        out = _first_tensor(output)
        if state["mode"] == "record":
            base = names.get(module, type(module).__name__)
            calls[base] = calls.get(base, 0) + 1
            name = base if calls[base] == 1 else f"{base}#{calls[base]}"
            reference.append((name, type(module).__name__, None if out is None else out.detach().clone()))
            errors.append(0.0)
            worst.append("identity")
            return
        i = state["i"]
        state["i"] += 1
        if i >= len(reference):
            return
        ref = reference[i][2]
        if ref is None or out is None:
            return
        g: GridSymmetry = state["g"]
        if ref.dim() == x.dim():
            expected = g.apply(ref)
        else:
            expected = ref
        err = _deviation(out, expected)
        if err > errors[i]:
            errors[i] = err
            worst[i] = g.name

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    per_element: dict[str, float] = {}
    try:
        with torch.no_grad():
            state["mode"] = "record"
            ref_out = _first_tensor(net(x))
            if ref_out is None:
                raise TypeError(f"{type(model).__name__} returned no tensor")
            state["mode"] = "compare"
            for g in elements:
                if g.is_identity():
                    per_element[g.name] = 0.0
                    continue
                state["g"], state["i"] = g, 0
                out = _first_tensor(net(g.apply(x)))
                expected = g.apply(ref_out) if ref_out.dim() == x.dim() else ref_out
                per_element[g.name] = _deviation(out, expected) if out is not None else math.inf
    finally:
        for h in handles:
            h.remove()

    layers = [
        LayerDeviation(name, typ, "equivariant" if ref is not None and ref.dim() == x.dim() else "invariant",
                       errors[i], worst[i], tuple(ref.shape) if ref is not None else ())
        for i, (name, typ, ref) in enumerate(reference)
    ]
    output_error = max(per_element.values()) if per_element else 0.0
    first = next((rec.name for rec in layers if rec.error > tol), None)
    kind = "equivariant" if ref_out.dim() == x.dim() else "invariant"
    return EquivarianceReport(group, tuple(x.shape), float(tol), float(output_error), kind, per_element, layers,
                              first)
