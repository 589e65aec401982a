"""The SRE_Conv compatibility module exposes the official model names, backed by sreconv.models."""

import pytest
import torch
import torch.nn as nn

import SRE_Conv
import sreconv


def test_official_model_names():
    for name in ("sre_resnet18", "sre_resnet34", "sre_resnet50", "SRE_ResNet", "SREBasicBlock", "SREBottleneck",
                 "convert_to_SRE_conv", "sre_r3d_18"):
        assert hasattr(SRE_Conv, name) and name in SRE_Conv.__all__
    model = SRE_Conv.sre_resnet18(sre_conv_size=[9, 9, 5, 5], num_classes=9, skip_first_maxpool=True)
    assert isinstance(model, SRE_Conv.SRE_ResNet)
    assert sum(p.numel() for p in model.parameters()) == 3996105
    assert SRE_Conv.sre_r3d_18(progress=False, num_classes=2, inplanes=4).fc.out_features == 2


def test_convert_to_SRE_conv_returns_the_model():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
    assert SRE_Conv.convert_to_SRE_conv(model) is model
    assert isinstance(model[0], sreconv.SREConv2d)


@pytest.mark.slow
def test_top_level_exports():
    assert "sre_resnet18" in sreconv.list_models()
    model = sreconv.create_model("sre_resnet18", num_classes=2, inplanes=4, in_channels=1)
    assert sreconv.check_equivariance(model, (1, 9, 9)).passed
    assert sreconv.convert_to_sre(nn.Conv2d(1, 1, 3)).__class__ is sreconv.SREConv2d
    assert model(torch.randn(2, 1, 9, 9)).shape == (2, 2)
