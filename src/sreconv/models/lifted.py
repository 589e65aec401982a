"""SRE-ResNets with an orientation-aware, D4-symmetrised front end (research variants of issue 7).

An all-isotropic network (every kernel radially symmetric) cannot see local orientation: a horizontal and a
vertical edge give the same first-layer response. These variants keep the logits *exactly* invariant to the
8 symmetries of the square (D4) while letting the first layers see orientation:

``D4Symmetrize(f)`` wraps any plain, orientation-sensitive module ``f`` that keeps the spatial size and
returns ``pool_h h^-1 f(h x)`` over the 8 elements ``h`` of D4 (pool = max or mean over the group). For a
transformed input ``g x`` this is ``g`` times the output for ``x`` (substitute ``h' = h g``), so the module is
exactly D4-*equivariant* whatever ``f`` is; the SRE stages after it keep that, and the global pool makes the
logits invariant. With ``f`` = one conv this is the classic *lifting* convolution followed by pooling over the
group (each feature = the best match of its kernel over the 8 orientations); with ``f`` = stem + first stage
the network computes orientation-aware features (relative orientations of edges, corners, ...) in every
orientation frame and pools over the group afterwards.

Registered names:

* ``sre_resnet18_d4stem``: the stem is ``D4Symmetrize(Conv k x k + BN + ReLU)`` (lifting stem, k=5).
* ``sre_resnet18_d4stage1``: stem and first stage are a plain ResNet stem + 2 basic blocks, symmetrised
  (8x the cost of a plain first stage); stages 2-4 are SRE.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ..groups import GridSymmetry, grid_symmetries
from .blocks import BasicBlock, SREBasicBlock
from .registry import register_model
from .resnet import SREResNet

__all__ = ["D4Symmetrize", "LiftedSREResNet", "sre_resnet18_d4stem", "sre_resnet18_d4stage1"]

POOLS = ("max", "mean")


def _signed_permutation(g: GridSymmetry) -> tuple[bool, bool, bool]:
    return g.perm == (1, 0), g.flips[0], g.flips[1]


def _apply_signed_permutation(x: torch.Tensor, g: tuple[bool, bool, bool]) -> torch.Tensor:
    """:meth:`GridSymmetry.apply` of a 2D element given as (transpose, flip rows, flip columns)."""
    transpose, flip_rows, flip_columns = g
    if transpose:
        x = x.transpose(-2, -1)
    dims: list[int] = []
    if flip_rows:
        dims.append(-2)
    if flip_columns:
        dims.append(-1)
    return x.flip(dims) if len(dims) > 0 else x


class D4Symmetrize(nn.Module):
    """``x -> pool_h h^-1 f(h x)`` over the 8 symmetries ``h`` of the square: exactly D4-equivariant.

    Args:
        module: maps ``(N, C, H, W)`` to ``(N, C', H, W)`` (same spatial size; square inputs, or any module
            that accepts both ``H x W`` and ``W x H``).
        pool: ``'max'`` or ``'mean'`` over the group.

    The 8 copies run as one batch of ``8 N`` images (batch norm in train mode then sees all of them, a set
    closed under the group, so its statistics are invariant too).

    Example:
        >>> f = D4Symmetrize(nn.Conv2d(1, 4, 3, padding=1))
        >>> x = torch.randn(2, 1, 8, 8)
        >>> bool(torch.allclose(f(x.rot90(1, (2, 3))), f(x).rot90(1, (2, 3)), atol=1e-6))
        True
    """

    def __init__(self, module: nn.Module, pool: str = "max") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        self.module = module
        self.pool = pool
        # (transpose, flip rows, flip columns) of each element and of its inverse: plain tuples, so the
        # forward is TorchScript-compatible.
        self._elements: list[tuple[bool, bool, bool]] = [_signed_permutation(g) for g in grid_symmetries(2)]
        self._inverses: list[tuple[bool, bool, bool]] = [_signed_permutation(g.inverse())
                                                         for g in grid_symmetries(2)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        outs: list[torch.Tensor] = []
        if x.shape[-1] == x.shape[-2]:
            copies = torch.cat([_apply_signed_permutation(x, g) for g in self._elements])
            y = self.module(copies)
            for i, g in enumerate(self._inverses):
                outs.append(_apply_signed_permutation(y[i * n:(i + 1) * n], g))
        else:  # transposed copies have another shape: run them separately
            for g, g_inv in zip(self._elements, self._inverses):
                outs.append(_apply_signed_permutation(self.module(_apply_signed_permutation(x, g)), g_inv))
        stacked = torch.stack(outs)
        return stacked.amax(0) if self.pool == "max" else stacked.mean(0)

    def extra_repr(self) -> str:
        return f"group=d4, pool={self.pool!r}"


class LiftedSREResNet(SREResNet):
    """SRE-ResNet-18 with a plain convolutional front end wrapped in :class:`D4Symmetrize`.

    The front end is the stem (``lift='stem'``) or stem + first stage (``lift='stage1'``). Exactly D4-invariant
    in eval mode.

    Args:
        lift: ``'stem'`` or ``'stage1'``.
        lift_pool: ``'max'`` or ``'mean'`` over the group.
        lift_kernel_size: kernel of the plain stem conv (default 5 for ``'stem'``, 3 for ``'stage1'``).
        **kwargs: :class:`~sreconv.models.resnet.SREResNet` arguments (``num_classes``, ``in_channels``,
            ``inplanes``, ``sre_conv_size``, ``skip_first_maxpool``, ...); ``ring_basis`` defaults to
            ``'gaussian'`` here (the more nearly isotropic rings: see ``benchmarks/ROBUSTNESS.md``).

    Example:
        >>> m = sre_resnet18_d4stem(num_classes=3, in_channels=1, inplanes=4, skip_first_maxpool=True).eval()
        >>> x = torch.randn(2, 1, 12, 12)
        >>> bool(torch.allclose(m(x), m(x.flip(-1).rot90(1, (2, 3))), atol=1e-5))
        True
    """

    def __init__(self, lift: str = "stem", lift_pool: str = "max", lift_kernel_size: int | None = None,
                 **kwargs: Any) -> None:
        if lift not in ("stem", "stage1"):
            raise ValueError(f"lift must be 'stem' or 'stage1', got {lift!r}")
        kwargs.setdefault("sre_conv_size", [9, 9, 5, 5])
        kwargs.setdefault("ring_basis", "gaussian")
        super().__init__(SREBasicBlock, [2, 2, 2, 2], **kwargs)
        k = lift_kernel_size or (5 if lift == "stem" else 3)
        if k % 2 != 1:
            raise ValueError(f"lift_kernel_size must be odd (centred 'same' padding), got {k}")
        width = self.base_inplanes
        norm = self._norm_layer
        front = [nn.Conv2d(self.in_channels, width, k, 1, k // 2, bias=False), norm(width), nn.ReLU(inplace=True)]
        if lift == "stage1":
            front += [BasicBlock(width, width, 1, None, norm), BasicBlock(width, width, 1, None, norm)]
        for m in front:
            for sub in m.modules():
                if isinstance(sub, nn.Conv2d):
                    nn.init.kaiming_normal_(sub.weight, mode="fan_out", nonlinearity="relu")
        self.lift = lift
        self.conv1 = D4Symmetrize(nn.Sequential(*front), lift_pool)
        self.bn1 = nn.Identity()
        self.relu = nn.Identity()
        if lift == "stage1":
            self.layer1 = nn.Identity()


@register_model(spatial_dims=2, group="d4")
def sre_resnet18_d4stem(**kwargs: Any) -> LiftedSREResNet:
    """SRE-ResNet-18 with a D4 lifting stem (plain 5x5 conv over the 8 orientations, max over the group)."""
    kwargs.setdefault("lift", "stem")
    return LiftedSREResNet(**kwargs)


@register_model(spatial_dims=2, group="d4")
def sre_resnet18_d4stage1(**kwargs: Any) -> LiftedSREResNet:
    """SRE-ResNet-18 whose stem + first stage are plain, run in all 8 orientations and max-pooled."""
    kwargs.setdefault("lift", "stage1")
    return LiftedSREResNet(**kwargs)

