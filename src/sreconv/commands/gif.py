"""``sreconv gif``: a test image turning through 360° with its CAM overlay and class probabilities."""

from __future__ import annotations

import argparse

from ._runs import add_cam_options, add_model_source, cam_options, default_output, load_pair, sample_for

HELP = ("animated GIF of a test image turning through 360° with CAM overlay and class probabilities (optionally "
        "beside a baseline)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_source(parser, baseline=True)
    add_cam_options(parser)
    parser.add_argument("--frames", type=int, default=36, metavar="N", help="frames per turn (default 36: 10° steps)")
    parser.add_argument("--duration", type=int, default=120, metavar="MS", help="milliseconds per frame (default 120)")
    parser.add_argument("-o", "--output", metavar="FILE.gif", help="default DIR/rotation_<index>.gif")


def run(args: argparse.Namespace) -> int:
    from sreconv.viz.gif import render_gif, rotation_track
    from sreconv.viz.report import _label

    if args.frames < 2:
        raise ValueError(f"--frames must be at least 2, got {args.frames}")
    if args.duration < 1:
        raise ValueError(f"--duration must be at least 1 ms, got {args.duration}")
    runs = load_pair(args)
    x, y = sample_for(runs, args.index)
    angles = [360.0 * k / args.frames for k in range(args.frames)]
    tracks = [rotation_track(loaded.model, x, angles, **cam_options(args, loaded, _label(y))) for loaded in runs]
    out = render_gif(tracks, default_output(args, f"rotation_{args.index}.gif"), duration_ms=args.duration)
    for t in tracks:
        correct = ("" if t.label is None
                   else f", correct in {sum(int(p.argmax() == t.label) for p in t.probs)}/{len(t.angles)} frames")
        print(f"{t.title}: p(class {t.target}) from {t.probs[:, t.target].min():.3f} to "
              f"{t.probs[:, t.target].max():.3f} over {len(t.angles)} angles{correct}")
    print(f"GIF ({len(angles)} frames) in {out}")
    return 0
