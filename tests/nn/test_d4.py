"""D4 group-equivariant layers (sreconv.nn.d4): the group tables, the regular action, exact equivariance of every
layer over all 8 elements on odd and even sizes (float64), gradcheck, state_dict, export, errors."""

import copy
import itertools

import pytest
import torch
import torch.nn as nn
from torch.autograd import gradcheck

from sreconv.nn import (
    D4_BASES,
    D4BatchNorm2d,
    D4GroupConv2d,
    D4GroupPool2d,
    D4LiftConv2d,
    d4_cayley_table,
    d4_elements,
    d4_inverse,
    d4_spatial_basis,
    regular_action,
)

RTOL = 1e-10
ELEMENTS = d4_elements()


def rel_err(actual, expected):
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-300))


def randomize(layer):
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    return layer


# ---------------------------------------------------------------------------------------- the group


def test_cayley_table_is_the_composition_of_the_grid_symmetries():
    table, inverse = d4_cayley_table(), d4_inverse()
    x = torch.randn(5, 5)
    for a, b in itertools.product(range(8), repeat=2):
        assert torch.equal(ELEMENTS[a].apply(ELEMENTS[b].apply(x)), ELEMENTS[table[a, b]].apply(x))
    for a, b, c in itertools.product(range(8), repeat=3):
        assert table[table[a, b], c] == table[a, table[b, c]]
    assert all(table[g, inverse[g]] == 0 == table[inverse[g], g] for g in range(8))
    assert ELEMENTS[0].is_identity() and sorted(table[3].tolist()) == list(range(8))


def test_regular_action_is_a_group_action_that_permutes_orientations():
    x = torch.randn(2, 3 * 8, 5, 5, dtype=torch.float64)
    table = d4_cayley_table()
    for a, b in itertools.product(range(8), repeat=2):
        assert torch.equal(regular_action(regular_action(x, b), a), regular_action(x, int(table[a, b])))
    assert torch.equal(regular_action(x, 0), x)
    # orientation g of the result comes from orientation t^-1 g of the input, moved by t
    t = 1
    y = regular_action(x, ELEMENTS[t])
    source = int(table[d4_inverse()[t], 5])
    assert torch.equal(y[:, 8 + 5], ELEMENTS[t].apply(x[:, 8 + source]))
    assert torch.equal(regular_action(x[0], 3), regular_action(x, 3)[0])  # unbatched


def test_regular_action_errors():
    with pytest.raises(ValueError, match="multiple of 8"):
        regular_action(torch.randn(1, 12, 4, 4), 1)
    with pytest.raises(ValueError, match="element must be an index 0..7"):
        regular_action(torch.randn(1, 8, 4, 4), 8)
    with pytest.raises(ValueError, match="GridSymmetry of D4"):
        from sreconv.groups import grid_symmetries

        regular_action(torch.randn(1, 8, 4, 4, 4), grid_symmetries(3)[1])


# ------------------------------------------------------------------------------------------ bases


def test_spatial_bases():
    assert d4_spatial_basis("full", 3).shape == (9, 3, 3)
    assert torch.equal(d4_spatial_basis("full", 3).sum(0), torch.ones(3, 3))
    for kind in ("hard", "gaussian"):  # radial: every element of D4 leaves each basis function unchanged
        basis = d4_spatial_basis(kind, 5, dtype=torch.float64)
        assert all(torch.equal(g.apply(basis), basis) for g in ELEMENTS)
    harmonic = d4_spatial_basis("harmonic", 5, max_frequency=2, dtype=torch.float64)
    assert harmonic.shape == (3 + 2 * 2 * 2, 5, 5)
    gram = harmonic.flatten(1) @ harmonic.flatten(1).T
    assert torch.allclose(gram, torch.eye(11, dtype=torch.float64), atol=1e-12)  # orthonormal
    # the span is the sampled rings' span: each ring profile is a combination of the basis
    dist = torch.tensor([[((i - 2) ** 2 + (j - 2) ** 2) ** 0.5 for j in range(5)] for i in range(5)])
    ring = (torch.exp(-(dist - 1.0) ** 2 / (2 * 0.6**2)) * (dist <= 2.5)).double()  # the disc support
    assert torch.allclose(harmonic.flatten(1).T @ (harmonic.flatten(1) @ ring.flatten()), ring.flatten(), atol=1e-9)
    assert d4_spatial_basis("harmonic", 3).shape == (6, 3, 3)  # sin(2 theta) vanishes on the 3x3 axes
    assert d4_spatial_basis("harmonic", 5, max_frequency=0).shape == (3, 5, 5)
    # the angular parts are not radial: a quarter turn changes cos(theta)
    assert not torch.allclose(ELEMENTS[1].apply(harmonic[3]), harmonic[3])
    with pytest.raises(ValueError, match="basis must be one of"):
        d4_spatial_basis("fourier", 3)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        d4_spatial_basis("full", 4)
    with pytest.raises(ValueError, match="max_frequency must be an int >= 0"):
        d4_spatial_basis("harmonic", 5, max_frequency=-1)
    with pytest.raises(ValueError, match="gaussian_sigma must be a positive number"):
        d4_spatial_basis("harmonic", 5, gaussian_sigma=0.0)


# ------------------------------------------------------------------------------------ equivariance


def _lift_chain(basis, kernel_size):
    return nn.Sequential(D4LiftConv2d(2, 3, kernel_size, basis, bias=True), D4BatchNorm2d(3), nn.ReLU(),
                         D4GroupConv2d(3, 2, kernel_size, basis, bias=True), D4BatchNorm2d(2))


@pytest.mark.parametrize("basis", D4_BASES)
@pytest.mark.parametrize("size", [7, 8])
def test_lift_and_group_conv_are_exactly_equivariant(basis, size, device):
    net = randomize(_lift_chain(basis, 5)).to(device=device, dtype=torch.float64).eval()
    x = torch.randn(2, 2, size, size, dtype=torch.float64, device=device)
    y = net(x)
    assert y.shape == (2, 16, size, size)
    for t, g in enumerate(ELEMENTS):
        assert rel_err(net(g.apply(x)), regular_action(y, t)) < RTOL, g.name


@pytest.mark.parametrize("basis", D4_BASES)
@pytest.mark.parametrize("kernel_size", [1, 3])
def test_group_conv_on_regular_inputs(basis, kernel_size):
    conv = randomize(D4GroupConv2d(2, 3, kernel_size, basis, bias=True)).double()
    x = torch.randn(2, 16, 9, 9, dtype=torch.float64)
    y = conv(x)
    for t in range(8):
        assert rel_err(conv(regular_action(x, t)), regular_action(y, t)) < RTOL


def test_a_wrong_action_is_detected():
    # The spatial transform alone (without permuting the orientations) is not what the layers commute with:
    # the test above would fail for a layer that ignored the orientation channels' permutation.
    lift = randomize(D4LiftConv2d(1, 2, 3)).double()
    x = torch.randn(1, 1, 7, 7, dtype=torch.float64)
    rot90 = ELEMENTS[[g.name for g in ELEMENTS].index("rot90")]
    assert rel_err(lift(rot90.apply(x)), rot90.apply(lift(x))) > 1e-2


def test_batch_norm_train_mode_is_equivariant_and_shares_statistics():
    bn = D4BatchNorm2d(3).double()
    x = torch.randn(4, 24, 5, 5, dtype=torch.float64) * 3 + 1
    y = bn(x)
    per_field = y.reshape(4, 3, 8, 5, 5)
    assert torch.allclose(per_field.mean((0, 2, 3, 4)), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert bn.running_mean.shape == (3,)
    for t in range(8):
        assert rel_err(copy.deepcopy(bn)(regular_action(x, t)), regular_action(y, t)) < RTOL


@pytest.mark.parametrize("mode", ["max", "mean"])
def test_group_pool_output_transforms_like_an_image(mode):
    pool = D4GroupPool2d(mode)
    x = torch.randn(2, 16, 6, 6, dtype=torch.float64)
    y = pool(x)
    assert y.shape == (2, 2, 6, 6)
    for t, g in enumerate(ELEMENTS):
        assert rel_err(pool(regular_action(x, t)), g.apply(y)) < RTOL


def test_radial_group_conv_sees_orientation_only_through_the_channels():
    # With SRE rings the base kernels are isotropic: a 1-field input whose 8 orientation channels are equal
    # (an invariant input) gives equal orientation channels out.
    conv = randomize(D4GroupConv2d(1, 2, 5, "gaussian")).double()
    x = torch.randn(1, 1, 9, 9, dtype=torch.float64).repeat(1, 8, 1, 1)
    y = conv(x).reshape(1, 2, 8, 9, 9)
    assert torch.allclose(y, y[:, :, :1].expand_as(y), atol=1e-12)
    full = randomize(D4GroupConv2d(1, 2, 5, "full")).double()
    y = full(x).reshape(1, 2, 8, 9, 9)
    assert not torch.allclose(y, y[:, :, :1].expand_as(y), atol=1e-3)


# ----------------------------------------------------------------------------------- gradients, state


@pytest.mark.slow
def test_gradcheck():
    from torch.func import functional_call

    lift = randomize(D4LiftConv2d(1, 1, 3, "harmonic", bias=True)).double()
    conv = randomize(D4GroupConv2d(1, 1, 3, "gaussian", bias=True)).double()
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda inp: conv(lift(inp)), (x,), eps=1e-6, atol=1e-6)
    for layer, inp in ((lift, x.detach()), (conv, torch.randn(1, 8, 5, 5, dtype=torch.float64))):
        weight = layer.weight.detach().clone().requires_grad_(True)
        bias = layer.bias.detach().clone().requires_grad_(True)
        assert gradcheck(lambda w, b, layer=layer, inp=inp: functional_call(layer, {"weight": w, "bias": b}, (inp,)),
                         (weight, bias), eps=1e-6, atol=1e-6)


def test_state_dict_is_the_same_in_train_and_eval_mode():
    net = _lift_chain("harmonic", 3)
    keys = list(net.state_dict())
    net.eval()
    assert list(net.state_dict()) == keys
    assert "0.weight" in keys and "0.basis" not in keys and "3.relative_index" not in keys
    assert net[0].weight.shape == (3, 2, net[0].num_basis) and net[3].weight.shape == (2, 3, 8, net[3].num_basis)
    restored = _lift_chain("harmonic", 3)
    restored.load_state_dict(net.state_dict())
    x = torch.randn(1, 2, 6, 6)
    assert torch.equal(restored.eval()(x), net(x))


def test_to_conv_export_and_torchscript():
    net = randomize(_lift_chain("full", 3)).eval()
    x = torch.randn(2, 2, 9, 9)
    expected = net(x)
    for i in (0, 3):
        net[i] = net[i].to_conv()
        assert type(net[i]) is nn.Conv2d
    assert torch.allclose(net(x), expected, atol=1e-5)
    scripted = torch.jit.script(net)
    assert torch.allclose(scripted(x), expected, atol=1e-5)


def test_dtype_device_and_meta():
    conv = D4GroupConv2d(2, 3, 3, "harmonic", device="meta")
    assert conv.weight.is_meta and conv.basis.is_meta
    half = D4LiftConv2d(1, 2, 3).half()
    assert half.weight.dtype == half.transformed_basis.dtype == torch.float16
    double = D4GroupConv2d(1, 1, 3).to(torch.float64)
    assert double(torch.randn(1, 8, 5, 5, dtype=torch.float64)).dtype == torch.float64


def test_init_keeps_the_activation_scale():
    torch.manual_seed(0)
    for basis in D4_BASES:
        conv = D4GroupConv2d(8, 8, 5, basis)
        x = torch.randn(8, 64, 16, 16)
        ratio = float(conv(x).pow(2).mean() / x.pow(2).mean())
        assert 0.5 < ratio < 4.0, (basis, ratio)  # kaiming fan-in: ~2 for a full-support kernel


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("factory, message", [
    (lambda: D4LiftConv2d(1, 2, 4), "kernel_size must be odd"),
    (lambda: D4GroupConv2d(0, 2, 3), "in_fields must be an int >= 1"),
    (lambda: D4GroupConv2d(1, 2, 3, "rings"), "basis must be one of 'full', 'hard', 'gaussian', 'harmonic'"),
    (lambda: D4LiftConv2d(1, 2, 3, "harmonic", max_frequency=-2), "max_frequency must be an int >= 0"),
    (lambda: D4GroupPool2d("min"), "mode must be one of 'max', 'mean'"),
    (lambda: D4BatchNorm2d(0), "fields must be an int >= 1"),
])
def test_bad_arguments(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_bad_inputs():
    with pytest.raises(ValueError, match="expects 16 input channels"):
        D4GroupConv2d(2, 2, 3)(torch.randn(1, 8, 5, 5))
    with pytest.raises(ValueError, match=r"expects \(N, C, H, W\)"):
        D4LiftConv2d(1, 2, 3)(torch.randn(1, 5, 5))
    with pytest.raises(ValueError, match=r"D4BatchNorm2d\(2\) expects \(N, 16, H, W\), got shape \[2, 8, 4, 4\]"):
        D4BatchNorm2d(2)(torch.randn(2, 8, 4, 4))
    with pytest.raises(ValueError, match="fields \\* 8"):
        D4GroupPool2d()(torch.randn(2, 12, 4, 4))
