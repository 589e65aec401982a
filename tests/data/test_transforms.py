import pytest
import torch

from sreconv.data import (
    Normalize,
    RandomAffine3d,
    RandomFlip,
    RandomGaussianBlur3d,
    RandomRot90,
    Resize,
    eval_transform_2d,
    eval_transform_3d,
    train_transform_2d,
    train_transform_3d,
)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("rotation", [None, "any", "rot90"])
def test_train_2d_shape_dtype_and_range(channels, rotation):
    pytest.importorskip("torchvision")
    t = train_transform_2d(32, rotation=rotation, hflip_p=0.5, vflip_p=0.5)
    x = torch.rand(channels, 28, 28)
    for _ in range(3):
        y = t(x)
        assert y.shape == (channels, 32, 32) and y.dtype == torch.float32
        assert -1.0 - 1e-5 <= float(y.min()) and float(y.max()) <= 1.0 + 1e-5
    assert x.shape == (channels, 28, 28)  # input untouched


def test_train_2d_seeded_determinism():
    pytest.importorskip("torchvision")
    t = train_transform_2d(28, rotation="any")
    x = torch.rand(3, 28, 28)
    torch.manual_seed(5)
    a = t(x)
    torch.manual_seed(5)
    b = t(x)
    torch.manual_seed(6)
    c = t(x)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_train_2d_components():
    pytest.importorskip("torchvision")
    t = train_transform_2d(32, moco=False, translate=0.0, normalize=False)
    x = torch.rand(1, 28, 28)
    torch.testing.assert_close(t(x), Resize(32)(x))  # nothing random left
    names = [type(s).__name__ for s in train_transform_2d(32, rotation="rot90").transforms]
    assert names == ["Resize", "RandomResizedCrop", "RandomApply", "RandomAffine", "RandomRot90", "Normalize"]
    with pytest.raises(ValueError, match="rotation"):
        train_transform_2d(32, rotation="rot45")


def test_translation_pads_with_raw_background():
    pytest.importorskip("torchvision")
    from torchvision.transforms import v2

    t = train_transform_2d(20, moco=False, translate=0.3, normalize=False)
    affine = t.transforms[-1]
    assert isinstance(affine, v2.RandomAffine)
    torch.manual_seed(0)
    shifted = [t(torch.ones(1, 20, 20)) for _ in range(10)]
    assert any(float(s.min()) == 0.0 for s in shifted)  # pixels entering the frame are black


def test_eval_2d_is_deterministic_and_normalises():
    t = eval_transform_2d(32)
    x = torch.rand(3, 28, 28)
    assert torch.equal(t(x), t(x)) and t(x).shape == (3, 32, 32)
    assert float(t(torch.zeros(1, 28, 28)).max()) == -1.0
    assert torch.equal(eval_transform_2d(28, normalize=False)(x), x)


def test_normalize_per_channel_2d_and_3d():
    n = Normalize([0.0, 1.0], [1.0, 2.0])
    out = n(torch.ones(2, 3, 3))
    assert out[0].unique().tolist() == [1.0] and out[1].unique().tolist() == [0.0]
    assert n(torch.ones(2, 3, 3, 3)).shape == (2, 3, 3, 3)


def test_resize_3d():
    assert Resize(8)(torch.rand(1, 6, 6, 6)).shape == (1, 8, 8, 8)


def test_train_3d_shape_dtype_determinism():
    t = train_transform_3d(flip_p=0.5, rotation="rot90")
    v = torch.rand(1, 12, 12, 12)
    torch.manual_seed(1)
    a = t(v)
    torch.manual_seed(1)
    b = t(v)
    assert a.shape == v.shape and a.dtype == torch.float32 and torch.equal(a, b)
    assert eval_transform_3d()(v).shape == v.shape
    with pytest.raises(ValueError, match="rot90"):
        train_transform_3d(rotation="any")


def test_affine3d_identity_translation_and_scale():
    v = torch.rand(2, 8, 10, 12)
    torch.testing.assert_close(RandomAffine3d(0.0, 0.0)(v), v, atol=1e-5, rtol=0)
    # A shift moves a centred blob's centre of mass by at most 3 voxels per axis.
    blob = torch.zeros(1, 15, 15, 15)
    blob[0, 6:9, 6:9, 6:9] = 1.0
    coords = torch.arange(15.0)
    for seed in range(5):
        torch.manual_seed(seed)
        out = RandomAffine3d(0.0, 3.0)(blob)[0]
        assert not torch.allclose(out, blob[0])
        for dim in range(3):
            profile = out.sum(dim=[d for d in range(3) if d != dim])
            centre = float((profile * coords).sum() / profile.sum())
            assert abs(centre - 7.0) <= 3.0 + 1e-4
    # Zoom-in keeps the centre voxel value of a constant volume and pads nothing.
    const = torch.full((1, 9, 9, 9), 0.3)
    torch.manual_seed(0)
    zoomed = RandomAffine3d(0.2, 0.0)(const)
    assert abs(float(zoomed[0, 4, 4, 4]) - 0.3) < 1e-6


def test_blur3d_preserves_constants_and_smooths():
    const = torch.full((2, 6, 7, 8), 0.4)
    torch.testing.assert_close(RandomGaussianBlur3d((1.0, 2.0))(const), const)
    spike = torch.zeros(1, 15, 15, 15)
    spike[0, 7, 7, 7] = 1.0
    out = RandomGaussianBlur3d((1.0, 1.5))(spike)
    assert float(out.max()) < 0.2 and abs(float(out.sum()) - 1.0) < 1e-4
    assert torch.equal(RandomGaussianBlur3d(p=0.0)(spike), spike)


def test_random_rot90_and_flip_are_grid_symmetries():
    x = torch.arange(27.0).reshape(1, 3, 3, 3)
    torch.manual_seed(0)
    for _ in range(8):
        y = RandomRot90(((-2, -1), (-3, -1), (-3, -2)))(x)
        assert sorted(y.flatten().tolist()) == sorted(x.flatten().tolist())
        assert y[0, 1, 1, 1] == x[0, 1, 1, 1]  # the centre is fixed
    assert torch.equal(RandomFlip((-1,), p=0.0)(x), x)
    assert torch.equal(RandomFlip((-3, -1), p=1.0)(x), x.flip(-3, -1))


def test_transforms_picklable_for_dataloader_workers():
    import pickle

    pytest.importorskip("torchvision")
    for t in (eval_transform_2d(32), train_transform_3d(), train_transform_2d(32, rotation="rot90")):
        clone = pickle.loads(pickle.dumps(t))
        assert repr(clone) == repr(t)
