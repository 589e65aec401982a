"""The ``sreconv`` command line (also ``python -m sreconv``).

Subcommands are registered with :func:`register_command`; this module provides ``check``. Another module
adds one like this::

    from sreconv.cli import register_command

    def _add_args(parser):
        parser.add_argument("--epochs", type=int, default=100)

    def _train(args) -> int:
        ...
        return 0  # exit status

    register_command("train", _train, _add_args, help="train a model")

and makes sure it is imported by listing it in ``COMMAND_MODULES`` (imported lazily; a missing module is
skipped so that optional dependencies do not break ``sreconv check``).

Example:
    >>> main(["check", "sre_resnet18", "--kw", "inplanes=4", "--kw", "num_classes=3", "--size", "9",
    ...       "--quiet"])
    0
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["register_command", "main", "build_parser", "COMMAND_MODULES"]


@dataclass
class _Command:
    func: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None
    help: str


_COMMANDS: dict[str, _Command] = {}

#: Modules imported before parsing so that they can register their subcommands.
COMMAND_MODULES: list[str] = ["sreconv.train", "sreconv.evaluate", "sreconv.cli_commands",
                              "sreconv.engine.commands", "sreconv.viz.commands", "sreconv_bench.compare"]


def register_command(name: str, func: Callable[[argparse.Namespace], int],
                     add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                     help: str = "", overwrite: bool = False) -> None:
    """Adds the subcommand ``sreconv NAME``.

    Args:
        name: subcommand name.
        func: called with the parsed ``argparse.Namespace``; returns the exit status (``None`` means 0).
        add_arguments: adds the subcommand's options to its parser.
        help: one line for ``sreconv --help``.
        overwrite: replace an existing subcommand of that name.
    """
    if name in _COMMANDS and not overwrite:
        raise ValueError(f"sreconv subcommand {name!r} is already registered")
    _COMMANDS[name] = _Command(func, add_arguments, help)


def _load_command_modules() -> None:
    for module in COMMAND_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            if getattr(exc, "name", None) == module:
                continue  # not written (yet): nothing to register
            print(f"sreconv: subcommands of {module} unavailable ({exc})", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per registered command."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="sreconv",
                                     description="Symmetric rotation-equivariant convolution (SRE-Conv) tools.")
    parser.add_argument("--version", action="version", version=f"sreconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in sorted(_COMMANDS):
        command = _COMMANDS[name]
        p = sub.add_parser(name, help=command.help, description=command.help)
        if command.add_arguments is not None:
            command.add_arguments(p)
        p.set_defaults(_func=command.func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sreconv`` console script; returns the exit status."""
    _load_command_modules()
    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    if getattr(args, "_func", None) is None:
        parser.print_help()
        return 2
    status = args._func(args)
    return 0 if status is None else int(status)


# ---------------------------------------------------------------------------------------------- check


class UsageError(SystemExit):
    """Bad command-line input: the message goes to stderr and the exit status is 2."""

    def __init__(self, message: str) -> None:
        print(f"sreconv: error: {message}", file=sys.stderr)
        super().__init__(2)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_kwargs(pairs: Sequence[str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"check: --kw expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        kwargs[key.strip()] = _parse_value(value)
    return kwargs


def _infer_kwargs(state_dict: dict[str, Any], name: str) -> dict[str, Any]:
    """num_classes, in_channels, width, kernel sizes and rings read off an (official or sreconv) state_dict."""
    kwargs: dict[str, Any] = {}
    if "fc.weight" in state_dict:
        kwargs["num_classes"] = int(state_dict["fc.weight"].shape[0])
    three_d = "r3d" in name
    stem = "stem.0.weight" if three_d else "conv1.weight"
    if stem in state_dict:
        kwargs["in_channels"] = int(state_dict[stem].shape[1])
        kwargs["inplanes"] = int(state_dict[stem].shape[0])
    sizes, rings = [], []
    for stage in range(1, 5):
        conv = f"layer{stage}.0.conv2.0" if three_d else f"layer{stage}.0.conv2"
        weight = state_dict.get(conv + ".weight")
        if weight is None:
            weight = state_dict.get(conv + ".1.weight")  # bottleneck with a stride: conv2 = (pool, conv)
            conv = conv + ".1"
        masks = state_dict.get(conv + ".weight_index_mat")
        if weight is None or weight.dim() != 3 or masks is None:
            return kwargs
        k = round(masks.shape[-1] ** (1 / (3 if three_d else 2)))
        sizes.append(k)
        rings.append(int(weight.shape[-1]))
    kwargs["sre_conv_size"] = sizes
    if not three_d:
        kwargs["sre_k"] = rings
    return kwargs


def _load_target(args: argparse.Namespace):
    from .models.registry import create_model, list_models, model_info

    kwargs = _parse_kwargs(args.kw)
    try:
        registered = model_info(args.target).name
    except ValueError:
        registered = None
    if registered is not None:
        try:
            return create_model(args.target, **kwargs), args.target
        except (ValueError, TypeError) as exc:
            raise UsageError(f"check: cannot build {args.target!r} with {kwargs}: {exc}") from None
    if not os.path.exists(args.target):
        raise UsageError(f"check: {args.target!r} is neither a registered model nor a file. "
                         f"Models: {', '.join(list_models())}")
    import torch.nn as nn

    from .serialization import load

    try:
        checkpoint = load(args.target, trusted=args.trust_checkpoint)
    except (OSError, ValueError) as exc:
        raise UsageError(f"check: {exc}") from None
    if isinstance(checkpoint, nn.Module):
        return checkpoint, args.target
    if not isinstance(checkpoint, dict):
        raise UsageError(f"check: {args.target} holds a {type(checkpoint).__name__}, expected a model "
                         "or a state_dict")
    state_dict = checkpoint.get("state_dict", checkpoint.get("model", checkpoint))
    name = args.model or checkpoint.get("model_name") or checkpoint.get("arch")
    if name is None:
        raise UsageError("check: the checkpoint does not name its model; pass --model NAME "
                         f"(one of {', '.join(list_models())})")
    build = dict(checkpoint.get("model_kwargs", {}))
    build.update(_infer_kwargs(state_dict, name))
    build.update(kwargs)
    state_dict = {k[7:] if k.startswith("module.") else k: v for k, v in state_dict.items()}
    try:
        model = create_model(name, **build)
        model.load_state_dict(state_dict)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise UsageError(f"check: cannot build {name!r} with {build} from {args.target}: {exc}") from None
    return model, f"{args.target} ({name})"


def _check(args: argparse.Namespace) -> int:
    import torch

    from .equivariance import check_equivariance, default_group

    model, label = _load_target(args)
    spatial = getattr(model, "spatial_dims", None)
    if args.input_shape:
        shape = tuple(args.input_shape)
    else:
        spatial = spatial or (3 if args.group == "cube" else 2)
        size = args.size or (33 if spatial == 2 else 15)
        shape = (getattr(model, "in_channels", 3), *(size,) * spatial)
    group = args.group or (default_group(spatial) if spatial else None)
    dtype = {"float64": torch.float64, "float32": torch.float32}[args.dtype]
    report = check_equivariance(model, shape, group, dtype=dtype, train=args.train, tol=args.tol, seed=args.seed)
    if args.json:
        print(json.dumps({"model": label, **report.as_dict()}, indent=2))
    elif not args.quiet:
        print(f"model: {label}")
        print(report.summary(max_layers=None if args.all_layers else 0 if report.passed else 20))
    return 0 if report.passed else 1


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="registered model name (see 'sreconv models') or a checkpoint file (.pt): "
                                       "a pickled "
                                       "model, a state_dict, or {'state_dict': ...} as saved by the official main.py")
    parser.add_argument("--model", help="registry name of the checkpoint's model when the file does not say")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a checkpoint that needs arbitrary code to load (a pickled model); only for "
                             "files you trust")
    parser.add_argument("--kw", action="append", default=[], metavar="KEY=VALUE",
                        help="model argument (JSON value), e.g. --kw num_classes=9 --kw 'sre_conv_size=[9,9,5,5]'")
    parser.add_argument("--input-shape", type=int, nargs="+", metavar="N",
                        help="input shape (C, *spatial); default: in_channels and --size")
    parser.add_argument("--size", type=int, help="spatial size (default 33 in 2D, 15 in 3D)")
    parser.add_argument("--group", choices=["flip", "d4", "cube"], help="default from the dimensionality")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--tol", type=float, help="deviation counted as broken (default 1e-8 float64, 1e-4 float32)")
    parser.add_argument("--train", action="store_true", help="check in train mode (batch statistics)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all-layers", action="store_true", help="print every layer's deviation")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", action="store_true", help="print nothing; the exit status tells (0 = pass)")


register_command(
    "check", _check, _check_arguments,
    help="check that a model is exactly equivariant/invariant under the grid symmetries and name the first "
         "layer that is not (exit status 1)",
)

def _models(args: argparse.Namespace) -> int:
    from .models.registry import list_models, model_info

    for name in list_models(args.pattern):
        info = model_info(name)
        group = info.group or "none (baseline)"
        print(f"{name:<16} {info.spatial_dims}D  invariant to: {group:<16} {info.description}")
    return 0


register_command("models", _models, lambda p: p.add_argument("pattern", nargs="?", help="glob, e.g. 'sre_*'"),
                 help="list the registered models")

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
