"""The symmetry groups of the pixel/voxel grid that SRE layers commute with exactly.

Every symmetry of the n-dimensional grid that fixes the centre is a *signed permutation* of the axes:
permute the spatial axes, then flip some of them. In 1D that is {identity, flip} (2 elements), in 2D the
dihedral group D4 (8: rotations by multiples of 90 degrees, flips, transposes), in 3D the full octahedral
group (48 cube symmetries). They act on the last ``ndim`` dimensions of a tensor and need no interpolation,
so equivariance under them can be checked exactly.

Named groups (:data:`GROUPS` maps each name to the number of spatial dims it acts on):

* ``'flip'`` (1D, 2 elements), ``'d4'`` (2D, 8), ``'cube'`` (3D, 48): every grid symmetry;
* ``'d2'`` (2D, 4): the axis flips and the half turn, for models with anisotropic kernels such as 1x7 and 7x1;
* ``'plane'`` (3D, 8): D4 acting on the last two axes ``(H, W)`` with the first (depth or time) untouched, for
  video models and anisotropic volumes (kernels like ``(1, 3, 3)`` or ``(3, 1, 1)``, strides like ``(1, 2, 2)``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

GROUPS = {"flip": 1, "d4": 2, "d2": 2, "cube": 3, "plane": 3}

_NAMES_2D = {
    ((0, 1), (False, False)): "identity",
    ((1, 0), (True, False)): "rot90",
    ((0, 1), (True, True)): "rot180",
    ((1, 0), (False, True)): "rot270",
    ((0, 1), (True, False)): "flip_vertical",
    ((0, 1), (False, True)): "flip_horizontal",
    ((1, 0), (False, False)): "transpose",
    ((1, 0), (True, True)): "anti_transpose",
}


@dataclass(frozen=True)
class GridSymmetry:
    """One signed permutation of the last ``len(perm)`` axes: ``x -> flip(permute(x, perm), flips)``.

    Attributes:
        perm: the spatial axis that goes to each position.
        flips: whether each position is flipped after permuting.
    """

    perm: tuple[int, ...]
    flips: tuple[bool, ...]

    @property
    def ndim(self) -> int:
        """Number of spatial axes it acts on."""
        return len(self.perm)

    @property
    def name(self) -> str:
        """``'rot90'``, ``'flip_vertical'``, ... in 2D; ``'perm021_flipz'``-style in 1D and 3D."""
        if self.ndim == 2:
            return _NAMES_2D[(self.perm, self.flips)]  # type: ignore[index]
        flipped = "".join("xyz"[i] for i, f in enumerate(self.flips) if f)
        return f"perm{''.join(map(str, self.perm))}" + (f"_flip{flipped}" if flipped else "")

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Transforms the last ``ndim`` dimensions of ``x``.

        Example:
            >>> g = [g for g in grid_symmetries(2) if g.name == "rot90"][0]
            >>> x = torch.arange(4.0).reshape(2, 2)
            >>> bool(torch.equal(g.apply(x), torch.rot90(x, 1, (0, 1))))
            True
        """
        lead = x.dim() - self.ndim
        if lead < 0:
            raise ValueError(f"{self.name} acts on {self.ndim} spatial dims, got a {x.dim()}D tensor")
        out = x.permute(*range(lead), *(lead + p for p in self.perm))
        dims = [lead + i for i, f in enumerate(self.flips) if f]
        return out.flip(dims) if dims else out

    def inverse(self) -> GridSymmetry:
        """The symmetry that undoes this one."""
        inv = [0] * self.ndim
        for position, axis in enumerate(self.perm):
            inv[axis] = position
        flips = tuple(self.flips[inv[axis]] for axis in range(self.ndim))
        return GridSymmetry(tuple(inv), flips)

    def is_identity(self) -> bool:
        """Whether it leaves every tensor unchanged."""
        return self.perm == tuple(range(self.ndim)) and not any(self.flips)


def grid_symmetries(ndim: int) -> list[GridSymmetry]:
    """All ``2^n n!`` signed permutations of ``ndim`` axes, identity first (2, 8 or 48 elements).

    Example:
        >>> [len(grid_symmetries(n)) for n in (1, 2, 3)]
        [2, 8, 48]
    """
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
    return [
        GridSymmetry(perm, flips)
        for perm in itertools.permutations(range(ndim))
        for flips in itertools.product((False, True), repeat=ndim)
    ]


def group_elements(group: str) -> list[GridSymmetry]:
    """Elements of a named group (identity first): see the module docstring for the names.

    Args:
        group: ``'flip'``, ``'d4'``, ``'d2'``, ``'cube'`` or ``'plane'``.

    Returns:
        The group's :class:`GridSymmetry` elements.

    Raises:
        ValueError: for an unknown name.

    Example:
        >>> [len(group_elements(name)) for name in GROUPS]
        [2, 8, 4, 48, 8]
        >>> all(g.perm[0] == 0 and not g.flips[0] for g in group_elements("plane"))
        True
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(map(repr, GROUPS))}, got {group!r}")
    elements = grid_symmetries(GROUPS[group])
    if group == "d2":
        return [g for g in elements if g.perm == (0, 1)]
    if group == "plane":
        return [g for g in elements if g.perm[0] == 0 and not g.flips[0]]
    return elements


def groups_for(ndim: int) -> list[str]:
    """Names of the groups acting on ``ndim`` spatial dims, the full group first.

    Example:
        >>> groups_for(3)
        ['cube', 'plane']
    """
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
    return [name for name, n in GROUPS.items() if n == ndim]
