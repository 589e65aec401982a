"""Rotation/flip evaluation: invariant models score identically on exact symmetries, asymmetric ones do not."""


import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset, TensorDataset

from sreconv import SREConv2d, SREConv3d
from sreconv.engine import evaluate, evaluate_flips, evaluate_rotations


class InvariantNet(nn.Module):
    """SRE conv + global average pool: logits exactly invariant to rot90 and flips (up to rounding)."""

    def __init__(self, ndim=2, classes=3):
        super().__init__()
        conv = SREConv2d if ndim == 2 else SREConv3d
        self.conv = conv(1, 8, 5, padding=2)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(2).mean(-1))


class TransformDataset(Dataset):
    """A dataset with a mutable transform, to check evaluation leaves it alone."""

    def __init__(self, images, labels):
        self.images, self.labels, self.transform = images, labels, (lambda x: x)
        self.task, self.spatial_dims = "multi-class", images.dim() - 2

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def _data(ndim=2, n=24, size=9, classes=3):
    torch.manual_seed(0)
    images = torch.rand(n, 1, *([size] * ndim), dtype=torch.float64)
    return images, torch.arange(n) % classes


def test_invariant_model_2d_identical_at_quarter_turns_and_flips():
    images, _ = _data()
    model = InvariantNet().double().eval()
    labels = model(images).argmax(1)
    labels[:4] = (labels[:4] + 1) % 3  # imperfect, so the metrics are not trivially 1
    data = TransformDataset(images, labels)
    transform = data.transform
    rot = evaluate_rotations(model, data, angles=[0, 90, 180, 270, 45], batch_size=10)
    assert rot["angles"] == [0.0, 90.0, 180.0, 270.0, 45.0]
    for key in ("acc", "auc", "balanced_acc", "f1"):
        assert len(set(rot[key][:4])) == 1, (key, rot[key])
    assert rot["acc"][0] == pytest.approx(20 / 24)
    flips = evaluate_flips(model, data)
    assert list(flips) == ["none", "horizontal", "vertical"]
    assert flips["none"] == flips["horizontal"] == flips["vertical"]
    assert data.transform is transform  # evaluation never touches the dataset's transform
    assert rot["acc"][0] == evaluate(model, data)["acc"]


def test_asymmetric_model_differs():
    images, _ = _data(n=60)
    model = nn.Sequential(nn.Flatten(), nn.Linear(81, 3)).double().eval()
    data = TensorDataset(images, model(images).argmax(1))  # perfect upright by construction
    rot = evaluate_rotations(model, data, angles=[0, 90, 180], task="multi-class", spatial_dims=2)
    assert rot["acc"][0] == 1.0 and rot["acc"][1] < 1.0 and rot["acc"][2] < 1.0
    flips = evaluate_flips(model, data, spatial_dims=2)
    assert flips["none"]["acc"] == 1.0 and flips["horizontal"]["acc"] < 1.0


def test_default_angles_and_mask():
    images, labels = _data(n=6)
    model = InvariantNet().double().eval()
    data = TensorDataset(images, labels)
    rot = evaluate_rotations(model, data, mask=True)
    assert rot["angles"] == [float(a) for a in range(0, 360, 10)]
    assert len(rot["acc"]) == 36


@pytest.mark.slow
def test_invariant_model_3d_axes_and_depth_flip():
    images, _ = _data(ndim=3, n=8, size=7)
    model = InvariantNet(ndim=3).double().eval()
    labels = model(images).argmax(1)
    labels[:2] = (labels[:2] + 1) % 3
    data = TensorDataset(images, labels)
    rot = evaluate_rotations(model, data, angles=[0, 90, 180, 270], spatial_dims=3)
    assert list(rot) == ["x", "y", "z"]
    for axis in rot.values():
        assert len(set(axis["acc"])) == 1 and axis["acc"][0] == 0.75
    flips = evaluate_flips(model, data, spatial_dims=3)
    assert list(flips) == ["none", "horizontal", "vertical", "depth"]
    assert len({f["acc"] for f in flips.values()}) == 1
    default = evaluate_rotations(model, data, axes=["z"], spatial_dims=3)
    assert list(default) == ["z"] and len(default["z"]["angles"]) == 12


def test_bad_arguments():
    images, labels = _data(n=4)
    data = TensorDataset(images, labels)
    model = InvariantNet().double()
    with pytest.raises(ValueError, match="flip modes"):
        evaluate_flips(model, data, modes=["diagonal"])
    with pytest.raises(ValueError, match="axes only apply"):
        evaluate_rotations(model, data, axes=["x"])
    with pytest.raises(ValueError, match="unknown task"):
        evaluate(model, data, task="segmentation")


def test_model_mode_restored():
    images, labels = _data(n=4)
    model = InvariantNet().double().train()
    evaluate(model, TensorDataset(images, labels))
    assert model.training
