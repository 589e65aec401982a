"""Design probes of the D4 group-equivariant SRE networks on the default ``sreconv compare`` budget.

Every probe is a compare :class:`~sreconv_bench.compare.entries.Entry` (a registry model + keyword arguments +
training augmentation) trained and scored exactly like a ``sreconv compare`` run; the record (params, s/epoch,
upright, mean over 36 angles, worst angle, 45°, bicubic columns, last training loss) is appended to
``benchmarks/robustness/probes.jsonl``, which ``benchmarks/ROBUSTNESS.md``'s design record summarises.

Usage (from the repository root; 1-4 min per probe on 2 CPU cores)::

    python benchmarks/robustness/probes.py d4_full d4_full_rotaug       # named probes (see PROBES)
    python benchmarks/robustness/probes.py --list
    python benchmarks/robustness/probes.py --custom my_probe sre_d4_resnet18 '{"basis": "harmonic"}' any

Timings of probes run one after another on a shared machine are only indicative; compare training speed with
``benchmarks/robustness/epoch_timing.py`` (interleaved epochs in one process).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import torch

from sreconv_bench.compare import ENTRIES, CompareConfig, Entry, run_one

LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probes.jsonl")
D4 = "sre_d4_resnet18"


def _probe(label: str, kwargs: dict, rotation: str | None = "any", model: str = D4) -> Entry:
    return Entry(label, model, kwargs, rotation)


#: Named probes (the design record lists what each one tested).
PROBES: dict[str, Entry] = {e.label: e for e in [
    ENTRIES["e2cnn"], ENTRIES["e2cnn_rotaug"], ENTRIES["gmr"], ENTRIES["gmr_rotaug"],
    ENTRIES["cnn"], ENTRIES["sre_gauss_rotaug"],
    _probe("d4_full_rotaug", {"basis": "full", "sre_conv_size": 3}),
    _probe("d4_gauss_rotaug", {"basis": "gaussian"}),
    _probe("d4_harm_rotaug", {"basis": "harmonic"}),
    _probe("d4_full_w32_rotaug", {"basis": "full", "sre_conv_size": 3, "fields": 4}),
]}


#: Probe-only keyword arguments, applied to the built model (not model options): ``probe_basis_scale`` multiplies
#: every D4 convolution's basis by ``c`` and divides its weights by ``c`` (the same function, another
#: parametrisation: Adam's steps in weight space become ``c`` times larger in kernel space);
#: ``probe_init_scale`` multiplies the initial D4 weights by ``s``; ``probe_zero_init`` zeroes the last batch-norm
#: scale of every residual branch; ``probe_input_disc`` (a fill value) keeps only the input's inscribed disc.
#: ``probe_input_blur`` (sigma in pixels) blurs the input with a fixed gaussian (replicate padding);
#: ``probe_orthonormal`` orthonormalises the spatial basis of the listed layers (``"stem"``, ``"blocks"``) and
#: re-initialises their weights (same span, a well-conditioned parametrisation).
#: ``probe_sampled_rings`` rebuilds the harmonic bases of the listed layers from plain sampled gaussian rings
#: ``exp(-(d - rho)^2 / (2 sigma^2))`` (not normalised per cell, as e2cnn samples its rings; sigma = the value
#: given, in cells) times the angular parts, then orthonormalises them.
PROBE_OPTIONS = ("probe_basis_scale", "probe_init_scale", "probe_zero_init", "probe_input_disc", "probe_input_blur",
                 "probe_orthonormal", "probe_sampled_rings")


def sampled_ring_harmonics(k: int, sigma: float, max_frequency: int = 2) -> torch.Tensor:
    """Orthonormal ``(B, k, k)``: sampled gaussian rings (radii 0..k//2, one per cell of spacing) x cos/sin."""
    import numpy as np

    c = k // 2
    ys, xs = np.mgrid[-c:c + 1, -c:c + 1]
    dist = torch.from_numpy(np.sqrt(xs**2 + ys**2).astype(np.float64))
    theta = torch.from_numpy(np.arctan2(-ys, xs).astype(np.float64))
    disc = (dist <= c + 0.5).double()
    radial = [torch.exp(-(dist - r) ** 2 / (2 * sigma**2)) * disc for r in range(c + 1)]
    functions = list(radial)
    for m in range(1, max_frequency + 1):
        for angular in (torch.cos(m * theta), torch.sin(m * theta)):
            functions += [profile * angular.masked_fill(dist == 0, 0.0) for profile in radial[1:]]
    basis = torch.stack(functions)
    basis = basis[basis.flatten(1).abs().amax(1) > 1e-9].flatten(1)
    values, vectors = torch.linalg.eigh(basis @ basis.T)
    return (vectors @ torch.diag(values.rsqrt()) @ vectors.T @ basis).reshape(-1, k, k)


def _set_basis(layer: torch.nn.Module, basis: torch.Tensor) -> None:
    from sreconv.nn.regular import transformed_bases

    layer.register_buffer("basis", basis.to(layer.weight), persistent=False)
    layer.register_buffer("transformed_basis", transformed_bases(basis).to(layer.weight), persistent=False)
    layer._basis_norm2 = float(basis.pow(2).sum()) / basis.shape[0]
    shape = layer.weight.shape[:-1] + (basis.shape[0],)
    layer.weight = torch.nn.Parameter(torch.empty(shape, dtype=layer.weight.dtype))
    layer.reset_parameters()


def _orthonormalise(layer: torch.nn.Module) -> None:
    from sreconv.nn.regular import transformed_bases

    basis = layer.basis.double().flatten(1)
    values, vectors = torch.linalg.eigh(basis @ basis.T)
    ortho = (vectors @ torch.diag(values.rsqrt()) @ vectors.T @ basis).reshape(layer.basis.shape)
    with torch.no_grad():
        layer.basis.copy_(ortho)
        layer.transformed_basis.copy_(transformed_bases(ortho))
    layer._basis_norm2 = 1.0
    layer.reset_parameters()


class _BlurInput(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, sigma: float) -> None:
        super().__init__()
        r = torch.arange(-2, 3, dtype=torch.float32)
        g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
        self.register_buffer("kernel", (g / g.sum())[None, None])
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
        return self.model(torch.nn.functional.conv2d(padded, self.kernel.expand(c, 1, 5, 5), groups=c))


class _DiscInput(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, fill: float) -> None:
        super().__init__()
        self.model, self.fill = model, fill

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        centre = (n - 1) / 2
        r = torch.arange(n, device=x.device) - centre
        disc = (r[:, None] ** 2 + r[None, :] ** 2) <= (n / 2) ** 2
        return self.model(torch.where(disc, x, torch.full_like(x, self.fill)))


def _apply_options(model: torch.nn.Module, options: dict) -> torch.nn.Module:
    model = _reparametrise(model, options.get("probe_basis_scale", 1.0), options.get("probe_init_scale", 1.0))
    if options.get("probe_zero_init"):
        from sreconv.models.d4 import D4BasicBlock

        for m in model.modules():
            if isinstance(m, D4BasicBlock):
                torch.nn.init.zeros_(m.bn2.weight)
    for part, sigma in options.get("probe_sampled_rings", {}).items():
        from sreconv.models.d4 import D4ResNet
        from sreconv.nn import D4GroupConv2d

        assert isinstance(model, D4ResNet)
        layers = [model.conv1] if part == "stem" else [m for m in model.modules() if isinstance(m, D4GroupConv2d)
                                                        and m.kernel_size > 1]
        for layer in layers:
            _set_basis(layer, sampled_ring_harmonics(layer.kernel_size, sigma))
    for part in options.get("probe_orthonormal", []):
        from sreconv.models.d4 import D4ResNet
        from sreconv.nn import D4GroupConv2d

        assert isinstance(model, D4ResNet)
        layers = [model.conv1] if part == "stem" else [m for m in model.modules() if isinstance(m, D4GroupConv2d)
                                                        and m.kernel_size > 1]
        for layer in layers:
            _orthonormalise(layer)
    if "probe_input_blur" in options:
        model = _BlurInput(model, float(options["probe_input_blur"]))
    if "probe_input_disc" in options:
        model = _DiscInput(model, float(options["probe_input_disc"]))
    return model


def _reparametrise(model: torch.nn.Module, basis_scale: float, init_scale: float) -> torch.nn.Module:
    from sreconv.nn import D4GroupConv2d, D4LiftConv2d

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (D4GroupConv2d, D4LiftConv2d)):
                m.basis.mul_(basis_scale)
                m.transformed_basis.mul_(basis_scale)
                m.weight.mul_(init_scale / basis_scale)
    return model


def run_probe(entry: Entry, config: CompareConfig, seed: int = 0) -> dict:
    """Trains and scores one probe; returns the record appended to the log."""
    t0 = time.time()
    options = {k: entry.kwargs[k] for k in PROBE_OPTIONS if k in entry.kwargs}
    if options:
        from sreconv_bench.compare import entries as entries_module

        model_kwargs = {k: v for k, v in entry.kwargs.items() if k not in PROBE_OPTIONS}
        build = entries_module.build_entry_model

        def patched(e: Entry, *args, **kwargs) -> torch.nn.Module:
            model = build(Entry(e.label, e.model, model_kwargs, e.rotation_aug, factory=e.factory), *args, **kwargs)
            return _apply_options(model, options)

        import sreconv_bench.compare.run as run_module

        run_module.build_entry_model = patched
        try:
            run = run_one(entry, seed, config)
        finally:
            run_module.build_entry_model = build
    else:
        run = run_one(entry, seed, config)
    keys = ("label", "model", "params", "train_s_per_epoch", "upright_acc", "mean_rot_acc", "worst_rot_acc",
            "acc_45", "mean_rot_acc_bicubic", "acc_45_bicubic", "d4_logit_deviation", "train_loss_last",
            "per_class_upright", "per_class_mean_rot")
    record = {k: run[k] for k in keys if k in run}
    record.update(seed=seed, kwargs=entry.kwargs, rotation_aug=entry.rotation_aug, wall_s=round(time.time() - t0, 1),
                  date=time.strftime("%Y-%m-%d %H:%M"))
    return record


def format_log(path: str) -> str:
    """The probe log as a markdown table, one row per probe and seed, in the order they ran."""
    lines = ["| probe | seed | aug | params | s/epoch* | upright | mean 36 | worst | 45° | mean 36 bicubic "
             "| settings |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            settings = ", ".join(f"{k}={v}" for k, v in r["kwargs"].items()) or "peer default"
            lines.append(f"| {r['label']} | {r.get('seed', 0)} | {r['rotation_aug'] or '-'} | {r['params']} | "
                         f"{r['train_s_per_epoch']:.0f} | {r['upright_acc']:.3f} | {r['mean_rot_acc']:.3f} | "
                         f"{r['worst_rot_acc']:.3f} | {r['acc_45']:.3f} | {r['mean_rot_acc_bicubic']:.3f} "
                         f"| {settings} |")
    return "\n".join(lines)


def format_summary(path: str) -> str:
    """The probe log grouped by probe label: seeds, and the mean (± std over seeds) of each score."""
    import statistics

    groups: dict[str, list[dict]] = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            groups.setdefault(r["label"], []).append(r)

    def cell(runs: list[dict], key: str) -> str:
        values = [r[key] for r in runs]
        text = f"{statistics.mean(values):.3f}"
        return text + (f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else "")

    lines = ["| probe | aug | seeds | params | upright | mean 36 | worst | 45° |", "|---|---|---|---|---|---|---|---|"]
    for label, runs in groups.items():
        seeds = " ".join(str(r.get("seed", 0)) for r in runs)
        lines.append(f"| {label} | {runs[0]['rotation_aug'] or '-'} | {seeds} | {runs[0]['params']} | "
                     + " | ".join(cell(runs, k) for k in ("upright_acc", "mean_rot_acc", "worst_rot_acc", "acc_45"))
                     + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("probes", nargs="*", help="names of PROBES")
    parser.add_argument("--custom", nargs=4, metavar=("LABEL", "MODEL", "KWARGS_JSON", "ROTATION"),
                        help="an ad-hoc probe; ROTATION is 'any' or 'none'")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--table", action="store_true", help="print the log as a markdown table")
    parser.add_argument("--summary", action="store_true", help="print the log grouped by probe (mean ± std)")
    parser.add_argument("--log", default=LOG)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)
    if args.table or args.summary:
        print(format_log(args.log) if args.table else format_summary(args.log))
        return 0
    if args.list:
        for label, entry in PROBES.items():
            print(f"{label:24s} {entry.model} {json.dumps(entry.kwargs)} rotation={entry.rotation_aug}")
        return 0
    entries = [PROBES[name] for name in args.probes]
    if args.custom:
        label, model, kwargs, rotation = args.custom
        entries.append(_probe(label, json.loads(kwargs), None if rotation == "none" else rotation, model))
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="e2cnn")
    config = CompareConfig(seeds=[0], quiet=True).validate()
    for seed in args.seeds:
        for entry in entries:
            record = run_probe(entry, config, seed)
            print(json.dumps({k: v for k, v in record.items() if not k.startswith("per_class")}), flush=True)
            with open(args.log, "a") as f:
                f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
