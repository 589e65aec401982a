import math

import pytest
import torch
import torch.nn as nn

from sreconv.equivariance import check_equivariance
from sreconv.models import create_model, sre_resnet18
from sreconv.nn import SREConv2d, SREConv3d


def test_sre_model_passes():
    report = check_equivariance(sre_resnet18(num_classes=3, inplanes=4), (3, 33, 33))
    assert report.passed and report.first_broken is None
    assert report.group == "d4" and len(report.per_element) == 8 and report.output_kind == "invariant"
    assert report.output_error < 1e-12
    assert report.layers[-1].name == "" and report.layers[0].name == "conv1"


def test_finds_the_offending_layer_in_a_broken_model():
    model = sre_resnet18(num_classes=3, inplanes=4, skip_first_maxpool=True)
    model.layer3[1].conv1 = nn.Conv2d(16, 16, 3, padding=1, bias=False)  # deliberately not symmetric
    report = check_equivariance(model, (3, 16, 16))
    assert not report.passed
    assert report.first_broken == "layer3.1.conv1"
    assert all(layer.error < 1e-12 for layer in report.layers[: [layer.name for layer in report.layers].index(
        "layer3.1.conv1")])
    assert "layer3.1.conv1" in report.summary()


def test_official_downsample_breaks_at_the_odd_pooling():
    model = sre_resnet18(num_classes=3, inplanes=4, skip_first_maxpool=True, downsample="official")
    report = check_equivariance(model, (3, 28, 28))  # 28 -> 14 -> 7 -> AvgPool2d(2) drops a row
    assert report.first_broken == "layer4.0.downsample.0"
    assert check_equivariance(model, (3, 32, 32)).passed  # even sizes all the way down: exact


def test_equivariant_output_and_1d_and_3d():
    conv = nn.Sequential(SREConv2d(2, 3, 5, padding=2), nn.ReLU())
    report = check_equivariance(conv, (2, 9, 9))
    assert report.passed and report.output_kind == "equivariant"
    from sreconv.nn import SREConv1d
    assert check_equivariance(SREConv1d(1, 2, 3, padding=1), (1, 10)).group == "flip"
    report3 = check_equivariance(SREConv3d(1, 2, 3, padding=1), (1, 5, 5, 5))
    assert report3.group == "cube" and len(report3.per_element) == 48 and report3.passed
    # a plain conv is caught
    assert not check_equivariance(nn.Conv2d(1, 1, 3), (1, 7, 7)).passed


def test_flatten_linear_is_named():
    net = nn.Sequential(SREConv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 7 * 7, 3))
    report = check_equivariance(net, (1, 7, 7))
    assert report.first_broken == "1"
    assert [layer.kind for layer in report.layers[:3]] == ["equivariant", "invariant", "invariant"]


def test_train_mode_and_float32_and_model_untouched():
    model = create_model("sre_resnet18", num_classes=3, inplanes=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert check_equivariance(model, (2, 3, 17, 17), train=True).passed
    report = check_equivariance(model, (3, 17, 17), dtype=torch.float32)
    assert report.passed and report.tol == 1e-4
    assert model.training and next(model.parameters()).dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_shape_mismatch_is_infinite():
    class Crop(nn.Module):
        def forward(self, x):
            return x[..., 1:, :]

    report = check_equivariance(Crop(), (1, 6, 6), group="d4")
    assert math.isinf(report.output_error)


def test_bad_input_shape():
    with pytest.raises(ValueError, match="acts on 2 spatial dims"):
        check_equivariance(nn.Conv2d(1, 1, 1), (1, 4, 4, 4, 4, 4), group="d4")
    with pytest.raises(ValueError, match="group must be one of"):
        check_equivariance(nn.Conv2d(1, 1, 1), (1, 4, 4), group="c4")
