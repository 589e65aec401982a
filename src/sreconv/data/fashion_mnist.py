"""Fashion-MNIST from its IDX files (gzipped or not).

On Debian/Ubuntu the files come from the ``dataset-fashion-mnist`` package, installed to
``/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``; torchvision's
``<root>/FashionMNIST/raw/`` folder holds the same files and is accepted too. The 60k training images are split
(stratified, seeded) into train and val; the 10k ``t10k`` images are the test split.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from .base import MULTI_CLASS, ArrayDataset, Transform, check_split
from .errors import CorruptDatasetError, DatasetNotFoundError
from .splits import train_val_split

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
LABEL_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DEFAULT_VAL_FRACTION = 0.1
_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08


def read_idx(path: str, ndim: int) -> np.ndarray:
    """Reads an unsigned-byte IDX file (the MNIST format), gzipped or not.

    The header is two zero bytes, a type byte (0x08 = uint8), the number of dimensions, then one big-endian
    uint32 per dimension; the data follow in C order.

    Args:
        path: file to read; gzip is detected from the content, not the name.
        ndim: expected number of dimensions (3 for images, 1 for labels).

    Returns:
        uint8 array with the shape given by the header.

    Raises:
        CorruptDatasetError: bad magic number, wrong dimensionality, truncated or oversized data.

    Example:
        >>> images = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", 3)  # doctest: +SKIP
        >>> images.shape  # doctest: +SKIP
        (10000, 28, 28)
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise CorruptDatasetError(f"{path}: cannot decompress ({type(err).__name__}: {err})") from err
    magic = raw[:4]
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] != _UBYTE or magic[3] != ndim:
        raise CorruptDatasetError(
            f"{path}: not an IDX uint8 file of {ndim} dims (magic {magic.hex() or 'missing'}, "
            f"expected 000008{ndim:02x})"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDatasetError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise CorruptDatasetError(
            f"{path}: IDX header says shape {shape} ({expected} bytes) but the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(dirs: list[str], stem: str) -> str:
    for folder in dirs:
        for name in (stem + ".gz", stem):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    raise DatasetNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {' or '.join(dirs)}; install it with "
        f"`apt-get install dataset-fashion-mnist` (files go to {DEFAULT_ROOT}) or pass data_root=<folder "
        "with the IDX files, or torchvision's root holding FashionMNIST/raw>"
    )


def load_fashion_mnist_arrays(data_root: str | None, prefix: str):
    """Reads ``<prefix>-images-idx3-ubyte[.gz]`` and ``<prefix>-labels-idx1-ubyte[.gz]``.

    Args:
        data_root: folder with the files, or a torchvision root containing ``FashionMNIST/raw``.
        prefix: ``"train"`` or ``"t10k"``.

    Returns:
        ``(images (N, 28, 28) uint8, labels (N,) uint8)``.
    """
    root = os.path.abspath(os.path.expanduser(data_root or DEFAULT_ROOT))
    dirs = [root, os.path.join(root, "FashionMNIST", "raw")]
    image_path = _find(dirs, f"{prefix}-images-idx3-ubyte")
    label_path = _find(dirs, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(image_path, 3)
    labels = read_idx(label_path, 1)
    if len(images) != len(labels):
        raise CorruptDatasetError(
            f"{image_path}: {len(images)} images but {label_path} has {len(labels)} labels"
        )
    if labels.size and labels.max() >= len(LABEL_NAMES):
        raise CorruptDatasetError(f"{label_path}: label {labels.max()} outside 0..{len(LABEL_NAMES) - 1}")
    return images, labels


class FashionMNISTDataset(ArrayDataset):
    """Fashion-MNIST (10 classes, 28x28 gray) with a seeded validation split carved from train.

    Args:
        split: ``"train"``, ``"val"`` (both from the 60k training files) or ``"test"`` (the 10k t10k files).
        data_root: IDX folder; default ``/usr/share/datasets/fashion-mnist``.
        as_rgb: repeat the gray channel 3 times.
        transform: applied to the ``(C, 28, 28)`` float tensor.
        val_fraction: fraction of each class of the 60k training images held out as ``"val"``.
        seed: seed of that split; use the same value for the train and val datasets.

    Example:
        >>> ds = FashionMNISTDataset("val")  # doctest: +SKIP
        >>> len(ds), ds.n_classes  # doctest: +SKIP
        (6000, 10)
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
        images, labels = load_fashion_mnist_arrays(data_root, "t10k" if split == "test" else "train")
        if split != "test":
            train, val = train_val_split(labels, val_fraction, seed)
            keep = train if split == "train" else val
            images, labels = images[keep], labels[keep]
        super().__init__(
            images,
            labels,
            spatial_dims=2,
            name="fashion-mnist",
            split=split,
            task=MULTI_CLASS,
            label_names=LABEL_NAMES,
            as_rgb=as_rgb,
            transform=transform,
        )
