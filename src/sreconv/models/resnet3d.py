"""SRE-ResNet 3D (``sre_r3d_18``): logits exactly invariant to the 48 symmetries of the cube.

Du et al., "SRE-Conv: Symmetric Rotation Equivariant Convolution for Biomedical Image Classification",
ISBI 2025, arXiv:2501.09753.

Same layout and parameter count as the official ``sre_r3d_18`` (so its checkpoints load), with fixes:

* ``sre_k`` (rings per stage) is honoured; the official model never passes it to its blocks;
* the stem is an isotropic SRE kernel (default 3x3x3 with 2 rings). The official stem is declared
  ``(3, 7, 7)`` but its rings are computed from the first dimension's radius only, so every cell farther
  than 1.5 from the centre is zero: it *is* a 3x3x3 kernel with 2 rings and the same padding. Loading an
  official checkpoint crops its ``(1, 1, 2, 147)`` stem masks to ``(1, 1, 2, 27)`` (checked to be zero
  outside), so the outputs are identical. ``stem_kernel_size`` may also be anisotropic, e.g. ``(3, 7, 7)``:
  its rings then use true 3D distances (it is then only equivariant to the symmetries that keep its shape);
* strides use the centre-aligned pooling of :mod:`sreconv.nn.pooling` (identical to the official
  ``AvgPool3d(2)`` on even sizes, exact on odd ones: 28 -> 14 -> 7 -> 4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
import torch.nn as nn

from ..nn import SREConv3d
from ._base import (
    ClassifierMixin,
    check_resnet_args,
    classifier_head,
    init_plain_weights,
    per_stage,
    plain_stages,
    tensor_attr,
)
from .blocks import DOWNSAMPLE_MODES, BasicBlock3d, SREBasicBlock3d, make_pool
from .registry import register_model

__all__ = ["SREResNet3d", "VideoResNet3d", "sre_r3d_18", "sre_r3d_34", "R3D", "plain_r3d_18"]

_OFFICIAL_STEM_KEY = "stem.0.weight_index_mat"


class SREResNet3d(ClassifierMixin, nn.Module):
    """SRE-ResNet for volumes (Du et al., ISBI 2025, arXiv:2501.09753), invariant to the 48 cube symmetries.

    Args:
        layers: blocks per stage (4 ints).
        num_classes: classifier outputs (official default 400).
        zero_init_residual: zero the last BN of each block.
        in_channels: input channels.
        sre_conv_size: SRE kernel size, an int or one per stage (paper: 5).
        sre_k: rings per stage (int or list; default ``k//2 + 1``).
        inplanes: width of the stem and of the first stage (64).
        stem_kernel_size: stem kernel (int = isotropic, default 3; see the module docstring).
        stem_sre_k: stem rings (default: the official 2 for a 3x3x3 stem).
        ring_basis: ``'hard'`` or ``'gaussian'``.
        norm_layer: normalisation factory (default ``nn.BatchNorm3d``).
        downsample: ``'exact'`` or ``'official'`` (see :func:`sreconv.models.blocks.make_pool`).

    Shapes: input ``(N, in_channels, D, H, W)``; output ``(N, num_classes)``.

    Example:
        >>> model = sre_r3d_18(num_classes=3, in_channels=1, inplanes=4).eval()
        >>> x = torch.randn(1, 1, 9, 9, 9)
        >>> bool(torch.allclose(model(x), model(x.flip(2).transpose(3, 4)), atol=1e-5))
        True
    """

    spatial_dims = 3

    def __init__(
        self,
        layers: Sequence[int] = (2, 2, 2, 2),
        num_classes: int = 400,
        zero_init_residual: bool = False,
        in_channels: int = 3,
        sre_conv_size: int | Sequence[int] = 3,
        sre_k: None | int | Sequence[int | None] = None,
        inplanes: int = 64,
        stem_kernel_size: int | tuple[int, int, int] = 3,
        stem_sre_k: int | None = None,
        ring_basis: str = "hard",
        norm_layer: Callable[..., nn.Module] | None = None,
        downsample: str = "exact",
        block: type[SREBasicBlock3d] = SREBasicBlock3d,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        kwargs.pop("progress", None)  # official signature
        check_resnet_args(self, kwargs, downsample, DOWNSAMPLE_MODES, layers, in_channels)
        norm_layer = norm_layer or nn.BatchNorm3d
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.sre_conv_size = per_stage(sre_conv_size, "sre_conv_size")
        self.sre_k = per_stage(sre_k, "sre_k", allow_none=True)
        stem_k = (stem_kernel_size,) * 3 if isinstance(stem_kernel_size, int) else tuple(stem_kernel_size)
        self.stem = nn.Sequential(
            SREConv3d(in_channels, inplanes, kernel_size=stem_k, stride=1, padding=tuple(k // 2 for k in stem_k),
                      bias=False, sre_k=stem_sre_k, ring_basis=ring_basis),
            norm_layer(inplanes),
            nn.ReLU(inplace=True),
        )
        self.inplanes = inplanes
        stages = []
        for i in range(4):
            planes, stride = inplanes * 2 ** i, (1 if i == 0 else 2)
            down = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                down = nn.Sequential(
                    make_pool(stride, 3, downsample) if stride != 1 else nn.AvgPool3d(1, 1),
                    nn.Conv3d(self.inplanes, planes * block.expansion, kernel_size=1, bias=False),
                    norm_layer(planes * block.expansion),
                )
            common: dict[str, Any] = dict(sre_conv_size=self.sre_conv_size[i], sre_k=self.sre_k[i],
                                          norm_layer=norm_layer, ring_basis=ring_basis, pool=downsample)
            blocks: list[nn.Module] = [block(self.inplanes, planes, stride, down, **common)]
            self.inplanes = planes * block.expansion
            blocks += [block(self.inplanes, planes, **common) for _ in range(1, layers[i])]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.num_features = 8 * inplanes * block.expansion
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = classifier_head(self.num_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, SREBasicBlock3d):
                    nn.init.constant_(tensor_attr(m.conv2[1], "weight"), 0)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, local_metadata: dict[str, Any],
                              strict: bool, missing_keys: list[str], unexpected_keys: list[str],
                              error_msgs: list[str]) -> None:
        # Official checkpoints: the (3, 7, 7) stem's masks are zero outside the central 3x3x3 block.
        key = prefix + _OFFICIAL_STEM_KEY
        masks = state_dict.get(key)
        conv = cast(SREConv3d, self.stem[0])
        if masks is not None and masks.shape[-1] != conv.basis[0].numel() and masks.shape[-1] == 147:
            full = masks.reshape(masks.shape[-2], 3, 7, 7)
            kd, kh, kw = conv.kernel_size
            if (kd, kh, kw) == (3, 3, 3) and full[:, :, :2].abs().sum() + full[:, :, 5:].abs().sum() \
                    + full[:, :, :, :2].abs().sum() + full[:, :, :, 5:].abs().sum() == 0:
                state_dict[key] = full[:, :, 2:5, 2:5].reshape(1, 1, masks.shape[-2], 27).clone()
            else:
                error_msgs.append(
                    f"official stem masks of shape {tuple(masks.shape)} do not fit the stem kernel "
                    f"{conv.kernel_size}; build the model with stem_kernel_size=3 (official equivalent) "
                    "or (3, 7, 7)"
                )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


#: The official package builds its 3D models with a class named ``VideoResNet``.
VideoResNet3d = SREResNet3d


@register_model(spatial_dims=3, group="cube")
def sre_r3d_18(**kwargs: Any) -> SREResNet3d:
    """SRE-ResNet3D-18 (Du et al., ISBI 2025, arXiv:2501.09753).

    Takes the arguments of :class:`SREResNet3d` (paper: ``sre_conv_size=5``, about 3.85 M parameters).

    Example:
        >>> sre_r3d_18(num_classes=2, in_channels=1, inplanes=4)(torch.randn(2, 1, 8, 8, 8)).shape
        torch.Size([2, 2])
    """
    return SREResNet3d([2, 2, 2, 2], **kwargs)


@register_model(spatial_dims=3, group="cube")
def sre_r3d_34(**kwargs: Any) -> SREResNet3d:
    """SRE-ResNet3D-34 (blocks ``[3, 4, 6, 3]``); arguments of :class:`SREResNet3d`."""
    return SREResNet3d([3, 4, 6, 3], **kwargs)


class R3D(ClassifierMixin, nn.Module):
    """Plain 3D ResNet (torchvision ``r3d_18`` layout, stride-1 ``(3, 7, 7)`` stem) baseline; not equivariant.

    Example:
        >>> plain_r3d_18(num_classes=2, in_channels=1, inplanes=4)(torch.randn(2, 1, 8, 8, 8)).shape
        torch.Size([2, 2])
    """

    spatial_dims = 3

    def __init__(self, layers: Sequence[int] = (2, 2, 2, 2), num_classes: int = 400, in_channels: int = 3,
                 inplanes: int = 64, zero_init_residual: bool = False,
                 norm_layer: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm3d
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, inplanes, (3, 7, 7), 1, (1, 3, 3), bias=False), norm_layer(inplanes),
            nn.ReLU(inplace=True))
        stages, current = plain_stages(BasicBlock3d, nn.Conv3d, layers, inplanes, norm_layer)
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.num_features = current
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = classifier_head(current, num_classes)
        init_plain_weights(self, nn.Conv3d, nn.BatchNorm3d)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock3d):
                    nn.init.constant_(tensor_attr(m.conv2[1], "weight"), 0)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


@register_model(spatial_dims=3, group=None, aliases=("r3d_18",))
def plain_r3d_18(**kwargs: Any) -> R3D:
    """Plain R3D-18 with a stride-1 stem for small volumes (baseline; old name r3d_18). See :class:`R3D`."""
    return R3D([2, 2, 2, 2], **kwargs)
