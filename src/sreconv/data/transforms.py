"""Training augmentations and evaluation pipelines for ``(C, H, W)`` / ``(C, D, H, W)`` float tensors.

The datasets return raw intensities in [0, 1]; the pipelines built here resize, augment and finally
normalise (mean 0.5, std 0.5 by default, as in the paper). 2D augmentations use ``torchvision.transforms.v2``
on tensors (imported lazily); the 3D ones and everything used at evaluation time are plain torch.

Randomness comes from torch's global generator, so ``torch.manual_seed`` (and the per-worker seeding of a
``DataLoader`` with a seeded ``generator``) makes them reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor], torch.Tensor]

MEAN = 0.5
STD = 0.5
ROTATIONS = ("any", "rot90")


def normalized_fill(mean: float = MEAN, std: float = STD, background: float = 0.0) -> float:
    """The value a raw ``background`` intensity takes after normalisation: the ``fill`` to rotate with.

    Example:
        >>> normalized_fill()
        -1.0
    """
    return (background - mean) / std


class Compose:
    """Applies transforms in order (a picklable, torch-only ``Compose``).

    Example:
        >>> t = Compose([Normalize()])
        >>> t(torch.ones(1, 2, 2)).unique().tolist()
        [1.0]
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class Normalize:
    """``(x - mean) / std`` with scalar or per-channel statistics, for 2D and 3D images.

    Example:
        >>> Normalize(0.5, 0.5)(torch.zeros(1, 4, 4, 4)).unique().tolist()
        [-1.0]
    """

    def __init__(self, mean: float | Sequence[float] = MEAN, std: float | Sequence[float] = STD):
        self.mean = mean
        self.std = std

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        spatial = x.dim() - 1
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device)
        if mean.dim():
            mean = mean.reshape(-1, *([1] * spatial))
        if std.dim():
            std = std.reshape(-1, *([1] * spatial))
        return (x - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Resize:
    """Resizes the spatial dims of ``(C, H, W)`` (bilinear) or ``(C, D, H, W)`` (trilinear) tensors.

    A no-op when the size already matches. The paper resizes 28-pixel MedMNIST images to 32 so that every
    stage of the SRE-ResNet keeps an even size.

    Example:
        >>> Resize(32)(torch.rand(1, 28, 28)).shape
        torch.Size([1, 32, 32])
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        spatial = x.dim() - 1
        target = (self.size,) * spatial
        if tuple(x.shape[1:]) == target:
            return x
        mode = "bilinear" if spatial == 2 else "trilinear"
        antialias = spatial == 2 and any(t < s for t, s in zip(target, x.shape[1:]))
        return F.interpolate(x[None], size=target, mode=mode, align_corners=False, antialias=antialias)[0]

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class RandomRot90:
    """Rotates by a uniformly random multiple of 90 degrees in a random one of the given planes.

    Args:
        planes: pairs of dims of the ``(C, *spatial)`` tensor; default: ``(-2, -1)`` (2D). For 3D pass e.g.
            ``((-2, -1), (-3, -1), (-3, -2))``.

    Example:
        >>> torch.manual_seed(0) is not None
        True
        >>> RandomRot90()(torch.rand(1, 5, 5)).shape
        torch.Size([1, 5, 5])
    """

    def __init__(self, planes: Sequence[tuple[int, int]] = ((-2, -1),)) -> None:
        self.planes = [tuple(p) for p in planes]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        plane = self.planes[int(torch.randint(len(self.planes), ()))]
        k = int(torch.randint(4, ()))
        return torch.rot90(x, k, dims=plane)

    def __repr__(self) -> str:
        return f"RandomRot90(planes={self.planes})"


class RandomFlip:
    """Flips each of the given dims independently with probability ``p``.

    Example:
        >>> RandomFlip(dims=(-1,), p=1.0)(torch.tensor([[[1.0, 2.0]]])).tolist()
        [[[2.0, 1.0]]]
    """

    def __init__(self, dims: Sequence[int], p: float = 0.5) -> None:
        self.dims = tuple(dims)
        self.p = p

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        chosen = [d for d in self.dims if float(torch.rand(())) < self.p]
        return x.flip(chosen) if chosen else x

    def __repr__(self) -> str:
        return f"RandomFlip(dims={self.dims}, p={self.p})"


class RandomAffine3d:
    """Random per-axis scaling and translation of ``(C, D, H, W)`` volumes (trilinear, zero padding).

    Follows torchio's ``RandomAffine(scales=scale, translation=translate, degrees=0)``: each axis is scaled
    by a factor drawn from ``U(1 - scale, 1 + scale)`` and shifted by ``U(-translate, translate)`` voxels.
    The padding value 0 is the background of raw [0, 1] MedMNIST volumes, so apply this before normalising.

    Example:
        >>> RandomAffine3d(0.2, 3.0)(torch.rand(1, 8, 8, 8)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(self, scale: float = 0.2, translate: float = 3.0) -> None:
        self.scale = scale
        self.translate = translate

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        sizes = x.shape[1:]
        factors = 1.0 + (torch.rand(3) * 2 - 1) * self.scale
        shifts = (torch.rand(3) * 2 - 1) * self.translate
        theta = torch.zeros(1, 3, 4, dtype=x.dtype)
        # Output voxel p samples the input at p / factor - shift (zoom about the centre, then move);
        # affine_grid orders axes (x, y, z) = (W, H, D) and measures them in units of half the size.
        for row, dim in enumerate((2, 1, 0)):
            theta[0, row, row] = 1.0 / factors[dim]
            theta[0, row, 3] = -shifts[dim] * 2.0 / sizes[dim]
        grid = F.affine_grid(theta.to(x.device), [1, x.shape[0], *sizes], align_corners=False)
        return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]

    def __repr__(self) -> str:
        return f"RandomAffine3d(scale={self.scale}, translate={self.translate})"


def _gaussian_kernel(sigma: float, dtype) -> torch.Tensor:
    radius = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


class RandomGaussianBlur3d:
    """Separable Gaussian blur of ``(C, D, H, W)`` volumes with per-axis sigma drawn from ``U(*sigma)``.

    Mirrors torchio's ``RandomBlur(std=(0, 2))`` (sigmas in voxels), applied with probability ``p``.
    Borders are replicated so the blur does not darken the edges.

    Example:
        >>> RandomGaussianBlur3d()(torch.rand(1, 6, 6, 6)).shape
        torch.Size([1, 6, 6, 6])
    """

    def __init__(self, sigma: tuple[float, float] = (0.0, 2.0), p: float = 1.0) -> None:
        self.sigma = tuple(sigma)
        self.p = p

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if float(torch.rand(())) >= self.p:
            return x
        lo, hi = self.sigma
        sigmas = lo + torch.rand(3) * (hi - lo)
        out = x[None]
        channels = x.shape[0]
        for axis, sigma in enumerate(sigmas.tolist()):
            # Below ~0.1 voxel the kernel is a delta to float precision; skipping saves three convolutions.
            if sigma < 0.1:
                continue
            k = _gaussian_kernel(sigma, x.dtype).to(x.device)
            shape = [1, 1, 1]
            shape[axis] = k.numel()
            weight = k.reshape(1, 1, *shape).expand(channels, 1, *shape).contiguous()
            pad = [0] * 6
            r = k.numel() // 2
            # F.pad lists pads from the last dim backwards: (W, W, H, H, D, D).
            pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = r
            out = F.conv3d(F.pad(out, pad, mode="replicate"), weight, groups=channels)
        return out[0]

    def __repr__(self) -> str:
        return f"RandomGaussianBlur3d(sigma={self.sigma}, p={self.p})"


def train_transform_2d(
    size: int,
    *,
    moco: bool = True,
    translate: float = 0.1,
    hflip_p: float = 0.0,
    vflip_p: float = 0.0,
    rotation: str | None = None,
    normalize: bool = True,
) -> Compose:
    """The paper's 2D training pipeline, on ``(C, H, W)`` float tensors in [0, 1].

    Order: resize to ``size`` (no-op if equal) -> ``moco`` (RandomResizedCrop to ``size`` with scale
    0.5-1, then ColorJitter(0.1, 0.1, 0.1, 0.1) with probability 0.5) -> random translation by up to
    ``translate`` of the size -> optional flips -> optional rotation -> Normalize(0.5, 0.5). Geometric
    transforms pad with 0, the raw background, since they run before normalisation.

    Args:
        size: output side (e.g. 32 for 28-pixel MedMNIST, as in the paper).
        moco: apply the "moco" crop + colour jitter.
        translate: maximal translation as a fraction of the size (0 disables it).
        hflip_p: probability of a horizontal flip (0 disables it).
        vflip_p: probability of a vertical flip.
        rotation: None, ``"any"`` (uniform angle in [-180, 180], bilinear) or ``"rot90"`` (random multiple
            of 90): augmentation for the non-equivariant baselines.
        normalize: end with ``Normalize(0.5, 0.5)``.

    Example:
        >>> t = train_transform_2d(32)
        >>> t(torch.rand(3, 28, 28)).shape
        torch.Size([3, 32, 32])
    """
    from torchvision.transforms import v2

    if rotation is not None and rotation not in ROTATIONS:
        raise ValueError(f"rotation must be None or one of {ROTATIONS}; got {rotation!r}")
    steps: list[Transform] = [Resize(size)]
    if moco:
        steps.append(v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True))
        steps.append(v2.RandomApply([v2.ColorJitter(0.1, 0.1, 0.1, 0.1)], p=0.5))
    if translate > 0:
        steps.append(v2.RandomAffine(degrees=0, translate=(translate, translate)))
    if hflip_p > 0:
        steps.append(v2.RandomHorizontalFlip(hflip_p))
    if vflip_p > 0:
        steps.append(v2.RandomVerticalFlip(vflip_p))
    if rotation == "any":
        steps.append(v2.RandomRotation(180, interpolation=v2.InterpolationMode.BILINEAR))
    elif rotation == "rot90":
        steps.append(RandomRot90())
    if normalize:
        steps.append(Normalize())
    return Compose(steps)


def eval_transform_2d(size: int, *, normalize: bool = True) -> Compose:
    """Deterministic 2D evaluation pipeline: resize to ``size`` then Normalize(0.5, 0.5).

    Example:
        >>> eval_transform_2d(32)(torch.zeros(1, 28, 28)).shape
        torch.Size([1, 32, 32])
    """
    return Compose([Resize(size)] + ([Normalize()] if normalize else []))


def train_transform_3d(
    *,
    affine_scale: float = 0.2,
    affine_translate: float = 3.0,
    blur_sigma: tuple[float, float] = (0.0, 2.0),
    blur_p: float = 1.0,
    flip_p: float = 0.0,
    rotation: str | None = None,
    normalize: bool = True,
) -> Compose:
    """The paper's 3D training pipeline (torchio-style augmentations in plain torch) on ``(C, D, H, W)``.

    Order: random affine (scale ``affine_scale``, translation ``affine_translate`` voxels) -> random
    Gaussian blur -> optional flips of each axis -> optional random 90-degree rotation about a random axis
    -> Normalize(0.5, 0.5).

    Args:
        affine_scale: per-axis scale drawn from ``U(1 - s, 1 + s)``; 0 with ``affine_translate=0`` disables.
        affine_translate: per-axis shift drawn from ``U(-t, t)`` voxels.
        blur_sigma: range of the per-axis blur sigma in voxels.
        blur_p: probability of blurring (0 disables it).
        flip_p: probability of flipping each axis.
        rotation: None or ``"rot90"`` (exact 90-degree turns about a random axis).
        normalize: end with ``Normalize(0.5, 0.5)``.

    Example:
        >>> train_transform_3d()(torch.rand(1, 8, 8, 8)).shape
        torch.Size([1, 8, 8, 8])
    """
    if rotation is not None and rotation != "rot90":
        raise ValueError(f"3D rotation augmentation must be None or 'rot90'; got {rotation!r}")
    steps: list[Transform] = []
    if affine_scale > 0 or affine_translate > 0:
        steps.append(RandomAffine3d(affine_scale, affine_translate))
    if blur_p > 0:
        steps.append(RandomGaussianBlur3d(blur_sigma, blur_p))
    if flip_p > 0:
        steps.append(RandomFlip((-3, -2, -1), flip_p))
    if rotation == "rot90":
        steps.append(RandomRot90(((-2, -1), (-3, -1), (-3, -2))))
    if normalize:
        steps.append(Normalize())
    return Compose(steps)


def eval_transform_3d(*, normalize: bool = True) -> Compose:
    """Deterministic 3D evaluation pipeline: Normalize(0.5, 0.5) (or nothing).

    Example:
        >>> eval_transform_3d()(torch.ones(1, 4, 4, 4)).unique().tolist()
        [1.0]
    """
    return Compose([Normalize()] if normalize else [])
