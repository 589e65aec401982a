"""Convert any CNN into an SRE-CNN whose symmetric parts are exactly equivariant (2D and 3D).

What :func:`convert_to_sre` does to each module (in place):

* ``nn.Conv{1,2,3}d`` with a kernel larger than 1: replaced by an SRE convolution with the same geometry
  (kernel, padding, dilation, groups, bias, padding mode). Its ring weights are the projection of the
  dense kernel onto the rings (``init='project'``) or a fresh initialisation (``init='reset'``).
* a stride ``s > 1`` (of any convolution, 1x1 shortcuts included): the layer runs with stride 1 and is
  followed by a centre-aligned subsampling to torch's output size
  (:class:`~sreconv.nn.pooling.CenteredSubsample`). A plain strided grid is mirror-symmetric only
  when ``(H + 2p - k) % s == 0``; the centred one always is (see :mod:`sreconv.nn.pooling`).
  Parameter names are unchanged, so state_dicts keep their keys.
* ``nn.MaxPool``/``nn.AvgPool``: replaced by the centre-aligned :class:`~sreconv.nn.pooling.SymmetricPool`
  with torch's output size (identical results whenever torch's grid is already symmetric).
* Adaptive poolings, normalisations, activations, dropout: kept (their bins/statistics are symmetric).

Everything else that may break the symmetry is *reported* (returned and logged): even or anisotropic
kernels, transposed convolutions with a stride, ``ceil_mode``/dilated poolings, and, when an
``input_shape`` is given, every layer that the equivariance checker finds broken after conversion (typically
a ``Linear`` on flattened spatial features, as in VGG's classifier).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..nn import SREConv1d, SREConv2d, SREConv3d
from ..nn.conv import _SREConvNd
from ..nn.pooling import CenteredSubsample, SymmetricPool

logger = logging.getLogger(__name__)

__all__ = ["ConversionReport", "convert_to_sre", "convert_to_SRE_conv"]

_SRE = {1: SREConv1d, 2: SREConv2d, 3: SREConv3d}
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_MAXPOOL = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}
_AVGPOOL = {nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3}
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


@dataclass
class ConversionReport:
    """What :func:`convert_to_sre` changed and what it could not make equivariant.

    Attributes:
        converted: names of convolutions replaced by SRE convolutions.
        restrided: names of layers whose stride became a centre-aligned subsampling.
        pools: names of poolings replaced by centre-aligned ones.
        unconverted: ``(name, reason)`` for every layer that may still break the symmetry.
        check: the :class:`~sreconv.equivariance.EquivarianceReport` after conversion (with ``input_shape``).
    """

    converted: list[str] = field(default_factory=list)
    restrided: list[str] = field(default_factory=list)
    pools: list[str] = field(default_factory=list)
    unconverted: list[tuple[str, str]] = field(default_factory=list)
    check: object | None = None

    @property
    def ok(self) -> bool:
        """No problem found (and, with a check, the output is equivariant/invariant)."""
        return not self.unconverted and (self.check is None or self.check.passed)

    def __str__(self) -> str:
        lines = [f"converted {len(self.converted)} convolutions to SRE, {len(self.restrided)} strides to centred "
                 f"subsampling, {len(self.pools)} poolings to centre-aligned poolings"]
        for name, reason in self.unconverted:
            lines.append(f"  not equivariant: {name}: {reason}")
        if self.check is not None:
            lines.append(self.check.summary(max_layers=0).splitlines()[0])
        return "\n".join(lines)


class _CenteredStride:
    """Mixin: run the layer with stride 1, then subsample on a centre-aligned grid (torch's output size)."""

    centered_stride: tuple[int, ...]

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = super().forward(input)  # type: ignore[misc]
        return self._subsample(out)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", centered_stride={self.centered_stride}"  # type: ignore[misc]


_STRIDED_CLASSES: dict[type, type] = {}


def _make_strided_class(base: type) -> type:
    cls = type(f"CenteredStride{base.__name__}", (_CenteredStride, base), {"__module__": __name__})
    _STRIDED_CLASSES[base] = cls
    globals()[cls.__name__] = cls  # importable by name, so converted models pickle
    return cls


for _base in (nn.Conv1d, nn.Conv2d, nn.Conv3d, SREConv1d, SREConv2d, SREConv3d):
    _make_strided_class(_base)


def _with_centered_stride(module: nn.Module, stride: tuple[int, ...], ndim: int) -> nn.Module:
    base = type(module)
    cls = _STRIDED_CLASSES.get(base)
    if cls is None:
        cls = _make_strided_class(base)
    module.__class__ = cls
    module.centered_stride = stride
    module._subsample = CenteredSubsample(ndim, stride)
    return module


def _project(weight: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Least-squares ring weights of a dense kernel: ``(O, I, *k) -> (O, I, R)``."""
    flat = basis.reshape(basis.shape[0], -1).to(torch.float64)
    dense = weight.detach().reshape(weight.shape[0], weight.shape[1], -1).to(torch.float64)
    return (dense @ torch.linalg.pinv(flat)).to(weight.dtype)


def _symmetric_padding(conv: nn.Module) -> bool:
    padding = conv.padding
    if isinstance(padding, str):
        return padding == "valid" or all(d * (k - 1) % 2 == 0 for d, k in zip(conv.dilation, conv.kernel_size))
    return True


def convert_to_sre(
    model: nn.Module,
    *,
    sre_conv_size: int | None = None,
    sre_k: int | None = None,
    ring_basis: str = "hard",
    force_circular: bool = True,
    sre_groups: int | None = None,
    init: str = "project",
    input_shape: Sequence[int] | None = None,
    group: str | None = None,
    return_report: bool = False,
    warn: bool = True,
) -> nn.Module | tuple[nn.Module, ConversionReport]:
    """Makes a CNN rotation/flip-equivariant in place (see the module docstring for the rules).

    Args:
        model: any module (a torchvision ResNet/VGG, a 3D CNN, ...); modified in place.
        sre_conv_size: use this kernel size for every converted convolution (padding adapted to keep the
            output size); default: keep each layer's size.
        sre_k: number of rings (default ``k//2 + 1``).
        ring_basis: ``'hard'`` or ``'gaussian'``.
        force_circular: drop the kernel corners.
        sre_groups: override the groups of the converted convolutions.
        init: ``'project'`` (ring weights = least-squares projection of the dense kernel) or ``'reset'``.
        input_shape: ``(C, *spatial)``: after converting, run :func:`sreconv.check_equivariance` and report the
            layers it finds broken (e.g. a ``Linear`` on flattened spatial features).
        group: group for that check (default from the dimensionality).
        return_report: return ``(model, report)`` instead of ``model``.
        warn: emit a warning listing the layers that could not be made equivariant.

    Returns:
        The converted model (the same object), or ``(model, ConversionReport)``.

    Example:
        >>> import torch.nn as nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
        >>> net, report = convert_to_sre(net, input_shape=(3, 33, 33), return_report=True)
        >>> type(net[0]).__name__, report.ok
        ('CenteredStrideSREConv2d', True)
    """
    if init not in ("project", "reset"):
        raise ValueError(f"init must be 'project' or 'reset', got {init!r}")
    report = ConversionReport()

    def visit(module: nn.Module, prefix: str) -> None:
        for child_name, child in list(module.named_children()):
            name = f"{prefix}{child_name}"
            new = _convert_one(child, name, report, sre_conv_size, sre_k, ring_basis, force_circular, sre_groups,
                               init)
            if new is not child:
                setattr(module, child_name, new)
            elif not isinstance(child, _SREConvNd):
                visit(child, name + ".")

    root = _convert_one(model, "", report, sre_conv_size, sre_k, ring_basis, force_circular, sre_groups, init) \
        if not list(model.children()) else model
    if root is model:
        visit(model, "")
    model = root

    if input_shape is not None:
        from ..equivariance import check_equivariance

        check = check_equivariance(model, input_shape, group)
        report.check = check
        known = {n for n, _ in report.unconverted}
        for layer in check.broken_layers():
            if layer.name and layer.name.split("#")[0] not in known and not _is_container(model, layer.name):
                report.unconverted.append((layer.name, f"{layer.type} breaks {layer.kind} "
                                                       f"(deviation {layer.error:.2e} under {layer.worst_element})"))
                break  # later layers inherit the deviation; the first one is the culprit
    if report.unconverted:
        message = "convert_to_sre could not make these layers equivariant:\n" + "\n".join(
            f"  {n}: {r}" for n, r in report.unconverted)
        logger.warning(message)
        if warn:
            warnings.warn(message, stacklevel=2)
    return (model, report) if return_report else model


def _is_container(model: nn.Module, name: str) -> bool:
    try:
        module = model.get_submodule(name.split("#")[0])
    except AttributeError:
        return False
    return len(list(module.children())) > 0


def _convert_one(child: nn.Module, name: str, report: ConversionReport, sre_conv_size, sre_k, ring_basis,
                 force_circular, sre_groups, init) -> nn.Module:
    if isinstance(child, _SREConvNd):
        return child
    if isinstance(child, _CONV) and type(child) in _CONV:
        return _convert_conv(child, name, report, sre_conv_size, sre_k, ring_basis, force_circular, sre_groups,
                             init)
    if type(child) in _MAXPOOL or type(child) in _AVGPOOL:
        return _convert_pool(child, name, report)
    if isinstance(child, _TRANSPOSED) and any(s > 1 for s in child.stride):
        report.unconverted.append((name, f"{type(child).__name__} with stride {child.stride} is not converted"))
    elif isinstance(child, _TRANSPOSED) and any(k > 1 for k in child.kernel_size):
        report.unconverted.append((name, f"{type(child).__name__} kept dense (use sreconv.SREConvTranspose*)"))
    return child


def _convert_conv(conv: nn.Module, name: str, report: ConversionReport, sre_conv_size, sre_k, ring_basis,
                  force_circular, sre_groups, init) -> nn.Module:
    ndim = len(conv.kernel_size)
    stride = tuple(conv.stride)
    kernel = tuple(conv.kernel_size)
    if all(k == 1 for k in kernel):
        if any(s > 1 for s in stride):
            if isinstance(conv.padding, tuple) and any(conv.padding):
                report.unconverted.append((name, f"1x1 convolution with padding {conv.padding} kept"))
                return conv
            conv.stride = (1,) * ndim
            report.restrided.append(name)
            return _with_centered_stride(conv, stride, ndim)
        return conv
    if sre_conv_size is not None:
        kernel = (sre_conv_size,) * ndim
    problems = []
    if any(k % 2 == 0 for k in kernel):
        report.unconverted.append((name, f"even kernel {kernel} has no centre cell: kept dense"))
        return conv
    if len(set(kernel)) > 1:
        problems.append(f"anisotropic kernel {kernel}: only equivariant to the symmetries that keep its shape")
    if isinstance(conv.padding, str):
        padding: str | tuple[int, ...] = conv.padding
    elif sre_conv_size is not None:
        padding = tuple(d * (k - 1) // 2 for d, k in zip(conv.dilation, kernel))
    else:
        padding = tuple(conv.padding)
        if len(set(padding)) > 1 and len(set(kernel)) == 1:
            problems.append(f"padding {padding} differs between axes")
    if not _symmetric_padding(conv):
        report.unconverted.append((name, "padding='same' with an even effective kernel is asymmetric: kept"))
        return conv
    groups = conv.groups if sre_groups is None else sre_groups
    try:
        layer = _SRE[ndim](conv.in_channels, conv.out_channels, kernel, stride=1, padding=padding,
                           dilation=conv.dilation, groups=groups, bias=conv.bias is not None,
                           padding_mode=conv.padding_mode, device=conv.weight.device, dtype=conv.weight.dtype,
                           sre_k=sre_k, ring_basis=ring_basis, force_circular=force_circular)
    except (ValueError, TypeError) as exc:
        report.unconverted.append((name, f"could not build an SRE layer: {exc}"))
        return conv
    if init == "project" and tuple(conv.kernel_size) == kernel and groups == conv.groups:
        with torch.no_grad():
            layer.weight.copy_(_project(conv.weight, layer.basis))
            if conv.bias is not None:
                layer.bias.copy_(conv.bias)
    layer.train(conv.training)
    report.converted.append(name)
    for problem in problems:
        report.unconverted.append((name, problem))
    if any(s > 1 for s in stride):
        report.restrided.append(name)
        return _with_centered_stride(layer, stride, ndim)
    return layer


def _convert_pool(pool: nn.Module, name: str, report: ConversionReport) -> nn.Module:
    ndim = _MAXPOOL.get(type(pool)) or _AVGPOOL[type(pool)]
    mode = "max" if type(pool) in _MAXPOOL else "avg"
    if getattr(pool, "ceil_mode", False):
        report.unconverted.append((name, f"{type(pool).__name__} with ceil_mode=True kept"))
        return pool
    dilation = getattr(pool, "dilation", 1)
    if any(d != 1 for d in (dilation if isinstance(dilation, tuple) else (dilation,))):
        report.unconverted.append((name, f"dilated {type(pool).__name__} kept"))
        return pool
    if getattr(pool, "return_indices", False) or getattr(pool, "divisor_override", None):
        report.unconverted.append((name, f"{type(pool).__name__} with indices/divisor_override kept"))
        return pool
    new = SymmetricPool(ndim, pool.kernel_size, pool.stride, pool.padding, mode=mode, output="floor",
                        count_include_pad=getattr(pool, "count_include_pad", False))
    report.pools.append(name)
    return new


def convert_to_SRE_conv(model: nn.Module, kernel_shape: str = "o", train_index_mat: bool = False,
                        sre_conv_size: int | None = None, sre_groups: int | None = None,
                        sre_k: int | None = None, force_circular: bool | None = None) -> nn.Module:
    """The official package's converter, made exact; **returns the model** (the official one returns None).

    ``kernel_shape`` and ``train_index_mat`` are accepted for compatibility and ignored. The official
    ``force_circular`` default (``False``) is never applied by the official code, whose kernels are always
    circular, so ``None`` means circular here too. Strided convolutions, strided 1x1 shortcuts and poolings
    become centre-aligned (the official converter keeps them, and the result is not invariant).

    Example:
        >>> import torch.nn as nn
        >>> net = convert_to_SRE_conv(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1)))
        >>> type(net[0]).__name__
        'SREConv2d'
    """
    return convert_to_sre(model, sre_conv_size=sre_conv_size, sre_k=sre_k, sre_groups=sre_groups,
                          force_circular=True if force_circular is None else force_circular)
