"""Regular fields of a grid symmetry group: what the D4 (2D) and cube (3D) group convolutions share.

The symmetry group of the pixel (voxel) grid, D4 in 2D (8 elements) and the cube group O_h in 3D (48 elements,
:func:`sreconv.groups.grid_symmetries`), permutes the cells of a centred kernel, so a group convolution (Cohen &
Welling, "Group Equivariant Convolutional Networks", ICML 2016) is exactly equivariant on the grid whatever its
spatial kernel is. A *regular field* carries one channel per group element; a tensor of them is laid out
field-major, ``(N, fields * G, *spatial)``, channel ``f * G + g`` being orientation ``g`` of field ``f``, with the
elements numbered as in ``grid_symmetries``. A transformed input ``t x`` gives the output ``t . y`` with
``(t . y)[f, g] = t(y[f, t^-1 g])`` (:func:`group_regular_action`).

This module holds the group tables, that action, the spatial bases of the base kernels (free cells, SRE rings, or
radial profiles times low-order angular harmonics) and the modules' common parts; :mod:`sreconv.nn.d4` and
:mod:`sreconv.nn.cube` define the layers of each group.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..groups import GridSymmetry, grid_symmetries
from ._validation import check_choice, check_int
from .ring_basis import default_num_rings, make_ring_basis, resolve_num_rings

__all__ = [
    "GROUP_BASES",
    "GROUP_POOLS",
    "HARMONIC_SIGMA",
    "group_cayley_table",
    "group_inverse",
    "group_order",
    "group_regular_action",
    "group_spatial_basis",
    "transformed_bases",
    "RegularConvBase",
    "RegularLiftConv",
    "RegularGroupConv",
    "RegularBatchNorm",
    "RegularGroupPool",
]

#: Spatial bases of the base kernels (see :func:`group_spatial_basis`).
GROUP_BASES = ("full", "hard", "gaussian", "harmonic")
#: Poolings over the group.
GROUP_POOLS = ("max", "mean")
#: Default ring width of the ``'harmonic'`` basis, in units of the ring spacing.
HARMONIC_SIGMA = 0.6
#: Highest angular frequency (spherical-harmonic degree) of a 3D ``'harmonic'`` basis.
MAX_FREQUENCY_3D = 2


_GROUP_NAMES = {2: "D4", 3: "the cube group"}
_AXES = {2: "H, W", 3: "D, H, W"}


def _check_spatial_dims(spatial_dims: int) -> int:
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    return spatial_dims


@lru_cache(maxsize=2)
def group_order(spatial_dims: int) -> int:
    """Number of elements (orientation channels per regular field) of the grid group: 8 in 2D, 48 in 3D.

    Example:
        >>> group_order(2), group_order(3)
        (8, 48)
    """
    return len(grid_symmetries(_check_spatial_dims(spatial_dims)))


@lru_cache(maxsize=2)
def _tables(spatial_dims: int) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...]]:
    elements = grid_symmetries(spatial_dims)
    probe = torch.arange(float(3**spatial_dims)).reshape((3,) * spatial_dims)  # its images all differ
    images = [g.apply(probe) for g in elements]

    def index(image: torch.Tensor) -> int:
        return next(k for k, ref in enumerate(images) if torch.equal(ref, image))

    table = tuple(tuple(index(a.apply(b.apply(probe))) for b in elements) for a in elements)
    inverse = tuple(index(g.inverse().apply(probe)) for g in elements)
    return table, inverse


def group_cayley_table(spatial_dims: int) -> torch.Tensor:
    """``table[a, b]`` = index of ``a b`` (apply ``b``, then ``a``) in ``grid_symmetries(spatial_dims)``.

    Args:
        spatial_dims: 2 (D4, ``(8, 8)``) or 3 (the cube group, ``(48, 48)``).

    Example:
        >>> table = group_cayley_table(3)
        >>> tuple(table.shape), bool((table[0] == torch.arange(48)).all())
        ((48, 48), True)
    """
    return torch.tensor(_tables(_check_spatial_dims(spatial_dims))[0], dtype=torch.long)


def group_inverse(spatial_dims: int) -> torch.Tensor:
    """``inverse[g]`` = index of ``g^-1`` in ``grid_symmetries(spatial_dims)``.

    Example:
        >>> inverse = group_inverse(3)
        >>> inverse[inverse].tolist() == list(range(48))
        True
    """
    return torch.tensor(_tables(_check_spatial_dims(spatial_dims))[1], dtype=torch.long)


def _element_index(element: int | GridSymmetry, spatial_dims: int) -> int:
    order = group_order(spatial_dims)
    if isinstance(element, GridSymmetry):
        if element.ndim != spatial_dims:
            raise ValueError(f"element must be a GridSymmetry of {_GROUP_NAMES[spatial_dims]} ({spatial_dims} dims), "
                             f"got one of {element.ndim} dims")
        return grid_symmetries(spatial_dims).index(element)
    if isinstance(element, bool) or not isinstance(element, int) or not 0 <= element < order:
        raise ValueError(f"element must be an index 0..{order - 1} or a GridSymmetry of {_GROUP_NAMES[spatial_dims]}, "
                         f"got {element!r}")
    return element


def group_regular_action(x: torch.Tensor, element: int | GridSymmetry, spatial_dims: int) -> torch.Tensor:
    """Transforms a regular-field tensor by a group element: spatial transform and orientation permutation.

    ``(t . x)[f, g] = t(x[f, t^-1 g])``: what an exactly equivariant layer's output does when its input is
    transformed by ``t``.

    Args:
        x: ``(N, fields * G, *spatial)`` (or unbatched ``(fields * G, *spatial)``), field-major; ``G`` = 8 in 2D,
            48 in 3D.
        element: an index into ``grid_symmetries(spatial_dims)`` or the :class:`~sreconv.groups.GridSymmetry`.
        spatial_dims: 2 or 3.

    Returns:
        Tensor of the same shape (spatial sizes permuted for elements that swap axes).

    Raises:
        ValueError: the channel count is not a multiple of ``G``, or a bad element.

    Example:
        >>> x = torch.randn(1, 96, 3, 4, 5)
        >>> group_regular_action(x, 8, 3).shape  # element 8 swaps the last two axes
        torch.Size([1, 96, 3, 5, 4])
    """
    order = group_order(spatial_dims)
    t = _element_index(element, spatial_dims)
    channel_dim = -spatial_dims - 1
    if x.dim() < spatial_dims + 1 or x.shape[channel_dim] % order:
        raise ValueError(f"regular fields need (N, fields * {order}, {_AXES[spatial_dims]}) with channels a multiple "
                         f"of {order}, got shape {tuple(x.shape)}")
    perm = group_cayley_table(spatial_dims)[group_inverse(spatial_dims)[t]]  # perm[g] = t^-1 g
    lead, spatial = x.shape[:channel_dim], x.shape[channel_dim + 1:]
    grouped = x.reshape(*lead, x.shape[channel_dim] // order, order, *spatial)
    permuted = grouped.index_select(channel_dim, perm.to(x.device))
    moved = grid_symmetries(spatial_dims)[t].apply(permuted)
    return moved.reshape(*lead, x.shape[channel_dim], *moved.shape[channel_dim + 1:])


def _orthonormalise(basis: torch.Tensor) -> torch.Tensor:
    # Symmetric (Loewdin) orthonormalisation: the same span, a well-conditioned parametrisation (overlapping
    # rings would otherwise couple their weights' updates; measured: unstable training across seeds).
    values, vectors = torch.linalg.eigh(basis @ basis.T)
    return vectors @ torch.diag(values.rsqrt()) @ vectors.T @ basis


def _angular_functions(offsets: list[np.ndarray], max_frequency: int) -> list[np.ndarray]:
    """Low-order angular harmonics of the cell directions.

    2D: ``cos m theta, sin m theta`` for ``m = 1..max_frequency``; 3D: the real spherical harmonics of degree
    ``1..max_frequency`` (unnormalised). Their value at the centre cell is masked by the caller.
    """
    if len(offsets) == 2:
        ys, xs = offsets
        theta = np.arctan2(-ys, xs)  # counter-clockwise, y up
        return [f(m * theta) for m in range(1, max_frequency + 1) for f in (np.cos, np.sin)]
    zs, ys, xs = offsets
    r = np.sqrt(xs**2 + ys**2 + zs**2)
    safe = np.where(r > 0, r, 1.0)
    x, y, z = xs / safe, ys / safe, zs / safe
    degrees = [[x, y, z], [x * y, y * z, x * z, x**2 - y**2, 3 * z**2 - 1]]
    return [f for degree in degrees[:max_frequency] for f in degree]


def _harmonic_basis(k: int, spatial_dims: int, num_rings: int | None, max_frequency: int,
                    sigma: float | None) -> torch.Tensor:
    rings = resolve_num_rings((k,) * spatial_dims, num_rings, True)
    c = k // 2
    offsets = list(np.mgrid[(slice(-c, c + 1),) * spatial_dims].astype(np.float64))
    dist = np.sqrt(sum(o**2 for o in offsets))
    radii = np.linspace(0.0, c, rings) if rings > 1 else np.zeros(1)
    spacing = float(radii[1]) if rings > 1 else 1.0
    width = HARMONIC_SIGMA * spacing if sigma is None else sigma
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"gaussian_sigma must be a positive number of cells or None, got {sigma!r}")
    disc = (dist <= c + 0.5).astype(np.float64)
    # Sampled gaussian rings, *not* normalised per cell (unlike the SRE gaussian rings): a ring keeps its shape
    # wherever it lies, as in the steerable bases of Weiler & Cesa (e2cnn).
    radial = [np.exp(-(dist - float(rho)) ** 2 / (2.0 * float(width) ** 2)) * disc for rho in radii]
    functions = list(radial)
    for angular in _angular_functions(offsets, max_frequency):
        # The centre cell has no direction: angular parts live on the rings of positive radius only.
        functions += [profile * np.where(dist == 0, 0.0, angular) for profile in radial[1:]]
    basis = torch.from_numpy(np.stack(functions).reshape(len(functions), -1))
    basis = basis[basis.abs().amax(1) > 1e-9]  # e.g. sin(2 theta) vanishes on a 3x3 kernel's axes
    return _orthonormalise(basis).reshape(-1, *(k,) * spatial_dims)


def group_spatial_basis(
    kind: str,
    kernel_size: int,
    spatial_dims: int = 2,
    num_rings: int | None = None,
    max_frequency: int = 2,
    gaussian_sigma: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Basis ``(B, k, ..., k)`` of the spatial part of group-convolution base kernels.

    Args:
        kind: ``'full'`` (``k^n`` one-hot cells), ``'hard'`` / ``'gaussian'`` (SRE rings / shells, radially
            symmetric; see :func:`sreconv.nn.make_ring_basis`) or ``'harmonic'``: gaussian profiles
            ``exp(-(d - rho_r)^2 / (2 sigma^2))`` around ``R`` radii ``rho_r`` evenly spaced from 0 to ``k//2``
            (sampled on the disc / ball, not normalised per cell), the profiles of positive radius also times the
            angular harmonics up to ``max_frequency`` (2D: ``cos m theta, sin m theta``; 3D: the real spherical
            harmonics of degree 1 and 2), then orthonormalised (symmetric orthonormalisation: the same span,
            well-conditioned weights).
        kernel_size: odd ``k``.
        spatial_dims: 2 or 3.
        num_rings: rings of the radial profiles (default ``k//2 + 1``).
        max_frequency: highest angular frequency of ``'harmonic'`` (at most 2 in 3D).
        gaussian_sigma: width of the gaussian rings in cells (default: half the ring spacing for ``'gaussian'``,
            :data:`HARMONIC_SIGMA` times it for ``'harmonic'``).
        dtype: dtype of the result.

    Returns:
        Tensor ``(B, k, ..., k)``; ``B`` = ``k^n``, ``R`` or ``R`` plus ``R - 1`` per angular function (fewer when
        an angular function vanishes on every cell of a small kernel).

    Raises:
        ValueError: unknown ``kind``, even or non-positive ``kernel_size``, a bad ``max_frequency``.

    Example:
        >>> [tuple(group_spatial_basis(kind, 3, spatial_dims=3).shape) for kind in GROUP_BASES]
        [(27, 3, 3, 3), (2, 3, 3, 3), (2, 3, 3, 3), (10, 3, 3, 3)]
    """
    check_choice(kind, "basis", GROUP_BASES)
    spatial_dims = _check_spatial_dims(spatial_dims)
    k = check_int(kernel_size, "kernel_size", minimum=1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd (kernels are centred on a cell), got {k}")
    if kind == "full":
        return torch.eye(k**spatial_dims, dtype=dtype).reshape(k**spatial_dims, *(k,) * spatial_dims)
    if kind == "harmonic":
        check_int(max_frequency, "max_frequency", minimum=0)
        if spatial_dims == 3 and max_frequency > MAX_FREQUENCY_3D:
            raise ValueError(f"max_frequency must be at most {MAX_FREQUENCY_3D} in 3D (spherical harmonics of "
                             f"degree 1 and 2), got {max_frequency}")
        return _harmonic_basis(k, spatial_dims, num_rings, max_frequency, gaussian_sigma).to(dtype)
    return make_ring_basis(kind, k, num_rings, True, gaussian_sigma, spatial_dims, dtype)


def transformed_bases(basis: torch.Tensor) -> torch.Tensor:
    """``(G, B, k, ..., k)``: a basis ``(B, k, ..., k)`` transformed by every element of its grid group."""
    return torch.stack([g.apply(basis) for g in grid_symmetries(basis.dim() - 1)])


class RegularConvBase(nn.Module):
    """Base of the lifting and group convolutions of :mod:`sreconv.nn.d4` and :mod:`sreconv.nn.cube`.

    Holds the spatial basis buffers, the initialisation, the 'same' padding, the dense kernel's layout and the
    export (:meth:`to_conv`); subclasses define ``weight`` and :meth:`kernel`.
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    basis: torch.Tensor
    transformed_basis: torch.Tensor

    def __init__(self, spatial_dims: int, in_channels_total: int, out_fields: int, kernel_size: int, basis: str,
                 num_rings: int | None, max_frequency: int, gaussian_sigma: float | None, bias: bool,
                 device: torch.device | str | None, dtype: torch.dtype | None) -> None:
        super().__init__()
        check_choice(basis, "basis", GROUP_BASES)
        check_int(max_frequency, "max_frequency", minimum=0)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {bias!r}")
        self.group_order = group_order(spatial_dims)
        self.spatial_dims = spatial_dims
        self.kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
        self.basis_kind = basis
        self.num_rings = (default_num_rings((self.kernel_size,) * spatial_dims) if num_rings is None
                          else check_int(num_rings, "num_rings", minimum=1))
        self.max_frequency = max_frequency
        self.gaussian_sigma = gaussian_sigma
        self.in_channels_total = in_channels_total
        self.out_fields = out_fields
        with torch.device("cpu"):  # a real computation even when the layer is built on the meta device
            spatial = group_spatial_basis(basis, self.kernel_size, spatial_dims, num_rings, max_frequency,
                                          gaussian_sigma, torch.float64)
            transformed = transformed_bases(spatial)
        real = dtype if dtype is not None else torch.get_default_dtype()
        self._buffer_masters: dict[str, torch.Tensor] = {}
        self._register_derived_buffer("basis", spatial, device, real)
        self._register_derived_buffer("transformed_basis", transformed, device, real)
        self._basis_norm2 = float(spatial.pow(2).sum()) / spatial.shape[0]
        if bias:
            self.bias = nn.Parameter(torch.empty(out_fields, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)

    @property
    def num_basis(self) -> int:
        """Number of spatial basis functions per base kernel."""
        return int(self.basis.shape[0])

    def _register_derived_buffer(self, name: str, value: torch.Tensor, device: torch.device | str | None,
                                 dtype: torch.dtype | None) -> None:
        # Non-persistent (the state_dict holds only weight and bias): rebuilt from its CPU master copy in
        # reset_parameters() and load_state_dict(), so that a layer built on the meta device works after to_empty().
        self._buffer_masters[name] = value
        self.register_buffer(name, value.to(device=device, dtype=dtype), persistent=False)

    def _restore_bases(self) -> None:
        with torch.no_grad():
            for name, value in self._buffer_masters.items():
                getattr(self, name).copy_(value)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        self._restore_bases()
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _init(self, fan_in_channels: int) -> None:
        self._restore_bases()
        # Kaiming (fan-in) for the *expanded* kernel: each cell's variance is std^2 * sum_b basis_b[cell]^2.
        std = nn.init.calculate_gain("relu") / math.sqrt(fan_in_channels * self.num_basis * self._basis_norm2)
        nn.init.normal_(self.weight, 0.0, std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _expanded_bias(self) -> torch.Tensor | None:
        return None if self.bias is None else self.bias.repeat_interleave(self.group_order)

    def _dense(self, blocks: torch.Tensor) -> torch.Tensor:
        """``(O, G, C, ..., *k)`` blocks -> the dense kernel ``(O * G, C_total, *k)``."""
        return blocks.reshape(self.out_fields * self.group_order, self.in_channels_total,
                              *(self.kernel_size,) * self.spatial_dims)

    def kernel(self) -> torch.Tensor:
        """The dense kernel ``(out_fields * G, in_channels_total, k, ..., k)`` of the equivalent ``nn.ConvNd``."""
        raise NotImplementedError

    def _check(self, x: torch.Tensor, channels: int) -> None:
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(f"{type(self).__name__} expects (N, C, {_AXES[self.spatial_dims]}), "
                             f"got shape {tuple(x.shape)}")
        if x.shape[1] != channels:
            raise ValueError(f"{type(self).__name__} expects {channels} input channels, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in_total, *spatial) -> (N, out_fields * G, *spatial)`` (stride 1, 'same' padding)."""
        self._check(x, self.in_channels_total)
        conv = F.conv2d if self.spatial_dims == 2 else F.conv3d
        return conv(x, self.kernel(), self._expanded_bias(), 1, self.kernel_size // 2)

    def to_conv(self) -> nn.Module:
        """A plain ``nn.Conv2d`` / ``nn.Conv3d`` with the expanded kernel: same outputs, no dependency on sreconv.

        Example:
            >>> from sreconv.nn import D4GroupConv2d
            >>> layer = D4GroupConv2d(2, 3, 3).eval()
            >>> x = torch.randn(1, 16, 9, 9)
            >>> bool(torch.allclose(layer.to_conv()(x), layer(x), atol=1e-6))
            True
        """
        cls = nn.Conv2d if self.spatial_dims == 2 else nn.Conv3d
        conv = cls(self.in_channels_total, self.out_fields * self.group_order, self.kernel_size,
                   padding=self.kernel_size // 2, bias=self.bias is not None, device=self.weight.device,
                   dtype=self.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(self.kernel())
            bias = self._expanded_bias()
            if bias is not None and conv.bias is not None:
                conv.bias.copy_(bias)
        conv.train(self.training)
        return conv

    def _extra(self) -> str:
        text = f"kernel_size={self.kernel_size}, basis={self.basis_kind!r}"
        if self.basis_kind != "full":
            text += f", num_rings={self.num_rings}"
        if self.basis_kind == "harmonic":
            text += f", max_frequency={self.max_frequency}"
        if self.bias is None:
            text += ", bias=False"
        return text


class RegularLiftConv(RegularConvBase):
    """Lifting convolution: plain channels -> regular fields, ``y[o, g] = x * (g K_o)`` for every element ``g``.

    The layers of each group (:class:`sreconv.nn.D4LiftConv2d`, :class:`sreconv.nn.CubeLiftConv3d`) document
    the arguments. ``weight``: ``(out_fields, in_channels, B)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_fields: int, kernel_size: int, basis: str,
                 num_rings: int | None, max_frequency: int, gaussian_sigma: float | None, bias: bool,
                 device: torch.device | str | None, dtype: torch.dtype | None) -> None:
        channels = check_int(in_channels, "in_channels", minimum=1)
        super().__init__(spatial_dims, channels, check_int(out_fields, "out_fields", minimum=1), kernel_size, basis,
                         num_rings, max_frequency, gaussian_sigma, bias, device, dtype)
        self.in_channels = channels
        self.weight = nn.Parameter(torch.empty(self.out_fields, self.in_channels, self.num_basis,
                                               device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal ring/basis weights (fan-in of the expanded kernel), zero bias."""
        self._init(self.in_channels)

    def kernel(self) -> torch.Tensor:
        """Dense kernel ``(out_fields * G, in_channels, k, ..., k)``: block ``[o * G + g]`` is ``g K_o``."""
        return self._dense(torch.einsum("oib,gb...->ogi...", self.weight, self.transformed_basis))

    def extra_repr(self) -> str:
        """Arguments shown by ``repr``."""
        return f"{self.in_channels}, {self.out_fields} fields, " + self._extra()


class RegularGroupConv(RegularConvBase):
    """Group convolution between regular fields, ``y[o, g] = sum_{i, h} x[i, h] * (g K_{o, i, g^-1 h})``.

    The layers of each group (:class:`sreconv.nn.D4GroupConv2d`, :class:`sreconv.nn.CubeGroupConv3d`) document
    the arguments. ``weight``: ``(out_fields, in_fields, G, B)`` (relative element, basis function).
    """

    relative_index: torch.Tensor

    def __init__(self, spatial_dims: int, in_fields: int, out_fields: int, kernel_size: int, basis: str,
                 num_rings: int | None, max_frequency: int, gaussian_sigma: float | None, bias: bool,
                 device: torch.device | str | None, dtype: torch.dtype | None) -> None:
        fields_in = check_int(in_fields, "in_fields", minimum=1)
        order = group_order(spatial_dims)
        super().__init__(spatial_dims, fields_in * order, check_int(out_fields, "out_fields", minimum=1),
                         kernel_size, basis, num_rings, max_frequency, gaussian_sigma, bias, device, dtype)
        self.in_fields = fields_in
        self.weight = nn.Parameter(torch.empty(self.out_fields, self.in_fields, order, self.num_basis,
                                               device=device, dtype=dtype))
        # relative_index[g, h] = g^-1 h
        with torch.device("cpu"):
            relative = group_cayley_table(spatial_dims)[group_inverse(spatial_dims)]
        self._register_derived_buffer("relative_index", relative, device, None)
        self._radial = basis in ("hard", "gaussian") or self.kernel_size == 1
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal weights (fan-in of the expanded kernel: ``in_fields * G`` channels), zero bias."""
        self._init(self.in_fields * self.group_order)

    def kernel(self) -> torch.Tensor:
        """Dense kernel ``(out_fields * G, in_fields * G, *k)``: block ``[o*G+g, i*G+h]`` is ``g K_{o,i,g^-1 h}``."""
        w = self.weight[:, :, self.relative_index]  # (O, I, g, h, B)
        if self._radial:  # every transformed copy of a radial basis is the basis itself
            return self._dense(torch.einsum("oighb,b...->ogih...", w, self.basis))
        return self._dense(torch.einsum("oighb,gb...->ogih...", w, self.transformed_basis))

    def extra_repr(self) -> str:
        """Arguments shown by ``repr``."""
        return f"{self.in_fields} fields, {self.out_fields} fields, " + self._extra()


class RegularBatchNorm:
    """Mixin for ``nn.BatchNormNd``: statistics and affine parameters shared by each field's orientations.

    One mean, variance, scale and shift per field, over the batch, all positions and the ``G`` orientations, so
    the normalisation commutes with the group in train and eval mode. Subclasses call :meth:`_set_group` in
    ``__init__``; the state_dict is that of ``nn.BatchNormNd(fields)``.
    """

    if TYPE_CHECKING:  # the attributes of nn.BatchNormNd it uses; not class annotations, which TorchScript reads
        group_order: int
        spatial_dims: int
        expected_input: str
        num_features: int
        momentum: float | None
        training: bool
        track_running_stats: bool
        num_batches_tracked: torch.Tensor | None
        running_mean: torch.Tensor | None
        running_var: torch.Tensor | None
        weight: nn.Parameter
        bias: nn.Parameter
        eps: float

    def _set_group(self, spatial_dims: int) -> None:
        self.group_order = group_order(spatial_dims)
        self.spatial_dims = spatial_dims
        # Built here, not in forward: TorchScript compiles forward and knows no type(self).
        self.expected_input = (f"{type(self).__name__}({self.num_features}) expects "
                               f"(N, {self.num_features * self.group_order}, {_AXES[spatial_dims]})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalises every field over the batch, its orientations and all positions."""
        fields = self.num_features
        if x.dim() != self.spatial_dims + 2 or x.shape[1] != fields * self.group_order:
            raise ValueError(f"{self.expected_input}, got shape {list(x.shape)}")
        # nn.BatchNormNd's own bookkeeping, inlined (TorchScript has no super()).
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        # (N, F*G, *spatial) -> (N, F, G*prod(spatial)): a field's orientation planes become one long plane.
        y = F.batch_norm(x.reshape(x.shape[0], fields, -1), self.running_mean if keep else None,
                         self.running_var if keep else None, self.weight, self.bias, use_batch, factor, self.eps)
        return y.reshape(x.shape)


class RegularGroupPool(nn.Module):
    """Pooling over the ``G`` orientations of each regular field: regular fields -> invariant channels.

    Args:
        mode: ``'max'`` or ``'mean'``.
        spatial_dims: 2 (D4, 8 orientations) or 3 (the cube group, 48).

    Shapes: ``(N, fields * G, *spatial) -> (N, fields, *spatial)``; the result transforms like a plain image.

    Example:
        >>> RegularGroupPool("mean", 3)(torch.randn(2, 96, 3, 3, 3)).shape
        torch.Size([2, 2, 3, 3, 3])
    """

    def __init__(self, mode: str = "max", spatial_dims: int = 2) -> None:
        super().__init__()
        self.mode = check_choice(mode, "mode", GROUP_POOLS)
        self.group_order = group_order(spatial_dims)
        self.spatial_dims = spatial_dims
        self.expected_input = (f"{type(self).__name__} expects (N, fields * {self.group_order}, "
                               f"{_AXES[spatial_dims]})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Max or mean over each field's orientation channels."""
        order = self.group_order
        if x.dim() != self.spatial_dims + 2 or x.shape[1] % order != 0:
            raise ValueError(f"{self.expected_input}, got shape {list(x.shape)}")
        grouped = x.reshape([x.shape[0], x.shape[1] // order, order] + list(x.shape[2:]))
        return grouped.amax(2) if self.mode == "max" else grouped.mean(2)

    def extra_repr(self) -> str:
        """Arguments shown by ``repr``."""
        return f"mode={self.mode!r}"
