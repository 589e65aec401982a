"""The compiled disc-sum kernel computes what the eager ring path computes (needs numba)."""

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
