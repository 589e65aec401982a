"""The ring paths ('ring': disc sums + 1x1 mixing; 'depthwise': 1x1 mixing + depthwise ring masks) against the
dense kernel, their chunking under a workspace budget, autograd, compile/trace, and the ``impl`` switch."""

import copy
import math
import warnings

import numpy as np
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
    tuning,
)
from sreconv.nn import ring_conv as engine
from sreconv.nn.ring_basis import squared_distances
from sreconv.nn.ring_conv import IMPLS, build_ring_plan, depthwise_conv, model_choice, modelled_costs, ring_conv
from tests.tiers import all_pairs

CONV = {1: SREConv1d, 2: SREConv2d, 3: SREConv3d}
PATHS = ["ring", "depthwise", "fused"]
PADDING_MODES = ["zeros", "reflect", "replicate", "circular"]
PATHS_FAST = ["ring", "fused", pytest.param("depthwise", marks=pytest.mark.slow)]  # depthwise: covered by the others
ATOL = 1e-10


@pytest.fixture
def workspace():
    """Sets the ring paths' workspace limit for one test and restores it."""
    previous = tuning.workspace_limit()
    yield tuning.set_workspace_limit
    tuning.set_workspace_limit(previous)


def pair(cls, *args, impl="ring", **kwargs):
    """The same layer twice, ``impl='dense'`` and ``impl=impl``, with shared random float64 weights."""
    dense = cls(*args, impl="dense", dtype=torch.float64, **kwargs)
    other = cls(*args, impl=impl, dtype=torch.float64, **kwargs)
    with torch.no_grad():
        dense.weight.normal_()
        if dense.bias is not None:
            dense.bias.normal_()
    other.load_state_dict(dense.state_dict())
    assert dense.resolved_impl() == "dense" and other.resolved_impl() == impl
    return dense, other


def assert_same_forward_and_grads(dense, other, x, atol=ATOL):
    x = x.clone().requires_grad_()
    y_dense, y_other = dense(x), other(x)
    torch.testing.assert_close(y_other, y_dense, atol=atol, rtol=0)
    grad = torch.randn_like(y_dense)
    params_d = [x, dense.weight] + ([dense.bias] if dense.bias is not None else [])
    params_o = [x, other.weight] + ([other.bias] if other.bias is not None else [])
    for name, gd, go in zip(["input", "weight", "bias"], torch.autograd.grad(y_dense, params_d, grad),
                            torch.autograd.grad(y_other, params_o, grad)):
        torch.testing.assert_close(go, gd, atol=atol, rtol=0, msg=lambda m, name=name: f"grad {name}: {m}")


def disc_cells(plan, level, key):
    """The cells (offsets on the last ``level`` axes) that a plan node sums, by expanding its terms."""
    if level == 1:
        return {(t,) for t in range(-key, key + 1)}
    nodes = dict(plan.levels[level - 2])
    return {(offset,) + cell for child, offset in nodes[key] for cell in disc_cells(plan, level - 1, child)}


class TestPlan:
    @pytest.mark.parametrize("k", [1, 3, 5, 9, 13])
    def test_hard_rings_are_their_own_segments(self, k):
        plan = build_ring_plan(hard_ring_basis(k))
        assert plan.num_segments == hard_ring_basis(k).shape[0]
        assert plan.num_boxes == k // 2 + 1

    def test_gaussian_segments_are_distance_shells(self):
        # k=5 circular: squared distances 0, 1, 2, 4, 5 inside radius 2.5 (8 is a dropped corner)
        plan = build_ring_plan(gaussian_ring_basis(5))
        assert plan.thresholds == (0, 1, 2, 4, 5)

    @pytest.mark.parametrize("basis", [hard_ring_basis(9), gaussian_ring_basis(7), hard_ring_basis((3, 7, 5)),
                                       hard_ring_basis(5, ndim=3), hard_ring_basis(9, force_circular=False),
                                       hard_ring_basis(7, ndim=1)], ids=lambda b: str(tuple(b.shape)))
    def test_discs_rebuild_the_basis(self, basis):
        """Every top-level node sums exactly the cells ``d2 <= T`` and the telescoped discs give the basis."""
        plan = build_ring_plan(basis)
        size = tuple(basis.shape[1:])
        d2 = squared_distances(size)
        centre = tuple(k // 2 for k in size)
        rebuilt = np.zeros(basis.shape, dtype=np.float64)
        for s, (threshold, key) in enumerate(zip(plan.thresholds, plan.outputs)):
            cells = disc_cells(plan, len(size), key)
            expected = {tuple(int(i) - c for i, c in zip(index, centre)) for index in np.argwhere(d2 <= threshold)}
            assert cells == expected
            mask = d2 <= threshold
            rebuilt += np.asarray(plan.difference)[:, s].reshape((-1,) + (1,) * len(size)) * mask
        np.testing.assert_allclose(rebuilt, basis.double().numpy(), atol=1e-12)

    def test_disc_terms_are_fewer_than_rows_times_rings(self):
        # k=9 hard: discs of 1, 3, 5, 7 and 9 rows; the old row-per-ring decomposition needed 41 terms
        assert build_ring_plan(hard_ring_basis(9)).num_terms == 25

    def test_non_radial_basis_has_no_plan(self):
        basis = torch.zeros(1, 3, 3)
        basis[0, 1, 2] = 1.0  # one off-centre cell: not radial
        assert build_ring_plan(basis) is None
        assert build_ring_plan(torch.ones(1, 4, 4)) is None  # even size: no centre cell
        assert build_ring_plan(torch.zeros(2, 3, 3)) is None  # empty


class TestPathsMatchDense:
    @pytest.mark.parametrize("path", PATHS_FAST)
    @pytest.mark.parametrize("ndim", [1, 2, 3])
    @pytest.mark.parametrize("k", [1, 3, 5])
    def test_basic(self, path, ndim, k):
        dense, other = pair(CONV[ndim], 3, 4, k, padding=k // 2, impl=path)
        assert_same_forward_and_grads(dense, other, torch.randn((2, 3) + (7,) * ndim, dtype=torch.float64))

    @pytest.mark.parametrize("path", PATHS)
    @pytest.mark.parametrize("k", [7, 9, 13])
    def test_large_kernels_2d(self, path, k):
        dense, other = pair(SREConv2d, 3, 5, k, padding=k // 2, impl=path)
        assert_same_forward_and_grads(dense, other, torch.randn(2, 3, 15, 14, dtype=torch.float64))

    @pytest.mark.parametrize("path,stride,dilation,groups", all_pairs(PATHS_FAST, [1, 2, 3, (2, 1)], [1, 2, (1, 3)],
                                                                      [1, 2, 4]))
    def test_stride_dilation_groups_2d(self, path, stride, dilation, groups):
        dense, other = pair(SREConv2d, 4, 8, 5, stride=stride, padding=3, dilation=dilation, groups=groups,
                            impl=path)
        assert_same_forward_and_grads(dense, other, torch.randn(2, 4, 17, 16, dtype=torch.float64))

    @pytest.mark.parametrize("path", PATHS)
    @pytest.mark.parametrize("stride,dilation,groups", [(1, 1, 1), (2, 1, 2), ((1, 2, 2), 2, 1), (1, (2, 1, 1), 4)])
    def test_stride_dilation_groups_3d(self, path, stride, dilation, groups):
        dense, other = pair(SREConv3d, 4, 4, 3, stride=stride, padding=2, dilation=dilation, groups=groups,
                            impl=path)
        assert_same_forward_and_grads(dense, other, torch.randn(2, 4, 8, 9, 7, dtype=torch.float64))

    @pytest.mark.parametrize("path,padding_mode,padding",
                             all_pairs(PATHS, PADDING_MODES, [2, "same", "valid", (1, 2)]))
    def test_padding(self, path, padding_mode, padding):
        dense, other = pair(SREConv2d, 3, 4, 5, padding=padding, padding_mode=padding_mode, impl=path)
        assert_same_forward_and_grads(dense, other, torch.randn(2, 3, 9, 10, dtype=torch.float64))

    @pytest.mark.parametrize("path", PATHS)
    def test_asymmetric_same_padding(self, path):
        dense, other = pair(SREConv2d, 2, 3, 3, padding="same", dilation=(1, 2), impl=path)
        assert_same_forward_and_grads(dense, other, torch.randn(1, 2, 8, 9, dtype=torch.float64))

    @pytest.mark.parametrize("path", PATHS)
    @pytest.mark.parametrize("padding_mode", ["reflect", "circular"])
    def test_padding_modes_1d_3d(self, path, padding_mode):
        for ndim in (1, 3):
            dense, other = pair(CONV[ndim], 2, 3, 3, padding="same", padding_mode=padding_mode, dilation=2,
                                impl=path)
            assert_same_forward_and_grads(dense, other, torch.randn((2, 2) + (6,) * ndim, dtype=torch.float64))

    @pytest.mark.parametrize("path", PATHS_FAST)
    @pytest.mark.parametrize("ndim", [1, 2, 3])
    @pytest.mark.parametrize("force_circular", [True, False])
    def test_gaussian(self, path, ndim, force_circular):
        k = 7 if ndim < 3 else 5
        dense, other = pair(CONV[ndim], 3, 4, k, padding=k // 2, ring_basis="gaussian",
                            force_circular=force_circular, stride=2 if ndim == 2 else 1, impl=path)
        assert_same_forward_and_grads(dense, other, torch.randn((2, 3) + (9,) * ndim, dtype=torch.float64))

    @pytest.mark.parametrize("path", PATHS_FAST)
    @pytest.mark.parametrize("kwargs", [dict(force_circular=False), dict(sre_k=2), dict(sre_k=5), dict(bias=False),
                                        dict(ring_basis="gaussian", gaussian_sigma=2.0, sre_k=4)])
    def test_ring_options(self, path, kwargs):
        dense, other = pair(SREConv2d, 3, 4, 7, padding=3, impl=path, **kwargs)
        assert_same_forward_and_grads(dense, other, torch.randn(2, 3, 11, 11, dtype=torch.float64))

    @pytest.mark.parametrize("path", PATHS)
    def test_anisotropic_3d_kernel(self, path):
        dense, other = pair(SREConv3d, 2, 3, (3, 7, 5), padding=(1, 3, 2), impl=path)
        assert_same_forward_and_grads(dense, other, torch.randn(1, 2, 5, 9, 8, dtype=torch.float64))

    @pytest.mark.parametrize("path", PATHS)
    def test_unbatched(self, path):
        dense, other = pair(SREConv2d, 3, 4, 5, padding=2, impl=path)
        x = torch.randn(3, 9, 9, dtype=torch.float64)
        torch.testing.assert_close(other(x), dense(x), atol=ATOL, rtol=0)
        assert other(x).shape == (4, 9, 9)

    @pytest.mark.parametrize("path", PATHS)
    def test_eval_mode_and_no_grad(self, path):
        dense, other = pair(SREConv2d, 3, 4, 5, padding=2, impl=path)
        x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(other.eval()(x), dense.eval()(x), atol=ATOL, rtol=0)

    @pytest.mark.parametrize("path", PATHS)
    @pytest.mark.parametrize("ndim", [2, 3])
    def test_channels_last_input_keeps_its_format(self, path, ndim):
        dense, other = pair(CONV[ndim], 3, 4, 5, padding=2, impl=path)
        fmt = torch.channels_last if ndim == 2 else torch.channels_last_3d
        x = torch.randn((2, 3) + (8,) * ndim, dtype=torch.float64).contiguous(memory_format=fmt)
        y = other(x)
        assert y.is_contiguous(memory_format=fmt) and not y.is_contiguous()
        assert other(x.contiguous()).is_contiguous()
        assert_same_forward_and_grads(dense, other, x)

    @pytest.mark.parametrize("path", PATHS)
    def test_float32_rounding(self, path):
        dense = SREConv2d(16, 16, 9, padding=4, impl="dense")
        other = SREConv2d(16, 16, 9, padding=4, impl=path)
        other.load_state_dict(dense.state_dict())
        x = torch.randn(2, 16, 20, 20)
        torch.testing.assert_close(other(x), dense(x), atol=1e-5, rtol=1e-5)

    @pytest.mark.parametrize("fn", [ring_conv, depthwise_conv])
    def test_functional(self, fn):
        x, w = torch.randn(2, 3, 10, 10, dtype=torch.float64), torch.randn(4, 3, 3, dtype=torch.float64)
        basis = gaussian_ring_basis(5, dtype=torch.float64)
        torch.testing.assert_close(fn(x, w, basis, padding=2, stride=2), sre_conv(x, w, basis, padding=2, stride=2),
                                   atol=ATOL, rtol=0)

    def test_ring_conv_refuses_a_non_radial_basis(self):
        basis = torch.zeros(1, 3, 3, dtype=torch.float64)
        basis[0, 0, 1] = 1.0
        with pytest.raises(ValueError, match="ring_conv needs a radial basis"):
            ring_conv(torch.randn(1, 1, 5, 5, dtype=torch.float64), torch.randn(1, 1, 1, dtype=torch.float64), basis)


class TestChunking:
    """A small workspace splits the batch (and rows of one sample) into pieces: same results, bounded pieces."""

    @pytest.mark.parametrize("path,limit,ndim_stride", all_pairs(PATHS, [0, 3000, 40_000],
                                                                   [(2, 1), (2, 2), (3, 1), (1, 2)]))
    def test_chunked_equals_dense(self, workspace, path, limit, ndim_stride):
        ndim, stride = ndim_stride
        workspace(limit)
        dense, other = pair(CONV[ndim], 3, 4, 5, padding=2, stride=stride, impl=path)
        assert_same_forward_and_grads(dense, other, torch.randn((5, 3) + (9,) * ndim, dtype=torch.float64))

    @pytest.mark.parametrize("limit", [2**12, 2**16, 2**20])
    def test_tiles_fit_the_budget(self, limit, workspace):
        workspace(limit)
        plan = build_ring_plan(hard_ring_basis(9))
        padded, out, channels = (40, 40), (32, 32), 16
        per_sample = engine.transient_elements(plan, padded, out, channels) * 4
        tiles = engine._tiles(8, per_sample, out[0])
        covered = sorted((b, r) for b0, b1, r0, r1 in tiles for b in range(b0, b1) for r in range(r0, r1))
        assert covered == [(b, r) for b in range(8) for r in range(out[0])]  # every output row exactly once
        for b0, b1, r0, r1 in tiles:
            assert (b1 - b0) * per_sample * (r1 - r0) // out[0] <= max(limit, per_sample // out[0])

    def test_workspace_is_reused(self, workspace):
        workspace(2**22)
        x = torch.randn(2, 4, 12, 12)
        first = engine._arena(x, 1000).buffer
        assert first is not None and engine._arena(x, 500).buffer is first
        workspace(2**21)  # a new budget drops the buffer
        assert engine._arena(x, 500).buffer is not first

    def test_set_workspace_limit_validates(self):
        with pytest.raises(ValueError, match="workspace limit must be a non-negative int of bytes, got -1"):
            tuning.set_workspace_limit(-1)


class TestRingAutograd:
    @staticmethod
    def _layer_and_input(path, ndim):
        layer = CONV[ndim](4, 2, 3, padding=1, stride=2 if ndim == 2 else 1, groups=2, ring_basis="gaussian",
                           dtype=torch.float64, impl=path)
        # 3^3 keeps the 3D second-order check (one backward per input element) within seconds
        x = torch.randn((1, 4) + ((5,) * ndim if ndim < 3 else (3,) * 3), dtype=torch.float64, requires_grad=True)

        def f(inp, w, b):
            return torch.func.functional_call(layer, {"weight": w, "bias": b}, (inp,))

        return f, (x, layer.weight, layer.bias)

    @pytest.mark.parametrize("path", PATHS)
    @pytest.mark.parametrize("ndim", [1, pytest.param(2, marks=pytest.mark.slow),
                                      pytest.param(3, marks=pytest.mark.slow)])
    def test_gradcheck(self, path, ndim):
        f, inputs = self._layer_and_input(path, ndim)
        assert gradcheck(f, inputs)

    @pytest.mark.slow
    @pytest.mark.parametrize("path", PATHS)
    @pytest.mark.parametrize("ndim", [1, 2, 3])
    def test_gradgradcheck(self, path, ndim):
        f, inputs = self._layer_and_input(path, ndim)
        assert gradgradcheck(f, inputs)

    @pytest.mark.parametrize("path", PATHS)
    def test_saves_no_more_than_dense(self, path):
        """Training keeps the input and the weights, not the S-times-larger responses or a padded copy."""
        dense, other = pair(SREConv2d, 8, 8, 9, padding=4, impl=path)
        x = torch.randn(2, 8, 24, 24, dtype=torch.float64, requires_grad=True)

        def saved_bytes(layer):
            total = []

            def pack(t):
                total.append(t.numel() * t.element_size())
                return t

            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                layer(x)
            return sum(total)

        assert saved_bytes(other) <= x.numel() * 8 + 10_000
        assert saved_bytes(other) <= 1.5 * saved_bytes(dense)

    @pytest.mark.parametrize("path", PATHS)
    def test_only_weight_or_only_input_gradients(self, path):
        dense, other = pair(SREConv2d, 3, 4, 5, padding=2, impl=path)
        x = torch.randn(2, 3, 9, 9, dtype=torch.float64, requires_grad=True)
        g = torch.randn(2, 4, 9, 9, dtype=torch.float64)
        torch.testing.assert_close(torch.autograd.grad(other(x), x, g)[0], torch.autograd.grad(dense(x), x, g)[0],
                                   atol=ATOL, rtol=0)
        xd = x.detach()
        torch.testing.assert_close(torch.autograd.grad(other(xd), other.weight, g)[0],
                                   torch.autograd.grad(dense(xd), dense.weight, g)[0], atol=ATOL, rtol=0)


class TestImplSwitch:
    def test_validation(self):
        allowed = "'auto', 'dense', 'ring', 'depthwise', 'fused'"
        with pytest.raises(ValueError, match=f"impl must be one of {allowed}, got 'fast'"):
            SREConv2d(2, 2, 3, impl="fast")
        with pytest.raises(ValueError, match="impl"):
            SREConvTranspose2d(2, 2, 3, impl=None)
        assert IMPLS == ("auto", "dense", "ring", "depthwise", "fused")

    def test_repr_and_state_dict(self):
        assert "impl" not in repr(SREConv2d(2, 2, 3))
        layer = SREConv2d(2, 2, 3, impl="ring")
        assert "impl='ring'" in repr(layer)
        assert set(layer.state_dict()) == {"weight", "bias"}
        assert set(dict(layer.named_buffers())) == {"basis"}

    def test_cost_model(self):
        plan = build_ring_plan(hard_ring_basis(9))
        big = modelled_costs(64, 64, 1, plan, (1, 1), False, 16 * 32 * 32, 16 * 40 * 40)
        assert model_choice(big) == "ring" and big["ring"] < 0.5 * big["dense"]
        tiny = modelled_costs(64, 64, 1, plan, (1, 1), False, 4, 100)
        assert model_choice(tiny) == "dense"  # per-op overhead dominates tiny inputs
        one = modelled_costs(64, 64, 1, build_ring_plan(hard_ring_basis(1)), (1, 1), False, 4096, 4096)
        assert model_choice(one) == "dense"  # a 1x1 kernel gains nothing
        plan3 = build_ring_plan(hard_ring_basis(3))
        train, infer = (modelled_costs(128, 128, 1, plan3, (1, 1), t, 64 * 16, 64 * 36) for t in (True, False))
        # the depthwise path recomputes nothing in backward: training favours it over the ring path
        assert train["depthwise"] / train["ring"] < infer["depthwise"] / infer["ring"]

    def test_model_mode_choices(self):
        big = SREConv2d(64, 64, 9, padding=4)
        x = torch.randn(16, 64, 32, 32)
        with tuning.tuning_mode("model"), torch.no_grad():
            assert big.resolved_impl(x) == "ring"
            assert big.resolved_impl(x[:1, :, :4, :4]) == "dense"
            assert big.resolved_impl(x.to(torch.bfloat16)) == "dense"
            assert SREConv2d(1, 1, 3, padding=1).resolved_impl(torch.randn(16, 1, 32, 32)) == "dense"
        assert big.resolved_impl() in ("ring", "fused")  # no input: the cost model at 16 x 32 x 32

    def test_transposed_ring_runs_dense(self):
        layer = SREConvTranspose2d(3, 2, 5, stride=2, impl="ring", dtype=torch.float64)
        assert layer.resolved_impl() == "dense"
        ref = SREConvTranspose2d(3, 2, 5, stride=2, impl="dense", dtype=torch.float64)
        ref.load_state_dict(layer.state_dict())
        x = torch.randn(1, 3, 6, 6, dtype=torch.float64)
        torch.testing.assert_close(layer(x), ref(x), atol=ATOL, rtol=0)
        assert "impl='ring'" in repr(layer)

    @pytest.mark.parametrize("path", PATHS)
    def test_adopting_other_official_masks_rebuilds_the_plan(self, path):
        dense, other = pair(SREConv2d, 2, 3, 5, padding=2, impl=path)
        masks = SREConv2d(2, 3, 5, sre_k=3, force_circular=False)  # same shape, different rings
        state = dict(dense.state_dict(), weight_index_mat=masks.official_masks())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dense.load_state_dict(state)
            other.load_state_dict(state)
        torch.testing.assert_close(other.basis, masks.basis.double())
        x = torch.randn(1, 2, 9, 9, dtype=torch.float64)
        torch.testing.assert_close(other(x), dense(x), atol=ATOL, rtol=0)
        other.reset_parameters()  # keeps the adopted rings
        torch.testing.assert_close(other.basis, masks.basis.double())

    def test_non_radial_masks_fall_back_to_dense(self):
        dense, other = pair(SREConv2d, 2, 3, 3, padding=1)
        masks = torch.zeros(1, 1, 2, 9)
        masks[0, 0, 0, 4] = masks[0, 0, 1, 5] = 1.0
        state = dict(dense.state_dict(), weight_index_mat=masks)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dense.load_state_dict(state)
            other.load_state_dict(state)
        assert other.resolved_impl() == "dense"
        x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
        torch.testing.assert_close(other(x), dense(x), atol=ATOL, rtol=0)

    @pytest.mark.parametrize("path", PATHS)
    def test_deepcopy_keeps_the_engine(self, path):
        dense, other = pair(SREConv2d, 2, 3, 5, padding=2, impl=path)
        clone = copy.deepcopy(other)
        x = torch.randn(1, 2, 9, 9, dtype=torch.float64)
        torch.testing.assert_close(clone(x), dense(x), atol=ATOL, rtol=0)

    @pytest.mark.parametrize("path", PATHS)
    @pytest.mark.parametrize("ndim", [2, 3])
    def test_paths_are_equivariant(self, path, ndim):
        _, other = pair(CONV[ndim], 2, 3, 5, padding="same", ring_basis="gaussian", impl=path)
        for size in (7, 8):
            x = torch.randn((1, 2) + (size,) * ndim, dtype=torch.float64)
            y = other(x)
            scale = y.abs().max()
            for g in grid_symmetries(ndim):
                torch.testing.assert_close(other(g.apply(x)) / scale, g.apply(y) / scale, atol=1e-12, rtol=0)


class TestCompileAndTrace:
    @pytest.mark.slow
    @pytest.mark.parametrize("backend", ["eager", pytest.param("aot_eager", marks=pytest.mark.slow)])
    @pytest.mark.parametrize("impl", ["ring", "depthwise", "fused", pytest.param("auto", marks=pytest.mark.slow)])
    def test_compile(self, backend, impl):
        torch._dynamo.reset()
        layer = SREConv2d(3, 4, 5, padding=2, stride=2, impl=impl)
        x = torch.randn(2, 3, 12, 12, requires_grad=True)
        compiled = torch.compile(layer, backend=backend, fullgraph=True)
        torch.testing.assert_close(compiled(x), layer(x), atol=1e-5, rtol=1e-5)
        reference = torch.autograd.grad(layer(x).sum(), layer.weight)[0]
        layer.weight.grad = None
        compiled(x).sum().backward()
        torch.testing.assert_close(layer.weight.grad, reference, atol=1e-4, rtol=1e-5)
        layer.eval()
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), layer(x), atol=1e-5, rtol=1e-5)

    @pytest.mark.parametrize("impl", ["ring", "depthwise", "fused", "auto"])
    def test_jit_trace(self, impl):
        layer = SREConv2d(3, 4, 5, padding=2, impl=impl).eval()
        x = torch.randn(2, 3, 12, 12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(layer, x)
        torch.testing.assert_close(traced(x), layer(x), atol=1e-6, rtol=1e-6)


def test_transient_elements_count_what_the_forward_allocates():
    plan = build_ring_plan(hard_ring_basis(5, ndim=3))
    padded, out, channels = (8, 9, 10), (4, 5, 6), 3
    boxes = (plan.num_boxes - 1) * 8 * 9 * 6
    level2 = len(plan.levels[0]) * 8 * 5 * 6
    expected = channels * (math.prod(padded) + boxes + level2 + (plan.num_segments + 1) * math.prod(out))
    assert engine.transient_elements(plan, padded, out, channels) == expected
