"""Model registry: ``create_model(name, **kwargs)`` and ``list_models()``.

Other modules (or users) add models with :func:`register_model`.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import torch.nn as nn

__all__ = ["ModelInfo", "register_model", "create_model", "list_models", "model_info"]


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model.

    Attributes:
        name: registry name.
        factory: callable returning the model from keyword arguments.
        spatial_dims: 2 or 3.
        group: the grid group its logits are exactly invariant to (``'d4'``, ``'cube'``), or ``None`` for
            plain (non-equivariant) baselines.
        description: one line.
    """

    name: str
    factory: Callable[..., nn.Module]
    spatial_dims: int
    group: Optional[str]
    description: str = ""

    @property
    def invariant(self) -> bool:
        return self.group is not None


_REGISTRY: Dict[str, ModelInfo] = {}


def register_model(name: str, factory: Callable[..., nn.Module], spatial_dims: int, group: Optional[str],
                   description: str = "", overwrite: bool = False) -> Callable[..., nn.Module]:
    """Adds ``factory`` under ``name`` (raises if taken unless ``overwrite``). Returns ``factory``."""
    if not overwrite and name in _REGISTRY:
        raise ValueError(f"a model named {name!r} is already registered")
    _REGISTRY[name] = ModelInfo(name, factory, spatial_dims, group, description)
    return factory


def list_models(pattern: Optional[str] = None, invariant: Optional[bool] = None,
                spatial_dims: Optional[int] = None) -> List[str]:
    """Sorted registered names, optionally filtered by a glob ``pattern``, invariance or dimensionality.

    Example:
        >>> list_models("sre_resnet??")
        ['sre_resnet18', 'sre_resnet34', 'sre_resnet50']
    """
    names = sorted(_REGISTRY)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    if invariant is not None:
        names = [n for n in names if _REGISTRY[n].invariant == invariant]
    if spatial_dims is not None:
        names = [n for n in names if _REGISTRY[n].spatial_dims == spatial_dims]
    return names


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``; unknown names raise ``ValueError`` listing the valid ones."""
    if not isinstance(name, str) or name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Valid names: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Builds a registered model.

    Args:
        name: one of :func:`list_models`.
        **kwargs: passed to the factory (e.g. ``num_classes``, ``in_channels``, ``sre_conv_size``).

    Returns:
        The model (train mode, float32).

    Raises:
        ValueError: unknown name (the message lists the valid ones).

    Example:
        >>> import torch
        >>> model = create_model("sre_resnet18", num_classes=9, in_channels=1, sre_conv_size=[9, 9, 5, 5])
        >>> model(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 9])
    """
    return model_info(name).factory(**kwargs)


def _register_builtins() -> None:
    from .resnet import resnet18, resnet34, sre_resnet18, sre_resnet34, sre_resnet50
    from .resnet3d import r3d_18, sre_r3d_18, sre_r3d_34

    paper = "Du et al., ISBI 2025, arXiv:2501.09753"
    register_model("sre_resnet18", sre_resnet18, 2, "d4", f"SRE-ResNet-18 ({paper})")
    register_model("sre_resnet34", sre_resnet34, 2, "d4", f"SRE-ResNet-34 ({paper})")
    register_model("sre_resnet50", sre_resnet50, 2, "d4", f"SRE-ResNet-50, bottleneck blocks ({paper})")
    register_model("resnet18", resnet18, 2, None, "plain ResNet-18 for small images (baseline)")
    register_model("resnet34", resnet34, 2, None, "plain ResNet-34 for small images (baseline)")
    register_model("sre_r3d_18", sre_r3d_18, 3, "cube", f"SRE-ResNet3D-18 ({paper})")
    register_model("sre_r3d_34", sre_r3d_34, 3, "cube", f"SRE-ResNet3D-34 ({paper})")
    register_model("r3d_18", r3d_18, 3, None, "plain R3D-18 with a stride-1 stem (baseline)")


_register_builtins()
