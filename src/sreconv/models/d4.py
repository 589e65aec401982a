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

import torch
import torch.nn as nn

from ..nn.canonical import PrincipalAxisAlign2d
from ..nn.d4 import D4_BASES, D4_ORDER, D4_POOLS, D4BatchNorm2d, D4GroupConv2d, D4GroupPool2d, D4LiftConv2d
from ..nn.pooling import SymmetricAvgPool2d
from ._base import ClassifierMixin, classifier_head, per_stage
from .registry import register_model

__all__ = ["D4BasicBlock", "D4ResNet", "sre_d4_resnet18", "sre_d4_aligned_resnet18"]


def _per_stage_choice(value: str | Sequence[str], name: str, choices: Sequence[str]) -> list[str]:
    values = [value] * 4 if isinstance(value, str) else list(value)
    if len(values) == 1:
        values *= 4
    if len(values) != 4 or any(v not in choices for v in values):
        raise ValueError(f"{name} must be one of {tuple(choices)} or a list of 4 of them, got {value!r}")
    return values


class D4BasicBlock(nn.Module):
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
        >>> block = D4BasicBlock(2, 4, stride=2, kernel_size=3, basis="full")
        >>> block(torch.randn(1, 16, 7, 7)).shape
        torch.Size([1, 32, 4, 4])
    """

    def __init__(self, in_fields: int, fields: int, stride: int = 1, kernel_size: int = 3, basis: str = "full",
                 sre_k: int | None = None, gaussian_sigma: float | None = None) -> None:
        super().__init__()
        self.pool: nn.Module = SymmetricAvgPool2d(stride, stride) if stride != 1 else nn.Identity()
        self.conv1 = D4GroupConv2d(in_fields, fields, kernel_size, basis, num_rings=sre_k,
                                   gaussian_sigma=gaussian_sigma)
        self.bn1 = D4BatchNorm2d(fields)
        self.conv2 = D4GroupConv2d(fields, fields, kernel_size, basis, num_rings=sre_k, gaussian_sigma=gaussian_sigma)
        self.bn2 = D4BatchNorm2d(fields)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if in_fields != fields:
            self.shortcut = nn.Sequential(D4GroupConv2d(in_fields, fields, 1), D4BatchNorm2d(fields))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block forward."""
        x = self.pool(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + self.shortcut(x))


class D4ResNet(ClassifierMixin, nn.Module):
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
        >>> model = D4ResNet(num_classes=3, in_channels=1, inplanes=8, sre_conv_size=3).eval()
        >>> x = torch.randn(2, 1, 13, 13)
        >>> bool(torch.allclose(model(x), model(x.rot90(1, (2, 3)).flip(-1)), atol=1e-5))
        True
    """

    spatial_dims = 2

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
        super().__init__()
        if skip_first_maxpool is not True:
            raise ValueError("skip_first_maxpool must be True: the D4 ResNet has no stem max-pool")
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
        if len(layers) != 4:
            raise ValueError(f"layers must list 4 block counts, got {list(layers)!r}")
        kernels = per_stage(sre_conv_size, "sre_conv_size")
        rings = per_stage(sre_k, "sre_k", allow_none=True)
        bases = _per_stage_choice(basis, "basis", D4_BASES)
        if group_pool not in D4_POOLS:
            raise ValueError(f"group_pool must be one of {D4_POOLS}, got {group_pool!r}")
        if fields is None:
            fields = max(1, inplanes // D4_ORDER)
        widths = [fields * 2 ** i for i in range(4)] if isinstance(fields, int) else per_stage(fields, "fields")
        width = widths[0]
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.align: nn.Module = PrincipalAxisAlign2d() if align_input else nn.Identity()
        self.conv1 = D4LiftConv2d(in_channels, width, stem_kernel_size, stem_basis, max_frequency=stem_max_frequency,
                                  gaussian_sigma=stem_gaussian_sigma)
        self.bn1 = D4BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        current = width
        stages = []
        for i, n in enumerate(layers):
            planes = widths[i]
            blocks = []
            for j in range(n):
                blocks.append(D4BasicBlock(current, planes, 2 if (i > 0 and j == 0) else 1, kernels[i], bases[i],
                                           rings[i], gaussian_sigma))
                current = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.gpool = D4GroupPool2d(group_pool)
        self.num_features = current
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = classifier_head(current, num_classes)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(self.align(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.gpool(x)


@register_model(spatial_dims=2, group="d4")
def sre_d4_resnet18(**kwargs: Any) -> D4ResNet:
    """D4 group-equivariant SRE-ResNet-18: band-limited lifting, 3x3 group convolutions on regular fields.

    ``inplanes`` sets the width as for the other models (16 -> 2 regular fields = 16 channels in the first
    stage). ``sre_conv_size`` is the group convolutions' kernel size (the measured design: 3; ``sreconv train``
    passes its ``--sre-conv-size``, whose default ``9 9 5 5`` builds a 9x slower network). See
    :class:`D4ResNet` for every argument.

    Example:
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
        >>> model = sre_d4_aligned_resnet18(num_classes=10, in_channels=1, inplanes=16).eval().double()
        >>> x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
        >>> bool(torch.allclose(model(x), model(x.rot90(1, (2, 3)).flip(-1)), atol=1e-10))
        True
    """
    return D4ResNet(**{"align_input": True, **kwargs})
