"""SRE convolution layers: ``torch.nn.ConvNd`` / ``ConvTransposeNd`` with radially symmetric kernels.

Du et al., "SRE-Conv: Symmetric Rotation Equivariant Convolution for Biomedical Image Classification",
ISBI 2025, arXiv:2501.09753.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import tuning
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
from .regular import RegularConvBase
from .ring_basis import RING_BASES, make_ring_basis
from .ring_conv import (
    IMPLS,
    RingPlan,
    build_ring_plan,
    depthwise_conv,
    fused_conv,
    model_choice,
    modelled_costs,
    output_size,
    ring_conv,
)

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
    basis: torch.Tensor
    weight: nn.Parameter
    bias: nn.Parameter | None
    padding: str | tuple[int, ...]

    def __init__(
        self,
        *,
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
        device: torch.device | str | None,
        dtype: torch.dtype | None,
        sre_k: int | None,
        ring_basis: str,
        force_circular: bool,
        gaussian_sigma: float | None,
        impl: str,
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
        # float64 CPU master copy: reset_parameters() restores the buffer from it after ``to_empty()``
        self._basis_master = basis
        self.register_buffer("basis", torch.empty(basis.shape, device=device,
                                                  dtype=dtype or torch.get_default_dtype()), persistent=False)
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups, self.sre_k)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, self.sre_k)
        self.weight = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(self.out_channels, device=device, dtype=dtype)) if bias else None
        self._kernel_cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        # Plain Python (ints): survives deepcopy/pickle and is a constant for torch.compile.
        self._ring_plan: RingPlan | None = None
        self._set_plan()
        self.reset_parameters()

    def _set_plan(self) -> None:
        self._ring_plan = None if self._transposed else build_ring_plan(self._basis_master)
        plan = self._ring_plan
        self._tuning_key = (type(self).__name__, self.in_channels, self.out_channels, self.kernel_size, self.stride,
                            self.padding, self.dilation, self.groups, self.padding_mode, self.bias is not None,
                            None if plan is None else (plan.thresholds, len(plan.difference)))

    # ------------------------------------------------------------------ parameters
    def _fan_in(self) -> float:
        # torch's fan-in is weight.size(1) * prod(kernel_size) for convolutions and transposed ones alike;
        # here each support cell counts with the energy the basis gives it.
        return self.weight.shape[1] * float(self._basis_master.pow(2).sum())

    def reset_parameters(self) -> None:
        """Uniform init with torch's conv bound ``1/sqrt(fan_in)`` over the kernel's support.

        Also restores the ``basis`` buffer, so that a layer built on the ``'meta'`` device works after
        ``to_empty(device=...)`` and ``reset_parameters()``, as torch's layers do.
        """
        with torch.no_grad():
            self.basis.copy_(self._basis_master)
        bound = 1.0 / math.sqrt(self._fan_in())
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def __prepare_scriptable__(self) -> nn.Module:
        raise RuntimeError(
            f"{type(self).__name__} cannot be compiled by torch.jit.script; call sreconv.export_to_conv(model) "
            f"first, which replaces every SRE layer by the plain torch.nn convolution with the same outputs"
        )

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
        # The basis buffer is not persistent: restore it, so that to_empty() + load_state_dict() works.
        with torch.no_grad():
            self.basis.copy_(self._basis_master)
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
            self._basis_master = basis.detach().to("cpu", torch.float64).clone()
            self._set_plan()

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
        common: dict[str, Any] = dict(
            in_channels=self.in_channels, out_channels=self.out_channels, kernel_size=self.kernel_size,
            stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups,
            bias=self.bias is not None, padding_mode=self.padding_mode,
            device=self.weight.device, dtype=self.weight.dtype,
        )
        conv: Any
        if self._transposed:
            conv = cast(Any, _TORCH_CONV_TRANSPOSE[n])(output_padding=self.output_padding, **common)
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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        sre_k: int | None = None,
        ring_basis: str = "hard",
        force_circular: bool = True,
        gaussian_sigma: float | None = None,
        impl: str = "auto",
    ) -> None:
        super().__init__(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size, stride=stride,
                         padding=padding, dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode,
                         output_padding=0, device=device, dtype=dtype, sre_k=sre_k, ring_basis=ring_basis,
                         force_circular=force_circular, gaussian_sigma=gaussian_sigma, impl=impl)
        n = self._spatial_dims
        if self.padding == "same":
            pads = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            pairs = [(p // 2, p - p // 2) for p in pads]
        elif self.padding == "valid":
            pairs = [(0, 0)] * n
        else:
            pairs = [(p, p) for p in cast(tuple[int, ...], self.padding)]
        # F.pad wants the last dimension first.
        self._reversed_padding_repeated_twice = tuple(v for pair in reversed(pairs) for v in pair)

    def resolved_impl(self, input: torch.Tensor | None = None) -> str:
        """The path ``forward`` takes for ``input``: ``'dense'``, ``'ring'``, ``'depthwise'`` or ``'fused'``.

        ``impl='auto'`` asks the tuner (:mod:`sreconv.nn.tuning`): in ``'benchmark'`` mode the first call for
        each input shape (the batch rounded up to a power of two), memory format, dtype, device, train/eval (grad
        enabled and something requires grad) and thread count times the candidate paths on that input and caches
        the fastest; the cost model (:func:`sreconv.nn.ring_conv.modelled_costs`) skips certainly slower paths
        and decides alone for tiny inputs, in ``'model'`` mode, and inside ``torch.compile``/``torch.jit.trace``.
        Reduced precision (half/bfloat16) always goes dense; so does a basis that is not radial.

        Args:
            input: the tensor about to be convolved (``None``: the cost model for a batch of 16 at 32 pixels
                per side, without timing).

        Returns:
            The path name.
        """
        if self.impl == "dense" or self._ring_plan is None:
            return "dense"
        if self.impl != "auto":
            return self.impl
        ref = self.weight if input is None else input
        if ref.dtype not in (torch.float32, torch.float64):
            return "dense"
        training = torch.is_grad_enabled() and (
            self.weight.requires_grad or (input is not None and input.requires_grad)
            or (self.bias is not None and self.bias.requires_grad))
        n = self._spatial_dims
        if input is None:
            shape = (16, self.in_channels) + (32,) * n
        else:
            # int(): under torch.jit.trace sizes are traced tensors
            shape = tuple(int(v) for v in input.shape)
            shape = shape if input.dim() == n + 2 else (1,) + shape
        if tuning.get_tuning() == "off":
            return "dense"
        channels_last = _is_channels_last(ref)
        if input is None or tuning.timing_disallowed():
            return model_choice(self._modelled_costs(shape, training, ref.device.type, channels_last))
        # The batch enters the key rounded up to a power of two: a last, partial batch takes the full ones'
        # choice instead of timing every path again (in the quick start, 3 of its 5 rounds of tuning, ~6 s).
        bucket = 1 << max(shape[0] - 1, 0).bit_length()
        key = (self._tuning_key, (bucket,) + shape[1:], channels_last, input.dtype, str(input.device), training,
               torch.get_num_threads())
        cached = tuning.cached_choice(key)
        if cached is not None:
            return cached
        costs = self._modelled_costs(shape, training, input.device.type, channels_last)
        return tuning.choose(key, costs, model_choice(costs), lambda path: self._timing_run(path, input, training),
                             input.device)

    def _modelled_costs(self, shape: tuple[int, ...], training: bool, device_type: str, channels_last: bool
                        ) -> dict[str, float]:
        assert self._ring_plan is not None
        n = self._spatial_dims
        pads = self._reversed_padding_repeated_twice
        padded = [s + pads[2 * (n - 1 - i)] + pads[2 * (n - 1 - i) + 1] for i, s in enumerate(shape[2:])]
        out = output_size(padded, self.kernel_size, self.stride, self.dilation)
        return modelled_costs(self.in_channels, self.out_channels, self.groups, self._ring_plan, self.stride,
                              training, shape[0] * math.prod(out), shape[0] * math.prod(padded), device_type,
                              transposes=not channels_last)

    def _timing_run(self, path: str, input: torch.Tensor, training: bool) -> Callable[[], None]:
        """One run of ``path`` on a detached copy of ``input`` (forward, and backward when training)."""
        batched = input.dim() == self._spatial_dims + 2
        x = (input if batched else input.unsqueeze(0)).detach()
        if not training:
            def run_eval() -> None:
                with torch.no_grad():
                    self._run(path, x, self.weight, self.bias)
            return run_eval
        x = x.requires_grad_(input.requires_grad)
        weight = self.weight.detach().requires_grad_(self.weight.requires_grad)
        bias = None if self.bias is None else self.bias.detach().requires_grad_(self.bias.requires_grad)
        leaves = [t for t in (x, weight, bias) if t is not None and t.requires_grad]
        grad: list[torch.Tensor] = []

        def run_train() -> None:
            with torch.enable_grad():
                out = self._run(path, x, weight, bias)
                if not grad:
                    grad.append(torch.ones_like(out))
                torch.autograd.grad(out, leaves, grad[0])
        return run_train

    def _run(self, path: str, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``path`` on a batched input with the given parameters."""
        if path == "ring":
            return ring_conv(x, weight, self.basis, bias, self.stride, self._reversed_padding_repeated_twice,
                             self.dilation, self.groups, self.padding_mode, plan=self._ring_plan)
        if path == "fused":
            return fused_conv(x, weight, self.basis, bias, self.stride, self._reversed_padding_repeated_twice,
                              self.dilation, self.groups, self.padding_mode, plan=self._ring_plan)
        if path == "depthwise":
            return depthwise_conv(x, weight, self.basis, bias, self.stride, self._reversed_padding_repeated_twice,
                                  self.dilation, self.groups, self.padding_mode)
        conv = _CONV[self._spatial_dims]
        kernel = self.kernel() if weight is self.weight else expand_kernel(weight, self.basis)
        if self.padding_mode != "zeros":
            padded = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(padded, kernel, bias, self.stride, 0, self.dilation, self.groups)
        return conv(x, kernel, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Args: input ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``. Returns ``(N, C_out, *spatial_out)``."""
        self._check_input(input)
        path = self.resolved_impl(input)
        if path == "dense":
            return self._run(path, input, self.weight, self.bias)
        batched = input.dim() == self._spatial_dims + 2
        out = self._run(path, input if batched else input.unsqueeze(0), self.weight, self.bias)
        return out if batched else out.squeeze(0)


def _is_channels_last(x: torch.Tensor) -> bool:
    if x.dim() == 4:
        return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    if x.dim() == 5:
        return x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous()
    return False


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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        sre_k: int | None = None,
        ring_basis: str = "hard",
        force_circular: bool = True,
        gaussian_sigma: float | None = None,
        impl: str = "auto",
    ) -> None:
        super().__init__(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size, stride=stride,
                         padding=padding, dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode,
                         output_padding=output_padding, device=device, dtype=dtype, sre_k=sre_k,
                         ring_basis=ring_basis, force_circular=force_circular, gaussian_sigma=gaussian_sigma,
                         impl=impl)

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
        padding = cast(tuple[int, ...], self.padding)  # transposed layers take no padding strings
        output_padding: Sequence[int] = self.output_padding
        if output_size is not None:
            output_padding = cast(Any, _TORCH_CONV_TRANSPOSE[n])._output_padding(
                self, input, list(output_size), list(self.stride), list(padding), list(self.kernel_size),
                n, list(self.dilation),
            )
        return _CONV_TRANSPOSE[n](input, self.kernel(), self.bias, self.stride, padding, output_padding,
                                  self.groups, self.dilation)


class SREConv1d(_SREConv):
    """1D symmetric convolution: the kernel is even (mirror-symmetric) with one weight per radius.

    Takes exactly ``torch.nn.Conv1d``'s arguments plus:

    Args:
        sre_k: number of rings ``R`` (default ``k//2 + 1``).
        ring_basis: ``'hard'`` (official rule) or ``'gaussian'`` (smooth rings).
        force_circular: drop cells beyond radius ``k//2 + 0.5`` (no effect in 1D).
        gaussian_sigma: width of the gaussian rings in cells (default half the ring spacing).
        impl: ``'auto'`` (tuned, :mod:`sreconv.nn.tuning`), ``'dense'``, ``'ring'``, ``'depthwise'`` or ``'fused'``.

    Shapes: input ``(N, C_in, L)``, output ``(N, C_out, L_out)`` as for ``nn.Conv1d``; ``weight`` is
    ``(C_out, C_in/groups, R)``.

    Example:
        >>> layer = SREConv1d(4, 8, 5, padding=2)
        >>> layer(torch.randn(2, 4, 16)).shape
        torch.Size([2, 8, 16])
    """

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
        impl: how to compute it, all equal to float rounding: ``'auto'`` (the fastest, timed on the first call
            of each input shape, see :mod:`sreconv.nn.tuning`), ``'dense'`` (expand the kernel, ``F.conv2d``),
            ``'ring'`` (disc sums + 1x1 mixing, best for large kernels), ``'depthwise'`` (1x1 mixing into
            ``R * C_out`` channels + depthwise ring masks, best for small kernels and many channels) or
            ``'fused'`` (disc sums and mixing in one compiled CPU kernel, :mod:`sreconv.nn.disc_kernel`; best
            for few channels; runs ``'ring'`` where the kernel does not apply).

    Shapes: input ``(N, C_in, H, W)``, output ``(N, C_out, H_out, W_out)`` exactly as ``nn.Conv2d`` (in the
    input's memory format); ``weight`` is ``(C_out, C_in/groups, R)``, the non-persistent buffer ``basis`` is
    ``(R, k, k)``.

    Example:
        >>> layer = SREConv2d(4, 8, 5, padding="same")
        >>> layer(torch.randn(2, 4, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
    """

    _spatial_dims = 2


class SREConv3d(_SREConv):
    """3D symmetric rotation-equivariant convolution: commutes with all 48 symmetries of the cube.

    Takes exactly ``torch.nn.Conv3d``'s arguments plus ``sre_k``, ``ring_basis``, ``force_circular``,
    ``gaussian_sigma`` and ``impl`` (see :class:`SREConv2d`). Anisotropic kernels such as ``(3, 7, 7)`` use
    true 3D distances; they commute with the symmetries that keep the kernel's shape.

    Shapes: input ``(N, C_in, D, H, W)``; ``weight`` is ``(C_out, C_in/groups, R)``.

    Example:
        >>> layer = SREConv3d(4, 8, 3, padding=1)
        >>> layer(torch.randn(2, 4, 6, 6, 6)).shape
        torch.Size([2, 8, 6, 6, 6])
    """

    _spatial_dims = 3


class SREConvTranspose1d(_SREConvTranspose):
    """Transposed 1D SRE convolution (the adjoint of :class:`SREConv1d`; equivariant alike).

    Takes exactly ``torch.nn.ConvTranspose1d``'s arguments plus ``sre_k``, ``ring_basis``, ``force_circular``
    and ``gaussian_sigma``. ``weight`` follows torch's transposed layout ``(C_in, C_out/groups, R)``.
    ``forward(input, output_size=None)`` as in torch.

    Example:
        >>> layer = SREConvTranspose1d(4, 8, 3, padding=1)
        >>> layer(torch.randn(2, 4, 7)).shape
        torch.Size([2, 8, 7])
    """

    _spatial_dims = 1


class SREConvTranspose2d(_SREConvTranspose):
    """Transposed 2D SRE convolution (the adjoint of :class:`SREConv2d`; equivariant alike).

    Takes exactly ``torch.nn.ConvTranspose2d``'s arguments plus ``sre_k``, ``ring_basis``, ``force_circular``
    and ``gaussian_sigma``. ``weight`` follows torch's transposed layout ``(C_in, C_out/groups, R)``.
    ``forward(input, output_size=None)`` as in torch.

    Example:
        >>> layer = SREConvTranspose2d(4, 8, 3, padding=1)
        >>> layer(torch.randn(2, 4, 7, 7)).shape
        torch.Size([2, 8, 7, 7])
    """

    _spatial_dims = 2


class SREConvTranspose3d(_SREConvTranspose):
    """Transposed 3D SRE convolution (the adjoint of :class:`SREConv3d`; equivariant alike).

    Takes exactly ``torch.nn.ConvTranspose3d``'s arguments plus ``sre_k``, ``ring_basis``, ``force_circular``
    and ``gaussian_sigma``. ``weight`` follows torch's transposed layout ``(C_in, C_out/groups, R)``.
    ``forward(input, output_size=None)`` as in torch.

    Example:
        >>> layer = SREConvTranspose3d(4, 8, 3, padding=1)
        >>> layer(torch.randn(2, 4, 5, 5, 5)).shape
        torch.Size([2, 8, 5, 5, 5])
    """

    _spatial_dims = 3


SRE_LAYERS = (SREConv1d, SREConv2d, SREConv3d, SREConvTranspose1d, SREConvTranspose2d, SREConvTranspose3d)


def export_to_conv(model: nn.Module) -> nn.Module:
    """Replaces every SRE layer inside ``model`` (in place) by its plain ``torch.nn`` equivalent.

    SRE layers are the ring convolutions (:class:`SREConv2d`, ...) and the D4 lifting and group convolutions of
    :mod:`sreconv.nn.d4`; each becomes the ``nn.ConvNd`` with its expanded kernel.

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
    if isinstance(model, (_SREConvNd, RegularConvBase)):
        return model.to_conv()
    for name, child in model.named_children():
        setattr(model, name, export_to_conv(child))
    return model
