"""``sreconv compare``: the command-line face of :func:`~sreconv_bench.compare.run.run_compare`.

The module follows the ``sreconv`` command contract: ``HELP``, ``add_arguments(parser)`` (one flag per
:class:`~sreconv_bench.compare.config.CompareConfig` field, defaulting to the field's default) and
``run(args) -> int``. Bad settings raise ``ValueError`` with a one-line message before any work starts.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from typing import Any

from .config import OPTIMIZERS, CompareConfig

__all__ = ["HELP", "add_arguments", "run", "config_from_args"]

HELP = ("rotation-robustness benchmark: CNNs, SRE models, D4 group-equivariant SRE models, e2cnn and GMR-Conv "
        "under one budget")

_HELP = {
    "dataset": "fashion-mnist, mnist5k, or a 2D MedMNIST flag (needs its .npz files)",
    "data_root": "folder of the dataset files (default: the dataset's own)",
    "medmnist_size": "MedMNIST file variant",
    "image_size": "resize side (default: native, e.g. 28)",
    "models": "entries or registry names, see `sreconv_bench.compare.ENTRIES`",
    "width": "channels of the stem / first stage of every model",
    "sre_conv_size": "kernel size per stage of the SRE and GMR models",
    "epochs": "training epochs",
    "batch_size": "training batch size",
    "optimizer": "optimizer",
    "lr": "learning rate (cosine schedule)",
    "weight_decay": "weight decay",
    "limit_train": "fixed random training subset (0 = all)",
    "limit_test": "fixed random test subset (0 = all)",
    "seeds": "one training run per seed and model",
    "angle_step": "rotation sweep step in degrees",
    "eval_batch_size": "batch size of the scoring passes",
    "device": "auto, cpu, cuda or cuda:N",
    "threads": "torch CPU threads (0 = torch default)",
    "out": "folder for results.json, report.md and the plot",
    "restart": "ignore OUT/results.json (default: keep its runs of the same budget and run only the rest)",
    "plot": "write accuracy_vs_angle.png",
    "quiet": "no per-epoch lines",
}
_OPTIONAL_TYPES = {"data_root": str, "image_size": int}


def _default(f: Any) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one flag per :class:`CompareConfig` field (``--no-plot`` for ``plot``)."""
    for f in fields(CompareConfig):
        default = _default(f)
        flag = "--" + f.name.replace("_", "-")
        text = _HELP[f.name]
        if isinstance(default, bool):
            if default:
                parser.add_argument(f"--no-{f.name.replace('_', '-')}", dest=f.name, action="store_false",
                                    help=f"do not {text}")
            else:
                parser.add_argument(flag, action="store_true", help=text)
        elif isinstance(default, list):
            parser.add_argument(flag, nargs=4 if f.name == "sre_conv_size" else "+", type=type(default[0]),
                                default=default, help=f"{text} (default: {_shown(default)})")
        else:
            kind = _OPTIONAL_TYPES.get(f.name, type(default))
            extra: dict[str, Any] = {"choices": list(OPTIMIZERS)} if f.name == "optimizer" else {}
            shown = "" if default is None else f" (default: {_shown(default)})"
            parser.add_argument(flag, type=kind, default=default, help=text + shown, **extra)


def config_from_args(args: argparse.Namespace) -> CompareConfig:
    """The validated :class:`CompareConfig` of parsed flags (other attributes of ``args`` are ignored)."""
    values = {name: getattr(args, name) for name in CompareConfig.field_names() if hasattr(args, name)}
    return CompareConfig(**values).validate()


def run(args: argparse.Namespace) -> int:
    """Runs the comparison of the parsed flags; returns 0 (bad settings raise ``ValueError`` first)."""
    from .run import run_compare

    run_compare(config_from_args(args))
    return 0
