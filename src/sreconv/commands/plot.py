"""``sreconv plot``: accuracy and AUC vs rotation angle (polar and Cartesian) and flips from results files."""

from __future__ import annotations

import argparse

HELP = "accuracy and AUC vs rotation angle (polar and Cartesian) and flips from results.json files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="RESULTS.json", help="results files (or run folders)")
    parser.add_argument("-o", "--output", default="rotation_plot.png", metavar="FILE.png",
                        help="default rotation_plot.png")
    parser.add_argument("--labels", nargs="+", metavar="NAME", help="legend names (default: run folder names)")
    parser.add_argument("--title", help="figure title")


def run(args: argparse.Namespace) -> int:
    from sreconv.viz.plots import plot_files

    out = plot_files(args.results, args.output, labels=args.labels, title=args.title)
    print(f"plot in {out}")
    return 0
