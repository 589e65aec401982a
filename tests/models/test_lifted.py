"""The D4-symmetrised research variants (sreconv.models.lifted):
registered, exactly D4-invariant logits (checked with sreconv.check_equivariance), bad arguments rejected."""

import pytest
import torch
import torch.nn as nn

from sreconv import check_equivariance, create_model, list_models
from sreconv.models import D4Symmetrize, model_info

TINY = dict(num_classes=3, in_channels=1, inplanes=4, skip_first_maxpool=True, sre_conv_size=[3, 3, 3, 3])


@pytest.mark.parametrize("name", ["sre_resnet18_d4stem", "sre_resnet18_d4stage1"])
@pytest.mark.slow
def test_registered_and_invariant(name):
    assert name in list_models(invariant=True) and model_info(name).group == "d4"
    model = create_model(name, **TINY)
    for size in (9, 12):  # odd and even sizes
        report = check_equivariance(model, (1, size, size), "d4")
        assert report.output_kind == "invariant"
        assert report.output_error < 1e-9, report.per_element


@pytest.mark.parametrize("pool", ["max", "mean"])
def test_symmetrize_equivariant_on_any_module(pool):
    f = D4Symmetrize(nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 5, padding=2)),
                     pool).double()
    x = torch.randn(2, 2, 7, 10, dtype=torch.float64)  # non-square: transposed copies run separately
    y = f(x)
    assert y.shape == (2, 2, 7, 10)
    assert torch.allclose(f(x.rot90(1, (2, 3))), y.rot90(1, (2, 3)), atol=1e-12)
    assert torch.allclose(f(x.flip(-1)), y.flip(-1), atol=1e-12)
    assert torch.allclose(f(x.transpose(-1, -2)), y.transpose(-1, -2), atol=1e-12)


def test_lifted_stem_sees_orientation():
    # A plain lifting stem distinguishes a horizontal bar from a cross, where a single isotropic ring kernel
    # responds identically to both bars' centre lines; here: orientation-selective features exist at all.
    model = create_model("sre_resnet18_d4stem", **TINY).eval()
    assert isinstance(model.conv1, D4Symmetrize)
    assert model.conv1.module[0].weight.shape == (4, 1, 5, 5)  # a full (anisotropic) 5x5 kernel


def test_bad_arguments():
    with pytest.raises(ValueError, match="pool"):
        D4Symmetrize(nn.Identity(), "min")
    with pytest.raises(ValueError, match="lift"):
        create_model("sre_resnet18_d4stem", lift="stage9", **TINY)
    with pytest.raises(ValueError, match="odd"):
        create_model("sre_resnet18_d4stem", lift_kernel_size=4, **TINY)


def test_params_close_to_sre_resnet18():
    kw = dict(num_classes=10, in_channels=1, inplanes=16, skip_first_maxpool=True, sre_conv_size=[9, 9, 5, 5])
    base = sum(p.numel() for p in create_model("sre_resnet18", **kw).parameters())
    plain_model = create_model("plain_resnet18", num_classes=10, in_channels=1, inplanes=16)
    plain = sum(p.numel() for p in plain_model.parameters())
    for name in ("sre_resnet18_d4stem", "sre_resnet18_d4stage1"):
        n = sum(p.numel() for p in create_model(name, **kw).parameters())
        assert n < 1.05 * base and n <= 0.4 * plain

