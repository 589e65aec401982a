"""The README's first command runs the demo: check it prints exact equivariance and real savings."""

import re

import pytest

from sreconv import demo


def _angle_errors(out, name):
    line = re.search(rf"^\s*{name}\s*:(.*)$", out, flags=re.M).group(1)
    return [float(v) for v in re.findall(r"deg ([\d.]+)", line)]


@pytest.mark.slow
def test_demo_reports_exactness_and_savings(capsys):
    demo.main()
    out = capsys.readouterr().out
    sre_errors = [float(v) for v in re.findall(r"SRE ([\d.e+-]+) over", out)]
    assert len(sre_errors) == 4 and max(sre_errors) < 1e-12
    dense_errors = [float(v) for v in re.findall(r"nn.Conv2d ([\d.e+-]+)\n", out)]
    assert len(dense_errors) == 3 and min(dense_errors) > 0.1
    hard, gaussian = _angle_errors(out, "hard"), _angle_errors(out, "gaussian")
    assert len(hard) == len(gaussian) == 3
    assert all(g < h < 0.05 for g, h in zip(gaussian, hard))
    assert _angle_errors(out, "nn.Conv2d")[0] > 10 * max(hard)
    ratios = [float(v) for v in re.findall(r"\(([\d.]+)x fewer\)", out)]
    assert ratios == sorted(ratios) and ratios[0] > 4
