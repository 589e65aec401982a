"""Registers ``sreconv cam``, ``gif``, ``plot``, ``kernels`` and ``report`` with the console script.

Bad input (missing run folder, index out of range, a 2D-only CAM method on a 3D model...) prints one line
``sreconv <cmd>: error: ...`` and exits with status 1; ``SRECONV_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from sreconv.cli import register_command

from .cam import CAM_METHODS, DEFAULT_ANGLES

_ERRORS = (ValueError, TypeError, KeyError, OSError, ImportError, RuntimeError, IndexError)


def _guarded(name: str, func: Callable[[argparse.Namespace], int | None]):
    def run(args: argparse.Namespace) -> int:
        try:
            status = func(args)
        except KeyboardInterrupt:
            return 130
        except _ERRORS as err:
            if os.environ.get("SRECONV_DEBUG"):
                raise
            message = " ".join(str(err).split()) or type(err).__name__
            print(f"sreconv {name}: error: {message}", file=sys.stderr, flush=True)
            return 1
        return 0 if status is None else int(status)

    return run


def _add_model_source(p: argparse.ArgumentParser, baseline: bool = False) -> None:
    p.add_argument(
        "--run",
        metavar="DIR",
        help="a sreconv train output folder (uses checkpoints/best.pt, else last.pt, else model.pt)",
    )
    p.add_argument("--checkpoint", metavar="FILE.pt", help="a checkpoint written by sreconv train")
    if baseline:
        p.add_argument(
            "--baseline-run", metavar="DIR", help="a second run (e.g. a plain ResNet) shown beside it"
        )
        p.add_argument("--baseline-checkpoint", metavar="FILE.pt", help="checkpoint of the second model")


def _add_cam_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", type=int, default=0, metavar="N", help="test image index (default 0)")
    p.add_argument(
        "--method",
        default="gradcam",
        choices=list(CAM_METHODS),
        help="CAM method of pytorch_grad_cam (default gradcam); 3D models support the gradient/eigen "
        "ones, not scorecam/ablationcam/fullgrad",
    )
    p.add_argument("--layer", metavar="NAME", help="target layer (default: the last feature block, layer4)")
    p.add_argument(
        "--target",
        type=int,
        metavar="CLASS",
        help="class to explain (default: the prediction on the upright image)",
    )
    p.add_argument("--axis", default="z", choices=["x", "y", "z"], help="3D rotation axis (default z)")


def _cam_options(args: argparse.Namespace, run, label: int | None) -> dict[str, Any]:
    """Keyword arguments of ``cam_sweep`` / ``rotation_track`` given by the flags of :func:`_add_cam_options`."""
    return dict(method=args.method, layer=args.layer, target=args.target, label=label,
                class_names=run.label_names(), axis=args.axis, title=run.name,
                multi_label=run.test_set().task.startswith("multi-label"))


def _load_pair(args: argparse.Namespace):
    from .run import load_run

    runs = [load_run(args.run, args.checkpoint)]
    if getattr(args, "baseline_run", None) or getattr(args, "baseline_checkpoint", None):
        runs.append(load_run(args.baseline_run, args.baseline_checkpoint))
    return runs


def _sample_for(runs, index: int):
    x, y = runs[0].sample(index)
    for other in runs[1:]:
        channels = getattr(other.model, "in_channels", x.shape[0])
        if other.spatial_dims != x.dim() - 1 or channels != x.shape[0]:
            raise ValueError(
                f"{other.name} takes {other.spatial_dims}D inputs with {channels} channels but test "
                f"image {index} of {runs[0].name} has shape {tuple(x.shape)}"
            )
    return x, y


def _default_out(args: argparse.Namespace, stem: str) -> str:
    if args.output:
        return args.output
    folder = args.run or (
        os.path.dirname(os.path.dirname(os.path.abspath(args.checkpoint))) if args.checkpoint else "."
    )
    return os.path.join(folder, stem)


# ------------------------------------------------------------------------------------------------ cam
def _cam_args(p: argparse.ArgumentParser) -> None:
    _add_model_source(p, baseline=True)
    _add_cam_options(p)
    p.add_argument(
        "--angles",
        type=float,
        nargs="+",
        default=list(DEFAULT_ANGLES),
        metavar="DEG",
        help=f"rotation angles (default {' '.join(f'{a:g}' for a in DEFAULT_ANGLES)})",
    )
    p.add_argument(
        "--float32",
        action="store_true",
        help="compute in float32 (default float64, which shows "
        "the exactness of invariant models instead of float32 rounding)",
    )
    p.add_argument("-o", "--output", metavar="FILE.png", help="default DIR/cam_<index>.png")


def _cam(args: argparse.Namespace) -> int:
    import torch

    from .cam import cam_sweep, plot_cam_grid
    from .report import _label

    runs = _load_pair(args)
    x, y = _sample_for(runs, args.index)
    sweeps = []
    for run in runs:
        sweeps.append(cam_sweep(run.model, x, args.angles, **_cam_options(args, run, _label(y)),
                                dtype=torch.float32 if args.float32 else torch.float64))
        print(sweeps[-1].table() + "\n")
    out = plot_cam_grid(sweeps, _default_out(args, f"cam_{args.index}.png"))
    print(f"CAM grid in {out}")
    return 0


# ------------------------------------------------------------------------------------------------ gif
def _gif_args(p: argparse.ArgumentParser) -> None:
    _add_model_source(p, baseline=True)
    _add_cam_options(p)
    p.add_argument(
        "--frames", type=int, default=36, metavar="N", help="frames per turn (default 36: 10° steps)"
    )
    p.add_argument(
        "--duration", type=int, default=120, metavar="MS", help="milliseconds per frame (default 120)"
    )
    p.add_argument("-o", "--output", metavar="FILE.gif", help="default DIR/rotation_<index>.gif")


def _gif(args: argparse.Namespace) -> int:
    from .gif import render_gif, rotation_track
    from .report import _label

    if args.frames < 2:
        raise ValueError(f"--frames must be at least 2, got {args.frames}")
    runs = _load_pair(args)
    x, y = _sample_for(runs, args.index)
    angles = [360.0 * k / args.frames for k in range(args.frames)]
    tracks = [rotation_track(run.model, x, angles, **_cam_options(args, run, _label(y))) for run in runs]
    out = render_gif(tracks, _default_out(args, f"rotation_{args.index}.gif"), duration_ms=args.duration)
    for t in tracks:
        correct = (
            ""
            if t.label is None
            else f", correct in {sum(int(p.argmax() == t.label) for p in t.probs)}/{len(t.angles)} frames"
        )
        print(
            f"{t.title}: p(class {t.target}) from {t.probs[:, t.target].min():.3f} to "
            f"{t.probs[:, t.target].max():.3f} over {len(t.angles)} angles{correct}"
        )
    print(f"GIF ({len(angles)} frames) in {out}")
    return 0


# ----------------------------------------------------------------------------------------------- plot
def _plot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", metavar="RESULTS.json", help="results files (or run folders)")
    p.add_argument(
        "-o", "--output", default="rotation_plot.png", metavar="FILE.png", help="default rotation_plot.png"
    )
    p.add_argument("--labels", nargs="+", metavar="NAME", help="legend names (default: run folder names)")
    p.add_argument("--title", help="figure title")


def _plot(args: argparse.Namespace) -> int:
    from .plots import plot_files

    out = plot_files(args.results, args.output, labels=args.labels, title=args.title)
    print(f"plot in {out}")
    return 0


# -------------------------------------------------------------------------------------------- kernels
def _kernels_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="checkpoint written by sreconv train (or its run folder)"
    )
    p.add_argument(
        "--layers",
        nargs="+",
        metavar="NAME",
        help="SRE layers to draw (default: the stem and the first SRE conv of each stage)",
    )
    p.add_argument(
        "--channels", type=int, default=6, metavar="N", help="output channels per layer (default 6)"
    )
    p.add_argument("-o", "--output", metavar="FILE.png", help="default <run>/kernels.png")


def _kernels(args: argparse.Namespace) -> int:
    from .kernels import plot_kernels
    from .run import load_run

    if os.path.isdir(args.checkpoint):
        run = load_run(run_dir=args.checkpoint)
    else:
        run = load_run(checkpoint=args.checkpoint)
    out = args.output or os.path.join(run.run_dir or ".", "kernels.png")
    if args.channels < 1:
        raise ValueError(f"--channels must be >= 1, got {args.channels}")
    plot_kernels(run.model, out, layers=args.layers, channels=args.channels, title=run.name)
    print(f"kernels in {out}")
    return 0


# --------------------------------------------------------------------------------------------- report
def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="sreconv train output folders")
    p.add_argument("-o", "--output", default="report.html", metavar="FILE.html", help="default report.html")
    p.add_argument(
        "--index", type=int, default=0, metavar="N", help="test image of the CAM grids (default 0)"
    )
    p.add_argument(
        "--angles",
        type=float,
        nargs="+",
        default=[0, 45, 90, 180, 270],
        metavar="DEG",
        help="angles of the CAM grids (default 0 45 90 180 270)",
    )
    p.add_argument(
        "--method", default="gradcam", choices=list(CAM_METHODS), help="CAM method (default gradcam)"
    )
    p.add_argument("--no-cam", action="store_true", help="leave out the CAM grids")
    p.add_argument("--title", default="sreconv run report")


def _report(args: argparse.Namespace) -> int:
    from .report import build_report

    out = build_report(
        args.runs,
        args.output,
        cam_index=None if args.no_cam else args.index,
        cam_angles=args.angles,
        method=args.method,
        title=args.title,
    )
    print(f"report in {out} ({os.path.getsize(out) / 1024:.0f} KB)")
    return 0


register_command(
    "cam",
    _guarded("cam", _cam),
    _cam_args,
    help="Grad-CAM (or another pytorch_grad_cam method) of one test image at several angles: PNG "
    "grid with the CAMs rotated back to upright and their differences",
)
register_command(
    "gif",
    _guarded("gif", _gif),
    _gif_args,
    help="animated GIF of a test image turning through 360° with CAM overlay and class "
    "probabilities (optionally beside a baseline)",
)
register_command(
    "plot",
    _guarded("plot", _plot),
    _plot_args,
    help="accuracy and AUC vs rotation angle (polar and Cartesian) and flips from results.json files",
)
register_command(
    "kernels",
    _guarded("kernels", _kernels),
    _kernels_args,
    help="ring profiles and rendered kernels of a checkpoint's SRE layers",
)
register_command(
    "report",
    _guarded("report", _report),
    _report_args,
    help="self-contained HTML report comparing runs: config, metrics, per-angle table, plots, CAMs",
)
