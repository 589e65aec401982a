import copy

import pytest
import torch
import torch.nn as nn
from torch.autograd import gradcheck

from sreconv.groups import grid_symmetries
from sreconv.nn import (
    SREConv1d,
    SREConv2d,
    SREConv3d,
    SREConvTranspose1d,
    SREConvTranspose2d,
    SREConvTranspose3d,
    expand_kernel,
)
from tests.tiers import all_pairs

CONV = {1: SREConv1d, 2: SREConv2d, 3: SREConv3d}
TRANSPOSE = {1: SREConvTranspose1d, 2: SREConvTranspose2d, 3: SREConvTranspose3d}
TORCH_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
TORCH_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
ATOL = 1e-10


def assert_equivariant(layer, x, group, atol=ATOL):
    """f(g x) == g f(x) for every g in the group, in float64."""
    y = layer(x)
    for g in group:
        torch.testing.assert_close(layer(g.apply(x)), g.apply(y), atol=atol, rtol=0,
                                   msg=lambda m, g=g: f"{g.name}: {m}")


def randomize(layer):
    with torch.no_grad():
        layer.weight.normal_()
        if layer.bias is not None:
            layer.bias.normal_()
    return layer


class TestSmokeAndShapes:
    @pytest.mark.parametrize("ndim", [1, 2, 3])
    def test_matches_torch_layer_with_dense_kernel(self, ndim):
        layer = randomize(CONV[ndim](4, 6, 3, stride=2, padding=1, dilation=1, groups=2, dtype=torch.float64))
        ref = TORCH_CONV[ndim](4, 6, 3, stride=2, padding=1, groups=2, dtype=torch.float64)
        with torch.no_grad():
            ref.weight.copy_(layer.kernel())
            ref.bias.copy_(layer.bias)
        x = torch.randn((2, 4) + (9,) * ndim, dtype=torch.float64)
        torch.testing.assert_close(layer(x), ref(x), atol=ATOL, rtol=0)

    @pytest.mark.parametrize("ndim", [1, 2, 3])
    def test_transpose_matches_torch_layer(self, ndim):
        layer = randomize(TRANSPOSE[ndim](4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                                          dtype=torch.float64))
        ref = TORCH_TRANSPOSE[ndim](4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dtype=torch.float64)
        assert layer.weight.shape == (4, 3, 2)
        with torch.no_grad():
            ref.weight.copy_(layer.kernel())
            ref.bias.copy_(layer.bias)
        x = torch.randn((2, 4) + (5,) * ndim, dtype=torch.float64)
        torch.testing.assert_close(layer(x), ref(x), atol=ATOL, rtol=0)
        size = (10,) * ndim
        assert layer(x, output_size=size).shape == ref(x, output_size=size).shape == (2, 6) + size
        torch.testing.assert_close(layer(x, output_size=size), ref(x, output_size=size), atol=ATOL, rtol=0)

    def test_weight_shape_like_official(self):
        layer = SREConv2d(6, 8, 9, groups=2)
        assert layer.weight.shape == (8, 3, 5)
        assert layer.basis.shape == (5, 9, 9)
        assert set(layer.state_dict()) == {"weight", "bias"}

    @pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
    @pytest.mark.parametrize("padding", [2, "same", "valid", (1, 2)])
    def test_padding_modes_match_torch(self, padding_mode, padding):
        layer = randomize(SREConv2d(3, 4, 5, padding=padding, padding_mode=padding_mode, dtype=torch.float64))
        ref = nn.Conv2d(3, 4, 5, padding=padding, padding_mode=padding_mode, dtype=torch.float64)
        with torch.no_grad():
            ref.weight.copy_(layer.kernel())
            ref.bias.copy_(layer.bias)
        x = torch.randn(2, 3, 11, 10, dtype=torch.float64)
        torch.testing.assert_close(layer(x), ref(x), atol=ATOL, rtol=0)

    def test_unbatched_input(self):
        layer = SREConv2d(3, 4, 3, padding=1)
        x = torch.randn(3, 8, 8)
        torch.testing.assert_close(layer(x), layer(x[None])[0])

    def test_no_bias(self):
        layer = SREConv3d(2, 2, 3, bias=False)
        assert layer.bias is None and "bias=False" in repr(layer)

    def test_repr(self):
        text = repr(SREConv2d(3, 4, 5, padding="same", ring_basis="gaussian", sre_k=2))
        assert "padding='same'" in text and "sre_k=2" in text and "ring_basis='gaussian'" in text


class TestEquivariance2D:
    """Exact D4 equivariance (rot90 k=1..3, both flips, transpose, anti-transpose) in float64."""

    group = grid_symmetries(2)

    @pytest.mark.parametrize("ring_basis,k,size", all_pairs(["hard", "gaussian"], [1, 3, 5, 9],
                                                           [(16, 16), (17, 17), (12, 15)]))
    def test_same_padding(self, ring_basis, k, size):
        layer = randomize(SREConv2d(3, 4, k, padding="same", ring_basis=ring_basis, dtype=torch.float64))
        x = torch.randn((2, 3) + size, dtype=torch.float64)
        group = self.group if size[0] == size[1] else [g for g in self.group if g.perm == (0, 1)]
        assert_equivariant(layer, x, group)

    def test_rot90_explicitly(self):
        layer = randomize(SREConv2d(2, 3, 5, padding=2, dtype=torch.float64))
        x = torch.randn(1, 2, 10, 10, dtype=torch.float64)
        for k in (1, 2, 3):
            torch.testing.assert_close(layer(x.rot90(k, (2, 3))), layer(x).rot90(k, (2, 3)), atol=ATOL, rtol=0)
        torch.testing.assert_close(layer(x.flip(-1)), layer(x).flip(-1), atol=ATOL, rtol=0)
        torch.testing.assert_close(layer(x.flip(-2)), layer(x).flip(-2), atol=ATOL, rtol=0)
        torch.testing.assert_close(layer(x.transpose(-1, -2)), layer(x).transpose(-1, -2), atol=ATOL, rtol=0)

    @pytest.mark.parametrize("groups,dilation", [(1, 2), (2, 1), (4, 3)])
    def test_groups_dilation(self, groups, dilation):
        layer = randomize(SREConv2d(4, 8, 5, padding="same", groups=groups, dilation=dilation, dtype=torch.float64))
        assert_equivariant(layer, torch.randn(2, 4, 14, 14, dtype=torch.float64), self.group)

    @pytest.mark.parametrize("padding_mode", ["reflect", "replicate", "circular"])
    def test_padding_modes(self, padding_mode):
        layer = randomize(SREConv2d(2, 3, 5, padding=2, padding_mode=padding_mode, dtype=torch.float64))
        assert_equivariant(layer, torch.randn(1, 2, 9, 9, dtype=torch.float64), self.group)

    @pytest.mark.parametrize("size,stride", [(17, 2), (13, 3), (15, 2)])
    def test_strided_when_sampling_grid_is_centred(self, size, stride):
        # the samples are symmetric about the centre when (size + 2p - k) is a multiple of the stride
        layer = randomize(SREConv2d(2, 3, 3, stride=stride, padding=1, dtype=torch.float64))
        assert (size + 2 - 3) % stride == 0
        assert_equivariant(layer, torch.randn(1, 2, size, size, dtype=torch.float64), self.group)

    def test_strided_off_centre_is_not_equivariant(self):
        # documents why models need centre-aligned downsampling: even size, stride 2 breaks exactness
        layer = randomize(SREConv2d(2, 3, 3, stride=2, padding=1, dtype=torch.float64))
        x = torch.randn(1, 2, 16, 16, dtype=torch.float64)
        assert not torch.allclose(layer(x.rot90(1, (2, 3))), layer(x).rot90(1, (2, 3)))

    @pytest.mark.parametrize("ring_basis", ["hard", "gaussian"])
    @pytest.mark.parametrize("stride,size", [(1, 8), (2, 7), (3, 6)])
    def test_transposed(self, ring_basis, stride, size):
        layer = randomize(SREConvTranspose2d(3, 2, 5, stride=stride, padding=1, ring_basis=ring_basis,
                                             dtype=torch.float64))
        assert_equivariant(layer, torch.randn(2, 3, size, size, dtype=torch.float64), self.group)

    def test_noncircular(self):
        layer = randomize(SREConv2d(2, 2, 5, padding=2, force_circular=False, dtype=torch.float64))
        assert layer.sre_k == 4
        assert_equivariant(layer, torch.randn(1, 2, 11, 11, dtype=torch.float64), self.group)


class TestEquivariance1D3D:
    @pytest.mark.parametrize("size", [9, 10])
    def test_1d_flip(self, size):
        layer = randomize(SREConv1d(2, 3, 5, padding="same", dtype=torch.float64))
        assert_equivariant(layer, torch.randn(2, 2, size, dtype=torch.float64), grid_symmetries(1))
        layer_t = randomize(SREConvTranspose1d(2, 3, 3, stride=2, dtype=torch.float64))
        assert_equivariant(layer_t, torch.randn(2, 2, size, dtype=torch.float64), grid_symmetries(1))

    @pytest.mark.parametrize("ring_basis", ["hard", "gaussian"])
    @pytest.mark.parametrize("size", [7, 8])
    def test_3d_all_48(self, ring_basis, size):
        layer = randomize(SREConv3d(2, 3, 5, padding="same", ring_basis=ring_basis, dtype=torch.float64))
        assert_equivariant(layer, torch.randn(1, 2, size, size, size, dtype=torch.float64), grid_symmetries(3))

    def test_3d_groups_dilation_transposed(self):
        layer = randomize(SREConv3d(4, 4, 3, padding="same", groups=2, dilation=2, dtype=torch.float64))
        x = torch.randn(1, 4, 6, 6, 6, dtype=torch.float64)
        assert_equivariant(layer, x, grid_symmetries(3))
        layer_t = randomize(SREConvTranspose3d(4, 2, 3, stride=2, padding=1, dtype=torch.float64))
        assert_equivariant(layer_t, x, grid_symmetries(3))

    def test_3d_anisotropic_kernel_keeps_its_subgroup(self):
        layer = randomize(SREConv3d(1, 2, (3, 5, 5), padding="same", dtype=torch.float64))
        x = torch.randn(1, 1, 6, 8, 8, dtype=torch.float64)
        subgroup = [g for g in grid_symmetries(3) if g.perm[0] == 0]  # keep the short axis in place
        assert len(subgroup) == 16
        assert_equivariant(layer, x, subgroup)


class TestGradcheck:
    @pytest.mark.parametrize("cls,ndim", [(SREConv2d, 2), pytest.param(SREConv3d, 3, marks=pytest.mark.slow),
                                          (SREConvTranspose2d, 2)])
    def test_gradcheck(self, cls, ndim):
        layer = cls(2, 2, 3, padding=1, ring_basis="gaussian", dtype=torch.float64)
        x = torch.randn((1, 2) + (4,) * ndim, dtype=torch.float64, requires_grad=True)
        assert gradcheck(lambda inp, w, b: torch.func.functional_call(layer, {"weight": w, "bias": b}, (inp,)),
                         (x, layer.weight, layer.bias))

    def test_weight_grad_flows_in_eval_mode(self):
        layer = SREConv2d(2, 2, 3).eval()
        layer(torch.randn(1, 2, 5, 5)).sum().backward()
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


class TestKernelCache:
    """The official package's eval cache goes stale; ours must follow every weight change."""

    def setup_method(self):
        self.layer = randomize(SREConv2d(2, 3, 5, padding=2)).eval()
        self.x = torch.randn(1, 2, 8, 8)

    def _run(self):
        with torch.no_grad():
            return self.layer(self.x)

    def test_cache_is_reused(self):
        self._run()
        cached = self.layer._kernel_cache[2]
        self._run()
        assert self.layer._kernel_cache[2] is cached

    @pytest.mark.parametrize("edit", ["data", "no_grad", "load_state_dict", "optimizer", "copy_"])
    def test_doubling_weights_in_eval_mode_changes_output(self, edit):
        before = self._run()
        layer = self.layer
        if edit == "data":
            layer.weight.data *= 2
        elif edit == "no_grad":
            with torch.no_grad():
                layer.weight.mul_(2)
        elif edit == "load_state_dict":
            state = {k: v.clone() for k, v in layer.state_dict().items()}
            state["weight"] *= 2
            layer.load_state_dict(state)
        elif edit == "optimizer":
            layer.weight.grad = -layer.weight.detach().clone()
            torch.optim.SGD(layer.parameters(), lr=1.0).step()
        elif edit == "copy_":
            layer.weight.data.copy_(layer.weight.data * 2)
        after = self._run()
        bias = layer.bias.view(1, -1, 1, 1)
        torch.testing.assert_close(after - bias, 2 * (before - bias))

    def test_to_dtype_and_device(self):
        before = self._run()
        self.layer.double()
        self.x = self.x.double()
        after = self._run()
        assert after.dtype == torch.float64
        torch.testing.assert_close(after.float(), before)

    def test_state_dict_same_in_train_and_eval(self):
        layer = self.layer
        self._run()
        keys_eval = {k: v.shape for k, v in layer.state_dict().items()}
        layer.train()
        layer(self.x)
        assert {k: v.shape for k, v in layer.state_dict().items()} == keys_eval == {
            "weight": (3, 2, 3), "bias": (3,)}
        fresh = SREConv2d(2, 3, 5, padding=2)
        fresh.load_state_dict(layer.state_dict())
        fresh.eval()
        torch.testing.assert_close(fresh(self.x), layer.eval()(self.x))

    def test_deepcopy_and_pickle(self, tmp_path):
        self._run()
        clone = copy.deepcopy(self.layer)
        torch.testing.assert_close(clone(self.x), self._run())
        torch.save(self.layer, tmp_path / "layer.pt")
        loaded = torch.load(tmp_path / "layer.pt", weights_only=False)
        torch.testing.assert_close(loaded(self.x), self._run())


class TestModule:
    def test_half_and_bfloat16(self):
        layer = SREConv2d(2, 3, 3, padding=1)
        x = torch.randn(1, 2, 6, 6)
        ref = layer(x)
        bf = copy.deepcopy(layer).to(torch.bfloat16)
        assert bf.basis.dtype == torch.bfloat16
        torch.testing.assert_close(bf(x.bfloat16()).float(), ref, atol=0.05, rtol=0.05)
        half = copy.deepcopy(layer).half()
        assert half.weight.dtype == half.basis.dtype == torch.float16
        torch.testing.assert_close(half(x.half()).float(), ref, atol=0.01, rtol=0.01)

    def test_device_and_dtype_factory_kwargs(self):
        layer = SREConv3d(1, 2, 3, device="cpu", dtype=torch.float64)
        assert layer.weight.dtype == layer.basis.dtype == layer.bias.dtype == torch.float64

    @pytest.mark.slow
    @pytest.mark.parametrize("backend", ["eager", "aot_eager"])
    def test_compile(self, backend):
        layer = randomize(SREConv2d(2, 3, 5, padding=2))
        x = torch.randn(2, 2, 8, 8)
        compiled = torch.compile(layer, backend=backend)
        torch.testing.assert_close(compiled(x), layer(x))
        compiled(x).sum().backward()
        assert layer.weight.grad is not None
        layer.eval()
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), layer(x))

    @pytest.mark.parametrize("cls", list(CONV.values()) + list(TRANSPOSE.values()), ids=lambda c: c.__name__)
    def test_meta_device_then_to_empty(self, cls):
        ndim = 3 if "3d" in cls.__name__ else 2 if "2d" in cls.__name__ else 1
        meta = cls(4, 6, 3, padding=1, groups=2, ring_basis="gaussian", device="meta")
        assert meta.weight.is_meta and meta.basis.is_meta and meta.bias.is_meta
        real = cls(4, 6, 3, padding=1, groups=2, ring_basis="gaussian")
        meta.to_empty(device="cpu")
        meta.reset_parameters()
        torch.testing.assert_close(meta.basis, real.basis)
        meta.load_state_dict(real.state_dict())
        x = torch.randn((2, 4) + (6,) * ndim)
        torch.testing.assert_close(meta(x), real(x))
        # materialising from a checkpoint alone also restores the (non-persistent) basis
        loaded = cls(4, 6, 3, padding=1, groups=2, ring_basis="gaussian", device="meta").to_empty(device="cpu")
        loaded.load_state_dict(real.state_dict())
        torch.testing.assert_close(loaded(x), real(x))

    def test_base_class_is_keyword_only(self):
        from sreconv.nn.conv import _SREConvNd

        with pytest.raises(TypeError, match="positional"):
            _SREConvNd(3, 4, 5)

    def test_initial_output_scale_like_torch(self):
        torch.manual_seed(0)
        x = torch.randn(8, 32, 16, 16)
        with torch.no_grad():
            ours = SREConv2d(32, 32, 5, padding=2)(x).std()
            theirs = nn.Conv2d(32, 32, 5, padding=2)(x).std()
        assert 0.5 < float(ours / theirs) < 2.0

    def test_expand_kernel_is_linear(self):
        layer = SREConv2d(2, 2, 5)
        kernel = expand_kernel(layer.weight, layer.basis)
        assert torch.equal(kernel, layer.kernel())
        assert torch.equal(kernel[..., 2, 2], layer.weight[..., 0])  # centre cell = ring 0


class TestExceptions:
    @pytest.mark.parametrize("kwargs,exc,pattern", [
        (dict(kernel_size=4), ValueError, r"kernel_size must be odd.*got 4.*\(5, 5\)"),
        (dict(kernel_size="3"), TypeError, "kernel_size must be an int"),
        (dict(sre_k=0), ValueError, "sre_k must be between 1 and"),
        (dict(sre_k=9), ValueError, r"sre_k must be between 1 and 3 .* got 9"),
        (dict(groups=3), ValueError, r"groups=3 must divide in_channels=4"),
        (dict(groups=2, out_channels=3), ValueError, r"groups=2 must divide out_channels=3"),
        (dict(ring_basis="soft"), ValueError, r"ring_basis must be one of 'hard', 'gaussian', got 'soft'"),
        (dict(padding_mode="mirror"), ValueError, r"padding_mode must be one of 'zeros', 'reflect'"),
        (dict(padding="full"), ValueError, r"padding must be one of 'same', 'valid', got 'full'"),
        (dict(padding="same", stride=2), ValueError, "padding='same' needs stride=1"),
        (dict(stride="2"), TypeError, "stride must be an int"),
        (dict(stride=0), ValueError, "stride must be an int >= 1, got 0"),
        (dict(dilation=(1, 2, 3)), ValueError, "dilation must be an int or a tuple of 2 ints"),
        (dict(in_channels=2.0), TypeError, "in_channels must be an int"),
        (dict(force_circular="yes"), TypeError, "force_circular must be a bool"),
    ])
    def test_constructor(self, kwargs, exc, pattern):
        args = dict(in_channels=4, out_channels=4, kernel_size=3)
        args.update(kwargs)
        with pytest.raises(exc, match=pattern):
            SREConv2d(**args)

    def test_transposed_constructor(self):
        with pytest.raises(ValueError, match="padding_mode must be 'zeros' for transposed"):
            SREConvTranspose2d(2, 2, 3, padding_mode="reflect")
        with pytest.raises(ValueError, match="output_padding must be smaller than stride or dilation"):
            SREConvTranspose2d(2, 2, 3, stride=2, output_padding=2)
        with pytest.raises(ValueError, match="padding must be an int or a tuple of 2 ints for transposed"):
            SREConvTranspose2d(2, 2, 3, padding="same")

    def test_wrong_ndim(self):
        with pytest.raises(ValueError, match=r"SREConv2d expects input of shape \(N, C, \*, \*\).*got shape \(2, 3\)"):
            SREConv2d(3, 4, 3)(torch.randn(2, 3))

    def test_wrong_channels(self):
        with pytest.raises(ValueError, match=r"in_channels=3 but the input has 5 channels"):
            SREConv2d(3, 4, 3)(torch.randn(1, 5, 8, 8))
        with pytest.raises(ValueError, match=r"in_channels=3 but the input has 4 channels"):
            SREConvTranspose3d(3, 4, 3)(torch.randn(4, 6, 6, 6))

    def test_not_a_tensor(self):
        with pytest.raises(TypeError, match="expects a torch.Tensor"):
            SREConv1d(1, 1, 3)([1.0, 2.0, 3.0])
