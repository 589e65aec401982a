import io
import warnings

import pytest
import torch
import torch.nn as nn

from sreconv.models import convert_to_sre, convert_to_SRE_conv
from sreconv.nn import SREConv2d, SREConv3d
from sreconv.nn.pooling import SymmetricPool

from ._util import max_invariance_error

torchvision = pytest.importorskip("torchvision")


def _convert_quiet(model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_to_sre(model, return_report=True, **kwargs)


@pytest.fixture(scope="module")
def converted_resnet18():
    torch.manual_seed(0)
    model, report = _convert_quiet(torchvision.models.resnet18(num_classes=7))
    return model.double().eval(), report


@pytest.mark.slow
def test_torchvision_resnet18_report(converted_resnet18):
    model, report = converted_resnet18
    assert len(report.converted) == 17  # every 3x3/7x7 convolution
    assert "conv1" in report.restrided and "layer2.0.downsample.0" in report.restrided  # strided 1x1 shortcut
    assert report.pools == ["maxpool"] and report.unconverted == []
    assert isinstance(model.conv1, SREConv2d) and isinstance(model.maxpool, SymmetricPool)
    assert not any(type(m) is nn.Conv2d and m.kernel_size != (1, 1) for m in model.modules())


@pytest.mark.parametrize("size", [32, pytest.param(224, marks=pytest.mark.slow)])
def test_torchvision_resnet18_exactly_invariant(converted_resnet18, size):
    model, _ = converted_resnet18
    x = torch.randn(1, 3, size, size, dtype=torch.float64)
    assert max_invariance_error(model, x, "d4") < 1e-10


def test_unconverted_resnet18_is_not_invariant():
    model = torchvision.models.resnet18(num_classes=7).double().eval()
    assert max_invariance_error(model, torch.randn(1, 3, 32, 32, dtype=torch.float64), "d4") > 1e-4


def test_projection_keeps_radial_kernels():
    conv = nn.Conv2d(2, 3, 5, padding=2)
    sre = SREConv2d(2, 3, 5, padding=2)
    conv.weight.data.copy_(sre.kernel().detach())  # a kernel that already is radial
    conv.bias.data.copy_(sre.bias.data)
    net = _convert_quiet(nn.Sequential(conv))[0]
    x = torch.randn(1, 2, 9, 9)
    assert torch.allclose(net(x), sre(x), atol=1e-5)


def test_state_dict_keys_survive_conversion():
    model = torchvision.models.resnet18()
    keys = set(model.state_dict())
    converted = _convert_quiet(model)[0]
    assert set(converted.state_dict()) == keys
    buffer = io.BytesIO()
    torch.save(converted, buffer)  # dynamically built stride classes pickle
    buffer.seek(0)
    assert type(torch.load(buffer, weights_only=False).conv1).__name__ == "CenteredStrideSREConv2d"


def _tiny_vgg(head):
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2, 2)]
    return nn.Sequential(nn.Sequential(*layers), head)


def test_small_vgg_global_pool_is_invariant():
    model, report = _convert_quiet(_tiny_vgg(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))),
                                   input_shape=(3, 30, 30))
    assert report.ok and report.check.passed
    assert len(report.converted) == 2 and len(report.pools) == 2


def test_small_vgg_flatten_linear_is_reported():
    head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 7 * 7, 4))
    with pytest.warns(UserWarning, match="could not make these layers equivariant"):
        model, report = convert_to_sre(_tiny_vgg(head), input_shape=(3, 28, 28), return_report=True)
    assert not report.ok
    assert report.check.first_broken == "1.1"  # the Linear on the flattened (reordered) features
    assert [name for name, _ in report.unconverted] == ["1.1"]


def test_3d_cnn():
    net = nn.Sequential(
        nn.Conv3d(1, 4, 3, stride=2, padding=1), nn.BatchNorm3d(4), nn.ReLU(),
        nn.MaxPool3d(3, 2, 1), nn.Conv3d(4, 8, 5, padding=2), nn.Conv3d(8, 8, 1, stride=2),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 2))
    net, report = _convert_quiet(net, input_shape=(1, 7, 7, 7))
    assert isinstance(net[0], SREConv3d) and isinstance(net[4], SREConv3d)
    assert report.restrided == ["0", "5"] and report.ok
    x = torch.randn(1, 1, 9, 9, 9, dtype=torch.float64)
    assert max_invariance_error(net.double().eval(), x, "cube") < 1e-10


def test_official_name_returns_model():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, stride=2), nn.AvgPool2d(2))
    out = convert_to_SRE_conv(model, sre_conv_size=5, sre_k=2)
    assert out is model
    assert model[0].kernel_size == (5, 5) and model[0].padding == (2, 2) and model[0].sre_k == 2
    assert isinstance(model[1], SymmetricPool)
