"""Cube-group equivariant SRE-ResNets (sreconv.models.cube): registered, logits exactly invariant to all 48 cube
symmetries in float64 on odd, even and non-cubic volumes (also behind the alignment), the engine's keyword
arguments, the classifier interface, export, bad arguments."""

import pytest
import torch
import torch.nn as nn

from sreconv import create_model, export_to_conv
from sreconv.groups import grid_symmetries
from sreconv.models import CubeResNet3d, model_info
from sreconv.nn import CubeGroupConv3d, CubeLiftConv3d, group_regular_action
from tests.models._util import max_invariance_error
from tests.tiers import representatives

TINY = dict(num_classes=3, in_channels=1, layers=(1, 1, 1, 1), fields=1)


@pytest.mark.parametrize("size", representatives([7, 8, (6, 7, 8)], [(6, 7, 8)]))
def test_logits_exactly_invariant_over_all_48(size):
    model = CubeResNet3d(**TINY).double().eval()
    shape = (size,) * 3 if isinstance(size, int) else size
    x = torch.randn(1, 1, *shape, dtype=torch.float64)
    if isinstance(size, int):
        assert max_invariance_error(model, x, "cube") < 1e-10
    else:  # a non-cubic volume's orbit has 6 shapes: one batch per axis permutation
        ref = model(x)
        for perm in {g.perm for g in grid_symmetries(3)}:
            with torch.no_grad():
                out = model(torch.cat([g.apply(x) for g in grid_symmetries(3) if g.perm == perm]))
            assert torch.allclose(out, ref.expand_as(out), rtol=0, atol=1e-10 * ref.abs().max().item()), perm


def test_aligned_logits_exactly_invariant_over_all_48():
    model = CubeResNet3d(align_input=True, **TINY).double().eval()
    x = torch.randn(1, 1, 8, 8, 8, dtype=torch.float64)
    assert max_invariance_error(model, x, "cube") < 1e-10


@pytest.mark.parametrize("name", representatives(["sre_cube_r3d_18", "sre_cube_aligned_r3d_18"], ["sre_cube_r3d_18"]))
def test_registered_models_build_with_the_engine_arguments(name):
    info = model_info(name)
    assert info.group == "cube" and info.spatial_dims == 3 and info.invariant
    # what sreconv train passes to every invariant 3D model (its defaults: width 16, sizes 9 9 5 5)
    model = create_model(name, num_classes=4, in_channels=1, inplanes=16, sre_conv_size=[3, 3, 3, 3],
                         layers=(1, 1, 1, 1)).double().eval()
    x = torch.randn(1, 1, 7, 7, 7, dtype=torch.float64)
    assert model(x).shape == (1, 4)
    assert max_invariance_error(model, x, "cube") < 1e-10


def test_default_design_and_width():
    model = create_model("sre_cube_r3d_18", num_classes=10, in_channels=1)
    assert model.conv1.basis_kind == "harmonic" and model.conv1.out_fields == 1 and model.conv1.kernel_size == 3
    convs = [m for m in model.modules() if isinstance(m, CubeGroupConv3d) and m.kernel_size > 1]
    assert len(convs) == 16 and all(m.basis_kind == "full" for m in convs)
    assert model.num_features == 8 and model.gpool.mode == "max"
    assert create_model("sre_cube_r3d_18", inplanes=96).conv1.out_fields == 2


def test_train_mode_is_equivariant_too():
    model = CubeResNet3d(**TINY).double().train()
    x = torch.randn(2, 1, 6, 6, 6, dtype=torch.float64)
    for g in (grid_symmetries(3)[5], grid_symmetries(3)[40]):
        out = model(torch.cat([x, g.apply(x)]))
        assert torch.allclose(out[:2], out[2:], atol=1e-10 * out.abs().max().item())


def test_features_are_regular_fields_before_group_pooling():
    model = CubeResNet3d(**TINY).double().eval()
    x = torch.randn(1, 1, 5, 5, 5, dtype=torch.float64)
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.layer1)
    y = stem(x)
    for t in (1, 17, 33, 47):
        assert torch.allclose(stem(grid_symmetries(3)[t].apply(x)), group_regular_action(y, t, 3), atol=1e-12)


def test_classifier_interface_and_state_dict():
    model = CubeResNet3d(**TINY).eval()
    x = torch.randn(2, 1, 8, 8, 8)
    features = model.forward_features(x)
    assert features.shape == (2, model.num_features, 1, 1, 1)
    assert torch.allclose(model.forward_head(features), model(x))
    model.reset_classifier(5)
    assert model(x).shape == (2, 5)
    with pytest.raises(ValueError, match="in_channels=1 but the input has 2 channels"):
        model(torch.randn(1, 2, 8, 8, 8))
    keys = list(model.state_dict())
    assert keys == list(model.train().state_dict())
    assert not any("basis" in k or "relative_index" in k for k in keys)


@pytest.mark.slow
def test_export_to_plain_convs_and_trace():
    model = CubeResNet3d(**TINY).eval()
    x = torch.randn(1, 1, 7, 7, 7)
    expected = model(x)
    export_to_conv(model)
    assert not any(isinstance(m, (CubeGroupConv3d, CubeLiftConv3d)) for m in model.modules())
    assert torch.allclose(model(x), expected, atol=1e-4)
    traced = torch.jit.trace(model, x)
    assert torch.allclose(traced(x), expected, atol=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(basis="rings"), "basis must be one of"),
    (dict(group_pool="min"), "group_pool must be one of"),
    (dict(layers=(1, 1)), "layers must list 4 block counts"),
    (dict(in_channels=0), "in_channels must be a positive int"),
    (dict(stem_max_frequency=3), "max_frequency must be at most 2 in 3D"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CubeResNet3d(**{**TINY, **kwargs})
