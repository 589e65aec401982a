import pytest
import torch

from sreconv.models import create_model, list_models, model_info
from tests.tiers import representatives

from ._util import max_invariance_error

_SMALL = {"inplanes": 4, "num_classes": 3}


def test_list_models():
    names = list_models()
    for name in ("sre_resnet18", "sre_resnet34", "sre_resnet50", "sre_r3d_18", "plain_resnet18", "plain_r3d_18"):
        assert name in names
    assert list_models("sre_r3d*") == ["sre_r3d_18", "sre_r3d_34"]
    assert "plain_resnet18" not in list_models(invariant=True)
    assert set(list_models(spatial_dims=3)) == {"sre_r3d_18", "sre_r3d_34", "sre_cube_r3d_18",
                                                "sre_cube_aligned_r3d_18", "plain_r3d_18"}


def test_old_baseline_names_are_aliases():
    """Saved configs name the baselines resnet18/resnet34/r3d_18; they still build, but are not listed."""
    for alias, name in (("resnet18", "plain_resnet18"), ("resnet34", "plain_resnet34"), ("r3d_18", "plain_r3d_18")):
        assert model_info(alias).name == name and alias not in list_models()
        assert type(create_model(alias, num_classes=2, inplanes=4)) is type(create_model(name, num_classes=2,
                                                                                           inplanes=4))


def test_descriptions_come_from_docstrings():
    assert model_info("sre_resnet18").description.startswith("SRE-ResNet-18 (Du et al.")
    assert all(model_info(name).description for name in list_models())


@pytest.mark.parametrize("bad", [-2, 1.5, True, "3"])
def test_bad_num_classes_is_refused(bad):
    with pytest.raises(ValueError, match="num_classes must be an int >= 0"):
        create_model("sre_resnet18", num_classes=bad, inplanes=4)


def test_register_model_rejects_unknown_group_and_taken_names():
    from sreconv.models import register_model

    with pytest.raises(ValueError, match="group must be one of d4, cube or None"):
        register_model(spatial_dims=2, group="so2")
    with pytest.raises(ValueError, match="'sre_resnet18' is already registered"):
        register_model(spatial_dims=2, group="d4", name="sre_resnet18")(lambda **kw: None)


def test_create_model_loads_a_checkpoint(tmp_path):
    model = create_model("sre_resnet18", num_classes=3, inplanes=4).eval()
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 1},
               tmp_path / "ckpt.pt")
    loaded = create_model("sre_resnet18", checkpoint_path=str(tmp_path / "ckpt.pt"), num_classes=3,
                          inplanes=4).eval()
    x = torch.randn(1, 3, 12, 12)
    assert torch.equal(loaded(x), model(x))
    with pytest.raises(ValueError, match="does not fit model 'sre_resnet18'"):
        create_model("sre_resnet18", checkpoint_path=str(tmp_path / "ckpt.pt"), num_classes=5, inplanes=4)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="Did you mean 'sre_resnet18'.*Valid names: .*sre_r3d_18"):
        create_model("sre_resnet_18")


@pytest.mark.parametrize("name", representatives(list_models(invariant=True), ["sre_resnet18"]))
def test_every_invariant_model_is_exactly_invariant(name):
    info = model_info(name)
    model = create_model(name, in_channels=2, **_SMALL).double().eval()
    sizes = (28, 33) if info.spatial_dims == 2 else (16,)  # more sizes in test_resnet.py
    for size in sizes:
        x = torch.randn(1, 2, *(size,) * info.spatial_dims, dtype=torch.float64)
        assert max_invariance_error(model, x, info.group) < 1e-10, (name, size)


@pytest.mark.parametrize("name", representatives(list_models(), ["sre_resnet18", "sre_r3d_18"]))
def test_every_model_has_classifier_interface(name):
    info = model_info(name)
    model = create_model(name, in_channels=1, **_SMALL).eval()
    x = torch.randn(2, 1, *(8,) * info.spatial_dims)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert torch.allclose(model.forward_head(feats), model(x))
        model.reset_classifier(5)
        assert model(x).shape == (2, 5)
