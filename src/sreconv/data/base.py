"""The uniform dataset interface the training engine relies on.

Every dataset built by :func:`sreconv.data.build_dataset` is an :class:`ImageDataset`: item ``i`` is
``(image, label)`` where ``image`` is a float32 tensor of shape ``(C, H, W)`` (2D) or ``(C, D, H, W)`` (3D)
holding raw intensities in ``[0, 1]`` *before* the user's ``transform`` (so the background of MedMNIST,
Fashion-MNIST and MNIST is 0), and ``label`` is a ``torch.long`` scalar, or a float32 vector of 0/1 for the
multi-label task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

MULTI_CLASS = "multi-class"
MULTI_LABEL = "multi-label, binary-class"
BINARY = "binary-class"
ORDINAL = "ordinal-regression"
TASKS = (MULTI_CLASS, MULTI_LABEL, BINARY, ORDINAL)

SPLITS = ("train", "val", "test")

Transform = Callable[[torch.Tensor], torch.Tensor]


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    return split


class ImageDataset(Dataset):
    """Base class: metadata plus the ``(image, label)`` contract.

    Subclasses implement :meth:`_raw_image` (float tensor in [0, 1], channels first, before ``as_rgb``).

    Attributes:
        name: registry name, e.g. ``"pathmnist"`` or ``"fashion-mnist"``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        task: one of MedMNIST's task names: ``"multi-class"``, ``"multi-label, binary-class"``,
            ``"binary-class"``, ``"ordinal-regression"``.
        label_names: one name per class (per label for the multi-label task).
        n_channels: channels of the returned image (3 when ``as_rgb`` turned gray into RGB).
        spatial_dims: 2 or 3.
        image_size: spatial shape of the stored images, ``(H, W)`` or ``(D, H, W)``, before ``transform``.
        labels: int64 array ``(N,)`` of class indices, or ``(N, L)`` of 0/1 for the multi-label task.
        transform: callable applied to the image tensor, or None.
    """

    def __init__(
        self,
        *,
        name: str,
        split: str,
        task: str,
        label_names: Sequence[str],
        n_channels: int,
        spatial_dims: int,
        image_size: tuple[int, ...],
        labels: np.ndarray,
        as_rgb: bool = False,
        transform: Transform | None = None,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        self.name = name
        self.split = check_split(split)
        self.task = task
        self.label_names: list[str] = list(label_names)
        self._source_channels = n_channels
        # Converting gray to RGB lets ImageNet-style 3-channel models run unchanged; RGB data are untouched.
        self.as_rgb = as_rgb
        self.n_channels = 3 if as_rgb else n_channels
        self.spatial_dims = spatial_dims
        self.image_size = tuple(int(s) for s in image_size)
        self.labels = labels
        self.transform = transform

    @property
    def n_classes(self) -> int:
        """Number of output units a classifier needs (labels for the multi-label task)."""
        return len(self.label_names)

    @property
    def multi_label(self) -> bool:
        return self.task == MULTI_LABEL

    def __len__(self) -> int:
        return len(self.labels)

    def _raw_image(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def label(self, index: int) -> torch.Tensor:
        """The target of item ``index``: long scalar, or float 0/1 vector for the multi-label task."""
        if self.multi_label:
            return torch.as_tensor(self.labels[index], dtype=torch.float32)
        return torch.tensor(int(self.labels[index]), dtype=torch.long)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        image = self._raw_image(int(index) % len(self))
        if self.as_rgb and image.shape[0] == 1:
            image = image.expand(3, *image.shape[1:]).clone()
        if self.transform is not None:
            image = self.transform(image)
        return image, self.label(int(index) % len(self))

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.image_size))
        return (
            f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)}, task={self.task!r}, "
            f"n_classes={self.n_classes}, n_channels={self.n_channels}, image_size={shape})"
        )


class ArrayDataset(ImageDataset):
    """An :class:`ImageDataset` over an in-memory uint8 array.

    Args:
        images: uint8 array ``(N, H, W)`` (gray), ``(N, H, W, 3)`` (RGB, channels last as stored by MedMNIST)
            or ``(N, D, H, W)`` (3D, ``spatial_dims=3``).
        labels: ``(N,)`` class indices or ``(N, L)`` 0/1 multi-label targets.
        **meta: the keyword arguments of :class:`ImageDataset` other than ``n_channels``, ``image_size``
            and ``labels``, which are derived from the arrays.

    Example:
        >>> import numpy as np
        >>> ds = ArrayDataset(np.zeros((4, 8, 8), np.uint8), np.arange(4) % 2, name="toy", split="train",
        ...                   task="binary-class", label_names=["a", "b"], spatial_dims=2)
        >>> x, y = ds[1]
        >>> tuple(x.shape), x.dtype, int(y)
        ((1, 8, 8), torch.float32, 1)
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, spatial_dims: int, **meta) -> None:
        channels_last = images.ndim == spatial_dims + 2
        n_channels = images.shape[-1] if channels_last else 1
        image_size = images.shape[1 : 1 + spatial_dims]
        task = meta["task"]
        labels = np.asarray(labels)
        if task == MULTI_LABEL:
            labels = labels.astype(np.int64).reshape(len(labels), -1)
        else:
            labels = labels.astype(np.int64).reshape(len(labels))
        super().__init__(
            n_channels=n_channels, spatial_dims=spatial_dims, image_size=image_size, labels=labels, **meta
        )
        self.images = images
        self._channels_last = channels_last

    def _raw_image(self, index: int) -> torch.Tensor:
        # np.array copies: the source may be a read-only buffer (IDX files) or a memory map.
        image = torch.from_numpy(np.array(self.images[index])).float().div_(255.0)
        if self._channels_last:
            return image.movedim(-1, 0).contiguous()
        return image.unsqueeze(0)
