"""The design-probe and epoch-timing scripts of benchmarks/robustness: tiny runs, well-formed outputs, probe-only
options that keep the model exactly invariant."""

import importlib.util
import json
import os

import pytest
import torch

from sreconv_bench.compare import CompareConfig
from tests.data.fakes import write_fashion
from tests.models._util import max_invariance_error

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "benchmarks", "robustness", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("options", [
    {"probe_orthonormal": ["stem", "blocks"]},
    pytest.param({"probe_basis_scale": 0.3}, marks=pytest.mark.slow),
    pytest.param({"probe_input_blur": 0.7}, marks=pytest.mark.slow),
    pytest.param({"probe_input_disc": -1.0}, marks=pytest.mark.slow)])
def test_probe_options_keep_the_model_exactly_invariant(options):
    from sreconv import create_model

    probes = _script("probes")
    model = create_model("sre_d4_resnet18", num_classes=3, in_channels=1, inplanes=8, basis="harmonic",
                         sre_conv_size=3, stem_basis="harmonic")
    model = probes._apply_options(model, options).double().eval()
    assert max_invariance_error(model, torch.randn(2, 1, 11, 11, dtype=torch.float64), "d4") < 1e-10


def test_probe_log_table(tmp_path):
    probes = _script("probes")
    log = tmp_path / "log.jsonl"
    record = dict(label="p", seed=1, rotation_aug="any", params=10, train_s_per_epoch=2.4, upright_acc=0.5,
                  mean_rot_acc=0.25, worst_rot_acc=0.125, acc_45=0.2, mean_rot_acc_bicubic=0.3,
                  kwargs={"basis": "full"})
    log.write_text(json.dumps(record) + "\n" + json.dumps(dict(record, kwargs={}, rotation_aug=None)) + "\n")
    lines = probes.format_log(str(log)).splitlines()
    assert len(lines) == 4 and all(line.count("|") == lines[0].count("|") for line in lines)
    assert lines[2] == "| p | 1 | any | 10 | 2 | 0.500 | 0.250 | 0.125 | 0.200 | 0.300 | basis=full |"
    assert lines[3].endswith("| peer default |") and "| - |" in lines[3]


@pytest.mark.slow
def test_epoch_timing_interleaves_entries(tmp_path):
    timing = _script("epoch_timing")
    root = tmp_path / "fashion"
    write_fashion(str(root), n_train=80, n_test=20)
    config = CompareConfig(data_root=str(root), width=4, sre_conv_size=[3, 3, 3, 3], batch_size=16, limit_train=32,
                           limit_test=8, seeds=[0]).validate()
    times = timing.epoch_times(["cnn", "sre_d4_rotaug"], 2, config, clock="cpu")
    assert list(times) == ["cnn", "sre_d4_rotaug"] and all(len(v) == 2 and min(v) > 0 for v in times.values())
