"""Writers of small files in the exact on-disk formats of the real datasets."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from sreconv.data.medmnist import FLAGS_3D, medmnist_filename

SMALL = {"train": 6, "val": 4, "test": 5}


def medmnist_arrays(flag: str, size: int = 28, counts=SMALL, seed: int = 0) -> dict:
    """The arrays of a MedMNIST npz: uint8 images and (N, L) uint8 labels, as in the zenodo files."""
    import medmnist

    info = medmnist.INFO[flag]
    rng = np.random.default_rng(seed)
    if flag in FLAGS_3D:
        shape = (size, size, size)
    elif info["n_channels"] == 1:
        shape = (size, size)
    else:
        shape = (size, size, 3)
    arrays = {}
    for split, n in counts.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        if info["task"].startswith("multi-label"):
            labels = rng.integers(0, 2, size=(n, len(info["label"])))
        else:
            labels = (np.arange(n) % len(info["label"]))[:, None]
        arrays[f"{split}_labels"] = labels.astype(np.uint8)
    return arrays


def write_medmnist(root, flag: str, size: int = 28, arrays=None, **kw) -> str:
    """Writes ``<root>/<flag>[_<size>].npz`` the way the real files are stored (np.savez_compressed)."""
    os.makedirs(root, exist_ok=True)
    path = os.path.join(str(root), medmnist_filename(flag, size))
    np.savez_compressed(path, **(arrays if arrays is not None else medmnist_arrays(flag, size, **kw)))
    return path


def write_idx(path, array: np.ndarray, compress: bool = True) -> str:
    """Writes an unsigned-byte IDX file: magic 0x0000080N, big-endian dims, raw bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.tobytes()
    path = str(path) + (".gz" if compress else "")
    with gzip.open(path, "wb") if compress else open(path, "wb") as fh:
        fh.write(payload)
    return path


def fashion_arrays(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def write_fashion(root, n_train: int = 100, n_test: int = 20, compress: bool = True) -> dict:
    os.makedirs(root, exist_ok=True)
    paths = {}
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = fashion_arrays(n, seed)
        paths[f"{prefix}-images"] = write_idx(
            os.path.join(root, f"{prefix}-images-idx3-ubyte"), images, compress
        )
        paths[f"{prefix}-labels"] = write_idx(
            os.path.join(root, f"{prefix}-labels-idx1-ubyte"), labels, compress
        )
    return paths


def write_png(path, array: np.ndarray) -> str:
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_folder(
    root, classes=("cat", "dog"), per_class: int = 10, size: int = 12, rgb: bool = False, seed=0
):
    """``<root>/<class>/<i>.png`` images whose mean intensity encodes the class (class i -> value 40 * (i+1))."""
    rng = np.random.default_rng(seed)
    for ci, name in enumerate(classes):
        for i in range(per_class):
            shape = (size, size, 3) if rgb else (size, size)
            img = np.full(shape, 40 * (ci + 1), dtype=np.uint8)
            img[0, 0] = rng.integers(0, 256)
            write_png(os.path.join(str(root), name, f"{i}.png"), img)
    return str(root)
