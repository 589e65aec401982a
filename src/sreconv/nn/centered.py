"""Centre-aligned SRE layers for the geometries :class:`~sreconv.nn.SREConv2d` does not cover.

SRE-Conv (Du et al., "SRE-Conv: Symmetric Rotation Equivariant Convolution for Biomedical Image Classification",
ISBI 2025, arXiv:2501.09753) makes a kernel radially symmetric about its centre cell. Two geometries that real
networks use need more than that to stay exactly equivariant to the grid symmetries:

**Even kernels** (ConvNeXt's 4x4 stem and 2x2 downsamplers, ViT patch embeddings, U-Net 2x2 up-convolutions)
have no centre cell, but they have a centre: the point between the middle cells. A kernel whose weights depend
only on the distance of a cell to *that* point (:func:`symmetric_ring_basis`) is invariant under every symmetry
of its box. With symmetric padding the window grid of a stride-1 convolution is its own mirror image
(``H + 2p - k + 1`` windows, from ``-p`` to ``H - 1 + p``), so the layer commutes exactly with flips, rot90 and
transposes: its output grid is offset by half a cell, symmetrically. Strides are made centre-aligned by the
converter (:func:`sreconv.models.convert_to_sre`) or with :class:`~sreconv.nn.pooling.CenteredSubsample`.

**Transposed convolutions with** ``output_padding`` (MONAI's U-Net up-sampling: ``k=3, stride=2, padding=1,
output_padding=1``, giving ``2H``): zero-stuffing the input and convolving with a symmetric kernel is symmetric,
but the extra ``output_padding`` row is added on one side only. :class:`CenteredSREConvTranspose2d` (and the 1D,
3D and even-kernel versions) computes the transposed convolution without it, on a slightly larger support, and
brings the result to torch's output size by symmetric cropping or by averaging adjacent pairs
(:func:`~sreconv.nn.pooling.fit_centered`). Output sizes are torch's for every argument combination; a converted
U-Net's segmentation map then rotates and flips exactly with its input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import PADDING_MODES, check_choice, check_groups, check_int, check_tuple
from .conv import SREConvTranspose1d, SREConvTranspose2d, SREConvTranspose3d
from .functional import expand_kernel
from .pooling import fit_centered
from .ring_basis import RING_BASES

_IntOrTuple: TypeAlias = int | tuple[int, ...]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}

__all__ = [
    "CenteredConvTranspose",
    "symmetric_ring_basis",
    "centered_conv_transpose",
    "EvenSREConv1d",
    "EvenSREConv2d",
    "EvenSREConv3d",
    "EvenSREConvTranspose1d",
    "EvenSREConvTranspose2d",
    "EvenSREConvTranspose3d",
    "CenteredSREConvTranspose1d",
    "CenteredSREConvTranspose2d",
    "CenteredSREConvTranspose3d",
]


def _centre_distances(kernel_size: Sequence[int]) -> np.ndarray:
    axes = [np.arange(k, dtype=np.float64) - (k - 1) / 2 for k in kernel_size]
    grids = np.meshgrid(*axes, indexing="ij")
    return np.sqrt(sum(g * g for g in grids))


def symmetric_ring_basis(
    kernel_size: Sequence[int],
    num_rings: int | None = None,
    force_circular: bool = True,
    ring_basis: str = "hard",
    sigma: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Rings about the geometric centre of a kernel of any size, even sizes included.

    A cell's distance ``D`` is measured from the centre of the box (between the middle cells on even axes).
    ``'hard'``: ring ``i`` holds the cells with ``edge[i] <= D < edge[i+1]``, edges ``linspace(0, k/2, R+1)``
    with ``k`` the largest size and ``R = ceil(k / 2)`` by default (for odd sizes this is the official SRE-Conv
    rule, the same masks as :func:`~sreconv.nn.hard_ring_basis`). Cells with ``D >= k/2`` (the corners) are
    dropped, or with ``force_circular=False`` form one extra ring. ``'gaussian'``: every cell gets a normalised
    Gaussian profile of its distance to ``R`` ring radii evenly spaced on ``[0, (k-1)/2]``.

    Args:
        kernel_size: size per axis (each ``>= 1``).
        num_rings: ring count ``R`` (default: ``ceil(k/2)``, plus the corner ring when not circular).
        force_circular: drop the corners beyond radius ``k/2``.
        ring_basis: ``'hard'`` or ``'gaussian'``.
        sigma: Gaussian width in cells (default half the ring spacing); only for ``'gaussian'``.
        dtype: dtype of the result.

    Returns:
        Tensor ``(R, *kernel_size)``; every ring is invariant under the symmetries of the box.

    Raises:
        ValueError: for sizes below 1, a ring count that leaves a ring empty, or a bad ``ring_basis``.

    Example:
        >>> basis = symmetric_ring_basis((4, 4))
        >>> basis.shape, basis[0].sum().item(), basis[1].sum().item()  # 4 centre cells, 8 around them
        (torch.Size([2, 4, 4]), 4.0, 8.0)
        >>> bool(torch.equal(basis, basis.flip(-1))) and bool(torch.equal(basis, basis.transpose(-1, -2)))
        True
    """
    size = tuple(check_int(k, "kernel_size", minimum=1) for k in kernel_size)
    if not 1 <= len(size) <= 3:
        raise ValueError(f"kernel_size must have 1 to 3 entries, got {kernel_size!r}")
    check_choice(ring_basis, "ring_basis", RING_BASES)
    if ring_basis == "hard" and sigma is not None:
        raise ValueError(f"gaussian_sigma only applies to ring_basis='gaussian', got {sigma!r} with 'hard'")
    dist = _centre_distances(size)
    radius = max(size) / 2
    inside = dist < radius - 1e-9
    has_corners = not force_circular and bool((~inside).any())
    default = (max(size) + 1) // 2 + (1 if has_corners else 0)
    rings = default if num_rings is None else check_int(num_rings, "sre_k", minimum=1)
    if ring_basis == "gaussian":
        support = np.ones_like(inside) if not force_circular else inside
        radii = np.linspace(0.0, (max(size) - 1) / 2, rings).reshape((-1,) + (1,) * len(size))
        if sigma is None:
            sigma = 0.5 * float(radii[1].item()) if rings > 1 else 1.0
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
            raise ValueError(f"gaussian_sigma must be a positive number of cells or None, got {sigma!r}")
        profiles = np.exp(-((dist[None] - radii) ** 2) / (2.0 * float(sigma) ** 2))
        profiles = profiles / profiles.sum(axis=0, keepdims=True) * support[None]
        return torch.from_numpy(profiles).to(dtype)
    disc_rings = rings - (1 if has_corners else 0)
    if disc_rings < 1:
        raise ValueError(f"sre_k must be at least 2 for a non-circular kernel of size {size}, got {rings}")
    edges = np.linspace(0.0, radius, disc_rings + 1)
    masks = [(dist >= edges[i] - 1e-9) & (dist < edges[i + 1] - 1e-9) & inside for i in range(disc_rings)]
    if has_corners:
        masks.append(~inside)
    empty = [i for i, m in enumerate(masks) if not m.any()]
    if empty:
        raise ValueError(f"sre_k={rings} leaves ring(s) {empty} of a kernel of size {size} empty; use at most "
                         f"{default}")
    return torch.from_numpy(np.stack(masks)).to(dtype)


def _output_size_transposed(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                            padding: Sequence[int], output_padding: Sequence[int],
                            dilation: Sequence[int]) -> list[int]:
    return [(h - 1) * s - 2 * p + d * (k - 1) + op + 1
            for h, k, s, p, op, d in zip(size, kernel, stride, padding, output_padding, dilation)]


def centered_conv_transpose(
    input: torch.Tensor,
    kernel: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    groups: int,
    dilation: Sequence[int],
    output_size: Sequence[int] | None = None,
) -> torch.Tensor:
    """Transposed convolution with torch's output size, realised symmetrically (see the module docstring).

    Args:
        input: ``(N, C_in, *spatial)``.
        kernel: dense kernel ``(C_in, C_out / groups, *kernel_size)``, symmetric for an equivariant result.
        bias: optional ``(C_out,)``.
        stride: stride per axis.
        padding: padding per axis (as in ``torch.nn.functional.conv_transpose2d``).
        output_padding: extra output samples per axis (realised symmetrically).
        groups: channel groups.
        dilation: dilation per axis.
        output_size: requested spatial output size (as ``ConvTranspose2d.forward``'s ``output_size``).

    Returns:
        ``(N, C_out, *spatial_out)`` with torch's ``spatial_out``.

    Example:
        >>> x, k = torch.randn(1, 2, 5, 5), torch.ones(2, 3, 3, 3)
        >>> y = centered_conv_transpose(x, k, None, (2, 2), (1, 1), (1, 1), 1, (1, 1))
        >>> y.shape, bool(torch.allclose(y.flip(-1), centered_conv_transpose(x.flip(-1), k, None, (2, 2), (1, 1),
        ...                                                                (1, 1), 1, (1, 1)), atol=1e-6))
        (torch.Size([1, 3, 10, 10]), True)
    """
    n = kernel.dim() - 2
    spatial = input.shape[-n:]
    plain = _output_size_transposed(spatial, kernel.shape[2:], stride, padding, [0] * n, dilation)
    if output_size is not None:
        target = [int(s) for s in list(output_size)[-n:]]
    else:
        target = [size + op for size, op in zip(plain, output_padding)]
    # Take ceil(extra / 2) off the padding on both sides: the result then covers the target, which the
    # symmetric fit reaches by cropping or by averaging adjacent pairs.
    inner = tuple(max(p - (t - size + 1) // 2, 0) for p, t, size in zip(padding, target, plain))
    out = _CONV_TRANSPOSE[n](input, kernel, bias, tuple(stride), inner, 0, groups, tuple(dilation))
    return fit_centered(out, target)


class _EvenSREConvNd(nn.Module):
    """Shared machinery: arguments, ring weights ``(A, B, R)``, basis buffer, dense kernel."""

    _spatial_dims: int
    _transposed: bool
    basis: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _IntOrTuple, stride: _IntOrTuple,
                 padding: str | _IntOrTuple, dilation: _IntOrTuple, groups: int, bias: bool, padding_mode: str,
                 output_padding: _IntOrTuple, device: torch.device | None, dtype: torch.dtype | None,
                 sre_k: int | None, ring_basis: str, force_circular: bool, gaussian_sigma: float | None) -> None:
        super().__init__()
        n = self._spatial_dims
        self.in_channels = check_int(in_channels, "in_channels", minimum=1)
        self.out_channels = check_int(out_channels, "out_channels", minimum=1)
        self.kernel_size = check_tuple(kernel_size, n, "kernel_size", minimum=1)
        self.stride = check_tuple(stride, n, "stride", minimum=1)
        if padding == "valid":
            padding = 0
        if isinstance(padding, str):
            raise ValueError(f"padding must be an int, a tuple of {n} ints or 'valid' ('same' pads an even kernel "
                             f"asymmetrically), got {padding!r}")
        self.padding = check_tuple(padding, n, "padding", minimum=0)
        self.dilation = check_tuple(dilation, n, "dilation", minimum=1)
        self.groups = check_groups(groups, self.in_channels, self.out_channels)
        self.padding_mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)
        self.output_padding = check_tuple(output_padding, n, "output_padding", minimum=0)
        if self._transposed:
            if self.padding_mode != "zeros":
                raise ValueError(f"padding_mode must be 'zeros' for transposed layers, got {padding_mode!r}")
            for op, s, d in zip(self.output_padding, self.stride, self.dilation):
                if op >= max(s, d):
                    raise ValueError(f"output_padding must be smaller than stride or dilation, got output_padding="
                                     f"{self.output_padding}, stride={self.stride}, dilation={self.dilation}")
        elif any(self.output_padding):
            raise ValueError(f"output_padding is only for transposed layers, got {self.output_padding}")
        if not isinstance(force_circular, bool):
            raise TypeError(f"force_circular must be a bool, got {force_circular!r}")
        self.ring_basis = ring_basis
        self.force_circular = force_circular
        self.gaussian_sigma = gaussian_sigma
        basis = symmetric_ring_basis(self.kernel_size, sre_k, force_circular, ring_basis, gaussian_sigma,
                                     dtype=torch.float64)
        self.sre_k = basis.shape[0]
        self.register_buffer("basis", basis.to(device=device, dtype=dtype or torch.get_default_dtype()),
                             persistent=False)
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups, self.sre_k)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, self.sre_k)
        self.weight = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(self.out_channels, device=device, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform init with torch's conv bound ``1/sqrt(fan_in)`` over the kernel's support."""
        bound = 1.0 / math.sqrt(self.weight.shape[1] * float(self.basis.double().pow(2).sum()))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def kernel(self) -> torch.Tensor:
        """The dense kernel ``(C_out, C_in/groups, *kernel_size)`` (transposed: ``(C_in, C_out/groups, ...)``)."""
        return expand_kernel(self.weight, self.basis)

    def _check_input(self, input: torch.Tensor) -> None:
        n = self._spatial_dims
        if input.dim() != n + 2 or input.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects input (N, {self.in_channels}, {n} sizes), got shape "
                             f"{tuple(input.shape)}")

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")
        if any(self.output_padding):
            text += f", output_padding={self.output_padding}"
        if any(d != 1 for d in self.dilation):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text + f", sre_k={self.sre_k}, ring_basis={self.ring_basis!r}"


class _EvenSREConv(_EvenSREConvNd):
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _IntOrTuple, stride: _IntOrTuple = 1,
                 padding: str | _IntOrTuple = 0, dilation: _IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: torch.device | None = None, dtype: torch.dtype | None = None,
                 *, sre_k: int | None = None, ring_basis: str = "hard", force_circular: bool = True,
                 gaussian_sigma: float | None = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, 0, device, dtype, sre_k, ring_basis, force_circular, gaussian_sigma)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Args: input ``(N, C_in, *spatial)``. Returns ``(N, C_out, *spatial_out)`` as ``nn.ConvNd``."""
        self._check_input(input)
        conv = _CONV[self._spatial_dims]
        if self.padding_mode != "zeros":
            pads = tuple(p for p in reversed(self.padding) for _ in range(2))
            return conv(F.pad(input, pads, mode=self.padding_mode), self.kernel(), self.bias, self.stride, 0,
                        self.dilation, self.groups)
        return conv(input, self.kernel(), self.bias, self.stride, self.padding, self.dilation, self.groups)


class _EvenSREConvTranspose(_EvenSREConvNd):
    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _IntOrTuple, stride: _IntOrTuple = 1,
                 padding: _IntOrTuple = 0, output_padding: _IntOrTuple = 0, groups: int = 1, bias: bool = True,
                 dilation: _IntOrTuple = 1, padding_mode: str = "zeros", device: torch.device | None = None,
                 dtype: torch.dtype | None = None, *, sre_k: int | None = None, ring_basis: str = "hard",
                 force_circular: bool = True, gaussian_sigma: float | None = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device, dtype, sre_k, ring_basis, force_circular,
                         gaussian_sigma)

    def forward(self, input: torch.Tensor, output_size: Sequence[int] | None = None) -> torch.Tensor:
        """Args: input ``(N, C_in, *spatial)``; ``output_size`` as in torch. Returns torch's output size."""
        self._check_input(input)
        return centered_conv_transpose(input, self.kernel(), self.bias, self.stride, self.padding,
                                       self.output_padding, self.groups, self.dilation, output_size)


_EVEN_NOTE = """
    Takes ``torch.nn.{base}``'s arguments (``padding`` an int, a tuple or ``'valid'``: ``'same'`` would pad an
    even kernel asymmetrically) plus ``sre_k``, ``ring_basis``, ``force_circular`` and ``gaussian_sigma`` (see
    :func:`symmetric_ring_basis`). The kernel is invariant under every symmetry of its box.
"""


class EvenSREConv1d(_EvenSREConv):
    """1D SRE convolution for even kernels: weights depend on the distance to the kernel's centre point.

    ``weight`` has shape ``(C_out, C_in/groups, R)``. With stride 1 the layer commutes exactly with the flip (its
    output grid is offset by half a cell, symmetrically); strides follow torch (see the module docstring).

    Example:
        >>> EvenSREConv1d(3, 8, 2, stride=2)(torch.randn(1, 3, 8)).shape
        torch.Size([1, 8, 4])
    """

    __doc__ = (__doc__ or "") + _EVEN_NOTE.format(base="Conv1d")
    _spatial_dims = 1


class EvenSREConv2d(_EvenSREConv):
    """2D SRE convolution for even kernels (patchify stems, 2x2 downsamplers): rings about the centre point.

    ``weight`` has shape ``(C_out, C_in/groups, R)``. With stride 1 the layer commutes exactly with D4; strides
    follow torch, which is exact when ``(H + 2p - k) % s == 0`` (a 4x4 stem with stride 4 on sizes divisible by
    4); :func:`sreconv.models.convert_to_sre` centres them for every size.

    Example:
        >>> EvenSREConv2d(3, 8, 4, stride=4)(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 8, 8, 8])
    """

    __doc__ = (__doc__ or "") + _EVEN_NOTE.format(base="Conv2d")
    _spatial_dims = 2


class EvenSREConv3d(_EvenSREConv):
    """3D SRE convolution for even kernels: commutes with the 48 cube symmetries at stride 1.

    ``weight`` has shape ``(C_out, C_in/groups, R)``; strides follow torch (see :class:`EvenSREConv2d`).

    Example:
        >>> EvenSREConv3d(3, 8, 2, stride=2)(torch.randn(1, 3, 8, 8, 8)).shape
        torch.Size([1, 8, 4, 4, 4])
    """

    __doc__ = (__doc__ or "") + _EVEN_NOTE.format(base="Conv3d")
    _spatial_dims = 3


class EvenSREConvTranspose1d(_EvenSREConvTranspose):
    """Transposed 1D SRE convolution for even kernels, exact for every stride and ``output_padding``.

    ``weight`` has shape ``(C_in, C_out/groups, R)``; output sizes are torch's, centre-aligned
    (:func:`centered_conv_transpose`).

    Example:
        >>> EvenSREConvTranspose1d(3, 8, 2, stride=2)(torch.randn(1, 3, 4)).shape
        torch.Size([1, 8, 8])
    """

    __doc__ = (__doc__ or "") + _EVEN_NOTE.format(base="ConvTranspose1d")
    _spatial_dims = 1


class EvenSREConvTranspose2d(_EvenSREConvTranspose):
    """Transposed 2D SRE convolution for even kernels (U-Net 2x2 up-convolutions), exact for every stride.

    ``weight`` has shape ``(C_in, C_out/groups, R)``; output sizes are torch's, centre-aligned
    (:func:`centered_conv_transpose`). A 2x2 kernel has a single ring: nearest-neighbour up-sampling followed by
    a channel mixing.

    Example:
        >>> EvenSREConvTranspose2d(3, 8, 2, stride=2)(torch.randn(1, 3, 4, 4)).shape
        torch.Size([1, 8, 8, 8])
    """

    __doc__ = (__doc__ or "") + _EVEN_NOTE.format(base="ConvTranspose2d")
    _spatial_dims = 2


class EvenSREConvTranspose3d(_EvenSREConvTranspose):
    """Transposed 3D SRE convolution for even kernels, exact for every stride and ``output_padding``.

    ``weight`` has shape ``(C_in, C_out/groups, R)``; output sizes are torch's, centre-aligned.

    Example:
        >>> EvenSREConvTranspose3d(3, 8, 2, stride=2)(torch.randn(1, 3, 4, 4, 4)).shape
        torch.Size([1, 8, 8, 8, 8])
    """

    __doc__ = (__doc__ or "") + _EVEN_NOTE.format(base="ConvTranspose3d")
    _spatial_dims = 3


class CenteredConvTranspose(nn.Module):
    """A plain ``nn.ConvTranspose{1,2,3}d`` run centre-aligned: what :class:`CenteredSREConvTranspose2d` exports to.

    Args:
        conv: the transposed convolution (its padding and ``output_padding`` are realised symmetrically).

    Example:
        >>> up = CenteredConvTranspose(nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1))
        >>> up(torch.randn(1, 4, 5, 5)).shape
        torch.Size([1, 2, 10, 10])
    """

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        if not isinstance(conv, nn.modules.conv._ConvTransposeNd):
            raise TypeError(f"conv must be an nn.ConvTranspose1d/2d/3d, got {type(conv).__name__}")
        self.conv = conv

    def forward(self, input: torch.Tensor, output_size: Sequence[int] | None = None) -> torch.Tensor:
        """Args: input ``(N, C_in, *spatial)``; ``output_size`` as in torch. Returns torch's output size."""
        c: Any = self.conv
        return centered_conv_transpose(input, c.weight, c.bias, c.stride, c.padding, c.output_padding, c.groups,
                                       c.dilation, output_size)


class _CenteredTranspose:
    """Mixin over ``SREConvTranspose{n}d``: torch's output size (``output_padding`` included), centre-aligned."""

    def to_conv(self) -> nn.Module:
        """Plain torch layers with the same outputs (used by :func:`sreconv.export_to_conv`).

        Returns:
            :class:`CenteredConvTranspose` around the dense ``nn.ConvTranspose{n}d``.
        """
        return CenteredConvTranspose(super().to_conv())  # type: ignore[misc]

    def forward(self, input: torch.Tensor, output_size: Sequence[int] | None = None) -> torch.Tensor:
        self._check_input(input)  # type: ignore[attr-defined]
        return centered_conv_transpose(input, self.kernel(), self.bias, self.stride,  # type: ignore[attr-defined]
                                       self.padding, self.output_padding, self.groups,  # type: ignore[attr-defined]
                                       self.dilation, output_size)  # type: ignore[attr-defined]


_CENTERED_NOTE = """
    Same arguments, parameters and state_dict as :class:`~sreconv.nn.SREConvTranspose{n}d` and torch's output
    size, but ``output_padding`` (and ``forward``'s ``output_size``) no longer adds samples on one side only.
"""


class CenteredSREConvTranspose1d(_CenteredTranspose, SREConvTranspose1d):
    """Transposed 1D SRE convolution with centre-aligned output padding: exact for every stride.

    Example:
        >>> up = CenteredSREConvTranspose1d(4, 2, 3, stride=2, padding=1, output_padding=1)
        >>> up(torch.randn(1, 4, 5)).shape
        torch.Size([1, 2, 10])
    """

    __doc__ = (__doc__ or "") + _CENTERED_NOTE.format(n=1)


class CenteredSREConvTranspose2d(_CenteredTranspose, SREConvTranspose2d):
    """Transposed 2D SRE convolution with centre-aligned output padding: exact for every stride.

    The exact replacement of MONAI's U-Net up-sampling ``ConvTranspose2d(k=3, stride=2, padding=1,
    output_padding=1)`` (see the module docstring).

    Example:
        >>> up = CenteredSREConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
        >>> x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
        >>> up = up.double()
        >>> up(x).shape, bool(torch.allclose(up(x.rot90(1, (2, 3))), up(x).rot90(1, (2, 3)), atol=1e-12))
        (torch.Size([1, 2, 10, 10]), True)
    """

    __doc__ = (__doc__ or "") + _CENTERED_NOTE.format(n=2)


class CenteredSREConvTranspose3d(_CenteredTranspose, SREConvTranspose3d):
    """Transposed 3D SRE convolution with centre-aligned output padding: exact for every stride.

    Example:
        >>> up = CenteredSREConvTranspose3d(4, 2, 3, stride=2, padding=1, output_padding=1)
        >>> up(torch.randn(1, 4, 3, 3, 3)).shape
        torch.Size([1, 2, 6, 6, 6])
    """

    __doc__ = (__doc__ or "") + _CENTERED_NOTE.format(n=3)
