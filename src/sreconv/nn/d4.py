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

import torch
import torch.nn as nn

from ..groups import GridSymmetry, grid_symmetries
from ._validation import check_int
from .regular import (
    GROUP_BASES,
    GROUP_POOLS,
    HARMONIC_SIGMA,
    RegularBatchNorm,
    RegularGroupConv,
    RegularGroupPool,
    RegularLiftConv,
    group_cayley_table,
    group_inverse,
    group_regular_action,
    group_spatial_basis,
)

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
    "D4LiftConv2d",
    "D4GroupConv2d",
    "D4BatchNorm2d",
    "D4GroupPool2d",
]

#: Number of elements of D4 (orientation channels per regular field).
D4_ORDER = 8
#: Spatial bases of the base kernels (see :func:`d4_spatial_basis`).
D4_BASES = GROUP_BASES
#: Poolings over the group.
D4_POOLS = GROUP_POOLS


def d4_elements() -> list[GridSymmetry]:
    """The 8 elements of D4 in the order of the orientation channels (identity first).

    Example:
        >>> [g.name for g in d4_elements()][:3]
        ['identity', 'flip_horizontal', 'flip_vertical']
    """
    return grid_symmetries(2)


def d4_cayley_table() -> torch.Tensor:
    """``table[a, b]`` = index of the composition ``a b`` (apply ``b``, then ``a``), shape ``(8, 8)``.

    Example:
        >>> table = d4_cayley_table()
        >>> bool((table[0] == torch.arange(8)).all())  # the identity
        True
    """
    return group_cayley_table(2)


def d4_inverse() -> torch.Tensor:
    """``inverse[g]`` = index of ``g^-1``, shape ``(8,)``.

    Example:
        >>> d4_inverse()[d4_inverse()].tolist() == list(range(8))
        True
    """
    return group_inverse(2)


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
    return group_regular_action(x, element, 2)


def d4_spatial_basis(
    kind: str,
    kernel_size: int,
    num_rings: int | None = None,
    max_frequency: int = 2,
    gaussian_sigma: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Basis ``(B, k, k)`` of the spatial part of D4 base kernels: :func:`sreconv.nn.group_spatial_basis` in 2D.

    The arguments, result and errors are those of :func:`~sreconv.nn.group_spatial_basis`; for ``'harmonic'`` the
    angular parts are ``cos m theta, sin m theta`` for ``1 <= m <= max_frequency``, so ``B`` is ``k*k``, ``R`` or
    ``R + 2 * max_frequency * (R - 1)`` (fewer when an angular function vanishes on every cell of a small kernel).

    Example:
        >>> [tuple(d4_spatial_basis(kind, 5).shape) for kind in D4_BASES]
        [(25, 5, 5), (3, 5, 5), (3, 5, 5), (11, 5, 5)]
    """
    return group_spatial_basis(kind, kernel_size, 2, num_rings, max_frequency, gaussian_sigma, dtype)


class D4LiftConv2d(RegularLiftConv):
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
        super().__init__(2, in_channels, out_fields, kernel_size, basis, num_rings, max_frequency, gaussian_sigma,
                         bias, device, dtype)


class D4GroupConv2d(RegularGroupConv):
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
        super().__init__(2, in_fields, out_fields, kernel_size, basis, num_rings, max_frequency, gaussian_sigma,
                         bias, device, dtype)


class D4BatchNorm2d(RegularBatchNorm, nn.BatchNorm2d):
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
        self._set_group(2)


class D4GroupPool2d(RegularGroupPool):
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
        super().__init__(mode, 2)
