"""The GMR-Conv ResNet-18 (Du et al., "GMR-Conv: An Efficient Rotation and Reflection Equivariant Convolution
Kernel Using Gaussian Mixture Rings", arXiv:2504.02819), the successor of SRE-Conv, as a benchmark peer.

Needs the optional package ``gmr-conv`` 1.0.3 (import ``GMR_Conv``), installed with
``pip install --no-deps gmr-conv==1.0.3`` (its networks need only torch, numpy and scipy; its declared monai
dependency serves only its U-Net). ``GMR_Conv/__init__.py`` also imports its data transforms, which need
``torchio`` and ``torchvision``; when those are missing the network module is loaded without the package's
``__init__``. Its ResNets downsample with plain ``nn.AvgPool2d(2, 2)``, which drops the last row/column of odd
sizes (28 -> 14 -> 7 -> 3 here), so their logits are not exactly D4-invariant: ``sreconv compare`` measures
the deviation rather than assuming it.

Every ``GMR_Conv2d`` runs GMR's own dense forward (``dw_fwd=False``: the kernel is built from the gaussian
mixture rings, then one ``F.conv2d``) instead of its default depthwise forward: the same function (outputs agree
to float rounding), but the depthwise backward is about 5x slower on CPU (measured here: 5.5 s vs 1.0 s per
training step of the width-16 network, batch 64, 1 thread), which would make the timing column measure an
implementation choice rather than the network.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import Any

import torch.nn as nn

__all__ = ["gmr_resnet18", "load_gmr_resnet"]

_TRANSFORM_DEPENDENCIES = ("torchio", "torchvision", "PIL")
_MISSING = "the GMR-Conv peer needs the optional package gmr-conv: pip install --no-deps gmr-conv==1.0.3"


def load_gmr_resnet() -> types.ModuleType:
    """``GMR_Conv.gmr_resnet``, without the package's data-transform imports when their dependencies are missing.

    Raises:
        ImportError: ``GMR_Conv`` is not installed.
    """
    try:
        return importlib.import_module("GMR_Conv.gmr_resnet")
    except ModuleNotFoundError as err:
        if err.name == "GMR_Conv" or err.name not in _TRANSFORM_DEPENDENCIES:
            raise ImportError(_MISSING) from err
    spec = importlib.util.find_spec("GMR_Conv")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(_MISSING)
    package = types.ModuleType("GMR_Conv")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["GMR_Conv"] = package  # a bare package: its submodules import, its __init__ does not run
    return importlib.import_module("GMR_Conv.gmr_resnet")


def gmr_resnet18(num_classes: int = 10, in_channels: int = 1, inplanes: int = 16,
                 sre_conv_size: Sequence[int] = (9, 9, 5, 5), **ignored: Any) -> nn.Module:
    """GMR-ResNet-18 with the comparison's width and per-stage kernels, no stem pooling (small images).

    Args:
        num_classes: classifier outputs.
        in_channels: input channels.
        inplanes: width of the stem and first stage.
        sre_conv_size: kernel size per stage (GMR's ``gmr_conv_size``).
        **ignored: other registry keyword arguments, accepted and ignored.

    Returns:
        ``GMR_Conv.gmr_resnet.GMR_ResNet``.
    """
    module = load_gmr_resnet()
    model = module.gmr_resnet18(gmr_conv_size=list(sre_conv_size), inplanes=inplanes, in_channels=in_channels,
                                num_classes=num_classes, skip_first_maxpool=True)
    for layer in model.modules():
        if isinstance(layer, module.GMR_Conv2d):
            layer.dw_fwd = False
    return model
