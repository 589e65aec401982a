"""The robustness targets a comparison checks for every sreconv model, against the peer rows of the same run.

* robust (models trained with rotation augmentation): mean accuracy over the angles at least e2cnn_rotaug's
  + 1 point, worst angle at least e2cnn_rotaug's, training time per epoch at most e2cnn_rotaug's, mean above
  gmr_rotaug's;
* upright (models trained upright): upright accuracy at least e2cnn's and above gmr's;
* every model: exact at quarter turns and flips, at most 0.4x the plain CNN's parameters;
* stretch: upright within 3 points of the plain CNN *and* mean over the angles >= 0.97 x upright.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Target", "TARGETS", "REFERENCES", "check_targets", "format_targets", "run_groups", "is_rotaug"]

#: Rows the targets compare against (absent rows make the dependent targets ``n/a``).
REFERENCES = ("cnn", "e2cnn", "e2cnn_rotaug", "gmr", "gmr_rotaug")

Check = Callable[[dict[str, Any], dict[str, dict[str, Any]]], "tuple[float, bool] | None"]


@dataclass(frozen=True)
class Target:
    """One target: its column title, value format, the models it applies to and its check.

    ``check(model, refs)`` takes mean-over-seeds summaries (``refs``: reference label -> summary) and returns
    ``(value, holds)``, or None when a reference row is missing.
    """

    name: str
    fmt: str
    applies_to: str  # "any", "rotaug" or "upright"
    check: Check


def _vs(ref: str, key: str, margin: float = 0.0, strict: bool = False) -> Check:
    def check(m: dict[str, Any], refs: dict[str, dict[str, Any]]) -> tuple[float, bool] | None:
        if ref not in refs:
            return None
        diff = m[key] - refs[ref][key]
        return diff, bool(diff > margin if strict else diff >= margin - 1e-12)
    return check


def _time_vs(ref: str) -> Check:
    def check(m: dict[str, Any], refs: dict[str, dict[str, Any]]) -> tuple[float, bool] | None:
        if ref not in refs:
            return None
        ratio = m["train_s_per_epoch"] / refs[ref]["train_s_per_epoch"]
        return ratio, bool(ratio <= 1.0)
    return check


def _params(m: dict[str, Any], refs: dict[str, dict[str, Any]]) -> tuple[float, bool] | None:
    if "cnn" not in refs:
        return None
    ratio = m["params"] / refs["cnn"]["params"]
    return ratio, bool(ratio <= 0.4)


def _stretch_upright(m: dict[str, Any], refs: dict[str, dict[str, Any]]) -> tuple[float, bool] | None:
    if "cnn" not in refs:
        return None
    diff = m["upright_acc"] - refs["cnn"]["upright_acc"]
    return diff, bool(diff >= -0.03)


TARGETS: tuple[Target, ...] = (
    Target("exact at 90°·k and flips", "{:.1e}", "any", lambda m, refs: (m["d4_logit_deviation"], m["exact"])),
    Target("params ≤ 0.4 × CNN", "{:.2f}", "any", _params),
    Target("mean rot. ≥ e2cnn_rotaug + 0.01", "{:+.3f}", "rotaug", _vs("e2cnn_rotaug", "mean_rot_acc", 0.01)),
    Target("worst ≥ e2cnn_rotaug", "{:+.3f}", "rotaug", _vs("e2cnn_rotaug", "worst_rot_acc")),
    Target("s/epoch ≤ e2cnn_rotaug", "{:.2f}×", "rotaug", _time_vs("e2cnn_rotaug")),
    Target("mean rot. > gmr_rotaug", "{:+.3f}", "rotaug", _vs("gmr_rotaug", "mean_rot_acc", strict=True)),
    Target("upright ≥ e2cnn", "{:+.3f}", "upright", _vs("e2cnn", "upright_acc")),
    Target("upright > gmr", "{:+.3f}", "upright", _vs("gmr", "upright_acc", strict=True)),
    Target("stretch: upright ≥ CNN − 0.03", "{:+.3f}", "any", _stretch_upright),
    Target("stretch: mean rot. ≥ 0.97 × upright", "{:.2f}", "any", lambda m, refs: (
        m["mean_rot_acc"] / m["upright_acc"], bool(m["mean_rot_acc"] >= 0.97 * m["upright_acc"]))),
)


def is_rotaug(run: dict[str, Any]) -> bool:
    """Whether a run was trained with rotation augmentation (older files: from its label)."""
    if "train_rotation" in run:
        return run["train_rotation"] is not None
    return str(run["label"]).endswith("_rotaug")


def run_groups(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Runs grouped by label, in first-appearance order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in results["runs"]:
        groups.setdefault(run["label"], []).append(run)
    return groups


def _means(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("upright_acc", "mean_rot_acc", "worst_rot_acc", "params", "train_s_per_epoch")
    out: dict[str, Any] = {key: float(np.mean([r[key] for r in runs])) for key in keys}
    out["d4_logit_deviation"] = max(r["d4_logit_deviation"] for r in runs)
    # Exact: in every seed the quarter turns and both flips score exactly as upright.
    out["exact"] = all(len(set(r["acc_quarter_turns"])) == 1 and r["d4_logit_deviation"] < 1e-4 and
                       r["flip_acc"]["horizontal"] == r["flip_acc"]["vertical"] == r["upright_acc"] for r in runs)
    return out


def check_targets(results: dict[str, Any]) -> list[tuple[str, list[tuple[float, bool] | None | str]]]:
    """``[(label, [cell per TARGETS entry])]`` for every sreconv model (``model`` starting with ``sre_``).

    A cell is ``(value, holds)``, ``None`` when a reference row is missing, or ``"-"`` when the target does not
    apply (robust targets to upright-trained models and the other way round).
    """
    groups = run_groups(results)
    refs = {label: _means(groups[label]) for label in REFERENCES if label in groups}
    rows = []
    for label, runs in groups.items():
        if not str(runs[0]["model"]).startswith("sre_"):
            continue
        kind = "rotaug" if is_rotaug(runs[0]) else "upright"
        means = _means(runs)
        cells: list[tuple[float, bool] | None | str] = [
            target.check(means, refs) if target.applies_to in ("any", kind) else "-" for target in TARGETS]
        rows.append((label, cells))
    return rows


def format_targets(results: dict[str, Any]) -> str:
    """Markdown table: which :data:`TARGETS` hold for which sreconv model (``n/a``: reference row missing)."""
    rows = check_targets(results)
    if not rows:
        return ""
    lines = ["| model | " + " | ".join(t.name for t in TARGETS) + " |", "|" + "---|" * (len(TARGETS) + 1)]
    for label, cells in rows:
        text = []
        for target, cell in zip(TARGETS, cells):
            if isinstance(cell, str):
                text.append(cell)
            elif cell is None:
                text.append("n/a")
            else:
                text.append(("yes" if cell[1] else "**no**") + " (" + target.fmt.format(cell[0]) + ")")
        lines.append(f"| {label} | " + " | ".join(text) + " |")
    return "\n".join(lines)
