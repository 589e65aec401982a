"""A one-minute tour: exactness under the grid groups, arbitrary-angle error, and parameter savings.

Run ``python -m sreconv.demo``. Needs only torch and numpy.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data.rotation import rotate
from .groups import grid_symmetries
from .nn import SREConv2d, SREConv3d


def group_error(layer: nn.Module, x: torch.Tensor) -> float:
    """Largest ``|f(g x) - g f(x)|`` over the grid group of ``x``'s spatial dims, relative to ``max |f(x)|``."""
    with torch.no_grad():
        y = layer(x)
        worst = max(float((layer(g.apply(x)) - g.apply(y)).abs().max()) for g in grid_symmetries(x.dim() - 2))
    return worst / float(y.abs().max())


def angle_error(layer: nn.Module, x: torch.Tensor, degrees: float) -> float:
    """Relative L2 error of ``f(rot x)`` vs ``rot f(x)`` on the central disc (radius 0.35 of the size)."""
    size = x.shape[-1]
    coords = torch.arange(size, dtype=x.dtype) - (size - 1) / 2
    disc = coords[:, None] ** 2 + coords[None, :] ** 2 <= (0.35 * size) ** 2
    with torch.no_grad():
        diff = (layer(rotate(x, degrees)) - rotate(layer(x), degrees))[..., disc]
        ref = rotate(layer(x), degrees)[..., disc]
    return float(diff.norm() / ref.norm())


def smooth_image(size: int = 96, seed: int = 0) -> torch.Tensor:
    """A band-limited random image (blurred noise), so interpolation error stays small."""
    noise = torch.randn(1, 1, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    blur = torch.exp(-torch.arange(-6, 7, dtype=torch.float64) ** 2 / 8)
    blur = (blur[:, None] * blur[None, :]) / blur.sum() ** 2
    return F.conv2d(noise, blur[None, None], padding=6)


def main() -> None:
    torch.manual_seed(0)
    print("sreconv demo: symmetric rotation-equivariant convolution (arXiv:2501.09753)\n")
    print("Exact equivariance, float64, stride 1 'same' padding (max relative deviation over the group):")
    x2 = torch.randn(2, 8, 33, 33, dtype=torch.float64)
    x3 = torch.randn(1, 4, 12, 12, 12, dtype=torch.float64)
    for k in (3, 5, 9):
        conv2 = SREConv2d(8, 8, k, padding="same", dtype=torch.float64)
        dense2 = nn.Conv2d(8, 8, k, padding="same", dtype=torch.float64)
        print(f"  2D k={k}: SRE {group_error(conv2, x2):.1e} over D4 (8)   nn.Conv2d {group_error(dense2, x2):.1e}")
    conv3 = SREConv3d(4, 4, 5, padding="same", dtype=torch.float64)
    print(f"  3D k=5: SRE {group_error(conv3, x3):.1e} over the 48 cube symmetries\n")

    print("Arbitrary angles (relative L2 error on the central disc, band-limited image, 16 channels, R=3):")
    image = smooth_image()
    for basis in ("hard", "gaussian"):
        layer = SREConv2d(1, 16, 9, padding="same", ring_basis=basis, sre_k=3, dtype=torch.float64)
        errors = ", ".join(f"{a} deg {angle_error(layer, image, a):.4f}" for a in (15, 30, 45))
        print(f"  {basis:8s}: {errors}")
    dense = nn.Conv2d(1, 16, 9, padding="same", dtype=torch.float64)
    print(f"  nn.Conv2d: 45 deg {angle_error(dense, image, 45):.4f}\n")

    print("Parameters per layer, 64 -> 64 channels:")
    for k in (3, 5, 9, 13):
        ours = sum(p.numel() for p in SREConv2d(64, 64, k).parameters())
        dense = sum(p.numel() for p in nn.Conv2d(64, 64, k).parameters())
        print(f"  k={k:2d}: SREConv2d {ours:7,d}   nn.Conv2d {dense:9,d}   ({dense / ours:.1f}x fewer)")


if __name__ == "__main__":
    main()
