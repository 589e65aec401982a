"""Peer models of the robustness benchmark: exactly invariant like the SRE models they are compared with."""

import importlib.util

import pytest
import torch

HAS_GMR = importlib.util.find_spec("GMR_Conv") is not None


def test_e2cnn_peer():
    pytest.importorskip("e2cnn")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sreconv_bench.peers.e2cnn import e2cnn_d4_resnet18

        model = e2cnn_d4_resnet18(num_classes=3, in_channels=1, inplanes=8).eval()
        x = torch.randn(2, 1, 11, 11)
        y = model(x)
        assert y.shape == (2, 3)
        for g in (lambda t: t.rot90(1, (2, 3)), lambda t: t.flip(-1), lambda t: t.transpose(-1, -2)):
            assert torch.allclose(model(g(x)), y, atol=1e-5 * y.abs().max().item())
        assert type(model.align).__name__ == "Identity"


@pytest.mark.slow
def test_e2cnn_peer_behind_the_alignment_is_still_exactly_invariant():
    pytest.importorskip("e2cnn")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sreconv_bench.peers.e2cnn import e2cnn_d4_resnet18

        # the same principal-axis alignment as sre_d4_aligned_resnet18
        aligned = e2cnn_d4_resnet18(num_classes=3, in_channels=1, inplanes=8, align_input=True).eval()
        assert type(aligned.align).__name__ == "PrincipalAxisAlign2d"
        x = torch.randn(2, 1, 11, 11)
        y = aligned(x)
        for g in (lambda t: t.rot90(1, (2, 3)), lambda t: t.flip(-1), lambda t: t.transpose(-1, -2)):
            assert torch.allclose(aligned(g(x)), y, atol=1e-5 * y.abs().max().item())


@pytest.mark.skipif(not HAS_GMR, reason="needs gmr-conv (pip install --no-deps gmr-conv==1.0.3)")
def test_gmr_peer_builds_with_the_compare_kernels_and_is_not_exact_on_odd_sizes():
    from sreconv_bench.peers.gmr import gmr_resnet18

    model = gmr_resnet18(num_classes=3, in_channels=1, inplanes=4, sre_conv_size=[5, 3, 3, 3]).eval().double()
    assert model.conv1.in_channels == 1 and model.fc.out_features == 3
    assert model.layer1[0].conv1.kernel_size == (5, 5) and model.layer2[0].conv2.kernel_size == (3, 3)
    convs = [m for m in model.modules() if type(m).__name__ == "GMR_Conv2d"]
    assert len(convs) == 17 and not any(m.dw_fwd for m in convs)  # GMR's dense forward path
    x = torch.randn(2, 1, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        dense = model(x)
        for m in convs:
            m.dw_fwd = True
        assert torch.allclose(model(x), dense, atol=1e-10)  # the same function as GMR's depthwise forward
        for m in convs:
            m.dw_fwd = False
    with torch.no_grad():
        even = torch.randn(2, 1, 16, 16, dtype=torch.float64)  # 16 -> 8 -> 4 -> 2: AvgPool2d(2) is exact
        y = model(even)
        assert torch.allclose(model(even.rot90(1, (2, 3))), y, atol=1e-9 * y.abs().max().item())
        odd = torch.randn(2, 1, 28, 28, dtype=torch.float64)  # 7 -> 3 drops a row and a column
        y = model(odd)
        assert (model(odd.rot90(1, (2, 3))) - y).abs().max() > 1e-6 * y.abs().max()
