"""Any ImageFolder-style directory (``<root>/<class>/<image>``), with or without split subfolders.

Layouts, checked in this order:

* ``<root>/train/<class>/...`` and ``<root>/test/<class>/...`` (optionally ``<root>/val/<class>/...``): the
  given splits; without ``val``, a seeded stratified validation split is carved out of ``train``.
* ``<root>/<class>/...``: one pool, split seeded and stratified into train / val / test.

Class indices come from the sorted class folder names of ``train`` (or of the pool), as torchvision's
``ImageFolder`` assigns them, and ``val``/``test`` use the same mapping. Images are read lazily with PIL.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .base import BINARY, MULTI_CLASS, ImageDataset, Transform, check_split
from .errors import CorruptDatasetError, DatasetNotFoundError
from .splits import stratified_split, train_val_split

DEFAULT_VAL_FRACTION = 0.1
TEST_FRACTION = 0.2
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _scan(directory: str, class_to_idx=None) -> tuple[list[tuple[str, int]], list[str]]:
    from torchvision.datasets import ImageFolder
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    try:
        if class_to_idx is None:
            folder = ImageFolder(directory)
            return list(folder.samples), list(folder.classes)
        extra = sorted(set(find_classes(directory)[0]) - set(class_to_idx))
        if extra:
            raise CorruptDatasetError(
                f"image folder {directory}: classes {extra} do not exist in the train folder"
            )
        # A held-out split may legitimately lack a rare class, so empty or missing class folders are allowed.
        samples = make_dataset(directory, class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
        if not samples:
            raise FileNotFoundError(f"Found no images in {directory}")
        return samples, sorted(class_to_idx, key=class_to_idx.get)
    except FileNotFoundError as err:
        raise DatasetNotFoundError(
            f"image folder {directory}: {str(err).splitlines()[0]}; expected <root>/<class>/<image> "
            "or <root>/{train,test}/<class>/<image>"
        ) from err


def _load_pil(path: str, mode: str | None, size: int | None):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if mode is not None:
                img = img.convert(mode)
            if size is not None and img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            return img
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptDatasetError(f"{path}: unreadable image ({type(err).__name__}: {err})") from err


class ImageFolderDataset(ImageDataset):
    """One split of an image-folder dataset, resized to ``size x size``.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        data_root: the folder (see the module docstring for the accepted layouts).
        size: side of the square the images are resized to (bilinear) when they differ.
        as_rgb: force 3 channels; otherwise the channel count follows the first training image
            (1 for gray modes, else 3) and every image is converted to it.
        transform: applied to the ``(C, size, size)`` float tensor in [0, 1].
        val_fraction: fraction per class of the training pool held out as val; unused when a ``val``
            folder exists.
        seed: seed of the carved splits.

    Example:
        >>> ds = ImageFolderDataset("train", data_root="my_images", size=64)  # doctest: +SKIP
        >>> ds.label_names  # doctest: +SKIP
        ['benign', 'malignant']
    """

    def __init__(
        self,
        split: str,
        data_root: str,
        size: int = 28,
        as_rgb: bool = False,
        transform: Transform | None = None,
        val_fraction: float = DEFAULT_VAL_FRACTION,
        seed: int = 0,
    ) -> None:
        check_split(split)
        if not data_root:
            raise ValueError("the image-folder dataset needs data_root=<folder>")
        root = os.path.abspath(os.path.expanduser(data_root))
        if not os.path.isdir(root):
            raise DatasetNotFoundError(
                f"image folder {root} not found; expected <root>/<class>/<image> or <root>/{{train,test}}/<class>/"
            )
        split_dirs = {s: os.path.join(root, s) for s in ("train", "val", "test")}
        if os.path.isdir(split_dirs["train"]) and os.path.isdir(split_dirs["test"]):
            train_samples, classes = _scan(split_dirs["train"])
            class_to_idx = {c: i for i, c in enumerate(classes)}
            has_val = os.path.isdir(split_dirs["val"])
            if split == "test" or (split == "val" and has_val):
                samples = _scan(split_dirs[split], class_to_idx)[0]
            elif split == "train" and has_val:
                samples = train_samples
            else:
                train, val = train_val_split([t for _, t in train_samples], val_fraction, seed)
                samples = [train_samples[i] for i in (train if split == "train" else val)]
        else:
            pool, classes = _scan(root)
            parts = stratified_split(
                [t for _, t in pool],
                [(1 - TEST_FRACTION) * (1 - val_fraction), (1 - TEST_FRACTION) * val_fraction, TEST_FRACTION],
                seed,
            )
            train_samples = pool
            samples = [pool[i] for i in parts[("train", "val", "test").index(split)]]

        first = _load_pil(train_samples[0][0], None, None)
        n_channels = 1 if first.mode in _GRAY_MODES else 3
        # Converting every image to one mode keeps batches stackable when a folder mixes gray and RGB files.
        self._mode = "RGB" if (as_rgb or n_channels == 3) else "L"
        super().__init__(
            name="folder",
            split=split,
            task=BINARY if len(classes) == 2 else MULTI_CLASS,
            label_names=classes,
            n_channels=3 if self._mode == "RGB" else 1,
            spatial_dims=2,
            image_size=(size, size),
            labels=np.asarray([t for _, t in samples], dtype=np.int64),
            transform=transform,
        )
        self.root = root
        self.samples = samples
        self.size = size

    def _raw_image(self, index: int) -> torch.Tensor:
        img = _load_pil(self.samples[index][0], self._mode, self.size)
        array = np.asarray(img, dtype=np.uint8)
        image = torch.from_numpy(array.copy()).float().div_(255.0)
        return image.movedim(-1, 0).contiguous() if image.dim() == 3 else image.unsqueeze(0)
