"""The ``sreconv`` subcommands, one module each (``HELP``, ``add_arguments``, ``run``); see :mod:`sreconv.cli`.

:func:`add_config_arguments` turns the fields of :class:`~sreconv.engine.config.TrainConfig` into flags, so a
setting, its default and its help are written once, in the dataclass.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import MISSING, fields
from typing import Any

__all__ = ["add_config_arguments", "explicit_settings", "META"]

#: Names on an ``argparse.Namespace`` that are not TrainConfig settings.
META = frozenset({"command", "config", "quickstart", "resume", "checkpoint", "split", "results",
                  "trust_checkpoint"})

_SHORTCUTS: dict[str, list[tuple[tuple[str, ...], Any, str]]] = {
    "optimizer": [(("--sgd",), "sgd", "--optimizer sgd"), (("--adamw", "--adamW"), "adamw", "--optimizer adamw"),
                  (("--adam",), "adam", "--optimizer adam")],
    "schedule": [(("--cos",), "cos", "--schedule cos"), (("--step",), "step", "--schedule step"),
                 (("--multi-step",), "multi-step", "--schedule multi-step")],
    "amp": [(("--bf16",), "bf16", "--amp bf16")],
}


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def add_config_arguments(parser: argparse.ArgumentParser, groups: Iterable[str],
                         defaults: dict[str, Any] | None = None) -> None:
    """Adds one flag per :class:`TrainConfig` field of ``groups`` (plus the official shortcuts).

    Every flag defaults to "not given" (``argparse.SUPPRESS``) so that :func:`explicit_settings` returns only
    what was typed and the caller can layer saved/preset/file settings below it.

    Args:
        parser: the subcommand's parser.
        groups: field groups to expose (``'data'``, ``'model'``, ``'optimisation'``, ...), in ``--help`` order.
        defaults: defaults to show in ``--help`` instead of the dataclass's (e.g. ``eval`` turns rotations on).
    """
    from sreconv.engine.config import TrainConfig

    shown = defaults or {}
    by_group: dict[str, list[Any]] = {}
    for f in fields(TrainConfig):
        by_group.setdefault(f.metadata["group"], []).append(f)
    for group in groups:
        section = parser.add_argument_group(group)
        for f in by_group[group]:
            meta = f.metadata
            default = shown.get(f.name, f.default if f.default is not MISSING else f.default_factory())  # type: ignore[misc]
            help_text = meta["help"] + ("" if default is None else f" (default: {_default_text(default)})")
            flags = [f"--{f.name.replace('_', '-')}", *meta["flags"]]
            target = section.add_mutually_exclusive_group() if f.name in _SHORTCUTS else section
            kwargs: dict[str, Any] = dict(dest=f.name, help=help_text, default=argparse.SUPPRESS)
            if isinstance(default, bool):
                target.add_argument(*flags, action=argparse.BooleanOptionalAction, **kwargs)
            else:
                element = meta["element"] or type(default)
                kwargs.update(type=element, choices=meta["choices"], metavar=meta["metavar"], nargs=meta["nargs"])
                if f.name == "amp":
                    kwargs.update(nargs="?", const="fp16")  # the official bare --amp means fp16
                target.add_argument(*flags, **kwargs)
            for spellings, const, text in _SHORTCUTS.get(f.name, []):
                target.add_argument(*spellings, dest=f.name, action="store_const", const=const, help=text,
                                    default=argparse.SUPPRESS)


def explicit_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig settings given on the command line (flags that were not typed are absent)."""
    return {k: v for k, v in vars(args).items() if k not in META}
