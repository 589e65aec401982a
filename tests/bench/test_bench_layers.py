"""benchmarks/bench_layers.py's bookkeeping: regret, the choice's regret, the targets and --from-json (the
timings themselves are a benchmark, not a test)."""

import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _bench():
    spec = importlib.util.spec_from_file_location("bench_layers", os.path.join(ROOT, "benchmarks", "bench_layers.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _bench()


def _row(mode, auto, dense, ring, choice="ring", k=9, channels=64):
    ms = dict(conv=100.0, auto=auto, dense=dense, ring=ring, depthwise=400.0)
    return {"section": "layer", "threads": 1, "dim": 2, "k": k, "channels": channels, "batch": 16, "size": 32,
            "mode": mode, "auto_choice": choice, "tuner": {},
            "results": {name: {"ms": value, "min_ms": value, "peak_mb": 1.0} for name, value in ms.items()}}


def test_regret_and_choice_regret():
    row = _row("eval", auto=33.0, dense=100.0, ring=30.0)
    assert bench.regret(row["results"]) == 1.1  # auto measured 10% slower than the same path
    assert bench.choice_regret(row) == 1.0  # but it chose the fastest path
    assert bench.choice_regret(_row("eval", 100.0, 100.0, 30.0, choice="dense")) == 100.0 / 30.0


def test_targets_and_markdown_from_json(tmp_path, capsys):
    rows = [_row("eval", 33.0, 100.0, 30.0), _row("train", 45.0, 100.0, 45.0), _row("eval", 90.0, 100.0, 80.0, k=3)]
    info = {"date": "2026-12-02", "processor": "x86_64", "cpu_count": 2, "platform": "Linux", "python": "3.11",
            "torch": "2.14.1"}
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps({"machine": info, "command": "python benchmarks/bench_layers.py", "rows": rows}))
    page = tmp_path / "results.md"
    bench.main(["--from-json", str(saved), "--markdown", str(page)])
    text = page.read_text()
    assert text == capsys.readouterr().out
    assert "| auto within 5% of the fastest path on every row | worst regret 1.12 (2D k=3 C=64 eval) | no |" in text
    assert "worst 1.00 (2D k=9 C=64 eval); 3 of 3 rows within 5% | yes |" in text
    assert "| 2D k=9 C=64 eval auto <= 0.4x nn.Conv2d (B=16) | 0.33 (auto -> ring) | yes |" in text
    assert "| 2D k=9 C=64 train auto <= 0.5x nn.Conv2d (B=16) | 0.45 (auto -> ring) | yes |" in text


def test_recheck_retimes_only_the_rows_above_the_threshold(tmp_path, capsys):
    slow = dict(_row("eval", 60.0, 100.0, 30.0, k=3, channels=4), batch=2, size=8)  # auto 2x the fastest path
    fine = dict(_row("train", 30.0, 100.0, 30.0, k=3, channels=4), batch=2, size=8)
    info = {"date": "2026-12-03", "processor": "x86_64", "cpu_count": 2, "platform": "Linux", "python": "3.11",
            "torch": "2.14.1"}
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps({"machine": info, "command": "python benchmarks/bench_layers.py",
                                 "rows": [slow, fine]}))
    bench.main(["--recheck", str(saved), "--recheck-reps", "3"])
    rows = json.loads(saved.read_text())["rows"]
    assert "recheck" not in rows[1]
    again = rows[0]["recheck"]
    assert again["reps"] == 3
    assert {"auto", "ring"} <= set(again["results"]) <= {"auto", *bench.PATHS}  # auto, its choices, the fastest
    assert all(r["ms"] > 0 for r in again["results"].values())
    assert bench.row_regret(rows[0]) == bench.regret(again["results"])
    text = capsys.readouterr().out
    assert "Re-timing 1: the 1 rows whose regret or choice regret then exceeded 1.05" in text
    assert "1 rows above 1.05 re-timed" in text
    assert f"| 2.00 (re-timed {bench.row_regret(rows[0]):.2f}, -> {again['auto_choice']}) |" in text


def test_a_second_recheck_skips_the_rows_a_first_one_cleared():
    cleared = _row("eval", 60.0, 100.0, 30.0)  # the grid run: auto 2x the fastest path
    cleared["recheck"] = {"reps": 21, "rounds": 1, "auto_choice": "ring",
                          "results": {"auto": {"ms": 30.5}, "ring": {"ms": 30.0}}}
    assert bench.row_regret(cleared) == 30.5 / 30.0 and bench.choice_regret(cleared) == 1.0
    assert bench.recheck([cleared], reps=3, threshold=1.05, device=bench.torch.device("cpu")) == 0
    assert cleared["recheck"]["rounds"] == 1
