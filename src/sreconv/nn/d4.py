"""D4 group-equivariant convolutions: orientation channels carried through a network, exactly on the pixel grid.

A radially symmetric (SRE) kernel cannot tell a horizontal edge from a vertical one. A *group convolution*
(G-CNN, Cohen & Welling, "Group Equivariant Convolutional Networks", ICML 2016, the p4m case) keeps that
information in 8 *orientation channels* per feature instead, one for each element of D4, the symmetry group
of the square (4 rotations by 90 degrees, 4 reflections), and stays exactly equivariant on the pixel grid
whatever the spatial kernel is, because every element of D4 permutes the cells of a centred k x k kernel.

Layout of a *regular field* tensor: ``(N, fields * 8, H, W)``, field-major: channel ``f * 8 + g`` is
orientation ``g`` of field ``f``, with the elements ``g`` numbered as in :func:`d4_elements`. A transformed
input ``t x`` gives the output ``t . y`` where ``(t . y)[f, g] = t(y[f, t^-1 g])`` (spatial transform *and*
permutation of the 8 orientation channels, :func:`regular_action`).

Layers:

* :class:`D4LiftConv2d`: plain channels -> regular fields, ``y[o, g] = x * (g K_o)`` (one orientation-sensitive
  kernel applied in its 8 transformed copies);
* :class:`D4GroupConv2d`: regular -> regular, ``y[o, g] = sum_{i, h} x[i, h] * (g K_{o, i, g^-1 h})``;
* :class:`D4BatchNorm2d`: batch norm whose statistics and affine parameters are shared by the 8 orientations;
* :class:`D4GroupPool2d`: max or mean over the 8 orientations, regular -> invariant channels.

Both convolutions run as *one* ``F.conv2d`` on all ``8 * fields`` channels with a kernel expanded from the
base parameters by a precomputed gather and one ``einsum`` (no loop over the group in ``forward``), so they
export to a plain ``nn.Conv2d`` (:meth:`D4GroupConv2d.to_conv`). The spatial part of the base kernels is a
linear combination of a fixed basis (:func:`d4_spatial_basis`): ``'full'`` (every cell free: the p4m G-CNN),
``'hard'`` / ``'gaussian'`` (SRE rings, isotropic: the relative orientation of the 8 channels is then the only
directional information) or ``'harmonic'`` (sampled gaussian rings times ``cos m theta, sin m theta`` for
``m <= max_frequency``, orthonormalised: radial profiles with a low-order angular part, as in Harmonic
Networks, Worrall et al., CVPR 2017, and steerable CNNs, Weiler & Cesa, NeurIPS 2019; a band-limited kernel
that changes smoothly under rotation, which is what the lifting layer needs to stay accurate between quarter
turns, see ``benchmarks/ROBUSTNESS.md``).

Strides are left to the centre-aligned poolings of :mod:`sreconv.nn.pooling`, which act on every channel
alike and are exact on odd and even sizes.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..groups import GridSymmetry, grid_symmetries
from ._validation import check_choice, check_int
from .ring_basis import default_num_rings, make_ring_basis, resolve_num_rings

__all__ = [
    "D4_ORDER",
    "D4_BASES",
    "D4_POOLS",
    "HARMONIC_SIGMA",
    "d4_elements",
    "d4_cayley_table",
    "d4_inverse",
    "regular_action",
    "d4_spatial_basis",
    "D4ConvBase",
    "D4LiftConv2d",
    "D4GroupConv2d",
    "D4BatchNorm2d",
    "D4GroupPool2d",
]

#: Number of elements of D4 (orientation channels per regular field).
D4_ORDER = 8
#: Spatial bases of the base kernels (see :func:`d4_spatial_basis`).
D4_BASES = ("full", "hard", "gaussian", "harmonic")
#: Poolings over the group.
D4_POOLS = ("max", "mean")
#: Default ring width of the ``'harmonic'`` basis, in units of the ring spacing.
HARMONIC_SIGMA = 0.6


def d4_elements() -> list[GridSymmetry]:
    """The 8 elements of D4 in the order of the orientation channels (identity first).

    Example:
        >>> [g.name for g in d4_elements()][:3]
        ['identity', 'flip_horizontal', 'flip_vertical']
    """
    return grid_symmetries(2)


@lru_cache(maxsize=1)
def _tables() -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...]]:
    elements = d4_elements()
    probe = torch.arange(9.0).reshape(3, 3)  # all 8 images of this array differ
    images = [g.apply(probe) for g in elements]

    def index(image: torch.Tensor) -> int:
        return next(k for k, ref in enumerate(images) if torch.equal(ref, image))

    table = tuple(tuple(index(a.apply(b.apply(probe))) for b in elements) for a in elements)
    inverse = tuple(index(g.inverse().apply(probe)) for g in elements)
    return table, inverse


def d4_cayley_table() -> torch.Tensor:
    """``table[a, b]`` = index of the composition ``a b`` (apply ``b``, then ``a``), shape ``(8, 8)``.

    Example:
        >>> table = d4_cayley_table()
        >>> bool((table[0] == torch.arange(8)).all())  # the identity
        True
    """
    return torch.tensor(_tables()[0], dtype=torch.long)


def d4_inverse() -> torch.Tensor:
    """``inverse[g]`` = index of ``g^-1``, shape ``(8,)``.

    Example:
        >>> d4_inverse()[d4_inverse()].tolist() == list(range(8))
        True
    """
    return torch.tensor(_tables()[1], dtype=torch.long)


def _element_index(element: int | GridSymmetry) -> int:
    if isinstance(element, GridSymmetry):
        if element.ndim != 2:
            raise ValueError(f"element must be a GridSymmetry of D4 (2 dims), got one of {element.ndim} dims")
        return d4_elements().index(element)
    if isinstance(element, bool) or not isinstance(element, int) or not 0 <= element < D4_ORDER:
        raise ValueError(f"element must be an index 0..{D4_ORDER - 1} or a GridSymmetry of D4, got {element!r}")
    return element


def regular_action(x: torch.Tensor, element: int | GridSymmetry) -> torch.Tensor:
    """Transforms a regular-field tensor by a D4 element: spatial transform and orientation permutation.

    ``(t . x)[f, g] = t(x[f, t^-1 g])``: what an exactly equivariant layer's output does when its input is
    transformed by ``t``.

    Args:
        x: ``(N, fields * 8, H, W)`` (or unbatched ``(fields * 8, H, W)``), field-major, square for rotations.
        element: an index into :func:`d4_elements` or the :class:`~sreconv.groups.GridSymmetry` itself.

    Returns:
        Tensor of the same shape (``H`` and ``W`` swapped for transposing elements).

    Raises:
        ValueError: the channel count is not a multiple of 8, or a bad element.

    Example:
        >>> lift = D4LiftConv2d(1, 2, 3).double()
        >>> x = torch.randn(1, 1, 7, 7, dtype=torch.float64)
        >>> rot90 = next(g for g in d4_elements() if g.name == "rot90")
        >>> bool(torch.allclose(lift(rot90.apply(x)), regular_action(lift(x), rot90)))
        True
    """
    t = _element_index(element)
    if x.dim() < 3 or x.shape[-3] % D4_ORDER:
        raise ValueError(f"regular fields need (N, fields * 8, H, W) with channels a multiple of 8, "
                         f"got shape {tuple(x.shape)}")
    perm = d4_cayley_table()[d4_inverse()[t]]  # perm[g] = t^-1 g
    fields = x.shape[-3] // D4_ORDER
    grouped = x.reshape(*x.shape[:-3], fields, D4_ORDER, *x.shape[-2:])
    permuted = grouped.index_select(-3, perm.to(x.device))
    return d4_elements()[t].apply(permuted).reshape(*x.shape[:-3], x.shape[-3], *permuted.shape[-2:])


def _harmonic_basis(k: int, num_rings: int | None, max_frequency: int, sigma: float | None) -> torch.Tensor:
    rings = resolve_num_rings((k, k), num_rings, True)
    c = k // 2
    ys, xs = np.mgrid[-c:c + 1, -c:c + 1]
    dist = torch.from_numpy(np.sqrt(xs**2 + ys**2).astype(np.float64))
    theta = torch.from_numpy(np.arctan2(-ys, xs).astype(np.float64))  # counter-clockwise, y up
    radii = np.linspace(0.0, c, rings) if rings > 1 else np.zeros(1)
    spacing = float(radii[1]) if rings > 1 else 1.0
    width = HARMONIC_SIGMA * spacing if sigma is None else sigma
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"gaussian_sigma must be a positive number of cells or None, got {sigma!r}")
    disc = (dist <= c + 0.5).double()
    # Sampled gaussian rings, *not* normalised per cell (unlike the SRE gaussian rings): a ring keeps its shape
    # wherever it lies, as in the steerable bases of Weiler & Cesa (e2cnn).
    radial = [torch.exp(-(dist - float(rho)) ** 2 / (2.0 * float(width) ** 2)) * disc for rho in radii]
    functions = list(radial)
    for m in range(1, max_frequency + 1):
        for angular in (torch.cos(m * theta), torch.sin(m * theta)):
            # The centre cell has no direction: angular parts live on the rings of positive radius only.
            functions += [profile * angular.masked_fill(dist == 0, 0.0) for profile in radial[1:]]
    basis = torch.stack(functions).flatten(1)
    basis = basis[basis.abs().amax(1) > 1e-9]  # e.g. sin(2 theta) vanishes on a 3x3 kernel's axes
    # Symmetric (Loewdin) orthonormalisation: the same span, a well-conditioned parametrisation (overlapping
    # rings would otherwise couple their weights' updates; measured: unstable training across seeds).
    values, vectors = torch.linalg.eigh(basis @ basis.T)
    return (vectors @ torch.diag(values.rsqrt()) @ vectors.T @ basis).reshape(-1, k, k)


def d4_spatial_basis(
    kind: str,
    kernel_size: int,
    num_rings: int | None = None,
    max_frequency: int = 2,
    gaussian_sigma: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Basis ``(B, k, k)`` of the spatial part of D4 base kernels.

    Args:
        kind: ``'full'`` (``k*k`` one-hot cells), ``'hard'`` / ``'gaussian'`` (SRE rings, radially symmetric;
            see :func:`sreconv.nn.make_ring_basis`) or ``'harmonic'``: gaussian profiles
            ``exp(-(d - rho_r)^2 / (2 sigma^2))`` around ``R`` ring radii ``rho_r`` evenly spaced from 0 to ``k//2``
            (sampled on the disc, not normalised per cell), the profiles of positive radius also times
            ``cos m theta, sin m theta`` for ``1 <= m <= max_frequency``, then orthonormalised (symmetric
            orthonormalisation: the same span, well-conditioned weights).
        kernel_size: odd ``k``.
        num_rings: rings of the radial profiles (default ``k//2 + 1``).
        max_frequency: highest angular frequency of ``'harmonic'``.
        gaussian_sigma: width of the gaussian rings in cells (default: half the ring spacing for ``'gaussian'``,
            :data:`HARMONIC_SIGMA` times it for ``'harmonic'``).
        dtype: dtype of the result.

    Returns:
        Tensor ``(B, k, k)``; ``B`` = ``k*k``, ``R`` or ``R + 2 * max_frequency * (R - 1)`` (fewer when an
        angular function vanishes on every cell of a small kernel).

    Raises:
        ValueError: unknown ``kind``, even or non-positive ``kernel_size``, negative ``max_frequency``.

    Example:
        >>> [tuple(d4_spatial_basis(kind, 5).shape) for kind in D4_BASES]
        [(25, 5, 5), (3, 5, 5), (3, 5, 5), (11, 5, 5)]
    """
    check_choice(kind, "basis", D4_BASES)
    k = check_int(kernel_size, "kernel_size", minimum=1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd (kernels are centred on a cell), got {k}")
    if kind == "full":
        return torch.eye(k * k, dtype=dtype).reshape(k * k, k, k)
    if kind == "harmonic":
        check_int(max_frequency, "max_frequency", minimum=0)
        return _harmonic_basis(k, num_rings, max_frequency, gaussian_sigma).to(dtype)
    return make_ring_basis(kind, k, num_rings, True, gaussian_sigma, 2, dtype)


def _transformed_bases(basis: torch.Tensor) -> torch.Tensor:
    """``(8, B, k, k)``: the basis transformed by every element of D4 (cell permutations of the kernel)."""
    return torch.stack([g.apply(basis) for g in d4_elements()])


class D4ConvBase(nn.Module):
    """Base of the D4 lifting and group convolutions.

    Holds the spatial basis buffers, the initialisation, the 'same' padding and the export (:meth:`to_conv`).
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    basis: torch.Tensor
    transformed_basis: torch.Tensor

    def __init__(self, in_channels_total: int, out_fields: int, kernel_size: int, basis: str,
                 num_rings: int | None, max_frequency: int, gaussian_sigma: float | None, bias: bool,
                 device: torch.device | str | None, dtype: torch.dtype | None) -> None:
        super().__init__()
        check_choice(basis, "basis", D4_BASES)
        check_int(max_frequency, "max_frequency", minimum=0)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {bias!r}")
        self.kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
        self.basis_kind = basis
        self.num_rings = (default_num_rings((self.kernel_size,) * 2) if num_rings is None
                          else check_int(num_rings, "num_rings", minimum=1))
        self.max_frequency = max_frequency
        self.gaussian_sigma = gaussian_sigma
        self.in_channels_total = in_channels_total
        self.out_fields = out_fields
        with torch.device("cpu"):  # a real computation even when the layer is built on the meta device
            spatial = d4_spatial_basis(basis, self.kernel_size, num_rings, max_frequency, gaussian_sigma,
                                       torch.float64)
            transformed = _transformed_bases(spatial)
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
        return None if self.bias is None else self.bias.repeat_interleave(D4_ORDER)

    def kernel(self) -> torch.Tensor:
        """The dense kernel ``(out_fields * 8, in_channels_total, k, k)`` of the equivalent ``nn.Conv2d``."""
        raise NotImplementedError

    def _check(self, x: torch.Tensor, channels: int) -> None:
        if x.dim() != 4:
            raise ValueError(f"{type(self).__name__} expects (N, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != channels:
            raise ValueError(f"{type(self).__name__} expects {channels} input channels, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in_total, H, W) -> (N, out_fields * 8, H, W)`` (stride 1, 'same' padding)."""
        self._check(x, self.in_channels_total)
        return F.conv2d(x, self.kernel(), self._expanded_bias(), 1, self.kernel_size // 2)

    def to_conv(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` with the expanded kernel: same outputs, no dependency on sreconv.

        Example:
            >>> layer = D4GroupConv2d(2, 3, 3).eval()
            >>> x = torch.randn(1, 16, 9, 9)
            >>> bool(torch.allclose(layer.to_conv()(x), layer(x), atol=1e-6))
            True
        """
        conv = nn.Conv2d(self.in_channels_total, self.out_fields * D4_ORDER, self.kernel_size,
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


class D4LiftConv2d(D4ConvBase):
    """Lifting convolution: plain channels -> regular D4 fields (Cohen & Welling, ICML 2016, p4m).

    ``y[o, g] = x * (g K_o)`` for the 8 elements ``g`` of D4: each base kernel ``K_o`` (orientation-sensitive
    unless the basis is radial) is applied in its 8 rotated/reflected copies, giving 8 orientation channels
    per output field. Exactly equivariant: ``lift(t x) == regular_action(lift(x), t)`` for every ``t`` in D4,
    on any input size.

    Args:
        in_channels: input channels (plain, "trivial" fields: a transformed image is just moved).
        out_fields: output regular fields (``out_fields * 8`` channels, field-major).
        kernel_size: odd ``k``; padding is ``k//2`` ("same"), stride 1.
        basis: spatial basis of ``K_o`` (:func:`d4_spatial_basis`; default ``'full'``: every cell free).
        num_rings, max_frequency, gaussian_sigma: basis options.
        bias: one learnable bias per output field (shared by its 8 orientations).
        device, dtype: factory arguments.

    Shapes: ``(N, in_channels, H, W) -> (N, out_fields * 8, H, W)``.

    The parameter ``weight`` has shape ``(out_fields, in_channels, B)``; the basis is a non-persistent buffer.

    Example:
        >>> lift = D4LiftConv2d(1, 4, 5)
        >>> lift(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 32, 28, 28])
    """

    def __init__(
        self,
        in_channels: int,
        out_fields: int,
        kernel_size: int,
        basis: str = "full",
        *,
        num_rings: int | None = None,
        max_frequency: int = 2,
        gaussian_sigma: float | None = None,
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        channels = check_int(in_channels, "in_channels", minimum=1)
        super().__init__(channels, check_int(out_fields, "out_fields", minimum=1), kernel_size, basis, num_rings,
                         max_frequency, gaussian_sigma, bias, device, dtype)
        self.in_channels = channels
        self.weight = nn.Parameter(torch.empty(self.out_fields, self.in_channels, self.num_basis,
                                               device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal ring/basis weights (fan-in of the expanded kernel), zero bias."""
        self._init(self.in_channels)

    def kernel(self) -> torch.Tensor:
        """Dense kernel ``(out_fields * 8, in_channels, k, k)``: block ``[o * 8 + g]`` is ``g K_o``."""
        k = self.kernel_size
        dense = torch.einsum("oib,gbxy->ogixy", self.weight, self.transformed_basis)
        return dense.reshape(self.out_fields * D4_ORDER, self.in_channels, k, k)

    def extra_repr(self) -> str:
        """Arguments shown by ``repr``."""
        return f"{self.in_channels}, {self.out_fields} fields, " + self._extra()


class D4GroupConv2d(D4ConvBase):
    """Group convolution between regular D4 fields (Cohen & Welling, ICML 2016, p4m).

    ``y[o, g] = sum_{i, h} x[i, h] * (g K_{o, i, g^-1 h})``: the base kernel connecting input orientation ``h``
    to output orientation ``g`` depends only on the relative element ``g^-1 h``, and is spatially transformed
    by ``g``. With a radial basis (``'hard'``/``'gaussian'``, SRE rings) the spatial transform is the identity
    and the layer is a ring convolution whose channel mixing is indexed by (relative element, ring).
    Exactly equivariant: ``conv(regular_action(x, t)) == regular_action(conv(x), t)`` for every ``t`` in D4.

    Args:
        in_fields: input regular fields (``in_fields * 8`` channels, field-major).
        out_fields: output regular fields.
        kernel_size: odd ``k`` (1 gives the equivariant 1x1 mixing used by shortcuts); "same" padding, stride 1.
        basis: spatial basis (:func:`d4_spatial_basis`; default ``'gaussian'`` rings).
        num_rings, max_frequency, gaussian_sigma: basis options.
        bias: one learnable bias per output field.
        device, dtype: factory arguments.

    Shapes: ``(N, in_fields * 8, H, W) -> (N, out_fields * 8, H, W)``.

    The parameter ``weight`` has shape ``(out_fields, in_fields, 8, B)`` (relative element, basis function).

    Example:
        >>> conv = D4GroupConv2d(2, 3, 5, basis="gaussian").double()
        >>> x = torch.randn(1, 16, 9, 9, dtype=torch.float64)
        >>> t = d4_elements()[5]
        >>> bool(torch.allclose(conv(regular_action(x, t)), regular_action(conv(x), t)))
        True
    """

    relative_index: torch.Tensor

    def __init__(
        self,
        in_fields: int,
        out_fields: int,
        kernel_size: int,
        basis: str = "gaussian",
        *,
        num_rings: int | None = None,
        max_frequency: int = 2,
        gaussian_sigma: float | None = None,
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        fields_in = check_int(in_fields, "in_fields", minimum=1)
        super().__init__(fields_in * D4_ORDER, check_int(out_fields, "out_fields", minimum=1), kernel_size, basis,
                         num_rings, max_frequency, gaussian_sigma, bias, device, dtype)
        self.in_fields = fields_in
        self.weight = nn.Parameter(torch.empty(self.out_fields, self.in_fields, D4_ORDER, self.num_basis,
                                               device=device, dtype=dtype))
        # relative_index[g, h] = g^-1 h
        with torch.device("cpu"):
            relative = d4_cayley_table()[d4_inverse()]
        self._register_derived_buffer("relative_index", relative, device, None)
        self._radial = basis in ("hard", "gaussian") or self.kernel_size == 1
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal weights (fan-in of the expanded kernel: ``in_fields * 8`` channels), zero bias."""
        self._init(self.in_fields * D4_ORDER)

    def kernel(self) -> torch.Tensor:
        """Dense kernel ``(out_fields * 8, in_fields * 8, k, k)``; block ``[o*8+g, i*8+h]`` is ``g K_{o,i,g^-1 h}``."""
        k = self.kernel_size
        w = self.weight[:, :, self.relative_index]  # (O, I, g, h, B)
        if self._radial:  # every transformed copy of a radial basis is the basis itself
            dense = torch.einsum("oighb,bxy->ogihxy", w, self.basis)
        else:
            dense = torch.einsum("oighb,gbxy->ogihxy", w, self.transformed_basis)
        return dense.reshape(self.out_fields * D4_ORDER, self.in_fields * D4_ORDER, k, k)

    def extra_repr(self) -> str:
        """Arguments shown by ``repr``."""
        return f"{self.in_fields} fields, {self.out_fields} fields, " + self._extra()


class D4BatchNorm2d(nn.BatchNorm2d):
    """Batch norm of regular D4 fields, with statistics and affine parameters shared by each field's orientations.

    One mean, variance, scale and shift per field, over the batch, all positions and the 8 orientations, so
    the normalisation commutes with the group in train and eval mode.

    Args:
        fields: number of regular fields (the input has ``fields * 8`` channels).
        eps, momentum, affine, track_running_stats, device, dtype: as ``nn.BatchNorm2d``.

    Shapes: ``(N, fields * 8, H, W) -> (N, fields * 8, H, W)``.

    The state_dict is that of ``nn.BatchNorm2d(fields)``.

    Example:
        >>> bn = D4BatchNorm2d(3)
        >>> bn(torch.randn(4, 24, 5, 5)).shape
        torch.Size([4, 24, 5, 5])
    """

    def __init__(self, fields: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(check_int(fields, "fields", minimum=1), eps, momentum, affine, track_running_stats,
                         device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalises every field over the batch, its 8 orientations and all positions."""
        fields = self.num_features
        if x.dim() != 4 or x.shape[1] != fields * 8:
            raise ValueError(f"D4BatchNorm2d({fields}) expects (N, {fields * 8}, H, W), got shape {list(x.shape)}")
        n, c, h, w = x.shape
        # nn.BatchNorm2d's own bookkeeping, inlined (TorchScript has no super()).
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        # (N, F*8, H, W) -> (N, F, 8*H, W): the 8 orientation planes of a field become one taller plane.
        y = F.batch_norm(x.reshape(n, fields, 8 * h, w), self.running_mean if keep else None,
                         self.running_var if keep else None, self.weight, self.bias, use_batch, factor, self.eps)
        return y.reshape(n, c, h, w)


class D4GroupPool2d(nn.Module):
    """Pooling over the 8 orientations of each regular field: regular fields -> invariant channels.

    Args:
        mode: ``'max'`` or ``'mean'``.

    Shapes: ``(N, fields * 8, H, W) -> (N, fields, H, W)``; the result transforms like a plain image
    (``pool(regular_action(x, t)) == t(pool(x))``).

    Example:
        >>> D4GroupPool2d("max")(torch.randn(2, 24, 5, 5)).shape
        torch.Size([2, 3, 5, 5])
    """

    def __init__(self, mode: str = "max") -> None:
        super().__init__()
        self.mode = check_choice(mode, "mode", D4_POOLS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Max or mean over each field's 8 orientation channels."""
        if x.dim() != 4 or x.shape[1] % 8 != 0:
            raise ValueError(f"D4GroupPool2d expects (N, fields * 8, H, W), got shape {list(x.shape)}")
        n, c, h, w = x.shape
        grouped = x.reshape(n, c // 8, 8, h, w)
        return grouped.amax(2) if self.mode == "max" else grouped.mean(2)

    def extra_repr(self) -> str:
        """Arguments shown by ``repr``."""
        return f"mode={self.mode!r}"
