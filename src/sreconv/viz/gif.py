"""Animated GIF of a test image turning through 360 degrees, with each model's CAM overlay and class
probabilities, e.g. an SRE-ResNet next to a plain ResNet baseline.

Frames are drawn with matplotlib and written with ``imageio``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .cam import central_slice, compute_cams, display_image, find_target_layer, overlay, rotate_view
from .run import VizError

__all__ = ["RotationTrack", "rotation_track", "render_gif"]


@dataclass
class RotationTrack:
    """One model's view of the rotating image: per-frame display image, CAM and class probabilities."""

    title: str
    angles: list[float]
    images: list[np.ndarray]
    cams: list[np.ndarray]
    probs: np.ndarray
    target: int
    class_names: list[str]
    label: int | None = None


def rotation_track(
    model: torch.nn.Module,
    x: torch.Tensor,
    angles: Sequence[float],
    *,
    method: str = "gradcam",
    layer: str | None = None,
    target: int | None = None,
    label: int | None = None,
    class_names: Sequence[str] = (),
    axis: str = "z",
    multi_label: bool = False,
    title: str = "",
    batch_size: int = 16,
) -> RotationTrack:
    """CAMs and probabilities of ``model`` for ``x`` ``(C, *S)`` rotated by each angle.

    The CAM explains ``target`` (default: the prediction on the upright image) in every frame, so a change
    of the map comes from the rotation, not from a change of class.
    """
    from sreconv.data import normalized_fill

    model.eval()
    find_target_layer(model, layer)
    views = torch.cat([rotate_view(x[None].float(), a, axis, fill=normalized_fill()) for a in angles])
    with torch.no_grad():
        logits = torch.cat(
            [model(views[i : i + batch_size]) for i in range(0, len(views), batch_size)]
        ).double()
    probs = (torch.sigmoid(logits) if multi_label else torch.softmax(logits, 1)).numpy()
    if target is None:
        target = int(np.argmax(probs[0]))
    cams = np.concatenate(
        [
            compute_cams(
                model, views[i : i + batch_size], [target] * len(views[i : i + batch_size]), method, layer
            )
            for i in range(0, len(views), batch_size)
        ]
    )
    spatial = x.dim() - 1
    show = (lambda c: c) if spatial == 2 else (lambda c: central_slice(c, axis))
    return RotationTrack(
        title=title,
        angles=[float(a) for a in angles],
        images=[display_image(v, axis) for v in views],
        cams=[show(c) for c in cams],
        probs=probs,
        target=target,
        class_names=list(class_names),
        label=label,
    )


def _frame(tracks: Sequence[RotationTrack], k: int, fig, top: int = 10) -> np.ndarray:
    fig.clear()
    axes = fig.subplots(2, len(tracks), squeeze=False, gridspec_kw={"height_ratios": [3, 2]})
    for j, t in enumerate(tracks):
        names = t.class_names or [str(i) for i in range(t.probs.shape[1])]
        p = t.probs[k]
        pred = int(np.argmax(p))
        ax = axes[0, j]
        ax.imshow(overlay(t.images[k], t.cams[k]))
        ax.set_xticks([])
        ax.set_yticks([])
        ok = "" if t.label is None else (" ✓" if pred == t.label else " ✗")
        ax.set_title(f"{t.title}\npred {names[pred][:14]} ({p[pred]:.2f}){ok}", fontsize=9)
        # The bar chart shows the most probable classes of the upright image, in a fixed order across frames.
        shown = np.argsort(-t.probs[0])[:top] if len(p) > top else np.arange(len(p))
        colors = ["tab:green" if c == t.label else "tab:blue" for c in shown]
        ax = axes[1, j]
        ax.bar(np.arange(len(shown)), p[shown], color=colors)
        ax.set_xticks(
            np.arange(len(shown)),
            [names[c][:6] for c in shown],
            fontsize=7,
            rotation=0 if len(shown) <= 10 and max(len(names[c][:6]) for c in shown) <= 2 else 60,
        )
        ax.set_ylim(0, 1)
        ax.tick_params(axis="y", labelsize=7)
        if j == 0:
            ax.set_ylabel("probability", fontsize=8)
    fig.suptitle(f"rotation {tracks[0].angles[k]:.0f}°", fontsize=10)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def render_gif(tracks: Sequence[RotationTrack], path: str, duration_ms: int = 120, dpi: int = 80) -> str:
    """Writes an animated GIF (looping) with one column per track and one frame per angle."""
    import imageio.v3 as iio
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(tracks[0].angles)
    if any(len(t.angles) != n for t in tracks):
        raise VizError("all models of a GIF must use the same angles")
    # A fixed figure (no tight bbox) so every frame has the same size.
    fig = plt.figure(figsize=(2.6 * len(tracks), 4.2), dpi=dpi, layout="constrained")
    try:
        frames = [_frame(tracks, k, fig) for k in range(n)]
    finally:
        plt.close(fig)
    iio.imwrite(path, np.stack(frames), extension=".gif", duration=duration_ms, loop=0)
    return path
