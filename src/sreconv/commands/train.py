"""``sreconv train``: train a classifier and evaluate it upright, rotated and flipped.

Settings are layered, later ones winning: the built-in defaults (the paper's recipe) < the saved
``config.yaml`` of the run being resumed < the quick-start preset (implied when ``sreconv train`` gets no
``--dataset``, ``--config`` or ``--resume``) < ``--config file.yaml`` < the flags typed. Flags of the official
``main.py`` are accepted under their names (``--med-mnist``, ``--model-type``, ``--sre-conv-size-list``,
``--res-inplanes``, ``--sgd``, ``--cos``, ``--amp``/``--bf16``, ...).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from . import add_config_arguments, explicit_settings

HELP = ("train a model and evaluate it upright, rotated and flipped (without --dataset: the quick start on "
        "MNIST-5k)")

GROUPS = ("data", "model", "optimisation", "augmentation", "runtime", "evaluation", "output")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (HELP + ". Defaults below are the paper's recipe; without --dataset, --config or --resume "
                          "the quick-start preset applies instead (width 16, [5, 5, 3, 3], AdamW 2e-3, 15 epochs).")
    parser.add_argument("--config", metavar="FILE.yaml", default=argparse.SUPPRESS,
                        help="settings file (keys as the long flags); flags override it")
    parser.add_argument("--quickstart", action="store_true", default=argparse.SUPPRESS,
                        help="start from the quick-start preset (a width-16 SRE-ResNet-18, 15 epochs on MNIST-5k, "
                             "rotation sweep); implied when no --dataset, --config or --resume is given")
    parser.add_argument("--resume", nargs="?", const=True, metavar="DIR", default=argparse.SUPPRESS,
                        help="continue the run in DIR (or --out DIR) from checkpoints/last.pt; only epochs (more), "
                             "evaluation and runtime settings may change")
    add_config_arguments(parser, GROUPS)


def resolve(args: argparse.Namespace) -> tuple[Any, bool]:
    """``(TrainConfig, resume)`` from parsed flags (see the module docstring for the precedence)."""
    from sreconv.engine.config import QUICKSTART, TrainConfig, load_yaml

    flags = explicit_settings(args)
    resume = getattr(args, "resume", None)
    config_file = getattr(args, "config", None)
    values: dict[str, Any] = {}
    if resume:
        if isinstance(resume, str) and "out" in flags and os.path.abspath(flags["out"]) != os.path.abspath(resume):
            raise ValueError(f"--out {flags['out']} conflicts with --resume {resume}: a resumed run continues in its "
                             "own folder (give one of them)")
        out = resume if isinstance(resume, str) else flags.get("out")
        if not out:
            raise ValueError("--resume needs the run's folder: --resume DIR or --out DIR --resume")
        if config_file is not None:
            raise ValueError("--config cannot be combined with --resume: the run's own config.yaml is used")
        saved = os.path.join(out, "config.yaml")
        if not os.path.isfile(saved):
            raise FileNotFoundError(f"--resume: {saved} not found; is {out} a sreconv output folder?")
        values.update(load_yaml(saved))
        flags["out"] = out
    # Without a dataset (nor a config file or run to resume) the run is the quick start on MNIST-5k; the
    # other flags still apply on top, e.g. `sreconv train --epochs 1` is a shortened quick start.
    if getattr(args, "quickstart", False) or ("dataset" not in flags and not resume and config_file is None):
        values.update(QUICKSTART)
    if config_file is not None:
        values.update(load_yaml(config_file))
    values.update(flags)
    return TrainConfig.from_dict(values, "settings").validate(), bool(resume)


def run(args: argparse.Namespace) -> int:
    from sreconv.engine.runner import run_train
    from sreconv.viz.plots import RotationPlot

    config, resume = resolve(args)
    run_train(config, resume=resume, callbacks=(RotationPlot(),))
    return 0
