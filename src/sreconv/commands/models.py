"""``sreconv models``: list the registered models with their dimensionality and invariance group."""

from __future__ import annotations

import argparse

HELP = "list the registered models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", help="glob, e.g. 'sre_*'")


def run(args: argparse.Namespace) -> int:
    from sreconv.models.registry import list_models, model_info

    names = list_models(args.pattern)
    if not names:
        raise ValueError(f"no registered model matches {args.pattern!r}; see sreconv models")
    for name in names:
        info = model_info(name)
        group = info.group or "none (baseline)"
        print(f"{name:<24} {info.spatial_dims}D  invariant to: {group:<16} {info.description}")
    return 0
