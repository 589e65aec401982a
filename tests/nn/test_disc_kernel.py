"""The compiled disc-sum kernel computes what the eager ring path computes (needs numba)."""

import numpy as np
import pytest
import torch

from sreconv.nn import SREConv2d, SREConv3d, disc_kernel
from sreconv.nn.ring_basis import make_ring_basis
from sreconv.nn.ring_conv import build_ring_plan, ring_responses

pytest.importorskip("numba")

CASES = [  # spatial dims, kernel, stride, dilation, groups, basis, padded size
    (1, 9, (1,), (1,), 1, "hard", (13,)),
    (1, 5, (3,), (2,), 2, "gaussian", (17,)),
    (2, 3, (1, 1), (1, 1), 1, "hard", (6, 7)),
    (2, 9, (1, 1), (1, 1), 1, "hard", (13, 11)),
    (2, 5, (2, 2), (1, 1), 2, "gaussian", (12, 9)),
    (2, 7, (1, 2), (2, 1), 4, "hard", (19, 10)),
    (3, 5, (1, 1, 1), (1, 1, 1), 1, "hard", (9, 8, 7)),
    (3, 7, (2, 1, 2), (1, 2, 1), 2, "hard", (14, 17, 15)),
]


@pytest.fixture
def kernels():
    yield disc_kernel.set_compiled_kernels
    disc_kernel.set_compiled_kernels(True)


@pytest.mark.parametrize("dims,k,stride,dilation,groups,kind,padded", CASES)
def test_kernel_equals_eager_disc_sums(kernels, dims, k, stride, dilation, groups, kind, padded):
    plan = build_ring_plan(make_ring_basis(kind, k, ndim=dims))
    xp = torch.randn((3, *padded, 8), dtype=torch.float64)
    kernels(False)
    eager = ring_responses(xp, plan, stride, dilation, groups)
    kernels(True)
    assert disc_kernel.applies(xp)
    compiled = ring_responses(xp, plan, stride, dilation, groups)
    assert compiled.shape == eager.shape
    torch.testing.assert_close(compiled, eager, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layer,shape", [(SREConv2d, (2, 4, 11, 12)), (SREConv3d, (2, 4, 7, 8, 9))])
def test_ring_layer_same_outputs_and_gradients_with_and_without_kernel(kernels, layer, shape):
    torch.manual_seed(0)
    conv = layer(4, 6, 5, padding=2, impl="ring").double()
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    results = []
    for enabled in (False, True):
        kernels(enabled)
        y = conv(x)
        grads = torch.autograd.grad(y.square().sum(), [x, conv.weight])
        results.append((y.detach(), *grads))
    for eager, compiled in zip(*results):
        torch.testing.assert_close(compiled, eager, rtol=1e-10, atol=1e-10)


def test_kernel_not_used_for_half_or_when_disabled(kernels):
    assert not disc_kernel.applies(torch.zeros(1, 4, 4, 2, dtype=torch.float16))
    kernels(False)
    assert not disc_kernel.applies(torch.zeros(1, 4, 4, 2))


def test_busy_kernel_falls_back_to_eager_sums(kernels):
    plan = build_ring_plan(make_ring_basis("hard", 5, ndim=2))
    xp = torch.randn(2, 9, 9, 3, dtype=torch.float64)
    expected = ring_responses(xp, plan, (1, 1), (1, 1))
    with disc_kernel._LAUNCH:  # another thread is inside the kernel
        resp = torch.empty(2, 5, 5, 1, plan.num_segments, 3, dtype=torch.float64)
        assert disc_kernel.disc_sums(xp, plan, (1, 1), (1, 1), resp) is False
        torch.testing.assert_close(ring_responses(xp, plan, (1, 1), (1, 1)), expected)


def test_switch_rejects_non_bool():
    with pytest.raises(ValueError, match="enabled must be True or False"):
        disc_kernel.set_compiled_kernels(1)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- fused kernel
FUSED_CASES = [  # spatial dims, kernel, stride, dilation, groups, basis, size, padding (before, after) per dim
    (1, 9, (1,), (1,), 1, "hard", (13,), ((4, 4),)),
    (1, 5, (3,), (2,), 2, "gaussian", (17,), ((1, 3),)),
    (2, 3, (1, 1), (1, 1), 1, "hard", (6, 7), ((1, 1), (1, 1))),
    (2, 9, (1, 1), (1, 1), 1, "hard", (13, 11), ((4, 4), (4, 4))),
    (2, 5, (2, 2), (1, 1), 2, "gaussian", (12, 9), ((2, 2), (0, 0))),
    (2, 7, (1, 2), (2, 1), 4, "hard", (19, 10), ((6, 6), (2, 3))),
    (2, 5, (1, 1), (1, 1), 1, "hard", (9, 8), ((0, 1), (3, 0))),
    (3, 5, (1, 1, 1), (1, 1, 1), 1, "hard", (9, 8, 7), ((2, 2), (2, 2), (2, 2))),
    (3, 7, (2, 1, 2), (1, 2, 1), 2, "hard", (14, 17, 15), ((3, 3), (0, 0), (2, 1))),
]


def _fused_setup(dims, k, stride, dilation, groups, kind, size, pads, c_in=8, c_out=12):
    from sreconv.nn.ring_conv import disc_weights, mixing_weight, output_size

    basis = make_ring_basis(kind, k, ndim=dims).double()
    plan = build_ring_plan(basis)
    x = torch.randn((3, c_in, *size), dtype=torch.float64)
    weight = torch.randn(c_out, c_in // groups, basis.shape[0], dtype=torch.float64)
    mixing = mixing_weight(disc_weights(weight, plan), groups)
    out = output_size([s + b + a for s, (b, a) in zip(size, pads)], plan.kernel_size, stride, dilation)
    return basis, plan, x, weight, mixing, out


@pytest.mark.parametrize("dims,k,stride,dilation,groups,kind,size,pads", FUSED_CASES)
def test_fused_forward_equals_the_dense_convolution(dims, k, stride, dilation, groups, kind, size, pads):
    import torch.nn.functional as F

    from sreconv.nn.functional import sre_conv

    basis, plan, x, weight, mixing, out = _fused_setup(dims, k, stride, dilation, groups, kind, size, pads)
    bias = torch.randn(weight.shape[0], dtype=torch.float64)
    flat_pads = [v for b, a in reversed(pads) for v in (b, a)]
    expected = sre_conv(F.pad(x, flat_pads), weight, basis, bias, stride, 0, dilation, groups)
    y = disc_kernel.fused_forward(x, mixing, bias, plan, stride, dilation, [b for b, _ in pads], out, groups)
    assert y.shape == expected.shape and y.is_contiguous()
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dims,k,stride,dilation,groups,kind,size,pads",
                         [c for c in FUSED_CASES if all(s == 1 for s in c[2])])
@pytest.mark.parametrize("need_x,need_w", [(True, True), (True, False), (False, True)])
def test_fused_backward_equals_autograd(dims, k, stride, dilation, groups, kind, size, pads, need_x, need_w):
    from sreconv.nn.ring_conv import _differentiable_conv, _Geometry

    _, plan, x, _, mixing, _ = _fused_setup(dims, k, stride, dilation, groups, kind, size, pads)
    x.requires_grad_(need_x)
    mixing.requires_grad_(need_w)
    y = _differentiable_conv(x, mixing, None, plan, _Geometry(stride, dilation, pads, groups))
    grad_out = torch.randn_like(y)
    wanted = [t for t, need in ((x, need_x), (mixing, need_w)) if need]
    expected = iter(torch.autograd.grad(y, wanted, grad_out))
    back = [d * (kk - 1) - b for d, kk, (b, _) in zip(dilation, plan.kernel_size, pads)]
    grad_x, grad_w = disc_kernel.fused_backward(x, grad_out, mixing, plan, dilation, back, groups, need_x, need_w)
    for need, got in ((need_x, grad_x), (need_w, grad_w)):
        if need:
            torch.testing.assert_close(got, next(expected), rtol=1e-11, atol=1e-11)
        else:
            assert got is None


def test_fused_layer_training_is_deterministic_and_reuses_its_buffers():
    torch.manual_seed(0)
    conv = SREConv2d(6, 6, 7, padding=3, impl="fused")
    x = torch.randn(4, 6, 20, 20, requires_grad=True)
    runs = []
    for _ in range(2):
        y = conv(x)
        runs.append((y.detach(), *torch.autograd.grad(y.square().sum(), [x, conv.weight])))
        scratch = disc_kernel._SCRATCH[np.dtype(np.float32)]
    assert scratch is disc_kernel._SCRATCH[np.dtype(np.float32)]
    for first, second in zip(*runs):
        assert torch.equal(first, second)


def test_busy_fused_kernel_falls_back_to_the_ring_path(kernels):
    torch.manual_seed(0)
    dense = SREConv2d(4, 6, 5, padding=2, impl="dense").double()
    fused = SREConv2d(4, 6, 5, padding=2, impl="fused").double()
    fused.load_state_dict(dense.state_dict())
    x = torch.randn(2, 4, 9, 10, dtype=torch.float64, requires_grad=True)
    with disc_kernel._LAUNCH:  # another thread is inside a kernel
        plan = fused._ring_plan
        assert disc_kernel.fused_forward(x, torch.zeros(6, 4 * plan.num_segments, dtype=torch.float64), None,
                                         plan, (1, 1), (1, 1), (2, 2), (9, 10), 1) is None
        y = fused(x)
        grads = torch.autograd.grad(y.sum(), [x, fused.weight])
    y_dense = dense(x)
    torch.testing.assert_close(y, y_dense, rtol=1e-10, atol=1e-10)
    for got, want in zip(grads, torch.autograd.grad(y_dense.sum(), [x, dense.weight])):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_without_compiled_kernels_fused_runs_the_ring_path_and_is_not_a_candidate(kernels):
    from sreconv.nn.ring_conv import modelled_costs

    torch.manual_seed(0)
    fused = SREConv2d(4, 6, 5, padding=2, impl="fused").double()
    ring = SREConv2d(4, 6, 5, padding=2, impl="ring").double()
    ring.load_state_dict(fused.state_dict())
    x = torch.randn(2, 4, 9, 10, dtype=torch.float64)
    plan = fused._ring_plan
    assert "fused" in modelled_costs(4, 6, 1, plan, (1, 1), False, 180, 300)
    assert "fused" not in modelled_costs(4, 6, 1, plan, (1, 1), False, 180, 300, device_type="cuda")
    kernels(False)
    assert "fused" not in modelled_costs(4, 6, 1, plan, (1, 1), False, 180, 300)
    assert not disc_kernel.applies(x)
    torch.testing.assert_close(fused(x), ring(x), rtol=1e-12, atol=1e-12)


def test_threading_layer_prefers_openmp_and_respects_the_user():
    import os
    import subprocess
    import sys

    code = ("import torch, numba, sreconv; l = sreconv.SREConv2d(2, 2, 5, padding=2, impl='fused'); "
            "l(torch.randn(1, 2, 8, 8)); print(numba.threading_layer())\n"
            "try:\n    import numba.np.ufunc.omppool\n    print('omp')\nexcept ImportError:\n    print('workqueue')")
    for env in ({"NUMBA_THREADING_LAYER": "workqueue"}, {}):
        environ = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"} | env
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=300)
        assert out.returncode == 0, out.stderr
        layer, loadable = out.stdout.split()
        assert layer == env.get("NUMBA_THREADING_LAYER", loadable)


@pytest.mark.parametrize("dims,k,stride,dilation,groups,kind,size,pads",
                         [c for c in FUSED_CASES if all(s == 1 for s in c[2])])
def test_stale_working_memory_never_reaches_the_results(dims, k, stride, dilation, groups, kind, size, pads):
    """The kernel's long loops run over padding columns too: they must read only what the call wrote (a buffer
    left full of nan, as an earlier call on inf inputs could leave it, changes nothing)."""
    from sreconv.nn.ring_conv import _differentiable_conv, _Geometry

    _, plan, x, _, mixing, out = _fused_setup(dims, k, stride, dilation, groups, kind, size, pads)
    mixing.requires_grad_(True)
    x.requires_grad_(True)
    y = _differentiable_conv(x, mixing, None, plan, _Geometry(stride, dilation, pads, groups))
    grad_out = torch.randn_like(y)
    expected = torch.autograd.grad(y, [x, mixing], grad_out)
    back = [d * (kk - 1) - b for d, kk, (b, _) in zip(dilation, plan.kernel_size, pads)]
    disc_kernel._SCRATCH.clear()
    import numba

    disc_kernel._SCRATCH[np.dtype(np.float64)] = np.full((numba.config.NUMBA_NUM_THREADS, 2**18), np.nan)
    forward = disc_kernel.fused_forward(x, mixing, None, plan, stride, dilation, [b for b, _ in pads], out, groups)
    backward = disc_kernel.fused_backward(x, grad_out, mixing, plan, dilation, back, groups, True, True)
    disc_kernel._SCRATCH.clear()
    torch.testing.assert_close(forward, y.detach(), rtol=1e-11, atol=1e-11)
    for got, want in zip(backward, expected):
        torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-11)
