"""Cube-group equivariant layers (sreconv.nn.cube, on sreconv.nn.regular): the 48-element tables, the regular
action, exact equivariance of every layer over all 48 elements on odd, even and non-cubic sizes (float64), the
3D bases, gradcheck, state_dict, export, TorchScript, errors."""

import copy
import itertools

import pytest
import torch
import torch.nn as nn
from torch.autograd import gradcheck

from sreconv.groups import grid_symmetries
from sreconv.nn import (
    CUBE_ORDER,
    GROUP_BASES,
    CubeBatchNorm3d,
    CubeGroupConv3d,
    CubeGroupPool3d,
    CubeLiftConv3d,
    group_cayley_table,
    group_inverse,
    group_regular_action,
    group_spatial_basis,
)
from tests.tiers import representatives

RTOL = 1e-10
ELEMENTS = grid_symmetries(3)


def rel_err(actual, expected):
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-300))


def randomize(layer):
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    return layer


def action(x, t):
    return group_regular_action(x, t, 3)


# ---------------------------------------------------------------------------------------- the group


def test_cayley_table_is_the_composition_of_the_cube_symmetries():
    table, inverse = group_cayley_table(3), group_inverse(3)
    assert CUBE_ORDER == len(ELEMENTS) == 48 and table.shape == (48, 48)
    x = torch.randn(3, 4, 5)
    for a, b in itertools.product(range(48), repeat=2):
        assert torch.equal(ELEMENTS[a].apply(ELEMENTS[b].apply(x)), ELEMENTS[table[a, b]].apply(x))
    assert all(table[g, inverse[g]] == 0 == table[inverse[g], g] for g in range(48))
    assert all(sorted(row.tolist()) == list(range(48)) for row in table)  # a Latin square


def test_regular_action_is_a_group_action_that_permutes_orientations():
    x = torch.randn(1, 2 * 48, 3, 4, 5, dtype=torch.float64)
    table = group_cayley_table(3)
    for a, b in [(1, 7), (13, 29), (47, 20), (5, 5)]:
        assert torch.equal(action(action(x, b), a), action(x, int(table[a, b])))
    assert torch.equal(action(x, 0), x)
    t = 11
    y = action(x, ELEMENTS[t])
    source = int(table[group_inverse(3)[t], 30])
    assert torch.equal(y[:, 48 + 30], ELEMENTS[t].apply(x[:, 48 + source]))
    assert torch.equal(action(x[0], 3), action(x, 3)[0])  # unbatched


def test_regular_action_errors():
    with pytest.raises(ValueError, match="multiple of 48"):
        action(torch.randn(1, 8, 4, 4, 4), 1)
    with pytest.raises(ValueError, match="element must be an index 0..47"):
        action(torch.randn(1, 48, 4, 4, 4), 48)
    with pytest.raises(ValueError, match=r"GridSymmetry of the cube group \(3 dims\)"):
        action(torch.randn(1, 48, 4, 4, 4), grid_symmetries(2)[1])
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        group_regular_action(torch.randn(1, 2, 4), 1, 1)


# ------------------------------------------------------------------------------------------ bases


def test_3d_spatial_bases():
    assert group_spatial_basis("full", 3, 3).shape == (27, 3, 3, 3)
    for kind in ("hard", "gaussian"):  # radial: every cube symmetry leaves each basis function unchanged
        basis = group_spatial_basis(kind, 5, 3, dtype=torch.float64)
        assert all(torch.equal(g.apply(basis), basis) for g in ELEMENTS)
    harmonic = group_spatial_basis("harmonic", 5, 3, dtype=torch.float64)
    assert harmonic.shape == (3 + 2 * (3 + 5), 5, 5, 5)  # 3 shells; degree 1 and 2 on the 2 outer shells
    gram = harmonic.flatten(1) @ harmonic.flatten(1).T
    assert torch.allclose(gram, torch.eye(len(harmonic), dtype=torch.float64), atol=1e-12)
    # degree 1 (x, y, z) is odd: the point reflection through the centre flips its sign
    degree1 = group_spatial_basis("harmonic", 5, 3, max_frequency=1, dtype=torch.float64)
    odd = degree1.flatten(1) @ degree1.flip(1, 2, 3).flatten(1).T
    assert torch.allclose(torch.linalg.eigvalsh(odd).sort().values,
                          torch.tensor([-1.0] * 6 + [1.0] * 3, dtype=torch.float64), atol=1e-9)
    assert group_spatial_basis("harmonic", 5, 3, max_frequency=0).shape == (3, 5, 5, 5)
    with pytest.raises(ValueError, match="max_frequency must be at most 2 in 3D"):
        group_spatial_basis("harmonic", 5, 3, max_frequency=3)
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        group_spatial_basis("full", 3, 4)


# ------------------------------------------------------------------------------------ equivariance


def _chain(basis, kernel_size):
    return nn.Sequential(CubeLiftConv3d(2, 2, kernel_size, basis, bias=True), CubeBatchNorm3d(2), nn.ReLU(),
                         CubeGroupConv3d(2, 1, kernel_size, basis, bias=True), CubeBatchNorm3d(1))


@pytest.mark.parametrize("basis", representatives(GROUP_BASES, ["full", "harmonic"]))
@pytest.mark.parametrize("size", [5, 6])
def test_lift_and_group_conv_are_exactly_equivariant_over_all_48(basis, size, device):
    net = randomize(_chain(basis, 3)).to(device=device, dtype=torch.float64).eval()
    x = torch.randn(2, 2, size, size, size, dtype=torch.float64, device=device)
    y = net(x)
    assert y.shape == (2, 48, size, size, size)
    for t, g in enumerate(ELEMENTS):
        assert rel_err(net(g.apply(x)), action(y, t)) < RTOL, g.name


def test_non_cubic_volumes_follow_the_axis_permutation():
    net = randomize(_chain("harmonic", 3)).double().eval()
    x = torch.randn(1, 2, 4, 5, 6, dtype=torch.float64)
    y = net(x)
    for t, g in enumerate(ELEMENTS):
        moved = net(g.apply(x))
        assert moved.shape[2:] == g.apply(x).shape[2:]
        assert rel_err(moved, action(y, t)) < RTOL


def test_a_wrong_action_is_detected():
    lift = randomize(CubeLiftConv3d(1, 1, 3)).double()
    x = torch.randn(1, 1, 5, 5, 5, dtype=torch.float64)
    g = ELEMENTS[7]
    assert rel_err(lift(g.apply(x)), g.apply(lift(x))) > 1e-2  # without the orientation permutation


def test_batch_norm_train_mode_is_equivariant_and_shares_statistics():
    bn = CubeBatchNorm3d(2).double()
    x = torch.randn(3, 96, 3, 3, 3, dtype=torch.float64) * 3 + 1
    y = bn(x)
    assert torch.allclose(y.reshape(3, 2, 48, 27).mean((0, 2, 3)), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert bn.running_mean.shape == (2,) and set(bn.state_dict()) == set(nn.BatchNorm3d(2).state_dict())
    for t in (1, 20, 47):
        assert rel_err(copy.deepcopy(bn)(action(x, t)), action(y, t)) < RTOL


@pytest.mark.parametrize("mode", ["max", "mean"])
def test_group_pool_output_transforms_like_a_volume(mode):
    pool = CubeGroupPool3d(mode)
    x = torch.randn(1, 96, 4, 4, 4, dtype=torch.float64)
    y = pool(x)
    assert y.shape == (1, 2, 4, 4, 4)
    for t, g in enumerate(ELEMENTS):
        assert rel_err(pool(action(x, t)), g.apply(y)) < RTOL


def test_radial_group_conv_sees_orientation_only_through_the_channels():
    conv = randomize(CubeGroupConv3d(1, 1, 3, "gaussian")).double()
    x = torch.randn(1, 1, 5, 5, 5, dtype=torch.float64).repeat(1, 48, 1, 1, 1)
    y = conv(x).reshape(1, 1, 48, 5, 5, 5)
    assert torch.allclose(y, y[:, :, :1].expand_as(y), atol=1e-12)


# ----------------------------------------------------------------------------------- gradients, state


def test_gradcheck():
    lift = randomize(CubeLiftConv3d(1, 1, 3, "harmonic", bias=True)).double()
    conv = randomize(CubeGroupConv3d(1, 1, 1, bias=True)).double()
    x = torch.randn(1, 1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda inp: conv(lift(inp)), (x,), eps=1e-6, atol=1e-6)


def test_state_dict_is_the_same_in_train_and_eval_mode_and_reloads():
    net = _chain("harmonic", 3)
    keys = list(net.state_dict())
    net.eval()
    assert list(net.state_dict()) == keys
    assert "0.basis" not in keys and "3.relative_index" not in keys
    assert net[3].weight.shape == (1, 2, 48, net[3].num_basis)
    restored = _chain("harmonic", 3)
    restored.load_state_dict(net.state_dict())
    x = torch.randn(1, 2, 4, 4, 4)
    assert torch.equal(restored.eval()(x), net(x))


def test_to_conv_export_and_torchscript():
    net = randomize(_chain("full", 3)).eval()
    x = torch.randn(1, 2, 5, 5, 5)
    expected = net(x)
    for i in (0, 3):
        net[i] = net[i].to_conv()
        assert type(net[i]) is nn.Conv3d
    assert torch.allclose(net(x), expected, atol=1e-4)
    scripted = torch.jit.script(nn.Sequential(net, CubeGroupPool3d()))
    assert torch.allclose(scripted(x), CubeGroupPool3d()(expected), atol=1e-4)


def test_dtype_device_and_meta():
    conv = CubeGroupConv3d(1, 1, 3, "harmonic", device="meta")
    assert conv.weight.is_meta and conv.basis.is_meta
    half = CubeLiftConv3d(1, 1, 3).half()
    assert half.weight.dtype == half.transformed_basis.dtype == torch.float16


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("factory, message", [
    (lambda: CubeLiftConv3d(1, 2, 2), "kernel_size must be odd"),
    (lambda: CubeGroupConv3d(0, 2, 3), "in_fields must be an int >= 1"),
    (lambda: CubeGroupConv3d(1, 2, 3, "rings"), "basis must be one of 'full', 'hard', 'gaussian', 'harmonic'"),
    (lambda: CubeLiftConv3d(1, 2, 3, "harmonic", max_frequency=3), "max_frequency must be at most 2 in 3D"),
    (lambda: CubeGroupPool3d("min"), "mode must be one of 'max', 'mean'"),
    (lambda: CubeBatchNorm3d(0), "fields must be an int >= 1"),
])
def test_bad_arguments(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_bad_inputs():
    with pytest.raises(ValueError, match="expects 96 input channels"):
        CubeGroupConv3d(2, 2, 3)(torch.randn(1, 48, 4, 4, 4))
    with pytest.raises(ValueError, match=r"expects \(N, C, D, H, W\)"):
        CubeLiftConv3d(1, 2, 3)(torch.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"CubeBatchNorm3d\(2\) expects \(N, 96, D, H, W\), got shape"):
        CubeBatchNorm3d(2)(torch.randn(2, 48, 3, 3, 3))
    with pytest.raises(ValueError, match=r"fields \* 48"):
        CubeGroupPool3d()(torch.randn(1, 50, 3, 3, 3))
