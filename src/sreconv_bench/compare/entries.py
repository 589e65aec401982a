"""The compared models: labels, how each is built, and which ones run by default."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["Entry", "ENTRIES", "DEFAULT_MODELS", "resolve_entry", "entry_available", "build_entry_model"]


@dataclass(frozen=True)
class Entry:
    """One compared model.

    Attributes:
        label: name in the tables.
        model: registry name (or the peer's name when ``factory`` is set).
        kwargs: extra keyword arguments of the model function.
        rotation_aug: training rotation augmentation (``'any'``, ``'rot90'``) or None.
        description: one line for the docs.
        optional_module: a package the entry needs; the entry is skipped when it is not installed.
        factory: ``"module:function"`` used instead of the registry (the optional peers).
    """

    label: str
    model: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    rotation_aug: str | None = None
    description: str = ""
    optional_module: str | None = None
    factory: str | None = None


def _pair(label: str, model: str, description: str, kwargs: dict[str, Any] | None = None,
          **peer: Any) -> list[Entry]:
    """The entry trained upright and its ``_rotaug`` twin (uniform random-rotation augmentation)."""
    kwargs = kwargs or {}
    return [Entry(label, model, kwargs, None, description, **peer),
            Entry(f"{label}_rotaug", model, kwargs, "any", f"{description} + random-rotation augmentation", **peer)]


_E2CNN = dict(optional_module="e2cnn", factory="sreconv_bench.peers.e2cnn:e2cnn_d4_resnet18")
_GMR = dict(optional_module="GMR_Conv", factory="sreconv_bench.peers.gmr:gmr_resnet18")

ENTRIES: dict[str, Entry] = {e.label: e for e in [
    *_pair("cnn", "plain_resnet18", "plain ResNet-18"),
    Entry("sre_hard", "sre_resnet18", {"ring_basis": "hard"}, description="SRE-ResNet-18, hard rings"),
    *_pair("sre_gauss", "sre_resnet18", "SRE-ResNet-18, gaussian rings", {"ring_basis": "gaussian"}),
    Entry("sre_d4stem", "sre_resnet18_d4stem", description="SRE-ResNet-18 + D4 lifting stem (max over group)"),
    *_pair("sre_d4stage1", "sre_resnet18_d4stage1",
           "SRE-ResNet-18, plain stem+stage 1 symmetrised over D4, gaussian rings", {"ring_basis": "gaussian"}),
    # 3x3 group convolutions, like the e2cnn peer, whatever the budget's SRE kernel sizes (the measured design).
    *_pair("sre_d4", "sre_d4_resnet18", "D4 group-equivariant SRE-ResNet-18 (regular fields in every stage)",
           {"sre_conv_size": 3}),
    *_pair("sre_d4_aligned", "sre_d4_aligned_resnet18",
           "D4 group-equivariant SRE-ResNet-18 behind a principal-axis alignment of the input", {"sre_conv_size": 3}),
    *_pair("e2cnn", "e2cnn_d4_resnet18", "e2cnn D4 regular-field ResNet-18", **_E2CNN),
    # the peer with the same alignment: what the canonicalisation alone is worth
    *_pair("e2cnn_aligned", "e2cnn_d4_resnet18", "e2cnn D4 ResNet-18 behind the same principal-axis alignment",
           {"align_input": True}, **_E2CNN),
    *_pair("gmr", "gmr_resnet18", "GMR-Conv ResNet-18 (learnable gaussian-mixture rings)", **_GMR),
]}

#: The default set of ``sreconv compare``.
DEFAULT_MODELS = ["cnn", "cnn_rotaug", "sre_gauss", "sre_gauss_rotaug", "sre_d4", "sre_d4_rotaug", "sre_d4_aligned",
                  "sre_d4_aligned_rotaug", "e2cnn", "e2cnn_rotaug", "e2cnn_aligned", "e2cnn_aligned_rotaug", "gmr",
                  "gmr_rotaug"]


def resolve_entry(label: str) -> Entry:
    """The entry of ``label``, or a plain entry for a registry name; raises ``ValueError`` listing both."""
    if label in ENTRIES:
        return ENTRIES[label]
    from sreconv.models.registry import model_info

    try:
        info = model_info(label)
    except ValueError as err:
        raise ValueError(f"unknown model {label!r}: not a compare entry ({', '.join(ENTRIES)}) and "
                         f"{str(err).split(': ', 1)[-1]}") from None
    return Entry(label, info.name, description=info.description)


def entry_available(entry: Entry) -> bool:
    """Whether the entry's optional package (if any) is installed."""
    return entry.optional_module is None or importlib.util.find_spec(entry.optional_module) is not None


def build_entry_model(entry: Entry, n_classes: int, n_channels: int, width: int,
                      sre_conv_size: list[int]) -> torch.nn.Module:
    """Builds the entry's model with the comparison's width and kernels (the same for every entry).

    Registry models that are exactly invariant and peers get ``sre_conv_size``; SRE models also get
    ``skip_first_maxpool=True``, as ``sreconv train`` does.
    """
    kwargs: dict[str, Any] = dict(num_classes=n_classes, in_channels=n_channels, inplanes=width)
    if entry.factory is not None:
        module, function = entry.factory.split(":")
        kwargs["sre_conv_size"] = list(sre_conv_size)
        return getattr(importlib.import_module(module), function)(**{**kwargs, **entry.kwargs})
    from sreconv.models.registry import create_model, model_info

    if model_info(entry.model).invariant:
        kwargs.update(sre_conv_size=list(sre_conv_size), skip_first_maxpool=True)
    return create_model(entry.model, **{**kwargs, **entry.kwargs})
