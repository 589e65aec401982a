import pytest
import torch
import torch.nn as nn

from sreconv.models import (
    SREBasicBlock,
    SREBasicBlock3d,
    SREBottleneck,
    plain_r3d_18,
    plain_resnet18,
    sre_r3d_18,
    sre_resnet18,
    sre_resnet34,
    sre_resnet50,
)
from sreconv.nn.pooling import SymmetricAvgPool2d

from ._util import max_equivariance_error, max_invariance_error


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_parameter_counts_match_official():
    # official SRE_Conv 1.0.2 counts (tests/oracle/official_*_keys.txt and the paper's figures)
    assert n_params(sre_resnet18(sre_conv_size=[9, 9, 5, 5], num_classes=9, skip_first_maxpool=True)) == 3996105
    assert n_params(sre_r3d_18()) == 2828432  # official default: k=3, 400 classes
    assert abs(n_params(sre_r3d_18(sre_conv_size=5, num_classes=11)) - 3.85e6) < 0.01e6
    assert abs(n_params(plain_resnet18(num_classes=9)) - 11.2e6) < 0.05e6
    assert abs(n_params(plain_r3d_18(num_classes=11)) - 33.2e6) < 0.05e6


def test_in_channels_respected_and_checked():
    model = sre_resnet18(in_channels=1, num_classes=2, inplanes=8)
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 2)
    with pytest.raises(ValueError, match="in_channels=1 but the input has 3 channels"):
        model(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match="expects a batch of shape"):
        model(torch.randn(1, 16, 16))
    model3d = sre_r3d_18(in_channels=2, num_classes=2, inplanes=4)
    with pytest.raises(ValueError, match="in_channels=2 but the input has 1 channels"):
        model3d(torch.randn(1, 1, 8, 8, 8))


@pytest.mark.parametrize("bad", [[9, 9, 5], [9, 9, 5, 5, 5], [9, 0, 5, 5], "9"])
def test_wrong_sre_conv_size(bad):
    with pytest.raises(ValueError, match="sre_conv_size"):
        sre_resnet18(sre_conv_size=bad)
    with pytest.raises(ValueError, match="sre_conv_size"):
        sre_r3d_18(sre_conv_size=bad)


def test_unknown_argument():
    with pytest.raises(TypeError, match="unexpected arguments"):
        sre_resnet18(bogus=1)


def test_per_stage_kernel_and_rings():
    model = sre_resnet18(sre_conv_size=[9, 7, 5, 3], sre_k=[5, 3, 2, 1], inplanes=8, ring_basis="gaussian")
    convs = [model.layer1[0].conv1, model.layer2[0].conv1[1], model.layer3[1].conv2, model.layer4[0].conv2]
    assert [c.kernel_size[0] for c in convs] == [9, 7, 5, 3]
    assert [c.sre_k for c in convs] == [5, 3, 2, 1]
    assert all(c.ring_basis == "gaussian" for c in convs)
    m3 = sre_r3d_18(sre_conv_size=[5, 5, 3, 3], sre_k=[2, 3, 1, 2], inplanes=4)
    assert [m3.layer1[0].conv1[1].sre_k, m3.layer2[1].conv2[0].sre_k, m3.layer3[0].conv1[1].sre_k,
            m3.layer4[0].conv2[0].sre_k] == [2, 3, 1, 2]
    assert m3.layer3[0].conv1[1].kernel_size == (3, 3, 3)


@pytest.mark.slow
def test_classifier_interface():
    model = sre_resnet18(num_classes=5, inplanes=8, skip_first_maxpool=True)
    x = torch.randn(2, 3, 16, 16)
    feats = model.forward_features(x)
    assert feats.shape == (2, 64, 2, 2)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 64)
    assert torch.allclose(model.forward_head(feats), model(x))
    model.reset_classifier(7)
    assert model(x).shape == (2, 7)
    model.reset_classifier(0)
    assert model(x).shape == (2, 64)


_2D = {
    "sre_resnet18": lambda: sre_resnet18(sre_conv_size=[9, 9, 5, 5], num_classes=5, inplanes=8),
    "sre_resnet18_maxpool_gaussian": lambda: sre_resnet18(sre_conv_size=5, num_classes=5, inplanes=8,
                                                          skip_first_maxpool=False, ring_basis="gaussian"),
    "sre_resnet34": lambda: sre_resnet34(sre_conv_size=3, num_classes=5, inplanes=4, skip_first_maxpool=True),
    "sre_resnet50": lambda: sre_resnet50(sre_conv_size=[5, 5, 3, 3], num_classes=5, inplanes=4,
                                         skip_first_maxpool=True),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_2D))
@pytest.mark.parametrize("size", [28, 32, 33, 64])
def test_exact_invariance_2d(name, size):
    torch.manual_seed(0)
    model = _2D[name]().double()
    model.train()
    with torch.no_grad():  # make batch-norm statistics non-trivial
        model(torch.randn(4, 3, size, size, dtype=torch.float64))
    model.eval()
    x = torch.randn(1, 3, size, size, dtype=torch.float64)
    assert max_invariance_error(model, x, "d4") < 1e-10


@pytest.mark.slow
@pytest.mark.parametrize("size", [15, 16])  # odd and even: 15 -> 8 -> 4 -> 2, 16 -> 8 -> 4 -> 2
def test_exact_invariance_3d(size):
    model = sre_r3d_18(sre_conv_size=[5, 5, 3, 3], sre_k=[3, 2, 2, 2], num_classes=3, in_channels=1,
                       inplanes=4).double().eval()
    x = torch.randn(1, 1, size, size, size, dtype=torch.float64)
    assert max_invariance_error(model, x, "cube") < 1e-10


@pytest.mark.slow
def test_official_downsample_is_not_exact_on_odd_sizes():
    exact = sre_resnet18(num_classes=5, inplanes=8, skip_first_maxpool=True).double().eval()
    official = sre_resnet18(num_classes=5, inplanes=8, skip_first_maxpool=True, downsample="official")
    official.load_state_dict(exact.state_dict())
    official.double().eval()
    x32 = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    assert torch.equal(exact(x32), official(x32))  # identical where the official layout is exact
    x28 = torch.randn(1, 3, 28, 28, dtype=torch.float64)
    assert max_invariance_error(exact, x28, "d4") < 1e-10
    assert max_invariance_error(official, x28, "d4") > 1e-6


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8])
def test_blocks_train_mode_equivariance(stride, size):
    torch.manual_seed(0)
    pool = SymmetricAvgPool2d(stride) if stride > 1 else nn.Identity()
    for block in (
        SREBasicBlock(4, 8, stride, nn.Sequential(pool, nn.Conv2d(4, 8, 1, bias=False), nn.BatchNorm2d(8)),
                      sre_conv_size=5),
        SREBottleneck(8, 4, stride, nn.Sequential(pool, nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16)),
                      sre_conv_size=3),
    ):
        block.double().train()
        x = torch.randn(3, block.conv1.in_channels if hasattr(block.conv1, "in_channels") else 4, size, size,
                        dtype=torch.float64)
        assert max_equivariance_error(block, x, "d4") < 1e-10


@pytest.mark.parametrize("size", [5, 6])
def test_block3d_train_mode_equivariance(size):
    """A strided 3D block with the shortcut SREResNet3d builds (exact pool + 1x1 conv + BN), batch statistics."""
    from sreconv.models.blocks import make_pool

    down = nn.Sequential(make_pool(2, 3, "exact"), nn.Conv3d(2, 4, 1, bias=False), nn.BatchNorm3d(4))
    block = SREBasicBlock3d(2, 4, 2, down, sre_conv_size=3).double().train()
    x = torch.randn(2, 2, size, size, size, dtype=torch.float64)
    assert block(x).shape == (2, 4, 3, 3, 3)
    assert max_equivariance_error(block, x, "cube") < 1e-10


def test_plain_baselines_are_not_invariant():
    model = plain_resnet18(num_classes=5, inplanes=8).double().eval()
    assert max_invariance_error(model, torch.randn(1, 3, 28, 28, dtype=torch.float64), "d4") > 1e-4
