"""The cube-group network (``sre_cube_aligned_r3d_18``) through the 3D pipeline on a fake OrganMNIST3D file in the
real format: training with rotation/flip evaluation over the volume's axes, resume, eval, Grad-CAM slices."""

import json

import pytest
import torch

from sreconv.cli import main
from sreconv.viz.run import load_run
from tests.data.fakes import write_medmnist

pytest.importorskip("medmnist")


@pytest.mark.slow
def test_cube_recipe_through_the_3d_pipeline(tmp_path, capsys):
    write_medmnist(tmp_path / "data", "organmnist3d", size=28, counts={"train": 8, "val": 4, "test": 4})
    out = tmp_path / "cube"
    # 48 channels = 1 regular cube field in the first stage
    args = ["--dataset", "organmnist3d", "--data-root", str(tmp_path / "data"), "--model", "sre_cube_aligned_r3d_18",
            "--width", "48", "--sre-conv-size-list", "3", "-b", "4", "--lr", "0.01", "--no-progress"]
    assert main(["train", *args, "--epochs", "1", "--out", str(out), "--eval-rot", "--eval-angles", "0", "90",
                 "--eval-flip"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "sre_cube_aligned_r3d_18"
    assert set(results["rotation"]) == {"x", "y", "z"}  # one block per rotation axis
    for block in results["rotation"].values():
        assert block["acc"][0] == block["acc"][1]  # exactly invariant to quarter turns

    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress"]) == 0
    assert [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert main(["eval", "--out", str(out), "--eval-angles", "0", "180", "--no-progress"]) == 0

    run = load_run(str(out))
    x, _ = run.sample(0)
    model, x = run.model.double(), x.double()  # float32 rounding differs between CPUs by ~1e-4 on these logits
    with torch.no_grad():
        logits = model(x[None])
        torch.testing.assert_close(model(x.rot90(1, (1, 3))[None]), logits, atol=1e-9, rtol=0)
        torch.testing.assert_close(model(x.flip(1).transpose(2, 3)[None]), logits, atol=1e-9, rtol=0)
    run.model.float()
    capsys.readouterr()
    cam = tmp_path / "cam.png"
    assert main(["cam", "--run", str(out), "--index", "0", "--angles", "0", "90", "-o", str(cam)]) == 0
    assert cam.stat().st_size > 0
