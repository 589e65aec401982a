"""``sreconv report``: one self-contained HTML page comparing training runs."""

from __future__ import annotations

import argparse
import os

HELP = "self-contained HTML report comparing runs: config, metrics, per-angle table, plots, CAMs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sreconv.viz.cam import CAM_METHODS

    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="sreconv train output folders")
    parser.add_argument("-o", "--output", default="report.html", metavar="FILE.html", help="default report.html")
    parser.add_argument("--index", type=int, default=0, metavar="N", help="test image of the CAM grids (default 0)")
    parser.add_argument("--angles", type=float, nargs="+", default=[0, 45, 90, 180, 270], metavar="DEG",
                        help="angles of the CAM grids (default 0 45 90 180 270)")
    parser.add_argument("--method", default="gradcam", choices=list(CAM_METHODS), help="CAM method (default gradcam)")
    parser.add_argument("--no-cam", action="store_true", help="leave out the CAM grids")
    parser.add_argument("--title", default="sreconv run report")


def run(args: argparse.Namespace) -> int:
    from sreconv.viz.report import build_report

    out = build_report(args.runs, args.output, cam_index=None if args.no_cam else args.index, cam_angles=args.angles,
                       method=args.method, title=args.title)
    print(f"report in {out} ({os.path.getsize(out) / 1024:.0f} KB)")
    return 0
