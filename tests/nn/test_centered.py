"""Centre-aligned layers (sreconv.nn.centered): the symmetric ring basis of any kernel size, even-kernel SRE
convolutions and transposed convolutions whose output_padding is realised symmetrically. Exact over D4 and the
cube group in float64 on odd and even sizes; output sizes are torch's."""

import pytest
import torch
import torch.nn as nn

from sreconv.nn import (
    CenteredSREConvTranspose1d,
    CenteredSREConvTranspose2d,
    CenteredSREConvTranspose3d,
    EvenSREConv2d,
    EvenSREConv3d,
    EvenSREConvTranspose2d,
    EvenSREConvTranspose3d,
    SREConvTranspose2d,
    centered_conv_transpose,
    hard_ring_basis,
    symmetric_ring_basis,
)
from tests.models._util import max_equivariance_error


@pytest.mark.parametrize("k", [1, 3, 5, 7, 9, 11])
@pytest.mark.parametrize("circular", [True])
def test_odd_sizes_reproduce_the_official_rings(k, circular):
    assert torch.equal(symmetric_ring_basis((k, k), force_circular=circular), hard_ring_basis(k))
    assert torch.equal(symmetric_ring_basis((k, k, k)), hard_ring_basis(k, ndim=3))


@pytest.mark.parametrize("size", [(2, 2), (4, 4), (6, 6), (16, 16), (2, 2, 2), (4, 4, 4), (2, 4)])
@pytest.mark.parametrize("kind", ["hard", "gaussian"])
def test_even_bases_are_symmetric(size, kind):
    basis = symmetric_ring_basis(size, ring_basis=kind)
    axes = list(range(1, basis.dim()))
    for axis in axes:
        assert torch.equal(basis, basis.flip(axis))
    if len(set(size)) == 1:
        assert torch.equal(basis, basis.transpose(axes[0], axes[-1]))
    if kind == "hard":
        assert basis.sum(0).max() == 1  # a partition of the disc


def test_even_basis_rings():
    assert symmetric_ring_basis((4, 4)).sum((1, 2)).tolist() == [4.0, 8.0]  # corners dropped
    assert symmetric_ring_basis((4, 4), force_circular=False).sum((1, 2)).tolist() == [4.0, 8.0, 4.0]
    assert symmetric_ring_basis((2, 2)).shape == (1, 2, 2)
    with pytest.raises(ValueError, match="empty"):
        symmetric_ring_basis((4, 4), num_rings=5)
    with pytest.raises(ValueError, match="ring_basis"):
        symmetric_ring_basis((4, 4), ring_basis="soft")


@pytest.mark.slow
@pytest.mark.parametrize("size", [7, 8])
def test_even_conv_equivariant_at_stride_one(size):
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    for layer in (EvenSREConv2d(3, 4, 4, padding=1), EvenSREConv2d(3, 4, 2), EvenSREConv2d(3, 4, 4, padding=2,
                                                                                           padding_mode="reflect")):
        layer = layer.double()
        assert layer(x).shape == nn.Conv2d(3, 4, layer.kernel_size, padding=layer.padding).double()(x).shape
        assert max_equivariance_error(layer, x, "d4") < 1e-13
    x3 = torch.randn(1, 2, 5, 5, 5, dtype=torch.float64)
    assert max_equivariance_error(EvenSREConv3d(2, 3, 2).double(), x3, "cube") < 1e-13


def test_even_conv_patchify_exact_on_divisible_sizes():
    layer = EvenSREConv2d(3, 4, 4, stride=4).double()
    assert max_equivariance_error(layer, torch.randn(1, 3, 32, 32, dtype=torch.float64), "d4") < 1e-13
    assert max_equivariance_error(layer, torch.randn(1, 3, 30, 30, dtype=torch.float64), "d4") > 1e-3  # torch grid


@pytest.mark.parametrize("size", [4, 5])
@pytest.mark.parametrize("layer, torch_layer", [
    (lambda: CenteredSREConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1),
     lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)),
    (lambda: CenteredSREConvTranspose2d(3, 2, 5, stride=3, padding=0, output_padding=2),
     lambda: nn.ConvTranspose2d(3, 2, 5, stride=3, padding=0, output_padding=2)),
    (lambda: CenteredSREConvTranspose2d(3, 2, 1, stride=2, padding=0, output_padding=1),
     lambda: nn.ConvTranspose2d(3, 2, 1, stride=2, padding=0, output_padding=1)),
    (lambda: EvenSREConvTranspose2d(3, 2, 2, stride=2), lambda: nn.ConvTranspose2d(3, 2, 2, stride=2)),
    (lambda: EvenSREConvTranspose2d(3, 2, 4, stride=2, padding=1, output_padding=1),
     lambda: nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1, output_padding=1)),
])
def test_transposed_exact_with_torch_sizes(size, layer, torch_layer):
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    sre, plain = layer().double(), torch_layer().double()
    assert sre(x).shape == plain(x).shape
    assert max_equivariance_error(sre, x, "d4") < 1e-13
    smallest = plain(x).shape[-1] - plain.output_padding[0]
    for n in range(smallest, smallest + plain.stride[0]):  # every output_size torch accepts
        assert sre(x, output_size=[n, n]).shape == plain(x, output_size=[n, n]).shape
        assert max_equivariance_error(lambda t, n=n: sre(t, output_size=[n, n]), x, "d4") < 1e-13


def test_transposed_3d_and_1d():
    x = torch.randn(1, 2, 4, 4, 4, dtype=torch.float64)
    for layer in (CenteredSREConvTranspose3d(2, 2, 3, stride=2, padding=1, output_padding=1),
                  EvenSREConvTranspose3d(2, 2, 2, stride=2)):
        assert max_equivariance_error(layer.double(), x, "cube") < 1e-13
    y = torch.randn(1, 2, 7, dtype=torch.float64)
    assert max_equivariance_error(CenteredSREConvTranspose1d(2, 2, 3, stride=2, padding=1, output_padding=1)
                                  .double(), y, "flip") < 1e-13


def test_centered_transpose_matches_plain_without_output_padding():
    plain = SREConvTranspose2d(3, 2, 3, stride=2, padding=1).double()
    centered = CenteredSREConvTranspose2d(3, 2, 3, stride=2, padding=1).double()
    centered.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 6, 6, dtype=torch.float64)
    assert torch.equal(centered(x), plain(x))
    # with output_padding torch's layer adds a row on one side only: not equivariant
    plain_op = SREConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1).double()
    assert max_equivariance_error(plain_op, x, "d4") > 1e-3


def test_functional_and_bad_arguments():
    x, k = torch.randn(1, 2, 5, 5), torch.ones(2, 3, 3, 3)
    assert centered_conv_transpose(x, k, None, (2, 2), (1, 1), (1, 1), 1, (1, 1)).shape == (1, 3, 10, 10)
    with pytest.raises(ValueError, match="'same' pads an even kernel asymmetrically"):
        EvenSREConv2d(3, 4, 4, padding="same")
    with pytest.raises(ValueError, match="output_padding must be smaller"):
        EvenSREConvTranspose2d(3, 4, 2, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="expects input"):
        EvenSREConv2d(3, 4, 2)(torch.randn(1, 2, 8, 8))


def test_even_layer_trains():
    layer = EvenSREConv2d(2, 3, 4, stride=4)
    layer(torch.randn(2, 2, 8, 8)).pow(2).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.shape == (3, 2, 2)
