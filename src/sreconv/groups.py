"""The symmetry groups of the pixel/voxel grid that SRE layers commute with exactly.

Every symmetry of the n-dimensional grid that fixes the centre is a *signed permutation* of the axes:
permute the spatial axes, then flip some of them. In 1D that is {identity, flip} (2 elements), in 2D the
dihedral group D4 (8: rotations by multiples of 90 degrees, flips, transposes), in 3D the full octahedral
group (48 cube symmetries). They act on the last ``ndim`` dimensions of a tensor and need no interpolation,
so equivariance under them can be checked exactly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

GROUPS = {"flip": 1, "d4": 2, "cube": 3}

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
        return len(self.perm)

    @property
    def name(self) -> str:
        if self.ndim == 2:
            return _NAMES_2D[(self.perm, self.flips)]
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
    """Elements of a named group: ``'flip'`` (1D), ``'d4'`` (2D) or ``'cube'`` (3D)."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(map(repr, GROUPS))}, got {group!r}")
    return grid_symmetries(GROUPS[group])
