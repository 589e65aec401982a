"""convert_to_sre by behaviour: ConvNd subclasses (own padding, weight standardisation), pad modules, ceil_mode and
'same' poolings, even kernels, transposed convolutions, anisotropic kernels and strides, bad arguments, pickling.

Every exactness claim is checked in float64 over the whole group on odd and even sizes, and output shapes are
compared with the original model's."""

import copy
import io
import math
import pickle
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sreconv.models import convert, convert_to_sre
from sreconv.nn import (
    CenteredSREConvTranspose2d,
    EvenSREConv2d,
    EvenSREConvTranspose2d,
    SREConv2d,
    SREConv3d,
    SREConvTranspose2d,
)
from sreconv.nn.pooling import SymmetricPool

from ._util import max_equivariance_error, max_invariance_error


def _convert(model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_to_sre(model, return_report=True, **kwargs)


def _exact(model, shape, group="d4", kind="equivariant"):
    model = model.double().eval()
    x = torch.randn(2, *shape, dtype=torch.float64)
    if kind == "invariant":
        return max_invariance_error(model, x, group)
    return max_equivariance_error(model, x, group)


def _shapes_match(original, converted, shape):
    x = torch.randn(1, *shape)
    with torch.no_grad():
        return original.eval()(x).shape == converted.float().eval()(x).shape


# ------------------------------------------------------------------ subclasses of nn.ConvNd
class SameConv2d(nn.Conv2d):
    """TensorFlow-'same' convolution: pads dynamically in forward (like timm's Conv2dSame)."""

    def forward(self, x):
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads = [total // 2, total - total // 2] + pads
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class StdConv2d(nn.Conv2d):
    """Weight standardisation inside forward (like timm's ScaledStdConv2d)."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.std((1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv3DSimple(nn.Conv3d):
    """A subclass with only its own __init__ (like torchvision's video blocks): converted like nn.Conv3d."""

    def __init__(self, cin, cout, stride=1):
        super().__init__(cin, cout, (3, 3, 3), stride=stride, padding=1, bias=False)


@pytest.mark.parametrize("size", [15, 16])
def test_same_padding_subclass_with_stride(size):
    original = nn.Sequential(SameConv2d(2, 4, 3, stride=2), nn.ReLU(), SameConv2d(4, 4, 5, stride=2))
    model, report = _convert(copy.deepcopy(original), input_shape=(2, size, size))
    assert report.ok and report.converted == ["0", "2"] and report.restrided == ["0", "2"]
    assert type(model[0]).__name__ == "CenteredStrideRingKernelSameConv2d"
    assert _shapes_match(original, model, (2, size, size))  # ceil(H / 2) kept
    assert _exact(model, (2, size, size)) < 1e-12


def test_weight_standardisation_subclass_keeps_its_forward():
    torch.manual_seed(1)
    original = nn.Sequential(StdConv2d(2, 4, 3, padding=1), nn.ReLU(), StdConv2d(4, 3, 3, stride=2, padding=1))
    model, report = _convert(copy.deepcopy(original), input_shape=(2, 9, 9))
    assert report.ok and len(report.converted) == 2
    assert set(model[0].state_dict()) == {"ring_weight", "bias"}  # ring weights; the kernel is computed
    assert model[0].weight.shape == (4, 2, 3, 3)  # what its own forward standardises
    assert _exact(model, (2, 10, 10)) < 1e-12 and _exact(model, (2, 9, 9)) < 1e-12
    loss = model.float()(torch.randn(1, 2, 9, 9)).sum()
    loss.backward()
    assert model[0].ring_weight.grad is not None and model[0].ring_weight.grad.abs().sum() > 0


def test_subclass_without_own_forward_becomes_sre():
    net = nn.Sequential(Conv3DSimple(1, 4, stride=2), nn.ReLU(), Conv3DSimple(4, 4), nn.AdaptiveAvgPool3d(1),
                        nn.Flatten())
    model, report = _convert(net, input_shape=(1, 7, 7, 7))
    assert isinstance(model[0], SREConv3d) and isinstance(model[2], SREConv3d) and report.ok
    assert report.group == "cube"


class BrokenCustom(nn.Conv2d):
    """Own forward that shifts the output: no symmetric form exists; the converter must say so and keep it."""

    def forward(self, x):
        return super().forward(x).roll(1, -1)


def test_custom_forward_that_stays_broken_is_reported_and_kept():
    original = BrokenCustom(1, 2, 3, padding=1)
    net = nn.Sequential(original)
    model, report = _convert(net)
    reasons = dict(report.unconverted)
    assert "has its own forward" in reasons["0"] and "not equivariant after conversion" in reasons["0"]
    assert type(model[0]) is BrokenCustom and "weight" in dict(model[0].named_parameters())
    assert report.converted == [] and not report.ok


# ------------------------------------------------------------------ pad modules, poolings
@pytest.mark.parametrize("size", [16, 17])
def test_asymmetric_pad_module_in_front_of_a_strided_conv(size):
    # MONAI EfficientNetBN's TF-'same' stem: ConstantPad2d((0, 1, 0, 1)) then a 3x3 stride-2 convolution
    original = nn.Sequential(nn.ConstantPad2d((0, 1, 0, 1), 0.0), nn.Conv2d(2, 4, 3, stride=2), nn.ReLU(),
                             nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(4, 4, 5, stride=2))
    model, report = _convert(copy.deepcopy(original), input_shape=(2, size, size))
    assert report.pads == ["0", "3"] and model[0].padding == (1, 1, 1, 1) and model[3].padding == (2, 2, 2, 2)
    assert report.ok
    if size % 2 == 0:  # the padder was computed for even sizes: its output count is kept
        assert _shapes_match(original, model, (2, size, size))
    assert _exact(model, (2, size, size)) < 1e-12


@pytest.mark.parametrize("size", [63, 64, 65])
@pytest.mark.parametrize("pool, torch_broken_at", [(nn.MaxPool2d(3, 2, ceil_mode=True), [64]),
                                                   (nn.AvgPool2d(3, 2, 1, ceil_mode=True), [64]),
                                                   (nn.MaxPool2d(2, ceil_mode=True), [63, 65])])
def test_ceil_mode_pools_exact_at_every_size(size, pool, torch_broken_at):
    net = nn.Sequential(pool)
    model, report = _convert(copy.deepcopy(net))
    assert report.pools == ["0"] and isinstance(model[0], SymmetricPool) and model[0].output == "torch_ceil"
    assert _shapes_match(net, model, (1, size, size))
    assert _exact(model, (1, size, size)) < 1e-13
    assert (_exact(net, (1, size, size)) > 1e-3) == (size in torch_broken_at)  # torch's windows: only sometimes


class MaxPoolSame(nn.MaxPool2d):
    """TF-'same' max pooling with its own forward (like timm's MaxPool2dSame)."""

    def forward(self, x):
        pads = []
        for size in x.shape[-2:]:
            total = max((math.ceil(size / self.stride) - 1) * self.stride + self.kernel_size - size, 0)
            pads = [total // 2, total - total // 2] + pads
        return F.max_pool2d(F.pad(x, pads, value=-math.inf), self.kernel_size, self.stride)


@pytest.mark.parametrize("size", [10, 11])
def test_pool_subclass_rule_read_off_probes(size):
    net = nn.Sequential(MaxPoolSame(3, 2))
    model, report = _convert(copy.deepcopy(net))
    assert report.pools == ["0"] and model[0].output == "ceil"
    assert _shapes_match(net, model, (1, size, size)) and _exact(model, (1, size, size)) < 1e-13


def test_pool_without_exact_form_is_reported():
    net = nn.Sequential(nn.MaxPool2d(3, 2, dilation=2), nn.LPPool2d(2, 2))
    model, report = _convert(net)
    reasons = dict(report.unconverted)
    assert "dilated" in reasons["0"] and "LPPool2d" in reasons["1"]


# ------------------------------------------------------------------ even kernels, transposed convolutions
@pytest.mark.parametrize("size", [32, 30, 31])
def test_patchify_and_even_downsampler(size):
    # ConvNeXt: 4x4 stride-4 stem, 2x2 stride-2 downsampler
    original = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), nn.GELU(), nn.Conv2d(8, 8, 2, stride=2),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model, report = _convert(copy.deepcopy(original), input_shape=(3, size, size))
    assert report.ok and report.converted == ["0", "2"]
    assert isinstance(model[0], EvenSREConv2d) and model[0].sre_k == 2
    assert _shapes_match(original, model, (3, size, size))
    assert _exact(model, (3, size, size), kind="invariant") < 1e-12


def test_even_kernel_same_padding_is_reported():
    model, report = _convert(nn.Sequential(nn.Conv2d(1, 2, 4, padding="same")))
    assert "pads one side more" in dict(report.unconverted)["0"] and type(model[0]) is nn.Conv2d


@pytest.mark.parametrize("size", [8, 9])
@pytest.mark.parametrize("make, cls", [
    (lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1), CenteredSREConvTranspose2d),
    (lambda: nn.ConvTranspose2d(4, 2, 2, stride=2), EvenSREConvTranspose2d),
    (lambda: nn.ConvTranspose2d(4, 2, 3, stride=3, output_padding=2), CenteredSREConvTranspose2d),
])
def test_transposed_convolutions(size, make, cls):
    original = nn.Sequential(make())
    model, report = _convert(copy.deepcopy(original), input_shape=(4, size, size))
    assert report.ok and isinstance(model[0], cls) and report.converted == ["0"]
    assert _shapes_match(original, model, (4, size, size))
    assert _exact(model, (4, size, size)) < 1e-12
    assert _exact(original, (4, size, size)) > 1e-3


def test_tiny_unet_segmentation_output_rotates_with_input():
    class TinyUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU())
            self.up = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
            self.head = nn.Conv2d(5, 2, 1)

        def forward(self, x):
            return self.head(torch.cat([x, self.up(self.down(x))], 1))

    model, report = _convert(TinyUNet(), input_shape=(1, 12, 12))
    assert report.ok and report.check.output_kind == "equivariant"
    assert _exact(model, (1, 12, 12)) < 1e-12


# ------------------------------------------------------------------ anisotropic kernels and strides
def test_anisotropic_kernels_isotropic_or_kept():
    original = nn.Sequential(nn.Conv2d(2, 4, (1, 7), padding=(0, 3)), nn.ReLU(),
                             nn.Conv2d(4, 4, (7, 1), padding=(3, 0)))
    model, report = _convert(copy.deepcopy(original), input_shape=(2, 11, 11))
    assert model[0].kernel_size == (7, 7) and model[0].padding == (3, 3) and report.group == "d4" and report.ok
    assert _shapes_match(original, model, (2, 11, 11))
    kept, report = _convert(copy.deepcopy(original), anisotropic="keep", input_shape=(2, 11, 11))
    assert kept[0].kernel_size == (1, 7) and report.group == "d2" and report.ok
    assert [name for name, _ in report.restricted] == ["0"]  # (7, 1) keeps the same (flip) subgroup
    assert _exact(kept, (2, 11, 11), "d2") < 1e-12 and _exact(kept, (2, 11, 11), "d4") > 1e-3


def test_video_model_plane_group():
    # torchvision's r3d stem: (3, 7, 7) kernel, stride (1, 2, 2); then (1, 3, 3) / (3, 1, 1) as in R(2+1)D
    net = nn.Sequential(nn.Conv3d(1, 4, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3)), nn.ReLU(),
                        nn.Conv3d(4, 4, (1, 3, 3), padding=(0, 1, 1)), nn.Conv3d(4, 4, (3, 1, 1), padding=(1, 0, 0)),
                        nn.AdaptiveAvgPool3d(1), nn.Flatten())
    model, report = _convert(copy.deepcopy(net), anisotropic="keep", input_shape=(1, 4, 9, 9))
    assert report.group == "plane" and report.ok and report.check.group == "plane"
    assert _exact(model, (1, 4, 9, 9), "plane", kind="invariant") < 1e-12
    iso, report = _convert(copy.deepcopy(net), input_shape=(1, 4, 9, 9))
    assert iso[0].kernel_size == (7, 7, 7) and report.group == "plane"  # the stride alone restricts it
    assert any("stride (1, 2, 2)" in reason for _, reason in report.restricted)


def test_convs_of_another_dimensionality_are_kept_and_named():
    class ECA(nn.Module):  # timm's efficient channel attention: a Conv1d over channels
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.attn = nn.Conv1d(1, 1, 3, padding=1, bias=False)

        def forward(self, x):
            y = self.conv(x)
            w = self.attn(y.mean((2, 3)).unsqueeze(1)).squeeze(1).sigmoid()
            return (y * w[:, :, None, None]).mean((2, 3))

    model, report = _convert(ECA(), input_shape=(1, 9, 9))
    assert type(model.attn) is nn.Conv1d and "non-spatial" in dict(report.kept)["attn"] and report.ok


def test_position_tables_are_reported():
    class TinyViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(1, 8, 4, stride=4)
            self.pos_embed = nn.Parameter(torch.randn(1, 4, 8))
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            tokens = self.patch(x).flatten(2).transpose(1, 2) + self.pos_embed
            return self.head(torch.tanh(tokens).mean(1))

    model, report = _convert(TinyViT(), input_shape=(1, 8, 8))
    assert "pos_embed" in dict(report.unconverted)["<model>"] and not report.ok
    assert not report.check.passed and report.check.first_broken == "head"


# ------------------------------------------------------------------ the strided fast path, pickling
@pytest.mark.parametrize("size", [9, 10])
@pytest.mark.parametrize("kernel, stride", [(3, 2), (7, 2), (1, 2), (4, 4), (3, 3)])
def test_direct_strided_path_equals_subsampled_stride_one(size, kernel, stride):
    conv = nn.Conv2d(2, 3, kernel, stride=stride, padding=kernel // 2 if kernel % 2 else 0).double()
    model, _ = _convert(nn.Sequential(conv))
    layer = model[0]
    x = torch.randn(1, 2, size, size, dtype=torch.float64)
    slow = layer._subsample(type(layer)._sre_base.forward(layer, x))  # stride 1, then the centred grid
    assert layer._direct and torch.allclose(layer(x), slow, atol=1e-12)


def test_dynamic_classes_pickle_into_a_fresh_registry():
    net = nn.Sequential(SameConv2d(2, 4, 3, stride=2), StdConv2d(4, 4, 3, padding=1))
    model, _ = _convert(net)
    x = torch.randn(1, 2, 9, 9)
    expected = model(x)
    blob = pickle.dumps(model)
    saved = dict(convert._DYNAMIC)
    convert._DYNAMIC.clear()  # as in a new process: the classes are rebuilt from their recipe
    try:
        restored = pickle.loads(blob)
    finally:
        convert._DYNAMIC.update(saved)
    assert torch.equal(restored(x), expected) and type(restored[0]).__name__ == type(model[0]).__name__
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    assert torch.equal(torch.load(buffer, weights_only=False)(x), expected)
    assert torch.equal(copy.deepcopy(model)(x), expected)


# ------------------------------------------------------------------ arguments
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(model="resnet"), TypeError, "model must be a torch.nn.Module, got str"),
    (dict(sre_conv_size=4), ValueError, "sre_conv_size must be None or an odd int >= 1"),
    (dict(sre_conv_size=0), ValueError, "sre_conv_size"),
    (dict(sre_k=0), ValueError, "sre_k must be None or an int >= 1"),
    (dict(ring_basis="soft"), ValueError, "ring_basis must be one of 'hard', 'gaussian'"),
    (dict(init="zeros"), ValueError, "init must be 'project' or 'reset'"),
    (dict(anisotropic="drop"), ValueError, "anisotropic must be one of 'isotropic', 'keep'"),
    (dict(group="cube"), ValueError, "group='cube' acts on 3 spatial dims but the model's first"),
    (dict(group="c4"), ValueError, "group must be None or one of"),
    (dict(input_shape=(3,)), ValueError, "input_shape must be"),
    (dict(input_shape=(3, 0, 8)), ValueError, "input_shape must be"),
    (dict(input_shape=(1, 3, 8, 8, 8)), ValueError, "input_shape must be \\(C, 2 sizes\\)"),
    (dict(force_circular="yes"), TypeError, "force_circular must be a bool"),
])
def test_bad_arguments_one_line_before_any_change(kwargs, error, match):
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1))
    model = kwargs.pop("model", net)
    with pytest.raises(error, match=match) as exc:
        convert_to_sre(model, **kwargs)
    assert "\n" not in str(exc.value)
    assert type(net[0]) is nn.Conv2d  # nothing was converted


def test_sre_layers_already_in_the_model():
    net = nn.Sequential(SREConv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
                        SREConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1))
    model, report = _convert(net, input_shape=(1, 10, 10))
    assert report.restrided == ["0"] and isinstance(model[2], CenteredSREConvTranspose2d) and report.ok
    assert _exact(model, (1, 10, 10)) < 1e-12
    again, report = _convert(model)  # converting twice changes nothing
    assert report.converted == [] and report.restrided == []


def test_export_to_plain_torch_keeps_the_outputs():
    from sreconv.nn import export_to_conv

    class TinyUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(1, 4, 3, stride=2, padding=1)
            self.up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)

        def forward(self, x):
            return self.up(torch.relu(self.down(x)))

    model, _ = _convert(TinyUNet())
    model = model.double().eval()
    x = torch.randn(1, 1, 10, 10, dtype=torch.float64)
    expected = model(x)
    export_to_conv(model)
    assert not any(isinstance(m, convert._SREConvNd) for m in model.modules())
    assert torch.allclose(model(x), expected, atol=1e-12)
    assert _exact(model, (1, 10, 10)) < 1e-12


def test_pads_that_differ_between_axes_restrict_the_group():
    net = nn.Sequential(nn.ZeroPad2d((1, 1, 2, 2)), nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3))
    model, report = _convert(net, input_shape=(1, 9, 9))
    assert report.pads == [] and report.group == "d2" and report.restricted[0][0] == "0"
    assert report.check.group == "d2" and report.ok
    assert _exact(model, (1, 9, 9), "d2") < 1e-12
