
import pytest
import torch
import torch.nn as nn

from sreconv.equivariance import check_equivariance
from sreconv.models import create_model, sre_resnet18
from sreconv.nn import SREConv2d, SREConv3d


@pytest.mark.slow
def test_sre_model_passes():
    report = check_equivariance(sre_resnet18(num_classes=3, inplanes=4), (3, 33, 33))
    assert report.passed and report.first_broken is None
    assert report.group == "d4" and len(report.per_element) == 8 and report.output_kind == "invariant"
    assert report.output_error < 1e-12
    assert report.layers[-1].name == "" and report.layers[0].name == "conv1"


def test_finds_the_offending_layer_in_a_broken_model():
    model = sre_resnet18(num_classes=3, inplanes=4, skip_first_maxpool=True)
    model.layer3[1].conv1 = nn.Conv2d(16, 16, 3, padding=1, bias=False)  # deliberately not symmetric
    report = check_equivariance(model, (3, 16, 16))
    assert not report.passed
    assert report.first_broken == "layer3.1.conv1"
    assert all(layer.error < 1e-12 for layer in report.layers[: [layer.name for layer in report.layers].index(
        "layer3.1.conv1")])
    assert "layer3.1.conv1" in report.summary()


@pytest.mark.slow
def test_official_downsample_breaks_at_the_odd_pooling():
    model = sre_resnet18(num_classes=3, inplanes=4, skip_first_maxpool=True, downsample="official")
    report = check_equivariance(model, (3, 28, 28))  # 28 -> 14 -> 7 -> AvgPool2d(2) drops a row
    assert report.first_broken == "layer4.0.downsample.0"
    assert check_equivariance(model, (3, 32, 32)).passed  # even sizes all the way down: exact


def test_equivariant_output_and_1d_and_3d():
    conv = nn.Sequential(SREConv2d(2, 3, 5, padding=2), nn.ReLU())
    report = check_equivariance(conv, (2, 9, 9))
    assert report.passed and report.output_kind == "equivariant"
    from sreconv.nn import SREConv1d
    assert check_equivariance(SREConv1d(1, 2, 3, padding=1), (1, 10)).group == "flip"
    report3 = check_equivariance(SREConv3d(1, 2, 3, padding=1), (1, 5, 5, 5))
    assert report3.group == "cube" and len(report3.per_element) == 48 and report3.passed
    # a plain conv is caught
    assert not check_equivariance(nn.Conv2d(1, 1, 3), (1, 7, 7)).passed


def test_flatten_linear_is_named():
    net = nn.Sequential(SREConv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 7 * 7, 3))
    report = check_equivariance(net, (1, 7, 7))
    # flattening only reorders the values; the Linear on them is the culprit
    assert report.first_broken == "2" and not report.passed
    assert [layer.kind for layer in report.layers[:3]] == ["equivariant", "permuted", "invariant"]


@pytest.mark.slow
def test_train_mode_and_float32_and_model_untouched():
    model = create_model("sre_resnet18", num_classes=3, inplanes=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert check_equivariance(model, (2, 3, 17, 17), train=True).passed
    report = check_equivariance(model, (3, 17, 17), dtype=torch.float32)
    assert report.passed and report.tol == 1e-4
    assert model.training and next(model.parameters()).dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_shape_changing_crop_fails():
    class Crop(nn.Module):
        def forward(self, x):
            return x[..., 1:, :]

    report = check_equivariance(Crop(), (1, 6, 6), group="d4")
    assert not report.passed and report.first_broken == ""
    assert report.output_error > 1e-3


class _Counting(nn.Module):
    """A 2D model that records whether it ever ran."""

    def __init__(self):
        super().__init__()
        self.conv = SREConv2d(1, 2, 3, padding=1)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.conv(x)


@pytest.mark.parametrize("model, shape, group, match", [
    ("resnet", (1, 8, 8), None, "model must be a torch.nn.Module"),
    (None, (3,), None, "input_shape must be"),
    (None, (1, 0, 8), None, "must all be >= 1"),
    (None, (1, 8, 8), "cube", "acts on 3 spatial dims but the model is 2D"),
    (None, (1, 8, 8), "c4", "group must be one of"),
    (None, (1, 4, 4, 4, 4, 4), "d4", "1 to 3 spatial sizes"),
    (None, (1, 1, 4, 4, 4), "d4", "acts on 2 spatial dims"),
    (None, "1 8 8", None, "sequence of ints"),
])
def test_bad_inputs_are_one_line_value_errors_before_any_work(model, shape, group, match):
    net = _Counting() if model is None else model
    with pytest.raises(ValueError, match=match) as exc:
        check_equivariance(net, shape, group, copy_model=False)
    assert "\n" not in str(exc.value)
    if model is None:
        assert net.calls == 0


def test_bad_tol():
    with pytest.raises(ValueError, match="tol must be a positive number"):
        check_equivariance(_Counting(), (1, 5, 5), tol=0)


def test_insensitive_output_cannot_hide_a_broken_layer():
    # A logit dominated by its bias: the old magnitude-relative deviation of this model is ~1e-9 ("PASS"),
    # relative to the output's input-sensitivity it is of order one.
    head = nn.Linear(4, 2)
    with torch.no_grad():
        head.bias.fill_(1e8)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    report = check_equivariance(net, (1, 9, 9))
    assert not report.passed and report.first_broken == "0"
    assert report.output_error > 1e-3
    assert report.layers[-1].sensitivity < 1e-6  # the logits barely move with the image


class _HiddenBreak(nn.Module):
    """The output is exactly invariant, but a layer before it is not (its contribution is multiplied by 0)."""

    def __init__(self):
        super().__init__()
        self.sre = nn.Sequential(SREConv2d(1, 3, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.plain = nn.Conv2d(1, 3, 3, padding=1)

    def forward(self, x):
        return self.sre(x) + 0.0 * self.plain(x).mean((2, 3))


def test_cannot_pass_while_a_layer_is_broken():
    report = check_equivariance(_HiddenBreak(), (1, 9, 9))
    assert report.output_error < 1e-12  # the output alone would pass
    assert not report.passed and report.first_broken == "plain"
    assert "first layer breaking the symmetry: plain" in report.summary()


def _sre_classifier(head_zero):
    head = nn.Linear(4, 3)
    if head_zero:
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
    return nn.Sequential(SREConv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def test_constant_output_is_reported_not_passed():
    model = _sre_classifier(head_zero=True)
    report = check_equivariance(model, (1, 9, 9), reinit_zeros=False)
    assert report.constant_output and not report.passed
    assert "does not depend on the input" in report.summary()
    # by default the all-zero parameters of a copy are re-initialised and that copy is checked
    report = check_equivariance(model, (1, 9, 9))
    assert report.passed and report.reinitialized == ["4.weight", "4.bias"]
    assert "re-initialising" in report.summary()
    assert not model[4].weight.any()  # the model itself is untouched
    broken = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    nn.init.zeros_(broken[3].weight)
    report = check_equivariance(broken, (1, 9, 9))
    assert not report.passed and not report.constant_output and report.first_broken == "0"


def test_constant_output_without_zero_parameters():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = SREConv2d(1, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(x).mean((2, 3)) * 0 + 1

    report = check_equivariance(Constant(), (1, 7, 7))
    assert report.constant_output and not report.passed and report.reinitialized == []


class _Tokens(nn.Module):
    """Map -> tokens (N, HW, C) -> LayerNorm -> map, optionally with a position embedding on the tokens."""

    def __init__(self, size, position):
        super().__init__()
        self.conv = SREConv2d(1, 4, 3, padding=1)
        self.norm = nn.LayerNorm(4)
        self.pos = nn.Parameter(torch.randn(size * size, 4)) if position else None
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))

    def forward(self, x):
        y = self.conv(x)
        n, c, h, w = y.shape
        tokens = y.flatten(2).transpose(1, 2)
        if self.pos is not None:
            tokens = tokens + self.pos
        tokens = self.norm(tokens)
        return self.head(tokens.transpose(1, 2).reshape(n, c, h, w))


def test_token_tensors_are_compared_as_permutations():
    report = check_equivariance(_Tokens(7, position=False), (1, 7, 7))
    assert report.passed, report.summary()
    norm = next(rec for rec in report.layers if rec.name == "norm")
    assert norm.kind == "permuted" and not norm.broken
    report = check_equivariance(_Tokens(7, position=True), (1, 7, 7))
    assert not report.passed and report.first_broken == "norm"
    assert next(rec for rec in report.layers if rec.name == "norm").kind == "tokens"


def test_dense_output_must_be_equivariant():
    seg = nn.Sequential(SREConv2d(2, 3, 5, padding=2), nn.ReLU(), SREConv2d(3, 2, 3, padding=1))
    report = check_equivariance(seg, (2, 10, 10))
    assert report.passed and report.output_kind == "equivariant"
    # a map that is invariant instead of equivariant (the same map whatever the rotation) fails
    class Frozen(nn.Module):
        def __init__(self):
            super().__init__()
            self.seg = seg
            self.pattern = nn.Parameter(torch.randn(1, 2, 10, 10))

        def forward(self, x):
            return self.seg(x).mean((2, 3), keepdim=True) * self.pattern

    report = check_equivariance(Frozen(), (2, 10, 10))
    assert not report.passed and report.first_broken == ""


def test_plane_and_d2_groups():
    video = nn.Sequential(SREConv3d(1, 3, (1, 3, 3), padding=(0, 1, 1)), nn.ReLU(),
                          SREConv3d(3, 2, (3, 1, 1), padding=(1, 0, 0)))
    report = check_equivariance(video, (1, 3, 5, 5), "plane")
    assert report.passed and len(report.per_element) == 8
    assert not check_equivariance(video, (1, 5, 5, 5), "cube").passed
    flat = SREConv2d(1, 2, (1, 5), padding=(0, 2))
    assert check_equivariance(flat, (1, 8, 8), "d2").passed and len(check_equivariance(flat, (1, 8, 8), "d2")
                                                                        .per_element) == 4
    assert not check_equivariance(flat, (1, 8, 8), "d4").passed


def test_rounding_floor_is_not_a_break():
    # float32: deviations at rounding level of a layer's magnitude do not count, whatever its sensitivity
    model = nn.Sequential(SREConv2d(3, 8, 5, padding=2), nn.BatchNorm2d(8), nn.ReLU(), SREConv2d(8, 8, 3, stride=2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    report = check_equivariance(model, (3, 15, 15), dtype=torch.float32)
    assert report.passed and all(not rec.broken for rec in report.layers)


class _Amplifying(nn.Module):
    """Exact in exact arithmetic; in float64 the 1e12 slope turns the convolution's rounding (which depends on
    the order of its sums, so on the orientation) into deviations of ~1e-4, as deep random networks can."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        return torch.sin(1e12 * self.conv(x))


def test_rounding_amplified_by_the_network_is_not_a_break():
    torch.manual_seed(3)
    report = check_equivariance(_Amplifying(SREConv2d(1, 2, 3, padding=1)), (1, 9, 9))
    output = report.layers[-1]
    assert output.error > 1e-8  # far beyond tol relative to the sensitivity ...
    assert report.passed and output.rounding > 1e-8  # ... but within the network's own rounding response
    assert report.rounding_floor >= output.error
    broken = check_equivariance(_Amplifying(nn.Conv2d(1, 2, 3, padding=1)), (1, 9, 9))
    assert not broken.passed and broken.first_broken == "conv"
