"""SRE-ResNet (2D): a ResNet whose logits are exactly invariant to rot90, flips and transposes.

Du et al., "SRE-Conv: Symmetric Rotation Equivariant Convolution for Biomedical Image Classification",
ISBI 2025, arXiv:2501.09753.

Same architecture, arguments, module names and parameter counts as the official package's
``SRE_ResNet`` (so its checkpoints load), with three differences:

* ``in_channels`` is honoured (the official stem always takes 3 channels);
* every stride is done by the centre-aligned pooling of :mod:`sreconv.nn.pooling`, which equals the
  official ``AvgPool2d(s)`` on sizes divisible by ``s`` (e.g. 32 -> 16 -> 8 -> 4, where outputs are
  identical to the official model) and stays exact on odd sizes (28 -> 14 -> 7 -> 4), where the official
  one drops the last row and column; ``downsample='official'`` restores the official poolings;
* the stem max-pool (``skip_first_maxpool=False``) is the centre-aligned ``MaxPool(3, 2, 1)``: the
  official ``nn.MaxPool2d(3, 2, 1)`` breaks invariance on every even size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn

from ..nn import SREConv2d
from ..nn.pooling import SymmetricMaxPool2d
from ._base import (
    ClassifierMixin,
    check_resnet_args,
    classifier_head,
    init_plain_weights,
    per_stage,
    plain_stages,
    tensor_attr,
)
from .blocks import DOWNSAMPLE_MODES, BasicBlock, SREBasicBlock, SREBottleneck, make_pool
from .registry import register_model

__all__ = ["SREResNet", "SRE_ResNet", "sre_resnet18", "sre_resnet34", "sre_resnet50", "ResNet", "plain_resnet18",
           "plain_resnet34"]


class SREResNet(ClassifierMixin, nn.Module):
    """SRE-ResNet for 2D images (Du et al., ISBI 2025, arXiv:2501.09753), exactly D4-invariant in eval mode.

    Args:
        block: :class:`SREBasicBlock` or :class:`SREBottleneck`.
        layers: number of blocks per stage (4 ints).
        num_classes: classifier outputs (0 for none).
        zero_init_residual: zero the last BN of each residual branch.
        groups, width_per_group: bottleneck grouping/width (as torchvision).
        replace_stride_with_dilation: 3 bools; a stage with ``True`` keeps its resolution and dilates its
            SRE kernels instead (still exact).
        norm_layer: normalisation factory (default ``nn.BatchNorm2d``).
        large_conv: accepted for compatibility, ignored (the official stem is always 5x5).
        sre_conv_size: SRE kernel size, an int or one per stage (official paper: ``[9, 9, 5, 5]``).
        deepwise_ri: depthwise SRE convolutions (official name).
        inplanes: width of the stem and of the first stage (64); stages are ``inplanes * (1, 2, 4, 8)``.
        layer_stride: stride of each stage (default ``[1, 2, 2, 2]``).
        sre_k: number of rings, an int or one per stage (default ``k//2 + 1``).
        skip_first_maxpool: drop the stem max-pool (set for small images, as the paper does).
        in_channels: input channels (honoured, unlike the official stem).
        ring_basis: ``'hard'`` (official rings) or ``'gaussian'``.
        stem_kernel_size: stem SRE kernel size (5 as the official package).
        stem_sre_k: rings of the stem (default ``stem_kernel_size//2 + 1``).
        downsample: ``'exact'`` (centre-aligned pooling, invariant for every input size) or ``'official'``
            (the official ``AvgPool2d``/``MaxPool2d``: only use it to reproduce official outputs on sizes
            where it is not exact; the state_dict layout is the same either way).

    Shapes: input ``(N, in_channels, H, W)``, any ``H, W >= 1``; output ``(N, num_classes)``.

    Example:
        >>> model = sre_resnet18(sre_conv_size=[9, 9, 5, 5], num_classes=9, inplanes=8,
        ...                      skip_first_maxpool=True).eval()
        >>> x = torch.randn(2, 3, 28, 28)
        >>> bool(torch.allclose(model(x), model(torch.rot90(x, 1, (2, 3))), atol=1e-5))
        True
    """

    spatial_dims = 2

    def __init__(
        self,
        block: type[SREBasicBlock | SREBottleneck],
        layers: Sequence[int],
        num_classes: int = 1000,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        replace_stride_with_dilation: Sequence[bool] | None = None,
        norm_layer: Callable[..., nn.Module] | None = None,
        large_conv: bool = False,
        sre_conv_size: int | Sequence[int] = 3,
        deepwise_ri: bool = False,
        inplanes: int = 64,
        layer_stride: int | Sequence[int] = (1, 2, 2, 2),
        sre_k: None | int | Sequence[int | None] = None,
        skip_first_maxpool: bool = False,
        in_channels: int = 3,
        ring_basis: str = "hard",
        stem_kernel_size: int = 5,
        stem_sre_k: int | None = None,
        downsample: str = "exact",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        check_resnet_args(self, kwargs, downsample, DOWNSAMPLE_MODES, layers, in_channels)
        norm_layer = norm_layer or nn.BatchNorm2d
        self._norm_layer = norm_layer
        self.sre_conv_size = per_stage(sre_conv_size, "sre_conv_size")
        self.sre_k = per_stage(sre_k, "sre_k", allow_none=True)
        strides = per_stage(int(layer_stride) if isinstance(layer_stride, float) else layer_stride,
                            "layer_stride")
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("replace_stride_with_dilation should be None or a 3-element tuple, got "
                             f"{replace_stride_with_dilation}")
        self.large_conv = large_conv
        self.deepwise_ri = deepwise_ri
        self.ring_basis = ring_basis
        self.downsample_mode = downsample
        self.in_channels = in_channels
        self.inplanes = inplanes
        self.base_inplanes = inplanes
        self.dilation = 1
        self.groups = groups
        self.base_width = width_per_group
        self.num_classes = num_classes

        # nn.Module: the research variants replace the stem (see models/lifted.py)
        self.conv1: nn.Module = SREConv2d(in_channels, inplanes, kernel_size=stem_kernel_size, stride=1,
                                          padding=stem_kernel_size // 2, bias=False, sre_k=stem_sre_k,
                                          ring_basis=ring_basis)
        self.bn1: nn.Module = norm_layer(inplanes)
        self.relu: nn.Module = nn.ReLU(inplace=True)
        if skip_first_maxpool:
            self.maxpool: nn.Module = nn.Identity()
        elif downsample == "official":
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.maxpool = SymmetricMaxPool2d(3, 2, 1)
        dilate = [False, *replace_stride_with_dilation]
        self.layer1: nn.Module
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            self._make_layer(block, inplanes * 2 ** i, layers[i], stride=strides[i], dilate=dilate[i],
                             sre_conv_size=self.sre_conv_size[i], sre_k=self.sre_k[i]) for i in range(4))
        self.num_features = 8 * inplanes * block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.fc = classifier_head(self.num_features, num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        gain = nn.init.calculate_gain("relu")
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, SREConv2d):
                # He init with the fan-out of the dense kernel, as the official package does.
                nn.init.normal_(m.weight, 0.0, gain / math.sqrt(m.out_channels * math.prod(m.kernel_size)))
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, SREBottleneck):
                    nn.init.constant_(tensor_attr(m.bn3, "weight"), 0)
                elif isinstance(m, SREBasicBlock):
                    nn.init.constant_(tensor_attr(m.bn2, "weight"), 0)

    def _make_layer(self, block: type[SREBasicBlock | SREBottleneck], planes: int, blocks: int, stride: int = 1,
                    dilate: bool = False, sre_conv_size: int = 3, sre_k: int | None = None) -> nn.Sequential:
        norm_layer = self._norm_layer
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                make_pool(stride, 2, self.downsample_mode) if stride != 1 else nn.AvgPool2d(1, 1),
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, bias=False),
                norm_layer(planes * block.expansion),
            )
        sre_groups = planes if self.deepwise_ri else 1
        common: dict[str, Any] = dict(norm_layer=norm_layer, sre_conv_size=sre_conv_size, sre_groups=sre_groups,
                                      sre_k=sre_k,
                      ring_basis=self.ring_basis, pool=self.downsample_mode)
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width,
                        previous_dilation, **common)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                                dilation=self.dilation, **common))
        return nn.Sequential(*layers)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


#: The official class name.
SRE_ResNet = SREResNet

@register_model(spatial_dims=2, group="d4")
def sre_resnet18(**kwargs: Any) -> SREResNet:
    """SRE-ResNet-18 (Du et al., ISBI 2025, arXiv:2501.09753).

    Takes the arguments of :class:`SREResNet` (the official ones plus ``in_channels``, ``ring_basis``,
    ``downsample``). Paper configuration: ``sre_conv_size=[9, 9, 5, 5], skip_first_maxpool=True``.

    Example:
        >>> model = sre_resnet18(num_classes=9, inplanes=8, sre_conv_size=[9, 9, 5, 5], in_channels=1)
        >>> model(torch.randn(2, 1, 32, 32)).shape
        torch.Size([2, 9])
    """
    return SREResNet(SREBasicBlock, [2, 2, 2, 2], **kwargs)


@register_model(spatial_dims=2, group="d4")
def sre_resnet34(**kwargs: Any) -> SREResNet:
    """SRE-ResNet-34 (Du et al., ISBI 2025, arXiv:2501.09753).

    Takes the arguments of :class:`SREResNet` (the official ones plus ``in_channels``, ``ring_basis``,
    ``downsample``). Paper configuration: ``sre_conv_size=[9, 9, 5, 5], skip_first_maxpool=True``.

    Example:
        >>> model = sre_resnet34(num_classes=9, inplanes=8, sre_conv_size=[9, 9, 5, 5], in_channels=1)
        >>> model(torch.randn(2, 1, 32, 32)).shape
        torch.Size([2, 9])
    """
    return SREResNet(SREBasicBlock, [3, 4, 6, 3], **kwargs)


@register_model(spatial_dims=2, group="d4")
def sre_resnet50(**kwargs: Any) -> SREResNet:
    """SRE-ResNet-50, bottleneck blocks (Du et al., ISBI 2025, arXiv:2501.09753).

    Takes the arguments of :class:`SREResNet` (the official ones plus ``in_channels``, ``ring_basis``,
    ``downsample``). Paper configuration: ``sre_conv_size=[9, 9, 5, 5], skip_first_maxpool=True``.

    Example:
        >>> model = sre_resnet50(num_classes=9, inplanes=8, sre_conv_size=[9, 9, 5, 5], in_channels=1)
        >>> model(torch.randn(2, 1, 32, 32)).shape
        torch.Size([2, 9])
    """
    return SREResNet(SREBottleneck, [3, 4, 6, 3], **kwargs)


class ResNet(ClassifierMixin, nn.Module):
    """Plain (not equivariant) ResNet adapted to small images, the usual MedMNIST baseline.

    The stem is a 3x3 stride-1 convolution without max-pool (28 -> 28 -> 14 -> 7 -> 4), strides are done by
    stride-2 convolutions and 1x1 stride-2 shortcuts (torchvision's ``BasicBlock``).

    Args:
        layers: blocks per stage.
        num_classes: classifier outputs.
        in_channels: input channels.
        inplanes: width of the first stage (64).
        zero_init_residual: zero the last BN of each block.
        norm_layer: normalisation factory.

    Example:
        >>> plain_resnet18(num_classes=9, in_channels=1)(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 9])
    """

    spatial_dims = 2

    def __init__(self, layers: Sequence[int], num_classes: int = 1000, in_channels: int = 3, inplanes: int = 64,
                 zero_init_residual: bool = False, norm_layer: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_channels, inplanes, 3, 1, 1, bias=False)
        self.bn1 = norm_layer(inplanes)
        self.relu = nn.ReLU(inplace=True)
        stages, current = plain_stages(BasicBlock, nn.Conv2d, layers, inplanes, norm_layer)
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.num_features = current
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = classifier_head(current, num_classes)
        init_plain_weights(self, nn.Conv2d, nn.BatchNorm2d)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.constant_(tensor_attr(m.bn2, "weight"), 0)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


@register_model(spatial_dims=2, group=None, aliases=("resnet18",))
def plain_resnet18(**kwargs: Any) -> ResNet:
    """Plain ResNet-18 for small images (baseline, not equivariant; old name resnet18). See :class:`ResNet`."""
    return ResNet([2, 2, 2, 2], **kwargs)


@register_model(spatial_dims=2, group=None, aliases=("resnet34",))
def plain_resnet34(**kwargs: Any) -> ResNet:
    """Plain ResNet-34 for small images (baseline, not equivariant; old name resnet34). See :class:`ResNet`."""
    return ResNet([3, 4, 6, 3], **kwargs)
