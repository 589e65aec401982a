import os
import zipfile

import medmnist
import numpy as np
import pytest
import torch

from sreconv.data import CorruptDatasetError, DatasetNotFoundError, build_dataset
from sreconv.data.medmnist import FLAGS_2D, FLAGS_3D, MedMNISTDataset

from .fakes import SMALL, medmnist_arrays, write_medmnist


@pytest.mark.parametrize("flag", FLAGS_2D + FLAGS_3D)
def test_every_flag_loads_through_medmnist(tmp_path, flag):
    write_medmnist(tmp_path, flag)
    info = medmnist.INFO[flag]
    for split, n in SMALL.items():
        ds = build_dataset(flag, split, data_root=str(tmp_path))
        assert len(ds) == n
        image, label = ds[0]
        spatial = (28,) * (3 if flag in FLAGS_3D else 2)
        assert image.shape == (info["n_channels"], *spatial)
        assert image.dtype == torch.float32 and 0.0 <= image.min() and image.max() <= 1.0
        assert ds.task == info["task"] and ds.n_channels == info["n_channels"]
        assert ds.spatial_dims == len(spatial) and ds.image_size == spatial
        assert ds.label_names == [info["label"][str(i)] for i in range(len(info["label"]))]
        if ds.multi_label:
            assert label.dtype == torch.float32 and label.shape == (14,)
        else:
            assert label.dtype == torch.long and label.dim() == 0


def test_pixels_and_labels_match_the_file(tmp_path):
    arrays = medmnist_arrays("pathmnist")
    write_medmnist(tmp_path, "pathmnist", arrays=arrays)
    ds = build_dataset("pathmnist", "val", data_root=str(tmp_path))
    image, label = ds[2]
    expected = torch.from_numpy(arrays["val_images"][2]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(image, expected)
    assert int(label) == int(arrays["val_labels"][2, 0])
    assert ds[-1][0].shape == (3, 28, 28)


def test_chestmnist_multilabel_vector(tmp_path):
    arrays = medmnist_arrays("chestmnist")
    write_medmnist(tmp_path, "chestmnist", arrays=arrays)
    ds = build_dataset("chestmnist", "train", data_root=str(tmp_path))
    assert ds.task == "multi-label, binary-class" and ds.n_classes == 14 and ds.multi_label
    _, label = ds[3]
    torch.testing.assert_close(label, torch.from_numpy(arrays["train_labels"][3]).float())
    assert ds.labels.shape == (6, 14)


def test_larger_sizes_and_as_rgb(tmp_path):
    write_medmnist(tmp_path, "breastmnist", size=64)
    write_medmnist(tmp_path, "nodulemnist3d", size=64)
    ds = build_dataset("breastmnist", "test", data_root=str(tmp_path), size=64, as_rgb=True)
    image, _ = ds[0]
    assert image.shape == (3, 64, 64) and ds.n_channels == 3
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    vol = build_dataset("nodulemnist3d", "train", data_root=str(tmp_path), size=64)
    assert vol[0][0].shape == (1, 64, 64, 64) and vol.image_size == (64, 64, 64)


def test_transform_receives_float_tensor(tmp_path):
    write_medmnist(tmp_path, "dermamnist")
    seen = []

    def transform(x):
        seen.append((x.shape, x.dtype))
        return x * 2

    ds = build_dataset("dermamnist", "test", data_root=str(tmp_path), transform=transform)
    assert ds[0][0].max() <= 2.0
    assert seen == [((3, 28, 28), torch.float32)]


def test_missing_file_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset("pathmnist", "train", data_root=str(tmp_path), size=128)
    msg = str(err.value)
    assert "\n" not in msg
    assert "pathmnist_128.npz" in msg and str(tmp_path) in msg
    assert "download=True" in msg and medmnist.INFO["pathmnist"]["url_128"] in msg
    assert f"sreconv train --dataset pathmnist --medmnist-size 128 --data-root {tmp_path} --download" in msg


def test_missing_root_message(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not found in .*nowhere"):
        build_dataset("octmnist", "train", data_root=str(tmp_path / "nowhere"))


def test_download_uses_medmnist_download(tmp_path, monkeypatch):
    """download=True goes through medmnist's own download (torchvision's download_url, offline here)."""
    import torchvision.datasets.utils as tv_utils

    calls = []

    def fake_download_url(url, root, filename, md5):
        calls.append((url, filename, md5))
        write_medmnist(root, "retinamnist")

    monkeypatch.setattr(tv_utils, "download_url", fake_download_url)
    root = tmp_path / "fresh"
    ds = build_dataset("retinamnist", "train", data_root=str(root), download=True)
    assert len(ds) == SMALL["train"] and ds.task == "ordinal-regression"
    info = medmnist.INFO["retinamnist"]
    assert calls == [(info["url"], "retinamnist.npz", info["MD5"])]


def test_failed_download_message(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(tv_utils, "download_url", offline)
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset("organmnist3d", "test", data_root=str(tmp_path), size=64, download=True)
    msg = str(err.value)
    assert "\n" not in msg and "organmnist3d_64.npz" in msg
    assert medmnist.INFO["organmnist3d"]["url_64"] in msg


def test_truncated_npz(tmp_path):
    path = write_medmnist(tmp_path, "bloodmnist")
    with open(path, "rb") as fh:
        data = fh.read()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(CorruptDatasetError) as err:
        build_dataset("bloodmnist", "train", data_root=str(tmp_path))
    assert path in str(err.value) and "\n" not in str(err.value)


def test_not_a_zip(tmp_path):
    path = os.path.join(tmp_path, "tissuemnist.npz")
    with open(path, "wb") as fh:
        fh.write(b"this is not an npz file at all")
    with pytest.raises(CorruptDatasetError, match="tissuemnist.npz"):
        build_dataset("tissuemnist", "val", data_root=str(tmp_path))


def test_missing_key(tmp_path):
    arrays = medmnist_arrays("organcmnist")
    del arrays["test_labels"]
    path = write_medmnist(tmp_path, "organcmnist", arrays=arrays)
    build_dataset("organcmnist", "train", data_root=str(tmp_path))  # other splits still load
    with pytest.raises(CorruptDatasetError, match="test_labels") as err:
        build_dataset("organcmnist", "test", data_root=str(tmp_path))
    assert path in str(err.value)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda a: a.update(train_images=a["train_images"].astype(np.float32)), "dtype float32"),
        (lambda a: a.update(train_images=a["train_images"][:, :20]), "shape"),
        (lambda a: a.update(train_labels=a["train_labels"][:3]), "labels have shape"),
        (lambda a: a.update(train_labels=a["train_labels"] + 50), "labels span"),
        (lambda a: a.update(train_labels=a["train_labels"].astype(np.float64)), "labels have dtype"),
    ],
)
def test_wrong_format(tmp_path, change, match):
    arrays = medmnist_arrays("organsmnist")
    change(arrays)
    path = write_medmnist(tmp_path, "organsmnist", arrays=arrays)
    with pytest.raises(CorruptDatasetError, match=match) as err:
        build_dataset("organsmnist", "train", data_root=str(tmp_path))
    assert str(err.value).startswith(path)


def test_rgb_flag_with_gray_arrays_is_rejected(tmp_path):
    arrays = medmnist_arrays("octmnist")  # gray arrays written under an RGB flag
    write_medmnist(tmp_path, "pathmnist", arrays=arrays)
    with pytest.raises(CorruptDatasetError, match="expected \\(N, 28, 28, 3\\)"):
        MedMNISTDataset("pathmnist", "train", data_root=str(tmp_path))


def test_bad_size_and_val_fraction(tmp_path):
    with pytest.raises(ValueError, match="sizes"):
        build_dataset("organmnist3d", "train", data_root=str(tmp_path), size=128)
    with pytest.raises(ValueError, match="official validation"):
        build_dataset("pathmnist", "train", data_root=str(tmp_path), val_fraction=0.2)


def test_medmnist_len_assertion_not_triggered(tmp_path):
    """Tiny files must work although medmnist's own __len__ asserts the official sample count."""
    write_medmnist(tmp_path, "pneumoniamnist")
    ds = build_dataset("pneumoniamnist", "train", data_root=str(tmp_path))
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    images, labels = next(iter(loader))
    assert images.shape == (4, 1, 28, 28) and labels.shape == (4,) and labels.dtype == torch.long
    assert "zipfile" not in repr(ds) and "pneumoniamnist" in repr(ds)


def test_zip_member_name_independent_of_compression(tmp_path):
    """Uncompressed np.savez files (as some mirrors ship) read the same."""
    arrays = medmnist_arrays("breastmnist")
    np.savez(os.path.join(tmp_path, "breastmnist.npz"), **arrays)
    assert zipfile.is_zipfile(os.path.join(tmp_path, "breastmnist.npz"))
    assert len(build_dataset("breastmnist", "test", data_root=str(tmp_path))) == SMALL["test"]
