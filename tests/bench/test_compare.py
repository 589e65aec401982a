"""``sreconv compare`` on a tiny budget (fake Fashion-MNIST files, one epoch, two models): a well-formed
results.json, table and PNG; SRE rows are exact under rot90/flips; optional peers are skipped, not fatal."""

import json

import pytest

from sreconv.cli import main
from sreconv_bench import compare
from tests.data.fakes import write_fashion

TINY = ["--dataset", "fashion-mnist", "--width", "4", "--sre-conv-size", "3", "3", "3", "3", "--epochs", "1",
        "--batch-size", "16", "--limit-train", "64", "--limit-test", "16", "--seeds", "0", "--quiet"]


@pytest.fixture()
def fake_root(tmp_path):
    root = tmp_path / "fashion"
    write_fashion(str(root), n_train=120, n_test=30)
    return str(root)


def test_compare_tiny(fake_root, tmp_path, monkeypatch, capsys):
    real_available = compare._available
    monkeypatch.setattr(compare, "_available", lambda e: False if e.label == "e2cnn" else real_available(e))
    out = tmp_path / "out"
    status = main(["compare", *TINY, "--data-root", fake_root, "--models", "cnn", "sre_hard", "e2cnn",
                   "--out", str(out)])
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["label"] for r in results["runs"]] == ["cnn", "sre_hard"]
    assert results["skipped"] == {"e2cnn": "e2cnn not installed"}
    assert results["budget"]["epochs"] == 1 and results["budget"]["limit_train"] == 64
    assert results["command"].startswith("sreconv compare --dataset fashion-mnist")
    for run in results["runs"]:
        assert len(run["angles"]) == len(run["rotation_acc"]) == 36
        assert run["upright_acc"] == run["rotation_acc"][0]
        assert run["worst_rot_acc"] <= run["mean_rot_acc"] <= max(run["rotation_acc"])
        assert run["gap"] == pytest.approx(run["upright_acc"] - run["mean_rot_acc"])
        assert run["params"] > 0 and run["train_s_per_epoch"] > 0 and run["eval_images_per_s"] > 0
        assert run["n_train"] == 64 and run["n_test"] == 16 and run["image_size"] == 28
        assert len(run["per_class_upright"]) == 10
    sre = results["runs"][1]
    assert sre["d4_logit_deviation"] < 1e-4  # exact up to float32 rounding
    assert len(set(sre["acc_quarter_turns"])) == 1
    assert sre["flip_acc"]["horizontal"] == sre["flip_acc"]["vertical"] == sre["upright_acc"]
    report = (out / "report.md").read_text()
    lines = [line for line in report.splitlines() if line.startswith("|")]
    lines = lines[:5]  # the main table; the targets and per-class tables follow
    assert lines[4].startswith("| e2cnn | 0 | skipped")
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert "Machine:" in report and "Date:" in report and "sreconv compare" in report
    assert "## Targets" in report and "| sre_hard | " in report.split("## Targets")[1]
    assert "| model | T-shirt/top | Trouser |" in report  # per-class table with the dataset's class names
    assert (out / "accuracy_vs_angle.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| sre_hard | 1 |" in capsys.readouterr().out


def test_format_table_mean_std():
    run = {k: 0.5 for k, _, _ in compare.COLUMNS}
    results = {"runs": [dict(run, label="a"), dict(run, label="a", upright_acc=0.7)], "skipped": {}}
    table = compare.format_table(results)
    assert "| a | 2 |" in table and "0.600 ± 0.141" in table


def test_bad_model_name(fake_root, tmp_path, capsys):
    status = main(["compare", *TINY, "--data-root", fake_root, "--models", "no_such_model", "--out", str(tmp_path)])
    assert status == 2
    assert "unknown model 'no_such_model'" in capsys.readouterr().err


def test_entries_resolve_to_registered_models():
    from sreconv import list_models

    for entry in compare.ENTRIES.values():
        assert entry.factory is not None or entry.model in list_models()
    assert set(compare.DEFAULT_MODELS) <= set(compare.ENTRIES)


def _run(label, model, upright, mean_rot, params, quarter=None, flips=None, deviation=1e-7):
    quarter = quarter or [upright] * 4
    flips = flips or {"horizontal": upright, "vertical": upright}
    return dict(label=label, model=model, upright_acc=upright, mean_rot_acc=mean_rot, params=params,
                acc_quarter_turns=quarter, flip_acc=flips, d4_logit_deviation=deviation)


def test_targets_hold_and_fail_where_they_should():
    runs = [_run("cnn", "plain_resnet18", 0.86, 0.22, 700_000, quarter=[0.86, 0.1, 0.2, 0.1], deviation=1.3),
            _run("cnn_rotaug", "plain_resnet18", 0.75, 0.74, 700_000, deviation=0.4),
            _run("sre_good", "sre_resnet18", 0.84, 0.83, 250_000),
            _run("sre_good", "sre_resnet18", 0.86, 0.83, 250_000),  # second seed: means 0.85 / 0.83
            _run("sre_bad", "sre_resnet18", 0.70, 0.60, 300_000, quarter=[0.70, 0.70, 0.69, 0.70])]
    rows = dict(compare.check_targets({"runs": runs}))
    assert list(rows) == ["sre_good", "sre_bad"]  # SRE models only
    good, bad = rows["sre_good"], rows["sre_bad"]
    assert [holds for _, holds in good] == [True, True, True, True, True]
    assert good[0][0] == pytest.approx(0.83 / 0.85) and good[2][0] == pytest.approx(-0.01)
    assert [holds for _, holds in bad] == [False, False, False, False, False]
    assert bad[4][0] == pytest.approx(3 / 7)
    table = compare.format_targets({"runs": runs})
    assert "| sre_bad | **no** (0.86) | **no** (1.0e-07) | **no** (-0.160) | **no** (-0.140) | **no** (0.43) |" in table
    alone = dict(compare.check_targets({"runs": runs[2:3]}))["sre_good"]
    assert alone[2] is None and alone[3] is None and alone[4] is None  # no reference rows: n/a


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
    assert main([*base, "--models", "cnn", "--epochs", "2", "--restart"]) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["label"] for r in runs] == ["cnn"]
    (out / "results.json").write_text("{not json")
    assert main([*base, "--models", "cnn"]) == 2
    assert "not a readable compare results file" in capsys.readouterr().err
