"""An e2cnn (Weiler & Cesa, NeurIPS 2019) D4-equivariant ResNet-18, the steerable-CNN peer of the
robustness benchmark (``sreconv compare``). Needs the optional package ``e2cnn`` (``pip install e2cnn``),
imported only when the model is built. Deliberately *not* in the model registry (every registered model
must build with the package's own dependencies) and not imported by ``sreconv.models``: import it from
``sreconv_bench.peers.e2cnn``. float32 only (e2cnn keeps its kernel bases in float32).

Layout: a ResNet-18 (2 basic blocks per stage, stride-1 3x3 stem, no max-pool) whose convolutions are
``R2Conv`` between *regular* fields of D4 (``FlipRot2dOnR2(4)``: 8 channels per field), with
``InnerBatchNorm`` and ``ReLU`` per field; strides use the centre-aligned
:class:`~sreconv.nn.SymmetricAvgPool2d` (e2cnn's own strided pooling is not exact on
every size), then ``GroupPooling`` (max over the 8 channels of each field), a global average pool and a
linear classifier: the logits are exactly invariant to D4 in eval mode, on any input size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from sreconv.models._base import ClassifierMixin
from sreconv.nn.canonical import PrincipalAxisAlign2d
from sreconv.nn.pooling import SymmetricAvgPool2d

__all__ = ["E2ResNet", "e2cnn_d4_resnet18"]


def _hashable(value: Any) -> Any:
    return value.tobytes() if isinstance(value, np.ndarray) else value


def _irreps_hash(self) -> int:
    return (hash(self.in_irrep) + hash(self.out_irrep) + hash(_hashable(self.mu))
            + hash(_hashable(self.gamma)))


class _Numpy1Array:
    """Proxy of the numpy module whose ``array(x, copy=False)`` means numpy 1's "copy only if needed"."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def array(obj: Any, *args: Any, copy: Any = True, **kwargs: Any) -> np.ndarray:
        if copy is False:
            return np.asarray(obj, *args, **kwargs)
        return np.array(obj, *args, copy=copy, **kwargs)


def _patch_e2cnn_for_numpy2() -> None:
    """e2cnn 0.2.3 predates numpy 2: it hashes kernel bases with ``ndarray.tostring()`` (use ``tobytes``) and
    calls ``np.array(x, copy=False)`` in ``e2cnn.kernels.utils`` (use ``np.asarray``). No-op on numpy 1."""
    if hasattr(np.ndarray, "tostring"):
        return
    from e2cnn.kernels import irreps_basis
    from e2cnn.kernels import utils as kernel_utils

    kernel_utils.np = _Numpy1Array()

    for obj in vars(irreps_basis).values():
        if (isinstance(obj, type) and "__hash__" in vars(obj) and obj.__hash__ is not None
                and "tostring" in getattr(obj.__hash__, "__code__", _irreps_hash.__code__).co_names):
            obj.__hash__ = _irreps_hash


class _Wrap(nn.Module):
    """Runs an e2cnn module on a plain tensor whose channels follow ``module.in_type``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from e2cnn.nn import GeometricTensor

        return self.module(GeometricTensor(x, self.module.in_type)).tensor


class _Block(nn.Module):
    def __init__(self, enn, in_type, out_type, stride: int) -> None:
        super().__init__()
        self.pool = SymmetricAvgPool2d(stride, stride) if stride != 1 else nn.Identity()
        self.conv1 = _Wrap(enn.R2Conv(in_type, out_type, 3, padding=1, bias=False))
        self.bn1 = _Wrap(enn.InnerBatchNorm(out_type))
        self.relu1 = _Wrap(enn.ReLU(out_type, inplace=True))
        self.conv2 = _Wrap(enn.R2Conv(out_type, out_type, 3, padding=1, bias=False))
        self.bn2 = _Wrap(enn.InnerBatchNorm(out_type))
        self.relu2 = _Wrap(enn.ReLU(out_type, inplace=True))
        self.shortcut: nn.Module = nn.Identity()
        if in_type.size != out_type.size:
            self.shortcut = nn.Sequential(_Wrap(enn.R2Conv(in_type, out_type, 1, bias=False)),
                                          _Wrap(enn.InnerBatchNorm(out_type)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


class E2ResNet(ClassifierMixin, nn.Module):
    """D4-equivariant ResNet-18 built from e2cnn regular-field convolutions (see the module docstring).

    Args:
        num_classes: classifier outputs.
        in_channels: input channels (trivial fields).
        inplanes: channels of the first stage, as the plain ResNet: ``max(1, inplanes // 8)`` regular fields
            of 8 channels each, doubled at every stage.
        layers: blocks per stage.
        align_input: turn every input image onto its principal axes first (:class:`sreconv.nn.PrincipalAxisAlign2d`),
            as ``sre_d4_aligned_resnet18`` does: the same canonicalisation in front of the peer.
        **ignored: other registry keyword arguments (e.g. ``sre_conv_size``) are accepted and ignored.
    """

    spatial_dims = 2

    def __init__(self, num_classes: int = 10, in_channels: int = 1, inplanes: int = 16,
                 layers: list[int] = (2, 2, 2, 2), align_input: bool = False, **ignored: Any) -> None:
        super().__init__()
        try:
            from e2cnn import gspaces
            from e2cnn import nn as enn
        except ImportError as exc:  # optional dependency
            raise ImportError("the e2cnn peer model needs the optional package e2cnn: pip install e2cnn") from exc
        _patch_e2cnn_for_numpy2()
        gs = gspaces.FlipRot2dOnR2(N=4)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.align: nn.Module = PrincipalAxisAlign2d() if align_input else nn.Identity()
        fields = max(1, inplanes // 8)
        current = enn.FieldType(gs, in_channels * [gs.trivial_repr])
        stem_type = enn.FieldType(gs, fields * [gs.regular_repr])
        self.conv1 = _Wrap(enn.R2Conv(current, stem_type, 3, padding=1, bias=False))
        self.bn1 = _Wrap(enn.InnerBatchNorm(stem_type))
        self.relu = _Wrap(enn.ReLU(stem_type, inplace=True))
        current = stem_type
        for i, n in enumerate(layers):
            out_type = enn.FieldType(gs, fields * 2 ** i * [gs.regular_repr])
            blocks = []
            for j in range(n):
                blocks.append(_Block(enn, current, out_type, 2 if (j == 0 and i > 0) else 1))
                current = out_type
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.gpool = _Wrap(enn.GroupPooling(current))
        self.num_features = len(current)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.num_features, num_classes)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(self.align(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.gpool(x)


def e2cnn_d4_resnet18(**kwargs: Any) -> E2ResNet:
    """e2cnn D4 (regular fields) ResNet-18; needs ``pip install e2cnn``. See :class:`E2ResNet`."""
    return E2ResNet(**kwargs)

