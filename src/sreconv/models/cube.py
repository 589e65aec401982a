"""Cube-group equivariant SRE-ResNets for volumes: the 3D counterpart of :mod:`sreconv.models.d4`.

Built from :mod:`sreconv.nn.cube` (group convolutions over the 48 symmetries of the cube, Cohen & Welling, ICML
2016; CubeNet, Worrall & Brostow, ECCV 2018; radial shell profiles as in SRE-Conv, Du et al., ISBI 2025,
arXiv:2501.09753): a band-limited lifting convolution (gaussian shells times spherical harmonics of degree <= 2)
turns the volume into regular fields of 48 orientation channels, residual stages of 3x3x3 group convolutions
carry them, strides are the centre-aligned average poolings, and the head pools over the group (max) and over
space before the classifier: the logits are exactly invariant to all 48 cube symmetries, on odd and even sizes.
``sre_cube_aligned_r3d_18`` puts the principal-axis alignment of the volume in front
(:class:`sreconv.nn.PrincipalAxisAlign3d`): still exactly cube-invariant, and turned back onto its principal axes
at other angles. Each field costs 48 channels: one field per stage doubling (48, 96, 192, 384 channels) is the
default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .registry import register_model
from .regular import RegularBasicBlock, RegularResNet

__all__ = ["CubeBasicBlock", "CubeResNet3d", "sre_cube_r3d_18", "sre_cube_aligned_r3d_18"]


class CubeBasicBlock(RegularBasicBlock):
    """Residual block of two cube-group convolutions (regular fields in and out).

    Args:
        in_fields: input regular fields.
        fields: output regular fields.
        stride: downsampling factor, done by a centre-aligned average pooling before the block.
        kernel_size: odd kernel of both group convolutions.
        basis: spatial basis of the group convolutions (:func:`sreconv.nn.group_spatial_basis`).
        sre_k: shells of the radial bases (default ``k//2 + 1``).
        gaussian_sigma: shell width of gaussian/harmonic bases in cells (default: half the shell spacing).

    Shapes: ``(N, in_fields * 48, D, H, W) -> (N, fields * 48, ceil(D / stride), ceil(H / stride), ceil(W / stride))``.

    Example:
        >>> import torch
        >>> block = CubeBasicBlock(1, 2, stride=2, kernel_size=3)
        >>> block(torch.randn(1, 48, 5, 5, 5)).shape
        torch.Size([1, 96, 3, 3, 3])
    """

    def __init__(self, in_fields: int, fields: int, stride: int = 1, kernel_size: int = 3, basis: str = "full",
                 sre_k: int | None = None, gaussian_sigma: float | None = None) -> None:
        super().__init__(3, in_fields, fields, stride, kernel_size, basis, sre_k, gaussian_sigma)


class CubeResNet3d(RegularResNet):
    """ResNet of regular cube-group fields: logits exactly invariant to the 48 cube symmetries in eval mode.

    Args:
        num_classes: classifier outputs (0 for none).
        in_channels: input channels.
        inplanes: channels of the first stage (``inplanes // 48`` regular fields, at least 1), doubled per stage.
        layers: blocks per stage (4 ints).
        sre_conv_size: kernel size of the group convolutions, an int or one per stage.
        sre_k: shells of the radial bases, an int or one per stage (default ``k//2 + 1``).
        basis: spatial basis of the group convolutions, one name or one per stage (:data:`sreconv.nn.GROUP_BASES`).
        gaussian_sigma: shell width of the group convolutions' gaussian/harmonic bases (default: the basis's).
        stem_kernel_size: odd kernel of the lifting convolution.
        stem_basis: spatial basis of the lifting convolution (default ``'harmonic'``: band-limited).
        stem_max_frequency: highest spherical-harmonic degree of a ``'harmonic'`` stem basis (at most 2).
        stem_gaussian_sigma: shell width of a ``'harmonic'`` stem basis in cells (default 0.6 shell spacings).
        group_pool: ``'max'`` or ``'mean'`` over the 48 orientations before the global average pool.
        fields: regular fields of the first stage, doubled per stage, or one count per stage (overrides
            ``inplanes``).
        align_input: turn every volume onto its principal axes first (:class:`sreconv.nn.PrincipalAxisAlign3d`).

    Shapes: ``(N, in_channels, D, H, W) -> (N, num_classes)``; features before the head are invariant channels.

    Raises:
        ValueError: a bad argument (named in the message).

    Example:
        >>> import torch
        >>> model = CubeResNet3d(num_classes=2, in_channels=1, layers=(1, 1, 1, 1)).eval()
        >>> x = torch.randn(1, 1, 7, 7, 7)
        >>> bool(torch.allclose(model(x), model(x.flip(2).transpose(3, 4)), atol=1e-5))
        True
    """

    spatial_dims = 3
    block = CubeBasicBlock

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        inplanes: int = 48,
        layers: Sequence[int] = (2, 2, 2, 2),
        sre_conv_size: int | Sequence[int] = 3,
        sre_k: None | int | Sequence[int | None] = None,
        basis: str | Sequence[str] = "full",
        gaussian_sigma: float | None = None,
        stem_kernel_size: int = 3,
        stem_basis: str = "harmonic",
        stem_max_frequency: int = 2,
        stem_gaussian_sigma: float | None = None,
        group_pool: str = "max",
        fields: int | Sequence[int] | None = None,
        align_input: bool = False,
    ) -> None:
        super().__init__(3, num_classes, in_channels, inplanes, layers, sre_conv_size, sre_k, basis, gaussian_sigma,
                         stem_kernel_size, stem_basis, stem_max_frequency, stem_gaussian_sigma, group_pool, fields,
                         align_input)


@register_model(spatial_dims=3, group="cube")
def sre_cube_r3d_18(**kwargs: Any) -> CubeResNet3d:
    """Cube-group equivariant SRE-ResNet-18 for volumes: band-limited lifting, 3x3x3 group convolutions.

    ``inplanes`` sets the width as for the other 3D models, in channels: ``inplanes // 48`` regular fields (at
    least 1) in the first stage. ``sre_conv_size`` is the group convolutions' kernel size (3 by default;
    ``sreconv train`` passes its ``--sre-conv-size``). See :class:`CubeResNet3d` for every argument.

    Example:
        >>> import torch
        >>> model = sre_cube_r3d_18(num_classes=3, in_channels=1).eval()
        >>> x = torch.randn(1, 1, 8, 8, 8)
        >>> bool(torch.allclose(model(x), model(x.rot90(1, (2, 4))), atol=1e-5))
        True
        >>> sum(p.numel() for p in model.parameters())
        388411
    """
    return CubeResNet3d(**kwargs)


@register_model(spatial_dims=3, group="cube")
def sre_cube_aligned_r3d_18(**kwargs: Any) -> CubeResNet3d:
    """:func:`sre_cube_r3d_18` behind a principal-axis alignment of the volume (``align_input=True``).

    Example:
        >>> import torch
        >>> model = sre_cube_aligned_r3d_18(num_classes=3, in_channels=1, layers=(1, 1, 1, 1)).eval().double()
        >>> x = torch.randn(1, 1, 7, 8, 9, dtype=torch.float64)
        >>> bool(torch.allclose(model(x), model(x.flip(3).permute(0, 1, 4, 2, 3)), atol=1e-10))
        True
    """
    return CubeResNet3d(**{"align_input": True, **kwargs})
