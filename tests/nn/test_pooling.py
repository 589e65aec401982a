import pytest
import torch
import torch.nn as nn

from sreconv.nn.pooling import (
    CenteredSubsample,
    SymmetricAvgPool2d,
    SymmetricAvgPool3d,
    SymmetricMaxPool2d,
    SymmetricMaxPool3d,
    centered_pool_geometry,
)
from tests.models._util import max_equivariance_error
from tests.tiers import each_value


@pytest.mark.parametrize("output", ["floor", "ceil"])
def test_geometry_is_mirror_symmetric(output):
    for size in range(1, 50):
        for stride in (1, 2, 3, 4):
            for kernel in (1, 2, 3, 4, 5):
                padding = (kernel - 1) // 2
                k, p, n = centered_pool_geometry(size, kernel, stride, padding, output)
                assert (n - 1) * stride == size + 2 * p - k  # first and last windows mirror each other
                assert kernel <= k <= kernel + 1 and p <= k // 2 and n >= 1
                if output == "ceil":
                    assert n == -(-size // stride)
                elif size + 2 * padding >= kernel:
                    assert n == (size + 2 * padding - kernel) // stride + 1


def test_ceil_chain_28():
    pool = SymmetricAvgPool2d(2)
    x = torch.randn(1, 1, 28, 28)
    sizes = []
    for _ in range(3):
        x = pool(x)
        sizes.append(x.shape[-1])
    assert sizes == [14, 7, 4]


def test_identical_to_torch_where_torch_is_exact():
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(SymmetricAvgPool2d(2)(x), nn.AvgPool2d(2)(x))
    x = torch.randn(2, 3, 9, 9)
    assert torch.equal(SymmetricMaxPool2d(3, 2, 1)(x), nn.MaxPool2d(3, 2, 1)(x))
    x = torch.randn(1, 2, 8, 8, 8)
    assert torch.equal(SymmetricAvgPool3d(2)(x), nn.AvgPool3d(2)(x))


@pytest.mark.parametrize("size,make", each_value([1, 2, 3, 7, 8, 14, 15, 28, 33], [
    lambda: SymmetricAvgPool2d(2),
    lambda: SymmetricAvgPool2d(3),
    lambda: SymmetricAvgPool2d(2, output="floor"),
    lambda: SymmetricMaxPool2d(3, 2, 1),
    lambda: SymmetricMaxPool2d(2),
    lambda: CenteredSubsample(2, 2),
    lambda: CenteredSubsample(2, 3),
]))
def test_pool_commutes_with_d4(size, make):
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    assert max_equivariance_error(make(), x, "d4") < 1e-13


@pytest.mark.parametrize("size", [5, 6, 7])
def test_pool3d_commutes_with_cube(size):
    x = torch.randn(1, 2, size, size, size, dtype=torch.float64)
    for pool in (SymmetricAvgPool3d(2), SymmetricMaxPool3d(3, 2, 1), CenteredSubsample(3, 2)):
        assert max_equivariance_error(pool, x, "cube") < 1e-13


def test_torch_pooling_is_not_exact_on_odd_sizes():
    # the defect the centre-aligned pooling fixes
    x = torch.randn(1, 1, 7, 7, dtype=torch.float64)
    assert max_equivariance_error(nn.AvgPool2d(2), x, "d4") > 1e-3
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    assert max_equivariance_error(nn.MaxPool2d(3, 2, 1), x, "d4") > 1e-3


def test_subsample_values():
    assert CenteredSubsample(1, 2)(torch.arange(7.0).view(1, 1, 7)).flatten().tolist() == [0, 2, 4, 6]
    assert CenteredSubsample(1, 2)(torch.arange(8.0).view(1, 1, 8)).flatten().tolist() == [0.5, 2.5, 4.5, 6.5]


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        from sreconv.nn.pooling import SymmetricPool
        SymmetricPool(2, 2, mode="median")
    with pytest.raises(ValueError, match="expects"):
        SymmetricAvgPool2d(2)(torch.randn(3, 4))


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 0), (3, 2, 1), (2, 2, 0), (3, 3, 1), (5, 2, 2)])
def test_output_counts_match_torch(kernel, stride, padding):
    from sreconv.nn.pooling import pool_output_count

    for size in range(kernel, 40):
        for ceil_mode, rule in ((False, "floor"), (True, "torch_ceil")):
            torch_count = nn.MaxPool1d(kernel, stride, padding, ceil_mode=ceil_mode)(torch.zeros(1, 1, size)).shape[-1]
            assert pool_output_count(size, kernel, stride, padding, rule) == torch_count, (size, rule)
        assert pool_output_count(size, kernel, stride, padding, "ceil") == -(-size // stride)


@pytest.mark.parametrize("size", [6, 7, 8, 63, 64, 65])
def test_torch_ceil_pool_commutes_with_d4(size):
    from sreconv.nn.pooling import SymmetricPool

    x = torch.randn(1, 2, size, size, dtype=torch.float64)
    for mode in ("max", "avg"):
        pool = SymmetricPool(2, 3, 2, 0, mode=mode, output="torch_ceil")
        assert pool(x).shape == nn.MaxPool2d(3, 2, ceil_mode=True)(x).shape
        assert max_equivariance_error(pool, x, "d4") < 1e-13


def test_fit_centered_values_and_symmetry():
    from sreconv.nn.pooling import fit_centered

    x = torch.arange(6.0).view(1, 1, 6)
    assert fit_centered(x, [4]).flatten().tolist() == [1.0, 2.0, 3.0, 4.0]  # crop one each side
    assert fit_centered(x, [5]).flatten().tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]  # average pairs
    assert fit_centered(x, [7]).flatten().tolist() == [0.0, 0.5, 1.5, 2.5, 3.5, 4.5, 2.5]  # pad zeros, average
    assert fit_centered(x, [6]) is x
    y = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    for target in ([8, 8], [7, 7], [10, 10], [11, 11]):
        fit = lambda t, target=target: fit_centered(t, target)  # noqa: E731
        assert max_equivariance_error(fit, y, "d4") < 1e-14
    with pytest.raises(ValueError, match="fit_centered needs"):
        fit_centered(torch.randn(4), [2])


def test_bad_output_rule():
    from sreconv.nn.pooling import SymmetricPool, pool_output_count

    with pytest.raises(ValueError, match="output must be one of 'floor', 'ceil', 'torch_ceil'"):
        SymmetricPool(2, 2, output="round")
    with pytest.raises(ValueError, match="output must be one of"):
        pool_output_count(8, 2, 2, 0, "round")
