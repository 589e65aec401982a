"""Accuracy (and AUC) versus rotation angle from ``results.json`` files, on polar and Cartesian axes, with
flip results as bars.

``save_run_plot(results, out_dir)`` is what ``sreconv train`` calls at the end of a run (``rotation.png``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from sreconv.engine.train import Callback

from .run import VizError, read_results

__all__ = ["rotation_curves", "run_labels", "plot_results", "save_run_plot", "PLOT_NAME"]

#: File written into a training output folder.
PLOT_NAME = "rotation.png"


def rotation_curves(results: dict[str, Any]) -> list[tuple[str, dict[str, list]]]:
    """``[(suffix, block)]``: one rotation block for 2D results, one per axis (suffix ``" (x)"``) for 3D."""
    rot = results.get("rotation")
    if not isinstance(rot, dict) or not rot:
        return []
    if "angles" in rot:
        return [("", rot)]
    return [
        (f" ({axis})", block) for axis, block in rot.items() if isinstance(block, dict) and "angles" in block
    ]


def run_labels(paths: Sequence[str], results: Sequence[dict[str, Any]]) -> list[str]:
    """Legend names: the run folder's name (``results.json`` inside a folder), else ``model on dataset``;
    duplicates get the file's path to tell them apart."""
    labels = []
    for path, res in zip(paths, results):
        path = os.path.normpath(path)
        if os.path.isdir(path) or os.path.basename(path) == "results.json":
            folder = path if os.path.isdir(path) else os.path.dirname(path)
            labels.append(os.path.basename(os.path.abspath(folder)))
        else:
            labels.append(f"{res.get('model', '?')} on {res.get('dataset', '?')}")
    duplicated = {label for label in labels if labels.count(label) > 1}
    return [f"{label} [{path}]" if label in duplicated else label for label, path in zip(labels, paths)]


def _has(values: Sequence[float]) -> bool:
    return any(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in values)


def plot_results(
    results: Sequence[dict[str, Any]],
    labels: Sequence[str],
    path: str,
    title: str | None = None,
    dpi: int = 110,
) -> str:
    """Writes a PNG: accuracy vs angle (polar and Cartesian), AUC vs angle, flip accuracy as bars.

    Panels without data are left out (AUC when all NaN, flips when no run has them).

    Raises:
        VizError: no result holds a rotation sweep or flips.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [
        (label + suffix, block)
        for res, label in zip(results, labels)
        for suffix, block in rotation_curves(res)
    ]
    flips = [(label, res["flip"]) for res, label in zip(results, labels) if isinstance(res.get("flip"), dict)]
    if not curves and not flips:
        raise VizError(
            "no rotation or flip results to plot (train with --eval-rot/--eval-flip or use sreconv eval)"
        )
    show_auc = any(_has(block.get("auc", [])) for _, block in curves)
    panels = (["polar", "acc"] + (["auc"] if show_auc else []) if curves else []) + (
        ["flip"] if flips else []
    )
    fig = plt.figure(figsize=(4.3 * len(panels), 4.2), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles = []
    for k, panel in enumerate(panels):
        if panel == "polar":
            ax = fig.add_subplot(1, len(panels), k + 1, projection="polar")
            for i, (label, block) in enumerate(curves):
                a = np.asarray(block["angles"], dtype=float)
                acc = np.asarray(block["acc"], dtype=float)
                order = np.argsort(a % 360)
                a, acc = a[order] % 360, acc[order]
                # Close the loop so the curve goes all the way round.
                a, acc = np.append(a, a[0] + 360), np.append(acc, acc[0])
                (h,) = ax.plot(np.deg2rad(a), acc, marker=".", color=colors[i % len(colors)], label=label)
                handles.append(h)
            ax.set_ylim(0, 1)
            ax.set_title("accuracy vs rotation", fontsize=10)
        elif panel in ("acc", "auc"):
            ax = fig.add_subplot(1, len(panels), k + 1)
            for i, (label, block) in enumerate(curves):
                ax.plot(block["angles"], block[panel], marker=".", color=colors[i % len(colors)], label=label)
            ax.set_xlabel("rotation angle (degrees, counter-clockwise)")
            ax.set_ylabel("test accuracy" if panel == "acc" else "test AUC (macro one-vs-rest)")
            ax.set_xticks(np.arange(0, 361, 45))
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            ax.set_title(f"{'accuracy' if panel == 'acc' else 'AUC'} vs angle", fontsize=10)
        else:
            ax = fig.add_subplot(1, len(panels), k + 1)
            modes = list(dict.fromkeys(m for _, f in flips for m in f))
            width = 0.8 / len(flips)
            for i, (label, f) in enumerate(flips):
                x = np.arange(len(modes)) + (i - (len(flips) - 1) / 2) * width
                acc = [f.get(m, {}).get("acc", np.nan) for m in modes]
                bars = ax.bar(x, acc, width=width, label=label, color=colors[i % len(colors)])
                ax.bar_label(bars, fmt="%.3f", fontsize=7, rotation=90, padding=2)
            ax.set_xticks(np.arange(len(modes)), modes)
            ax.set_ylim(0, 1.15)
            ax.set_ylabel("test accuracy")
            ax.set_title("flips", fontsize=10)
            if not curves:
                ax.legend(fontsize=8)
    if curves:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_files(
    paths: Sequence[str], out: str, labels: Sequence[str] | None = None, title: str | None = None
) -> str:
    """:func:`plot_results` for ``results.json`` files or run folders."""
    results = [read_results(p) for p in paths]
    names = list(labels) if labels else run_labels(paths, results)
    if len(names) != len(results):
        raise VizError(f"got {len(names)} labels for {len(results)} results files")
    return plot_results(results, names, out, title=title)


def save_run_plot(results: dict[str, Any], out_dir: str) -> str | None:
    """Writes ``<out_dir>/rotation.png`` for a finished run; None when there is nothing to plot.

    Called by ``sreconv train``; the caller guards against a missing matplotlib.
    """
    if not rotation_curves(results) and not isinstance(results.get("flip"), dict):
        return None
    label = f"{results.get('model', '?')} on {results.get('dataset', '?')}"
    return plot_results(
        [results],
        [label],
        os.path.join(out_dir, PLOT_NAME),
        title=f"{os.path.basename(os.path.normpath(out_dir))}: {label}",
    )


class RotationPlot(Callback):
    """Training callback: draws ``rotation.png`` into the run folder when ``sreconv train`` ends."""

    def on_run_end(self, results: dict[str, Any], out_dir: str) -> None:
        save_run_plot_safely(results, out_dir)


def save_run_plot_safely(results: dict[str, Any], out_dir: str) -> str | None:
    """:func:`save_run_plot` for the end of ``sreconv train``: prints where the plot went, and never fails the
    run (without matplotlib, or on any plotting error, it prints a note and returns None)."""
    try:
        path = save_run_plot(results, out_dir)
    except ImportError:
        return None  # matplotlib is optional for training
    except Exception as err:  # noqa: BLE001 - a picture must not cost a finished training run
        print(f"note: {PLOT_NAME} not written ({type(err).__name__}: {err})", flush=True)
        return None
    if path:
        print(f"accuracy-vs-angle plot in {path}", flush=True)
    return path
