"""Every registered model exports: ``export_to_conv`` then TorchScript and ONNX give the same logits, and the
model builds on the meta device (then ``to_empty`` + re-initialisation gives a working model)."""

import warnings

import pytest
import torch

import sreconv
from sreconv import export_to_conv
from sreconv.models import model_info
from tests.tiers import representatives

_KW = dict(num_classes=3, inplanes=8, in_channels=1)


def _model(name):
    return sreconv.create_model(name, **_KW).eval()


def _input(name, size=12):
    return torch.randn(2, 1, *(size,) * model_info(name).spatial_dims)


@pytest.mark.parametrize("name", representatives(sreconv.list_models(), ["sre_d4_resnet18"]))
def test_torchscript_of_the_exported_model(name, tmp_path):
    model = _model(name)
    x = _input(name)
    with torch.no_grad():
        expected = model(x)
        export_to_conv(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated but still shipped
            scripted = torch.jit.script(model)
            scripted.save(str(tmp_path / "model.pt"))
            loaded = torch.jit.load(str(tmp_path / "model.pt"))
        torch.testing.assert_close(scripted(x), expected, atol=1e-5, rtol=1e-5)
        x13 = _input(name, 13)
        torch.testing.assert_close(loaded(x13), model(x13), atol=1e-5, rtol=1e-5)  # another (odd) size


@pytest.mark.slow
@pytest.mark.parametrize("name", sreconv.list_models(spatial_dims=2))
def test_onnx_of_the_exported_model(name, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    model = _model(name)
    export_to_conv(model)
    x = _input(name, 16)
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", representatives(sreconv.list_models(), ["sre_d4_resnet18"]))
def test_meta_device_then_materialise(name):
    with torch.device("meta"):
        meta = sreconv.create_model(name, **_KW)
    assert all(p.is_meta for p in meta.parameters())
    reference = _model(name)
    model = meta.to_empty(device="cpu")
    model.load_state_dict(reference.state_dict())  # the usual way to materialise: weights from a checkpoint
    model.eval()
    x = _input(name)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
