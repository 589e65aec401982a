"""Equivariance checker for any ``nn.Module``: per-layer verdicts under a grid group, first broken layer.

For every element ``g`` of the group (the 8 symmetries of the square, the 48 of the cube, the 8 of the
``(H, W)`` plane of a volume or video, ...; see :mod:`sreconv.groups`) the model runs on ``x`` and on ``g x``.
Every module's output is compared, through forward hooks:

* outputs laid out as maps ``(N, C, *spatial)`` whose spatial shape the group keeps must be *equivariant*:
  ``f(g x) == g f(x)`` (segmentation maps, feature maps);
* other outputs (logits, pooled features) must be *invariant*: ``f(g x) == f(x)``;
* an output that fails that test, but whose values are a *permutation* of the expected ones, passes as
  ``'permuted'``: tokens of a vision transformer (kind ``'tokens'`` when they fail), window partitions,
  channels-last maps, flattened maps, the orientation channels of group convolutions all reorder their entries
  under ``g``. Only the model's own output must pass strictly.

**Deviations are relative to the input-sensitivity** of each tensor: ``max |f(g x) - expected|`` divided by
``max |f(x') - f(x)|`` for an independent random input ``x'``, so a deviation of ``1e-3`` means the
symmetry moves the output a thousandth as much as changing the image does, whatever the output's size or
offset (a logit dominated by a bias cannot hide a broken layer). A deviation below the rounding floor is float
rounding, not a broken symmetry: the floor is the larger of ``1000 eps`` of the tensor's magnitude and
``100 x`` the tensor's response to perturbing the input by one ulp (``x (1 + eps u)``), which measures how much
the network amplifies rounding at this input (deep random networks can amplify it a millionfold).

**Verdict**: the report passes only when the output passes, *every* layer passes, and the output depends on
the input at all. An output that does not (a zero-initialised head) fails as ``constant_output``, unless
``reinit_zeros`` re-initialises the all-zero parameters of a copy and checks that instead (the report says so).

Hooks fire in execution order (children before the containers that call them), so the first broken module is
the innermost, earliest layer that breaks the symmetry.

Example:
    >>> import torch.nn as nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    >>> report = check_equivariance(net, (1, 8, 8))
    >>> report.passed, report.first_broken
    (False, '0')
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from .groups import GROUPS, GridSymmetry, group_elements, groups_for

__all__ = ["LayerDeviation", "EquivarianceReport", "check_equivariance", "default_group", "model_spatial_dims"]

_DEFAULT_GROUP = {1: "flip", 2: "d4", 3: "cube"}
#: Deviations within this many machine epsilons of a tensor's magnitude count as rounding.
ROUNDING_EPS = 1000.0
#: ... and so do deviations within this many times its response to a one-ulp perturbation of the input.
NOISE_FACTOR = 100.0


def default_group(spatial_dims: int) -> str:
    """``'flip'``, ``'d4'`` or ``'cube'`` for 1, 2 or 3 spatial dimensions.

    Example:
        >>> default_group(3)
        'cube'
    """
    if spatial_dims not in _DEFAULT_GROUP:
        raise ValueError(f"inputs need 1, 2 or 3 spatial dimensions, got {spatial_dims}")
    return _DEFAULT_GROUP[spatial_dims]


@dataclass
class LayerDeviation:
    """Deviation of one module call.

    Attributes:
        name: qualified module name (``''`` is the model itself); ``name#2`` for its second call.
        type: class name of the module.
        kind: ``'equivariant'`` (a map), ``'invariant'`` (a vector), ``'tokens'`` (another layout, compared for
            invariance, then as a multiset) or ``'permuted'`` (passes only as a permutation of the expected values:
            tokens, orientation channels, flattened maps).
        error: max deviation over the group, relative to the tensor's input-sensitivity (``inf`` when the
            shapes do not match).
        worst_element: the group element with the largest deviation.
        shape: output shape for the untransformed input.
        sensitivity: ``max |f(x') - f(x)| / max |f(x)|`` (0: the output does not depend on the input).
        broken: whether the layer breaks the symmetry (beyond ``tol`` and the rounding floor).
        rounding: response to a one-ulp perturbation of the input, relative to the input-sensitivity.
    """

    name: str
    type: str
    kind: str
    error: float
    worst_element: str
    shape: tuple[int, ...]
    sensitivity: float = 1.0
    broken: bool = False
    rounding: float = 0.0


@dataclass
class EquivarianceReport:
    """Result of :func:`check_equivariance`.

    Attributes:
        group: name of the group.
        input_shape: shape of the random input.
        tol: tolerance on deviations relative to the input-sensitivity.
        output_error: deviation of the model's output (relative to its input-sensitivity).
        output_kind: ``'equivariant'`` (a map) or ``'invariant'``.
        per_element: output deviation per group element name.
        layers: per-call deviations in execution order.
        first_broken: name of the first module that breaks the symmetry (``None`` if none).
        constant_output: the output does not depend on the input (so the check proves nothing).
        reinitialized: all-zero parameters re-initialised (in a copy) because the output was constant.
        rounding_floor: output deviations below this (relative to the input-sensitivity) are float rounding.
    """

    group: str
    input_shape: tuple[int, ...]
    tol: float
    output_error: float
    output_kind: str
    per_element: dict[str, float]
    layers: list[LayerDeviation] = field(default_factory=list)
    first_broken: str | None = None
    constant_output: bool = False
    reinitialized: list[str] = field(default_factory=list)
    rounding_floor: float = 0.0

    @property
    def passed(self) -> bool:
        """Output within ``tol``, no layer broken and an output that depends on the input."""
        output_ok = not self.layers or not self.layers[-1].broken
        return output_ok and self.first_broken is None and not self.constant_output

    def broken_layers(self) -> list[LayerDeviation]:
        """The layers that break the symmetry, in execution order."""
        return [layer for layer in self.layers if layer.broken]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {
            "group": self.group, "input_shape": list(self.input_shape), "tol": self.tol,
            "output_error": self.output_error, "output_kind": self.output_kind, "passed": self.passed,
            "first_broken": self.first_broken, "constant_output": self.constant_output,
            "reinitialized": list(self.reinitialized), "rounding_floor": self.rounding_floor,
            "per_element": self.per_element,
            "layers": [dict(name=rec.name, type=rec.type, kind=rec.kind, error=rec.error,
                            worst_element=rec.worst_element, shape=list(rec.shape), sensitivity=rec.sensitivity,
                            broken=rec.broken, rounding=rec.rounding) for rec in self.layers],
        }

    def summary(self, max_layers: int | None = 30) -> str:
        """Human-readable table: verdict, first broken layer, then the per-layer deviations."""
        verdict = "PASS" if self.passed else "FAIL"
        if self.constant_output:
            lines = [f"FAIL: output does not depend on the input (constant) under '{self.group}', "
                     f"input {tuple(self.input_shape)}: equivariance cannot be checked"]
        else:
            lines = [f"{verdict}: output {self.output_kind} under '{self.group}' ({len(self.per_element)} "
                     f"elements), max deviation {self.output_error:.3e} relative to its input-sensitivity "
                     f"(tol {self.tol:.1e}, rounding floor {self.rounding_floor:.1e}), input "
                     f"{tuple(self.input_shape)}"]
        if self.reinitialized:
            lines.append(f"note: the output was constant at the given weights; checked after re-initialising "
                         f"the all-zero parameters {', '.join(self.reinitialized)}")
        if self.first_broken is not None:
            first = next(rec for rec in self.layers if rec.name == self.first_broken)
            lines.append(f"first layer breaking the symmetry: {first.name or '<model>'} ({first.type}, "
                         f"{first.kind}), deviation {first.error:.3e} under {first.worst_element}")
        elif not self.constant_output:
            lines.append("no layer breaks the symmetry")
        if max_layers == 0:
            return "\n".join(lines)
        shown = self.layers if max_layers is None else self.layers[:max_layers]
        width = max([len(rec.name) for rec in shown] + [7])
        lines.append(f"{'layer':<{width}}  {'type':<22} {'kind':<12} {'deviation':>10} {'sensitivity':>11}")
        for rec in shown:
            flag = "  <-- first broken" if rec.name == self.first_broken else "  broken" if rec.broken else ""
            lines.append(f"{rec.name or '<model>':<{width}}  {rec.type:<22} {rec.kind:<12} {rec.error:>10.3e} "
                         f"{rec.sensitivity:>11.2e}{flag}")
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


def model_spatial_dims(model: nn.Module) -> int | None:
    """Spatial dims of the first convolution/pooling found in ``model`` (``None`` if there is none).

    Example:
        >>> model_spatial_dims(nn.Sequential(nn.ReLU(), nn.Conv3d(1, 1, 3)))
        3
    """
    for module in model.modules():
        dims = getattr(module, "_spatial_dims", None) or getattr(module, "spatial_dims", None)
        if isinstance(dims, int) and not isinstance(dims, bool):
            return dims
        if isinstance(module, nn.modules.conv._ConvNd):
            return len(module.kernel_size)
        for ndim, classes in ((1, (nn.MaxPool1d, nn.AvgPool1d)), (2, (nn.MaxPool2d, nn.AvgPool2d)),
                              (3, (nn.MaxPool3d, nn.AvgPool3d))):
            if isinstance(module, classes):
                return ndim
    return None


def _max_abs(t: torch.Tensor) -> float:
    return float(t.abs().max()) if t.numel() else 0.0


class _Record:
    """Reference output of one module call and its running deviation."""

    def __init__(self, name: str, type_name: str, ref: torch.Tensor | None, is_map: bool, strict_only: bool):
        self.name = name
        self.type = type_name
        self.ref = ref
        self.is_map = is_map
        self.strict_only = strict_only
        self.scale = _max_abs(ref) if ref is not None and ref.is_floating_point() else 0.0
        self.sensitivity = 0.0
        self.noise = 0.0  # response to one-ulp input perturbations (absolute)
        self.strict = 0.0  # max strict deviation (absolute)
        self.strict_worst = "identity"
        self.permuted = 0.0  # max deviation of the sorted values (absolute), when the strict test fails
        self.permuted_worst = "identity"


def _is_map(t: torch.Tensor, x: torch.Tensor, elements: list[GridSymmetry]) -> bool:
    return t.dim() == x.dim() and all(g.apply(t).shape == t.shape for g in elements)


def _abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return math.inf
    if not (a.is_floating_point() or a.is_complex()):
        return 0.0 if torch.equal(a, b) else math.inf
    return _max_abs(a.detach() - b.detach())


def _sorted_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.numel() != b.numel() or not a.is_floating_point():
        return math.inf
    return _max_abs(torch.sort(a.detach().flatten())[0] - torch.sort(b.detach().flatten())[0])


def _check_inputs(model: Any, input_shape: Any, group: Any, input: Any) -> tuple[tuple[int, ...], str, int]:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if input is not None:
        if not isinstance(input, torch.Tensor):
            raise ValueError(f"input must be a torch.Tensor or None, got {type(input).__name__}")
        raw: Any = tuple(input.shape)
    else:
        raw = input_shape
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in raw):
        raise ValueError(f"input_shape must be a sequence of ints (C, *spatial) or (N, C, *spatial), got {raw!r}")
    shape = tuple(int(s) for s in raw)
    if len(shape) < 2 or len(shape) > 5:
        raise ValueError(f"input_shape must be (C, *spatial) or (N, C, *spatial) with 1 to 3 spatial sizes, "
                         f"got {shape}")
    if min(shape) < 1:
        raise ValueError(f"input_shape sizes must all be >= 1, got {shape}")
    model_dims = model_spatial_dims(model)
    if group is None:
        spatial = model_dims
        if spatial is None:  # no convolution to tell: read the shape as (C, *spatial)
            spatial = len(shape) - 1 if input is None else len(shape) - 2
        if spatial not in _DEFAULT_GROUP:
            raise ValueError(f"input_shape {shape} has {spatial} spatial dims; 1 to 3 are supported")
        group = default_group(spatial)
    if not isinstance(group, str) or group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(map(repr, GROUPS))}, got {group!r}")
    ndim = GROUPS[group]
    if model_dims is not None and model_dims != ndim:
        raise ValueError(f"group {group!r} acts on {ndim} spatial dims but the model is {model_dims}D; use one of "
                         f"{', '.join(map(repr, groups_for(model_dims)))}")
    if len(shape) == ndim + 1:
        shape = (1, *shape)
    if len(shape) != ndim + 2:
        raise ValueError(f"group {group!r} acts on {ndim} spatial dims: input_shape must be (C, {ndim} sizes) or "
                         f"(N, C, {ndim} sizes), got {tuple(raw)}")
    return shape, group, ndim


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
    reinit_zeros: bool = True,
) -> EquivarianceReport:
    """Checks a model's equivariance/invariance under a grid group, layer by layer (see the module docstring).

    Args:
        model: any ``nn.Module`` taking one tensor ``(N, C, *spatial)``.
        input_shape: ``(C, *spatial)`` or ``(N, C, *spatial)``; use equal spatial sizes on the axes the group
            permutes (odd sizes such as 33 catch more bugs than powers of two).
        group: ``'d4'``/``'d2'`` (2D), ``'cube'``/``'plane'`` (3D) or ``'flip'`` (1D); default: the full group
            of the model's dimensionality.
        dtype: dtype to run in (default float64, so rounding does not hide or fake deviations); ``None``
            keeps the model's dtype.
        device: device to run on (default: the model's).
        train: run in train mode (batch-norm batch statistics) instead of eval mode.
        tol: deviation (relative to the input-sensitivity) above which a layer counts as broken (default
            ``1e-8`` in float64, ``1e-4`` else).
        seed: seed of the random normal inputs.
        input: use this tensor instead of a random one.
        copy_model: work on a deep copy (default) so ``model`` keeps its dtype, mode and buffers.
        reinit_zeros: when the output is constant, check a copy whose all-zero parameters are re-initialised
            at random (needs ``copy_model``).

    Returns:
        :class:`EquivarianceReport`.

    Raises:
        ValueError: ``model`` is not a module, the shape is not ``(C, *spatial)`` with sizes ``>= 1``, or the
            group does not fit the model's or the shape's dimensionality (checked before anything runs).

    Example:
        >>> from sreconv.models import create_model
        >>> model = create_model("sre_resnet18", num_classes=3, inplanes=4)
        >>> report = check_equivariance(model, (3, 33, 33))
        >>> report.passed, report.first_broken
        (True, None)
    """
    shape, group, ndim = _check_inputs(model, input_shape, group, input)
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0):
        raise ValueError(f"tol must be a positive number or None, got {tol!r}")
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
    floor = ROUNDING_EPS * torch.finfo(dtype).eps

    generator = torch.Generator().manual_seed(seed)
    if input is not None:
        x = input.to(device=device, dtype=dtype)
        if x.dim() == ndim + 1:
            x = x.unsqueeze(0)
    else:
        x = torch.randn(shape, generator=generator, dtype=dtype).to(device)
    other = torch.randn(tuple(x.shape), generator=generator, dtype=dtype).to(device)

    report = _run(net, x, other, elements, group, float(tol), floor)
    if report.constant_output and reinit_zeros and copy_model:
        names = _reinit_zero_parameters(net, generator)
        if names:
            report = _run(net, x, other, elements, group, float(tol), floor)
            report.reinitialized = names
    return report


def _reinit_zero_parameters(net: nn.Module, generator: torch.Generator) -> list[str]:
    names = []
    with torch.no_grad():
        for name, param in net.named_parameters():
            if param.is_floating_point() and param.numel() and not param.any():
                fan_in = param[0].numel() if param.dim() > 1 else 1
                values = torch.randn(param.shape, generator=generator, dtype=torch.float64) / math.sqrt(fan_in)
                param.copy_(values.to(param))
                names.append(name)
    return names


def _run(net: nn.Module, x: torch.Tensor, other: torch.Tensor, elements: list[GridSymmetry], group: str,
         tol: float, floor: float) -> EquivarianceReport:
    names = {m: n for n, m in net.named_modules()}
    records: list[_Record] = []
    state: dict[str, Any] = {"mode": "record", "g": None, "i": 0}
    calls: dict[str, int] = {}

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        out = _first_tensor(output)
        if state["mode"] == "record":
            base = names.get(module, type(module).__name__)
            calls[base] = calls.get(base, 0) + 1
            name = base if calls[base] == 1 else f"{base}#{calls[base]}"
            ref = None if out is None else out.detach().clone()
            records.append(_Record(name, type(module).__name__, ref, ref is not None and _is_map(ref, x, elements),
                                   strict_only=module is net))
            return
        i = state["i"]
        state["i"] += 1
        if i >= len(records) or out is None or records[i].ref is None:
            return
        rec = records[i]
        ref = rec.ref
        assert ref is not None
        if state["mode"] == "sensitivity":
            rec.sensitivity = _abs_diff(out, ref)
            return
        if state["mode"] == "noise":
            rec.noise = max(rec.noise, _abs_diff(out, ref))
            return
        g: GridSymmetry = state["g"]
        diff = _abs_diff(out, g.apply(ref) if rec.is_map else ref)
        if diff > rec.strict:
            rec.strict, rec.strict_worst = diff, g.name
        if diff > _limit(rec, tol, floor) and not rec.strict_only:
            permuted = _sorted_diff(out, ref)
            if permuted > rec.permuted:
                rec.permuted, rec.permuted_worst = permuted, g.name

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    per_element_abs: dict[str, float] = {}
    try:
        with torch.no_grad():
            ref_out = _first_tensor(net(x))
            if ref_out is None:
                raise TypeError(f"{type(net).__name__} returned no tensor")
            state["mode"], state["i"] = "sensitivity", 0
            net(other)
            state["mode"] = "noise"
            eps = torch.finfo(x.dtype).eps
            for draw in range(2):
                state["i"] = 0
                noise = torch.randn(tuple(x.shape), generator=torch.Generator().manual_seed(draw), dtype=x.dtype)
                net(x * (1 + eps * noise.to(x.device)))
            state["mode"] = "compare"
            output_rec = records[-1] if records and records[-1].strict_only else None
            for g in elements:
                if g.is_identity():
                    per_element_abs[g.name] = 0.0
                    continue
                state["g"], state["i"] = g, 0
                out = _first_tensor(net(g.apply(x)))
                is_map = output_rec.is_map if output_rec is not None else _is_map(ref_out, x, elements)
                expected = g.apply(ref_out) if is_map else ref_out
                per_element_abs[g.name] = _abs_diff(out, expected) if out is not None else math.inf
    finally:
        for h in handles:
            h.remove()

    layers = [_deviation(rec, tol, floor) for rec in records]
    out_scale = _max_abs(ref_out)
    out_rec = next(rec for rec in reversed(records) if rec.strict_only)
    sens = out_rec.sensitivity
    constant = sens <= floor * out_scale
    out_noise = max(floor * out_scale, NOISE_FACTOR * out_rec.noise)
    per_element = {name: _relative(diff, sens, out_noise) for name, diff in per_element_abs.items()}
    first = next((rec.name for rec in layers if rec.broken), None)
    kind = "equivariant" if _is_map(ref_out, x, elements) else "invariant"
    output_error = max(per_element.values()) if per_element else 0.0
    rounding_floor = out_noise / sens if sens > 0 else 0.0
    return EquivarianceReport(group, tuple(x.shape), tol, float(output_error), kind, per_element, layers, first,
                              constant, rounding_floor=float(rounding_floor))


def _limit(rec: _Record, tol: float, floor: float) -> float:
    return max(tol * rec.sensitivity, floor * rec.scale, NOISE_FACTOR * rec.noise)


def _relative(diff: float, sensitivity: float, noise: float) -> float:
    if diff <= noise:
        return diff / sensitivity if sensitivity > noise else 0.0
    return diff / sensitivity if sensitivity > 0 else math.inf


def _deviation(rec: _Record, tol: float, floor: float) -> LayerDeviation:
    shape = tuple(rec.ref.shape) if rec.ref is not None else ()
    relative_sensitivity = rec.sensitivity / rec.scale if rec.scale > 0 else 0.0
    noise = max(floor * rec.scale, NOISE_FACTOR * rec.noise)
    kind = "equivariant" if rec.is_map else "tokens" if rec.ref is not None and rec.ref.dim() > 2 else "invariant"
    error, worst = _relative(rec.strict, rec.sensitivity, noise), rec.strict_worst
    broken = rec.strict > _limit(rec, tol, floor)
    if broken and not rec.strict_only and rec.permuted <= _limit(rec, tol, floor):
        kind, broken = "permuted", False
        error, worst = _relative(rec.permuted, rec.sensitivity, noise), rec.permuted_worst
    rounding = rec.noise / rec.sensitivity if rec.sensitivity > 0 else 0.0
    return LayerDeviation(rec.name, rec.type, kind, float(error), worst, shape, float(relative_sensitivity),
                          bool(broken), float(rounding))
