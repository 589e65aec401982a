"""``benchmarks/invariance_diagnostics.py`` runs on a tiny budget and prints one well-formed table row per entry;
its feature-distance measure is zero for an SRE network at a quarter turn and not for a plain CNN."""

import importlib.util
import os

import pytest

from tests.data.fakes import write_fashion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script():
    spec = importlib.util.spec_from_file_location("invariance_diagnostics",
                                                  os.path.join(ROOT, "benchmarks", "invariance_diagnostics.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_run_prints_table(tmp_path, capsys):
    root = tmp_path / "fashion"
    write_fashion(str(root), n_train=64, n_test=24)
    _script().main(["--data-root", str(root), "--models", "sre_hard", "cnn", "--epochs", "1", "--width", "4",
                    "--sre-conv-size", "3", "3", "3", "3", "--limit-train", "32", "--limit-test", "24",
                    "--batch-size", "16", "--feature-images", "24"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| entry | init 45° | init 20° | train s | trained 45° |")
    assert len(lines) == 4 and all(line.count("|") == lines[0].count("|") for line in lines)
    assert lines[2].startswith("| sre_hard |") and lines[3].startswith("| cnn |")
    values = [float(v) for line in lines[2:] for v in line.strip("| \n").split("|")[1:]]
    assert all(v >= 0 for v in values)


@pytest.mark.slow
def test_invariance_error_is_zero_at_quarter_turns_for_sre_only():
    import torch

    from sreconv import create_model

    script = _script()
    images = torch.rand(6, 1, 12, 12)
    kwargs = dict(num_classes=3, in_channels=1, inplanes=4)
    sre = create_model("sre_resnet18", skip_first_maxpool=True, sre_conv_size=3, **kwargs).eval()
    cnn = create_model("plain_resnet18", **kwargs).eval()
    assert script.invariance_error(sre, images, 90, fill=0.0) < 1e-5
    assert script.invariance_error(cnn, images, 90, fill=0.0) > 0.05
