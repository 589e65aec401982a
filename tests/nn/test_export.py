import warnings

import pytest
import torch
import torch.nn as nn

from sreconv.nn import (
    SREConv1d,
    SREConv2d,
    SREConv3d,
    SREConvTranspose1d,
    SREConvTranspose2d,
    SREConvTranspose3d,
    export_to_conv,
)

LAYERS = [
    (SREConv1d(3, 4, 5, padding=2, dilation=2, groups=1, padding_mode="reflect"), (2, 3, 17)),
    (SREConv2d(4, 6, 5, stride=2, padding="valid", groups=2, ring_basis="gaussian"), (2, 4, 15, 15)),
    (SREConv2d(3, 4, 9, padding="same", force_circular=False), (1, 3, 16, 16)),
    (SREConv3d(2, 4, 3, padding=1, padding_mode="circular"), (1, 2, 6, 6, 6)),
    (SREConvTranspose1d(3, 2, 3, stride=2, output_padding=1), (2, 3, 9)),
    (SREConvTranspose2d(4, 2, 5, stride=2, padding=2, groups=2), (1, 4, 7, 7)),
    (SREConvTranspose3d(2, 2, 3, stride=1, padding=1, bias=False), (1, 2, 5, 5, 5)),
]


def _net():
    return nn.Sequential(
        SREConv2d(1, 8, 5, padding=2), nn.BatchNorm2d(8), nn.ReLU(),
        SREConv2d(8, 8, 3, padding=1, ring_basis="gaussian"), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    ).eval()


class TestToConv:
    @pytest.mark.parametrize("layer,shape", LAYERS, ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else "")
    def test_parity(self, layer, shape):
        layer = layer.double()
        plain = layer.to_conv()
        assert type(plain).__module__.startswith("torch.nn")
        assert plain.weight.dtype == torch.float64
        x = torch.randn(shape, dtype=torch.float64)
        torch.testing.assert_close(plain(x), layer(x), atol=1e-12, rtol=0)

    def test_export_model_in_place(self):
        net = _net()
        x = torch.randn(2, 1, 12, 12)
        before = net(x)
        out = export_to_conv(net)
        assert out is net
        assert not any("SRE" in type(m).__name__ for m in net.modules())
        torch.testing.assert_close(net(x), before, atol=1e-6, rtol=1e-6)

    def test_exported_layer_is_trainable_plain_conv(self):
        conv = SREConv2d(2, 2, 3).to_conv()
        assert conv.weight.requires_grad and isinstance(conv, nn.Conv2d)


class TestScriptAndOnnx:
    def test_torchscript(self, tmp_path):
        net = _net()
        x = torch.randn(2, 1, 12, 12)
        expected = net(x)
        scripted = torch.jit.script(export_to_conv(net))
        torch.jit.save(scripted, tmp_path / "net.pt")
        loaded = torch.jit.load(tmp_path / "net.pt")
        torch.testing.assert_close(loaded(x), expected, atol=1e-6, rtol=1e-6)

    @pytest.mark.slow
    def test_onnx(self, tmp_path):
        onnx = pytest.importorskip("onnx")
        ort = pytest.importorskip("onnxruntime")
        net = _net()
        x = torch.randn(2, 1, 12, 12)
        expected = net(x).detach().numpy()
        path = tmp_path / "net.onnx"
        torch.onnx.export(export_to_conv(net), (x,), str(path), input_names=["x"], output_names=["y"],
                          dynamo=True)
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
        assert abs(got - expected).max() < 1e-5


class TestBareLayers:
    @pytest.mark.parametrize("module", [SREConv2d(2, 3, 5), nn.Sequential(nn.ReLU(), SREConvTranspose2d(2, 2, 3))],
                             ids=["layer", "inside-a-model"])
    def test_script_says_to_export_first(self, module):
        with pytest.raises(RuntimeError, match=r"cannot be compiled by torch.jit.script; call "
                                               r"sreconv.export_to_conv\(model\) first") as info:
            torch.jit.script(module)
        assert "\n" not in str(info.value)

    @pytest.mark.parametrize("impl", ["dense", "ring", "depthwise"])
    def test_trace(self, impl):
        layer = SREConv2d(3, 4, 5, padding=2, impl=impl).eval()
        x = torch.randn(2, 3, 10, 10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes about Python values
            traced = torch.jit.trace(layer, x)
        torch.testing.assert_close(traced(x), layer(x), atol=1e-6, rtol=1e-6)
