"""The comparison's outputs: the main table, per-class accuracy, targets, the plot, report.md."""

from __future__ import annotations

import json
import os
import statistics
from typing import Any

import numpy as np

from .targets import format_targets, run_groups

__all__ = ["COLUMNS", "format_table", "format_per_class", "plot_results", "write_outputs"]

#: ``(run key, column title, format)`` of the main table.
COLUMNS = [("params", "params", "{:.0f}"), ("train_s_per_epoch", "train s/epoch", "{:.1f}"),
           ("eval_images_per_s", "eval img/s", "{:.0f}"), ("upright_acc", "upright", "{:.3f}"),
           ("mean_rot_acc", "mean 36 angles", "{:.3f}"), ("worst_rot_acc", "worst angle", "{:.3f}"),
           ("acc_45", "45°", "{:.3f}"), ("mean_rot_acc_bicubic", "mean 36, bicubic", "{:.3f}"),
           ("acc_45_bicubic", "45°, bicubic", "{:.3f}"), ("mean_flip_acc", "flips", "{:.3f}"),
           ("gap", "gap", "{:.3f}"), ("d4_logit_deviation", "D4 logit dev.", "{:.1e}")]
_NO_STD = ("params", "d4_logit_deviation")


def _cell(runs: list[dict[str, Any]], key: str, fmt: str) -> str:
    values = [float(r[key]) for r in runs if key in r]
    if not values:
        return "–"
    if key == "d4_logit_deviation":
        return fmt.format(max(values))  # the worst seed
    text = fmt.format(statistics.mean(values))
    if len(values) > 1 and key not in _NO_STD:
        text += " ± " + fmt.format(statistics.stdev(values))
    return text


def format_table(results: dict[str, Any]) -> str:
    """Markdown table of the runs in ``results`` (mean ± std over seeds when there are several).

    Example:
        >>> run = {key: 0.5 for key, _, _ in COLUMNS}
        >>> format_table({"runs": [dict(run, label="a")], "skipped": {}}).splitlines()[2][:29]
        '| a | 1 | 0 | 0.5 | 0 | 0.500'
    """
    header = "| model | seeds | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    for label, runs in run_groups(results).items():
        lines.append(f"| {label} | {len(runs)} | " + " | ".join(_cell(runs, k, f) for k, _, f in COLUMNS) + " |")
    for label, reason in results.get("skipped", {}).items():
        lines.append(f"| {label} | 0 | skipped: {reason} |" + " |" * (len(COLUMNS) - 1))
    return "\n".join(lines)


def format_per_class(results: dict[str, Any]) -> str:
    """Markdown table of per-class accuracy, ``upright / mean over the angles`` (mean over seeds)."""
    groups = {k: v for k, v in run_groups(results).items() if "per_class_upright" in v[0]}
    if not groups:
        return ""
    first = next(iter(groups.values()))[0]
    names = next((r["label_names"] for r in results["runs"] if r.get("label_names")),
                 [str(c) for c in range(len(first["per_class_upright"]))])
    lines = ["| model | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for label, runs in groups.items():
        upright = np.nanmean([r["per_class_upright"] for r in runs], 0)
        rotated = np.nanmean([r["per_class_mean_rot"] for r in runs], 0)
        lines.append(f"| {label} | " + " | ".join(f"{u:.2f} / {m:.2f}" for u, m in zip(upright, rotated)) + " |")
    return "\n".join(lines)


def plot_results(results: dict[str, Any], path: str) -> str:
    """Accuracy vs rotation angle (bilinear views; mean over seeds, ± std band) for every model; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    for label, runs in run_groups(results).items():
        angles = runs[0]["angles"]
        acc = np.array([r["rotation_acc"] for r in runs])
        mean, std = acc.mean(0), acc.std(0)
        ax.plot(angles, mean, marker=".", label=f"{label} ({runs[0]['params'] / 1e3:.0f}k)")
        if len(runs) > 1:
            ax.fill_between(angles, mean - std, mean + std, alpha=0.2)
    budget = results["budget"]
    ax.set_xlabel("rotation of the test images (degrees, bilinear)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{budget['dataset']}: {budget['limit_train']} train imgs, {budget['epochs']} epochs, "
                 f"{len(budget['seeds'])} seed(s)", fontsize=10)
    ax.set_xticks(range(0, 361, 45))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))  # outside: curves overlap at 0°
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(results: dict[str, Any], out_dir: str, plot: bool = True) -> None:
    """Writes ``results.json``, ``report.md`` and (with ``plot``) ``accuracy_vs_angle.png`` into ``out_dir``."""
    from sreconv.engine.checkpoint import atomic_write_text

    os.makedirs(out_dir, exist_ok=True)
    atomic_write_text(json.dumps(results, indent=1), os.path.join(out_dir, "results.json"))
    budget = results["budget"]
    md = [f"Command: `{results['command']}`", "", f"Machine: {results['machine']}", f"Date: {results['date']}", "",
          "Budget (identical for every model): " + ", ".join(f"{k}={v}" for k, v in budget.items()), "",
          format_table(results), ""]
    for title, text in (("Targets", format_targets(results)),
                        ("Per-class accuracy, upright / mean over the angles", format_per_class(results))):
        if text:
            md += [f"## {title}", "", text, ""]
    atomic_write_text("\n".join(md), os.path.join(out_dir, "report.md"))
    if plot and results["runs"]:
        plot_results(results, os.path.join(out_dir, "accuracy_vs_angle.png"))
