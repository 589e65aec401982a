"""MedMNIST v2 (2D and 3D) through the ``medmnist`` package.

Files are the package's own: ``<root>/<flag>.npz`` for 28-pixel images and ``<root>/<flag>_<size>.npz``
otherwise, holding uint8 arrays ``{train,val,test}_images`` (gray ``(N,S,S)``, RGB ``(N,S,S,3)``, 3D
``(N,S,S,S)``) and ``{train,val,test}_labels`` ``(N,1)`` (``(N,14)`` for chestmnist). Loading goes through the
``medmnist`` dataset classes (their constructor finds, optionally downloads and reads the file); we then
take their arrays, validate them and serve them through :class:`~sreconv.data.base.ArrayDataset`. Their own
``__len__`` is never called because it asserts the official sample count, which would reject subsets.
"""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from .base import MULTI_LABEL, ArrayDataset, Transform, check_split
from .errors import CorruptDatasetError, DatasetNotFoundError

FLAGS_2D = (
    "pathmnist",
    "chestmnist",
    "dermamnist",
    "octmnist",
    "pneumoniamnist",
    "retinamnist",
    "breastmnist",
    "bloodmnist",
    "tissuemnist",
    "organamnist",
    "organcmnist",
    "organsmnist",
)
FLAGS_3D = (
    "organmnist3d",
    "nodulemnist3d",
    "adrenalmnist3d",
    "fracturemnist3d",
    "vesselmnist3d",
    "synapsemnist3d",
)
SIZES_2D = (28, 64, 128, 224)
SIZES_3D = (28, 64)


def _size_suffix(size: int) -> str:
    return "" if size == 28 else f"_{size}"


def medmnist_filename(flag: str, size: int = 28) -> str:
    """Name of the npz file the ``medmnist`` package uses for ``flag`` at ``size``.

    Example:
        >>> medmnist_filename("pathmnist"), medmnist_filename("organmnist3d", 64)
        ('pathmnist.npz', 'organmnist3d_64.npz')
    """
    return f"{flag}{_size_suffix(size)}.npz"


def medmnist_info(flag: str) -> dict:
    """``medmnist.INFO[flag]`` (task, label names, n_channels, n_samples, urls)."""
    import medmnist  # lazy: the package is optional and creates ~/.medmnist on import

    return medmnist.INFO[flag]


def _default_root() -> str:
    from medmnist.info import DEFAULT_ROOT

    return DEFAULT_ROOT


def _check_flag_size(flag: str, size: int) -> int:
    if flag in FLAGS_2D:
        sizes = SIZES_2D
    elif flag in FLAGS_3D:
        sizes = SIZES_3D
    else:
        raise ValueError(f"unknown MedMNIST flag {flag!r}; valid flags: {', '.join(FLAGS_2D + FLAGS_3D)}")
    if size not in sizes:
        raise ValueError(f"{flag} comes in sizes {sizes}, got size={size}")
    return size


def _get_hint(flag: str, size: int, root: str, info: dict) -> str:
    url = info[f"url{_size_suffix(size)}"]
    size_flag = f" --medmnist-size {size}" if size != 28 else ""
    return (
        f"download it with `sreconv train --dataset {flag}{size_flag} --data-root {root} --download` (downloads, "
        f"then trains; or `python -c \"import medmnist; "
        f"medmnist.{info['python_class']}(split='test', size={size}, root='{root}', download=True)\"`, or "
        f"build_dataset(..., download=True)), or fetch {url} into {root}"
    )


def _validate(path: str, flag: str, size: int, split: str, info: dict, images, labels) -> None:
    """Checks the arrays of one split against the format the package documents."""
    n_channels = info["n_channels"]
    if flag in FLAGS_3D:
        expected = (size, size, size)
    elif n_channels == 1:
        expected = (size, size)
    else:
        expected = (size, size, n_channels)
    n_labels = len(info["label"]) if info["task"] == MULTI_LABEL else 1

    def bad(what: str) -> CorruptDatasetError:
        return CorruptDatasetError(f"{path}: {split} split {what}; delete the file and download it again")

    if images.dtype != np.uint8:
        raise bad(f"images have dtype {images.dtype}, expected uint8")
    if images.ndim != len(expected) + 1 or tuple(images.shape[1:]) != expected:
        raise bad(f"images have shape {images.shape}, expected (N, {', '.join(map(str, expected))})")
    if not np.issubdtype(labels.dtype, np.integer):
        raise bad(f"labels have dtype {labels.dtype}, expected an integer type")
    if labels.ndim != 2 or labels.shape != (images.shape[0], n_labels):
        raise bad(f"labels have shape {labels.shape}, expected ({images.shape[0]}, {n_labels})")
    upper = 1 if info["task"] == MULTI_LABEL else len(info["label"]) - 1
    if labels.size and (labels.min() < 0 or labels.max() > upper):
        raise bad(f"labels span [{labels.min()}, {labels.max()}], expected values in [0, {upper}]")


class MedMNISTDataset(ArrayDataset):
    """One split of a MedMNIST dataset as float tensors in [0, 1].

    Args:
        flag: MedMNIST flag, e.g. ``"pathmnist"``, ``"chestmnist"``, ``"organmnist3d"``.
        split: ``"train"``, ``"val"`` or ``"test"`` (MedMNIST ships all three).
        data_root: folder holding the npz files; default: the ``medmnist`` package default (``~/.medmnist``).
        size: 28, 64, 128 or 224 for 2D flags; 28 or 64 for 3D flags.
        as_rgb: repeat gray images to 3 channels.
        transform: applied to the ``(C, H, W)`` / ``(C, D, H, W)`` float tensor.
        download: let ``medmnist`` download the file from zenodo when it is missing (needs internet).

    Raises:
        DatasetNotFoundError: file missing (and not downloaded); the message says how to get it.
        CorruptDatasetError: the file cannot be read or has the wrong keys, dtype or shape.

    Example:
        >>> ds = MedMNISTDataset("pathmnist", "test", data_root="/data/medmnist")  # doctest: +SKIP
        >>> image, label = ds[0]  # doctest: +SKIP
        >>> image.shape, label.dtype  # doctest: +SKIP
        (torch.Size([3, 28, 28]), torch.int64)
    """

    def __init__(
        self,
        flag: str,
        split: str,
        data_root: str | None = None,
        size: int = 28,
        as_rgb: bool = False,
        transform: Transform | None = None,
        download: bool = False,
    ) -> None:
        flag = flag.lower()
        size = _check_flag_size(flag, size)
        check_split(split)
        import medmnist

        info = medmnist.INFO[flag]
        root = os.path.abspath(os.path.expanduser(data_root if data_root is not None else _default_root()))
        path = os.path.join(root, medmnist_filename(flag, size))
        if download:
            # medmnist refuses a root that does not exist; downloading into a fresh folder is the common case.
            os.makedirs(root, exist_ok=True)
        elif not os.path.isfile(path):
            raise DatasetNotFoundError(
                f"MedMNIST file {os.path.basename(path)} not found in {root}; {_get_hint(flag, size, root, info)}"
            )

        cls = getattr(medmnist, info["python_class"])
        try:
            source = cls(split=split, root=root, size=size, download=download)
        except RuntimeError as err:
            if download:
                url = info[f"url{_size_suffix(size)}"]
                raise DatasetNotFoundError(
                    f"MedMNIST download of {os.path.basename(path)} into {root} failed; fetch {url} manually "
                    f"(MD5 {info[f'MD5{_size_suffix(size)}']}) and put it in {root}"
                ) from err
            raise
        except KeyError as err:
            with np.load(path) as npz:
                present = sorted(npz.files)
            missing = [k for k in (f"{split}_images", f"{split}_labels") if k not in present]
            raise CorruptDatasetError(
                f"{path}: missing array(s) {', '.join(missing)} (file holds {', '.join(present) or 'nothing'}); "
                "delete the file and download it again"
            ) from err
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as err:
            msg = str(err).splitlines()[0] if str(err) else ""
            raise CorruptDatasetError(
                f"{path}: unreadable npz ({type(err).__name__}: {msg}); delete the file and download it again"
            ) from err

        images, labels = source.imgs, source.labels
        _validate(path, flag, size, split, info, images, labels)
        label_names = [info["label"][k] for k in sorted(info["label"], key=int)]
        super().__init__(
            images,
            labels,
            spatial_dims=3 if flag in FLAGS_3D else 2,
            name=flag,
            split=split,
            task=info["task"],
            label_names=label_names,
            as_rgb=as_rgb,
            transform=transform,
        )
        self.path = path
        self.size = size
