"""Design probes of the D4 group-equivariant SRE networks: one seed, the default ``sreconv compare`` budget.

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
#: ``probe_init_scale`` multiplies the initial D4 weights by ``s``.
PROBE_OPTIONS = ("probe_basis_scale", "probe_init_scale")


def _reparametrise(model: torch.nn.Module, basis_scale: float, init_scale: float) -> torch.nn.Module:
    from sreconv.nn import D4GroupConv2d, D4LiftConv2d

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (D4GroupConv2d, D4LiftConv2d)):
                m.basis.mul_(basis_scale)
                m.transformed_basis.mul_(basis_scale)
                m.weight.mul_(init_scale / basis_scale)
    return model


def run_probe(entry: Entry, config: CompareConfig) -> dict:
    """Trains and scores one probe; returns the record appended to the log."""
    t0 = time.time()
    options = {k: entry.kwargs[k] for k in PROBE_OPTIONS if k in entry.kwargs}
    if options:
        from sreconv_bench.compare import entries as entries_module

        model_kwargs = {k: v for k, v in entry.kwargs.items() if k not in PROBE_OPTIONS}
        build = entries_module.build_entry_model

        def patched(e: Entry, *args, **kwargs) -> torch.nn.Module:
            model = build(Entry(e.label, e.model, model_kwargs, e.rotation_aug, factory=e.factory), *args, **kwargs)
            return _reparametrise(model, options.get("probe_basis_scale", 1.0), options.get("probe_init_scale", 1.0))

        import sreconv_bench.compare.run as run_module

        run_module.build_entry_model = patched
        try:
            run = run_one(entry, 0, config)
        finally:
            run_module.build_entry_model = build
    else:
        run = run_one(entry, 0, config)
    keys = ("label", "model", "params", "train_s_per_epoch", "upright_acc", "mean_rot_acc", "worst_rot_acc",
            "acc_45", "mean_rot_acc_bicubic", "acc_45_bicubic", "d4_logit_deviation", "train_loss_last",
            "per_class_upright", "per_class_mean_rot")
    record = {k: run[k] for k in keys if k in run}
    record.update(kwargs=entry.kwargs, rotation_aug=entry.rotation_aug, wall_s=round(time.time() - t0, 1),
                  date=time.strftime("%Y-%m-%d %H:%M"))
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("probes", nargs="*", help="names of PROBES")
    parser.add_argument("--custom", nargs=4, metavar=("LABEL", "MODEL", "KWARGS_JSON", "ROTATION"),
                        help="an ad-hoc probe; ROTATION is 'any' or 'none'")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--log", default=LOG)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
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
    for entry in entries:
        record = run_probe(entry, config)
        print(json.dumps({k: v for k, v in record.items() if not k.startswith("per_class")}), flush=True)
        with open(args.log, "a") as f:
            f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
