"""Downsampling that commutes exactly with the symmetries of the grid (flips, rot90, transposes, cube symmetries).

Why strided operations usually break equivariance
--------------------------------------------------
A pooling (or strided convolution) with window ``k``, stride ``s`` and symmetric padding ``p`` on an axis of
``H`` samples reads the windows ``[-p + j s, -p + j s + k - 1]`` for ``j = 0 .. n-1``. Flipping the axis maps
sample ``i`` to ``H - 1 - i``; the pooled result is flipped too exactly when the set of windows is mapped
onto itself, i.e. when the first window and the last one are mirror images::

    -p  ==  (H - 1) - (-p + (n-1) s + k - 1)      <=>      (n-1) s  ==  H + 2p - k.            (*)

With torch's ``n = floor((H + 2p - k) / s) + 1`` this holds only when ``(H + 2p - k) % s == 0``: a 2x2
average pool is exact on even sizes (32 -> 16 -> 8 -> 4) but drops the last row on odd sizes
(7 -> 3 reads rows 0..5), and ``MaxPool(3, 2, 1)`` is *never* exact on even sizes.

The centre-aligned rule
-----------------------
Keep the number of outputs ``n`` you want and choose the window and the padding per axis so that (*)
holds. Write ``d = (n-1) s - H``. (*) reads ``2p = d + k``, so ``k`` must have the parity of ``d``:

* ``k`` = the nominal window, or the nominal window + 1 when the parity is wrong;
* ``p = (d + k) / 2``; when ``p < 0`` the axis is *cropped* by ``-p`` on both sides instead of padded.

Padding (zeros, ``-inf`` for max, or excluded from the average) and cropping are both symmetric, and the
window grid is mirror-symmetric by (*), so the operation commutes with the flip of that axis. The rule
depends on an axis only through its size, so axes of equal size are treated identically and the operation
also commutes with every permutation of axes (rot90 = transpose + flip; the 48 cube symmetries are signed
permutations). Hence it commutes exactly with the whole grid group on square/cubic inputs, for every
size. Examples (stride 2): ``H = 32 -> 2x2 windows, no padding (identical to AvgPool2d(2))``;
``H = 7 -> n = 4 (ceil), 3-wide windows, padding 1``; ``MaxPool(3, 2, 1)`` on ``H = 112 -> 4-wide windows,
padding 1``.

``ceil_mode`` poolings keep torch's ``ceil_mode=True`` output count (``output='torch_ceil'``): the extra window
that torch lets run off the end becomes a centred one, padded on both sides. TF-style ``'same'`` poolings and
strided convolutions produce ``ceil(H / s)`` outputs (``output='ceil'``).

Exactness in eval mode is in float arithmetic too: the mirrored windows sum the mirrored values in the
mirrored order, which for sums of at most a few terms gives results equal up to rounding (float64 errors
~1e-16).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}

__all__ = [
    "centered_pool_geometry",
    "SymmetricPool",
    "SymmetricAvgPool1d",
    "SymmetricAvgPool2d",
    "SymmetricAvgPool3d",
    "SymmetricMaxPool1d",
    "SymmetricMaxPool2d",
    "SymmetricMaxPool3d",
    "CenteredSubsample",
    "OUTPUT_COUNTS",
    "fit_centered",
    "pool_output_count",
]

#: Output-count rules of :func:`pool_output_count`.
OUTPUT_COUNTS = ("floor", "ceil", "torch_ceil")


def pool_output_count(size: int, kernel: int, stride: int, padding: int = 0, output: str = "floor") -> int:
    """Number of windows on an axis of ``size`` samples under one of the :data:`OUTPUT_COUNTS` rules.

    Args:
        size: input length ``H``.
        kernel: window ``k``.
        stride: stride ``s``.
        padding: padding ``p`` on each side.
        output: ``'floor'`` (torch's default: ``floor((H + 2p - k) / s) + 1``), ``'torch_ceil'`` (torch's
            ``ceil_mode=True``: ``ceil((H + 2p - k) / s) + 1``, minus the last window if it would start in the
            right padding) or ``'ceil'`` (``ceil(H / s)``, TensorFlow's ``'same'``).

    Returns:
        The count, at least 1.

    Example:
        >>> [pool_output_count(64, 3, 2, 0, rule) for rule in OUTPUT_COUNTS]
        [31, 32, 32]
    """
    if output == "ceil":
        n = -(-size // stride)
    elif output == "floor":
        n = (size + 2 * padding - kernel) // stride + 1
    elif output == "torch_ceil":
        n = -(-(size + 2 * padding - kernel) // stride) + 1
        if (n - 1) * stride >= size + padding:
            n -= 1
    else:
        raise ValueError(f"output must be one of 'floor', 'ceil', 'torch_ceil', got {output}")
    return max(n, 1)


def fit_centered(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Crops, pads (zeros) or averages neighbours of the last ``len(size)`` axes, symmetrically, to ``size``.

    An axis of ``L`` samples becomes ``n``: an even difference is cropped (or zero-padded) evenly on both
    sides; an odd one is first brought to ``n + 1`` that way, then adjacent pairs are averaged. Every step is
    symmetric about the axis centre, so the result commutes with the grid symmetries that keep ``size``.

    Args:
        x: tensor ``(..., L_1, ..., L_d)``.
        size: target lengths ``(n_1, ..., n_d)``, each ``>= 1``.

    Returns:
        Tensor ``(..., n_1, ..., n_d)``.

    Example:
        >>> fit_centered(torch.arange(5.0).reshape(1, 1, 5), [4]).flatten().tolist()
        [0.5, 1.5, 2.5, 3.5]
        >>> fit_centered(torch.arange(5.0).reshape(1, 1, 5), [3]).flatten().tolist()
        [1.0, 2.0, 3.0]
    """
    d = len(size)
    if d not in _AVG or x.dim() < d + 1:
        raise ValueError(f"fit_centered needs 1 to 3 target sizes and a tensor with more dims, got size={size} "
                         f"for shape {tuple(x.shape)}")
    current = x.shape[-d:]
    if tuple(current) == tuple(size):
        return x
    pads: list[int] = []
    window = []
    for length, n in zip(current, size):
        diff = n - length  # > 0: grow, < 0: shrink
        average = diff % 2 == 1
        side = (diff + 1) // 2 if average else diff // 2
        pads = [side, side] + pads  # F.pad wants the last dimension first; negative values crop
        window.append(2 if average else 1)
    out = F.pad(x, pads)
    if any(w > 1 for w in window):
        lead = out.shape[:-d]
        flat = out.reshape(-1, 1, *out.shape[-d:])
        out = _AVG[d](flat, tuple(window), 1).reshape(*lead, *size)
    return out


def centered_pool_geometry(
    size: int, kernel: int, stride: int, padding: int = 0, output: str = "floor"
) -> tuple[int, int, int]:
    """Window, padding (negative = crop) and output count of a centre-aligned pooling on one axis.

    Args:
        size: input length ``H`` of the axis.
        kernel: nominal window ``k0``.
        stride: stride ``s``.
        padding: nominal padding ``p0`` (only used to compute the nominal output count).
        output: ``'floor'`` keeps torch's count ``floor((H + 2 p0 - k0) / s) + 1``; ``'ceil'`` gives
            ``ceil(H / s)`` (28 -> 14 -> 7 -> 4); ``'torch_ceil'`` torch's ``ceil_mode=True`` count (see
            :func:`pool_output_count`).

    Returns:
        ``(k, p, n)`` with ``(n-1) s == H + 2p - k`` (the window grid is mirror-symmetric), ``k`` in
        ``{k0, k0+1}`` and ``n >= 1``.

    Example:
        >>> centered_pool_geometry(7, 2, 2, output="ceil")
        (3, 1, 4)
        >>> centered_pool_geometry(32, 2, 2)
        (2, 0, 16)
        >>> centered_pool_geometry(112, 3, 2, 1)
        (4, 1, 56)
        >>> centered_pool_geometry(64, 3, 2, output="torch_ceil")  # squeezenet's MaxPool2d(3, 2, ceil_mode=True)
        (4, 1, 32)
    """
    n = pool_output_count(size, kernel, stride, padding, output)
    d = (n - 1) * stride - size
    k = kernel if (kernel - d) % 2 == 0 else kernel + 1
    p = (d + k) // 2
    if p > k // 2:  # d > 0: only when the nominal padding exceeds half the window, which torch forbids too
        raise ValueError(f"padding {padding} must be at most half the window {kernel}")
    return k, p, n


def _as_tuple(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or {n} ints, got {value}")
    return value


class SymmetricPool(nn.Module):
    """Average or max pooling with centre-aligned windows: exactly equivariant to the grid group.

    See the module docstring for the proof. The window/padding are chosen per axis at every call from the
    input size, so any input size works (odd sizes included).

    Args:
        ndim: number of spatial dimensions (1, 2 or 3).
        kernel_size: nominal window (int or tuple; use equal values for rotation equivariance).
        stride: stride (default ``kernel_size``).
        padding: nominal padding (only sets the output count in ``'floor'`` mode).
        mode: ``'avg'`` or ``'max'``.
        output: ``'ceil'`` (``ceil(H / s)`` outputs), ``'floor'`` (torch's count) or ``'torch_ceil'`` (torch's
            count with ``ceil_mode=True``).
        count_include_pad: for ``'avg'``: whether padded zeros count in the average (default ``False``).

    Shapes: input ``(N, C, *spatial)`` or ``(C, *spatial)``; output ``(N, C, *n)``.

    Example:
        >>> pool = SymmetricAvgPool2d(2)
        >>> x = torch.randn(1, 3, 7, 7)
        >>> pool(x).shape
        torch.Size([1, 3, 4, 4])
        >>> bool(torch.allclose(pool(torch.rot90(x, 1, (2, 3))), torch.rot90(pool(x), 1, (2, 3))))
        True
    """

    def __init__(
        self,
        ndim: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        mode: str = "avg",
        output: str = "ceil",
        count_include_pad: bool = False,
    ) -> None:
        super().__init__()
        if ndim not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
        if mode not in ("avg", "max"):
            raise ValueError(f"mode must be 'avg' or 'max', got {mode!r}")
        if output not in OUTPUT_COUNTS:
            raise ValueError(f"output must be one of {', '.join(map(repr, OUTPUT_COUNTS))}, got {output!r}")
        self.ndim = ndim
        self.kernel_size = _as_tuple(kernel_size, ndim, "kernel_size")
        self.stride = _as_tuple(self.kernel_size if stride is None else stride, ndim, "stride")
        self.padding = _as_tuple(padding, ndim, "padding")
        if any(k < 1 for k in self.kernel_size) or any(s < 1 for s in self.stride):
            raise ValueError(f"kernel_size and stride must be >= 1, got {self.kernel_size}, {self.stride}")
        self.mode = mode
        self.output = output
        self.count_include_pad = count_include_pad

    def geometry(self, spatial: Sequence[int]) -> list[tuple[int, int, int]]:
        """``(k, p, n)`` per axis for an input of spatial size ``spatial`` (see :func:`centered_pool_geometry`)."""
        return [
            centered_pool_geometry(h, k, s, p, self.output)
            for h, k, s, p in zip(spatial, self.kernel_size, self.stride, self.padding)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``(N, C, *spatial)`` or ``(C, *spatial)``. Returns the pooled tensor ``(..., *n)``."""
        # Written in TorchScript's subset (explicit loops, typed lists, one pooling call per dimensionality)
        # so that exported models script.
        n = self.ndim
        if x.dim() != n + 1 and x.dim() != n + 2:
            raise ValueError(f"SymmetricPool expects {n + 2}D (or unbatched {n + 1}D) input, got {x.dim()}D")
        first = x.dim() - n
        kernel: list[int] = []
        pad: list[int] = []
        identity = True
        for i in range(n):
            k, p, _ = centered_pool_geometry(x.shape[first + i], self.kernel_size[i], self.stride[i],
                                             self.padding[i], self.output)
            if p < 0:  # crop symmetrically instead of a negative padding
                x = x.narrow(first + i, -p, x.shape[first + i] + 2 * p)
                p = 0
            kernel.append(k)
            pad.append(p)
            identity = identity and k == 1 and self.stride[i] == 1
        if identity:
            return x
        stride = list(self.stride)
        if self.mode == "max":
            if n == 1:
                return F.max_pool1d(x, kernel, stride, pad)
            if n == 2:
                return F.max_pool2d(x, kernel, stride, pad)
            return F.max_pool3d(x, kernel, stride, pad)
        if n == 1:
            return F.avg_pool1d(x, kernel, stride, pad, count_include_pad=self.count_include_pad)
        if n == 2:
            return F.avg_pool2d(x, kernel, stride, pad, count_include_pad=self.count_include_pad)
        return F.avg_pool3d(x, kernel, stride, pad, count_include_pad=self.count_include_pad)

    def extra_repr(self) -> str:
        """Nominal geometry, mode and output rule."""
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"mode={self.mode!r}, output={self.output!r}")


class SymmetricAvgPool1d(SymmetricPool):
    """Centre-aligned 1D average pooling (see :class:`SymmetricPool`)."""

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, output: str = "ceil", count_include_pad: bool = False) -> None:
        super().__init__(1, kernel_size, stride, padding, "avg", output, count_include_pad)


class SymmetricAvgPool2d(SymmetricPool):
    """Centre-aligned 2D average pooling; ``SymmetricAvgPool2d(2)`` equals ``AvgPool2d(2)`` on even sizes.

    Example:
        >>> x = torch.randn(1, 1, 32, 32)
        >>> bool(torch.equal(SymmetricAvgPool2d(2)(x), nn.AvgPool2d(2)(x)))
        True
    """

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, output: str = "ceil", count_include_pad: bool = False) -> None:
        super().__init__(2, kernel_size, stride, padding, "avg", output, count_include_pad)


class SymmetricAvgPool3d(SymmetricPool):
    """Centre-aligned 3D average pooling (see :class:`SymmetricPool`)."""

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, output: str = "ceil", count_include_pad: bool = False) -> None:
        super().__init__(3, kernel_size, stride, padding, "avg", output, count_include_pad)


class SymmetricMaxPool1d(SymmetricPool):
    """Centre-aligned 1D max pooling (see :class:`SymmetricPool`)."""

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, output: str = "floor") -> None:
        super().__init__(1, kernel_size, stride, padding, "max", output)


class SymmetricMaxPool2d(SymmetricPool):
    """Centre-aligned 2D max pooling: the exact replacement of the ResNet stem's ``MaxPool2d(3, 2, 1)``.

    Example:
        >>> SymmetricMaxPool2d(3, 2, 1)(torch.randn(1, 1, 112, 112)).shape
        torch.Size([1, 1, 56, 56])
    """

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, output: str = "floor") -> None:
        super().__init__(2, kernel_size, stride, padding, "max", output)


class SymmetricMaxPool3d(SymmetricPool):
    """Centre-aligned 3D max pooling (see :class:`SymmetricPool`)."""

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, output: str = "floor") -> None:
        super().__init__(3, kernel_size, stride, padding, "max", output)


class CenteredSubsample(SymmetricPool):
    """Keeps every ``stride``-th sample of a centre-aligned grid (torch's strided output count).

    The exact replacement for the stride of a convolution: ``conv(stride=s)`` becomes ``conv(stride=1)``
    followed by this module, with the same output size. When no centred grid of single samples exists
    (e.g. an even length and stride 2), each output averages the two (or more) samples nearest to its
    centre-aligned position, which keeps the result exact.

    Example:
        >>> CenteredSubsample(2, 2)(torch.arange(7.0).reshape(1, 1, 7)).flatten().tolist()
        [0.0, 2.0, 4.0, 6.0]
        >>> CenteredSubsample(1, 2)(torch.arange(8.0).reshape(1, 1, 8)).flatten().tolist()
        [0.5, 2.5, 4.5, 6.5]
    """

    def __init__(self, ndim: int, stride: int | Sequence[int]) -> None:
        super().__init__(ndim, 1, stride, 0, "avg", "floor", count_include_pad=False)

