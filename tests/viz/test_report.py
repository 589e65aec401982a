"""sreconv report: one self-contained HTML page, checked in Python and in a real headless chromium."""

import base64
import os
import re
import shutil
import subprocess

import imageio.v3 as iio
import pytest

from sreconv.cli import main

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
# This machine has no network: keep chromium from trying to reach any service.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
# Appended to a copy of the page: after load, count the images that did not decode.
IMG_CHECK = (
    "<script>window.addEventListener('load', function () {var imgs = Array.from(document.images);"
    "var bad = imgs.filter(function (i) {return !(i.complete && i.naturalWidth > 0);}).length;"
    "var d = document.createElement('pre'); d.id = 'img-check';"
    "d.textContent = 'IMGCHECK total=' + imgs.length + ' broken=' + bad; document.body.appendChild(d);"
    "});</script>"
)


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory):
    """A report on the tiny run and a copy of it (two columns to compare)."""
    tmp = tmp_path_factory.mktemp("report")
    copy = tmp / "copy_run"
    shutil.copytree(tiny_run, copy)
    out = tmp / "report.html"
    assert (
        main(["report", tiny_run, str(copy), "-o", str(out), "--index", "1", "--angles", "0", "90", "180"])
        == 0
    )
    return out


@pytest.mark.slow
def test_report_self_contained(report):
    page = report.read_text()
    for section in (
        "Metrics",
        "Accuracy vs rotation angle",
        "Accuracy per angle",
        "Flips",
        "Grad-CAM",
        "Configurations",
        "tiny_sre",
        "copy_run",
    ):
        assert section in page
    srcs = re.findall(r"<img[^>]*src='([^']*)'", page)
    assert len(srcs) == 3  # the plot and one CAM grid per run
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        image = iio.imread(base64.b64decode(src.split(",", 1)[1]), extension=".png")
        assert image.shape[0] > 100 and image[..., :3].std() > 10
    assert "http://" not in page and "https://" not in page
    assert "multiples of 90°: " in page


def _chromium(tmp_path, *args):
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run does)"
)
@pytest.mark.slow
def test_report_in_headless_chromium(report, tmp_path):
    checked = tmp_path / "checked.html"
    checked.write_text(report.read_text().replace("</body>", IMG_CHECK + "</body>"))
    r = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", checked.as_uri())
    match = re.search(r"IMGCHECK total=(\d+) broken=(\d+)", r.stdout)
    assert match, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert int(match.group(1)) == 3 and int(match.group(2)) == 0
    shot = tmp_path / "shot.png"
    r = _chromium(
        tmp_path, "--window-size=1280,1600", "--hide-scrollbars", f"--screenshot={shot}", report.as_uri()
    )
    assert shot.exists(), r.stderr[-2000:]
    image = iio.imread(shot)
    assert image.shape[:2] == (1600, 1280)
    assert image[..., :3].std() > 20 and (image[..., :3] < 128).mean() > 0.01  # text and pictures, not blank


def test_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"sreconv report: error: run folder {tmp_path / 'missing'} not found"
