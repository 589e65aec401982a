"""Peer models of the robustness benchmark: exactly invariant like the SRE models they are compared with."""

import pytest
import torch


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
