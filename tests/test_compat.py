"""The ``SRE_Conv`` compatibility module: official names, argument order and checkpoints."""

import warnings

import pytest
import torch
import torch.nn.functional as F

import SRE_Conv
from sreconv.nn import SREConv2d, SREConv3d
from tests.oracle import official_path, recorded_ring_masks, run_official


def test_seed_readme_example_with_its_two_typos_fixed(capsys):
    """The official README's example, verbatim except `SRE_conv` -> `sre_conv` and `sre_conv(x)` -> `(x_rot)`.

    Its final ``allclose`` uses the default ``atol=1e-8``, which float32 rounding of any convolution (the
    rotated input is summed in another order) exceeds near zero: it may print False. The layer is exact; the
    deviation is pure rounding, which we check at float32 scale.
    """
    import torch

    from SRE_Conv import SRE_Conv2d

    x = torch.randn(2, 3, 32, 32)
    # create a 2D SRE-Conv of size 3x3
    sre_conv = SRE_Conv2d(3, 16, 3)
    y = sre_conv(x)
    x_rot = torch.rot90(x, 1, (2, 3))
    y_rot = sre_conv(x_rot)
    # check equivariance under 90-degree rotation
    print(torch.allclose(torch.rot90(y, 1, (2, 3)), y_rot))
    assert capsys.readouterr().out.strip() in ("True", "False")
    assert (torch.rot90(y, 1, (2, 3)) - y_rot).abs().max() < 1e-5 * y.abs().max()


class TestOfficialSignature:
    def test_positional_order(self):
        layer = SRE_Conv.SRE_Conv2d(3, 8, 9, 1, 4, 1, False, 1, False, "zeros", 3, False)
        assert layer.padding == (4, 4) and layer.bias is None and layer.sre_k == 3
        assert layer.inference_accelerate is False

    def test_official_keywords(self):
        layer = SRE_Conv.SRE_Conv3d(2, 4, kernel_size=5, padding=2, sre_k=2, inference_accelerate=True)
        assert layer.weight.shape == (4, 2, 2)

    def test_transposed_flag_points_to_transposed_layer(self):
        with pytest.raises(ValueError, match="use SRE_ConvTranspose2d"):
            SRE_Conv.SRE_Conv2d(2, 2, 3, transposed=True)

    def test_layers_the_official_cannot_build_work(self):
        # official: SRE_Conv1d and SRE_ConvTranspose2d always raise; force_circular is never passed through
        assert SRE_Conv.SRE_Conv1d(2, 3, 5, padding=2)(torch.randn(1, 2, 9)).shape == (1, 3, 9)
        up = SRE_Conv.SRE_ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
        assert up(torch.randn(1, 4, 8, 8)).shape == (1, 2, 16, 16)
        assert SRE_Conv.SRE_Conv2d(1, 1, 5, force_circular=False).sre_k == 4

    def test_names_pickle(self, tmp_path):
        layer = SRE_Conv.SRE_Conv2d(1, 2, 3)
        torch.save(layer, tmp_path / "l.pt")
        assert type(torch.load(tmp_path / "l.pt", weights_only=False)).__name__ == "SRE_Conv2d"


class TestStateDict:
    def test_official_keys_and_round_trip_into_native_layer(self):
        layer = SRE_Conv.SRE_Conv2d(3, 4, 9, padding=4)
        state = layer.state_dict()
        assert list(state) == ["weight", "bias", "weight_index_mat"]
        assert state["weight_index_mat"].shape == (1, 1, 5, 81) and state["weight_index_mat"].dtype == torch.float32
        native = SREConv2d(3, 4, 9, padding=4)
        native.load_state_dict(state)  # strict: the mask key is consumed and checked
        x = torch.randn(1, 3, 12, 12)
        torch.testing.assert_close(native(x), layer(x))

    def test_official_format_checkpoint_built_by_the_rule(self):
        """Without the official package: a state_dict in its format (recorded masks) gives its forward."""
        masks = recorded_ring_masks()["2d_k9_R5_circ"].float()
        weight, bias = torch.randn(4, 3, 5, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
        state = {"weight": weight, "bias": bias, "weight_index_mat": masks[None, None]}
        layer = SRE_Conv.SRE_Conv2d(3, 4, 9, padding=4).double().eval()
        layer.load_state_dict(state)
        x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
        expected = F.conv2d(x, (weight @ masks.double()).reshape(4, 3, 9, 9), bias, padding=4)
        torch.testing.assert_close(layer(x), expected, atol=1e-12, rtol=0)

    def test_foreign_masks_are_adopted_with_a_warning(self):
        layer = SRE_Conv.SRE_Conv2d(1, 1, 3)
        state = layer.state_dict()
        state["weight_index_mat"] = torch.flip(state["weight_index_mat"], dims=[2])
        with pytest.warns(UserWarning, match="differs from this layer's 'hard' rings"):
            layer.load_state_dict(state)
        assert torch.equal(layer.official_masks(), state["weight_index_mat"])

    def test_wrong_mask_shape_is_an_error(self):
        state = SRE_Conv.SRE_Conv2d(1, 1, 5).state_dict()
        with pytest.raises(RuntimeError, match=r"weight_index_mat of shape \(1, 1, 3, 25\) does not fit"):
            SREConv2d(1, 1, 3, sre_k=2).load_state_dict(state)

    def test_no_stale_kernel_in_eval_mode(self):
        """Official defect: eval(), then load_state_dict, keeps the old kernel."""
        layer = SRE_Conv.SRE_Conv2d(2, 2, 3, padding=1).eval()
        x = torch.randn(1, 2, 6, 6)
        with torch.no_grad():
            before = layer(x)
            state = layer.state_dict()
            state["weight"] = state["weight"] * 2
            state["bias"] = state["bias"] * 2
            layer.load_state_dict(state)
            torch.testing.assert_close(layer(x), 2 * before)


@pytest.mark.skipif(official_path() is None, reason="official SRE-Conv not installed (see tests/oracle)")
@pytest.mark.slow
class TestAgainstOfficialPackage:
    @pytest.mark.parametrize("cls,kwargs,shape", [
        ("SRE_Conv2d", dict(in_channels=3, out_channels=4, kernel_size=9, padding=4), (2, 3, 16, 16)),
        ("SRE_Conv2d", dict(in_channels=4, out_channels=4, kernel_size=5, stride=2, groups=2, sre_k=2,
                            padding_mode="reflect", padding=2), (2, 4, 11, 11)),
        ("SRE_Conv3d", dict(in_channels=2, out_channels=3, kernel_size=5, padding=2), (1, 2, 7, 7, 7)),
    ])
    def test_layer_parity(self, cls, kwargs, shape):
        result = run_official({"kind": "layer", "cls": cls, "kwargs": kwargs, "input_shape": list(shape)})
        ours = getattr(SRE_Conv, cls)(**kwargs).double()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the official masks must equal ours exactly
            ours.load_state_dict(result["state_dict"])
        x = result["input"]
        torch.testing.assert_close(ours.train()(x), result["out_train"], atol=1e-10, rtol=0)
        torch.testing.assert_close(ours.eval()(x), result["out_eval"], atol=1e-10, rtol=0)
        torch.testing.assert_close(ours.kernel(), result["dense_kernel"], atol=1e-12, rtol=0)

    def test_noncircular_parity(self):
        kwargs = dict(in_channels=1, out_channels=2, kernel_size=7, padding=3)
        result = run_official({"kind": "layer", "cls": "SRE_Conv2d", "kwargs": kwargs, "force_circular": False,
                               "input_shape": [1, 1, 9, 9]})
        ours = SREConv2d(**kwargs, force_circular=False).double()
        ours.load_state_dict(result["state_dict"])
        torch.testing.assert_close(ours(result["input"]), result["out_train"], atol=1e-10, rtol=0)


def test_3d_native_layer_loads_official_format():
    layer = SRE_Conv.SRE_Conv3d(2, 2, 5)
    native = SREConv3d(2, 2, 5)
    native.load_state_dict(layer.state_dict())
    torch.testing.assert_close(native.weight, layer.weight)
