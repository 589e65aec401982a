"""Cube-group equivariant convolutions: the 3D counterpart of :mod:`sreconv.nn.d4`, exactly on the voxel grid.

The symmetry group of the cube, O_h, has 48 elements (the 24 rotations by multiples of 90 degrees about the
axes, and those times a reflection), and each permutes the cells of a centred ``k x k x k`` kernel, so a group
convolution over it (Cohen & Welling, ICML 2016; the 3D cube groups as in CubeNet, Worrall & Brostow, ECCV 2018)
is exactly equivariant on the grid. A regular field carries 48 orientation channels, laid out field-major
``(N, fields * 48, D, H, W)`` with the elements numbered as in ``sreconv.groups.grid_symmetries(3)``;
:func:`sreconv.nn.group_regular_action` with ``spatial_dims=3`` transforms such a tensor.

Layers:

* :class:`CubeLiftConv3d`: plain channels -> regular fields, one orientation-sensitive kernel in its 48 copies;
* :class:`CubeGroupConv3d`: regular -> regular, weights indexed by (relative element, basis function);
* :class:`CubeBatchNorm3d`: batch norm shared by each field's 48 orientations;
* :class:`CubeGroupPool3d`: max or mean over the 48 orientations, regular -> invariant channels.

Spatial bases (:func:`sreconv.nn.group_spatial_basis` with ``spatial_dims=3``): ``'full'`` (every cell free),
``'hard'`` / ``'gaussian'`` (SRE shells, isotropic) and ``'harmonic'`` (gaussian shells times the real spherical
harmonics of degree 1 and 2: a band-limited lifting kernel). Each layer runs as one ``F.conv3d`` with the kernel
expanded from the base parameters and exports to a plain ``nn.Conv3d`` (``to_conv``).

A regular field costs 48 channels: a 3D group network is 6x wider per field than its 2D counterpart, so
these layers suit small volumes (MedMNIST's 28^3) and few fields (measured: a training step of
``sre_cube_r3d_18`` with one field, 8 volumes of 28^3, takes ~13x that of the isotropic ``sre_r3d_18`` at width
16 on a 2-core CPU).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ._validation import check_int
from .regular import RegularBatchNorm, RegularGroupConv, RegularGroupPool, RegularLiftConv

__all__ = ["CUBE_ORDER", "CubeLiftConv3d", "CubeGroupConv3d", "CubeBatchNorm3d", "CubeGroupPool3d"]

#: Number of elements of the cube group (orientation channels per regular field).
CUBE_ORDER = 48


class CubeLiftConv3d(RegularLiftConv):
    """Lifting convolution: plain channels -> regular fields of the cube group.

    ``y[o, g] = x * (g K_o)`` for the 48 elements ``g``: each base kernel is applied in its 48 rotated/reflected
    copies. Exactly equivariant: ``lift(t x) == group_regular_action(lift(x), t, 3)`` for every ``t``.

    Args:
        in_channels: input channels (plain fields: a transformed volume is just moved).
        out_fields: output regular fields (``out_fields * 48`` channels, field-major).
        kernel_size: odd ``k``; padding ``k//2`` ("same"), stride 1.
        basis: spatial basis of the base kernels (:func:`sreconv.nn.group_spatial_basis`; default ``'full'``).
        num_rings, max_frequency, gaussian_sigma: basis options (``max_frequency`` at most 2 in 3D).
        bias: one learnable bias per output field (shared by its 48 orientations).
        device, dtype: factory arguments.

    Shapes: ``(N, in_channels, D, H, W) -> (N, out_fields * 48, D, H, W)``.

    The parameter ``weight`` has shape ``(out_fields, in_channels, B)``; the basis is a non-persistent buffer.

    Example:
        >>> from sreconv.nn import group_regular_action
        >>> lift = CubeLiftConv3d(1, 1, 3, basis="harmonic").double()
        >>> x = torch.randn(1, 1, 5, 6, 7, dtype=torch.float64)
        >>> t = 29  # any of the 48
        >>> from sreconv.groups import grid_symmetries
        >>> moved = lift(grid_symmetries(3)[t].apply(x))
        >>> bool(torch.allclose(moved, group_regular_action(lift(x), t, 3)))
        True
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
        super().__init__(3, in_channels, out_fields, kernel_size, basis, num_rings, max_frequency, gaussian_sigma,
                         bias, device, dtype)


class CubeGroupConv3d(RegularGroupConv):
    """Group convolution between regular fields of the cube group.

    ``y[o, g] = sum_{i, h} x[i, h] * (g K_{o, i, g^-1 h})``: the base kernel connecting input orientation ``h`` to
    output orientation ``g`` depends only on the relative element ``g^-1 h``. With a radial basis (SRE shells)
    the spatial transform is the identity and the layer is a ring convolution whose channel mixing is indexed by
    (relative element, shell). Exactly equivariant over all 48 elements.

    Args:
        in_fields: input regular fields (``in_fields * 48`` channels, field-major).
        out_fields: output regular fields.
        kernel_size: odd ``k`` (1: the equivariant 1x1x1 mixing of shortcuts); "same" padding, stride 1.
        basis: spatial basis (:func:`sreconv.nn.group_spatial_basis`; default ``'gaussian'`` shells).
        num_rings, max_frequency, gaussian_sigma: basis options.
        bias: one learnable bias per output field.
        device, dtype: factory arguments.

    Shapes: ``(N, in_fields * 48, D, H, W) -> (N, out_fields * 48, D, H, W)``.

    The parameter ``weight`` has shape ``(out_fields, in_fields, 48, B)``.

    Example:
        >>> from sreconv.nn import group_regular_action
        >>> conv = CubeGroupConv3d(1, 2, 3).double()
        >>> x = torch.randn(1, 48, 5, 5, 5, dtype=torch.float64)
        >>> bool(torch.allclose(conv(group_regular_action(x, 17, 3)), group_regular_action(conv(x), 17, 3)))
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
        super().__init__(3, in_fields, out_fields, kernel_size, basis, num_rings, max_frequency, gaussian_sigma,
                         bias, device, dtype)


class CubeBatchNorm3d(RegularBatchNorm, nn.BatchNorm3d):
    """Batch norm of regular cube fields, with statistics and affine parameters shared by each field's orientations.

    One mean, variance, scale and shift per field, over the batch, all positions and the 48 orientations, so it
    commutes with the group in train and eval mode.

    Args:
        fields: number of regular fields (the input has ``fields * 48`` channels).
        eps, momentum, affine, track_running_stats, device, dtype: as ``nn.BatchNorm3d``.

    Shapes: ``(N, fields * 48, D, H, W) -> (N, fields * 48, D, H, W)``.

    The state_dict is that of ``nn.BatchNorm3d(fields)``.

    Example:
        >>> CubeBatchNorm3d(2)(torch.randn(2, 96, 3, 3, 3)).shape
        torch.Size([2, 96, 3, 3, 3])
    """

    def __init__(self, fields: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(check_int(fields, "fields", minimum=1), eps, momentum, affine, track_running_stats,
                         device, dtype)
        self._set_group(3)


class CubeGroupPool3d(RegularGroupPool):
    """Pooling over the 48 orientations of each regular field: regular fields -> invariant channels.

    Args:
        mode: ``'max'`` or ``'mean'``.

    Shapes: ``(N, fields * 48, D, H, W) -> (N, fields, D, H, W)``; the result transforms like a plain volume.

    Example:
        >>> CubeGroupPool3d("max")(torch.randn(1, 96, 4, 4, 4)).shape
        torch.Size([1, 2, 4, 4, 4])
    """

    def __init__(self, mode: str = "max") -> None:
        super().__init__(mode, 3)
