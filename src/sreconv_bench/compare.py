"""``sreconv compare``: the rotation-robustness benchmark, one command, one fixed budget.

Trains several models under the same budget (epochs, batch, optimizer, seed, train-set size) and the same
data pipeline, then scores every one on the same test images upright, rotated by 0, 10, ..., 350 degrees
and flipped, and writes ``results.json``, ``report.md`` (one table, mean +- std over seeds) and
``accuracy_vs_angle.png`` into ``--out``.

Default entries (``--models``):

=======================  ====================================================================================
``cnn``                  plain ResNet-18 for small images
``cnn_rotaug``           the same with uniform random-rotation training augmentation
``sre_hard``             SRE-ResNet-18, hard rings
``sre_gauss``            SRE-ResNet-18, gaussian rings
``sre_gauss_rotaug``     ``sre_gauss`` with random-rotation training augmentation
``sre_d4stage1_rotaug``  SRE-ResNet-18 whose stem + stage 1 are plain and symmetrised over D4
                         (:mod:`sreconv.models.lifted`), gaussian rings, random-rotation training augmentation
``e2cnn``                e2cnn D4 regular-field ResNet-18 (skipped when e2cnn is not installed)
``e2cnn_rotaug``         ``e2cnn`` with random-rotation training augmentation
=======================  ====================================================================================

Not in the default set: ``sre_d4stage1`` (the same trained upright) and ``sre_d4stem`` (a D4 lifting stem only).

Any registry name (``sreconv.list_models()``) is accepted as an entry too. Everything reuses the engine:
data from :func:`sreconv.data.build_dataset` with :func:`~sreconv.data.train_transform_2d` /
:func:`~sreconv.data.eval_transform_2d`, training with :func:`sreconv.engine.fit`, views with
:func:`sreconv.data.rotate` / :func:`sreconv.data.flip` through :func:`sreconv.engine.predict_views`, metrics
with :func:`sreconv.engine.compute_metrics`. Rotated views fill the background with the normalised black
(``normalized_fill()``), as ``sreconv train --eval-rot`` does.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["ENTRIES", "Entry", "TARGETS", "run_compare", "build_compare_parser", "compare_command", "format_table",
           "format_per_class", "format_targets", "check_targets", "plot_results"]


@dataclass(frozen=True)
class Entry:
    """One compared model: a registry name, extra factory kwargs and the training rotation augmentation."""

    label: str
    model: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    rotation_aug: str | None = None
    description: str = ""
    optional_module: str | None = None
    factory: str | None = None  # "module:function" used instead of the registry (optional peers)


ENTRIES: dict[str, Entry] = {e.label: e for e in [
    Entry("cnn", "plain_resnet18", description="plain ResNet-18"),
    Entry("cnn_rotaug", "plain_resnet18", rotation_aug="any", description="ResNet-18 + random-rotation augmentation"),
    Entry("sre_hard", "sre_resnet18", {"ring_basis": "hard"}, description="SRE-ResNet-18, hard rings"),
    Entry("sre_gauss", "sre_resnet18", {"ring_basis": "gaussian"}, description="SRE-ResNet-18, gaussian rings"),
    Entry("sre_d4stem", "sre_resnet18_d4stem", description="SRE-ResNet-18 + D4 lifting stem (max over group)"),
    Entry("sre_gauss_rotaug", "sre_resnet18", {"ring_basis": "gaussian"}, rotation_aug="any",
          description="SRE-ResNet-18, gaussian rings + random-rotation augmentation"),
    Entry("sre_d4stage1", "sre_resnet18_d4stage1", {"ring_basis": "gaussian"},
          description="SRE-ResNet-18, plain stem+stage 1 symmetrised over D4, gaussian rings"),
    Entry("sre_d4stage1_rotaug", "sre_resnet18_d4stage1", {"ring_basis": "gaussian"}, rotation_aug="any",
          description="sre_d4stage1 + random-rotation augmentation"),
    Entry("e2cnn", "e2cnn_d4_resnet18", description="e2cnn D4 regular-field ResNet-18", optional_module="e2cnn",
          factory="sreconv_bench.peers.e2cnn:e2cnn_d4_resnet18"),
    Entry("e2cnn_rotaug", "e2cnn_d4_resnet18", rotation_aug="any", optional_module="e2cnn",
          description="e2cnn D4 regular-field ResNet-18 + random-rotation augmentation",
          factory="sreconv_bench.peers.e2cnn:e2cnn_d4_resnet18"),
]}
# ~46 min for 3 seeds on 2 CPU cores; sre_d4stage1 (trained upright) adds 16 min.
DEFAULT_MODELS = ["cnn", "cnn_rotaug", "sre_hard", "sre_gauss", "sre_gauss_rotaug", "sre_d4stage1_rotaug", "e2cnn",
                  "e2cnn_rotaug"]


def _entry(label: str) -> Entry:
    if label in ENTRIES:
        return ENTRIES[label]
    from sreconv.models.registry import model_info

    info = model_info(label)  # raises a ValueError listing the names
    return Entry(label, info.name, description=info.description)


def _available(entry: Entry) -> bool:
    if entry.optional_module is None:
        return True
    import importlib.util

    return importlib.util.find_spec(entry.optional_module) is not None


# ------------------------------------------------------------------------------------------------ data


def _datasets(args: argparse.Namespace, rotation_aug: str | None):
    from sreconv.data import build_dataset, eval_transform_2d, train_transform_2d
    from sreconv.data.medmnist import FLAGS_2D
    from sreconv.engine.runner import LimitedView

    name = args.dataset.lower()
    common: dict[str, Any] = dict(data_root=args.data_root, as_rgb=False)
    if name in FLAGS_2D:
        common["size"] = args.medmnist_size
    else:
        common["seed"] = 0
    test = build_dataset(name, "test", **common)
    if test.spatial_dims != 2:
        raise ValueError(f"sreconv compare is 2D only; {name!r} is {test.spatial_dims}D")
    size = args.image_size or test.image_size[-1]
    test.transform = eval_transform_2d(size)
    train = build_dataset(name, "train", transform=train_transform_2d(
        size, moco=False, translate=0.0, rotation=rotation_aug), **common)
    if args.limit_train:
        train = LimitedView(train, args.limit_train, seed=0)
    if args.limit_test:
        test = LimitedView(test, args.limit_test, seed=0)
    return train, test, size


# ------------------------------------------------------------------------------------------------- run


def _build(entry: Entry, args: argparse.Namespace, dataset) -> torch.nn.Module:
    from sreconv.models.registry import create_model, model_info

    kwargs: dict[str, Any] = dict(num_classes=dataset.n_classes, in_channels=dataset.n_channels,
                                  inplanes=args.width)
    if entry.factory is not None:
        import importlib

        module, func = entry.factory.split(":")
        return getattr(importlib.import_module(module), func)(**kwargs, **entry.kwargs)
    info = model_info(entry.model)
    if info.invariant and entry.model.startswith("sre_"):
        kwargs.update(sre_conv_size=list(args.sre_conv_size), skip_first_maxpool=True)
    kwargs.update(entry.kwargs)
    return create_model(entry.model, **kwargs)


def _acc(logits: torch.Tensor, targets: torch.Tensor, task: str) -> float:
    from sreconv.engine.metrics import compute_metrics, scores_from_logits

    return float(compute_metrics(targets.numpy(), scores_from_logits(logits, task).numpy(), task)["acc"])


def _per_class(logits: torch.Tensor, targets: torch.Tensor) -> list[float]:
    pred, t = logits.argmax(1), targets.reshape(-1)
    return [float((pred[t == c] == c).float().mean()) if bool((t == c).any()) else float("nan")
            for c in range(logits.shape[1])]


def run_one(entry: Entry, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Trains ``entry`` with ``seed`` under the budget of ``args`` and scores it on every view."""
    from sreconv.data import flip, normalized_fill, rotate
    from sreconv.engine.config import TrainConfig
    from sreconv.engine.evaluate import infer_task, predict_views
    from sreconv.engine.runner import count_params, seed_everything
    from sreconv.engine.train import fit

    train, test, size = _datasets(args, entry.rotation_aug)
    task = infer_task(test, None)
    seed_everything(seed)
    model = _build(entry, args, test)
    config = TrainConfig(dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         optimizer=args.optimizer, momentum=0.9, weight_decay=args.weight_decay, schedule="cos",
                         seed=seed, progress=False, device="cpu" if args.device == "cpu" else args.device)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    model.to(device)
    result = fit(model, train, None, config, device=device, verbose=not args.quiet)
    epoch_times = [h["time_s"] for h in result["history"]]

    angles = [float(a) for a in np.arange(0, 360, args.angle_step)]
    fill = normalized_fill()
    views = [lambda x, a=a: rotate(x, a, fill=fill) for a in angles]
    views += [lambda x: flip(x, "horizontal", 2), lambda x: flip(x, "vertical", 2)]
    views.append(lambda x: rotate(x, 45.0, fill=fill))  # the "accuracy at 45 degrees", always
    t0 = time.time()
    logits, targets = predict_views(model, test, views, batch_size=args.eval_batch_size, device=device)
    eval_s = time.time() - t0
    rot_logits, flip_logits = logits[:len(angles)], logits[len(angles):len(angles) + 2]
    acc_45 = _acc(logits[-1], targets, task)
    rot_acc = [_acc(lg, targets, task) for lg in rot_logits]
    upright = rot_acc[0]
    quarter = [i for i, a in enumerate(angles) if a % 90 == 0]
    exact_views = [rot_logits[i] for i in quarter] + list(flip_logits)
    scale = float(rot_logits[0].abs().max()) or 1.0
    deviation = max(float((lg - rot_logits[0]).abs().max()) for lg in exact_views) / scale
    single_label = task != "multi-label, binary-class"
    out: dict[str, Any] = {
        "label": entry.label, "model": entry.model, "description": entry.description, "seed": seed,
        "params": count_params(model), "train_s_per_epoch": float(np.mean(epoch_times)),
        "eval_images_per_s": len(targets) * len(views) / max(eval_s, 1e-9),
        "train_loss_last": result["history"][-1].get("train_loss"),
        "angles": angles, "rotation_acc": rot_acc, "upright_acc": upright,
        "mean_rot_acc": float(np.mean(rot_acc)), "worst_rot_acc": float(np.min(rot_acc)),
        "acc_45": acc_45,
        "acc_quarter_turns": [rot_acc[i] for i in quarter],
        "flip_acc": {"horizontal": _acc(flip_logits[0], targets, task),
                     "vertical": _acc(flip_logits[1], targets, task)},
        "d4_logit_deviation": deviation, "n_test": len(targets), "n_train": len(train), "image_size": size,
        "label_names": list(getattr(test, "label_names", [])),
    }
    out["mean_flip_acc"] = float(np.mean(list(out["flip_acc"].values())))
    out["gap"] = upright - out["mean_rot_acc"]
    if single_label:
        out["per_class_upright"] = _per_class(rot_logits[0], targets)
        out["per_class_mean_rot"] = list(np.mean([_per_class(lg, targets) for lg in rot_logits], 0).tolist())
    return out


# --------------------------------------------------------------------------------------------- report

COLUMNS = [("params", "params", "{:.0f}"), ("train_s_per_epoch", "train s/epoch", "{:.1f}"),
           ("eval_images_per_s", "eval img/s", "{:.0f}"), ("upright_acc", "upright", "{:.3f}"),
           ("mean_rot_acc", "mean 36 angles", "{:.3f}"), ("worst_rot_acc", "worst angle", "{:.3f}"),
           ("acc_45", "45°", "{:.3f}"), ("mean_flip_acc", "flips", "{:.3f}"), ("gap", "gap", "{:.3f}"),
           ("d4_logit_deviation", "D4 logit dev.", "{:.1e}")]


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, _, _ in COLUMNS:
        values = [float(r[key]) for r in runs]
        out[key] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
    return out


def format_table(results: dict[str, Any]) -> str:
    """Markdown table of the runs in ``results`` (mean ± std over seeds when there are several)."""
    header = "| model | seeds | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    for label, runs in _by_label(results).items():
        summary = _summary(runs)
        cells = []
        for key, _, fmt in COLUMNS:
            mean, std = summary[key]
            text = fmt.format(mean)
            if len(runs) > 1 and key not in ("params", "d4_logit_deviation"):
                text += " ± " + fmt.format(std)
            cells.append(text)
        lines.append(f"| {label} | {len(runs)} | " + " | ".join(cells) + " |")
    for label, reason in results.get("skipped", {}).items():
        lines.append(f"| {label} | 0 | skipped: {reason} |" + " |" * (len(COLUMNS) - 1))
    return "\n".join(lines)


def _by_label(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_label: dict[str, list[dict[str, Any]]] = {}
    for run in results["runs"]:
        by_label.setdefault(run["label"], []).append(run)
    return by_label


def format_per_class(results: dict[str, Any]) -> str:
    """Markdown table of per-class accuracy, ``upright / mean over the angles`` (mean over seeds)."""
    by_label = {k: v for k, v in _by_label(results).items() if "per_class_upright" in v[0]}
    if not by_label:
        return ""
    first = next(iter(by_label.values()))[0]
    names = next((r["label_names"] for r in results["runs"] if r.get("label_names")),
                 [str(c) for c in range(len(first["per_class_upright"]))])
    lines = ["| model | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for label, runs in by_label.items():
        upright = np.nanmean([r["per_class_upright"] for r in runs], 0)
        rotated = np.nanmean([r["per_class_mean_rot"] for r in runs], 0)
        lines.append(f"| {label} | " + " | ".join(f"{u:.2f} / {m:.2f}" for u, m in zip(upright, rotated)) + " |")
    return "\n".join(lines)


#: The robustness targets, checked for every SRE model (``model`` starting with ``sre_``) against the ``cnn`` and
#: ``cnn_rotaug`` rows of the same run: ``(name, value format, check)``; ``check(model, cnn, cnn_rotaug)`` takes
#: mean-over-seeds summaries and returns ``(value, holds)``, or None when a reference row is missing.
TARGETS = (
    ("mean rot. ≥ 0.97 × upright", "{:.2f}", lambda m, cnn, aug: (
        m["mean_rot_acc"] / m["upright_acc"], m["mean_rot_acc"] >= 0.97 * m["upright_acc"])),
    ("exact at 90°·k and flips", "{:.1e}", lambda m, cnn, aug: (m["d4_logit_deviation"], m["exact"])),
    ("upright ≥ CNN − 0.03", "{:+.3f}", lambda m, cnn, aug: None if cnn is None else (
        m["upright_acc"] - cnn["upright_acc"], m["upright_acc"] >= cnn["upright_acc"] - 0.03)),
    ("mean rot. > CNN+rot. aug", "{:+.3f}", lambda m, cnn, aug: None if aug is None else (
        m["mean_rot_acc"] - aug["mean_rot_acc"], m["mean_rot_acc"] > aug["mean_rot_acc"])),
    ("params ≤ 0.4 × CNN", "{:.2f}", lambda m, cnn, aug: None if cnn is None else (
        m["params"] / cnn["params"], m["params"] <= 0.4 * cnn["params"])),
)


def _means(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {key: float(np.mean([r[key] for r in runs]))
                           for key in ("upright_acc", "mean_rot_acc", "params")}
    out["d4_logit_deviation"] = max(r["d4_logit_deviation"] for r in runs)
    # Exact: in every seed the quarter turns and both flips score exactly as upright.
    out["exact"] = all(len(set(r["acc_quarter_turns"])) == 1 and r["d4_logit_deviation"] < 1e-4 and
                       r["flip_acc"]["horizontal"] == r["flip_acc"]["vertical"] == r["upright_acc"] for r in runs)
    return out


def check_targets(results: dict[str, Any]) -> list[tuple[str, list[tuple[float, bool] | None]]]:
    """``[(label, [(value, holds) or None per TARGETS entry])]`` for every SRE model of ``results``."""
    by_label = _by_label(results)
    cnn = _means(by_label["cnn"]) if "cnn" in by_label else None
    aug = _means(by_label["cnn_rotaug"]) if "cnn_rotaug" in by_label else None
    return [(label, [check(_means(runs), cnn, aug) for _, _, check in TARGETS])
            for label, runs in by_label.items() if runs[0]["model"].startswith("sre_")]


def format_targets(results: dict[str, Any]) -> str:
    """Markdown table: which of the :data:`TARGETS` hold for which SRE model (``n/a`` without a reference)."""
    rows = check_targets(results)
    if not rows:
        return ""
    lines = ["| model | " + " | ".join(name for name, _, _ in TARGETS) + " |", "|" + "---|" * (len(TARGETS) + 1)]
    for label, cells in rows:
        text = ["n/a" if cell is None else ("yes" if cell[1] else "**no**") + " (" + fmt.format(cell[0]) + ")"
                for (_, fmt, _), cell in zip(TARGETS, cells)]
        lines.append(f"| {label} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def plot_results(results: dict[str, Any], path: str) -> str:
    """Accuracy vs rotation angle (mean over seeds, ± std band) for every model; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    for label, runs in _by_label(results).items():
        angles = runs[0]["angles"]
        acc = np.array([r["rotation_acc"] for r in runs])
        mean, std = acc.mean(0), acc.std(0)
        ax.plot(angles, mean, marker=".", label=f"{label} ({runs[0]['params'] / 1e3:.0f}k)")
        if len(runs) > 1:
            ax.fill_between(angles, mean - std, mean + std, alpha=0.2)
    budget = results["budget"]
    ax.set_xlabel("rotation of the test images (degrees)")
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


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.system()} {cpu}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), {gpu}, Python {platform.python_version()}")


def _write(results: dict[str, Any], out_dir: str, plot: bool = True) -> None:
    from sreconv.engine.checkpoint import atomic_write_text

    os.makedirs(out_dir, exist_ok=True)
    atomic_write_text(json.dumps(results, indent=1), os.path.join(out_dir, "results.json"))
    table = format_table(results)
    budget = results["budget"]
    md = [f"Command: `{results['command']}`", "",
          f"Machine: {results['machine']}", f"Date: {results['date']}", "",
          "Budget (identical for every model): " + ", ".join(f"{k}={v}" for k, v in budget.items()), "",
          table, ""]
    for title, text in (("Targets", format_targets(results)),
                        ("Per-class accuracy, upright / mean over the angles", format_per_class(results))):
        if text:
            md += [f"## {title}", "", text, ""]
    atomic_write_text("\n".join(md), os.path.join(out_dir, "report.md"))
    if plot and results["runs"]:
        plot_results(results, os.path.join(out_dir, "accuracy_vs_angle.png"))


def _previous_runs(path: str, budget: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs of an earlier ``results.json`` made with the same budget (any seeds); raises if it differs."""
    if not os.path.exists(path):
        return []
    try:
        with open(path) as f:
            old = json.load(f)
        old_budget, runs = old["budget"], old["runs"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable compare results file ({exc}); pass --restart to overwrite "
                         "it, or choose another --out") from exc
    keys = sorted((set(old_budget) | set(budget)) - {"seeds"})
    diff = [f"{k} {old_budget.get(k)!r} -> {budget.get(k)!r}" for k in keys if old_budget.get(k) != budget.get(k)]
    if diff:
        raise ValueError(f"{path} holds runs of another budget ({'; '.join(diff)}); pass --restart to overwrite "
                         "it, or choose another --out")
    return runs


def run_compare(args: argparse.Namespace, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs every (model, seed) of ``args`` in turn and rewrites the outputs after each run.

    Runs already in ``OUT/results.json`` with the same budget are kept and not repeated (unless
    ``args.restart``), so a killed comparison resumes, and models or seeds can be added later.
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    entries = [_entry(label) for label in args.models]
    if argv is None:
        argv = [f"--dataset {args.dataset}", f"--models {' '.join(args.models)}", f"--width {args.width}",
                f"--sre-conv-size {' '.join(map(str, args.sre_conv_size))}", f"--epochs {args.epochs}",
                f"--batch-size {args.batch_size}", f"--optimizer {args.optimizer}", f"--lr {args.lr}",
                f"--weight-decay {args.weight_decay}", f"--limit-train {args.limit_train}",
                f"--limit-test {args.limit_test}", f"--seeds {' '.join(map(str, args.seeds))}",
                f"--angle-step {args.angle_step:g}", f"--out {args.out}"]
        if args.image_size:
            argv.append(f"--image-size {args.image_size}")
        if args.data_root:
            argv.append(f"--data-root {args.data_root}")
    command = "sreconv compare " + " ".join(argv)
    budget = dict(dataset=args.dataset, limit_train=args.limit_train or "all", limit_test=args.limit_test or "all",
                  image_size=args.image_size or "native", width=args.width, epochs=args.epochs,
                  batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                  schedule="cos", sre_conv_size=list(args.sre_conv_size), angle_step=args.angle_step,
                  seeds=list(args.seeds))
    results: dict[str, Any] = {"command": command.strip(), "machine": _machine(),
                               "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "budget": budget,
                               "runs": [], "skipped": {}}
    if not args.restart:
        results["runs"] = _previous_runs(os.path.join(args.out, "results.json"), budget)
    done = {(run["label"], run["seed"]) for run in results["runs"]}
    for entry in entries:
        if not _available(entry):
            results["skipped"][entry.label] = f"{entry.optional_module} not installed"
            print(f"[compare] skip {entry.label}: {entry.optional_module} not installed", flush=True)
    entries = [e for e in entries if e.label not in results["skipped"]]
    # Seed-major order: a run cut short still holds every model for the first seeds.
    for seed in args.seeds:
        for entry in entries:
            if (entry.label, seed) in done:
                print(f"[compare] {entry.label} seed {seed}: kept from {args.out}/results.json", flush=True)
                continue
            t0 = time.time()
            print(f"[compare] {entry.label} ({entry.model}) seed {seed}", flush=True)
            run = run_one(entry, seed, args)
            results["runs"].append(run)
            print(f"[compare] {entry.label} seed {seed}: upright {run['upright_acc']:.3f} mean-rot "
                  f"{run['mean_rot_acc']:.3f} worst {run['worst_rot_acc']:.3f} 45° {run['acc_45']:.3f} flips "
                  f"{run['mean_flip_acc']:.3f} params {run['params']} ({time.time() - t0:.0f}s)", flush=True)
            _write(results, args.out, plot=not args.no_plot)
    _write(results, args.out, plot=not args.no_plot)
    print(format_table(results))
    return results


def build_compare_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--dataset", default="fashion-mnist",
                   help="fashion-mnist (default), mnist5k, or a 2D MedMNIST flag (needs its .npz files)")
    p.add_argument("--data-root", default=None, help="folder of the dataset files (default: the dataset's own)")
    p.add_argument("--medmnist-size", type=int, default=28)
    p.add_argument("--image-size", type=int, default=None, help="resize side (default: native, e.g. 28)")
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                   help=f"entries ({', '.join(ENTRIES)}) or registry names (default: all entries)")
    p.add_argument("--width", type=int, default=16, help="channels of the stem / first stage of every model")
    p.add_argument("--sre-conv-size", type=int, nargs=4, default=[5, 5, 3, 3])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", default="adamw", choices=["sgd", "adamw", "adam"])
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--limit-train", type=int, default=4000, help="fixed random training subset (0 = all)")
    p.add_argument("--limit-test", type=int, default=500, help="fixed random test subset (0 = all)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--angle-step", type=float, default=10.0, help="rotation sweep step in degrees (36 angles)")
    p.add_argument("--eval-batch-size", type=int, default=250)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--out", default="benchmarks/robustness", help="folder for results.json, report.md, PNG")
    p.add_argument("--restart", action="store_true",
                   help="ignore OUT/results.json (default: keep its runs of the same budget and run only the rest)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return p


def compare_command(args: argparse.Namespace) -> int:
    try:
        run_compare(args)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"sreconv compare: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _register() -> None:
    from sreconv.cli import register_command

    register_command("compare", compare_command, build_compare_parser,
                     help="rotation-robustness benchmark: CNN vs CNN+rotation aug vs SRE variants vs e2cnn")


_register()
