"""D4 group-equivariant SRE-ResNets: orientation channels through every stage, exactly invariant logits.

Built from :mod:`sreconv.nn.d4` (group convolutions, Cohen & Welling, ICML 2016, the p4m case; radial ring
profiles as in SRE-Conv, Du et al., ISBI 2025, arXiv:2501.09753, and steerable CNNs, Weiler & Cesa, NeurIPS
2019): a lifting convolution turns the image into regular D4 fields (8 orientation channels per field), residual
stages of 3x3 group convolutions carry them, strides are the centre-aligned average poolings, and the head pools
over the group (max) and over space before the classifier. The lifting kernel is band-limited (gaussian rings
times ``cos m theta, sin m theta``, ``m <= 2``): it is the only layer that sees pixels, and its smoothness is
what keeps the network accurate between quarter turns; the deeper kernels are free 3x3 cells.
``sre_d4_aligned_resnet18`` puts a principal-axis alignment of the input in front
(:class:`sreconv.nn.PrincipalAxisAlign2d`, canonicalisation as in Kaba et al., ICML 2023): the exact D4
invariance is kept and the angles between quarter turns are turned back before the network sees them. The design
and every alternative measured are in ``benchmarks/ROBUSTNESS.md`` (design record).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .registry import register_model
from .regular import RegularBasicBlock, RegularResNet

__all__ = ["D4BasicBlock", "D4ResNet", "sre_d4_resnet18", "sre_d4_aligned_resnet18"]


class D4BasicBlock(RegularBasicBlock):
    """Residual block of two D4 group convolutions (regular fields in and out).

    Args:
        in_fields: input regular fields.
        fields: output regular fields.
        stride: downsampling factor, done by a centre-aligned average pooling before the block.
        kernel_size: odd kernel of both group convolutions.
        basis: spatial basis of the group convolutions (:func:`sreconv.nn.d4_spatial_basis`).
        sre_k: rings of the radial bases (default ``k//2 + 1``).
        gaussian_sigma: ring width of gaussian/harmonic bases in cells (default: half the ring spacing).

    Shapes: ``(N, in_fields * 8, H, W) -> (N, fields * 8, ceil(H / stride), ceil(W / stride))``.

    Example:
        >>> import torch
        >>> block = D4BasicBlock(2, 4, stride=2, kernel_size=3, basis="full")
        >>> block(torch.randn(1, 16, 7, 7)).shape
        torch.Size([1, 32, 4, 4])
    """

    def __init__(self, in_fields: int, fields: int, stride: int = 1, kernel_size: int = 3, basis: str = "full",
                 sre_k: int | None = None, gaussian_sigma: float | None = None) -> None:
        super().__init__(2, in_fields, fields, stride, kernel_size, basis, sre_k, gaussian_sigma)


class D4ResNet(RegularResNet):
    """ResNet of regular D4 fields, exactly D4-invariant logits in eval mode, on any input size.

    Args:
        num_classes: classifier outputs (0 for none).
        in_channels: input channels.
        inplanes: channels of the first stage (``inplanes // 8`` regular fields, at least 1), doubled per stage;
            the same width convention as the e2cnn peer.
        layers: blocks per stage (4 ints).
        sre_conv_size: kernel size of the group convolutions, an int or one per stage.
        sre_k: rings of the radial bases, an int or one per stage (default ``k//2 + 1``).
        basis: spatial basis of the group convolutions, one name or one per stage (:data:`sreconv.nn.D4_BASES`).
        gaussian_sigma: ring width of the group convolutions' gaussian/harmonic bases (default: the basis's).
        stem_kernel_size: odd kernel of the lifting convolution.
        stem_basis: spatial basis of the lifting convolution (default ``'harmonic'``: band-limited).
        stem_max_frequency: highest angular frequency of a ``'harmonic'`` stem basis.
        stem_gaussian_sigma: ring width of a ``'harmonic'`` stem basis in cells (default 0.6 ring spacings).
        group_pool: ``'max'`` or ``'mean'`` over the 8 orientations before the global average pool.
        fields: regular fields of the first stage, doubled per stage, or one count per stage (overrides
            ``inplanes``).
        skip_first_maxpool: must be True (the engine passes it to every invariant 2D model): this network has
            no stem max-pool.
        align_input: turn every input image onto its principal axes first (:class:`sreconv.nn.PrincipalAxisAlign2d`):
            still exactly D4-invariant, and invariant to any other angle up to resampling.

    Shapes: ``(N, in_channels, H, W) -> (N, num_classes)``; features before the head ``(N, num_features, H', W')``
    are invariant channels (group-pooled), ``num_features`` = the last stage's fields.

    Raises:
        ValueError: a bad argument (named in the message).

    Example:
        >>> import torch
        >>> model = D4ResNet(num_classes=3, in_channels=1, inplanes=8, sre_conv_size=3).eval()
        >>> x = torch.randn(2, 1, 13, 13)
        >>> bool(torch.allclose(model(x), model(x.rot90(1, (2, 3)).flip(-1)), atol=1e-5))
        True
    """

    spatial_dims = 2
    block = D4BasicBlock

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        inplanes: int = 16,
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
        skip_first_maxpool: bool = True,
        align_input: bool = False,
    ) -> None:
        if skip_first_maxpool is not True:
            raise ValueError("skip_first_maxpool must be True: the D4 ResNet has no stem max-pool")
        super().__init__(2, num_classes, in_channels, inplanes, layers, sre_conv_size, sre_k, basis, gaussian_sigma,
                         stem_kernel_size, stem_basis, stem_max_frequency, stem_gaussian_sigma, group_pool, fields,
                         align_input)


@register_model(spatial_dims=2, group="d4")
def sre_d4_resnet18(**kwargs: Any) -> D4ResNet:
    """D4 group-equivariant SRE-ResNet-18: band-limited lifting, 3x3 group convolutions on regular fields.

    ``inplanes`` sets the width as for the other models (16 -> 2 regular fields = 16 channels in the first
    stage). ``sre_conv_size`` is the group convolutions' kernel size (the measured design: 3; ``sreconv train``
    passes its ``--sre-conv-size``, whose default ``9 9 5 5`` builds a 9x slower network). See
    :class:`D4ResNet` for every argument.

    Example:
        >>> import torch
        >>> model = sre_d4_resnet18(num_classes=10, in_channels=1, inplanes=16).eval()
        >>> x = torch.randn(2, 1, 28, 28)
        >>> bool(torch.allclose(model(x), model(x.rot90(1, (2, 3))), atol=1e-5))
        True
        >>> sum(p.numel() for p in model.parameters())
        87650
    """
    return D4ResNet(**kwargs)


@register_model(spatial_dims=2, group="d4")
def sre_d4_aligned_resnet18(**kwargs: Any) -> D4ResNet:
    """:func:`sre_d4_resnet18` behind a principal-axis alignment of the input (``align_input=True``).

    Exactly D4-invariant like the plain one; every other angle is turned back onto the image's principal axes
    before the network sees it, so the logits change between quarter turns only by resampling.

    Example:
        >>> import torch
        >>> model = sre_d4_aligned_resnet18(num_classes=10, in_channels=1, inplanes=16).eval().double()
        >>> x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
        >>> bool(torch.allclose(model(x), model(x.rot90(1, (2, 3)).flip(-1)), atol=1e-10))
        True
    """
    return D4ResNet(**{"align_input": True, **kwargs})
