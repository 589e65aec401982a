"""The ring engine (ring responses + 1x1 mixing) against the dense kernel, and the ``impl`` switch."""

import copy
import warnings

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from sreconv.groups import grid_symmetries
from sreconv.nn import (
    SREConv1d,
    SREConv2d,
    SREConv3d,
    SREConvTranspose2d,
    gaussian_ring_basis,
    hard_ring_basis,
    sre_conv,
)
from sreconv.nn.ring_conv import IMPLS, build_ring_plan, modelled_costs, ring_conv

CONV = {1: SREConv1d, 2: SREConv2d, 3: SREConv3d}
ATOL = 1e-10


def pair(cls, *args, **kwargs):
    """The same layer twice, ``impl='dense'`` and ``impl='ring'``, with shared random float64 weights."""
    dense = cls(*args, impl="dense", dtype=torch.float64, **kwargs)
    ring = cls(*args, impl="ring", dtype=torch.float64, **kwargs)
    with torch.no_grad():
        dense.weight.normal_()
        if dense.bias is not None:
            dense.bias.normal_()
    ring.load_state_dict(dense.state_dict())
    assert dense.resolved_impl() == "dense" and ring.resolved_impl() == "ring"
    return dense, ring


def assert_same_forward_and_grads(dense, ring, x):
    x = x.clone().requires_grad_()
    y_dense, y_ring = dense(x), ring(x)
    torch.testing.assert_close(y_ring, y_dense, atol=ATOL, rtol=0)
    grad = torch.randn_like(y_dense)
    params_d = [x, dense.weight] + ([dense.bias] if dense.bias is not None else [])
    params_r = [x, ring.weight] + ([ring.bias] if ring.bias is not None else [])
    for name, gd, gr in zip(["input", "weight", "bias"], torch.autograd.grad(y_dense, params_d, grad),
                            torch.autograd.grad(y_ring, params_r, grad)):
        torch.testing.assert_close(gr, gd, atol=ATOL, rtol=0, msg=lambda m, name=name: f"grad {name}: {m}")


class TestPlan:
    @pytest.mark.parametrize("k", [1, 3, 5, 9, 13])
    def test_hard_rings_are_their_own_groups(self, k):
        plan = build_ring_plan(hard_ring_basis(k))
        assert plan.num_groups == hard_ring_basis(k).shape[0]
        assert plan.num_boxes == k // 2 + 1

    def test_gaussian_groups_are_distance_shells(self):
        # k=5 circular: squared distances 0, 1, 2, 4, 5 inside radius 2.5 (8 is a dropped corner)
        assert build_ring_plan(gaussian_ring_basis(5)).num_groups == 5

    def test_terms_rebuild_the_basis(self):
        basis = hard_ring_basis((3, 5, 7))
        plan = build_ring_plan(basis)
        rebuilt = torch.zeros_like(basis)
        centre = 7 // 2
        for g, terms in enumerate(plan.terms):
            ring = int(basis.flatten(1)[:, plan.representatives[g]].argmax())
            for lead, a, sign in terms:
                rebuilt[(ring,) + lead + (slice(centre - a, centre + a + 1),)] += sign
        torch.testing.assert_close(rebuilt, basis)

    def test_non_radial_basis_has_no_plan(self):
        basis = torch.zeros(1, 3, 3)
        basis[0, 1, 2] = 1.0  # one off-centre cell: not symmetric along the last axis
        assert build_ring_plan(basis) is None


class TestRingMatchesDense:
    @pytest.mark.parametrize("ndim", [1, 2, 3])
    @pytest.mark.parametrize("k", [1, 3, 5])
    def test_basic(self, ndim, k):
        dense, ring = pair(CONV[ndim], 3, 4, k, padding=k // 2)
        assert_same_forward_and_grads(dense, ring, torch.randn((2, 3) + (7,) * ndim, dtype=torch.float64))

    @pytest.mark.parametrize("k", [7, 9, 13])
    def test_large_kernels_2d(self, k):
        dense, ring = pair(SREConv2d, 3, 5, k, padding=k // 2)
        assert_same_forward_and_grads(dense, ring, torch.randn(2, 3, 15, 14, dtype=torch.float64))

    @pytest.mark.parametrize("stride", [1, 2, 3, (2, 1)])
    @pytest.mark.parametrize("dilation", [1, 2, (1, 3)])
    @pytest.mark.parametrize("groups", [1, 2, 4])
    def test_stride_dilation_groups_2d(self, stride, dilation, groups):
        dense, ring = pair(SREConv2d, 4, 8, 5, stride=stride, padding=3, dilation=dilation, groups=groups)
        assert_same_forward_and_grads(dense, ring, torch.randn(2, 4, 17, 16, dtype=torch.float64))

    @pytest.mark.parametrize("stride,dilation,groups", [(1, 1, 1), (2, 1, 2), ((1, 2, 2), 2, 1), (1, (2, 1, 1), 4)])
    def test_stride_dilation_groups_3d(self, stride, dilation, groups):
        dense, ring = pair(SREConv3d, 4, 4, 3, stride=stride, padding=2, dilation=dilation, groups=groups)
        assert_same_forward_and_grads(dense, ring, torch.randn(2, 4, 8, 9, 7, dtype=torch.float64))

    @pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
    @pytest.mark.parametrize("padding", [2, "same", "valid", (1, 2)])
    def test_padding(self, padding_mode, padding):
        dense, ring = pair(SREConv2d, 3, 4, 5, padding=padding, padding_mode=padding_mode)
        assert_same_forward_and_grads(dense, ring, torch.randn(2, 3, 9, 10, dtype=torch.float64))

    @pytest.mark.parametrize("padding_mode", ["reflect", "circular"])
    def test_padding_modes_1d_3d(self, padding_mode):
        for ndim in (1, 3):
            dense, ring = pair(CONV[ndim], 2, 3, 3, padding="same", padding_mode=padding_mode, dilation=2)
            assert_same_forward_and_grads(dense, ring, torch.randn((2, 2) + (6,) * ndim, dtype=torch.float64))

    @pytest.mark.parametrize("ndim", [1, 2, 3])
    @pytest.mark.parametrize("force_circular", [True, False])
    def test_gaussian(self, ndim, force_circular):
        k = 7 if ndim < 3 else 5
        dense, ring = pair(CONV[ndim], 3, 4, k, padding=k // 2, ring_basis="gaussian",
                           force_circular=force_circular, stride=2 if ndim == 2 else 1)
        assert_same_forward_and_grads(dense, ring, torch.randn((2, 3) + (9,) * ndim, dtype=torch.float64))

    @pytest.mark.parametrize("kwargs", [dict(force_circular=False), dict(sre_k=2), dict(sre_k=5), dict(bias=False),
                                        dict(ring_basis="gaussian", gaussian_sigma=2.0, sre_k=4)])
    def test_ring_options(self, kwargs):
        dense, ring = pair(SREConv2d, 3, 4, 7, padding=3, **kwargs)
        assert_same_forward_and_grads(dense, ring, torch.randn(2, 3, 11, 11, dtype=torch.float64))

    def test_anisotropic_3d_kernel(self):
        dense, ring = pair(SREConv3d, 2, 3, (3, 7, 5), padding=(1, 3, 2))
        assert_same_forward_and_grads(dense, ring, torch.randn(1, 2, 5, 9, 8, dtype=torch.float64))

    def test_unbatched(self):
        dense, ring = pair(SREConv2d, 3, 4, 5, padding=2)
        x = torch.randn(3, 9, 9, dtype=torch.float64)
        torch.testing.assert_close(ring(x), dense(x), atol=ATOL, rtol=0)
        assert ring(x).shape == (4, 9, 9)

    def test_eval_mode_and_no_grad(self):
        dense, ring = pair(SREConv2d, 3, 4, 5, padding=2)
        x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(ring.eval()(x), dense.eval()(x), atol=ATOL, rtol=0)

    def test_float32_rounding(self):
        dense = SREConv2d(16, 16, 9, padding=4, impl="dense")
        ring = SREConv2d(16, 16, 9, padding=4, impl="ring")
        ring.load_state_dict(dense.state_dict())
        x = torch.randn(2, 16, 20, 20)
        torch.testing.assert_close(ring(x), dense(x), atol=1e-5, rtol=1e-5)

    def test_functional(self):
        x, w = torch.randn(2, 3, 10, 10, dtype=torch.float64), torch.randn(4, 3, 3, dtype=torch.float64)
        basis = gaussian_ring_basis(5, dtype=torch.float64)
        torch.testing.assert_close(ring_conv(x, w, basis, padding=2, stride=2),
                                   sre_conv(x, w, basis, padding=2, stride=2), atol=ATOL, rtol=0)


class TestRingAutograd:
    @pytest.mark.parametrize("ndim", [1, 2, 3])
    def test_gradcheck(self, ndim):
        layer = CONV[ndim](4, 2, 3, padding=1, stride=2 if ndim == 2 else 1, groups=2, ring_basis="gaussian",
                           dtype=torch.float64, impl="ring")
        # 3^3 keeps the 3D second-order check (one backward per input element) within seconds
        x = torch.randn((1, 4) + ((5,) * ndim if ndim < 3 else (3,) * 3), dtype=torch.float64, requires_grad=True)

        def f(inp, w, b):
            return torch.func.functional_call(layer, {"weight": w, "bias": b}, (inp,))

        assert gradcheck(f, (x, layer.weight, layer.bias))
        assert gradgradcheck(f, (x, layer.weight, layer.bias))

    def test_saves_no_more_than_dense(self):
        """Training keeps the (padded) input and the weights, not the G-times-larger ring responses."""
        dense, ring = pair(SREConv2d, 8, 8, 9, padding=4)
        x = torch.randn(2, 8, 24, 24, dtype=torch.float64, requires_grad=True)

        def saved_bytes(layer):
            total = []

            def pack(t):
                total.append(t.numel() * t.element_size())
                return t

            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                layer(x)
            return sum(total)

        padded = 2 * 8 * 32 * 32 * 8
        assert saved_bytes(ring) <= padded + 10_000
        assert saved_bytes(ring) <= 1.5 * saved_bytes(dense)


class TestImplSwitch:
    def test_validation(self):
        with pytest.raises(ValueError, match=r"impl must be one of 'auto', 'dense', 'ring', got 'fast'"):
            SREConv2d(2, 2, 3, impl="fast")
        with pytest.raises(ValueError, match="impl"):
            SREConvTranspose2d(2, 2, 3, impl=None)
        assert IMPLS == ("auto", "dense", "ring")

    def test_repr_and_state_dict(self):
        assert "impl" not in repr(SREConv2d(2, 2, 3))
        layer = SREConv2d(2, 2, 3, impl="ring")
        assert "impl='ring'" in repr(layer)
        assert set(layer.state_dict()) == {"weight", "bias"}
        assert set(dict(layer.named_buffers())) == {"basis"}

    def test_auto_picks_ring_for_large_kernels_and_dense_for_tiny_layers(self):
        big = SREConv2d(64, 64, 9, padding=4)
        tiny = SREConv2d(1, 1, 3, padding=1)
        x = torch.randn(16, 64, 32, 32)
        with torch.no_grad():
            assert big.resolved_impl(x) == "ring"
            assert big.resolved_impl(x[:1, :, :4, :4]) == "dense"  # per-op overhead dominates tiny inputs
            assert tiny.resolved_impl(torch.randn(16, 1, 32, 32)) == "dense"
            assert big.resolved_impl(x.to(torch.bfloat16)) == "dense"
        assert big.resolved_impl(x) == "ring"  # training, k=9
        assert big.resolved_impl() == "ring"  # no input: per-position model

    def test_auto_matches_dense(self):
        dense = SREConv2d(32, 32, 9, padding=4, impl="dense", dtype=torch.float64)
        auto = SREConv2d(32, 32, 9, padding=4, dtype=torch.float64)
        auto.load_state_dict(dense.state_dict())
        x = torch.randn(8, 32, 32, 32, dtype=torch.float64)
        with torch.no_grad():
            assert auto.resolved_impl(x) == "ring"
            torch.testing.assert_close(auto(x), dense(x), atol=ATOL, rtol=0)

    def test_cost_model_prefers_dense_for_1x1(self):
        plan = build_ring_plan(hard_ring_basis(1))
        dense, ring = modelled_costs(64, 64, 1, plan, 1, (1, 1), training=False)
        assert dense < ring

    def test_transposed_ring_runs_dense(self):
        layer = SREConvTranspose2d(3, 2, 5, stride=2, impl="ring", dtype=torch.float64)
        assert layer.resolved_impl() == "dense"
        ref = SREConvTranspose2d(3, 2, 5, stride=2, impl="dense", dtype=torch.float64)
        ref.load_state_dict(layer.state_dict())
        x = torch.randn(1, 3, 6, 6, dtype=torch.float64)
        torch.testing.assert_close(layer(x), ref(x), atol=ATOL, rtol=0)
        assert "impl='ring'" in repr(layer)

    def test_adopting_other_official_masks_rebuilds_the_plan(self):
        dense, ring = pair(SREConv2d, 2, 3, 5, padding=2)
        other = SREConv2d(2, 3, 5, sre_k=3, force_circular=False)  # same shape, different rings
        state = dict(dense.state_dict(), weight_index_mat=other.official_masks())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dense.load_state_dict(state)
            ring.load_state_dict(state)
        torch.testing.assert_close(ring.basis, other.basis.double())
        x = torch.randn(1, 2, 9, 9, dtype=torch.float64)
        torch.testing.assert_close(ring(x), dense(x), atol=ATOL, rtol=0)

    def test_non_radial_masks_fall_back_to_dense(self):
        dense, ring = pair(SREConv2d, 2, 3, 3, padding=1)
        masks = torch.zeros(1, 1, 2, 9)
        masks[0, 0, 0, 4] = masks[0, 0, 1, 5] = 1.0
        state = dict(dense.state_dict(), weight_index_mat=masks)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dense.load_state_dict(state)
            ring.load_state_dict(state)
        assert ring.resolved_impl() == "dense"
        x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
        torch.testing.assert_close(ring(x), dense(x), atol=ATOL, rtol=0)

    def test_deepcopy_keeps_the_engine(self):
        dense, ring = pair(SREConv2d, 2, 3, 5, padding=2)
        clone = copy.deepcopy(ring)
        x = torch.randn(1, 2, 9, 9, dtype=torch.float64)
        torch.testing.assert_close(clone(x), dense(x), atol=ATOL, rtol=0)

    @pytest.mark.parametrize("ndim", [2, 3])
    def test_ring_is_equivariant(self, ndim):
        _, ring = pair(CONV[ndim], 2, 3, 5, padding="same", ring_basis="gaussian")
        x = torch.randn((1, 2) + (7,) * ndim, dtype=torch.float64)
        y = ring(x)
        for g in grid_symmetries(ndim):
            torch.testing.assert_close(ring(g.apply(x)), g.apply(y), atol=ATOL, rtol=0)


class TestCompile:
    @pytest.mark.parametrize("backend", ["eager", "aot_eager"])
    @pytest.mark.parametrize("impl", ["dense", "ring"])
    def test_compile(self, backend, impl):
        torch._dynamo.reset()
        layer = SREConv2d(3, 4, 5, padding=2, stride=2, groups=1, impl=impl)
        x = torch.randn(2, 3, 12, 12, requires_grad=True)
        compiled = torch.compile(layer, backend=backend, fullgraph=True)
        torch.testing.assert_close(compiled(x), layer(x), atol=1e-5, rtol=1e-5)
        compiled(x).sum().backward()
        reference = torch.autograd.grad(layer(x).sum(), layer.weight)[0]
        layer.weight.grad = None
        compiled(x).sum().backward()
        torch.testing.assert_close(layer.weight.grad, reference, atol=1e-4, rtol=1e-5)
        layer.eval()
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), layer(x), atol=1e-5, rtol=1e-5)
