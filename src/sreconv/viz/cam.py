"""Class activation maps under rotation, computed with ``pytorch_grad_cam`` (the ``grad-cam`` package).

For a rotation-invariant classifier whose last feature block is rotation-equivariant (an SRE-ResNet in eval
mode at multiples of 90 degrees), the CAM of a rotated image is the rotated CAM of the upright one: rotating
each CAM back to upright must give the same map. :func:`cam_sweep` measures exactly that, and
:func:`plot_cam_grid` draws it.

Conventions: images are the model's normalised inputs ``(C, *S)``; angles turn the content counter-clockwise
as displayed (:func:`sreconv.data.rotate`); 3D volumes turn about one axis (``'z'`` by default) and are shown
by their central slice in the plane of rotation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from ..nn.canonical import PrincipalAxisAlign2d, PrincipalAxisAlign3d
from .run import VizError

__all__ = [
    "CAM_METHODS",
    "METHODS_3D",
    "cam_class",
    "find_target_layer",
    "compute_cams",
    "rotate_view",
    "rotate_back",
    "display_image",
    "central_slice",
    "overlay",
    "CamSweep",
    "cam_sweep",
    "plot_cam_grid",
    "DEFAULT_ANGLES",
]

#: ``--method`` name -> class name in ``pytorch_grad_cam``.
CAM_METHODS: dict[str, str] = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "hirescam": "HiResCAM",
    "gradcam-elementwise": "GradCAMElementWise",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM",
    "kpca-cam": "KPCA_CAM",
    "shapleycam": "ShapleyCAM",
    "fem": "FEM",
    "scorecam": "ScoreCAM",
    "ablationcam": "AblationCAM",
    "fullgrad": "FullGrad",
}

#: Methods that work on 3D volumes in grad-cam 1.5 (ScoreCAM upsamples in 2D, AblationCAM/FullGrad reshape
#: to 2D maps: they fail on 5D inputs).
METHODS_3D = (
    "gradcam",
    "gradcam++",
    "xgradcam",
    "hirescam",
    "gradcam-elementwise",
    "layercam",
    "eigencam",
    "eigengradcam",
    "kpca-cam",
    "shapleycam",
    "fem",
)

#: Default angles of ``sreconv cam``: the four exact quarter turns and two interpolated ones.
DEFAULT_ANGLES = (0.0, 45.0, 90.0, 135.0, 180.0, 270.0)


def cam_class(method: str, spatial_dims: int = 2):
    """The ``pytorch_grad_cam`` class of ``method`` (a key of :data:`CAM_METHODS`).

    Raises:
        VizError: unknown method, or a 2D-only method for a 3D model.
    """
    key = method.lower()
    if key not in CAM_METHODS:
        raise VizError(f"unknown CAM method {method!r}; choose one of {', '.join(CAM_METHODS)}")
    if spatial_dims == 3 and key not in METHODS_3D:
        raise VizError(
            f"CAM method {method!r} only works on 2D models in pytorch_grad_cam; for this 3D model "
            f"use one of {', '.join(METHODS_3D)}"
        )
    try:
        import pytorch_grad_cam
    except ImportError as err:
        raise VizError("CAMs need the grad-cam package: pip install grad-cam") from err
    return getattr(pytorch_grad_cam, CAM_METHODS[key])


def find_target_layer(model: nn.Module, name: str | None = None) -> tuple[str, nn.Module]:
    """The layer whose activations the CAM weighs: ``name`` if given, else the last feature block.

    The default is ``layer4`` (the output of ``forward_features`` in every sreconv ResNet), else the last
    convolution of the model. Its output is rotation-equivariant in SRE models, so the CAM turns with the
    image.

    Raises:
        VizError: ``name`` is not a submodule of ``model``.
    """
    modules = dict(model.named_modules())
    if name is not None:
        if name not in modules or name == "":
            candidates = [n for n in modules if n and n.count(".") <= 1][:25]
            raise VizError(f"model has no layer {name!r}; e.g. {', '.join(candidates)}")
        return name, modules[name]
    if isinstance(modules.get("layer4"), nn.Module):
        return "layer4", modules["layer4"]
    from sreconv.nn import SRE_LAYERS

    convs = [(n, m) for n, m in modules.items() if isinstance(m, (nn.modules.conv._ConvNd, *SRE_LAYERS))]
    if not convs:
        raise VizError("cannot find a convolution to compute the CAM on; pass --layer NAME")
    return convs[-1]


@contextlib.contextmanager
def _cam_context(cam_cls, model: nn.Module, layer: nn.Module) -> Iterator:
    # grad-cam sets model.eval() itself; the hooks are removed on exit so the model is left as it was.
    # Gradients are only needed with respect to activations, so the weights keep their requires_grad flags
    # (the SRE layers then rebuild their kernel each forward instead of using the eval cache: still exact).
    was_training = model.training
    with torch.enable_grad(), cam_cls(model=model, target_layers=[layer]) as cam:
        try:
            yield cam
        finally:
            model.train(was_training)


def compute_cams(
    model: nn.Module,
    x: torch.Tensor,
    targets: Sequence[int],
    method: str = "gradcam",
    layer: str | None = None,
) -> np.ndarray:
    """CAMs of a batch ``x`` ``(N, C, *S)`` for the given class per item, scaled to ``[0, 1]`` per map.

    A model that aligns its input first (an ``align`` :class:`~sreconv.nn.PrincipalAxisAlign2d` or ``3d``, e.g.
    ``sre_d4_aligned_resnet18``) gets its maps turned back from the aligned frame into the input's.

    Returns:
        ``(N, *S)`` float32 array at input resolution (grad-cam's own min-max scaling and resizing).
    """
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    spatial = x.dim() - 2
    cam_cls = cam_class(method, spatial)
    _, module = find_target_layer(model, layer)
    ref = next(model.parameters())
    x = x.detach().to(ref.device, ref.dtype)
    with _cam_context(cam_cls, model, module) as cam:
        maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    maps = np.asarray(maps, dtype=np.float32)
    # grad-cam returns (N, W, H, D)-ordered sizes for volumes only if they are cubic; keep ours explicit.
    maps = maps.reshape(x.shape[0], *x.shape[2:])
    align = getattr(model, "align", None)
    if isinstance(align, (PrincipalAxisAlign2d, PrincipalAxisAlign3d)):
        # the target layer sees the aligned image: draw its map where the input's pixels are
        turned = align.to_input_frame(torch.from_numpy(maps)[:, None].to(x.dtype), x.cpu())
        maps = turned[:, 0].float().numpy()
    return maps


def rotate_view(x: torch.Tensor, angle: float, axis: str = "z", fill: float = 0.0) -> torch.Tensor:
    """``x`` ``(..., *S)`` rotated by ``angle`` degrees (2D when ``x`` has 2 spatial dims after the batch and
    channel dims, else about ``axis``)."""
    from sreconv.data import rotate, rotate3d

    if x.dim() == 4:
        return rotate(x, angle, fill=fill)
    return rotate3d(x, angle, axis, fill=fill)


def rotate_back(cams: np.ndarray, angle: float, axis: str = "z") -> np.ndarray:
    """Maps ``(N, *S)`` rotated by ``-angle`` (so a CAM of a rotated image is shown upright)."""
    t = torch.from_numpy(np.ascontiguousarray(cams))[:, None]
    return rotate_view(t, -angle, axis, fill=0.0)[:, 0].numpy()


def central_slice(volume: np.ndarray, axis: str = "z") -> np.ndarray:
    """The central slice of ``(..., D, H, W)`` in the plane that rotations about ``axis`` turn."""
    d = {"z": -3, "y": -2, "x": -1}[axis]
    return np.take(volume, volume.shape[d] // 2, axis=d)


def display_image(x: torch.Tensor, axis: str = "z") -> np.ndarray:
    """A normalised model input ``(C, *S)`` as an RGB float image ``(H, W, 3)`` in ``[0, 1]`` for display."""
    from sreconv.data.transforms import MEAN, STD

    img = (x.detach().cpu().float() * STD + MEAN).clamp(0, 1).numpy()
    if img.ndim == 4:
        img = central_slice(img, axis)
    if img.shape[0] == 3:
        return np.ascontiguousarray(img.transpose(1, 2, 0))
    gray = img.mean(0)
    return np.repeat(gray[..., None], 3, axis=-1)


def overlay(image: np.ndarray, cam: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """grad-cam's ``show_cam_on_image``: the CAM as a jet heat map over the image (uint8 RGB)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    return show_cam_on_image(
        image.astype(np.float32), cam.astype(np.float32), use_rgb=True, image_weight=weight
    )


def _is_quarter(angle: float) -> bool:
    from sreconv.data import quarter_turns

    return quarter_turns(angle) is not None


@dataclass
class CamSweep:
    """CAMs of one image at several angles and how well they agree once rotated back to upright.

    Attributes:
        angles: degrees.
        target: the class whose CAM is shown (the same at every angle).
        label: the true label (None for multi-label data).
        class_names: one name per class.
        images: display images ``(H, W, 3)`` of the rotated inputs (central slices in 3D).
        cams: CAMs of the rotated inputs (central slices in 3D), ``(H, W)`` in ``[0, 1]``.
        cams_back: the full CAMs rotated back to upright (central slices in 3D).
        probs: class probabilities ``(A, n_classes)`` per angle.
        diff_vs_upright: max ``|cam_back(angle) - cam_back(0)|`` per angle, on the whole image for multiples
            of
            90 degrees and on the inscribed disc/ball otherwise (interpolated rotations lose the corners).
        pairwise: ``(A, A)`` matrix of the same maximum between every two angles.
        axis: 3D rotation axis (None in 2D).
    """

    angles: list[float]
    target: int
    label: int | None
    class_names: list[str]
    images: list[np.ndarray]
    cams: list[np.ndarray]
    cams_back: list[np.ndarray]
    probs: np.ndarray
    diff_vs_upright: list[float]
    pairwise: np.ndarray
    method: str = "gradcam"
    layer: str = "layer4"
    axis: str | None = None
    title: str = ""
    extra: dict = field(default_factory=dict)

    def quarter_turn_max_diff(self) -> float | None:
        """The largest pairwise difference among the multiples of 90 degrees (None if fewer than two)."""
        idx = [i for i, a in enumerate(self.angles) if _is_quarter(a)]
        if len(idx) < 2:
            return None
        return float(max(self.pairwise[i, j] for i in idx for j in idx))

    def table(self) -> str:
        """Plain-text table: angle, predicted class and probability, and the rotated-back CAM difference."""
        name = self.class_names[self.target] if self.target < len(self.class_names) else str(self.target)
        lines = [
            f"{self.title}: {self.method} on {self.layer}, target class {self.target} ({name})"
            + (f", rotation about {self.axis}" if self.axis else ""),
            f"{'angle':>7} {'pred':>5} {'p(target)':>10} {'max|CAM_back - CAM_0|':>23}  region",
        ]
        for a, p, d in zip(self.angles, self.probs, self.diff_vs_upright):
            region = (
                "whole image" if _is_quarter(a) else ("inscribed ball" if self.axis else "inscribed disc")
            )
            lines.append(f"{a:>7g} {int(np.argmax(p)):>5d} {p[self.target]:>10.4f} {d:>23.3e}  {region}")
        q = self.quarter_turn_max_diff()
        if q is not None:
            lines.append(f"max pairwise difference of the rotated-back CAMs at multiples of 90°: {q:.3e}")
        return "\n".join(lines)


def _probabilities(model: nn.Module, x: torch.Tensor, multi_label: bool) -> np.ndarray:
    with torch.no_grad():
        ref = next(model.parameters())
        logits = model(x.to(ref.device, ref.dtype)).double().cpu()
    return (torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=1)).numpy()


def cam_sweep(
    model: nn.Module,
    x: torch.Tensor,
    angles: Sequence[float] = DEFAULT_ANGLES,
    *,
    method: str = "gradcam",
    layer: str | None = None,
    target: int | None = None,
    label: int | None = None,
    class_names: Sequence[str] = (),
    axis: str = "z",
    multi_label: bool = False,
    title: str = "",
    dtype: torch.dtype = torch.float64,
) -> CamSweep:
    """CAMs of one image ``x`` ``(C, *S)`` rotated by each angle, and their agreement once rotated back.

    Args:
        model: classifier (put in eval mode).
        x: normalised input as the test set returns it.
        angles: degrees; 0 is added first if missing (the reference).
        method: a key of :data:`CAM_METHODS`.
        layer: target layer name (default: see :func:`find_target_layer`).
        target: class to explain; default the model's prediction on the upright image.
        label: true label, for display.
        class_names: names of the classes.
        axis: 3D rotation axis.
        multi_label: probabilities by sigmoid instead of softmax.
        title: label of the model (run name).
        dtype: precision of the forward/backward passes. float64 (default) shows that the rotated-back CAMs of
            an exactly invariant model agree to rounding (~1e-7 after grad-cam's float32 output); in float32
            the min-max scaling of the CAM magnifies the network's rounding to ~1e-5.
    """
    import copy

    from sreconv.data import disc_mask, normalized_fill

    if next(model.parameters()).dtype != dtype:
        model = copy.deepcopy(model).to(dtype)
    x = x.to(dtype)
    model.eval()
    spatial = x.dim() - 1
    angles = [float(a) for a in angles]
    if 0.0 not in angles:
        angles = [0.0] + angles
    cam_class(method, spatial)  # fail early on a 2D-only method for a 3D model
    layer_name, _ = find_target_layer(model, layer)
    batch = torch.cat([rotate_view(x[None], a, axis, fill=normalized_fill()) for a in angles])
    probs = _probabilities(model, batch, multi_label)
    if target is None:
        target = int(np.argmax(probs[angles.index(0.0)]))
    elif not 0 <= target < probs.shape[1]:
        raise VizError(f"target class {target} out of range: the model has {probs.shape[1]} classes")
    cams = compute_cams(model, batch, [target] * len(angles), method, layer)
    back = np.stack([rotate_back(c[None], a, axis)[0] for c, a in zip(cams, angles)])
    disc = disc_mask(back.shape[1:]).numpy()
    n = len(angles)
    pairwise = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            both_exact = _is_quarter(angles[i]) and _is_quarter(angles[j])
            d = np.abs(back[i] - back[j])
            pairwise[i, j] = float(d.max() if both_exact else d[disc].max())
    ref = angles.index(0.0)
    show = (lambda a: a) if spatial == 2 else (lambda a: central_slice(a, axis))
    return CamSweep(
        angles=angles,
        target=target,
        label=label,
        class_names=list(class_names),
        images=[display_image(b, axis) for b in batch],
        cams=[show(c) for c in cams],
        cams_back=[show(c) for c in back],
        probs=probs,
        diff_vs_upright=[float(pairwise[i, ref]) for i in range(n)],
        pairwise=pairwise,
        method=method,
        layer=layer_name,
        axis=axis if spatial == 3 else None,
        title=title,
    )


def plot_cam_grid(sweeps: Sequence[CamSweep], path: str, dpi: int = 100) -> str:
    """PNG grid per model: rotated image, CAM overlay, CAM rotated back to upright, ``|difference|`` to the
    upright one.

    Columns are the angles; one block of four rows per sweep (e.g. an SRE model above a baseline). The
    difference is blanked outside the inscribed disc at interpolated angles, where it is not measured.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sreconv.data import disc_mask

    rows = ("input", "CAM overlay", "CAM rotated back", "|back − upright|")
    n = max(len(s.angles) for s in sweeps)
    cell = 1.45
    fig = plt.figure(figsize=(cell * n + 0.5, (cell * 4 + 0.55) * len(sweeps)), layout="constrained")
    subfigs = fig.subfigures(len(sweeps), 1, squeeze=False)[:, 0]
    cmap = matplotlib.colormaps["magma"].with_extremes(bad="0.85")
    for sub, s in zip(subfigs, sweeps):
        name = s.class_names[s.target] if s.target < len(s.class_names) else str(s.target)
        axis = f", rotation about {s.axis} (central slice)" if s.axis else ""
        q = s.quarter_turn_max_diff()
        exact = f"; rotated-back CAMs at 90° multiples agree to {q:.1e}" if q is not None else ""
        sub.suptitle(f"{s.title}: {s.method} on {s.layer}, class {name}{axis}{exact}", fontsize=9)
        axes = sub.subplots(4, n, squeeze=False)
        disc = disc_mask(s.cams_back[0].shape).numpy()
        ref = s.cams_back[s.angles.index(0.0)]
        for j in range(n):
            col = axes[:, j]
            for ax in col:
                ax.set_xticks([])
                ax.set_yticks([])
            if j >= len(s.angles):
                for ax in col:
                    ax.axis("off")
                continue
            a = s.angles[j]
            col[0].imshow(s.images[j])
            col[0].set_title(f"{a:g}°  p={s.probs[j][s.target]:.2f}", fontsize=8)
            col[1].imshow(overlay(s.images[j], s.cams[j]))
            col[2].imshow(s.cams_back[j], cmap="jet", vmin=0, vmax=1)
            diff = np.abs(s.cams_back[j] - ref)
            if not _is_quarter(a):
                diff = np.where(disc, diff, np.nan)
            col[3].imshow(diff, cmap=cmap, vmin=0, vmax=1)
            col[3].set_xlabel(f"max {s.diff_vs_upright[j]:.1e}", fontsize=8)
        for r, text in enumerate(rows):
            axes[r, 0].set_ylabel(text, fontsize=8)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
