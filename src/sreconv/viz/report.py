"""A self-contained HTML page comparing runs: configuration, metrics, accuracy per angle, flips, the
accuracy-vs-angle plot and a CAM grid per run. Every image is embedded as a ``data:`` URI, so the file can be
mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import math
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .plots import plot_results, rotation_curves
from .run import VizError, read_results

__all__ = ["build_report", "png_data_uri"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1300px;
color:#222}
h1{font-size:22px} h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left}
img{max-width:100%;border:1px solid #eee}
pre{background:#f7f7f7;padding:8px;font-size:12px;overflow:auto;max-height:360px}
.note{color:#666;font-size:12px}
"""


def png_data_uri(path: str) -> str:
    """``data:image/png;base64,...`` of a PNG file."""
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return html.escape(str(v))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    out = [
        "<table><tr>"
        + "".join(f"<th class='l'>{h}</th>" if i < left else f"<th>{h}</th>" for i, h in enumerate(header))
        + "</tr>"
    ]
    for row in rows:
        out.append(
            "<tr>"
            + "".join(f"<td class='l'>{c}</td>" if i < left else f"<td>{c}</td>" for i, c in enumerate(row))
            + "</tr>"
        )
    return "\n".join(out) + "</table>"


def _metrics_table(names: Sequence[str], results: Sequence[dict[str, Any] | None]) -> str:
    header = [
        "run",
        "model",
        "dataset",
        "params",
        "weights",
        "val acc",
        "test acc",
        "test AUC",
        "bal. acc",
        "F1",
        "rot. acc mean",
        "rot. acc min",
        "time (s)",
    ]
    rows = []
    for name, res in zip(names, results):
        res = res or {}
        test, val = res.get("test", {}) or {}, res.get("val", {}) or {}
        accs = [a for _, block in rotation_curves(res) for a in block.get("acc", [])]
        rows.append(
            [
                html.escape(name),
                _fmt(res.get("model")),
                _fmt(res.get("dataset")),
                _fmt(res.get("params")),
                _fmt(res.get("weights")),
                _fmt(val.get("acc")),
                _fmt(test.get("acc")),
                _fmt(test.get("auc")),
                _fmt(test.get("balanced_acc")),
                _fmt(test.get("f1")),
                _fmt(float(np.mean(accs)) if accs else None),
                _fmt(float(np.min(accs)) if accs else None),
                _fmt(res.get("time_s"), 1),
            ]
        )
    return _table(header, rows, left=3)


def _angle_table(names: Sequence[str], results: Sequence[dict[str, Any] | None]) -> str:
    columns, data = [], []
    for name, res in zip(names, results):
        for suffix, block in rotation_curves(res or {}):
            columns.append(html.escape(name + suffix))
            data.append(
                {
                    float(a): (acc, auc)
                    for a, acc, auc in zip(
                        block["angles"], block["acc"], block.get("auc", [None] * len(block["acc"])), strict=False
                    )
                }
            )
    if not columns:
        return (
            "<p class='note'>No rotation sweep in these runs (train with --eval-rot or run sreconv eval).</p>"
        )
    angles = sorted({a for d in data for a in d})
    rows = [
        [f"{a:g}°"]
        + [f"{_fmt(d[a][0])} <span class='note'>({_fmt(d[a][1], 3)})</span>" if a in d else "–" for d in data]
        for a in angles
    ]
    return "<p class='note'>Test accuracy (AUC) per rotation angle.</p>" + _table(["angle"] + columns, rows)


def _flip_table(names: Sequence[str], results: Sequence[dict[str, Any] | None]) -> str:
    runs = [(n, r["flip"]) for n, r in zip(names, results) if r and isinstance(r.get("flip"), dict)]
    if not runs:
        return "<p class='note'>No flip results.</p>"
    modes = list(dict.fromkeys(m for _, f in runs for m in f))
    rows = [[html.escape(m)] + [_fmt(f.get(m, {}).get("acc")) for _, f in runs] for m in modes]
    return _table(["flip"] + [html.escape(n) for n, _ in runs], rows)


def build_report(
    run_dirs: Sequence[str],
    out: str,
    *,
    cam_index: int | None = 0,
    cam_angles: Sequence[float] = (0, 45, 90, 180, 270),
    method: str = "gradcam",
    title: str = "sreconv run report",
) -> str:
    """Writes the HTML report of ``run_dirs`` to ``out``; returns ``out``.

    Args:
        run_dirs: ``sreconv train`` output folders.
        out: HTML file to write.
        cam_index: test image for the CAM grids (None: no CAMs, e.g. without grad-cam).
        cam_angles: angles of the CAM grids.
        method: CAM method (see :data:`sreconv.viz.cam.CAM_METHODS`).
        title: page title.

    Raises:
        VizError: a folder is missing, or none of them holds a results.json or checkpoint.
    """
    for d in run_dirs:
        if not os.path.isdir(d):
            raise VizError(f"run folder {d} not found")
    names = [os.path.basename(os.path.abspath(d)) for d in run_dirs]
    dup = {n for n in names if names.count(n) > 1}
    names = [f"{n} [{d}]" if n in dup else n for n, d in zip(names, run_dirs)]
    results = [read_results(d) if os.path.isfile(os.path.join(d, "results.json")) else None for d in run_dirs]
    parts: list[str] = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>Generated {time.strftime('%Y-%m-%d %H:%M')} by <code>sreconv report</code> "
        f"from {len(run_dirs)} run(s).</p>",
        "<h2>Metrics (test set unless noted)</h2>",
        _metrics_table(names, results),
    ]
    with tempfile.TemporaryDirectory(prefix="sreconv-report-") as tmp:
        with_data = [(r, n) for r, n in zip(results, names) if r and (rotation_curves(r) or r.get("flip"))]
        if with_data:
            plot = plot_results(
                [r for r, _ in with_data], [n for _, n in with_data], os.path.join(tmp, "plot.png")
            )
            parts += [
                "<h2>Accuracy vs rotation angle</h2>",
                f"<img alt='accuracy vs angle' src='{png_data_uri(plot)}'>",
            ]
        parts += [
            "<h2>Accuracy per angle</h2>",
            _angle_table(names, results),
            "<h2>Flips</h2>",
            _flip_table(names, results),
        ]
        if cam_index is not None:
            from .cam import cam_sweep, plot_cam_grid
            from .run import load_run

            parts.append(f"<h2>Grad-CAM under rotation (test image {cam_index})</h2>")
            for d, name in zip(run_dirs, names):
                run = load_run(d)
                x, y = run.sample(cam_index)
                sweep = cam_sweep(
                    run.model,
                    x,
                    cam_angles,
                    method=method,
                    label=_label(y),
                    class_names=run.label_names(),
                    title=name,
                    multi_label=run.test_set().task.startswith("multi-label"),
                )
                png = plot_cam_grid([sweep], os.path.join(tmp, f"cam{len(parts)}.png"))
                parts += [
                    f"<img alt='CAM grid of {html.escape(name)}' src='{png_data_uri(png)}'>",
                    f"<pre>{html.escape(sweep.table())}</pre>",
                ]
    parts.append("<h2>Configurations</h2>")
    for d, name in zip(run_dirs, names):
        path = os.path.join(d, "config.yaml")
        text = open(path).read() if os.path.isfile(path) else "(no config.yaml)"
        parts.append(
            f"<details><summary>{html.escape(name)}</summary><pre>{html.escape(text)}</pre></details>"
        )
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(page)
    return out


def _label(y) -> int | None:
    """The class index of a label tensor, None for multi-label targets."""
    try:
        return int(y) if getattr(y, "numel", lambda: 1)() == 1 else None
    except (TypeError, ValueError):
        return None
