"""Group-equivariant SRE-ResNets on regular fields: what the D4 (2D) and cube (3D) networks share.

A lifting convolution turns the input into regular fields (one orientation channel per element of the grid's
symmetry group), residual stages of group convolutions carry them, strides are the centre-aligned average
poolings, and the head pools over the group and over space before the classifier, so the logits are exactly
invariant. :mod:`sreconv.models.d4` and :mod:`sreconv.models.cube` define the registered networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn as nn

from ..nn.canonical import PrincipalAxisAlign2d, PrincipalAxisAlign3d
from ..nn.cube import CubeBatchNorm3d, CubeGroupConv3d, CubeGroupPool3d, CubeLiftConv3d
from ..nn.d4 import D4BatchNorm2d, D4GroupConv2d, D4GroupPool2d, D4LiftConv2d
from ..nn.pooling import SymmetricAvgPool2d, SymmetricAvgPool3d
from ..nn.regular import GROUP_BASES, GROUP_POOLS, group_order
from ._base import ClassifierMixin, classifier_head, per_stage

__all__ = ["RegularBasicBlock", "RegularResNet"]

class _GroupLayers(NamedTuple):
    lift: type[nn.Module]
    conv: type[nn.Module]
    norm: type[nn.Module]
    group_pool: type[nn.Module]
    avg_pool: type[nn.Module]
    align: type[nn.Module]
    global_pool: type[nn.Module]


_LAYERS = {
    2: _GroupLayers(D4LiftConv2d, D4GroupConv2d, D4BatchNorm2d, D4GroupPool2d, SymmetricAvgPool2d,
                    PrincipalAxisAlign2d, nn.AdaptiveAvgPool2d),
    3: _GroupLayers(CubeLiftConv3d, CubeGroupConv3d, CubeBatchNorm3d, CubeGroupPool3d, SymmetricAvgPool3d,
                    PrincipalAxisAlign3d, nn.AdaptiveAvgPool3d),
}


def _per_stage_choice(value: str | Sequence[str], name: str, choices: Sequence[str]) -> list[str]:
    values = [value] * 4 if isinstance(value, str) else list(value)
    if len(values) == 1:
        values *= 4
    if len(values) != 4 or any(v not in choices for v in values):
        raise ValueError(f"{name} must be one of {tuple(choices)} or a list of 4 of them, got {value!r}")
    return values


class RegularBasicBlock(nn.Module):
    """Residual block of two group convolutions (regular fields in and out), 2D (D4) or 3D (cube group).

    Args:
        spatial_dims: 2 or 3.
        in_fields: input regular fields.
        fields: output regular fields.
        stride: downsampling factor, done by a centre-aligned average pooling before the block.
        kernel_size: odd kernel of both group convolutions.
        basis: spatial basis of the group convolutions (:func:`sreconv.nn.group_spatial_basis`).
        sre_k: rings of the radial bases (default ``k//2 + 1``).
        gaussian_sigma: ring width of gaussian/harmonic bases in cells (default: half the ring spacing).

    Shapes: ``(N, in_fields * G, *S) -> (N, fields * G, *ceil(S / stride))``.
    """

    def __init__(self, spatial_dims: int, in_fields: int, fields: int, stride: int = 1, kernel_size: int = 3,
                 basis: str = "full", sre_k: int | None = None, gaussian_sigma: float | None = None) -> None:
        super().__init__()
        layers = _LAYERS[spatial_dims]
        conv, norm = layers.conv, layers.norm
        self.pool: nn.Module = layers.avg_pool(stride, stride) if stride != 1 else nn.Identity()
        self.conv1 = conv(in_fields, fields, kernel_size, basis, num_rings=sre_k, gaussian_sigma=gaussian_sigma)
        self.bn1 = norm(fields)
        self.conv2 = conv(fields, fields, kernel_size, basis, num_rings=sre_k, gaussian_sigma=gaussian_sigma)
        self.bn2 = norm(fields)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if in_fields != fields:
            self.shortcut = nn.Sequential(conv(in_fields, fields, 1), norm(fields))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block forward."""
        x = self.pool(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + self.shortcut(x))


class RegularResNet(ClassifierMixin, nn.Module):
    """ResNet of regular fields with exactly invariant logits in eval mode, on any input size.

    :class:`sreconv.models.D4ResNet` (2D) and :class:`sreconv.models.CubeResNet3d` (3D) document the arguments;
    ``spatial_dims`` picks the group, the subclass's ``block`` the residual block (built with the arguments of
    :class:`RegularBasicBlock` after ``spatial_dims``).
    """

    block: type[nn.Module]

    def __init__(
        self,
        spatial_dims: int,
        num_classes: int,
        in_channels: int,
        inplanes: int,
        layers: Sequence[int],
        sre_conv_size: int | Sequence[int],
        sre_k: None | int | Sequence[int | None],
        basis: str | Sequence[str],
        gaussian_sigma: float | None,
        stem_kernel_size: int,
        stem_basis: str,
        stem_max_frequency: int,
        stem_gaussian_sigma: float | None,
        group_pool: str,
        fields: int | Sequence[int] | None,
        align_input: bool,
    ) -> None:
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
        if len(layers) != 4:
            raise ValueError(f"layers must list 4 block counts, got {list(layers)!r}")
        kernels = per_stage(sre_conv_size, "sre_conv_size")
        rings = per_stage(sre_k, "sre_k", allow_none=True)
        bases = _per_stage_choice(basis, "basis", GROUP_BASES)
        if group_pool not in GROUP_POOLS:
            raise ValueError(f"group_pool must be one of {GROUP_POOLS}, got {group_pool!r}")
        if fields is None:
            fields = max(1, inplanes // group_order(spatial_dims))
        widths = [fields * 2 ** i for i in range(4)] if isinstance(fields, int) else per_stage(fields, "fields")
        group_layers = _LAYERS[spatial_dims]
        width = widths[0]
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.align: nn.Module = group_layers.align() if align_input else nn.Identity()
        self.conv1 = group_layers.lift(in_channels, width, stem_kernel_size, stem_basis,
                                       max_frequency=stem_max_frequency, gaussian_sigma=stem_gaussian_sigma)
        self.bn1 = group_layers.norm(width)
        self.relu = nn.ReLU(inplace=True)
        current = width
        stages = []
        for i, n in enumerate(layers):
            planes = widths[i]
            blocks = []
            for j in range(n):
                blocks.append(self.block(current, planes, 2 if (i > 0 and j == 0) else 1, kernels[i], bases[i],
                                         rings[i], gaussian_sigma))
                current = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.gpool = group_layers.group_pool(group_pool)
        self.num_features = current
        self.avgpool = group_layers.global_pool(1)
        self.fc = classifier_head(current, num_classes)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(self.align(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.gpool(x)
