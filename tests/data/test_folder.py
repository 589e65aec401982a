import os

import numpy as np
import pytest
import torch

pytest.importorskip("torchvision")

from sreconv.data import CorruptDatasetError, DatasetNotFoundError, build_dataset

from .fakes import write_folder, write_png


def test_pool_is_split_seeded_and_stratified(tmp_path):
    root = write_folder(tmp_path / "pool", classes=("a", "b", "c"), per_class=10)
    parts = {s: build_dataset("folder", s, data_root=root, size=12) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [21, 3, 6]
    paths = {s: {p for p, _ in ds.samples} for s, ds in parts.items()}
    assert (
        not paths["train"] & paths["val"]
        and not paths["val"] & paths["test"]
        and not paths["train"] & paths["test"]
    )
    assert len(set().union(*paths.values())) == 30
    ds = parts["test"]
    assert ds.label_names == ["a", "b", "c"] and ds.task == "multi-class" and ds.n_channels == 1
    for i in range(len(ds)):
        image, label = ds[i]
        # Class c has intensity 40 * (c + 1) everywhere but the top-left pixel.
        assert image.shape == (1, 12, 12) and abs(float(image[0, 5, 5]) * 255 - 40 * (int(label) + 1)) < 1
    again = build_dataset("folder", "test", data_root=root, size=12)
    assert again.samples == ds.samples


def test_train_test_layout_with_and_without_val(tmp_path):
    write_folder(tmp_path / "train", classes=("benign", "malignant"), per_class=10, rgb=True)
    write_folder(tmp_path / "test", classes=("benign", "malignant"), per_class=3, rgb=True)
    train = build_dataset("folder", "train", data_root=str(tmp_path), size=16)
    val = build_dataset("folder", "val", data_root=str(tmp_path), size=16)
    test = build_dataset("folder", "test", data_root=str(tmp_path), size=16)
    assert (len(train), len(val), len(test)) == (18, 2, 6)
    assert train.task == "binary-class" and train.n_channels == 3
    image, label = test[0]
    assert image.shape == (3, 16, 16) and label.dtype == torch.long  # resized from 12 to 16
    write_folder(tmp_path / "val", classes=("malignant",), per_class=4, rgb=True)
    val = build_dataset("folder", "val", data_root=str(tmp_path), size=16)
    assert len(val) == 4 and val.labels.tolist() == [1] * 4  # same class indices as train
    assert len(build_dataset("folder", "train", data_root=str(tmp_path), size=16)) == 20


def test_as_rgb_and_mixed_modes(tmp_path):
    root = write_folder(tmp_path, classes=("x", "y"), per_class=4)
    write_png(os.path.join(root, "y", "rgb.png"), np.zeros((12, 12, 3), np.uint8))
    ds = build_dataset("folder", "train", data_root=root, size=12, as_rgb=True)
    assert ds.n_channels == 3 and all(ds[i][0].shape == (3, 12, 12) for i in range(len(ds)))
    gray = build_dataset("folder", "train", data_root=root, size=12)
    assert all(gray[i][0].shape == (1, 12, 12) for i in range(len(gray)))


def test_corrupt_image_names_file(tmp_path):
    root = write_folder(tmp_path, classes=("x", "y"), per_class=5)
    bad = os.path.join(root, "y", "4.png")
    with open(bad, "wb") as fh:
        fh.write(b"\x89PNG garbage")
    for split in ("train", "val", "test"):
        ds = build_dataset("folder", split, data_root=root, size=12)
        paths = [p for p, _ in ds.samples]
        if bad in paths:
            with pytest.raises(CorruptDatasetError, match="4.png"):
                ds[paths.index(bad)]
            break
    else:
        pytest.fail("the corrupt file is in no split")
    # The first image decides the channel count, so a corrupt first image fails at construction.
    with open(os.path.join(root, "x", "0.png"), "wb") as fh:
        fh.write(b"")
    with pytest.raises(CorruptDatasetError, match="0.png"):
        build_dataset("folder", "train", data_root=root, size=12)


def test_unknown_class_in_test(tmp_path):
    write_folder(tmp_path / "train", classes=("a", "b"), per_class=3)
    write_folder(tmp_path / "test", classes=("a", "zzz"), per_class=2)
    with pytest.raises(CorruptDatasetError, match="zzz"):
        build_dataset("folder", "test", data_root=str(tmp_path))


def test_missing_and_empty_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nowhere"):
        build_dataset("folder", "train", data_root=str(tmp_path / "nowhere"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(DatasetNotFoundError, match="empty"):
        build_dataset("folder", "train", data_root=str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="data_root"):
        build_dataset("folder", "train")
