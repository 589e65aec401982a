"""sreconv gif / plot / kernels and the rotation plot written by sreconv train."""

import json
import os

import imageio.v3 as iio
import numpy as np
import pytest

from sreconv.cli import main
from sreconv.viz.kernels import ring_radii
from sreconv.viz.plots import PLOT_NAME, plot_results, run_labels


@pytest.mark.slow
def test_gif_frames_side_by_side(tiny_run, tmp_path, capsys):
    out = tmp_path / "turn.gif"
    assert (
        main(
            [
                "gif",
                "--run",
                tiny_run,
                "--baseline-checkpoint",
                f"{tiny_run}/checkpoints/last.pt",
                "--index",
                "3",
                "--frames",
                "4",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "GIF (4 frames)" in text
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == 4
    # figure 2.6 in per model x 4.2 in at 80 dpi, two models
    assert frames.shape[1:3] == (round(4.2 * 80), round(2 * 2.6 * 80))
    assert all(f.std() > 10 for f in frames)
    assert not np.array_equal(frames[0], frames[1])  # the image turns


@pytest.mark.slow
def test_train_writes_rotation_plot(tiny_run):
    image = iio.imread(os.path.join(tiny_run, PLOT_NAME))
    assert image.shape[0] > 200 and image.shape[1] > 800 and image[..., :3].std() > 10


@pytest.mark.slow
def test_plot_command_several_runs(tiny_run, tmp_path, capsys):
    results = json.load(open(os.path.join(tiny_run, "results.json")))
    other = dict(
        results,
        rotation={k: (v if k == "angles" else [0.5] * len(v)) for k, v in results["rotation"].items()},
    )
    path = tmp_path / "other" / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(other))
    out = tmp_path / "plot.png"
    assert main(["plot", os.path.join(tiny_run, "results.json"), str(path), "-o", str(out)]) == 0
    image = iio.imread(out)
    assert image.shape[:2] == (round(4.2 * 110), round(4 * 4.3 * 110))  # polar, acc, AUC, flips
    assert run_labels([tiny_run, str(path)], [results, other]) == ["tiny_sre", "other"]


@pytest.mark.slow
def test_plot_3d_axes_and_flips_only(tmp_path):
    block = {"angles": [0.0, 90.0, 180.0], "acc": [0.8, 0.8, 0.8], "auc": [float("nan")] * 3}
    res3d = {
        "model": "sre_r3d_18",
        "dataset": "organmnist3d",
        "rotation": {"x": block, "z": block},
        "flip": {"none": {"acc": 0.8}, "depth": {"acc": 0.8}},
    }
    out = plot_results([res3d], ["r3d"], str(tmp_path / "p.png"))
    assert iio.imread(out).shape[1] == round(3 * 4.3 * 110)  # AUC all NaN: no AUC panel
    out = plot_results([{"flip": {"none": {"acc": 0.5}}}], ["f"], str(tmp_path / "f.png"))
    assert iio.imread(out).shape[1] == round(4.3 * 110)


def test_plot_errors(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "missing.json")]) == 2
    assert "not found" in capsys.readouterr().err
    empty = tmp_path / "results.json"
    empty.write_text("{}")
    assert main(["plot", str(empty)]) == 2
    assert "no rotation or flip results" in capsys.readouterr().err


@pytest.mark.slow
def test_kernels_png(tiny_run, tmp_path, capsys):
    out = tmp_path / "k.png"
    assert main(["kernels", f"{tiny_run}/checkpoints/last.pt", "--channels", "3", "-o", str(out)]) == 0
    assert iio.imread(out)[..., :3].std() > 10
    assert main(["kernels", tiny_run, "--layers", "conv1", "layer2.0.conv1.1", "-o", str(out)]) == 0
    assert main(["kernels", tiny_run, "--layers", "fc"]) == 2
    assert "no SRE layer named fc" in capsys.readouterr().err


def test_ring_radii():
    from sreconv import SREConv2d

    radii = ring_radii(SREConv2d(1, 1, 5))
    assert radii[0] == 0 and np.all(np.diff(radii) > 0) and radii[-1] < 2.5
    assert radii[1] == pytest.approx((4 * 1 + 4 * np.sqrt(2)) / 8)
