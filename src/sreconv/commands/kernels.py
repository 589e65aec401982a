"""``sreconv kernels``: ring profiles and rendered kernels of a trained model's SRE layers."""

from __future__ import annotations

import argparse
import os

HELP = "ring profiles and rendered kernels of a checkpoint's SRE layers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint written by sreconv train (or its run "
                                                                 "folder)")
    parser.add_argument("--layers", nargs="+", metavar="NAME",
                        help="SRE layers to draw (default: the stem and the first SRE conv of each stage)")
    parser.add_argument("--channels", type=int, default=6, metavar="N", help="output channels per layer (default 6)")
    parser.add_argument("-o", "--output", metavar="FILE.png", help="default <run>/kernels.png")


def run(args: argparse.Namespace) -> int:
    from sreconv.viz.kernels import plot_kernels
    from sreconv.viz.run import load_run

    if args.channels < 1:
        raise ValueError(f"--channels must be >= 1, got {args.channels}")
    loaded = load_run(run_dir=args.checkpoint) if os.path.isdir(args.checkpoint) else load_run(
        checkpoint=args.checkpoint)
    out = args.output or os.path.join(loaded.run_dir or ".", "kernels.png")
    plot_kernels(loaded.model, out, layers=args.layers, channels=args.channels, title=loaded.name)
    print(f"kernels in {out}")
    return 0
