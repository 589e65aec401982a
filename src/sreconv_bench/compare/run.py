"""Training and scoring every (model, seed) of a comparison, resuming from an earlier ``results.json``."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import random
import time
from typing import Any

import numpy as np
import torch

from sreconv.nn.tuning import retain_freed_memory

from .config import CompareConfig
from .data import compare_datasets
from .entries import Entry, build_entry_model, entry_available, resolve_entry
from .report import format_table, write_outputs
from .scoring import score_model

__all__ = ["run_compare", "run_one", "machine_description", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``'auto'`` -> CUDA when available, else the CPU; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_one(entry: Entry, seed: int, config: CompareConfig) -> dict[str, Any]:
    """Trains ``entry`` with ``seed`` under ``config``'s budget and scores it on every view.

    Returns:
        The run record stored in ``results.json`` (scores of :func:`~sreconv_bench.compare.scoring.score_model`
        plus label, model, seed, params, training time per epoch, last training loss).
    """
    from sreconv.engine.config import TrainConfig
    from sreconv.engine.train import fit

    data = compare_datasets(config, entry.rotation_aug)
    train, test = data["train"], data["test"]
    _seed(seed)
    model = build_entry_model(entry, test.n_classes, test.n_channels, config.width, config.sre_conv_size)
    device = resolve_device(config.device)
    model.to(device)
    train_config = TrainConfig(dataset=config.dataset, epochs=config.epochs, batch_size=config.batch_size,
                               lr=config.lr, optimizer=config.optimizer, momentum=0.9,
                               weight_decay=config.weight_decay, schedule="cos", seed=seed, progress=False,
                               device=str(device))
    result = fit(model, train, None, train_config, device=device, verbose=not config.quiet)
    history = result["history"]
    run: dict[str, Any] = {
        "label": entry.label, "model": entry.model, "description": entry.description, "seed": seed,
        "train_rotation": entry.rotation_aug, "params": sum(p.numel() for p in model.parameters()),
        "train_s_per_epoch": float(np.mean([h["time_s"] for h in history])),
        "train_loss_last": history[-1].get("train_loss"), "n_train": len(train), "image_size": data["image_size"],
    }
    run.update(score_model(model, test, config.angle_step, config.eval_batch_size, device))
    return run


def machine_description() -> str:
    """OS, CPU, cores, torch version and threads, GPU, Python."""
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.system()} {cpu}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), {gpu}, Python {platform.python_version()}")


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


def _log(message: str) -> None:
    print(f"[compare] {message}", flush=True)


def run_compare(config: CompareConfig) -> dict[str, Any]:
    """Runs every (model, seed) of ``config`` in turn and rewrites the outputs after each run.

    Runs already in ``config.out/results.json`` with the same budget are kept and not repeated (unless
    ``config.restart``), so a killed comparison resumes, and models or seeds can be added later. Entries whose
    optional package is missing are listed as skipped.

    Returns:
        The results dict written to ``results.json``: ``command``, ``machine``, ``date``, ``budget``, ``runs``
        (one record per model and seed) and ``skipped`` (label -> reason).

    Raises:
        ValueError: a bad setting or model name, or an ``out`` folder holding runs of another budget; raised
            before any training starts.
    """
    config.validate()
    entries = [resolve_entry(label) for label in config.models]
    budget = config.budget()
    results_path = os.path.join(config.out, "results.json")
    previous = [] if config.restart else _previous_runs(results_path, budget)
    if config.threads:
        torch.set_num_threads(config.threads)
    # As in `sreconv train`: the comparison owns its process, every entry gets the same allocator setting.
    retain_freed_memory()
    results: dict[str, Any] = {"command": config.command_line(), "machine": machine_description(),
                               "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "budget": budget,
                               "runs": previous, "skipped": {}}
    done = {(run["label"], run["seed"]) for run in previous}
    for entry in entries:
        if not entry_available(entry):
            results["skipped"][entry.label] = f"{entry.optional_module} not installed"
            _log(f"skip {entry.label}: {entry.optional_module} not installed")
    entries = [e for e in entries if e.label not in results["skipped"]]
    # Seed-major order: a run cut short still holds every model for the first seeds.
    for seed in config.seeds:
        for entry in entries:
            if (entry.label, seed) in done:
                _log(f"{entry.label} seed {seed}: kept from {results_path}")
                continue
            t0 = time.time()
            _log(f"{entry.label} ({entry.model}) seed {seed}")
            run = run_one(entry, seed, config)
            results["runs"].append(run)
            _log(f"{entry.label} seed {seed}: upright {run['upright_acc']:.3f} mean-rot {run['mean_rot_acc']:.3f} "
                 f"(bicubic {run['mean_rot_acc_bicubic']:.3f}) worst {run['worst_rot_acc']:.3f} 45° "
                 f"{run['acc_45']:.3f} flips {run['mean_flip_acc']:.3f} params {run['params']} "
                 f"{run['train_s_per_epoch']:.1f} s/epoch ({time.time() - t0:.0f}s)")
            write_outputs(results, config.out, plot=config.plot)
    write_outputs(results, config.out, plot=config.plot)
    print(format_table(results), flush=True)
    return results
