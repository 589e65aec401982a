"""Rotation and flip views for evaluating rotation robustness (2D and 3D).

Conventions (shared with :mod:`sreconv.groups`):

* 2D tensors are ``(..., H, W)`` with the origin at the top-left, as ``matplotlib.imshow`` displays them.
  ``rotate(x, theta)`` turns the content **counter-clockwise as displayed** by ``theta`` degrees about the
  image centre; ``rotate(x, 90) == torch.rot90(x, 1, dims=(-2, -1))`` exactly.
* 3D tensors are ``(..., D, H, W)`` and the axes are named ``z, y, x`` = ``D, H, W``. ``rotate3d(x, theta,
  axis)`` rotates in the plane of the two other axes, from the first toward the second:
  ``'z'`` in ``(H, W)`` (each depth slice turns like :func:`rotate`), ``'y'`` in ``(D, W)``, ``'x'`` in
  ``(D, H)``; at 90 degrees it equals ``torch.rot90(x, 1, dims=plane)``.
* Multiples of 90 degrees use ``torch.rot90`` (exact, no interpolation); other angles resample
  bilinearly (trilinearly in 3D) with ``grid_sample`` about the centre of the grid
  (``align_corners=False``), so both paths agree at 90 degrees up to interpolation on the border.
* Pixels whose source lies outside the frame get ``fill``. Rotation commutes with a per-channel affine
  normalisation only if ``fill`` is the *normalised* background, so either rotate raw ``[0, 1]`` images with
  ``fill=0`` or pass ``fill=normalized_fill(mean, std)`` (= -1 for mean 0.5, std 0.5) on normalised ones;
  the two give identical results (``rotate(x - fill) + fill`` is computed internally).
* ``mask=True`` multiplies the image by its inscribed disc (ball in 3D) before and after rotating, so no
  content leaves or enters the frame at any angle; apply it to the upright images too (angle 0) so all
  angles are scored on the same content.

Nothing here mutates a dataset: use the functions on batches, or wrap a dataset in :class:`RotatedView`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeAlias

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

Fill: TypeAlias = float | Sequence[float]

AXES_3D = {"z": (1, 2), "y": (0, 2), "x": (0, 1)}
FLIPS_2D = ("none", "horizontal", "vertical")
FLIPS_3D = FLIPS_2D + ("depth",)
INTERPOLATIONS_2D = ("bilinear", "bicubic", "nearest")
INTERPOLATIONS_3D = ("bilinear", "nearest")  # grid_sample has no bicubic mode for volumes


def quarter_turns(angle: float) -> int | None:
    """``k`` in 0..3 when ``angle`` (degrees) is a multiple of 90, else None.

    Example:
        >>> quarter_turns(-90.0), quarter_turns(450), quarter_turns(45)
        (3, 1, None)
    """
    k = angle / 90.0
    if abs(k - round(k)) < 1e-9:
        return round(k) % 4
    return None


def disc_mask(shape: Sequence[int], device=None) -> torch.Tensor:
    """Boolean mask of the disc (2D) or ball (3D) inscribed in the pixel-centre grid of ``shape``.

    A pixel is inside when its centre lies within ``(n - 1) / 2`` of the grid centre along every axis
    (an ellipse/ellipsoid for non-cubic shapes). With that radius, bilinear resampling of any rotation of a
    masked image reads only pixels inside the frame.

    Args:
        shape: spatial shape ``(H, W)`` or ``(D, H, W)``.

    Returns:
        bool tensor of ``shape``.

    Example:
        >>> disc_mask((5, 5)).int().tolist()
        [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]]
    """
    total = torch.zeros(tuple(shape), device=device, dtype=torch.float64)
    for dim, n in enumerate(shape):
        if n <= 1:
            continue
        radius = (n - 1) / 2.0
        coord = (torch.arange(n, device=device, dtype=torch.float64) - radius) / radius
        view = [1] * len(shape)
        view[dim] = n
        total = total + coord.reshape(view) ** 2
    return total <= 1.0 + 1e-9


def _fill_tensor(fill: Fill, x: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """``fill`` shaped to broadcast against ``x``: a scalar, or one value per channel (dim ``-spatial-1``)."""
    values = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    if values.dim() == 0:
        return values
    if x.dim() < spatial_dims + 1 or x.shape[-spatial_dims - 1] != values.numel():
        raise ValueError(
            f"per-channel fill has {values.numel()} values but x of shape {tuple(x.shape)} has "
            f"{x.shape[-spatial_dims - 1] if x.dim() > spatial_dims else 'no'} channels"
        )
    return values.reshape(-1, *([1] * spatial_dims))


def apply_mask(x: torch.Tensor, spatial_dims: int, fill: Fill = 0.0) -> torch.Tensor:
    """Sets everything outside the inscribed disc/ball of the last ``spatial_dims`` dims to ``fill``.

    Example:
        >>> apply_mask(torch.ones(1, 5, 5), 2, fill=-1.0)[0, 1].tolist()
        [-1.0, 1.0, 1.0, 1.0, -1.0]
    """
    mask = disc_mask(x.shape[-spatial_dims:], device=x.device)
    return torch.where(mask, x, _fill_tensor(fill, x, spatial_dims).to(x.dtype))


def _rotate_plane(
    x: torch.Tensor,
    angle: float,
    plane: tuple[int, int],
    spatial_dims: int,
    fill: Fill,
    mask: bool,
    exact: bool,
    interpolation: str = "bilinear",
) -> torch.Tensor:
    modes = INTERPOLATIONS_2D if spatial_dims == 2 else INTERPOLATIONS_3D
    if interpolation not in modes:
        raise ValueError(f"interpolation must be one of {', '.join(modes)} for {spatial_dims}D rotations; "
                         f"got {interpolation!r}")
    lead = x.dim() - spatial_dims
    if lead < 0:
        raise ValueError(f"expected a tensor with at least {spatial_dims} dims, got shape {tuple(x.shape)}")
    sizes = tuple(x.shape[lead:])
    a, b = plane
    if sizes[a] != sizes[b]:
        raise ValueError(f"rotation needs equal sizes in the rotation plane, got spatial shape {sizes}")
    if mask:
        x = apply_mask(x, spatial_dims, fill)
    k = quarter_turns(angle) if exact else None
    if k is not None:
        out = torch.rot90(x, k, dims=(lead + a, lead + b)) if k else x.clone()
    else:
        if not x.is_floating_point():
            raise TypeError(f"interpolating rotation needs a floating-point tensor, got {x.dtype}")
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        # Sampling map (output -> input) in centred index coordinates, spatial dims in tensor order: the
        # inverse of "turn from axis a toward axis b", which is what torch.rot90(dims=(a, b)) does at 90°.
        inverse = torch.eye(spatial_dims, dtype=torch.float64)
        inverse[a, a], inverse[a, b], inverse[b, a], inverse[b, b] = c, s, -s, c
        # grid_sample's normalised coordinates scale each axis by 2/n; the plane is square so only the
        # (identity) out-of-plane axes differ, and they are not mixed, hence no rescaling is needed.
        # affine_grid orders coordinates (x, y, z), the reverse of tensor order.
        theta = torch.zeros(1, spatial_dims, spatial_dims + 1, dtype=x.dtype, device=x.device)
        theta[0, :, :spatial_dims] = inverse.flip(0, 1).to(theta)
        offset = _fill_tensor(fill, x, spatial_dims)
        # Rotating x - fill with zero padding and adding fill back pads with fill, and keeps the linear
        # interpolation consistent with rotating the un-normalised image.
        flat = (x - offset).reshape(1, -1, *sizes)
        grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
        out = F.grid_sample(flat, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
        out = out.reshape(x.shape) + offset
    if mask:
        out = apply_mask(out, spatial_dims, fill)
    return out


def rotate(
    x: torch.Tensor,
    angle: float,
    *,
    fill: Fill = 0.0,
    mask: bool = False,
    exact_rot90: bool = True,
    interpolation: str = "bilinear",
) -> torch.Tensor:
    """Rotates 2D images counter-clockwise (as displayed) by ``angle`` degrees about their centre.

    Args:
        x: ``(..., H, W)`` with ``H == W``, e.g. a batch ``(N, C, H, W)``; float for non-right angles.
        angle: degrees; multiples of 90 are exact ``torch.rot90`` turns unless ``exact_rot90=False``.
        fill: value of pixels whose source lies outside the frame (and outside the disc with ``mask``):
            the background in the tensor's own units, a scalar or one value per channel (dim -3).
        mask: restrict the images to their inscribed disc (before and after rotating).
        exact_rot90: set False to force interpolation even at multiples of 90 (for testing).
        interpolation: ``'bilinear'`` (default), ``'bicubic'`` (sharper: less blur at 45 degrees) or
            ``'nearest'``, as in ``F.grid_sample``.

    Returns:
        Tensor of the same shape and dtype.

    Example:
        >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
        >>> torch.equal(rotate(x, 90), torch.rot90(x, 1, dims=(-2, -1)))
        True
        >>> rotate(torch.ones(1, 1, 8, 8), 45).shape
        torch.Size([1, 1, 8, 8])
    """
    return _rotate_plane(x, angle, (0, 1), 2, fill, mask, exact_rot90, interpolation)


def rotate3d(
    x: torch.Tensor,
    angle: float,
    axis: str = "z",
    *,
    fill: Fill = 0.0,
    mask: bool = False,
    exact_rot90: bool = True,
    interpolation: str = "bilinear",
) -> torch.Tensor:
    """Rotates volumes by ``angle`` degrees about the ``axis`` through their centre.

    Args:
        x: ``(..., D, H, W)``, e.g. a batch ``(N, C, D, H, W)``; the two in-plane sizes must agree.
        angle: degrees; multiples of 90 are exact ``torch.rot90`` turns, others trilinear.
        axis: ``'z'`` (plane ``(H, W)``), ``'y'`` (plane ``(D, W)``) or ``'x'`` (plane ``(D, H)``); positive
            angles turn from the first plane axis toward the second, as ``torch.rot90`` does.
        fill: background value outside the frame / ball (scalar or per channel, dim -4).
        mask: restrict the volumes to their inscribed ball (before and after rotating).
        exact_rot90: set False to force interpolation at multiples of 90.
        interpolation: ``'bilinear'`` (trilinear, default) or ``'nearest'``.

    Returns:
        Tensor of the same shape and dtype.

    Example:
        >>> v = torch.rand(2, 1, 6, 6, 6)
        >>> torch.equal(rotate3d(v, 90, "x"), torch.rot90(v, 1, dims=(-3, -2)))
        True
    """
    if axis not in AXES_3D:
        raise ValueError(f"axis must be one of {', '.join(AXES_3D)}; got {axis!r}")
    return _rotate_plane(x, angle, AXES_3D[axis], 3, fill, mask, exact_rot90, interpolation)


def flip(x: torch.Tensor, mode: str, spatial_dims: int = 2) -> torch.Tensor:
    """Mirrors images: ``'none'``, ``'horizontal'`` (left-right, W), ``'vertical'`` (up-down, H) or
    ``'depth'`` (D, 3D only).

    Example:
        >>> flip(torch.tensor([[1, 2], [3, 4]]), "horizontal").tolist()
        [[2, 1], [4, 3]]
    """
    modes = FLIPS_3D if spatial_dims == 3 else FLIPS_2D
    if mode not in modes:
        raise ValueError(
            f"flip mode must be one of {', '.join(modes)} for {spatial_dims}D data; got {mode!r}"
        )
    dim = {"none": None, "horizontal": -1, "vertical": -2, "depth": -3}[mode]
    return x.clone() if dim is None else x.flip(dim)


def apply_view(
    x: torch.Tensor,
    *,
    angle: float = 0.0,
    axis: str | None = None,
    flip_mode: str = "none",
    fill: Fill = 0.0,
    mask: bool = False,
) -> torch.Tensor:
    """Flips, then rotates a batch (or one image): the evaluation view of :class:`RotatedView`.

    Args:
        x: ``(..., H, W)`` when ``axis`` is None, ``(..., D, H, W)`` when ``axis`` is ``'x'|'y'|'z'``.
        angle: rotation in degrees (see :func:`rotate` / :func:`rotate3d`).
        axis: None for 2D, else the 3D rotation axis.
        flip_mode: see :func:`flip`.
        fill: background value in the tensor's units (see the module docstring).
        mask: restrict to the inscribed disc/ball.

    Example:
        >>> x = torch.rand(4, 1, 8, 8)
        >>> apply_view(x, angle=180, flip_mode="vertical").shape
        torch.Size([4, 1, 8, 8])
    """
    spatial_dims = 2 if axis is None else 3
    x = flip(x, flip_mode, spatial_dims)
    if axis is None:
        return rotate(x, angle, fill=fill, mask=mask)
    return rotate3d(x, angle, axis, fill=fill, mask=mask)


class RotatedView(Dataset):
    """A read-only rotated/flipped view of a dataset; the wrapped dataset is not modified.

    Items are ``(apply_view(image), label)`` with the wrapped dataset's transform applied first, so when that
    transform normalises, pass the normalised background as ``fill`` (:func:`normalized_fill`). Metadata
    attributes (``task``, ``n_classes``, ``label_names`` ...) are forwarded to the wrapped dataset.

    Args:
        dataset: yields ``(image, label)`` with image ``(C, H, W)`` or ``(C, D, H, W)``.
        angle: degrees.
        axis: None for 2D data, ``'x'|'y'|'z'`` for 3D.
        flip_mode: ``'none'``, ``'horizontal'``, ``'vertical'`` or (3D) ``'depth'``.
        fill: background value in the units of the dataset's output.
        mask: restrict every image to its inscribed disc/ball.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> base = TensorDataset(torch.rand(3, 1, 8, 8), torch.arange(3))
        >>> view = RotatedView(base, angle=90)
        >>> torch.equal(view[0][0], torch.rot90(base[0][0], 1, dims=(-2, -1)))
        True
    """

    def __init__(
        self,
        dataset: Dataset,
        angle: float = 0.0,
        *,
        axis: str | None = None,
        flip_mode: str = "none",
        fill: Fill = 0.0,
        mask: bool = False,
    ) -> None:
        spatial_dims = 2 if axis is None else 3
        if axis is not None and axis not in AXES_3D:
            raise ValueError(f"axis must be None (2D) or one of {', '.join(AXES_3D)}; got {axis!r}")
        declared = getattr(dataset, "spatial_dims", spatial_dims)
        if declared != spatial_dims:
            raise ValueError(f"dataset is {declared}D but axis={axis!r} describes a {spatial_dims}D rotation")
        modes = FLIPS_3D if spatial_dims == 3 else FLIPS_2D
        if flip_mode not in modes:
            raise ValueError(
                f"flip mode must be one of {', '.join(modes)} for {spatial_dims}D data; got {flip_mode!r}"
            )
        self.dataset = dataset
        self.angle = float(angle)
        self.axis = axis
        self.flip_mode = flip_mode
        self.fill = fill
        self.mask = mask

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, label = self.dataset[index]
        view = apply_view(
            image, angle=self.angle, axis=self.axis, flip_mode=self.flip_mode, fill=self.fill, mask=self.mask
        )
        return view, label

    def __getattr__(self, name: str):
        # Only called for attributes missing on the view; guard against recursion while unpickling.
        if name.startswith("__") or name == "dataset" or "dataset" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return (
            f"RotatedView({self.dataset!r}, angle={self.angle}, axis={self.axis!r}, flip_mode={self.flip_mode!r}, "
            f"fill={self.fill}, mask={self.mask})"
        )
