import gzip
import os

import numpy as np
import pytest
import torch

from sreconv.data import CorruptDatasetError, DatasetNotFoundError, build_dataset
from sreconv.data.fashion_mnist import LABEL_NAMES, read_idx

from .fakes import fashion_arrays, write_fashion, write_idx


@pytest.mark.parametrize("compress", [True, False])
def test_splits_from_idx_files(tmp_path, compress):
    write_fashion(tmp_path, n_train=100, n_test=20, compress=compress)
    train = build_dataset("fashion-mnist", "train", data_root=str(tmp_path))
    val = build_dataset("fashion-mnist", "val", data_root=str(tmp_path))
    test = build_dataset("fashion-mnist", "test", data_root=str(tmp_path))
    assert (len(train), len(val), len(test)) == (90, 10, 20)
    assert train.label_names == list(LABEL_NAMES) and train.task == "multi-class" and train.n_classes == 10
    # Stratified: every class keeps its share in val.
    assert np.bincount(val.labels, minlength=10).tolist() == [1] * 10
    image, label = test[3]
    images, labels = fashion_arrays(20, seed=1)
    torch.testing.assert_close(image, torch.from_numpy(images[3]).float()[None] / 255)
    assert label.dtype == torch.long and int(label) == labels[3]


def test_train_val_disjoint_and_seeded(tmp_path):
    write_fashion(tmp_path, n_train=200)

    def ids(split, seed):
        ds = build_dataset("fashion-mnist", split, data_root=str(tmp_path), seed=seed, val_fraction=0.25)
        return {ds.images[i].tobytes() for i in range(len(ds))}

    train, val = ids("train", 0), ids("val", 0)
    assert not train & val and len(train | val) == 200
    assert val == ids("val", 0)
    assert val != ids("val", 1)


def test_torchvision_raw_layout(tmp_path):
    write_fashion(tmp_path / "FashionMNIST" / "raw", n_train=50, n_test=10)
    ds = build_dataset("fashion-mnist", "test", data_root=str(tmp_path), as_rgb=True)
    assert len(ds) == 10 and ds[0][0].shape == (3, 28, 28) and ds.n_channels == 3


def test_missing_files_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset("fashion-mnist", "train", data_root=str(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and "train-images-idx3-ubyte" in msg and str(tmp_path) in msg
    assert "apt-get install dataset-fashion-mnist" in msg


def test_default_root_is_debian_package(monkeypatch):
    from sreconv.data import fashion_mnist

    assert fashion_mnist.DEFAULT_ROOT == "/usr/share/datasets/fashion-mnist"
    if not os.path.isdir(fashion_mnist.DEFAULT_ROOT):
        with pytest.raises(DatasetNotFoundError, match="/usr/share/datasets/fashion-mnist"):
            build_dataset("fashion-mnist", "test")


def test_bad_magic(tmp_path):
    paths = write_fashion(tmp_path, n_train=20, n_test=10)
    images, _ = fashion_arrays(10)
    # Write label-style magic (1 dim) into the image file.
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images.reshape(-1))
    with pytest.raises(CorruptDatasetError, match="not an IDX uint8 file of 3 dims") as err:
        build_dataset("fashion-mnist", "test", data_root=str(tmp_path))
    assert paths["t10k-images"] in str(err.value)


def test_truncated_payload_and_gzip(tmp_path):
    write_fashion(tmp_path, n_train=20, n_test=10)
    raw = gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(raw[:-100])
    with pytest.raises(CorruptDatasetError, match="IDX header says shape"):
        read_idx(str(tmp_path / "t10k-images-idx3-ubyte.gz"), 3)
    data = (tmp_path / "train-labels-idx1-ubyte.gz").read_bytes()
    with open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(CorruptDatasetError, match="cannot decompress") as err:
        build_dataset("fashion-mnist", "val", data_root=str(tmp_path))
    assert "train-labels-idx1-ubyte.gz" in str(err.value) and "\n" not in str(err.value)


def test_count_mismatch_and_label_range(tmp_path):
    write_fashion(tmp_path, n_train=20, n_test=10)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(9, np.uint8))
    with pytest.raises(CorruptDatasetError, match="10 images but"):
        build_dataset("fashion-mnist", "test", data_root=str(tmp_path))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(10, 12, np.uint8))
    with pytest.raises(CorruptDatasetError, match="label 12"):
        build_dataset("fashion-mnist", "test", data_root=str(tmp_path))


def test_size_and_download_rejected(tmp_path):
    with pytest.raises(ValueError, match="28x28"):
        build_dataset("fashion-mnist", "train", data_root=str(tmp_path), size=32)
    with pytest.raises(ValueError, match="apt-get"):
        build_dataset("fashion-mnist", "train", data_root=str(tmp_path), download=True)


@pytest.mark.skipif(
    not os.path.isfile("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"),
    reason="needs `apt-get install dataset-fashion-mnist`",
)
def test_real_debian_files():
    test = build_dataset("fashion-mnist", "test")
    val = build_dataset("fashion-mnist", "val")
    assert len(test) == 10000 and len(val) == 6000
    assert np.bincount(val.labels).tolist() == [600] * 10
    image, label = test[0]
    assert image.shape == (1, 28, 28) and test.label_names[int(label)] == "Ankle boot"
