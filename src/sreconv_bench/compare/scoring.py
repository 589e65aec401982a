"""How a trained model is scored: the test views (rotations, bilinear and bicubic; flips) and their metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ["score_model", "INTERPOLATIONS"]

#: Resampling of the rotated views; multiples of 90 degrees are exact ``rot90`` turns in both.
INTERPOLATIONS = ("bilinear", "bicubic")


def _accuracy(logits: torch.Tensor, targets: torch.Tensor, task: str) -> float:
    from sreconv.engine.metrics import compute_metrics, scores_from_logits

    return float(compute_metrics(targets.numpy(), scores_from_logits(logits, task).numpy(), task)["acc"])


def _per_class(logits: torch.Tensor, targets: torch.Tensor) -> list[float]:
    pred, t = logits.argmax(1), targets.reshape(-1)
    return [float((pred[t == c] == c).float().mean()) if bool((t == c).any()) else float("nan")
            for c in range(logits.shape[1])]


def _views(angles: list[float], fill: float) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    from sreconv.data import flip, rotate

    views: list[Callable[[torch.Tensor], torch.Tensor]] = []
    for mode in INTERPOLATIONS:
        views += [lambda x, a=a, m=mode: rotate(x, a, fill=fill, interpolation=m) for a in angles]
    views += [lambda x: flip(x, "horizontal", 2), lambda x: flip(x, "vertical", 2)]
    views += [lambda x, m=mode: rotate(x, 45.0, fill=fill, interpolation=m) for mode in INTERPOLATIONS]
    return views


def score_model(model: torch.nn.Module, test: Any, angle_step: float, batch_size: int,
                device: torch.device) -> dict[str, Any]:
    """Accuracy of ``model`` on ``test`` at every angle (bilinear and bicubic), 45 degrees, and both flips.

    The background of rotated views is the normalised black (``normalized_fill()``), as
    ``sreconv train --eval-rot`` uses. "D4 logit deviation" is ``max |logits(g x) - logits(x)| / max |logits(x)|``
    over the three quarter turns and the two flips.

    Returns:
        A dict of the run's scores (see the keys below); ``per_class_*`` only for single-label tasks.
    """
    from sreconv.data import normalized_fill
    from sreconv.engine.evaluate import infer_task, predict_views

    task = infer_task(test, None)
    angles = [float(a) for a in np.arange(0, 360, angle_step)]
    views = _views(angles, normalized_fill())
    t0 = time.time()
    logits, targets = predict_views(model, test, views, batch_size=batch_size, device=device)
    eval_s = time.time() - t0
    n = len(angles)
    bilinear, bicubic = logits[:n], logits[n:2 * n]
    flips = logits[2 * n:2 * n + 2]
    rot_acc = [_accuracy(lg, targets, task) for lg in bilinear]
    rot_acc_bicubic = [_accuracy(lg, targets, task) for lg in bicubic]
    quarter = [i for i, a in enumerate(angles) if a % 90 == 0]
    exact_views = [bilinear[i] for i in quarter] + list(flips)
    scale = float(bilinear[0].abs().max()) or 1.0
    out: dict[str, Any] = {
        "eval_images_per_s": len(targets) * len(views) / max(eval_s, 1e-9),
        "angles": angles, "rotation_acc": rot_acc, "rotation_acc_bicubic": rot_acc_bicubic,
        "upright_acc": rot_acc[0], "mean_rot_acc": float(np.mean(rot_acc)), "worst_rot_acc": float(np.min(rot_acc)),
        "mean_rot_acc_bicubic": float(np.mean(rot_acc_bicubic)),
        "worst_rot_acc_bicubic": float(np.min(rot_acc_bicubic)),
        "acc_45": _accuracy(logits[-2], targets, task), "acc_45_bicubic": _accuracy(logits[-1], targets, task),
        "acc_quarter_turns": [rot_acc[i] for i in quarter],
        "flip_acc": {"horizontal": _accuracy(flips[0], targets, task),
                     "vertical": _accuracy(flips[1], targets, task)},
        "d4_logit_deviation": max(float((lg - bilinear[0]).abs().max()) for lg in exact_views) / scale,
        "n_test": len(targets), "label_names": list(getattr(test, "label_names", [])),
    }
    out["mean_flip_acc"] = float(np.mean(list(out["flip_acc"].values())))
    out["gap"] = out["upright_acc"] - out["mean_rot_acc"]
    if task != "multi-label, binary-class":
        out["per_class_upright"] = _per_class(bilinear[0], targets)
        out["per_class_mean_rot"] = np.mean([_per_class(lg, targets) for lg in bilinear], 0).tolist()
    return out
