"""Ring bases: the fixed tensors that turn one weight per ring into a radially symmetric kernel.

A basis of a kernel of size ``(k_1, ..., k_n)`` with ``R`` rings is a tensor of shape ``(R, k_1, ..., k_n)``.
A kernel with ring weights ``w`` (shape ``(..., R)``) is ``sum_r w[..., r] * basis[r]``. Every basis depends
on a cell only through its Euclidean distance to the centre cell, so the kernel is invariant under every
symmetry of the grid that fixes the centre: the dihedral group D4 in 2D and the 48 cube symmetries in 3D
(for cubic kernels), exactly.

Two kinds exist:

* ``hard`` rings partition the cells by distance, bit-for-bit as the official SRE-Conv package does
  (Du et al., "SRE-Conv: Symmetric Rotation Equivariant Convolution for Biomedical Image Classification",
  ISBI 2025, arXiv:2501.09753), so its checkpoints load.
* ``gaussian`` rings give every cell a weight per ring from a Gaussian profile of its distance to the ring
  radius (normalised to sum to one per cell), in the spirit of GMR-Conv (arXiv:2504.02819): the kernel
  becomes a smooth function of the radius, so rotating it by an arbitrary angle changes it less.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ._validation import check_choice, check_kernel_size

RING_BASES = ("hard", "gaussian")


def squared_distances(kernel_size: Sequence[int]) -> np.ndarray:
    """Squared Euclidean distance (an integer) of every cell to the centre cell.

    Args:
        kernel_size: odd size per dimension.

    Returns:
        int64 array of shape ``kernel_size``.
    """
    axes = [np.arange(k, dtype=np.int64) - k // 2 for k in kernel_size]
    grids = np.meshgrid(*axes, indexing="ij")
    return np.sum([g * g for g in grids], axis=0)


def support_radius(kernel_size: Sequence[int]) -> float:
    """Radius of the circular support: cells farther than this (the corners) are dropped."""
    return max(kernel_size) // 2 + 0.5


def support_mask(kernel_size: Sequence[int], force_circular: bool) -> np.ndarray:
    """Cells that belong to the kernel's support (all cells unless ``force_circular``)."""
    d2 = squared_distances(kernel_size)
    if not force_circular:
        return np.ones_like(d2, dtype=bool)
    return d2 < support_radius(kernel_size) ** 2


def num_distinct_radii(kernel_size: Sequence[int], force_circular: bool = True) -> int:
    """Number of distinct cell distances inside the support: the most rings that can all be non-empty."""
    d2 = squared_distances(kernel_size)
    return int(np.unique(d2[support_mask(kernel_size, force_circular)]).size)


def default_num_rings(kernel_size: Sequence[int], force_circular: bool = True) -> int:
    """The official package's ring count: ``k//2 + 1`` (circular) or ``k//2 + 2`` (non-circular).

    The non-circular count is capped by the number of distinct radii, which only bites in 1D where
    corners do not exist.
    """
    half = max(kernel_size) // 2
    if force_circular:
        return half + 1
    return min(half + 2, num_distinct_radii(kernel_size, force_circular=False))


def resolve_num_rings(
    kernel_size: Sequence[int], num_rings: int | None, force_circular: bool, name: str = "sre_k"
) -> int:
    """Returns the default ring count for ``None``, else checks ``1 <= num_rings <= distinct radii``."""
    if num_rings is None:
        return default_num_rings(kernel_size, force_circular)
    if isinstance(num_rings, bool) or not isinstance(num_rings, int):
        raise TypeError(f"{name} must be an int or None, got {num_rings!r} of type {type(num_rings).__name__}")
    limit = num_distinct_radii(kernel_size, force_circular)
    if not 1 <= num_rings <= limit:
        raise ValueError(
            f"{name} must be between 1 and {limit} (the number of distinct cell radii of a "
            f"{'circular' if force_circular else 'square'} kernel of size {tuple(kernel_size)}), got {num_rings}"
        )
    return num_rings


def _as_size(kernel_size: int | Sequence[int], ndim: int | None) -> tuple[int, ...]:
    if isinstance(kernel_size, int):
        return check_kernel_size(kernel_size, ndim or 2)
    return check_kernel_size(tuple(kernel_size), len(kernel_size) if ndim is None else ndim)


def hard_ring_basis(
    kernel_size: int | Sequence[int],
    num_rings: int | None = None,
    force_circular: bool = True,
    ndim: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """0/1 ring masks following the official SRE-Conv rule bit for bit (float64 distances and edges).

    Circular: ring edges are ``linspace(0, k//2 + 0.5, R + 1)`` and a cell at distance ``D`` belongs to
    ring ``i`` when ``edge[i] <= D < edge[i+1]`` (a tie goes to the outer ring); the corners
    (``D >= k//2 + 0.5``) belong to no ring. Non-circular: the edges are ``linspace(0, max D, R)``, the first
    ``R - 1`` rings are the half-open intervals between them and the last ring holds the cells at exactly
    ``max D`` (the box corners). ``k`` is the largest kernel size; the official package uses the first
    one, which for anisotropic kernels such as ``(3, 7, 7)`` leaves most cells unused.

    Args:
        kernel_size: odd int (with ``ndim``) or a tuple of odd ints.
        num_rings: ring count ``R``; ``None`` gives :func:`default_num_rings`.
        force_circular: drop the corners so that the support is a disc/ball.
        ndim: number of spatial dimensions when ``kernel_size`` is an int (default 2).
        dtype: dtype of the result.

    Returns:
        Tensor of shape ``(R, *kernel_size)`` with entries 0 or 1; rings may be empty for large ``R``.

    Example:
        >>> hard_ring_basis(3).shape
        torch.Size([2, 3, 3])
        >>> hard_ring_basis(3)[1]
        tensor([[1., 1., 1.],
                [1., 0., 1.],
                [1., 1., 1.]])
    """
    size = _as_size(kernel_size, ndim)
    rings = resolve_num_rings(size, num_rings, force_circular)
    dist = np.sqrt(squared_distances(size).astype(np.float64))
    if force_circular:
        edges = np.linspace(0.0, support_radius(size), rings + 1)
        masks = [(dist >= edges[i]) & (dist < edges[i + 1]) for i in range(rings)]
    else:
        edges = np.linspace(0.0, float(dist.max()), rings)
        masks = [(dist >= edges[i]) & (dist < edges[i + 1]) for i in range(rings - 1)]
        masks.append(dist == edges[-1])
    return torch.from_numpy(np.stack(masks)).to(dtype)


def default_gaussian_sigma(kernel_size: Sequence[int], num_rings: int, force_circular: bool = True) -> float:
    """Half the spacing between ring radii: the width used when ``gaussian_sigma`` is None."""
    if num_rings == 1:
        return 1.0  # a single normalised profile is flat whatever its width
    return 0.5 * float(_ring_radii(kernel_size, num_rings, force_circular)[1])


def _ring_radii(kernel_size: Sequence[int], num_rings: int, force_circular: bool) -> np.ndarray:
    outer = max(kernel_size) // 2 if force_circular else math.sqrt(float(squared_distances(kernel_size).max()))
    return np.linspace(0.0, outer, num_rings)


def gaussian_ring_basis(
    kernel_size: int | Sequence[int],
    num_rings: int | None = None,
    force_circular: bool = True,
    sigma: float | None = None,
    ndim: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Smooth rings: Gaussian profiles of the distance to ``R`` evenly spaced ring radii.

    Ring ``r`` has radius ``rho_r = r * k//2 / (R - 1)`` (the last ring on the support's edge). A cell at
    distance ``D`` gets ``exp(-(D - rho_r)^2 / (2 sigma^2))`` per ring, normalised so that its weights sum to
    one: equal ring weights give a flat disc, and the kernel interpolates smoothly between ring values.
    Cells outside the support get zero.

    Args:
        kernel_size: odd int (with ``ndim``) or a tuple of odd ints.
        num_rings: ring count ``R``; ``None`` gives :func:`default_num_rings`.
        force_circular: drop the corners so that the support is a disc/ball.
        sigma: Gaussian width in cells; ``None`` gives half the ring spacing.
        ndim: number of spatial dimensions when ``kernel_size`` is an int (default 2).
        dtype: dtype of the result.

    Returns:
        Tensor of shape ``(R, *kernel_size)``.

    Example:
        >>> basis = gaussian_ring_basis(5)
        >>> basis.shape, bool(torch.allclose(basis.sum(0)[2, 2], torch.tensor(1.0)))
        (torch.Size([3, 5, 5]), True)
    """
    size = _as_size(kernel_size, ndim)
    rings = resolve_num_rings(size, num_rings, force_circular)
    if sigma is None:
        sigma = default_gaussian_sigma(size, rings, force_circular)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
        raise ValueError(f"gaussian_sigma must be a positive number of cells or None, got {sigma!r}")
    dist = np.sqrt(squared_distances(size).astype(np.float64))
    radii = _ring_radii(size, rings, force_circular).reshape((-1,) + (1,) * len(size))
    profiles = np.exp(-((dist[None] - radii) ** 2) / (2.0 * float(sigma) ** 2))
    profiles /= profiles.sum(axis=0, keepdims=True)
    profiles *= support_mask(size, force_circular)[None]
    return torch.from_numpy(profiles).to(dtype)


def make_ring_basis(
    kind: str,
    kernel_size: int | Sequence[int],
    num_rings: int | None = None,
    force_circular: bool = True,
    sigma: float | None = None,
    ndim: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Builds a ``'hard'`` or ``'gaussian'`` basis; see :func:`hard_ring_basis`, :func:`gaussian_ring_basis`."""
    check_choice(kind, "ring_basis", RING_BASES)
    if kind == "hard":
        if sigma is not None:
            raise ValueError(f"gaussian_sigma only applies to ring_basis='gaussian', got {sigma!r} with 'hard'")
        return hard_ring_basis(kernel_size, num_rings, force_circular, ndim=ndim, dtype=dtype)
    return gaussian_ring_basis(kernel_size, num_rings, force_circular, sigma=sigma, ndim=ndim, dtype=dtype)
