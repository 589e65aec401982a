"""Shared classifier interface of the sreconv models: forward_features / forward_head / reset_classifier."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn


def per_stage(value: Any, name: str, stages: int = 4, allow_none: bool = False) -> list[Any]:
    """Expands an int (or ``None``) to one value per stage, or checks a list of ``stages`` values.

    A list of length 1 is repeated, as in the official package; any other length must equal ``stages``.
    """
    if value is None and allow_none:
        return [None] * stages
    if isinstance(value, (list, tuple)):
        values = list(value)
        if len(values) == 1:
            values = values * stages
        if len(values) != stages:
            raise ValueError(f"{name} must be an int or a list of 1 or {stages} values (one per stage), "
                             f"got {list(value)!r} of length {len(values)}")
    else:
        values = [value] * stages
    for v in values:
        if v is None and allow_none:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must hold positive ints{' or None' if allow_none else ''}, got {value!r}")
    return values


def check_resnet_args(model: nn.Module, extra: dict, downsample: str, modes: Sequence[str],
                      layers: Sequence[int], in_channels: int) -> None:
    """The argument checks the 2D and 3D SRE-ResNets share.

    No unknown keywords, a known downsample mode, four stages, a positive int channel count.
    """
    if extra:
        raise TypeError(f"unexpected arguments for {type(model).__name__}: {', '.join(sorted(extra))}")
    if downsample not in modes:
        raise ValueError(f"downsample must be one of {tuple(modes)}, got {downsample!r}")
    if len(layers) != 4:
        raise ValueError(f"layers must list 4 block counts, got {list(layers)!r}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")


def plain_stages(block: Callable[..., nn.Module], conv: Callable[..., nn.Module], layers: Sequence[int],
                 inplanes: int, norm_layer: Callable[..., nn.Module]) -> tuple[list[nn.Sequential], int]:
    """The stages of a plain residual network (baselines, 2D or 3D) and its final width.

    Width doubles and a stride-2 block with a strided 1x1 shortcut opens every stage after the first.
    """
    current = inplanes
    stages = []
    for i, n in enumerate(layers):
        planes, stride = inplanes * 2 ** i, (1 if i == 0 else 2)
        blocks: list[nn.Module] = []
        for j in range(n):
            down = None
            if j == 0 and (stride != 1 or current != planes):
                down = nn.Sequential(conv(current, planes, 1, stride, bias=False), norm_layer(planes))
            blocks.append(block(current, planes, stride if j == 0 else 1, down, norm_layer))
            current = planes
        stages.append(nn.Sequential(*blocks))
    return stages, current


def tensor_attr(module: nn.Module, name: str) -> torch.Tensor:
    """``module.<name>`` as a tensor (a parameter or buffer), for the init helpers."""
    value = getattr(module, name)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{type(module).__name__}.{name} is not a tensor")
    return value


def init_plain_weights(model: nn.Module, conv: type[nn.Module], norm: type[nn.Module]) -> None:
    """Torchvision's ResNet init: kaiming-normal (fan-out) convolutions, unit/zero normalisation."""
    for m in model.modules():
        if isinstance(m, conv):
            nn.init.kaiming_normal_(tensor_attr(m, "weight"), mode="fan_out", nonlinearity="relu")
        elif isinstance(m, norm):
            nn.init.constant_(tensor_attr(m, "weight"), 1)
            nn.init.constant_(tensor_attr(m, "bias"), 0)


def classifier_head(num_features: int, num_classes: int, **factory: Any) -> nn.Module:
    """``Linear(num_features, num_classes)``, or ``Identity`` for ``num_classes=0`` (features only).

    Raises:
        ValueError: ``num_classes`` is not an int >= 0.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes must be an int >= 0 (0 = no classifier head), got {num_classes!r}")
    return nn.Linear(num_features, num_classes, **factory) if num_classes else nn.Identity()


class ClassifierMixin:
    """Adds ``forward_features``/``forward_head``/``reset_classifier`` over ``self.avgpool`` and ``self.fc``.

    Subclasses define ``_features(x)`` (stem + stages), ``in_channels``, ``spatial_dims``, ``num_features``.
    """

    if TYPE_CHECKING:  # declared for mypy only: TorchScript cannot resolve postponed annotations of attributes
        in_channels: int
        spatial_dims: int
        num_features: int
        fc: nn.Module
        avgpool: nn.Module

    @torch.jit.unused
    def _check_input(self, x: torch.Tensor) -> None:
        n = self.spatial_dims
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() != n + 2:
            raise ValueError(
                f"{type(self).__name__} expects a batch of shape (N, {self.in_channels}, "
                f"{', '.join('DHW'[3 - n:])}), got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} was built with in_channels={self.in_channels} but the input has "
                f"{x.shape[1]} channels (shape {tuple(x.shape)}); build the model with "
                f"in_channels={x.shape[1]} or convert the input"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and residual stages: ``(N, C_in, *S) -> (N, num_features, *S')`` (not pooled)."""
        if not torch.jit.is_scripting():
            self._check_input(x)
        return self._features(x)  # type: ignore[attr-defined]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool and classifier: ``(N, num_features, *S') -> (N, num_classes)``.

        With ``pre_logits=True`` returns the pooled features ``(N, num_features)``.
        """
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, *S) -> (N, num_classes)`` logits."""
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replaces the classifier by a fresh ``Linear(num_features, num_classes)`` (identity for 0)."""
        ref = next(iter(self.parameters()))  # type: ignore[attr-defined]
        self.fc = classifier_head(self.num_features, num_classes, device=ref.device, dtype=ref.dtype)
        self.num_classes = num_classes
