"""Functional SRE convolutions: a ring-weight tensor and a ring basis in, a convolution out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import torch
import torch.nn.functional as F

_IntOrTuple: TypeAlias = int | Sequence[int]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def expand_kernel(weight: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Dense kernel from ring weights.

    Args:
        weight: ring weights of shape ``(A, B, R)``.
        basis: ring basis of shape ``(R, *kernel_size)``.

    Returns:
        Kernel of shape ``(A, B, *kernel_size)``: ``kernel[a, b] = sum_r weight[a, b, r] * basis[r]``.

    Example:
        >>> from sreconv.nn import hard_ring_basis
        >>> expand_kernel(torch.ones(4, 2, 2), hard_ring_basis(3)).shape
        torch.Size([4, 2, 3, 3])
    """
    if weight.shape[-1] != basis.shape[0]:
        raise ValueError(
            f"weight has {weight.shape[-1]} ring weights per kernel but basis has {basis.shape[0]} rings"
        )
    flat = torch.matmul(weight, basis.reshape(basis.shape[0], -1))
    return flat.reshape(weight.shape[:2] + basis.shape[1:])


def _spatial_dims(basis: torch.Tensor) -> int:
    dims = basis.dim() - 1
    if dims not in _CONV:
        raise ValueError(f"basis must have shape (R, *kernel_size) with 1 to 3 kernel dims, got {tuple(basis.shape)}")
    return dims


def sre_conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    basis: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: _IntOrTuple = 1,
    padding: str | _IntOrTuple = 0,
    dilation: _IntOrTuple = 1,
    groups: int = 1,
) -> torch.Tensor:
    """Symmetric rotation-equivariant convolution (Du et al., ISBI 2025, arXiv:2501.09753).

    The same as ``F.conv{n}d(input, expand_kernel(weight, basis), ...)`` with ``n = basis.dim() - 1``.

    Args:
        input: ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``.
        weight: ``(C_out, C_in / groups, R)`` ring weights.
        basis: ``(R, *kernel_size)`` ring basis.
        bias: optional ``(C_out,)``.
        stride: as in ``torch.nn.functional.conv2d``.
        padding: as in ``torch.nn.functional.conv2d`` (ints, tuples, ``'same'`` or ``'valid'``).
        dilation: as in ``torch.nn.functional.conv2d``.
        groups: as in ``torch.nn.functional.conv2d``.

    Returns:
        ``(N, C_out, *spatial_out)``.

    Example:
        >>> from sreconv.nn import hard_ring_basis
        >>> x = torch.randn(1, 3, 8, 8)
        >>> w, basis = torch.randn(5, 3, 2), hard_ring_basis(3)
        >>> y = sre_conv(x, w, basis, padding=1)
        >>> y_rot = sre_conv(x.rot90(1, (2, 3)), w, basis, padding=1)
        >>> bool(torch.allclose(y.rot90(1, (2, 3)), y_rot, atol=1e-5))
        True
    """
    conv = _CONV[_spatial_dims(basis)]
    return conv(input, expand_kernel(weight, basis), bias, stride, padding, dilation, groups)


def sre_conv_transpose(
    input: torch.Tensor,
    weight: torch.Tensor,
    basis: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: _IntOrTuple = 1,
    padding: _IntOrTuple = 0,
    output_padding: _IntOrTuple = 0,
    groups: int = 1,
    dilation: _IntOrTuple = 1,
) -> torch.Tensor:
    """Transposed SRE convolution: ``F.conv_transpose{n}d`` with the kernel expanded from rings.

    Args:
        input: ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``.
        weight: ``(C_in, C_out / groups, R)`` ring weights (torch's transposed layout).
        basis: ``(R, *kernel_size)`` ring basis.
        bias: optional ``(C_out,)``.
        stride: as in ``torch.nn.functional.conv_transpose2d``.
        padding: as in ``torch.nn.functional.conv_transpose2d``.
        output_padding: as in ``torch.nn.functional.conv_transpose2d``.
        groups: as in ``torch.nn.functional.conv_transpose2d``.
        dilation: as in ``torch.nn.functional.conv_transpose2d``.

    Returns:
        ``(N, C_out, *spatial_out)``.

    Example:
        >>> from sreconv.nn import hard_ring_basis
        >>> sre_conv_transpose(torch.randn(1, 4, 5, 5), torch.randn(4, 2, 2), hard_ring_basis(3), stride=2).shape
        torch.Size([1, 2, 11, 11])
    """
    conv = _CONV_TRANSPOSE[_spatial_dims(basis)]
    return conv(input, expand_kernel(weight, basis), bias, stride, padding, output_padding, groups, dilation)
