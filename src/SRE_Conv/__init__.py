"""Drop-in replacement for the official ``SRE_Conv`` package (SRE-Conv 1.0.2), backed by :mod:`sreconv`.

The public names, positional argument order and keyword arguments are the official ones, and state_dicts
saved by the official layers (with their ``weight_index_mat`` ring masks) load with identical outputs. What
differs is what the official package gets wrong: the eval-mode kernel never goes stale, ``force_circular``
is honoured, the 1D and transposed layers work, and bad arguments raise clear errors.

Example:
    >>> import torch
    >>> from SRE_Conv import SRE_Conv2d
    >>> conv = SRE_Conv2d(3, 16, 3)
    >>> x = torch.randn(2, 3, 32, 32)
    >>> y_rot = conv(torch.rot90(x, 1, (2, 3)))
    >>> bool(torch.allclose(torch.rot90(conv(x), 1, (2, 3)), y_rot, atol=1e-6))
    True
"""

from __future__ import annotations

from typing import TypeAlias

import torch

from sreconv.nn import conv as _conv
from sreconv.nn.conv import OFFICIAL_MASK_KEY

_IntOrTuple: TypeAlias = int | tuple[int, ...]


class _OfficialLayout:
    """Mixin: the official ``inference_accelerate`` switch and ``weight_index_mat`` in the state_dict."""

    inference_accelerate: bool

    def _may_cache_kernel(self) -> bool:
        return self.inference_accelerate and super()._may_cache_kernel()

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        masks = self.official_masks().float()
        destination[prefix + OFFICIAL_MASK_KEY] = masks if keep_vars else masks.detach()


def _official_conv(base: type) -> type:
    class Layer(_OfficialLayout, base):
        def __init__(
            self,
            in_channels: int,
            out_channels: int,
            kernel_size: _IntOrTuple,
            stride: _IntOrTuple = 1,
            padding: str | _IntOrTuple = 0,
            dilation: _IntOrTuple = 1,
            transposed: bool = False,
            groups: int = 1,
            bias: bool = True,
            padding_mode: str = "zeros",
            sre_k: int | None = None,
            inference_accelerate: bool = True,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
            *,
            force_circular: bool = True,
            ring_basis: str = "hard",
            gaussian_sigma: float | None = None,
        ) -> None:
            if transposed:
                raise ValueError(
                    f"transposed=True is not supported by {type(self).__name__} (the official layer silently "
                    f"runs a plain convolution); use SRE_ConvTranspose{base._spatial_dims}d instead"
                )
            self.inference_accelerate = bool(inference_accelerate)
            super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                             padding_mode, device, dtype, sre_k=sre_k, ring_basis=ring_basis,
                             force_circular=force_circular, gaussian_sigma=gaussian_sigma)

    name = base.__name__.replace("SREConv", "SRE_Conv")
    Layer.__name__ = Layer.__qualname__ = name
    Layer.__doc__ = (
        f"Official-signature :class:`sreconv.nn.{base.__name__}`: ``(in_channels, out_channels, kernel_size, "
        "stride=1, padding=0, dilation=1, transposed=False, groups=1, bias=True, padding_mode='zeros', "
        "sre_k=None, inference_accelerate=True, device=None, dtype=None)``."
    )
    return Layer


def _official_conv_transpose(base: type) -> type:
    class Layer(_OfficialLayout, base):
        def __init__(
            self,
            in_channels: int,
            out_channels: int,
            kernel_size: _IntOrTuple,
            stride: _IntOrTuple = 1,
            padding: _IntOrTuple = 0,
            output_padding: _IntOrTuple = 0,
            groups: int = 1,
            bias: bool = True,
            dilation: _IntOrTuple = 1,
            padding_mode: str = "zeros",
            sre_k: int | None = None,
            inference_accelerate: bool = True,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
            *,
            force_circular: bool = True,
            ring_basis: str = "hard",
            gaussian_sigma: float | None = None,
        ) -> None:
            self.inference_accelerate = bool(inference_accelerate)
            super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups,
                             bias, dilation, padding_mode, device, dtype, sre_k=sre_k, ring_basis=ring_basis,
                             force_circular=force_circular, gaussian_sigma=gaussian_sigma)

    name = base.__name__.replace("SREConvTranspose", "SRE_ConvTranspose")
    Layer.__name__ = Layer.__qualname__ = name
    Layer.__doc__ = (
        f"Official name of :class:`sreconv.nn.{base.__name__}` (the official one always raises): torch's "
        "ConvTranspose arguments, then ``sre_k=None, inference_accelerate=True, device=None, dtype=None``."
    )
    return Layer


SRE_Conv1d = _official_conv(_conv.SREConv1d)
SRE_Conv2d = _official_conv(_conv.SREConv2d)
SRE_Conv3d = _official_conv(_conv.SREConv3d)
SRE_ConvTranspose1d = _official_conv_transpose(_conv.SREConvTranspose1d)
SRE_ConvTranspose2d = _official_conv_transpose(_conv.SREConvTranspose2d)
SRE_ConvTranspose3d = _official_conv_transpose(_conv.SREConvTranspose3d)

# Models and the converter (official names; exact downsampling, honoured in_channels/sre_k, returns the model).
from sreconv.models.blocks import SREBasicBlock, SREBottleneck  # noqa: E402
from sreconv.models.convert import convert_to_SRE_conv  # noqa: E402
from sreconv.models.resnet import SRE_ResNet, sre_resnet18, sre_resnet34, sre_resnet50  # noqa: E402
from sreconv.models.resnet3d import sre_r3d_18  # noqa: E402

__all__ = [
    "SREBasicBlock",
    "SREBottleneck",
    "SRE_ResNet",
    "convert_to_SRE_conv",
    "sre_r3d_18",
    "sre_resnet18",
    "sre_resnet34",
    "sre_resnet50",
    "SRE_Conv1d",
    "SRE_Conv2d",
    "SRE_Conv3d",
    "SRE_ConvTranspose1d",
    "SRE_ConvTranspose2d",
    "SRE_ConvTranspose3d",
]
