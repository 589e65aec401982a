import pytest
import torch

from sreconv.models import create_model, list_models, model_info

from ._util import max_invariance_error

_SMALL = {"inplanes": 4, "num_classes": 3}


def test_list_models():
    names = list_models()
    for name in ("sre_resnet18", "sre_resnet34", "sre_resnet50", "sre_r3d_18", "resnet18", "r3d_18"):
        assert name in names
    assert list_models("sre_r3d*") == ["sre_r3d_18", "sre_r3d_34"]
    assert "resnet18" not in list_models(invariant=True)
    assert set(list_models(spatial_dims=3)) == {"sre_r3d_18", "sre_r3d_34", "r3d_18"}


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="Did you mean 'sre_resnet18'.*Valid names: .*sre_r3d_18"):
        create_model("sre_resnet_18")


@pytest.mark.parametrize("name", list_models(invariant=True))
def test_every_invariant_model_is_exactly_invariant(name):
    info = model_info(name)
    model = create_model(name, in_channels=2, **_SMALL).double().eval()
    sizes = (28, 33) if info.spatial_dims == 2 else (16,)  # more sizes in test_resnet.py
    for size in sizes:
        x = torch.randn(1, 2, *(size,) * info.spatial_dims, dtype=torch.float64)
        assert max_invariance_error(model, x, info.group) < 1e-10, (name, size)


@pytest.mark.parametrize("name", list_models())
def test_every_model_has_classifier_interface(name):
    info = model_info(name)
    model = create_model(name, in_channels=1, **_SMALL).eval()
    x = torch.randn(2, 1, *(8,) * info.spatial_dims)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert torch.allclose(model.forward_head(feats), model(x))
        model.reset_classifier(5)
        assert model(x).shape == (2, 5)
