import math
import pickle

import pytest
import torch
from torch.utils.data import TensorDataset

from sreconv.data import (
    RotatedView,
    apply_mask,
    apply_view,
    disc_mask,
    flip,
    normalized_fill,
    quarter_turns,
    rotate,
    rotate3d,
)
from sreconv.data.rotation import AXES_3D

PLANES = {"z": (-2, -1), "y": (-3, -1), "x": (-3, -2)}


def smooth_image(n=32, channels=2, seed=0):
    """A band-limited image (sums of low-frequency cosines): bilinear resampling is accurate on it."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(
        torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij"
    )
    out = torch.zeros(channels, n, n, dtype=torch.float64)
    for c in range(channels):
        for _ in range(4):
            fx, fy, ph = torch.rand(3, generator=g, dtype=torch.float64) * torch.tensor([0.3, 0.3, 6.28])
            out[c] += torch.cos(fx * x + fy * y + ph)
    return out[None] / 8 + 0.5


def test_quarter_turns():
    assert [quarter_turns(a) for a in (0, 90, 180, 270, 360, -90, -180, 720.0)] == [0, 1, 2, 3, 0, 3, 2, 0]
    assert quarter_turns(45) is None and quarter_turns(90.5) is None


@pytest.mark.parametrize("k", [-1, 0, 1, 2, 3, 4, 5])
def test_right_angles_are_exact_rot90(k):
    x = torch.rand(3, 2, 7, 7)
    assert torch.equal(rotate(x, 90.0 * k), torch.rot90(x, k, dims=(-2, -1)))
    ints = torch.randint(0, 255, (1, 1, 5, 5), dtype=torch.uint8)
    assert torch.equal(rotate(ints, 90 * k), torch.rot90(ints, k, dims=(-2, -1)))


def test_counter_clockwise_as_displayed():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 8] = 1.0  # right of the centre
    assert rotate(x, 90)[0, 0, 0, 4] == 1.0  # -> top (row 0) as displayed, origin at the top-left
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 16:19] = 1.0  # a short bar to the right of the centre
    y = rotate(x, 45)[0, 0]
    row, col = divmod(int(y.argmax()), 21)
    assert row < 10 and col > 10  # -> upper right


@pytest.mark.parametrize("n", [8, 9, 28])
def test_interpolated_90_agrees_with_rot90(n):
    x = torch.rand(2, 3, n, n, dtype=torch.float64)
    forced = rotate(x, 90.0, exact_rot90=False)
    torch.testing.assert_close(forced[..., 1:-1, 1:-1], torch.rot90(x, 1, (-2, -1))[..., 1:-1, 1:-1])
    forced = rotate(x, -180.0, exact_rot90=False)
    torch.testing.assert_close(forced[..., 1:-1, 1:-1], torch.rot90(x, 2, (-2, -1))[..., 1:-1, 1:-1])


def test_45_degrees_on_a_symmetric_disc():
    n = 33
    c = (n - 1) / 2
    y, x = torch.meshgrid(torch.arange(n) - c, torch.arange(n) - c, indexing="ij")
    r = torch.sqrt(x.double() ** 2 + y.double() ** 2)
    disc = torch.sigmoid(10.5 - r)[None, None]  # smooth-edged disc: rotation invariant
    for angle in (45, 30, -17.5):
        out = rotate(disc, angle)
        assert (out - disc).abs().max() < 0.02
        assert abs(float(out.sum() - disc.sum())) / float(disc.sum()) < 1e-3


def radius(n):
    c = (n - 1) / 2
    y, x = torch.meshgrid(torch.arange(n) - c, torch.arange(n) - c, indexing="ij")
    return torch.sqrt(x.double() ** 2 + y.double() ** 2)


def test_inverse_rotation_is_identity_on_the_disc():
    x = smooth_image()
    # Interpolation near the disc edge mixes in the fill, so compare a little inside it.
    inner = radius(32) < 13
    for angle in (10, 45, 123):
        back = rotate(rotate(x, angle, mask=True), -angle, mask=True)
        assert (back - x)[..., inner].abs().max() < 0.02
        assert torch.equal(back[..., ~disc_mask((32, 32))], torch.zeros_like(back[..., ~disc_mask((32, 32))]))


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
def test_interpolation_modes_agree_with_rot90(interpolation):
    x = torch.rand(2, 1, 9, 9, dtype=torch.float64)
    forced = rotate(x, 90.0, exact_rot90=False, interpolation=interpolation)
    torch.testing.assert_close(forced[..., 2:-2, 2:-2], torch.rot90(x, 1, (-2, -1))[..., 2:-2, 2:-2])


def test_bicubic_blurs_less_than_bilinear():
    # Rotating there and back low-pass filters the image; on detail of 5-6 pixel wavelength (stripes as on
    # garments) cubic resampling loses about 4x less than linear.
    y, x = torch.meshgrid(torch.arange(32.0, dtype=torch.float64), torch.arange(32.0, dtype=torch.float64),
                          indexing="ij")
    x = (torch.cos(2 * math.pi * (0.17 * x + 0.08 * y)) + torch.cos(2 * math.pi * (-0.05 * x + 0.19 * y)))[None]
    inner = radius(32) < 12
    errors = {mode: float((rotate(rotate(x, 45, mask=True, interpolation=mode), -45, mask=True,
                                  interpolation=mode) - x)[..., inner].abs().mean())
              for mode in ("bilinear", "bicubic")}
    assert errors["bicubic"] < 0.3 * errors["bilinear"], errors


def test_rotation_composes():
    x = smooth_image()
    inner = radius(32) < 13
    twice = rotate(rotate(x, 30), 30)
    once = rotate(x, 60)
    assert (twice - once)[..., inner].abs().max() < 0.03


def test_fill_matches_rotating_before_normalising():
    raw = torch.rand(4, 3, 16, 16)
    mean, std = torch.tensor([0.2, 0.5, 0.7]), torch.tensor([0.3, 0.5, 0.1])

    def norm(t):
        return (t - mean[:, None, None]) / std[:, None, None]

    fill = ((0 - mean) / std).tolist()
    for angle in (33, 90):
        torch.testing.assert_close(rotate(norm(raw), angle, fill=fill), norm(rotate(raw, angle)))
        torch.testing.assert_close(
            rotate(norm(raw), angle, fill=fill, mask=True),
            norm(rotate(raw, angle, mask=True)),
            atol=1e-5,
            rtol=0,
        )
    assert normalized_fill() == -1.0
    corners = rotate(torch.full((1, 1, 16, 16), 0.7), 45, fill=-1.0)[0, 0]
    assert corners[0, 0] == -1.0 and abs(corners[8, 8] - 0.7) < 1e-6


def test_mask_keeps_content_in_frame():
    x = apply_mask(smooth_image(28), 2)
    outside = ~disc_mask((28, 28))
    assert torch.all(x[..., outside] == 0)
    for angle in (17, 45, 200):
        out = rotate(x, angle, mask=True)
        # Only interpolation at the disc edge loses mass; without the mask the corners leave the frame.
        assert abs(float(out.sum() - x.sum())) / float(x.sum()) < 0.04
        assert torch.all(out[..., outside] == 0)
    unmasked = rotate(smooth_image(28), 45)
    assert float(unmasked.sum()) < 0.9 * float(smooth_image(28).sum())


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_rotate3d_right_angles(axis):
    v = torch.rand(2, 1, 6, 6, 6)
    for k in range(-1, 5):
        assert torch.equal(rotate3d(v, 90 * k, axis), torch.rot90(v, k, dims=PLANES[axis]))
    forced = rotate3d(v.double(), 90, axis, exact_rot90=False)
    torch.testing.assert_close(forced, torch.rot90(v.double(), 1, dims=PLANES[axis]))


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_rotate3d_arbitrary_angle_is_2d_rotation_of_slices(axis):
    v = torch.rand(1, 2, 8, 8, 8, dtype=torch.float64)
    out = rotate3d(v, 37.0, axis, fill=0.25)
    # Move the rotation plane to the last two dims, keeping "first toward second" orientation.
    a, b = PLANES[axis]
    other = ({-3, -2, -1} - {a, b}).pop()
    def perm(t):
        return t.movedim(other, -3) if axis != "y" else t.permute(0, 1, 3, 2, 4)
    expected = rotate(perm(v), 37.0, fill=0.25)
    torch.testing.assert_close(perm(out), expected)


def test_rotate3d_ball_mask_invariant_about_every_axis():
    n = 12
    c = (n - 1) / 2
    grid = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float64) - c] * 3, indexing="ij"))
    r2 = (grid**2).sum(0)
    blob = torch.exp(-r2 / 8.0)[None, None]  # radially symmetric
    shifted = apply_mask(torch.exp(-((grid[2] - 2) ** 2 + grid[1] ** 2 + grid[0] ** 2) / 6.0)[None, None], 3)
    for axis in AXES_3D:
        torch.testing.assert_close(
            rotate3d(blob, 30, axis, mask=True), apply_mask(blob, 3), atol=0.05, rtol=0
        )
        out = rotate3d(shifted, 30, axis, mask=True)
        assert abs(float(out.sum() - shifted.sum())) / float(shifted.sum()) < 0.02
        assert torch.all(out[..., ~disc_mask((n, n, n))] == 0)


def test_flips():
    x = torch.arange(8.0).reshape(1, 2, 2, 2)
    assert torch.equal(flip(x, "none"), x)
    assert torch.equal(flip(x, "horizontal"), x.flip(-1))
    assert torch.equal(flip(x, "vertical"), x.flip(-2))
    assert torch.equal(flip(x, "depth", spatial_dims=3), x.flip(-3))
    with pytest.raises(ValueError, match="depth"):
        flip(x, "depth")
    with pytest.raises(ValueError, match="flip mode"):
        flip(x, "diagonal", 3)


def test_errors():
    with pytest.raises(ValueError, match="equal sizes"):
        rotate(torch.rand(1, 4, 6), 30)
    with pytest.raises(TypeError, match="floating"):
        rotate(torch.zeros(1, 4, 4, dtype=torch.uint8), 30)
    with pytest.raises(ValueError, match="axis"):
        rotate3d(torch.rand(1, 4, 4, 4), 30, "w")
    with pytest.raises(ValueError, match="per-channel fill"):
        rotate(torch.rand(2, 3, 4, 4), 30, fill=[0.0, 1.0])
    with pytest.raises(ValueError, match="interpolation must be one of bilinear, bicubic, nearest for 2D"):
        rotate(torch.rand(1, 4, 4), 30, interpolation="lanczos")
    with pytest.raises(ValueError, match="interpolation must be one of bilinear, nearest for 3D"):
        rotate3d(torch.rand(1, 4, 4, 4), 30, interpolation="bicubic")


class Recording(TensorDataset):
    spatial_dims = 2
    task = "multi-class"

    def __init__(self, *tensors):
        super().__init__(*tensors)
        self.transform = lambda t: t * 2


def test_rotated_view_does_not_touch_the_dataset():
    base = Recording(torch.rand(5, 1, 8, 8), torch.arange(5))
    transform = base.transform
    view = RotatedView(base, angle=90, flip_mode="horizontal")
    image, label = view[2]
    assert torch.equal(image, torch.rot90(base[2][0].flip(-1), 1, (-2, -1))) and int(label) == 2
    assert base.transform is transform and torch.equal(base[2][0], base.tensors[0][2])
    assert view.task == "multi-class" and len(view) == 5
    clone = pickle.loads(
        pickle.dumps(RotatedView(TensorDataset(torch.rand(2, 1, 4, 4), torch.arange(2)), 45))
    )
    assert clone[0][0].shape == (1, 4, 4)
    with pytest.raises(ValueError, match="2D"):
        RotatedView(base, 30, axis="x")
    with pytest.raises(ValueError, match="flip mode"):
        RotatedView(base, 30, flip_mode="depth")


def test_apply_view_3d_and_batches():
    v = torch.rand(3, 1, 6, 6, 6)
    out = apply_view(v, angle=90, axis="y", flip_mode="depth")
    assert torch.equal(out, torch.rot90(v.flip(-3), 1, dims=(-3, -1)))
    assert apply_view(torch.rand(2, 1, 5, 5), angle=math.degrees(1.0)).shape == (2, 1, 5, 5)
