"""Pictures of learned SRE kernels: the ring profile (weight per ring radius) and the dense kernel rendered
from it, for chosen layers of a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from .run import VizError

__all__ = ["sre_layers", "default_layers", "ring_radii", "plot_kernels"]


def sre_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` of every SRE convolution in ``model``, in definition order."""
    from sreconv.nn import SRE_LAYERS

    return [(n, m) for n, m in model.named_modules() if isinstance(m, SRE_LAYERS)]


def default_layers(model: nn.Module) -> list[str]:
    """The first SRE convolution of each top-level child (stem, then one per stage): one per kernel size."""
    seen, names = set(), []
    for name, _ in sre_layers(model):
        top = name.split(".")[0]
        if top not in seen:
            seen.add(top)
            names.append(name)
    return names


def ring_radii(layer: nn.Module) -> np.ndarray:
    """Radius of each ring of an SRE layer: the basis-weighted mean distance of its cells from the centre."""
    basis = layer.basis.detach().double().cpu()
    grids = torch.meshgrid(
        *[torch.arange(k, dtype=torch.float64) - (k - 1) / 2 for k in basis.shape[1:]], indexing="ij"
    )
    dist = torch.sqrt(sum(g**2 for g in grids) * 1.0)
    w = basis.abs().flatten(1)
    return ((w * dist.flatten()).sum(1) / w.sum(1).clamp_min(1e-12)).numpy()


def _select(model: nn.Module, names: Sequence[str] | None) -> list[tuple[str, nn.Module]]:
    layers = dict(sre_layers(model))
    if not layers:
        raise VizError(f"{type(model).__name__} has no SRE convolutions (a baseline model?): nothing to draw")
    chosen = list(names) if names else default_layers(model)
    missing = [n for n in chosen if n not in layers]
    if missing:
        some = ", ".join(list(layers)[:12])
        raise VizError(
            f"no SRE layer named {', '.join(missing)}; SRE layers: {some}"
            + (", ..." if len(layers) > 12 else "")
        )
    return [(n, layers[n]) for n in chosen]


def plot_kernels(
    model: nn.Module,
    path: str,
    layers: Sequence[str] | None = None,
    channels: int = 6,
    title: str = "",
    dpi: int = 100,
) -> str:
    """PNG with one row per layer: ring profiles of the first ``channels`` output channels (input channel 0)
    plus the mean absolute weight per ring, then the dense kernels rendered from those profiles (central
    slice for 3D kernels).

    Raises:
        VizError: the model has no SRE layers, or a named layer does not exist.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = _select(model, layers)
    fig = plt.figure(figsize=(3.6 + 1.3 * channels, 2.1 * len(chosen) + 0.4), layout="constrained")
    rows = fig.subfigures(len(chosen), 1, squeeze=False)[:, 0]
    for row, (name, layer) in zip(rows, chosen):
        weight = layer.weight.detach().double().cpu()  # (out, in/groups, R)
        with torch.no_grad():
            kernel = layer.kernel().detach().double().cpu()  # (out, in/groups, *k)
        n = min(channels, weight.shape[0])
        axes = row.subplots(1, n + 1, width_ratios=[2.2] + [1] * n)
        radii = ring_radii(layer)
        ax = axes[0]
        for c in range(n):
            ax.plot(radii, weight[c, 0].numpy(), marker="o", ms=3, lw=1, label=f"out {c}")
        ax.plot(radii, weight.abs().mean((0, 1)).numpy(), "k--", lw=1.5, label="mean |w|")
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_xlabel("ring radius (cells)", fontsize=8)
        ax.set_ylabel("weight", fontsize=8)
        ax.tick_params(labelsize=7)
        k = "×".join(map(str, layer.kernel_size))
        ax.set_title(f"{name}: {k}, {layer.sre_k} rings, {layer.ring_basis}", fontsize=8)
        if row is rows[0]:
            ax.legend(fontsize=6, ncol=2)
        for c in range(n):
            img = kernel[c, 0]
            if img.dim() == 3:
                img = img[img.shape[0] // 2]
            lim = float(img.abs().max()) or 1.0
            axes[c + 1].imshow(img.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
            axes[c + 1].set_xticks([])
            axes[c + 1].set_yticks([])
            axes[c + 1].set_title(f"out {c}, in 0" + (" (mid)" if kernel.dim() == 5 else ""), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
