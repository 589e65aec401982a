import math

import numpy as np
import pytest
import torch

from sreconv.groups import grid_symmetries
from sreconv.nn import (
    default_num_rings,
    gaussian_ring_basis,
    hard_ring_basis,
    make_ring_basis,
    num_distinct_radii,
)


class TestHardRings:
    def test_k9_official_example(self):
        # anchors: k=9, R=5: ring 0 = centre, ring 1 = distances 1 and sqrt(2), corners beyond 4.5 empty.
        basis = hard_ring_basis(9)
        assert basis.shape == (5, 9, 9)
        assert basis[0].sum() == 1 and basis[0, 4, 4] == 1
        ring1 = {(i - 4) ** 2 + (j - 4) ** 2 for i, j in zip(*np.nonzero(basis[1].numpy()))}
        assert ring1 == {1, 2}
        assert basis[:, 0, 0].sum() == 0 and basis[:, 0, 1].sum() == 0  # corner cells dropped
        assert basis.sum(0).max() == 1  # a partition of the support

    @pytest.mark.parametrize("k", [1, 3, 5, 7, 9, 11, 13])
    @pytest.mark.parametrize("ndim", [1, 2, 3])
    def test_partition_of_support(self, k, ndim):
        for circular in (True, False):
            basis = hard_ring_basis(k, force_circular=circular, ndim=ndim)
            coverage = basis.sum(0)
            assert coverage.max() <= 1
            if not circular:
                assert coverage.min() == 1
            assert basis.shape[0] == default_num_rings((k,) * ndim, circular)

    def test_default_counts(self):
        assert default_num_rings((9, 9)) == 5
        assert default_num_rings((9, 9), force_circular=False) == 6
        assert default_num_rings((5, 5, 5)) == 3
        assert default_num_rings((3,), force_circular=False) == 2  # capped: 1D has only 2 radii

    def test_noncircular_covers_corners(self):
        basis = hard_ring_basis(5, force_circular=False)
        assert basis[-1, 0, 0] == 1 and basis.shape[0] == 4

    def test_custom_ring_count(self):
        basis = hard_ring_basis(9, num_rings=3)
        assert basis.shape == (3, 9, 9)
        assert torch.equal(basis.sum(0), hard_ring_basis(9).sum(0))

    @pytest.mark.parametrize("k", [3, 5, 9])
    def test_symmetric_under_grid_group(self, k):
        for ndim in (2, 3):
            basis = hard_ring_basis(k, ndim=ndim)
            for g in grid_symmetries(ndim):
                assert torch.equal(g.apply(basis), basis)

    def test_anisotropic_uses_true_distances(self):
        basis = hard_ring_basis((3, 7, 7))
        assert basis.shape == (4, 3, 7, 7)
        # cells at equal 3D distance share a ring whatever the axis
        assert basis[:, 0, 3, 3].argmax() == basis[:, 1, 2, 3].argmax() == basis[:, 1, 3, 4].argmax()
        # symmetric under swapping the two equal axes and under all flips
        assert torch.equal(basis.transpose(2, 3), basis) and torch.equal(basis.flip(1, 2, 3), basis)


class TestGaussianRings:
    @pytest.mark.parametrize("k", [3, 5, 9])
    def test_partition_of_unity_on_support(self, k):
        basis = gaussian_ring_basis(k)
        support = hard_ring_basis(k).sum(0) > 0
        total = basis.sum(0)
        assert torch.allclose(total[support], torch.ones(()), atol=1e-6)
        assert torch.all(total[~support] == 0)

    def test_sigma_controls_smoothness(self):
        sharp = gaussian_ring_basis(9, sigma=0.2, dtype=torch.float64)
        smooth = gaussian_ring_basis(9, sigma=2.0, dtype=torch.float64)
        # with a tiny width the centre cell belongs almost entirely to ring 0
        assert sharp[0, 4, 4] > 0.999 and smooth[0, 4, 4] < 0.5

    def test_symmetric(self):
        basis = gaussian_ring_basis(7, ndim=3)
        for g in grid_symmetries(3):
            assert torch.equal(g.apply(basis), basis)

    def test_radial(self):
        basis = gaussian_ring_basis(7, force_circular=False)
        # (0, 3) and (3, 0) lie at distance 3; (1, 0) and (0, 1) at sqrt(13): equal profiles
        assert torch.equal(basis[:, 0, 3], basis[:, 3, 0])
        assert torch.equal(basis[:, 1, 0], basis[:, 0, 1])
        assert not torch.equal(basis[:, 1, 0], basis[:, 0, 3])


class TestExceptions:
    @pytest.mark.parametrize("bad", [2, 4, (3, 4), (0, 3)])
    def test_even_or_nonpositive_kernel(self, bad):
        with pytest.raises(ValueError, match="kernel_size"):
            hard_ring_basis(bad)

    def test_too_many_rings(self):
        limit = num_distinct_radii((3, 3))
        assert limit == 3
        with pytest.raises(ValueError, match=r"sre_k must be between 1 and 3.*got 4"):
            hard_ring_basis(3, num_rings=4)
        with pytest.raises(ValueError, match="sre_k"):
            gaussian_ring_basis(3, num_rings=0)

    def test_wrong_types(self):
        with pytest.raises(TypeError, match="sre_k"):
            hard_ring_basis(3, num_rings="2")
        with pytest.raises(TypeError, match="kernel_size"):
            hard_ring_basis("3")

    def test_unknown_kind(self):
        with pytest.raises(ValueError, match=r"ring_basis must be one of 'hard', 'gaussian', got 'soft'"):
            make_ring_basis("soft", 3)

    def test_sigma(self):
        with pytest.raises(ValueError, match="gaussian_sigma"):
            gaussian_ring_basis(5, sigma=-1.0)
        with pytest.raises(ValueError, match="gaussian_sigma only applies"):
            make_ring_basis("hard", 5, sigma=1.0)


def test_distinct_radii_counts():
    assert num_distinct_radii((5, 5)) == 5  # 0, 1, sqrt2, 2, sqrt5 (sqrt8 is a corner)
    assert num_distinct_radii((5, 5), force_circular=False) == 6
    assert num_distinct_radii((7,)) == 4
    assert math.isclose(float(hard_ring_basis(1)[0, 0, 0]), 1.0)
