"""``sreconv cam``: CAMs of one test image at several angles, rotated back to upright, in a PNG grid."""

from __future__ import annotations

import argparse

from ._runs import add_cam_options, add_model_source, cam_options, default_output, load_pair, sample_for

HELP = ("Grad-CAM (or another pytorch_grad_cam method) of one test image at several angles: PNG grid with the CAMs "
        "rotated back to upright and their differences")

def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sreconv.viz.cam import DEFAULT_ANGLES

    add_model_source(parser, baseline=True)
    add_cam_options(parser)
    parser.add_argument("--angles", type=float, nargs="+", default=list(DEFAULT_ANGLES), metavar="DEG",
                        help=f"rotation angles (default {' '.join(f'{a:g}' for a in DEFAULT_ANGLES)})")
    parser.add_argument("--float32", action="store_true",
                        help="compute in float32 (default float64, which shows the exactness of invariant models "
                             "instead of float32 rounding)")
    parser.add_argument("-o", "--output", metavar="FILE.png", help="default DIR/cam_<index>.png")


def run(args: argparse.Namespace) -> int:
    import torch

    from sreconv.viz.cam import cam_sweep, plot_cam_grid
    from sreconv.viz.report import _label

    runs = load_pair(args)
    x, y = sample_for(runs, args.index)
    sweeps = []
    for loaded in runs:
        sweeps.append(cam_sweep(loaded.model, x, args.angles, **cam_options(args, loaded, _label(y)),
                                dtype=torch.float32 if args.float32 else torch.float64))
        print(sweeps[-1].table() + "\n")
    out = plot_cam_grid(sweeps, default_output(args, f"cam_{args.index}.png"))
    print(f"CAM grid in {out}")
    return 0
