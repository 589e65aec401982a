"""sreconv cam: grid PNG, rotated-back CAMs of an exactly invariant model agree at 90° multiples, 3D central
slices, target layer choice, hooks removed, one-line errors."""

import re
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from sreconv.cli import main
from sreconv.viz import VizError, load_run
from sreconv.viz.cam import cam_class, cam_sweep, compute_cams, find_target_layer


def _quarter_diff(text: str) -> float:
    match = re.search(r"multiples of 90°: ([0-9.e+-]+)", text)
    assert match, text
    return float(match.group(1))


@pytest.mark.slow
def test_cam_grid_png_and_printed_invariance(tiny_run, tmp_path, capsys):
    out = tmp_path / "cam.png"
    assert (
        main(
            [
                "cam",
                "--run",
                tiny_run,
                "--index",
                "1",
                "--angles",
                "0",
                "90",
                "180",
                "270",
                "45",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    image = iio.imread(out)
    # 5 angle columns x 4 rows at 1.45 in per cell, 100 dpi (see plot_cam_grid).
    assert image.shape[:2] == (round((1.45 * 4 + 0.55) * 100), round((1.45 * 5 + 0.5) * 100))
    assert image[..., :3].std() > 10  # not blank
    # float64 forward/backward: the rotated-back CAMs coincide up to grad-cam's float32 output.
    assert _quarter_diff(text) < 1e-6
    rows = {
        float(m.group(1)): float(m.group(2))
        for m in re.finditer(r"^\s*([0-9.]+)\s+\d+\s+[0-9.]+\s+([0-9.e+-]+)\s+(whole|inscribed)", text, re.M)
    }
    assert set(rows) == {0.0, 90.0, 180.0, 270.0, 45.0}
    assert max(rows[a] for a in (90.0, 180.0, 270.0)) < 1e-6


@pytest.mark.slow
def test_sweep_library_float32_and_model_untouched(tiny_run):
    run = load_run(tiny_run)
    x, _ = run.sample(0)
    model = run.model
    before = model(x[None]).detach()
    sweep = cam_sweep(model, x, [0, 90, 180, 270], dtype=torch.float32)
    assert sweep.quarter_turn_max_diff() < 1e-3  # float32 rounding magnified by min-max scaling, still tiny
    assert sweep.pairwise.shape == (4, 4) and np.allclose(sweep.pairwise, sweep.pairwise.T)
    assert all(0.0 <= c.min() and c.max() <= 1.0 for c in sweep.cams)
    # grad-cam's hooks are gone and the eval-mode outputs (kernel cache) are unchanged.
    assert all(not m._forward_hooks for m in model.modules())
    assert not model.training
    assert torch.equal(model(x[None]).detach(), before)


@pytest.mark.slow
def test_layer_choice_and_other_methods(tiny_run, tmp_path, capsys):
    run = load_run(tiny_run)
    assert find_target_layer(run.model)[0] == "layer4"
    assert find_target_layer(run.model, "layer3.1")[0] == "layer3.1"
    x, _ = run.sample(2)
    cams = compute_cams(run.model, x[None], [0], method="eigencam", layer="layer3")
    assert cams.shape == (1, 16, 16)
    ckpt = f"{tiny_run}/checkpoints/last.pt"
    out = tmp_path / "c.png"
    assert (
        main(
            [
                "cam",
                "--checkpoint",
                ckpt,
                "--index",
                "2",
                "--angles",
                "0",
                "180",
                "--method",
                "layercam",
                "--layer",
                "layer3",
                "--target",
                "1",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert "layercam on layer3, target class 1" in capsys.readouterr().out
    assert iio.imread(out).shape[0] > 100


@pytest.mark.slow
def test_3d_central_slices(tiny_3d_checkpoint, tmp_path, capsys):
    out = tmp_path / "cam3d.png"
    assert (
        main(
            ["cam", "--checkpoint", tiny_3d_checkpoint, "--angles", "0", "90", "--axis", "x", "-o", str(out)]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "rotation about x" in text and _quarter_diff(text) < 1e-6
    assert iio.imread(out).shape[1] == round((1.45 * 2 + 0.5) * 100)


def _one_line_error(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("sreconv ") and expected in err, err


@pytest.mark.slow
def test_bad_input_one_line_errors(tiny_run, tiny_3d_checkpoint, tmp_path, capsys):
    _one_line_error(capsys, ["cam", "--run", str(tmp_path / "nope")], "not found")
    _one_line_error(capsys, ["cam", "--run", tiny_run, "--index", "12"], "out of range")
    _one_line_error(capsys, ["cam", "--run", tiny_run, "--layer", "layer9"], "no layer 'layer9'")
    _one_line_error(
        capsys, ["cam", "--checkpoint", tiny_3d_checkpoint, "--method", "scorecam"], "only works on 2D models"
    )
    _one_line_error(capsys, ["cam"], "give --run DIR")
    with pytest.raises(VizError, match="2D models"):
        cam_class("fullgrad", 3)


@pytest.mark.slow
def test_console_script_error_has_no_traceback(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "sreconv", "cam", "--run", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


def test_aligned_model_maps_are_drawn_in_the_input_frame():
    from sreconv.models import D4ResNet
    from sreconv.nn import align_principal_axes

    aligned = D4ResNet(num_classes=3, in_channels=1, inplanes=8, layers=(1, 1, 1, 1), align_input=True).eval()
    plain = D4ResNet(num_classes=3, in_channels=1, inplanes=8, layers=(1, 1, 1, 1)).eval()
    plain.load_state_dict(aligned.state_dict())
    x = torch.rand(2, 1, 20, 20)
    maps = compute_cams(aligned, x, [0, 1])
    in_aligned_frame = compute_cams(plain, align_principal_axes(x), [0, 1])
    assert np.abs(maps - in_aligned_frame).max() > 0.05  # the alignment turned the images
    expected = aligned.align.to_input_frame(torch.from_numpy(in_aligned_frame)[:, None], x)[:, 0].numpy()
    np.testing.assert_allclose(maps, expected, atol=1e-5)
