"""Options the visualisation commands share: which trained model(s) to load and how to draw CAMs."""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_model_source(p: argparse.ArgumentParser, baseline: bool = False) -> None:
    p.add_argument("--run", metavar="DIR",
                   help="a sreconv train output folder (uses checkpoints/best.pt, else last.pt, else model.pt)")
    p.add_argument("--checkpoint", metavar="FILE.pt", help="a checkpoint written by sreconv train")
    if baseline:
        p.add_argument("--baseline-run", metavar="DIR", help="a second run (e.g. a plain ResNet) shown beside it")
        p.add_argument("--baseline-checkpoint", metavar="FILE.pt", help="checkpoint of the second model")


def add_cam_options(p: argparse.ArgumentParser) -> None:
    from sreconv.viz.cam import CAM_METHODS

    p.add_argument("--index", type=int, default=0, metavar="N", help="test image index (default 0)")
    p.add_argument("--method", default="gradcam", choices=list(CAM_METHODS),
                   help="CAM method of pytorch_grad_cam (default gradcam); 3D models support the gradient/eigen "
                        "ones, not scorecam/ablationcam/fullgrad")
    p.add_argument("--layer", metavar="NAME", help="target layer (default: the last feature block, layer4)")
    p.add_argument("--target", type=int, metavar="CLASS",
                   help="class to explain (default: the prediction on the upright image)")
    p.add_argument("--axis", default="z", choices=["x", "y", "z"], help="3D rotation axis (default z)")


def cam_options(args: argparse.Namespace, run: Any, label: int | None) -> dict[str, Any]:
    """Keyword arguments of ``cam_sweep`` / ``rotation_track`` given by the flags of :func:`add_cam_options`."""
    return dict(method=args.method, layer=args.layer, target=args.target, label=label,
                class_names=run.label_names(), axis=args.axis, title=run.name,
                multi_label=run.test_set().task.startswith("multi-label"))


def load_pair(args: argparse.Namespace) -> list[Any]:
    from sreconv.viz.run import load_run

    runs = [load_run(args.run, args.checkpoint)]
    if getattr(args, "baseline_run", None) or getattr(args, "baseline_checkpoint", None):
        runs.append(load_run(args.baseline_run, args.baseline_checkpoint))
    return runs


def sample_for(runs: list[Any], index: int) -> tuple[Any, Any]:
    x, y = runs[0].sample(index)
    for other in runs[1:]:
        channels = getattr(other.model, "in_channels", x.shape[0])
        if other.spatial_dims != x.dim() - 1 or channels != x.shape[0]:
            raise ValueError(f"{other.name} takes {other.spatial_dims}D inputs with {channels} channels but test "
                             f"image {index} of {runs[0].name} has shape {tuple(x.shape)}")
    return x, y


def default_output(args: argparse.Namespace, stem: str) -> str:
    if args.output:
        return str(args.output)
    folder = args.run or (os.path.dirname(os.path.dirname(os.path.abspath(args.checkpoint))) if args.checkpoint
                          else ".")
    return os.path.join(folder, stem)
