"""Residual blocks of the SRE-ResNets (2D and 3D), with the official package's module names.

Du et al., "SRE-Conv: Symmetric Rotation Equivariant Convolution for Biomedical Image Classification",
ISBI 2025, arXiv:2501.09753.

Every block is exactly equivariant to the grid group (D4 in 2D, the 48 cube symmetries in 3D) on inputs
of any size: its kernels are radially symmetric with stride 1 and ``k//2`` padding, 1x1 convolutions and
batch norm are pointwise in space (in train mode the batch statistics are averages over all positions, so
they are invariant too), and the stride is done by a centre-aligned pooling
(:mod:`sreconv.nn.pooling`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from ..nn import SREConv2d, SREConv3d
from ..nn.pooling import SymmetricAvgPool2d, SymmetricAvgPool3d

DOWNSAMPLE_MODES = ("exact", "official")

__all__ = [
    "DOWNSAMPLE_MODES",
    "SREBasicBlock",
    "SREBottleneck",
    "SREBasicBlock3d",
    "BasicBlock",
    "BasicBlock3d",
    "make_pool",
    "sre_conv",
]


def make_pool(stride: int, ndim: int, downsample: str = "exact") -> nn.Module:
    """The pooling that does a block's stride.

    Args:
        stride: pooling window and stride.
        ndim: 2 or 3.
        downsample: ``'exact'`` (centre-aligned, :class:`SymmetricAvgPool2d`: identical to ``AvgPool(s)``
            when the size is divisible by ``s``, ceil-sized and still exact otherwise) or ``'official'``
            (``nn.AvgPoolNd(s, s)`` as in the official package: drops the last row/column of odd sizes and
            then breaks the equivariance).
    """
    if downsample not in DOWNSAMPLE_MODES:
        raise ValueError(f"downsample must be one of {DOWNSAMPLE_MODES}, got {downsample!r}")
    if downsample == "official":
        return (nn.AvgPool2d if ndim == 2 else nn.AvgPool3d)(kernel_size=stride, stride=stride)
    return (SymmetricAvgPool2d if ndim == 2 else SymmetricAvgPool3d)(stride, stride, output="ceil")


def sre_conv(ndim: int, in_planes: int, out_planes: int, k: int | tuple[int, ...], groups: int = 1,
             dilation: int = 1, sre_k: int | None = None, ring_basis: str = "hard",
             bias: bool = False) -> nn.Module:
    """A stride-1 SRE convolution with 'same' padding ``dilation * (k // 2)`` (exactly equivariant)."""
    cls = SREConv2d if ndim == 2 else SREConv3d
    if isinstance(k, int):
        padding: Any = dilation * (k // 2)
    else:
        padding = tuple(dilation * (kk // 2) for kk in k)
    return cls(in_planes, out_planes, kernel_size=k, stride=1, padding=padding, dilation=dilation,
               groups=groups, bias=bias, sre_k=sre_k, ring_basis=ring_basis)


def _conv1x1(ndim: int, in_planes: int, out_planes: int, stride: int = 1) -> nn.Module:
    cls = nn.Conv2d if ndim == 2 else nn.Conv3d
    return cls(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class SREBasicBlock(nn.Module):
    """2D basic residual block: two SRE convolutions (official layout: ``conv1[.1]``, ``bn1``, ``conv2``, ``bn2``).

    With ``stride > 1``, ``conv1`` is ``Sequential(pool, SREConv2d)`` so that the state_dict keys match the
    official package (``conv1.1.weight``).

    Args:
        inplanes: input channels.
        planes: output channels.
        stride: downsampling factor (done by a pooling before ``conv1``).
        downsample: module applied to the input of the shortcut (or ``None`` for the identity).
        groups, base_width: must be 1 and 64 (as torchvision's BasicBlock).
        dilation: dilation of the SRE convolutions.
        norm_layer: normalisation factory (default ``nn.BatchNorm2d``).
        sre_conv_size: kernel size of the SRE convolutions.
        sre_groups: groups of the SRE convolutions (``planes`` for depthwise).
        sre_k: number of rings (default ``k//2 + 1``).
        ring_basis: ``'hard'`` or ``'gaussian'``.
        pool: ``'exact'`` or ``'official'`` (see :func:`make_pool`).

    Shapes: ``(N, inplanes, H, W) -> (N, planes, ceil(H/stride), ceil(W/stride))``.

    Example:
        >>> block = SREBasicBlock(8, 8, sre_conv_size=5)
        >>> block(torch.randn(2, 8, 9, 9)).shape
        torch.Size([2, 8, 9, 9])
    """

    expansion: int = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: Callable[..., nn.Module] | None = None,
        sre_conv_size: int = 3,
        sre_groups: int = 1,
        sre_k: int | None = None,
        ring_basis: str = "hard",
        pool: str = "exact",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError("SREBasicBlock only supports groups=1 and base_width=64")
        self.stride = stride
        conv1 = sre_conv(2, inplanes, planes, sre_conv_size, sre_groups, dilation, sre_k, ring_basis)
        self.conv1 = nn.Sequential(make_pool(stride, 2, pool), conv1) if stride != 1 else conv1
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = sre_conv(2, planes, planes, sre_conv_size, sre_groups, dilation, sre_k, ring_basis)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class SREBottleneck(nn.Module):
    """2D bottleneck block: 1x1 -> SRE kxk -> 1x1 (official layout; ``conv2`` holds the stride pooling).

    Args: as :class:`SREBasicBlock`; ``groups``/``base_width`` set the bottleneck width
    ``int(planes * base_width / 64) * groups``; ``sre_groups != 1`` makes the SRE convolution depthwise.

    Shapes: ``(N, inplanes, H, W) -> (N, 4 * planes, ceil(H/stride), ceil(W/stride))``.

    Example:
        >>> block = SREBottleneck(32, 8, downsample=None)
        >>> block(torch.randn(1, 32, 7, 7)).shape
        torch.Size([1, 32, 7, 7])
    """

    expansion: int = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: Callable[..., nn.Module] | None = None,
        sre_conv_size: int = 3,
        sre_groups: int = 1,
        sre_k: int | None = None,
        ring_basis: str = "hard",
        pool: str = "exact",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        sre_groups = width if sre_groups != 1 else 1
        self.stride = stride
        self.conv1 = _conv1x1(2, inplanes, width)
        self.bn1 = norm_layer(width)
        conv2 = sre_conv(2, width, width, sre_conv_size, sre_groups, dilation, sre_k, ring_basis)
        self.conv2 = nn.Sequential(make_pool(stride, 2, pool), conv2) if stride != 1 else conv2
        self.bn2 = norm_layer(width)
        self.conv3 = _conv1x1(2, width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class SREBasicBlock3d(nn.Module):
    """3D basic block with the official ``sre_r3d_18`` layout.

    ``conv1 = Sequential(pool or Identity, SREConv3d, BatchNorm3d, ReLU)``, ``conv2 = Sequential(SREConv3d,
    BatchNorm3d)``. Unlike the official package, ``sre_k`` is honoured.

    Shapes: ``(N, inplanes, D, H, W) -> (N, planes, ceil(D/s), ceil(H/s), ceil(W/s))``.

    Example:
        >>> SREBasicBlock3d(4, 4, sre_conv_size=3)(torch.randn(1, 4, 5, 5, 5)).shape
        torch.Size([1, 4, 5, 5, 5])
    """

    expansion: int = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        sre_conv_size: int = 3,
        sre_k: int | None = None,
        norm_layer: Callable[..., nn.Module] | None = None,
        ring_basis: str = "hard",
        pool: str = "exact",
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm3d
        self.conv1 = nn.Sequential(
            make_pool(stride, 3, pool) if stride > 1 else nn.Identity(),
            sre_conv(3, inplanes, planes, sre_conv_size, sre_k=sre_k, ring_basis=ring_basis),
            norm_layer(planes),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            sre_conv(3, planes, planes, sre_conv_size, sre_k=sre_k, ring_basis=ring_basis),
            norm_layer(planes),
        )
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class BasicBlock(nn.Module):
    """Plain 2D ResNet basic block (torchvision layout) for the non-equivariant baselines."""

    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 norm_layer: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class BasicBlock3d(nn.Module):
    """Plain 3D basic block (torchvision ``r3d_18`` layout) for the non-equivariant baseline."""

    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 norm_layer: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm3d
        self.conv1 = nn.Sequential(nn.Conv3d(inplanes, planes, 3, stride, 1, bias=False), norm_layer(planes),
                                   nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv3d(planes, planes, 3, 1, 1, bias=False), norm_layer(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)
