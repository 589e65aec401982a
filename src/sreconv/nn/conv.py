"""SRE convolution layers: ``torch.nn.ConvNd`` / ``ConvTransposeNd`` with radially symmetric kernels.

Du et al., "SRE-Conv: Symmetric Rotation Equivariant Convolution for Biomedical Image Classification",
ISBI 2025, arXiv:2501.09753.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TypeAlias

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import (
    PADDING_MODES,
    check_choice,
    check_groups,
    check_int,
    check_kernel_size,
    check_padding,
    check_tuple,
)
from .functional import expand_kernel
from .ring_basis import RING_BASES, make_ring_basis
from .ring_conv import IMPLS, RingPlan, build_ring_plan, modelled_costs, output_size, prefer_ring, ring_conv

_IntOrTuple: TypeAlias = int | tuple[int, ...]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_TORCH_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_TORCH_CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}

#: state_dict key under which the official package stores its ring masks, shape ``(1, 1, R, prod(kernel))``.
OFFICIAL_MASK_KEY = "weight_index_mat"


class _SREConvNd(nn.Module):
    """Shared machinery of the SRE layers: arguments, ring weights, basis, cached kernel and export.

    Subclasses set ``_spatial_dims`` and ``_transposed``.
    """

    _spatial_dims: int
    _transposed: bool

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntOrTuple,
        stride: _IntOrTuple,
        padding: str | _IntOrTuple,
        dilation: _IntOrTuple,
        groups: int,
        bias: bool,
        padding_mode: str,
        output_padding: _IntOrTuple,
        device: torch.device | None,
        dtype: torch.dtype | None,
        sre_k: int | None,
        ring_basis: str,
        force_circular: bool,
        gaussian_sigma: float | None,
        impl: str = "auto",
    ) -> None:
        super().__init__()
        n = self._spatial_dims
        self.impl = check_choice(impl, "impl", IMPLS)
        self.in_channels = check_int(in_channels, "in_channels", minimum=1)
        self.out_channels = check_int(out_channels, "out_channels", minimum=1)
        self.kernel_size = check_kernel_size(kernel_size, n)
        self.stride = check_tuple(stride, n, "stride", minimum=1)
        self.padding = check_padding(padding, n, self._transposed)
        self.dilation = check_tuple(dilation, n, "dilation", minimum=1)
        self.groups = check_groups(groups, self.in_channels, self.out_channels)
        self.padding_mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)
        self.output_padding = check_tuple(output_padding, n, "output_padding", minimum=0)
        self.ring_basis = check_choice(ring_basis, "ring_basis", RING_BASES)
        if not isinstance(force_circular, bool):
            raise TypeError(f"force_circular must be a bool, got {force_circular!r}")
        self.force_circular = force_circular
        self.gaussian_sigma = gaussian_sigma
        if self.padding == "same" and any(s != 1 for s in self.stride):
            raise ValueError(f"padding='same' needs stride=1 (as in torch.nn.Conv{n}d), got stride={self.stride}")
        if self._transposed:
            if self.padding_mode != "zeros":
                raise ValueError(f"padding_mode must be 'zeros' for transposed layers, got {padding_mode!r}")
            for op, s, d in zip(self.output_padding, self.stride, self.dilation):
                if op >= max(s, d):
                    raise ValueError(
                        f"output_padding must be smaller than stride or dilation, got output_padding="
                        f"{self.output_padding}, stride={self.stride}, dilation={self.dilation}"
                    )
        elif any(self.output_padding):
            raise ValueError(f"output_padding is only for transposed layers, got {self.output_padding}")

        basis = make_ring_basis(
            self.ring_basis, self.kernel_size, sre_k, force_circular, sigma=gaussian_sigma, dtype=torch.float64
        )
        self.sre_k = basis.shape[0]
        factory = {"device": device, "dtype": dtype}
        self.register_buffer("basis", basis.to(device=device, dtype=dtype or torch.get_default_dtype()),
                             persistent=False)
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups, self.sre_k)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, self.sre_k)
        self.weight = nn.Parameter(torch.empty(shape, **factory))
        self.bias = nn.Parameter(torch.empty(self.out_channels, **factory)) if bias else None
        self._kernel_cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        # Plain Python (ints): survives deepcopy/pickle and is a constant for torch.compile.
        self._ring_plan: RingPlan | None = None if self._transposed else build_ring_plan(basis)
        self._auto_choice: dict = {}
        self.reset_parameters()

    # ------------------------------------------------------------------ parameters
    def _fan_in(self) -> float:
        # torch's fan-in is weight.size(1) * prod(kernel_size) for convolutions and transposed ones alike;
        # here each support cell counts with the energy the basis gives it.
        return self.weight.shape[1] * float(self.basis.double().pow(2).sum())

    def reset_parameters(self) -> None:
        """Uniform init with torch's conv bound ``1/sqrt(fan_in)`` over the kernel's support."""
        bound = 1.0 / math.sqrt(self._fan_in())
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    # ------------------------------------------------------------------ kernel
    def _may_cache_kernel(self) -> bool:
        if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling():
            return False
        return not (torch.is_grad_enabled() and self.weight.requires_grad)

    def kernel(self) -> torch.Tensor:
        """The dense kernel, shape ``(C_out, C_in/groups, *kernel_size)`` (transposed: ``(C_in, C_out/groups, ...)``).

        When no gradient to the weights is needed (eval/inference), the kernel is cached and reused as long
        as the ring weights and the basis hold the same values on the same device: any change (optimizer
        step, ``load_state_dict``, ``.to()``, in-place edits, even through ``.data``) is seen at the next call.
        """
        if not self._may_cache_kernel():
            return expand_kernel(self.weight, self.basis)
        cache = self._kernel_cache
        weight, basis = self.weight.detach(), self.basis
        if (
            cache is not None
            and cache[0].dtype == weight.dtype
            and cache[0].device == weight.device
            and cache[1].dtype == basis.dtype
            and torch.equal(cache[0], weight)
            and torch.equal(cache[1], basis)
        ):
            return cache[2]
        kernel = expand_kernel(weight, basis)
        self._kernel_cache = (weight.clone(), basis.clone(), kernel)
        return kernel

    # ------------------------------------------------------------------ input checks
    def _check_input(self, input: torch.Tensor) -> None:
        n = self._spatial_dims
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a torch.Tensor input, got {type(input).__name__}")
        if input.dim() not in (n + 1, n + 2):
            raise ValueError(
                f"{type(self).__name__} expects input of shape (N, C, {', '.join('*' * n)}) or unbatched "
                f"(C, {', '.join('*' * n)}), i.e. {n + 2} or {n + 1} dims, got shape {tuple(input.shape)}"
            )
        channels = input.shape[-n - 1]
        if channels != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} has in_channels={self.in_channels} but the input has {channels} "
                f"channels (shape {tuple(input.shape)}, channels at dim {input.dim() - n - 1})"
            )

    # ------------------------------------------------------------------ state dict
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        masks = state_dict.pop(prefix + OFFICIAL_MASK_KEY, None)
        if masks is not None:
            self._adopt_official_masks(masks, error_msgs)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _adopt_official_masks(self, masks: torch.Tensor, error_msgs: list[str]) -> None:
        expected = (1, 1, self.sre_k, math.prod(self.kernel_size))
        if tuple(masks.shape) != expected:
            error_msgs.append(
                f"{OFFICIAL_MASK_KEY} of shape {tuple(masks.shape)} does not fit this layer "
                f"(kernel_size={self.kernel_size}, sre_k={self.sre_k}: expected {expected})"
            )
            return
        basis = masks.reshape(self.basis.shape).to(self.basis)
        if not torch.equal(basis, self.basis):
            warnings.warn(
                f"{OFFICIAL_MASK_KEY} in the checkpoint differs from this layer's '{self.ring_basis}' rings "
                f"(kernel_size={self.kernel_size}, sre_k={self.sre_k}); using the checkpoint's rings",
                stacklevel=4,
            )
            with torch.no_grad():
                self.basis.copy_(basis)
            if not self._transposed:
                self._ring_plan = build_ring_plan(self.basis)
                self._auto_choice = {}

    def official_masks(self) -> torch.Tensor:
        """The basis in the official package's ``weight_index_mat`` layout ``(1, 1, R, prod(kernel_size))``."""
        return self.basis.reshape(1, 1, self.sre_k, -1)

    # ------------------------------------------------------------------ export
    def to_conv(self) -> nn.Module:
        """A plain ``torch.nn`` layer with the dense kernel: same outputs, no dependency on sreconv.

        Returns:
            ``nn.ConvNd`` (or ``nn.ConvTransposeNd``) on the same device and dtype.

        Example:
            >>> layer = SREConv2d(3, 8, 5, padding=2).eval()
            >>> x = torch.randn(1, 3, 16, 16)
            >>> bool(torch.allclose(layer.to_conv()(x), layer(x), atol=1e-6))
            True
        """
        n = self._spatial_dims
        common = dict(
            in_channels=self.in_channels, out_channels=self.out_channels, kernel_size=self.kernel_size,
            stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups,
            bias=self.bias is not None, padding_mode=self.padding_mode,
            device=self.weight.device, dtype=self.weight.dtype,
        )
        if self._transposed:
            conv = _TORCH_CONV_TRANSPOSE[n](output_padding=self.output_padding, **common)
        else:
            conv = _TORCH_CONV[n](**common)
        with torch.no_grad():
            conv.weight.copy_(expand_kernel(self.weight, self.basis))
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        conv.train(self.training)
        return conv

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        defaults = {"padding": (0,) * self._spatial_dims, "dilation": (1,) * self._spatial_dims,
                    "output_padding": (0,) * self._spatial_dims, "groups": 1, "padding_mode": "zeros"}
        for name, default in defaults.items():
            value = getattr(self, name)
            if value != default:
                text += f", {name}={value!r}" if isinstance(value, str) else f", {name}={value}"
        if self.bias is None:
            text += ", bias=False"
        text += f", sre_k={self.sre_k}, ring_basis={self.ring_basis!r}"
        if not self.force_circular:
            text += ", force_circular=False"
        if self.gaussian_sigma is not None:
            text += f", gaussian_sigma={self.gaussian_sigma}"
        if self.impl != "auto":
            text += f", impl={self.impl!r}"
        return text


class _SREConv(_SREConvNd):
    _transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntOrTuple,
        stride: _IntOrTuple = 1,
        padding: str | _IntOrTuple = 0,
        dilation: _IntOrTuple = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        *,
        sre_k: int | None = None,
        ring_basis: str = "hard",
        force_circular: bool = True,
        gaussian_sigma: float | None = None,
        impl: str = "auto",
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, 0, device, dtype, sre_k, ring_basis, force_circular, gaussian_sigma,
                         impl)
        n = self._spatial_dims
        if self.padding == "same":
            pads = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            pairs = [(p // 2, p - p // 2) for p in pads]
        elif self.padding == "valid":
            pairs = [(0, 0)] * n
        else:
            pairs = [(p, p) for p in self.padding]
        # F.pad wants the last dimension first.
        self._reversed_padding_repeated_twice = tuple(v for pair in reversed(pairs) for v in pair)

    def resolved_impl(self, input: torch.Tensor | None = None) -> str:
        """The path ``forward`` takes: ``'dense'`` or ``'ring'``.

        ``impl='auto'`` compares a cost model of both paths (:func:`sreconv.nn.ring_conv.modelled_costs`,
        calibrated on CPU) for this layer's kernel, rings, channels, groups and stride, and for the input's
        device and dtype and whether a backward pass will follow (grad enabled). Reduced precision
        (half/bfloat16) always goes dense; so does a basis that is not radial.

        Args:
            input: the tensor about to be convolved (``None``: this layer's parameters' device and dtype).
        """
        if self.impl == "dense" or self._ring_plan is None:
            return "dense"
        if self.impl == "ring":
            return "ring"
        ref = self.weight if input is None else input
        training = torch.is_grad_enabled() and (self.weight.requires_grad or ref.requires_grad)
        shape = None if input is None else tuple(input.shape)
        key = (ref.device.type, ref.dtype, training, shape)
        choice = self._auto_choice.get(key)
        if choice is None:
            if ref.dtype not in (torch.float32, torch.float64):
                choice = "dense"
            else:
                positions = None
                if shape is not None:
                    n = self._spatial_dims
                    batch = shape[0] if len(shape) == n + 2 else 1
                    spatial = [s + sum(self._reversed_padding_repeated_twice[2 * (n - 1 - i):2 * (n - i)])
                               for i, s in enumerate(shape[-n:])]
                    positions = batch * math.prod(
                        output_size(spatial, self.kernel_size, self.stride, self.dilation))
                dense, ring = modelled_costs(self.in_channels, self.out_channels, self.groups, self._ring_plan,
                                             math.prod(self.kernel_size), self.stride, training, ref.device.type,
                                             positions)
                choice = "ring" if prefer_ring(dense, ring) else "dense"
            if len(self._auto_choice) > 64:  # many input shapes: keep the cache bounded
                self._auto_choice.clear()
            self._auto_choice[key] = choice
        return choice

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Args: input ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``. Returns ``(N, C_out, *spatial_out)``."""
        self._check_input(input)
        if self.resolved_impl(input) == "ring":
            batched = input.dim() == self._spatial_dims + 2
            out = ring_conv(input if batched else input.unsqueeze(0), self.weight, self.basis, self.bias,
                            self.stride, self._reversed_padding_repeated_twice, self.dilation, self.groups,
                            self.padding_mode, plan=self._ring_plan)
            return out if batched else out.squeeze(0)
        conv = _CONV[self._spatial_dims]
        kernel = self.kernel()
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(padded, kernel, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, kernel, self.bias, self.stride, self.padding, self.dilation, self.groups)


class _SREConvTranspose(_SREConvNd):
    _transposed = True

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
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        *,
        sre_k: int | None = None,
        ring_basis: str = "hard",
        force_circular: bool = True,
        gaussian_sigma: float | None = None,
        impl: str = "auto",
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device, dtype, sre_k, ring_basis, force_circular,
                         gaussian_sigma, impl)

    def resolved_impl(self, input: torch.Tensor | None = None) -> str:
        """Always ``'dense'``: transposed layers accept ``impl='ring'`` but run the dense kernel.

        A transposed convolution scatters every input pixel over the kernel; its ring form would need the
        adjoint ring sums on a zero-stuffed grid, which does not beat the dense kernel at the sizes where
        transposed layers are used (decoders, small kernels).
        """
        return "dense"

    def forward(self, input: torch.Tensor, output_size: Sequence[int] | None = None) -> torch.Tensor:
        """Args: input ``(N, C_in, *spatial)``; ``output_size`` picks ``output_padding`` as in torch."""
        self._check_input(input)
        n = self._spatial_dims
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = _TORCH_CONV_TRANSPOSE[n]._output_padding(
                self, input, list(output_size), list(self.stride), list(self.padding), list(self.kernel_size),
                n, list(self.dilation),
            )
        return _CONV_TRANSPOSE[n](input, self.kernel(), self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation)


_EXAMPLE = """
    Example:
        >>> layer = {name}(4, 8, {k}, padding={p})
        >>> x = torch.randn(2, 4, {shape})
        >>> layer(x).shape
        torch.Size([2, 8, {out}])
"""


class SREConv1d(_SREConv):
    """1D symmetric convolution: the kernel is even (mirror-symmetric) with one weight per radius.

    Takes exactly ``torch.nn.Conv1d``'s arguments plus:

    Args:
        sre_k: number of rings ``R`` (default ``k//2 + 1``).
        ring_basis: ``'hard'`` (official rule) or ``'gaussian'`` (smooth rings).
        force_circular: drop cells beyond radius ``k//2 + 0.5`` (no effect in 1D).
        gaussian_sigma: width of the gaussian rings in cells (default half the ring spacing).

    Shapes: input ``(N, C_in, L)``, output ``(N, C_out, L_out)`` as for ``nn.Conv1d``; ``weight`` is
    ``(C_out, C_in/groups, R)``.
    """ + _EXAMPLE.format(name="SREConv1d", k=5, p=2, shape="16", out="16")

    _spatial_dims = 1


class SREConv2d(_SREConv):
    """2D symmetric rotation-equivariant convolution (SRE-Conv; Du et al., ISBI 2025, arXiv:2501.09753).

    The kernel is radially symmetric: one learnable weight per concentric ring, so the layer commutes
    exactly with rotations by multiples of 90 degrees, flips and transposes (the group D4) when padding is
    symmetric (stride 1 with ``'same'`` or ``k//2`` padding), and approximately with any rotation.
    Takes exactly ``torch.nn.Conv2d``'s arguments plus:

    Args:
        sre_k: number of rings ``R`` (default ``k//2 + 1`` circular, ``k//2 + 2`` otherwise).
        ring_basis: ``'hard'`` (official rule, checkpoints load) or ``'gaussian'`` (smooth rings, smaller
            error under arbitrary angles).
        force_circular: drop the corners beyond radius ``k//2 + 0.5`` so the support is a disc.
        gaussian_sigma: width of the gaussian rings in cells (default half the ring spacing).

    Shapes: input ``(N, C_in, H, W)``, output ``(N, C_out, H_out, W_out)`` exactly as ``nn.Conv2d``;
    ``weight`` is ``(C_out, C_in/groups, R)``, the non-persistent buffer ``basis`` is ``(R, k, k)``.
    """ + _EXAMPLE.format(name="SREConv2d", k=5, p="'same'", shape="16, 16", out="16, 16")

    _spatial_dims = 2


class SREConv3d(_SREConv):
    """3D symmetric rotation-equivariant convolution: commutes with all 48 symmetries of the cube.

    Takes exactly ``torch.nn.Conv3d``'s arguments plus ``sre_k``, ``ring_basis``, ``force_circular`` and
    ``gaussian_sigma`` (see :class:`SREConv2d`). Anisotropic kernels such as ``(3, 7, 7)`` use true 3D
    distances; they commute with the symmetries that keep the kernel's shape.

    Shapes: input ``(N, C_in, D, H, W)``; ``weight`` is ``(C_out, C_in/groups, R)``.
    """ + _EXAMPLE.format(name="SREConv3d", k=3, p=1, shape="6, 6, 6", out="6, 6, 6")

    _spatial_dims = 3


_TRANSPOSE_DOC = """Transposed {n}D SRE convolution (the adjoint of :class:`SREConv{n}d`; equivariant alike).

    Takes exactly ``torch.nn.ConvTranspose{n}d``'s arguments plus ``sre_k``, ``ring_basis``,
    ``force_circular`` and ``gaussian_sigma``. ``weight`` follows torch's transposed layout
    ``(C_in, C_out/groups, R)``. ``forward(input, output_size=None)`` as in torch.
"""


class SREConvTranspose1d(_SREConvTranspose):
    __doc__ = _TRANSPOSE_DOC.format(n=1) + _EXAMPLE.format(name="SREConvTranspose1d", k=3, p=1, shape="7",
                                                           out="7")
    _spatial_dims = 1


class SREConvTranspose2d(_SREConvTranspose):
    __doc__ = _TRANSPOSE_DOC.format(n=2) + _EXAMPLE.format(name="SREConvTranspose2d", k=3, p=1, shape="7, 7",
                                                           out="7, 7")
    _spatial_dims = 2


class SREConvTranspose3d(_SREConvTranspose):
    __doc__ = _TRANSPOSE_DOC.format(n=3) + _EXAMPLE.format(name="SREConvTranspose3d", k=3, p=1,
                                                           shape="5, 5, 5", out="5, 5, 5")
    _spatial_dims = 3


SRE_LAYERS = (SREConv1d, SREConv2d, SREConv3d, SREConvTranspose1d, SREConvTranspose2d, SREConvTranspose3d)


def export_to_conv(model: nn.Module) -> nn.Module:
    """Replaces every SRE layer inside ``model`` (in place) by its plain ``torch.nn`` equivalent.

    The result needs only torch: it scripts with ``torch.jit.script`` and exports with ``torch.onnx``.

    Args:
        model: any module; if it is itself an SRE layer, its export is returned.

    Returns:
        ``model`` (or the exported layer).

    Example:
        >>> net = nn.Sequential(SREConv2d(1, 4, 3, padding=1), nn.ReLU())
        >>> type(export_to_conv(net)[0]).__name__
        'Conv2d'
    """
    if isinstance(model, _SREConvNd):
        return model.to_conv()
    for name, child in model.named_children():
        setattr(model, name, export_to_conv(child))
    return model
