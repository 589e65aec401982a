"""Convert any CNN into an SRE-CNN that commutes exactly with the grid symmetries (2D and 3D).

SRE-Conv: Du et al., "SRE-Conv: Symmetric Rotation Equivariant Convolution for Biomedical Image Classification",
ISBI 2025, arXiv:2501.09753. :func:`convert_to_sre` works by *behaviour*, not by exact type, so subclasses and
wrappers of the torch layers (timm's ``Conv2dSame`` and ``ScaledStdConv2d``, torchvision's ``Conv3DSimple``,
MONAI's padders) are handled too. What it does to each module, in place:

* **Convolutions** (any ``nn.Conv{1,2,3}d``, subclasses included), kernels larger than 1:

  - a layer that runs torch's own ``forward`` becomes an SRE convolution with the same geometry: odd kernels
    :class:`~sreconv.nn.SREConv2d` (rings about the centre cell), even kernels
    :class:`~sreconv.nn.EvenSREConv2d` (rings about the centre point: patchify stems, 2x2 downsamplers);
  - a subclass with its own ``forward`` (dynamic 'same' padding, weight standardisation) keeps it: its
    ``weight`` becomes the dense kernel expanded from ring weights (parameter ``ring_weight``), and the
    converted layer is verified on a probe input before it is accepted;
  - ring weights are the least-squares projection of the dense kernel (``init='project'``, after centrally
    padding or cropping it to the new size) or a fresh initialisation (``init='reset'``).
* **Strides** ``s > 1`` (1x1 shortcuts included): the layer runs on a centre-aligned grid with torch's output
  count (:class:`~sreconv.nn.pooling.CenteredSubsample`; computed directly at the stride when the layer allows).
  A plain strided grid is mirror-symmetric only when ``(H + 2p - k) % s == 0``; the centred one always is
  (see :mod:`sreconv.nn.pooling`). 'same'-style layers keep their ``ceil(H / s)`` count.
* **Transposed convolutions** (strided U-Net up-sampling included) become
  :class:`~sreconv.nn.CenteredSREConvTranspose2d` / :class:`~sreconv.nn.EvenSREConvTranspose2d`: torch's output
  size, ``output_padding`` realised symmetrically, so a converted U-Net's output map rotates with its input.
* **Poolings** (max/avg, ``ceil_mode`` and TF-'same' subclasses included): the centre-aligned
  :class:`~sreconv.nn.pooling.SymmetricPool` with the same output count (identical results wherever torch's grid
  is already symmetric). The count rule of a subclass with its own ``forward`` is read off probe inputs.
* **Explicit pad modules** with different amounts on the two sides of an axis (TF-'same' padders in front of a
  strided convolution): padded symmetrically with the total rounded up to even (same output count for 'same'
  padders).
* **Anisotropic kernels** (1x7/7x1, video kernels ``(1, 3, 3)``/``(3, 1, 1)``): ``anisotropic='isotropic'``
  (default) makes them cubic with the largest size (padding adapted, same output size); ``'keep'`` keeps their
  shape (symmetric per axis) and restricts the group to the symmetries that keep every kernel, stride and window
  (``'d2'`` in 2D, ``'plane'`` in 3D: see :mod:`sreconv.groups`). Anisotropic strides restrict it likewise, and
  so do the kernels of layers with their own ``forward``, which keep their shape.
* Adaptive poolings, normalisations, activations, dropout, linear layers on pooled features: kept (symmetric).

Everything that may still break the symmetry is *reported*, never skipped: even kernels with 'same' padding,
custom layers whose probe fails, dilated poolings, position embeddings (transformers), convolutions of another
dimensionality than the model's (kept: they act on channels), and, when an ``input_shape`` is given, the first
layer :func:`sreconv.check_equivariance` still finds broken (typically a ``Linear`` on flattened spatial
features, as in VGG's classifier).
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..equivariance import check_equivariance, model_spatial_dims
from ..groups import GROUPS, group_elements, groups_for
from ..nn import (
    CenteredSREConvTranspose1d,
    CenteredSREConvTranspose2d,
    CenteredSREConvTranspose3d,
    EvenSREConv1d,
    EvenSREConv2d,
    EvenSREConv3d,
    EvenSREConvTranspose1d,
    EvenSREConvTranspose2d,
    EvenSREConvTranspose3d,
    SREConv1d,
    SREConv2d,
    SREConv3d,
    symmetric_ring_basis,
)
from ..nn.centered import _EvenSREConvNd
from ..nn.conv import _SREConvNd, _SREConvTranspose
from ..nn.functional import expand_kernel
from ..nn.pooling import (
    OUTPUT_COUNTS,
    CenteredSubsample,
    SymmetricPool,
    centered_pool_geometry,
    pool_output_count,
)
from ..nn.ring_basis import RING_BASES, make_ring_basis

logger = logging.getLogger(__name__)

__all__ = ["ANISOTROPIC", "ConversionReport", "convert_to_sre", "convert_to_SRE_conv"]

#: Choices of ``convert_to_sre(anisotropic=...)``.
ANISOTROPIC = ("isotropic", "keep")

_CONV_BASE: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_TRANSPOSED_BASE: dict[int, type[nn.Module]] = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_SRE: dict[int, type[nn.Module]] = {1: SREConv1d, 2: SREConv2d, 3: SREConv3d}
_EVEN: dict[int, type[nn.Module]] = {1: EvenSREConv1d, 2: EvenSREConv2d, 3: EvenSREConv3d}
_CENTERED_TRANSPOSE: dict[int, type[nn.Module]] = {
    1: CenteredSREConvTranspose1d, 2: CenteredSREConvTranspose2d, 3: CenteredSREConvTranspose3d}
_EVEN_TRANSPOSE: dict[int, type[nn.Module]] = {
    1: EvenSREConvTranspose1d, 2: EvenSREConvTranspose2d, 3: EvenSREConvTranspose3d}
_MAXPOOL: dict[int, type[nn.Module]] = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVGPOOL: dict[int, type[nn.Module]] = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
_PADS = (nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
         nn.modules.padding._ReplicationPadNd, nn.modules.padding._CircularPadNd)
_CONV_FN: dict[int, Callable[..., torch.Tensor]] = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_AVG_POOL: dict[int, Callable[..., torch.Tensor]] = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
# Words that mark parameter/buffer names of learned or fixed position tables (ViT's pos_embed, Swin's
# relative_position_bias_table, Swin-V2's relative_coords_table, MViT's rel_pos_h and spatial_pos): they tie
# features to absolute token positions, which no symmetric kernel can undo. Index buffers only point into them.
_POSITION_WORDS = ("pos", "position", "positional", "coords")


@dataclass
class ConversionReport:
    """What :func:`convert_to_sre` changed and what it could not make equivariant.

    Attributes:
        converted: layers whose kernels became symmetric (SRE convolutions, transposed ones included).
        restrided: layers whose stride became a centre-aligned subsampling.
        pools: poolings replaced by centre-aligned ones.
        pads: pad modules made symmetric.
        unconverted: ``(name, reason)`` for every layer that may still break the symmetry.
        restricted: ``(name, reason)`` for the layers whose geometry narrowed the group to ``group``.
        kept: ``(name, reason)`` for layers deliberately left as they are although they look spatial.
        group: the group the converted model commutes with when nothing is unconverted (``'d4'``, ``'cube'``,
            ``'plane'``, ...); ``None`` when no named group fits the kept geometry.
        check: the :class:`~sreconv.equivariance.EquivarianceReport` after conversion (with ``input_shape``).
    """

    converted: list[str] = field(default_factory=list)
    restrided: list[str] = field(default_factory=list)
    pools: list[str] = field(default_factory=list)
    pads: list[str] = field(default_factory=list)
    unconverted: list[tuple[str, str]] = field(default_factory=list)
    restricted: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    group: str | None = None
    check: Any = None

    @property
    def ok(self) -> bool:
        """No problem found (and, with a check, the check passed)."""
        return not self.unconverted and self.group is not None and (self.check is None or self.check.passed)

    def attach_check(self, check: Any) -> None:
        """Records an :class:`~sreconv.equivariance.EquivarianceReport` of the converted model.

        A constant output and the first broken layer (unless it lies inside a layer already reported) join
        ``unconverted``. :func:`convert_to_sre` calls this with ``input_shape``; call it yourself after changing
        the model further (e.g. recalibrating batch-norm statistics) and checking it again.

        Args:
            check: the result of :func:`sreconv.check_equivariance` on the converted model.
        """
        self.check = check
        known = [n for n, _ in self.unconverted]
        if check.constant_output:
            self.unconverted.append(("<model>", "the output does not depend on the input (constant)"))
        first = check.first_broken
        if first is not None and not any(first.split("#")[0] == n or first.startswith(n + ".") for n in known):
            layer = next(rec for rec in check.layers if rec.name == first)
            self.unconverted.append((first, f"the output of this {layer.type} ({layer.kind}) breaks the symmetry: "
                                            f"deviation {layer.error:.2e} under {layer.worst_element}"))

    def __str__(self) -> str:
        lines = [f"converted {len(self.converted)} convolutions to SRE, {len(self.restrided)} strides to centred "
                 f"subsampling, {len(self.pools)} poolings and {len(self.pads)} pads to centre-aligned ones; "
                 f"group {self.group!r}"]
        for name, reason in self.unconverted:
            lines.append(f"  not equivariant: {name or '<model>'}: {reason}")
        for name, reason in self.restricted:
            lines.append(f"  restricts the group: {name}: {reason}")
        for name, reason in self.kept:
            lines.append(f"  kept: {name}: {reason}")
        if self.check is not None:
            lines.append(self.check.summary(max_layers=0).splitlines()[0])
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- dynamic classes
# Converted layers keep their class (and so their own forward, state_dict keys and attributes) through a
# dynamically created subclass. Such classes pickle and deep-copy through _rebuild_module.

_DYNAMIC: dict[tuple[str, type], type] = {}


def _dynamic_class(mixin: type, base: type) -> type:
    key = (mixin.__name__, base)
    cls = _DYNAMIC.get(key)
    if cls is None:
        cls = type(f"{mixin.__name__.strip('_')}{base.__name__}", (mixin, base),
                   {"__module__": __name__, "_sre_mixin": mixin.__name__, "_sre_base": base})
        _DYNAMIC[key] = cls
    return cls


def _recipe(cls: type) -> tuple[list[str], type]:
    mixins = []
    while "_sre_mixin" in cls.__dict__:
        mixins.append(cls.__dict__["_sre_mixin"])
        cls = cls.__dict__["_sre_base"]
    return mixins, cls


def _rebuild_module(mixins: list[str], root: type) -> nn.Module:
    """Unpickling helper: recreates a converted layer's dynamic class (outermost mixin first)."""
    cls = root
    for name in reversed(mixins):
        cls = _dynamic_class(_MIXINS[name], cls)
    module: nn.Module = object.__new__(cls)
    return module


class _Rebuildable:
    def __reduce_ex__(self, protocol: Any) -> Any:
        return _rebuild_module, _recipe(type(self)), self.__dict__.copy()


class _CenteredStride(_Rebuildable):
    """Mixin: run the layer on a centre-aligned grid with torch's strided output count."""

    centered_stride: tuple[int, ...]
    _direct: bool

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        out = self._direct_forward(input) if self._direct else None
        if out is None:
            out = self._subsample(super().forward(input))  # type: ignore[misc,attr-defined]
        return out

    def _direct_forward(self, x: torch.Tensor) -> torch.Tensor | None:
        """The same result computed at the stride, as cheap as the original strided layer (``None``: not here).

        Where the centred grid falls between two samples of the stride-1 output, the mean of those two outputs
        is the convolution of the input averaged over adjacent pairs (the layer is linear and shift-equivariant),
        so the input is zero-padded, pair-averaged on those axes and cropped, then convolved at the stride.
        """
        n = len(self.centered_stride)
        if x.dim() != n + 2:
            return None
        kernel = self.kernel() if hasattr(self, "kernel") else self.weight  # type: ignore[attr-defined]
        dilation, padding = self.dilation, self.padding  # type: ignore[attr-defined]
        windows, crops = [], []
        for size, k, s, d, p in zip(x.shape[2:], kernel.shape[2:], self.centered_stride, dilation, padding):
            length = size + 2 * p - d * (k - 1)
            if length < 1:
                return None
            window, offset, _ = centered_pool_geometry(length, 1, s)
            windows.append(window)
            crops.append(-offset)  # the centred grid starts -offset samples into the stride-1 output
        conv = _CONV_FN[n]
        if all(w == 1 for w in windows):
            starts = [p - c for p, c in zip(padding, crops)]
            if any(start < 0 for start in starts):
                x = F.pad(x, [v for start in reversed(starts) for v in (min(start, 0),) * 2])
            return conv(x, kernel, self.bias, self.centered_stride,  # type: ignore[attr-defined]
                        tuple(max(start, 0) for start in starts), dilation, self.groups)  # type: ignore[attr-defined]
        x = F.pad(x, [v for p in reversed(padding) for v in (p, p)])
        x = _AVG_POOL[n](x, tuple(windows), 1)
        x = F.pad(x, [v for c in reversed(crops) for v in (-c, -c)])
        return conv(x, kernel, self.bias, self.centered_stride, 0, dilation, self.groups)  # type: ignore[attr-defined]

    def to_conv(self) -> nn.Module:
        """Plain torch layers with the same outputs (used by :func:`sreconv.export_to_conv` for SRE layers).

        Returns:
            ``nn.Sequential(stride-1 nn.ConvNd, CenteredSubsample)``.
        """
        plain = super().to_conv()  # type: ignore[misc]
        return nn.Sequential(plain, CenteredSubsample(len(self.centered_stride), self.centered_stride))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", centered_stride={self.centered_stride}"  # type: ignore[misc]


class _RingKernel(_Rebuildable):
    """Mixin for convolutions with their own ``forward``: ``weight`` is expanded from ring weights."""

    @property
    def weight(self) -> torch.Tensor:
        """The dense kernel ``(C_out, C_in/groups, *kernel_size)`` from ``ring_weight`` and ``ring_basis``."""
        return expand_kernel(self.ring_weight, self.ring_basis)  # type: ignore[attr-defined]

    def kernel(self) -> torch.Tensor:
        """Same as ``weight`` (the SRE layers' name for the dense kernel)."""
        return self.weight


_MIXINS: dict[str, type] = {"_CenteredStride": _CenteredStride, "_RingKernel": _RingKernel}

for _base in (nn.Conv1d, nn.Conv2d, nn.Conv3d, SREConv1d, SREConv2d, SREConv3d, EvenSREConv1d, EvenSREConv2d,
              EvenSREConv3d):
    _cls = _dynamic_class(_CenteredStride, _base)
    globals()[_cls.__name__] = _cls  # importable by name, like the classes of older pickles


def _with_centered_stride(module: Any, stride: tuple[int, ...], direct: bool) -> nn.Module:
    module.__class__ = _dynamic_class(_CenteredStride, type(module))
    module.stride = (1,) * len(stride)
    module.centered_stride = stride
    module._direct = direct
    module._subsample = CenteredSubsample(len(stride), stride)
    return module


# ---------------------------------------------------------------------------------------------- helpers
def _project(weight: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Least-squares ring weights of a dense kernel, centrally padded or cropped to the basis: ``(O, I, R)``."""
    dense = weight.detach().to(torch.float64)
    target = basis.shape[1:]
    pads: list[int] = []
    for have, want in zip(dense.shape[2:], target):
        pads = [(want - have) // 2, (want - have) - (want - have) // 2] + pads
    if any(pads):
        dense = F.pad(dense, pads)
    flat = basis.reshape(basis.shape[0], -1).to(torch.float64)
    rings = dense.reshape(dense.shape[0], dense.shape[1], -1) @ torch.linalg.pinv(flat)
    return rings.to(weight.dtype)


def _plain_forward(module: nn.Module, base: type) -> bool:
    """Whether ``module`` computes exactly what ``base`` computes from its attributes."""
    cls = type(module)
    return isinstance(module, base) and all(
        getattr(cls, attr, None) is getattr(base, attr, None) for attr in ("forward", "_conv_forward"))


def _pair_symmetric(padding: Sequence[int]) -> bool:
    return all(padding[i] == padding[i + 1] for i in range(0, len(padding), 2))


def _check_args(model: Any, sre_conv_size: Any, sre_k: Any, ring_basis: Any, force_circular: Any,
                sre_groups: Any, init: Any, input_shape: Any, group: Any, anisotropic: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__} {model!r:.60}")
    if sre_conv_size is not None and (isinstance(sre_conv_size, bool) or not isinstance(sre_conv_size, int)
                                      or sre_conv_size < 1 or sre_conv_size % 2 == 0):
        raise ValueError(f"sre_conv_size must be None or an odd int >= 1 (an SRE kernel is symmetric about its "
                         f"centre cell; a model's own even kernels keep their size and become symmetric about "
                         f"their centre point), got {sre_conv_size!r}")
    if sre_k is not None and (isinstance(sre_k, bool) or not isinstance(sre_k, int) or sre_k < 1):
        raise ValueError(f"sre_k must be None or an int >= 1, got {sre_k!r}")
    if ring_basis not in RING_BASES:
        raise ValueError(f"ring_basis must be one of {', '.join(map(repr, RING_BASES))}, got {ring_basis!r}")
    if not isinstance(force_circular, bool):
        raise TypeError(f"force_circular must be a bool, got {force_circular!r}")
    if sre_groups is not None and (isinstance(sre_groups, bool) or not isinstance(sre_groups, int)
                                   or sre_groups < 1):
        raise ValueError(f"sre_groups must be None or an int >= 1, got {sre_groups!r}")
    if init not in ("project", "reset"):
        raise ValueError(f"init must be 'project' or 'reset', got {init!r}")
    if anisotropic not in ANISOTROPIC:
        raise ValueError(f"anisotropic must be one of {', '.join(map(repr, ANISOTROPIC))}, got {anisotropic!r}")
    if group is not None and group not in GROUPS:
        raise ValueError(f"group must be None or one of {', '.join(map(repr, GROUPS))}, got {group!r}")
    if input_shape is not None:
        if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in input_shape) \
                or not 2 <= len(input_shape) <= 5:
            raise ValueError(f"input_shape must be (C, *spatial) or (N, C, *spatial) with 1 to 3 spatial sizes, "
                             f"all ints >= 1, got {input_shape!r}")


# ---------------------------------------------------------------------------------------------- the converter
class _Converter:
    def __init__(self, report: ConversionReport, ndim: int, sre_conv_size: int | None, sre_k: int | None,
                 ring_basis: str, force_circular: bool, sre_groups: int | None, init: str, anisotropic: str):
        self.report = report
        self.ndim = ndim
        self.sre_conv_size = sre_conv_size
        self.sre_k = sre_k
        self.ring_basis = ring_basis
        self.force_circular = force_circular
        self.sre_groups = sre_groups
        self.init = init
        self.anisotropic = anisotropic
        self.perms = set(itertools.permutations(range(ndim)))
        self.elements = group_elements(groups_for(ndim)[0])

    # -- group bookkeeping
    def restrict(self, name: str, what: str, values: Sequence[int]) -> None:
        """Keeps only the axis permutations under which ``values`` (one per axis) is unchanged."""
        values = tuple(values)
        keep = {p for p in self.perms if all(values[p[i]] == values[i] for i in range(len(values)))}
        if keep != self.perms:
            self.perms = keep
            self.report.restricted.append((name, f"{what} {values} differs between axes"))

    def group(self) -> str | None:
        for name in groups_for(self.ndim):
            if all(g.perm in self.perms for g in group_elements(name)):
                return name
        return None

    def _restrict_geometry(self, name: str, module: Any, kernel: Sequence[int], stride: Sequence[int]) -> None:
        self.restrict(name, "kernel", kernel)
        self.restrict(name, "stride", stride)
        self.restrict(name, "dilation", module.dilation)

    # -- dispatch
    def convert(self, module: nn.Module, name: str) -> nn.Module:
        if isinstance(module, _PADS):
            return self.pad(module, name)
        if isinstance(module, (_SREConvNd, _EvenSREConvNd)):
            return self.sre_layer(module, name)
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            return self.transposed(module, name)
        if isinstance(module, nn.modules.conv._ConvNd):
            return self.conv(module, name)
        if isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
            return self.pool(module, name)
        if isinstance(module, (nn.modules.pooling._LPPoolNd, nn.modules.pooling._MaxUnpoolNd, nn.Unfold, nn.Fold,
                               nn.FractionalMaxPool2d, nn.FractionalMaxPool3d)):
            self.report.unconverted.append((name, f"{type(module).__name__} kept: the converter has no exact form"))
        return module

    # -- pads
    def pad(self, module: Any, name: str) -> nn.Module:
        padding = tuple(module.padding)
        if not _pair_symmetric(padding):
            even: list[int] = []
            for i in range(0, len(padding), 2):
                side = -(-(padding[i] + padding[i + 1]) // 2)
                even += [side, side]
            module.padding = padding = tuple(even)
            self.report.pads.append(name)
        per_axis = [0] * self.ndim  # F.pad order: last axis first
        for axis in range(min(len(padding) // 2, self.ndim)):
            per_axis[self.ndim - 1 - axis] = padding[2 * axis]
        self.restrict(name, "padding", per_axis)
        return module

    # -- our own layers
    def sre_layer(self, module: Any, name: str) -> Any:
        if type(module).__module__ == __name__:
            return module  # converted already
        n = len(module.kernel_size)
        if n != self.ndim:
            self.report.kept.append((name, f"{type(module).__name__} of a {self.ndim}D model kept"))
            return module
        self._restrict_geometry(name, module, module.kernel_size, module.stride)
        if module._transposed:
            if isinstance(module, _SREConvTranspose) and type(module) is not _CENTERED_TRANSPOSE[n]:
                module.__class__ = cast(Any, _CENTERED_TRANSPOSE[n])  # same state, centred output padding
                self.report.converted.append(name)
            return module
        if any(s > 1 for s in module.stride) and not isinstance(module, _CenteredStride):
            self.report.restrided.append(name)
            direct = module.padding_mode == "zeros" and not isinstance(module.padding, str)
            return _with_centered_stride(module, tuple(module.stride), direct)
        return module

    # -- convolutions
    def _target_kernel(self, name: str, kernel: tuple[int, ...], padding: tuple[int, ...],
                       dilation: tuple[int, ...], resizable: bool) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        new = kernel
        if resizable and self.sre_conv_size is not None and all(k % 2 == 1 for k in kernel):
            new = (self.sre_conv_size,) * len(kernel)
        if len(set(new)) > 1:
            if self.anisotropic == "keep" or not resizable:
                return new, padding
            if len({k % 2 for k in new}) > 1:
                self.report.unconverted.append((name, f"kernel {kernel} mixes odd and even sizes: no isotropic "
                                                      "form with the same output size; kept"))
                return None
            new = (max(new),) * len(new)
        padding = tuple(p + d * (k_new - k) // 2 for p, d, k, k_new in zip(padding, dilation, kernel, new))
        if any(p < 0 for p in padding):
            self.report.unconverted.append((name, f"sre_conv_size={self.sre_conv_size} would need negative padding "
                                                  f"{padding}; kept"))
            return None
        return new, padding

    def conv(self, conv: Any, name: str) -> nn.Module:
        n = len(conv.kernel_size)
        if n != self.ndim:
            self.report.kept.append((name, f"{type(conv).__name__} in a {self.ndim}D model acts on non-spatial "
                                           "axes (e.g. channel attention): kept"))
            return conv
        plain = _plain_forward(conv, _CONV_BASE[n])
        kernel, stride, dilation = tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.dilation)
        if isinstance(conv.padding, str):
            if conv.padding == "valid":
                padding = (0,) * n
            elif all(d * (k - 1) % 2 == 0 for d, k in zip(dilation, kernel)):
                padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel))
            else:
                self.report.unconverted.append((name, f"padding='same' with the even kernel {kernel} pads one side "
                                                      "more than the other; kept"))
                return conv
        else:
            padding = tuple(conv.padding)
        original = None if plain else copy.deepcopy(conv)
        if all(k == 1 for k in kernel):
            new: Any = conv
            if plain and isinstance(conv.padding, str):
                conv.padding = padding
        else:
            target = self._target_kernel(name, kernel, padding, dilation, resizable=plain)
            if target is None:
                return conv
            kernel, padding = target
            built = self._build_conv(conv, name, kernel, padding, plain)
            if built is None:
                return conv
            new = built
            self.report.converted.append(name)
        if any(s > 1 for s in stride):
            self.report.restrided.append(name)
            direct = plain and conv.padding_mode == "zeros"
            new = _with_centered_stride(new, stride, direct)
        if original is not None:
            problem = _probe(new, original, self.elements_for(new, kernel))
            if problem is not None:
                self.report.unconverted.append((name, f"{type(original).__name__} has its own forward: {problem}; "
                                                      "kept"))
                for entries in (self.report.converted, self.report.restrided):
                    if entries and entries[-1] == name:
                        entries.pop()
                return original
        self._restrict_geometry(name, new, kernel, stride)
        self.restrict(name, "padding", padding)
        return new

    def elements_for(self, module: Any, kernel: Sequence[int]) -> list[Any]:
        geometry = [tuple(kernel), tuple(getattr(module, "centered_stride", module.stride)), tuple(module.dilation)]
        return [g for g in self.elements if all(all(v[g.perm[i]] == v[i] for i in range(len(v))) for v in geometry)]

    def _basis(self, kernel: tuple[int, ...]) -> torch.Tensor:
        if all(k % 2 == 1 for k in kernel):
            return make_ring_basis(self.ring_basis, kernel, self.sre_k, self.force_circular, ndim=len(kernel),
                                   dtype=torch.float64)
        return symmetric_ring_basis(kernel, self.sre_k, self.force_circular, self.ring_basis, dtype=torch.float64)

    def _build_conv(self, conv: Any, name: str, kernel: tuple[int, ...], padding: tuple[int, ...],
                    plain: bool) -> nn.Module | None:
        n = len(kernel)
        weight = conv.weight
        try:
            if plain:
                groups = conv.groups if self.sre_groups is None else self.sre_groups
                cls = _SRE[n] if all(k % 2 == 1 for k in kernel) else _EVEN[n]
                layer: Any = cls(conv.in_channels, conv.out_channels, kernel, stride=1, padding=padding,
                            dilation=conv.dilation, groups=groups, bias=conv.bias is not None,
                            padding_mode=conv.padding_mode, device=weight.device, dtype=weight.dtype,
                            sre_k=self.sre_k, ring_basis=self.ring_basis, force_circular=self.force_circular)
                if self.init == "project" and groups == conv.groups:
                    with torch.no_grad():
                        layer.weight.copy_(_project(weight, layer.basis))
                        if conv.bias is not None:
                            layer.bias.copy_(conv.bias)
                layer.train(conv.training)
                return layer
            basis = self._basis(kernel).to(device=weight.device, dtype=weight.dtype)
        except (ValueError, TypeError) as exc:
            self.report.unconverted.append((name, f"could not build an SRE layer: {exc}"))
            return None
        rings = _project(weight, basis)
        if self.init == "reset":
            bound = 1.0 / math.sqrt(weight.shape[1] * float(basis.double().pow(2).sum()))
            rings = torch.empty_like(rings).uniform_(-bound, bound)
        del conv._parameters["weight"]
        conv.__class__ = _dynamic_class(_RingKernel, type(conv))
        conv.register_parameter("ring_weight", nn.Parameter(rings, requires_grad=weight.requires_grad))
        conv.register_buffer("ring_basis", basis, persistent=False)
        return conv

    # -- transposed convolutions
    def transposed(self, conv: Any, name: str) -> nn.Module:
        n = len(conv.kernel_size)
        if n != self.ndim:
            self.report.kept.append((name, f"{type(conv).__name__} of a {self.ndim}D model kept"))
            return conv
        if not _plain_forward(conv, _TRANSPOSED_BASE[n]):
            self.report.unconverted.append((name, f"{type(conv).__name__} has its own forward; kept"))
            return conv
        kernel, padding, dilation = tuple(conv.kernel_size), tuple(conv.padding), tuple(conv.dilation)
        if isinstance(conv.padding, str):
            self.report.unconverted.append((name, f"padding={conv.padding!r} on a transposed convolution; kept"))
            return conv
        target = self._target_kernel(name, kernel, padding, dilation, resizable=True)
        if target is None:
            return conv
        new_kernel, new_padding = target
        # A transposed convolution's padding crops its output: a bigger kernel needs more of it.
        cls = _CENTERED_TRANSPOSE[n] if all(k % 2 == 1 for k in new_kernel) else _EVEN_TRANSPOSE[n]
        try:
            layer: Any = cls(conv.in_channels, conv.out_channels, new_kernel, stride=conv.stride, padding=new_padding,
                        output_padding=conv.output_padding, groups=conv.groups, bias=conv.bias is not None,
                        dilation=conv.dilation, device=conv.weight.device, dtype=conv.weight.dtype, sre_k=self.sre_k,
                        ring_basis=self.ring_basis, force_circular=self.force_circular)
        except (ValueError, TypeError) as exc:
            self.report.unconverted.append((name, f"could not build an SRE layer: {exc}"))
            return conv
        if self.init == "project":
            with torch.no_grad():
                layer.weight.copy_(_project(conv.weight, layer.basis))
                if conv.bias is not None:
                    layer.bias.copy_(conv.bias)
        layer.train(conv.training)
        self.report.converted.append(name)
        self._restrict_geometry(name, layer, new_kernel, layer.stride)
        self.restrict(name, "padding", new_padding)
        return layer

    # -- poolings
    def pool(self, pool: Any, name: str) -> nn.Module:
        mode = "max" if isinstance(pool, nn.modules.pooling._MaxPoolNd) else "avg"
        bases = _MAXPOOL if mode == "max" else _AVGPOOL
        ndim = next((d for d, base in bases.items() if isinstance(pool, base)), None)
        if ndim is None:
            self.report.unconverted.append((name, f"{type(pool).__name__}: unknown dimensionality; kept"))
            return pool
        if ndim != self.ndim:
            self.report.kept.append((name, f"{type(pool).__name__} in a {self.ndim}D model kept"))
            return pool
        dilation = getattr(pool, "dilation", 1)
        if any(d != 1 for d in (dilation if isinstance(dilation, tuple) else (dilation,))):
            self.report.unconverted.append((name, f"dilated {type(pool).__name__} kept"))
            return pool
        if getattr(pool, "return_indices", False) or getattr(pool, "divisor_override", None):
            self.report.unconverted.append((name, f"{type(pool).__name__} with indices/divisor_override kept"))
            return pool
        kernel = _tuple(pool.kernel_size, ndim)
        stride = _tuple(pool.stride if pool.stride is not None else pool.kernel_size, ndim)
        padding = _tuple(pool.padding, ndim)
        rule: str | None = "torch_ceil" if pool.ceil_mode else "floor"
        if not _plain_forward(pool, bases[ndim]):
            rule = _probe_pool_rule(pool, ndim, kernel, stride, padding)
        if rule is None:
            self.report.unconverted.append((name, f"{type(pool).__name__} has its own forward with an output "
                                                  "size none of the known rules gives; kept"))
            return pool
        try:
            new = SymmetricPool(ndim, kernel, stride, padding, mode=mode, output=rule,
                                count_include_pad=getattr(pool, "count_include_pad", False))
            for size in range(1, 2 * max(kernel) + 2 * max(stride) + 2):  # refuse geometries it cannot centre
                new.geometry((size,) * ndim)
        except ValueError as exc:
            self.report.unconverted.append((name, f"{type(pool).__name__}: {exc}; kept"))
            return pool
        self.restrict(name, "window", kernel)
        self.restrict(name, "stride", stride)
        self.restrict(name, "padding", padding)
        self.report.pools.append(name)
        return new


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * n


def _probe_pool_rule(pool: nn.Module, ndim: int, kernel: Sequence[int], stride: Sequence[int],
                     padding: Sequence[int]) -> str | None:
    """The :data:`OUTPUT_COUNTS` rule that reproduces ``pool``'s output sizes on probe inputs (``None``: none)."""
    sizes = range(max(kernel), max(kernel) + 2 * max(stride) + 2)
    observed = []
    with torch.no_grad():
        for size in sizes:
            observed.append(tuple(pool(torch.zeros(1, 1, *(size,) * ndim)).shape[2:]))
    for rule in OUTPUT_COUNTS:
        if all(obs == tuple(pool_output_count(size, k, s, p, rule) for k, s, p in zip(kernel, stride, padding))
               for size, obs in zip(sizes, observed)):
            return rule
    return None


def _probe(new: Any, old: Any, elements: list[Any]) -> str | None:
    """Runs a converted layer that has its own forward on probe inputs (float64).

    Returns ``None`` when it keeps the original's output shapes and commutes with ``elements``, else what went
    wrong.
    """
    n = len(old.kernel_size)
    reach = max(d * (k - 1) + 1 for d, k in zip(new.dilation, new.kernel_size))
    new64 = copy.deepcopy(new).double().eval()
    old64 = copy.deepcopy(old).double().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for size in (reach + 4, reach + 5):
            x = torch.randn(1, old.in_channels, *(size,) * n, generator=generator, dtype=torch.float64)
            y = new64(x)
            if y.shape != old64(x).shape:
                return f"output shape {tuple(y.shape)} differs from the original's {tuple(old64(x).shape)}"
            scale = float(y.abs().max()) or 1.0
            for g in elements:
                err = float((new64(g.apply(x)) - g.apply(y)).abs().max()) / scale
                if err > 1e-9:
                    return f"not equivariant after conversion (deviation {err:.1e} under {g.name})"
    return None


def _position_tables(model: nn.Module) -> list[tuple[str, str]]:
    """``(module, reason)`` for every module holding a position table (the first one it holds)."""
    found: dict[str, tuple[str, str]] = {}
    for full, _ in itertools.chain(model.named_parameters(), model.named_buffers()):
        owner, _, leaf = full.rpartition(".")
        words = leaf.lower().split("_")
        if any(word in _POSITION_WORDS for word in words) and "index" not in words:
            found.setdefault(owner, (owner or "<model>", f"position-dependent table '{leaf}' (position embedding or "
                                                         "relative position bias) ties features to absolute token "
                                                         "positions: not convertible"))
    return list(found.values())


def convert_to_sre(
    model: nn.Module,
    *,
    sre_conv_size: int | None = None,
    sre_k: int | None = None,
    ring_basis: str = "hard",
    force_circular: bool = True,
    sre_groups: int | None = None,
    init: str = "project",
    anisotropic: str = "isotropic",
    input_shape: Sequence[int] | None = None,
    group: str | None = None,
    return_report: bool = False,
    warn: bool = True,
) -> nn.Module | tuple[nn.Module, ConversionReport]:
    """Makes a CNN rotation/flip-equivariant in place (see the module docstring for the rules).

    Args:
        model: any module (a torchvision/timm/MONAI CNN, a U-Net, a 3D or video CNN, ...); modified in place.
        sre_conv_size: use this odd kernel size for every converted odd-kernel convolution that runs torch's own
            forward (padding adapted to keep the output size); default: keep each layer's size.
        sre_k: number of rings (default ``k//2 + 1``).
        ring_basis: ``'hard'`` or ``'gaussian'``.
        force_circular: drop the kernel corners.
        sre_groups: override the groups of the converted convolutions.
        init: ``'project'`` (ring weights = least-squares projection of the dense kernel) or ``'reset'``.
        anisotropic: ``'isotropic'`` (make 1x7-style kernels cubic) or ``'keep'`` (keep their shape and restrict
            the group; see the module docstring).
        input_shape: ``(C, *spatial)``: after converting, run :func:`sreconv.check_equivariance` and report the
            first layer it finds broken (e.g. a ``Linear`` on flattened spatial features).
        group: group for that check (default: the group the conversion reached, ``report.group``).
        return_report: return ``(model, report)`` instead of ``model``.
        warn: emit a warning listing the layers that could not be made equivariant or restrict the group.

    Returns:
        The converted model (the same object unless ``model`` itself is a single layer), or
        ``(model, ConversionReport)``.

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` (or ``force_circular`` not a bool).
        ValueError: any other argument out of range (named in the message), before anything is changed.

    Example:
        >>> import torch.nn as nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
        >>> net, report = convert_to_sre(net, input_shape=(3, 33, 33), return_report=True)
        >>> type(net[0]).__name__, report.group, report.ok
        ('CenteredStrideSREConv2d', 'd4', True)
    """
    _check_args(model, sre_conv_size, sre_k, ring_basis, force_circular, sre_groups, init, input_shape, group,
                anisotropic)
    ndim = model_spatial_dims(model)
    if ndim is not None and group is not None and GROUPS[group] != ndim:
        raise ValueError(f"group={group!r} acts on {GROUPS[group]} spatial dims but the model's first "
                         f"convolution/pooling is {ndim}D; use one of {', '.join(map(repr, groups_for(ndim)))}")
    if ndim is not None and input_shape is not None and len(input_shape) not in (ndim + 1, ndim + 2):
        raise ValueError(f"input_shape must be (C, {ndim} sizes) or (N, C, {ndim} sizes) for this {ndim}D model, "
                         f"got {tuple(input_shape)}")
    report = ConversionReport()
    if ndim is None:
        report.unconverted.append(("<model>", "no convolution or pooling: nothing to convert"))
        if input_shape is None:
            return _finish(model, report, return_report, warn)
        ndim = GROUPS[group] if group is not None else len(input_shape) - 1
        if ndim not in (1, 2, 3):
            raise ValueError(f"input_shape must have 1 to 3 spatial sizes after the channels, got {input_shape!r}")
    converter = _Converter(report, ndim, sre_conv_size, sre_k, ring_basis, force_circular, sre_groups, init,
                           anisotropic)

    def visit(module: nn.Module, prefix: str) -> None:
        for child_name, child in list(module.named_children()):
            name = f"{prefix}{child_name}"
            new = converter.convert(child, name)
            if new is not child:
                setattr(module, child_name, new)
            if not isinstance(new, (_SREConvNd, _EvenSREConvNd, nn.modules.conv._ConvNd, SymmetricPool)):
                visit(new, name + ".")

    root = converter.convert(model, "") if not list(model.children()) else model
    if root is model:
        visit(model, "")
    model = root
    report.unconverted.extend(_position_tables(model))
    report.group = converter.group()
    if report.group is None:
        report.unconverted.append(("<model>", f"no named group of {ndim}D symmetries keeps the geometry of every "
                                              f"layer ({', '.join(n for n, _ in report.restricted)})"))

    if input_shape is not None:
        report.attach_check(check_equivariance(model, input_shape, group or report.group or groups_for(ndim)[0]))
    return _finish(model, report, return_report, warn)


def _finish(model: nn.Module, report: ConversionReport, return_report: bool,
            warn: bool) -> nn.Module | tuple[nn.Module, ConversionReport]:
    problems = [f"  {n or '<model>'}: {r}" for n, r in report.unconverted]
    problems += [f"  {n}: {r} (equivariant to {report.group!r} only)" for n, r in report.restricted]
    if problems:
        message = "convert_to_sre could not make these layers equivariant to the full group:\n" + "\n".join(problems)
        logger.info(message)
        if warn:
            warnings.warn(message, stacklevel=3)
    return (model, report) if return_report else model


def convert_to_SRE_conv(model: nn.Module, kernel_shape: str = "o", train_index_mat: bool = False,
                        sre_conv_size: int | None = None, sre_groups: int | None = None,
                        sre_k: int | None = None, force_circular: bool | None = None) -> nn.Module:
    """The official package's converter, made exact; **returns the model** (the official one returns None).

    ``kernel_shape`` and ``train_index_mat`` are accepted for compatibility and ignored. The official
    ``force_circular`` default (``False``) is never applied by the official code, whose kernels are always
    circular, so ``None`` means circular here too. Strided convolutions, strided 1x1 shortcuts and poolings
    become centre-aligned (the official converter keeps them, and the result is not invariant).

    Args:
        model: the CNN to convert in place.
        kernel_shape: ignored (the official package's only shape, ``'o'``).
        train_index_mat: ignored (the ring masks are fixed).
        sre_conv_size: see :func:`convert_to_sre`.
        sre_groups: see :func:`convert_to_sre`.
        sre_k: see :func:`convert_to_sre`.
        force_circular: ``None`` or ``True``: circular kernels; ``False``: square ones.

    Returns:
        The converted model.

    Example:
        >>> import torch.nn as nn
        >>> net = convert_to_SRE_conv(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1)))
        >>> type(net[0]).__name__
        'SREConv2d'
    """
    result = convert_to_sre(model, sre_conv_size=sre_conv_size, sre_k=sre_k, sre_groups=sre_groups,
                            force_circular=True if force_circular is None else force_circular)
    return cast(nn.Module, result)
