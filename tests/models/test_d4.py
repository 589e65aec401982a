"""D4 group-equivariant SRE-ResNets (sreconv.models.d4): registered, exactly invariant logits in float64 at 28, 32
and 33 px, the engine's keyword arguments, the classifier interface, export, bad arguments."""

import pytest
import torch
import torch.nn as nn

from sreconv import create_model, export_to_conv, list_models
from sreconv.models import D4ResNet, model_info
from sreconv.nn import D4GroupConv2d, D4LiftConv2d, regular_action
from tests.models._util import max_invariance_error
from tests.tiers import each_value, representatives

TINY = dict(num_classes=3, in_channels=1, inplanes=8, layers=(1, 1, 1, 1))


@pytest.mark.parametrize("size,basis", each_value([28, 32, 33], ["full", "gaussian", "harmonic"]))
def test_logits_exactly_invariant(size, basis):
    model = D4ResNet(sre_conv_size=[5, 3, 3, 3], basis=basis, **TINY).double().eval()
    x = torch.randn(2, 1, size, size, dtype=torch.float64)
    assert max_invariance_error(model, x, "d4") < 1e-10


@pytest.mark.parametrize("name", sorted(n for n in list_models() if n.startswith("sre_d4_")))
def test_registered_models_build_with_the_engine_arguments_and_are_invariant(name):
    info = model_info(name)
    assert info.group == "d4" and info.spatial_dims == 2 and info.invariant
    # what sreconv train / compare pass to every invariant 2D model
    model = create_model(name, num_classes=4, in_channels=3, inplanes=8, sre_conv_size=[5, 5, 3, 3],
                         sre_k=[3, 3, 2, 2], skip_first_maxpool=True).double().eval()
    x = torch.randn(2, 3, 29, 29, dtype=torch.float64)
    assert model(x).shape == (2, 4)
    assert max_invariance_error(model, x, "d4") < 1e-10


def test_train_mode_is_equivariant_too():
    model = D4ResNet(**TINY).double().train()
    x = torch.randn(3, 1, 15, 15, dtype=torch.float64)
    # batch statistics of an orbit-closed batch are invariant: compare a batch with its transformed copy
    from sreconv.groups import grid_symmetries

    for g in grid_symmetries(2)[1:]:
        batch = torch.cat([x, g.apply(x)])
        out = model(batch)
        assert torch.allclose(out[:3], out[3:], atol=1e-10 * out.abs().max().item())


def test_classifier_interface():
    model = D4ResNet(**TINY).eval()
    x = torch.randn(2, 1, 16, 16)
    features = model.forward_features(x)
    assert features.shape == (2, model.num_features, 2, 2)
    assert torch.allclose(model.forward_head(features), model(x))
    assert model.forward_head(features, pre_logits=True).shape == (2, model.num_features)
    model.reset_classifier(7)
    assert model(x).shape == (2, 7)
    with pytest.raises(ValueError, match="in_channels=1 but the input has 3 channels"):
        model(torch.randn(1, 3, 16, 16))


def test_export_to_plain_convs_and_trace():
    model = D4ResNet(basis="harmonic", sre_conv_size=3, **TINY).eval()
    x = torch.randn(2, 1, 13, 13)
    expected = model(x)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, (D4GroupConv2d, D4LiftConv2d)):
                setattr(module, child_name, child.to_conv())
    export_to_conv(model)
    assert not any(isinstance(m, (D4GroupConv2d, D4LiftConv2d)) for m in model.modules())
    assert torch.allclose(model(x), expected, atol=1e-5)
    # traced: the centre-aligned poolings of sreconv.nn.pooling do not script (their error messages use type())
    traced = torch.jit.trace(model, x)
    assert torch.allclose(traced(x), expected, atol=1e-5)


def test_default_design():
    from sreconv.nn import D4GroupConv2d as Conv

    model = create_model("sre_d4_resnet18", num_classes=10, in_channels=1, inplanes=16)
    assert model.conv1.basis_kind == "harmonic" and model.conv1.out_fields == 2 and model.conv1.kernel_size == 3
    convs = [m for m in model.modules() if isinstance(m, Conv) and m.kernel_size > 1]
    assert len(convs) == 16 and all(m.basis_kind == "full" and m.kernel_size == 3 for m in convs)
    assert model.num_features == 16 and isinstance(model.gpool, nn.Module) and model.gpool.mode == "max"
    plain = create_model("plain_resnet18", num_classes=10, in_channels=1, inplanes=16)
    assert sum(p.numel() for p in model.parameters()) <= 0.4 * sum(p.numel() for p in plain.parameters())


def test_state_dict_same_in_train_and_eval_and_meta_construction():
    model = D4ResNet(**TINY)
    keys = list(model.state_dict())
    assert keys == list(model.eval().state_dict())
    assert not any("basis" in k or "relative_index" in k for k in keys)
    assert isinstance(D4ResNet(**TINY).to("meta").conv1.weight, torch.Tensor)


def test_features_are_regular_fields_before_group_pooling():
    model = D4ResNet(**TINY).double().eval()
    x = torch.randn(1, 1, 11, 11, dtype=torch.float64)
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.layer1)
    y = stem(x)
    for t in range(8):
        from sreconv.nn import d4_elements

        assert torch.allclose(stem(d4_elements()[t].apply(x)), regular_action(y, t), atol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(basis="rings"), "basis must be one of"),
    (dict(basis=["full", "full"]), "basis must be one of"),
    (dict(group_pool="min"), "group_pool must be one of"),
    (dict(sre_conv_size=4), "kernel_size must be odd"),
    (dict(layers=(1, 1, 1)), "layers must list 4 block counts"),
    (dict(in_channels=0), "in_channels must be a positive int"),
    (dict(skip_first_maxpool=False), "skip_first_maxpool must be True"),
    (dict(stem_basis="fourier"), "basis must be one of"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        D4ResNet(**{**TINY, **kwargs})


@pytest.mark.parametrize("size", representatives([28, 32, 33], [32, 33]))
def test_aligned_logits_exactly_invariant(size):
    model = D4ResNet(align_input=True, **TINY).double().eval()
    x = torch.randn(2, 1, size, size, dtype=torch.float64)
    assert max_invariance_error(model, x, "d4") < 1e-10


def test_alignment_makes_the_logits_nearly_invariant_at_any_angle():
    from sreconv.data import rotate

    # an anisotropic shape (a 'T') inside the central disc, on the normalised background -1
    x = torch.full((1, 1, 33, 33), -1.0, dtype=torch.float64)
    x[..., 7:26, 14:19] = 1.0
    x[..., 7:11, 10:23] = 1.0
    errors = {}
    for align in (False, True):
        torch.manual_seed(0)
        model = D4ResNet(align_input=align, **TINY).double().eval()
        logits = model(x)
        errors[align] = max(float((model(rotate(x, a, fill=-1.0)) - logits).norm() / logits.norm())
                            for a in (20.0, 35.0, 60.0))
    assert errors[True] < 0.02 and errors[True] < errors[False] / 4, errors  # measured: 0.008 vs 0.050
