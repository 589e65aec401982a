"""``sreconv eval``: evaluate a checkpoint on the test (or val) set, upright, rotated and flipped."""

from __future__ import annotations

import argparse
import os
from typing import Any

from . import add_config_arguments, explicit_settings

HELP = "evaluate a checkpoint upright, rotated and flipped"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR", default=argparse.SUPPRESS,
                        help="a training output folder: evaluates checkpoints/best.pt if present, else last.pt, and "
                             "writes DIR/eval.json")
    parser.add_argument("--checkpoint", metavar="FILE.pt", default=argparse.SUPPRESS,
                        help="checkpoint to evaluate (training checkpoint, bare state_dict or official "
                             "{'state_dict'} file)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a checkpoint that needs arbitrary code to load; only for files you trust")
    parser.add_argument("--config", metavar="FILE.yaml", default=argparse.SUPPRESS,
                        help="settings (needed when the checkpoint has none)")
    parser.add_argument("--split", choices=["test", "val"], default="test", help="split to evaluate (default test)")
    parser.add_argument("--results", metavar="FILE.json", default=argparse.SUPPRESS,
                        help="where to write the results (default DIR/eval.json)")
    add_config_arguments(parser, ("data", "model", "runtime", "evaluation"),
                         defaults={"eval_rot": True, "eval_flip": True})


def resolve(args: argparse.Namespace) -> tuple[Any, str, str | None]:
    """``(config, checkpoint path, results path)`` for ``sreconv eval``."""
    from sreconv.engine.checkpoint import find_checkpoint, load_checkpoint
    from sreconv.engine.config import TrainConfig, load_yaml, saved_settings

    flags = explicit_settings(args)
    out = flags.pop("out", None)
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint is None:
        if out is None:
            raise ValueError("give --out DIR (a training output folder) or --checkpoint FILE.pt")
        checkpoint = find_checkpoint(out, ("best", "last"))
    values: dict[str, Any] = {}
    ckpt = load_checkpoint(checkpoint, trusted=args.trust_checkpoint)
    config_file = getattr(args, "config", None)
    if isinstance(ckpt, dict) and isinstance(ckpt.get("config"), dict):
        values.update(saved_settings(ckpt["config"]))
    elif out and os.path.isfile(os.path.join(out, "config.yaml")):
        values.update(load_yaml(os.path.join(out, "config.yaml")))
    elif config_file is None and "dataset" not in flags:
        raise ValueError(f"{checkpoint} holds no settings: pass --config FILE.yaml or --dataset/--model flags")
    if config_file is not None:
        values.update(load_yaml(config_file))
    values.update({"eval_rot": True, "eval_flip": True})
    values.update(flags)
    config = TrainConfig.from_dict(values, "settings").validate()
    results = getattr(args, "results", None) or (os.path.join(out, "eval.json") if out else None)
    return config, checkpoint, results


def run(args: argparse.Namespace) -> int:
    from sreconv.engine.runner import run_eval

    config, checkpoint, results = resolve(args)
    run_eval(config, checkpoint, args.split, results, trusted=args.trust_checkpoint)
    return 0
