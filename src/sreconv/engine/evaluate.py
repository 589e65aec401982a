"""Evaluation: metrics on a dataset, under rotations (2D and 3D) and under flips.

Views (rotations, flips) are applied to each *batch* the loader yields, i.e. to the model's input after
the dataset's own transform, with :mod:`sreconv.data.rotation` (exact ``torch.rot90`` at multiples of 90°,
bilinear/trilinear interpolation otherwise). The dataset and its ``transform`` are never modified. Because
the standard pipelines normalise, pixels entering the frame are filled with ``fill`` **in the units of the
model's input**: pass the normalised background (``sreconv.data.transforms.normalized_fill()`` = -1 for
mean/std 0.5, which is what ``sreconv train``/``eval`` use) so that the result equals rotating raw [0, 1]
images with a black (0) fill and normalising afterwards. ``mask=True`` restricts every image, upright ones
included, to its inscribed disc (ball in 3D) so no content leaves or enters the frame at any angle.

Every image of the dataset is loaded once; all views of a batch are scored before the next batch is read.
Under ``torch.distributed`` each rank scores a contiguous shard and the logits are gathered, so every rank
returns the metrics of the whole dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from . import distributed as dist_utils
from .metrics import METRICS, MULTI_CLASS, MULTI_LABEL, check_task, compute_metrics, scores_from_logits
from .runtime import autocast

View = Callable[[torch.Tensor], torch.Tensor]

DEFAULT_ANGLES_2D = tuple(range(0, 360, 10))
DEFAULT_ANGLES_3D = tuple(range(0, 360, 30))
AXES_3D = ("x", "y", "z")
FLIPS_2D = ("none", "horizontal", "vertical")
FLIPS_3D = FLIPS_2D + ("depth",)


def infer_task(dataset, task: str | None) -> str:
    """``task`` if given, else ``dataset.task`` if the dataset has one, else ``"multi-class"``."""
    if task is None:
        task = getattr(dataset, "task", None) or MULTI_CLASS
    return check_task(task)


def _spatial_dims(dataset, spatial_dims: int | None) -> int:
    if spatial_dims is None:
        spatial_dims = getattr(dataset, "spatial_dims", None)
    if spatial_dims is None:
        image = dataset[0][0]
        spatial_dims = image.dim() - 1
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    return spatial_dims


class _Shard(Dataset):
    """Contiguous slice of a dataset: rank ``r`` of ``w`` gets items ``[r*N//w, (r+1)*N//w)``, no padding."""

    def __init__(self, dataset: Dataset, rank: int, world: int) -> None:
        n = len(dataset)
        self.dataset, self.start, self.stop = dataset, rank * n // world, (rank + 1) * n // world

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int):
        return self.dataset[self.start + i]


@torch.no_grad()
def predict_views(
    model: nn.Module,
    data: Dataset | DataLoader,
    views: Sequence[View],
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    amp: str | None = None,
    progress: bool = False,
    desc: str = "eval",
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Logits of the model on every view of every item.

    Args:
        model: classifier mapping ``(N, C, *S)`` to ``(N, K)``; put in eval mode for the call and restored after.
        data: a map-style dataset of ``(image, target)`` (sharded across ranks under torch.distributed) or a
            ready ``DataLoader`` (used as is, no sharding).
        views: functions applied to each input batch (on ``device``), e.g. ``lambda x: rotate(x, 45, fill=-1)``.
        batch_size, num_workers: of the loader built for a dataset.
        device: where the model runs; default: the device of its first parameter.
        amp: None, ``"fp16"`` or ``"bf16"`` autocast (CUDA only).
        progress: show a tqdm bar (main rank only).
        desc: label of the bar.

    Returns:
        ``(logits, targets)``: one float32 CPU tensor ``(N, K)`` per view, in dataset order, and the targets.
    """
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    if isinstance(data, DataLoader):
        loader = data
        sharded = False
    else:
        rank, world = dist_utils.rank(), dist_utils.world_size()
        sharded = world > 1
        subset = _Shard(data, rank, world) if sharded else data
        loader = DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    was_training = model.training
    model.eval()
    outputs: list[list[torch.Tensor]] = [[] for _ in views]
    targets: list[torch.Tensor] = []
    iterator = loader
    if progress and dist_utils.is_main():
        from tqdm import tqdm

        iterator = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True)
    try:
        for images, target in iterator:
            images = images.to(device, non_blocking=True)
            for i, view in enumerate(views):
                with autocast(device, amp):
                    logits = model(view(images))
                outputs[i].append(logits.float().cpu())
            targets.append(torch.as_tensor(target).cpu())
    finally:
        model.train(was_training)
    logits_per_view = [torch.cat(o) if o else torch.zeros(0) for o in outputs]
    all_targets = torch.cat(targets) if targets else torch.zeros(0, dtype=torch.long)
    if sharded:
        gathered = dist_utils.all_gather_object((logits_per_view, all_targets))
        logits_per_view = [torch.cat([g[0][i] for g in gathered if len(g[1])]) for i in range(len(views))]
        all_targets = torch.cat([g[1] for g in gathered if len(g[1])])
    return logits_per_view, all_targets


def _metrics(logits: torch.Tensor, targets: torch.Tensor, task: str) -> dict[str, float]:
    scores = scores_from_logits(logits, task).numpy()
    return compute_metrics(targets.numpy(), scores, task)


def evaluate(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    task: str | None = None,
    view: View | None = None,
    batch_size: int = 256,
    num_workers: int = 0,
    device=None,
    amp: str | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Accuracy, AUC, balanced accuracy, macro F1 (and mean loss) of ``model`` on ``data``.

    Args:
        model: the classifier.
        data: dataset of ``(image, target)`` or a DataLoader.
        task: MedMNIST task name; default: ``data.task`` if present, else ``"multi-class"``.
        view: optional function applied to each input batch.
        batch_size, num_workers, device, amp, progress: see :func:`predict_views`.

    Returns:
        ``{"acc", "auc", "balanced_acc", "f1", "loss"}``.

    Example:
        >>> import torch.nn as nn
        >>> from torch.utils.data import TensorDataset
        >>> data = TensorDataset(torch.randn(8, 1, 4, 4), torch.arange(8) % 2)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> sorted(evaluate(model, data))
        ['acc', 'auc', 'balanced_acc', 'f1', 'loss']
    """
    task = infer_task(getattr(data, "dataset", data) if isinstance(data, DataLoader) else data, task)
    (logits,), targets = predict_views(
        model, data, [view or (lambda x: x)], batch_size=batch_size, num_workers=num_workers, device=device,
        amp=amp, progress=progress,
    )
    result = _metrics(logits, targets, task)
    result["loss"] = float(loss_fn(task)(logits, loss_target(targets, task)).item()) if len(targets) else float("nan")
    return result


def loss_fn(task: str) -> nn.Module:
    """Cross-entropy for single-label tasks, per-label BCE-with-logits for the multi-label task."""
    return nn.BCEWithLogitsLoss() if check_task(task) == MULTI_LABEL else nn.CrossEntropyLoss()


def loss_target(target: torch.Tensor, task: str) -> torch.Tensor:
    if task == MULTI_LABEL:
        return target.float()
    return target.reshape(-1).long()


def _rotation_block(logits: list[torch.Tensor], targets, task: str, angles: Sequence[float]) -> dict:
    per_angle = [_metrics(lg, targets, task) for lg in logits]
    block: dict[str, list] = {"angles": [float(a) for a in angles]}
    for name in METRICS:
        block[name] = [m[name] for m in per_angle]
    return block


def evaluate_rotations(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    angles: Sequence[float] | None = None,
    axes: Sequence[str] | None = None,
    spatial_dims: int | None = None,
    fill: float | Sequence[float] = 0.0,
    mask: bool = False,
    task: str | None = None,
    batch_size: int = 256,
    num_workers: int = 0,
    device=None,
    amp: str | None = None,
    progress: bool = False,
) -> dict:
    """Metrics of ``model`` on ``data`` rotated by each angle (counter-clockwise as displayed).

    Args:
        model, data, task, batch_size, num_workers, device, amp, progress: see :func:`evaluate`.
        angles: degrees; default 0, 10, ..., 350 in 2D and 0, 30, ..., 330 in 3D.
        axes: 3D only: rotation axes among ``"x", "y", "z"`` (default all three).
        spatial_dims: 2 or 3; default ``data.spatial_dims`` or inferred from the first image.
        fill: background for pixels entering the frame, in the units of the model input (see module doc).
        mask: restrict all images (all angles) to their inscribed disc/ball.

    Returns:
        2D: ``{"angles": [...], "acc": [...], "auc": [...], "balanced_acc": [...], "f1": [...]}``;
        3D: ``{"x": block, "y": block, "z": block}`` with one such block per axis.
    """
    from sreconv.data.rotation import rotate, rotate3d

    base = data.dataset if isinstance(data, DataLoader) else data
    task = infer_task(base, task)
    ndim = _spatial_dims(base, spatial_dims)
    if angles is None:
        angles = DEFAULT_ANGLES_2D if ndim == 2 else DEFAULT_ANGLES_3D
    angles = [float(a) for a in angles]
    if not angles:
        raise ValueError("angles must not be empty")
    kwargs = dict(batch_size=batch_size, num_workers=num_workers, device=device, amp=amp, progress=progress)
    if ndim == 2:
        if axes is not None:
            raise ValueError("axes only apply to 3D data")
        views = [lambda x, a=a: rotate(x, a, fill=fill, mask=mask) for a in angles]
        logits, targets = predict_views(model, data, views, desc="rotations", **kwargs)
        return _rotation_block(logits, targets, task, angles)
    axes = list(AXES_3D if axes is None else axes)
    bad = [a for a in axes if a not in AXES_3D]
    if bad or not axes:
        raise ValueError(f"axes must be a non-empty subset of {AXES_3D}, got {axes}")
    views = [lambda x, a=a, ax=ax: rotate3d(x, a, ax, fill=fill, mask=mask) for ax in axes for a in angles]
    logits, targets = predict_views(model, data, views, desc="rotations", **kwargs)
    n = len(angles)
    return {ax: _rotation_block(logits[i * n:(i + 1) * n], targets, task, angles) for i, ax in enumerate(axes)}


def evaluate_flips(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    modes: Sequence[str] | None = None,
    spatial_dims: int | None = None,
    task: str | None = None,
    batch_size: int = 256,
    num_workers: int = 0,
    device=None,
    amp: str | None = None,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Metrics of ``model`` on ``data`` mirrored: ``none``, ``horizontal`` (W), ``vertical`` (H), ``depth`` (D, 3D).

    Args:
        modes: subset of the flips above; default all of them for the data's dimensionality.
        Others: see :func:`evaluate_rotations`.

    Returns:
        ``{mode: {"acc", "auc", "balanced_acc", "f1"}}``.
    """
    from sreconv.data.rotation import flip

    base = data.dataset if isinstance(data, DataLoader) else data
    task = infer_task(base, task)
    ndim = _spatial_dims(base, spatial_dims)
    valid = FLIPS_2D if ndim == 2 else FLIPS_3D
    modes = list(valid if modes is None else modes)
    bad = [m for m in modes if m not in valid]
    if bad or not modes:
        raise ValueError(f"flip modes must be a non-empty subset of {valid} for {ndim}D data, got {modes}")
    views = [lambda x, m=m: flip(x, m, ndim) for m in modes]
    logits, targets = predict_views(
        model, data, views, batch_size=batch_size, num_workers=num_workers, device=device, amp=amp,
        progress=progress, desc="flips",
    )
    return {m: _metrics(lg, targets, task) for m, lg in zip(modes, logits)}
