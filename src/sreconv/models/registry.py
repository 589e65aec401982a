"""Model registry: ``@register_model`` at a model's definition, ``create_model(name)`` and ``list_models()``.

A model function registers itself where it is defined, in the style of timm, with the metadata the rest of
sreconv needs (dimensionality, the grid group its logits are invariant to)::

    @register_model(spatial_dims=2, group="d4")
    def sre_resnet18(**kwargs) -> SREResNet:
        \"\"\"SRE-ResNet-18 (Du et al., ISBI 2025).\"\"\"   # first line = the registry's description
        ...

Importing :mod:`sreconv.models` imports every built-in model module, so the registry is complete then.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch.nn as nn

__all__ = ["ModelInfo", "register_model", "create_model", "list_models", "model_info", "GROUPS"]

#: Group names a registered model may declare: its logits are exactly invariant to that group in eval mode.
GROUPS = ("d4", "cube")

_Factory = TypeVar("_Factory", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model.

    Attributes:
        name: registry name.
        factory: callable returning the model from keyword arguments.
        spatial_dims: 2 or 3.
        group: the grid group its logits are exactly invariant to (``'d4'``, ``'cube'``), or ``None`` for
            plain (non-equivariant) baselines.
        description: one line (the first line of the factory's docstring).
        aliases: other names that build the same model (older names kept for saved configs).
    """

    name: str
    factory: Callable[..., nn.Module]
    spatial_dims: int
    group: str | None
    description: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def invariant(self) -> bool:
        """Whether the model's logits are exactly invariant to :attr:`group`."""
        return self.group is not None


_REGISTRY: dict[str, ModelInfo] = {}
_ALIASES: dict[str, str] = {}


def register_model(*, spatial_dims: int, group: str | None, name: str | None = None,
                   aliases: Sequence[str] = (), overwrite: bool = False) -> Callable[[_Factory], _Factory]:
    """Decorator that registers a model factory under its function name (or ``name``).

    Args:
        spatial_dims: 2 or 3.
        group: ``'d4'`` / ``'cube'`` for exactly invariant models, ``None`` for baselines.
        name: registry name (default: the function's ``__name__``).
        aliases: further names accepted by :func:`create_model` (not listed by :func:`list_models`).
        overwrite: replace a model already registered under that name.

    Returns:
        The decorator; it returns the factory unchanged.

    Example:
        >>> info = model_info("sre_resnet18")  # registered with @register_model(spatial_dims=2, group="d4")
        >>> info.spatial_dims, info.group, info.description
        (2, 'd4', 'SRE-ResNet-18 (Du et al., ISBI 2025, arXiv:2501.09753).')
    """
    if spatial_dims not in (1, 2, 3):
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}")
    if group is not None and group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)} or None, got {group!r}")

    def decorate(factory: _Factory) -> _Factory:
        key = name or factory.__name__
        for taken in (key, *aliases):
            if not overwrite and (taken in _REGISTRY or taken in _ALIASES):
                raise ValueError(f"a model named {taken!r} is already registered")
        doc = (factory.__doc__ or "").strip()
        _REGISTRY[key] = ModelInfo(key, factory, spatial_dims, group, doc.splitlines()[0] if doc else "",
                                   tuple(aliases))
        for alias in aliases:
            _ALIASES[alias] = key
        return factory

    return decorate


def list_models(pattern: str | None = None, invariant: bool | None = None,
                spatial_dims: int | None = None) -> list[str]:
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
    """The :class:`ModelInfo` of ``name`` (or an alias); unknown names raise ``ValueError`` listing the valid ones."""
    if isinstance(name, str) and name in _ALIASES:
        name = _ALIASES[name]
    if not isinstance(name, str) or name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Valid names: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, checkpoint_path: str | None = None, **kwargs: Any) -> nn.Module:
    """Builds a registered model, optionally with the weights of a checkpoint.

    Args:
        name: one of :func:`list_models` (or an alias).
        checkpoint_path: a file holding the model's weights: a bare ``state_dict``, a sreconv training
            checkpoint (``{"model": ...}``) or an official ``SRE_Conv`` one (``{"state_dict": ...}``). Loaded
            safely (tensors and plain containers only, see :func:`sreconv.serialization.load`).
        **kwargs: passed to the factory (e.g. ``num_classes``, ``in_channels``, ``sre_conv_size``).

    Returns:
        The model (train mode, float32).

    Raises:
        ValueError: unknown name (the message lists the valid ones), bad arguments, or a checkpoint that
            does not fit the model.

    Example:
        >>> import torch
        >>> model = create_model("sre_resnet18", num_classes=9, in_channels=1, sre_conv_size=[9, 9, 5, 5])
        >>> model(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 9])
    """
    model = model_info(name).factory(**kwargs)
    if checkpoint_path is not None:
        from ..serialization import load, model_state

        state = model_state(load(checkpoint_path))
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            first = " ".join(line.strip() for line in str(err).strip().splitlines()[:2])
            raise ValueError(f"checkpoint {checkpoint_path} does not fit model {name!r} built with {kwargs}: "
                             f"{first[:300]}") from err
    return model
