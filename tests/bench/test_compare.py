"""``sreconv compare``: the config and its flags, the entries, a tiny end-to-end run (fake Fashion-MNIST), resume,
the tables and the targets."""

import argparse
import importlib.util
import json

import pytest

from sreconv.cli import main
from sreconv_bench.compare import (
    COLUMNS,
    DEFAULT_MODELS,
    ENTRIES,
    TARGETS,
    CompareConfig,
    check_targets,
    format_table,
    format_targets,
    resolve_entry,
)
from sreconv_bench.compare import entries as entries_module
from sreconv_bench.compare.command import HELP, add_arguments, config_from_args
from tests.data.fakes import write_fashion

TINY = ["--dataset", "fashion-mnist", "--width", "4", "--sre-conv-size", "3", "3", "3", "3", "--epochs", "1",
        "--batch-size", "16", "--limit-train", "64", "--limit-test", "16", "--seeds", "0", "--quiet"]


@pytest.fixture()
def fake_root(tmp_path):
    root = tmp_path / "fashion"
    write_fashion(str(root), n_train=120, n_test=30)
    return str(root)


# ------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs must be an int >= 1, got 0"),
    ("width", 2.5, "width must be an int >= 1, got 2.5"),
    ("limit_train", -1, "limit_train must be an int >= 0 (0 = all), got -1"),
    ("image_size", 0, "image_size must be an int >= 1 or None (native size), got 0"),
    ("sre_conv_size", [5, 5, 3], "sre_conv_size must be 4 odd positive ints"),
    ("sre_conv_size", [5, 4, 3, 3], "sre_conv_size must be 4 odd positive ints"),
    ("optimizer", "lbfgs", "optimizer must be one of sgd, adamw, adam, got 'lbfgs'"),
    ("lr", 0.0, "lr must be a positive number, got 0.0"),
    ("weight_decay", -1e-4, "weight_decay must be a number >= 0"),
    ("seeds", [], "seeds must be a non-empty list of ints >= 0"),
    ("seeds", [0, 0], "seeds must not repeat"),
    ("models", [], "models must be a non-empty list"),
    ("models", ["cnn", "cnn"], "models must not repeat a label"),
    ("angle_step", 400.0, "angle_step must be at most 360 degrees"),
    ("device", "tpu", "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
    ("restart", "yes", "restart must be True or False"),
])
def test_config_rejects_bad_values_with_one_line(field, value, message):
    with pytest.raises(ValueError) as info:
        CompareConfig(**{field: value}).validate()
    text = str(info.value)
    assert message in text and "\n" not in text and text.startswith(field)


def test_default_config_is_valid_and_its_budget_keys_the_resume():
    config = CompareConfig().validate()
    assert config.models == DEFAULT_MODELS and config.seeds == [0, 1, 2] and config.sre_conv_size == [5, 5, 3, 3]
    budget = config.budget()
    assert budget["scoring"] == 2 and budget["limit_train"] == 4000 and budget["seeds"] == [0, 1, 2]
    assert CompareConfig(limit_train=0).budget()["limit_train"] == "all"
    assert config.command_line().startswith("sreconv compare --dataset fashion-mnist --models cnn cnn_rotaug")


def test_flags_mirror_the_config_fields():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert config_from_args(parser.parse_args([])) == CompareConfig()
    args = parser.parse_args(["--epochs", "3", "--no-plot", "--restart", "--seeds", "4", "5", "--models", "cnn",
                              "--sre-conv-size", "3", "3", "3", "3", "--image-size", "32"])
    config = config_from_args(args)
    assert (config.epochs, config.plot, config.restart, config.seeds, config.models) == (3, False, True, [4, 5],
                                                                                      ["cnn"])
    assert config.sre_conv_size == [3, 3, 3, 3] and config.image_size == 32
    text = parser.format_help()
    assert "(default: 8)" in text and "(default: 0.002)" in text and "(default: 5 5 3 3)" in text
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        config_from_args(parser.parse_args(["--epochs", "0"]))
    assert isinstance(HELP, str) and "\n" not in HELP


# ----------------------------------------------------------------------------------------- entries


def test_entries_resolve_to_registered_models_or_importable_peers():
    from sreconv import list_models

    for entry in ENTRIES.values():
        if entry.factory is None:
            assert entry.model in list_models(), entry.label
        else:
            module, function = entry.factory.split(":")
            assert callable(getattr(__import__(module, fromlist=[function]), function))
    assert set(DEFAULT_MODELS) <= set(ENTRIES)
    for label in ("gmr", "gmr_rotaug", "sre_d4", "sre_d4_rotaug", "sre_d4_aligned", "sre_d4_aligned_rotaug",
                  "e2cnn_aligned", "e2cnn_aligned_rotaug"):
        assert label in DEFAULT_MODELS
    assert ENTRIES["gmr_rotaug"].rotation_aug == "any" and ENTRIES["gmr"].rotation_aug is None
    assert resolve_entry("sre_resnet34").model == "sre_resnet34"  # any registry name is an entry
    with pytest.raises(ValueError, match="unknown model 'no_such_model': not a compare entry"):
        resolve_entry("no_such_model")


# ------------------------------------------------------------------------------------ tiny run


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("GMR_Conv") is None, reason="needs gmr-conv")
def test_compare_tiny(fake_root, tmp_path, monkeypatch, capsys):
    real_available = entries_module.entry_available
    monkeypatch.setattr("sreconv_bench.compare.run.entry_available",
                        lambda e: False if e.label == "e2cnn" else real_available(e))
    out = tmp_path / "out"
    status = main(["compare", *TINY, "--data-root", fake_root, "--models", "cnn", "sre_d4_rotaug", "gmr", "e2cnn",
                   "--out", str(out)])
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["label"] for r in results["runs"]] == ["cnn", "sre_d4_rotaug", "gmr"]
    assert results["skipped"] == {"e2cnn": "e2cnn not installed"}
    assert results["budget"]["epochs"] == 1 and results["budget"]["limit_train"] == 64
    assert results["command"].startswith("sreconv compare --dataset fashion-mnist --models cnn sre_d4_rotaug")
    for run in results["runs"]:
        assert len(run["angles"]) == len(run["rotation_acc"]) == len(run["rotation_acc_bicubic"]) == 36
        assert run["upright_acc"] == run["rotation_acc"][0] == run["rotation_acc_bicubic"][0]
        assert run["worst_rot_acc"] <= run["mean_rot_acc"] <= max(run["rotation_acc"])
        assert run["mean_rot_acc_bicubic"] == pytest.approx(sum(run["rotation_acc_bicubic"]) / 36)
        assert run["gap"] == pytest.approx(run["upright_acc"] - run["mean_rot_acc"])
        assert run["params"] > 0 and run["train_s_per_epoch"] > 0 and run["eval_images_per_s"] > 0
        assert run["n_train"] == 64 and run["n_test"] == 16 and run["image_size"] == 28
        assert len(run["per_class_upright"]) == 10
        # quarter turns are exact rot90 in both interpolations
        for i in (9, 18, 27):
            assert run["rotation_acc_bicubic"][i] == run["rotation_acc"][i]
    d4 = results["runs"][1]
    assert d4["train_rotation"] == "any" and results["runs"][0]["train_rotation"] is None
    assert d4["d4_logit_deviation"] < 1e-4  # exact up to float32 rounding
    assert len(set(d4["acc_quarter_turns"])) == 1
    assert d4["flip_acc"]["horizontal"] == d4["flip_acc"]["vertical"] == d4["upright_acc"]
    gmr = results["runs"][2]
    assert gmr["d4_logit_deviation"] > 1e-4  # plain AvgPool2d(2) drops a row/column at 7 -> 3: not exact
    report = (out / "report.md").read_text()
    lines = [line for line in report.splitlines() if line.startswith("|")][:6]
    assert lines[5].startswith("| e2cnn | 0 | skipped")
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert "mean 36, bicubic" in lines[0] and "45°, bicubic" in lines[0]
    assert "Machine:" in report and "Date:" in report and "sreconv compare" in report
    assert "| sre_d4_rotaug | yes (" in report.split("## Targets")[1]
    assert "| model | T-shirt/top | Trouser |" in report
    assert (out / "accuracy_vs_angle.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| sre_d4_rotaug | 1 |" in capsys.readouterr().out


def test_bad_model_name_is_refused_before_any_work(fake_root, tmp_path, capsys):
    status = main(["compare", *TINY, "--data-root", fake_root, "--models", "no_such_model", "--out", str(tmp_path)])
    assert status == 2
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


@pytest.mark.slow
def test_resume_keeps_runs_and_refuses_another_budget(fake_root, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["compare", *TINY, "--data-root", fake_root, "--out", str(out), "--no-plot"]
    assert main([*base, "--models", "cnn"]) == 0
    first = json.loads((out / "results.json").read_text())["runs"]
    capsys.readouterr()
    assert main([*base, "--models", "cnn", "sre_hard"]) == 0  # adds a model: only that one trains
    printed = capsys.readouterr().out
    assert "cnn seed 0: kept from" in printed and "[compare] sre_hard (sre_resnet18) seed 0" in printed
    assert "[compare] cnn (plain_resnet18)" not in printed
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["label"] for r in runs] == ["cnn", "sre_hard"] and runs[0] == first[0]
    assert main([*base, "--models", "cnn", "--epochs", "2"]) == 2  # another budget: refused, nothing lost
    err = capsys.readouterr().err
    assert "another budget (epochs 1 -> 2)" in err and "--restart" in err
    assert json.loads((out / "results.json").read_text())["runs"] == runs
    results = json.loads((out / "results.json").read_text())
    results["budget"].pop("scoring")  # a file written before the bicubic views: refused too
    (out / "results.json").write_text(json.dumps(results))
    assert main([*base, "--models", "cnn"]) == 2
    assert "scoring None -> 2" in capsys.readouterr().err
    assert main([*base, "--models", "cnn", "--epochs", "2", "--restart"]) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["label"] for r in runs] == ["cnn"]
    (out / "results.json").write_text("{not json")
    assert main([*base, "--models", "cnn"]) == 2
    assert "not a readable compare results file" in capsys.readouterr().err


# ------------------------------------------------------------------------------- tables, targets


def test_format_table_mean_std_and_worst_deviation():
    run = {k: 0.5 for k, _, _ in COLUMNS}
    results = {"runs": [dict(run, label="a", d4_logit_deviation=1e-7),
                        dict(run, label="a", upright_acc=0.7, d4_logit_deviation=3e-7)], "skipped": {"b": "why"}}
    lines = format_table(results).splitlines()
    assert lines[2].startswith("| a | 2 |") and "0.600 ± 0.141" in lines[2] and lines[2].endswith("| 3.0e-07 |")
    assert lines[3].startswith("| b | 0 | skipped: why |") and lines[3].count("|") == lines[0].count("|")


def _run(label, model, upright, mean_rot, params, worst=None, seconds=5.0, rotation=None, quarter=None,
         deviation=1e-7):
    quarter = quarter or [upright] * 4
    return dict(label=label, model=model, upright_acc=upright, mean_rot_acc=mean_rot, params=params,
                worst_rot_acc=mean_rot - 0.02 if worst is None else worst, train_s_per_epoch=seconds,
                train_rotation=rotation, acc_quarter_turns=quarter, d4_logit_deviation=deviation,
                flip_acc={"horizontal": upright, "vertical": upright})


REFS = [_run("cnn", "plain_resnet18", 0.86, 0.22, 700_000, quarter=[0.86, 0.1, 0.2, 0.1], deviation=1.3),
        _run("e2cnn", "e2cnn_d4_resnet18", 0.86, 0.46, 59_000),
        _run("e2cnn_rotaug", "e2cnn_d4_resnet18", 0.78, 0.80, 59_000, worst=0.78, seconds=7.0, rotation="any"),
        _run("gmr", "gmr_resnet18", 0.80, 0.60, 170_000, deviation=0.02),
        _run("gmr_rotaug", "gmr_resnet18", 0.75, 0.76, 170_000, rotation="any", deviation=0.02)]


def test_targets_hold_and_fail_where_they_should():
    runs = [*REFS,
            _run("sre_robust", "sre_d4_resnet18", 0.82, 0.815, 250_000, worst=0.79, seconds=6.0, rotation="any"),
            _run("sre_robust", "sre_d4_resnet18", 0.84, 0.825, 250_000, worst=0.79, seconds=6.5, rotation="any"),
            _run("sre_upright", "sre_d4_resnet18", 0.87, 0.45, 250_000),
            _run("sre_bad", "sre_resnet18", 0.70, 0.79, 300_000, worst=0.70, seconds=9.0, rotation="any",
                 quarter=[0.70, 0.70, 0.69, 0.70])]
    rows = dict(check_targets({"runs": runs}))
    assert list(rows) == ["sre_robust", "sre_upright", "sre_bad"]  # sreconv models only
    names = [t.name for t in TARGETS]
    robust, upright, bad = (dict(zip(names, rows[k])) for k in ("sre_robust", "sre_upright", "sre_bad"))
    assert robust["mean rot. ≥ e2cnn_rotaug + 0.01"] == (pytest.approx(0.02), True)
    assert robust["worst ≥ e2cnn_rotaug"] == (pytest.approx(0.01), True)
    assert robust["s/epoch ≤ e2cnn_rotaug"] == (pytest.approx(6.25 / 7.0), True)
    assert robust["mean rot. > gmr_rotaug"][1] and robust["params ≤ 0.4 × CNN"][1]
    assert robust["upright ≥ e2cnn"] == "-" and upright["worst ≥ e2cnn_rotaug"] == "-"
    assert upright["upright ≥ e2cnn"] == (pytest.approx(0.01), True) and upright["upright > gmr"][1]
    assert upright["stretch: upright ≥ CNN − 0.03"][1] and not upright["stretch: mean rot. ≥ 0.97 × upright"][1]
    assert robust["stretch: mean rot. ≥ 0.97 × upright"][1] and not robust["stretch: upright ≥ CNN − 0.03"][1]
    assert not bad["exact at 90°·k and flips"][1] and not bad["params ≤ 0.4 × CNN"][1]
    assert bad["mean rot. ≥ e2cnn_rotaug + 0.01"] == (pytest.approx(-0.01), False)
    assert bad["s/epoch ≤ e2cnn_rotaug"] == (pytest.approx(9 / 7), False)
    table = format_targets({"runs": runs})
    assert ("| sre_bad | **no** (1.0e-07) | **no** (0.43) | **no** (-0.010) | **no** (-0.080) | **no** (1.29×) |"
            in table)
    alone = dict(zip(names, dict(check_targets({"runs": runs[5:7]}))["sre_robust"]))
    assert alone["params ≤ 0.4 × CNN"] is None and alone["worst ≥ e2cnn_rotaug"] is None  # no reference: n/a
    assert "| n/a |" in format_targets({"runs": runs[5:7]})
