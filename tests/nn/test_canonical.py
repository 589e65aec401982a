"""Principal-axis alignment (sreconv.nn.canonical): exact D4 (2D) and cube (3D, 48 elements) equivariance,
alignment of any angle, gradients, TorchScript, errors."""

import math

import pytest
import torch

from sreconv.data import rotate, rotate3d
from sreconv.groups import grid_symmetries
from sreconv.nn import (
    PrincipalAxisAlign2d,
    PrincipalAxisAlign3d,
    align_principal_axes,
    align_principal_axes3d,
    principal_axes3d,
    principal_axis_angle,
)


def _bar(angle: float, size: int = 29, dtype=torch.float64) -> torch.Tensor:
    """A long thin bar with a short cross-piece (an anisotropic 'T') turned by ``angle`` degrees."""
    x = torch.zeros(1, 1, size, size, dtype=dtype)
    c = size // 2
    x[..., c - 9:c + 10, c - 2:c + 2] = 1.0
    x[..., c - 9:c - 6, c - 6:c + 6] = 1.0
    return rotate(x, angle) if angle else x


class TestPrincipalAxisAngle:
    def test_range_and_shape(self):
        angle = principal_axis_angle(torch.rand(16, 3, 12, 17))
        assert angle.shape == (16,) and bool((angle.abs() <= math.pi / 4 + 1e-7).all())

    @pytest.mark.parametrize("degrees", [0.0, 10.0, -20.0, 30.0, 40.0])
    def test_recovers_the_turn_modulo_quarter_turns(self, degrees):
        # rotate() turns counter-clockwise as displayed; with v pointing down that is a negative angle
        assert math.degrees(float(principal_axis_angle(_bar(degrees)))) == pytest.approx(-degrees, abs=1.0)

    def test_background_level_does_not_matter(self):
        x = torch.rand(4, 1, 15, 15, dtype=torch.float64)
        torch.testing.assert_close(principal_axis_angle(x * 2 - 1), principal_axis_angle(x), rtol=0, atol=1e-12)

    def test_empty_image_gives_zero(self):
        assert float(principal_axis_angle(torch.full((1, 1, 8, 8), -1.0))) == 0.0


class TestAlignPrincipalAxes:
    @pytest.mark.parametrize("shape", [(3, 2, 28, 28), (3, 1, 33, 33), (2, 1, 20, 27)])
    @pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
    def test_d4_equivariant(self, shape, interpolation):
        x = torch.rand(*shape, dtype=torch.float64)
        y = align_principal_axes(x, interpolation)
        for g in grid_symmetries(2):
            torch.testing.assert_close(align_principal_axes(g.apply(x), interpolation), g.apply(y),
                                       rtol=0, atol=1e-10)

    def test_not_the_identity(self):
        x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
        assert (align_principal_axes(x) - x).abs().max() > 0.1

    def test_aligned_image_comes_back_unchanged(self):
        x = _bar(0.0)
        torch.testing.assert_close(align_principal_axes(x), x, rtol=0, atol=1e-12)

    @pytest.mark.parametrize("degrees", [15.0, 30.0, 60.0, 135.0])
    def test_any_angle_aligns_to_the_same_picture(self, degrees):
        upright = align_principal_axes(_bar(0.0))
        turned = align_principal_axes(_bar(degrees))
        # equal to one of the D4 images of the upright one, up to two bilinear resamplings
        errors = [float((turned - g.apply(upright)).abs().mean()) for g in grid_symmetries(2)]
        assert min(errors) < 0.05 < max(errors)

    def test_background_fills_the_corners(self):
        x = _bar(30.0) * 2 - 1  # normalised: background -1
        aligned = align_principal_axes(x)
        assert float(aligned.amin()) == pytest.approx(-1.0) and float(aligned[..., 0, 0]) == pytest.approx(-1.0)

    def test_gradcheck(self):
        x = torch.rand(2, 1, 7, 7, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(align_principal_axes, (x,))

    def test_float32_and_empty_batch(self):
        x = torch.rand(2, 1, 16, 16)
        assert align_principal_axes(x).dtype == torch.float32
        assert align_principal_axes(torch.rand(0, 1, 16, 16)).shape == (0, 1, 16, 16)

    @pytest.mark.parametrize("x, kwargs, message", [
        (torch.rand(1, 8, 8), {}, r"x must be a batch of images \(N, C, H, W\)"),
        (torch.ones(1, 1, 8, 8, dtype=torch.long), {}, "x must be a floating-point tensor"),
        (torch.rand(1, 1, 8, 8), {"interpolation": "nearest"}, "interpolation must be one of"),
    ])
    def test_bad_input(self, x, kwargs, message):
        with pytest.raises(ValueError, match=message):
            align_principal_axes(x, **kwargs)


class TestModule:
    def test_module_matches_the_function_and_has_no_state(self):
        module = PrincipalAxisAlign2d("bicubic")
        x = torch.rand(2, 1, 12, 12)
        assert torch.equal(module(x), align_principal_axes(x, "bicubic"))
        assert list(module.state_dict()) == [] and "bicubic" in repr(module)

    def test_bad_interpolation(self):
        with pytest.raises(ValueError, match="interpolation must be one of"):
            PrincipalAxisAlign2d("area")

    def test_torchscript(self):
        module = PrincipalAxisAlign2d()
        x = torch.rand(2, 1, 12, 12)
        torch.testing.assert_close(torch.jit.script(module)(x), module(x))


def _rod(size: int = 15) -> torch.Tensor:
    """An anisotropic volume: a long rod, a shorter cross-bar and a stub (three distinct principal moments)."""
    x = torch.zeros(1, 1, size, size, size, dtype=torch.float64)
    c = size // 2
    x[..., c - 1:c + 2, c - 1:c + 2, 1:size - 1] = 1.0
    x[..., c - 1:c + 2, c - 4:c + 5, c - 1:c + 2] = 1.0
    x[..., c - 2:c + 3, c:c + 1, c:c + 1] = 1.0
    return x


class TestAlign3d:
    @pytest.mark.parametrize("size", [8, 9])
    def test_cube_equivariant(self, size):
        x = torch.rand(2, 2, size, size, size, dtype=torch.float64)
        y = align_principal_axes3d(x)
        assert (y - x).abs().max() > 0.1
        elements = grid_symmetries(3)
        orbit = align_principal_axes3d(torch.cat([g.apply(x) for g in elements]))  # one call for all 48
        for aligned, g in zip(orbit.split(2), elements, strict=True):
            torch.testing.assert_close(aligned, g.apply(y), rtol=0, atol=1e-10)

    def test_axes_are_orthogonal_and_closest_to_the_identity(self):
        rotation = principal_axes3d(torch.rand(4, 1, 7, 7, 7, dtype=torch.float64))
        eye = torch.eye(3, dtype=torch.float64)
        torch.testing.assert_close(rotation @ rotation.transpose(-1, -2), eye.expand(4, 3, 3))
        for g in grid_symmetries(3):  # no other signed permutation of the columns is closer
            h = torch.zeros(3, 3, dtype=torch.float64)
            h[list(range(3)), list(g.perm)] = torch.tensor([-1.0 if f else 1.0 for f in g.flips],
                                                           dtype=torch.float64)
            other = torch.einsum("nij,jk->nik", rotation, h)
            assert bool((other.diagonal(dim1=-2, dim2=-1).sum(-1) <= rotation.diagonal(dim1=-2, dim2=-1).sum(-1)
                         + 1e-12).all())

    def test_aligned_volume_comes_back_unchanged(self):
        x = _rod()
        torch.testing.assert_close(align_principal_axes3d(x), x, rtol=0, atol=1e-10)

    @pytest.mark.parametrize("axis, degrees", [("z", 30.0), ("x", 20.0), ("y", 60.0)])
    def test_any_rotation_aligns_to_the_same_picture(self, axis, degrees):
        upright = align_principal_axes3d(_rod())
        turned = align_principal_axes3d(rotate3d(_rod(), degrees, axis))
        errors = [float((turned - g.apply(upright)).abs().mean()) for g in grid_symmetries(3)]
        assert min(errors) < 0.02 < max(errors), min(errors)

    def test_gradcheck(self):
        x = torch.rand(1, 1, 4, 4, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(align_principal_axes3d, (x,))

    def test_module_and_maps_back(self):
        module = PrincipalAxisAlign3d()
        # a smooth anisotropic blob off the grid axes: turning the aligned volume back restores it up to two
        # trilinear resamplings (measured 0.047 at 13 voxels; a wrong inverse turn leaves >= 0.24)
        r = torch.arange(13, dtype=torch.float64) - 6
        z, y, u = r.view(13, 1, 1), r.view(1, 13, 1), r.view(1, 1, 13)
        a, b = (z + y) / 2**0.5, (z - y) / 2**0.5
        x = torch.exp(-(a**2 / 24 + b**2 / 8 + u**2 / 4))[None, None]
        aligned = module(x)
        assert torch.equal(aligned, align_principal_axes3d(x)) and (aligned - x).abs().max() > 0.2
        inner = (z**2 + y**2 + u**2) <= 25  # the corners were cut by the turn
        assert ((module.to_input_frame(aligned, x) - x).abs()[..., inner]).max() < 0.06
        assert list(module.state_dict()) == []

    def test_torchscript(self):
        module = PrincipalAxisAlign3d()
        x = torch.rand(1, 1, 6, 6, 6)
        torch.testing.assert_close(torch.jit.script(module)(x), module(x))

    @pytest.mark.parametrize("x, message", [
        (torch.rand(1, 8, 8, 8), r"x must be a batch of volumes \(N, C, D, H, W\)"),
        (torch.ones(1, 1, 4, 4, 4, dtype=torch.long), "x must be a floating-point tensor"),
    ])
    def test_bad_input(self, x, message):
        with pytest.raises(ValueError, match=message):
            align_principal_axes3d(x)
