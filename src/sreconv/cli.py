"""The ``sreconv`` command line (also ``python -m sreconv``): one table of commands, one error convention.

Every command is a module with three names: ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) ->
int``. :data:`COMMANDS` maps command names to those modules; they are imported to build the parser and must
keep heavy imports inside ``run``. No command module imports this one.

Exit status, for every command:

* ``0``: done (``check``: the model passed);
* ``1``: the command ran and failed (``check``: a layer breaks equivariance; a write failed because the disk
  is full, a permission is missing, ...);
* ``2``: refused before any work: a bad flag, setting or input file (argparse's own errors included);
* ``130``: interrupted (Ctrl-C); ``sreconv train --resume DIR`` continues a training run.

Errors are one line on stderr, ``sreconv <command>: error: <message>``; ``SRECONV_DEBUG=1`` shows the traceback.

Example:
    >>> main(["check", "sre_resnet18", "--kw", "inplanes=4", "--kw", "num_classes=3", "--size", "9",
    ...       "--quiet"])
    0
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["COMMANDS", "build_parser", "main"]

#: Command name -> module providing ``HELP``, ``add_arguments`` and ``run``.
COMMANDS: dict[str, str] = {
    "train": "sreconv.commands.train",
    "eval": "sreconv.commands.evaluate",
    "check": "sreconv.commands.check",
    "models": "sreconv.commands.models",
    "cam": "sreconv.commands.cam",
    "gif": "sreconv.commands.gif",
    "plot": "sreconv.commands.plot",
    "kernels": "sreconv.commands.kernels",
    "report": "sreconv.commands.report",
    "compare": "sreconv_bench.compare.command",
}

# Refused before any work: bad settings, files that are missing or unusable, missing optional packages.
_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError, FileNotFoundError, IsADirectoryError,
                 NotADirectoryError, BlockingIOError, ImportError)
# The command started and could not finish.
_RUN_ERRORS = (OSError, RuntimeError)


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="sreconv",
                                     description="Symmetric rotation-equivariant convolution (SRE-Conv) tools.")
    parser.add_argument("--version", action="version", version=f"sreconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in sorted(COMMANDS):
        try:
            module = _load(name)
        except ModuleNotFoundError as err:
            if err.name is None or not COMMANDS[name].startswith(err.name):
                raise
            continue  # a command whose package is not installed (the benchmark package) is not offered
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
    return parser


def _one_line(err: BaseException) -> str:
    message = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, KeyError):
        message = f"missing key {message}"
    if isinstance(err, OSError) and err.strerror and err.filename and err.strerror in message:
        message = f"{err.filename}: {err.strerror}"
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sreconv`` console script; returns the exit status (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    if args.command is None:
        parser.print_help()
        return 2
    try:
        status = _load(args.command).run(args)
    except KeyboardInterrupt:
        hint = "; continue with sreconv train --resume DIR" if args.command == "train" else ""
        print(f"sreconv {args.command}: interrupted{hint}", file=sys.stderr, flush=True)
        return 130
    except (*_INPUT_ERRORS, *_RUN_ERRORS) as err:
        if os.environ.get("SRECONV_DEBUG"):
            raise
        print(f"sreconv {args.command}: error: {_one_line(err)}", file=sys.stderr, flush=True)
        return 2 if isinstance(err, _INPUT_ERRORS) else 1
    return 0 if status is None else int(status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
