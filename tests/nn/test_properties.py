"""Property tests: random valid argument sets behave exactly like torch's layers, and stay equivariant."""

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from sreconv.groups import grid_symmetries
from sreconv.nn import SREConv1d, SREConv2d, SREConv3d, SREConvTranspose1d, SREConvTranspose2d, SREConvTranspose3d

CONV = {1: (SREConv1d, nn.Conv1d), 2: (SREConv2d, nn.Conv2d), 3: (SREConv3d, nn.Conv3d)}
TRANSPOSE = {1: (SREConvTranspose1d, nn.ConvTranspose1d), 2: (SREConvTranspose2d, nn.ConvTranspose2d),
             3: (SREConvTranspose3d, nn.ConvTranspose3d)}
EXAMPLES = settings(max_examples=200, deadline=None)
QUICK = settings(max_examples=25, deadline=None)  # the fast tier; the slow tier runs EXAMPLES


def _copy_dense(ours, theirs):
    with torch.no_grad():
        theirs.weight.copy_(ours.kernel())
        if ours.bias is not None:
            theirs.bias.copy_(ours.bias)


@st.composite
def conv_args(draw):
    ndim = draw(st.sampled_from([1, 2, 3]))
    k = draw(st.sampled_from([1, 3, 5] if ndim == 3 else [1, 3, 5, 7]))
    groups = draw(st.sampled_from([1, 2]))
    in_ch = groups * draw(st.integers(1, 2))
    out_ch = groups * draw(st.integers(1, 2))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 3)))
    stride = 1 if padding == "same" else draw(st.integers(1, 3))
    padding_mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    if padding_mode != "zeros" and padding not in ("same", "valid") and padding > 2:
        padding = 2
    low = dilation * (k - 1) + 1
    if padding_mode != "zeros" and isinstance(padding, int):
        low = max(low, padding + 1)  # torch's own limit for reflect/circular padding
    size = draw(st.integers(low, low + (6 if ndim < 3 else 3)))
    return dict(
        ndim=ndim, size=size, ring_basis=draw(st.sampled_from(["hard", "gaussian"])),
        kwargs=dict(in_channels=in_ch, out_channels=out_ch, kernel_size=k, stride=stride, padding=padding,
                    dilation=dilation, groups=groups, bias=draw(st.booleans()), padding_mode=padding_mode),
    )


@pytest.mark.slow
@EXAMPLES
@given(conv_args())
def test_conv_matches_torch_layer(args):
    check_conv_matches_torch_layer(args)


@QUICK
@given(conv_args())
def test_conv_matches_torch_layer_quick(args):
    check_conv_matches_torch_layer(args)


def check_conv_matches_torch_layer(args):
    ours_cls, torch_cls = CONV[args["ndim"]]
    ours = ours_cls(**args["kwargs"], ring_basis=args["ring_basis"], dtype=torch.float64)
    theirs = torch_cls(**args["kwargs"], dtype=torch.float64)
    _copy_dense(ours, theirs)
    x = torch.randn((2, args["kwargs"]["in_channels"]) + (args["size"],) * args["ndim"], dtype=torch.float64)
    y = ours(x)
    assert y.shape == theirs(x).shape
    torch.testing.assert_close(y, theirs(x), atol=1e-10, rtol=0)


@st.composite
def transpose_args(draw):
    ndim = draw(st.sampled_from([1, 2, 3]))
    k = draw(st.sampled_from([1, 3, 5]))
    groups = draw(st.sampled_from([1, 2]))
    stride = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2))
    return dict(
        ndim=ndim, size=draw(st.integers(2, 6)),
        kwargs=dict(in_channels=groups * draw(st.integers(1, 2)), out_channels=groups * draw(st.integers(1, 2)),
                    kernel_size=k, stride=stride, padding=draw(st.integers(0, (k - 1) * dilation // 2)),
                    output_padding=draw(st.integers(0, max(stride, dilation) - 1)), groups=groups,
                    dilation=dilation, bias=draw(st.booleans())),
    )


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(conv_args(), st.sampled_from(["ring", "depthwise", "fused"]), st.booleans())
def test_ring_paths_match_the_dense_path(args, path, channels_last):
    """Every valid argument set: the ring paths give the dense path's output and gradients (float64)."""
    ours_cls, _ = CONV[args["ndim"]]
    dense = ours_cls(**args["kwargs"], ring_basis=args["ring_basis"], dtype=torch.float64, impl="dense")
    other = ours_cls(**args["kwargs"], ring_basis=args["ring_basis"], dtype=torch.float64, impl=path)
    other.load_state_dict(dense.state_dict())
    x = torch.randn((2, args["kwargs"]["in_channels"]) + (args["size"],) * args["ndim"], dtype=torch.float64)
    if channels_last and args["ndim"] > 1:
        x = x.contiguous(memory_format=torch.channels_last if args["ndim"] == 2 else torch.channels_last_3d)
    x.requires_grad_()
    y, y_dense = other(x), dense(x)
    torch.testing.assert_close(y, y_dense, atol=1e-10, rtol=0)
    g = torch.randn_like(y)
    for a, b in zip(torch.autograd.grad(y, (x, other.weight), g), torch.autograd.grad(y_dense, (x, dense.weight), g)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.slow
@EXAMPLES
@given(transpose_args())
def test_transpose_matches_torch_layer(args):
    ours_cls, torch_cls = TRANSPOSE[args["ndim"]]
    ours = ours_cls(**args["kwargs"], dtype=torch.float64)
    theirs = torch_cls(**args["kwargs"], dtype=torch.float64)
    _copy_dense(ours, theirs)
    x = torch.randn((1, args["kwargs"]["in_channels"]) + (args["size"],) * args["ndim"], dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-10, rtol=0)


_SAME_PADDING = dict(
    k=st.sampled_from([1, 3, 5, 7, 9]),
    size=st.integers(5, 14),
    dilation=st.integers(1, 2),
    groups=st.sampled_from([1, 2]),
    ring_basis=st.sampled_from(["hard", "gaussian"]),
    force_circular=st.booleans(),
    padding_mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
    data=st.data(),
)


@pytest.mark.slow
@EXAMPLES
@given(**_SAME_PADDING)
def test_same_padding_is_d4_equivariant(k, size, dilation, groups, ring_basis, force_circular, padding_mode, data):
    check_same_padding(k, size, dilation, groups, ring_basis, force_circular, padding_mode, data)


@QUICK
@given(**_SAME_PADDING)
def test_same_padding_is_d4_equivariant_quick(k, size, dilation, groups, ring_basis, force_circular, padding_mode,
                                              data):
    check_same_padding(k, size, dilation, groups, ring_basis, force_circular, padding_mode, data)


def check_same_padding(k, size, dilation, groups, ring_basis, force_circular, padding_mode, data):
    if padding_mode != "zeros":
        size = max(size, dilation * (k // 2) + 1)  # reflect/circular padding must be smaller than the size
    sre_k = data.draw(st.none() | st.integers(1, 3))
    layer = SREConv2d(2 * groups, 2, k, padding="same", dilation=dilation, groups=groups, ring_basis=ring_basis,
                      force_circular=force_circular, padding_mode=padding_mode,
                      sre_k=None if k == 1 else sre_k, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.normal_()
    x = torch.randn(1, 2 * groups, size, size, dtype=torch.float64)
    y = layer(x)
    for g in grid_symmetries(2):
        torch.testing.assert_close(layer(g.apply(x)), g.apply(y), atol=1e-10, rtol=0)
