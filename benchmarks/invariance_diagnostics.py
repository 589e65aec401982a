"""Why do SRE networks lose accuracy between quarter turns? (the analysis of ``benchmarks/ROBUSTNESS.md``)

For each ``sreconv compare`` entry, with exactly its data pipeline and budget, this script

1. measures how far the network is from rotation invariance *before* and *after* training: the distance
   between the pooled features of a test image and of its copy rotated by 45° (and 20°), divided by the
   distance between the features of two different test images (median over the images). Inputs are masked
   to their inscribed disc and rotated bicubically, so neither the frame nor interpolation blur is measured;
2. splits the accuracy lost at 45° into interpolation blur (rotate by 45° and back) and the model's own
   non-invariance, for bilinear and bicubic resampling.

Usage (from the repository root; ~2 min per entry on 2 CPU cores)::

    python benchmarks/invariance_diagnostics.py                      # sre_gauss, sre_gauss_rotaug, cnn
    python benchmarks/invariance_diagnostics.py --models sre_hard --epochs 4 --seed 1

Takes the ``sreconv compare`` budget flags (``--epochs``, ``--limit-train``, ``--sre-conv-size``, ...).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import torch

from sreconv.data import normalized_fill, rotate
from sreconv.engine.config import TrainConfig
from sreconv.engine.evaluate import predict_views
from sreconv.engine.train import fit
from sreconv_bench.compare import CompareConfig, build_entry_model, resolve_entry
from sreconv_bench.compare.command import add_arguments, config_from_args
from sreconv_bench.compare.data import compare_datasets


def _pooled_features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    features = model.forward_features(x) if hasattr(model, "forward_features") else model(x)
    return features.flatten(2).mean(2) if features.dim() > 2 else features


@torch.no_grad()
def invariance_error(model: torch.nn.Module, images: torch.Tensor, angle: float, fill: float) -> float:
    """Median over images of |f(R x) - f(x)| / |f(y) - f(x)| (y: another image), eval mode, disc-masked."""
    model.eval()
    x = rotate(images, 0, fill=fill, mask=True)
    f = _pooled_features(model, x)
    rotated = _pooled_features(model, rotate(x, angle, fill=fill, mask=True, interpolation="bicubic"))
    return float(((rotated - f).norm(dim=1) / (f - f.roll(1, 0)).norm(dim=1)).median())


def accuracy_views(fill: float) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    def there_and_back(mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda x: rotate(rotate(x, 45, fill=fill, interpolation=mode), -45, fill=fill, interpolation=mode)

    return {
        "upright": lambda x: x,
        "45° and back, bilinear": there_and_back("bilinear"),
        "45° and back, bicubic": there_and_back("bicubic"),
        "45°, bilinear": lambda x: rotate(x, 45, fill=fill),
        "45°, bicubic": lambda x: rotate(x, 45, fill=fill, interpolation="bicubic"),
    }


def diagnose(label: str, budget: CompareConfig, seed: int, feature_images: int) -> dict[str, float]:
    entry = resolve_entry(label)
    data = compare_datasets(budget, entry.rotation_aug)
    train, test = data["train"], data["test"]
    torch.manual_seed(seed)
    model = build_entry_model(entry, test.n_classes, test.n_channels, budget.width, budget.sre_conv_size)
    fill = normalized_fill()
    images = torch.stack([test[i][0] for i in range(min(feature_images, len(test)))])
    model.train()
    with torch.no_grad():  # batch-norm statistics of the untrained network, from test images
        for _ in range(3):
            model(images)
    out = {f"init {a}°": invariance_error(model, images, a, fill) for a in (45, 20)}
    config = TrainConfig(dataset=budget.dataset, epochs=budget.epochs, batch_size=budget.batch_size, lr=budget.lr,
                         optimizer=budget.optimizer, weight_decay=budget.weight_decay, schedule="cos", seed=seed,
                         progress=False, device="cpu")
    t0 = time.time()
    fit(model, train, None, config, device=torch.device("cpu"), verbose=False)
    out["train s"] = time.time() - t0
    out.update({f"trained {a}°": invariance_error(model, images, a, fill) for a in (45, 20)})
    views = accuracy_views(fill)
    logits, targets = predict_views(model, test, list(views.values()), batch_size=250)
    for name, lg in zip(views, logits):
        out[name] = float((lg.argmax(1) == targets.reshape(-1)).float().mean())
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    parser.set_defaults(models=["sre_gauss", "sre_gauss_rotaug", "cnn"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--feature-images", type=int, default=300, help="test images for the feature distances")
    args = parser.parse_args(argv)
    config = config_from_args(args)
    if config.threads:
        torch.set_num_threads(config.threads)
    rows = [(label, diagnose(label, config, args.seed, args.feature_images)) for label in config.models]
    keys = list(rows[0][1])
    print("| entry | " + " | ".join(keys) + " |")
    print("|" + "---|" * (len(keys) + 1))
    for label, out in rows:
        print(f"| {label} | " + " | ".join(f"{out[k]:.0f}" if k == "train s" else f"{out[k]:.3f}" for k in keys) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
