"""Convert and check the real model zoos: torchvision, timm and MONAI classifiers, U-Nets and video models.

For every model (random init, no downloads): build it, calibrate its batch-norm statistics on random inputs (so
that its output depends on the input: torchvision's init leaves e.g. GoogLeNet's logits 1e-12-sensitive), run
``sreconv.convert_to_sre`` with an ``input_shape`` (its report includes ``sreconv.check_equivariance``), then an
*independent* test: the float64 model on the whole group orbit of a random input, one forward per element,
``max |f(g x) - T_g f(x)|`` relative to the output's input-sensitivity ``max |f(x') - f(x)|`` (``T_g`` = ``g`` for
map outputs, identity for logits). A model counts as exact when that error is at most 1e-10, or at most 100x the
output's response to a one-ulp perturbation of the input (random deep networks can amplify float64 rounding a
millionfold at some inputs: that is their conditioning, not a broken symmetry), and the output is sensitive to the
input at all. Columns: model, converts, report summary, parameters before -> after, error per
group element (max and worst; every element in the JSON), checker verdict, whether the two agree, and the
forward-time ratio converted / original (float32, eval, median of interleaved runs).

    python benchmarks/zoo.py                       # the default zoo -> benchmarks/zoo_results.json, ZOO.md
    python benchmarks/zoo.py --models resnet18 monai_unet_2d --no-timing
    python benchmarks/zoo.py --list

Needs ``pip install -e ".[zoo]"`` (torchvision, timm, monai).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import platform
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
THRESHOLD = 1e-10
NOISE_FACTOR = 100.0


@dataclass
class Entry:
    """One model of the zoo."""

    name: str
    source: str
    build: Callable[[], nn.Module]
    shape: tuple[int, ...]  # (C, *spatial)
    kind: str = "classifier"  # classifier | segmentation | video | transformer
    convert_kwargs: dict[str, Any] = field(default_factory=dict)
    slow: bool = False
    group: str | None = None  # the group to test (default: the full group of the dimensionality)
    static: str = ""  # why the model only gets the converter's static report (too large to run here)


def _tv(name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return torchvision.models.get_model(name, weights=None, **kwargs)
    return build


def _tv_video(name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from torchvision.models import video

        return getattr(video, name)(weights=None, **kwargs)
    return build


def _timm(name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, **kwargs)
    return build


def _monai(name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from monai.networks import nets

        return getattr(nets, name)(**kwargs)
    return build


def _zoo() -> list[Entry]:
    entries: list[Entry] = []
    add = entries.append
    c10 = {"num_classes": 10}
    # torchvision classification: every model of torchvision.models.list_models(module=torchvision.models)
    small = ["resnet18", "resnet34", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "densenet121", "mobilenet_v2",
             "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
             "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
             "squeezenet1_0", "squeezenet1_1", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
             "efficientnet_b3", "regnet_x_400mf", "regnet_x_800mf", "regnet_y_400mf", "regnet_y_800mf",
             "regnet_x_1_6gf", "regnet_y_1_6gf", "convnext_tiny", "vgg11", "vgg11_bn"]
    large = ["resnet101", "resnet152", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2", "densenet161",
             "densenet169", "densenet201", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
             "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l", "regnet_x_3_2gf", "regnet_x_8gf",
             "regnet_x_16gf", "regnet_x_32gf", "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf",
             "regnet_y_128gf", "convnext_small", "convnext_base", "convnext_large", "vgg13", "vgg13_bn", "vgg16",
             "vgg16_bn", "vgg19", "vgg19_bn"]
    for name in small:
        add(Entry(name, "torchvision", _tv(name, **c10), (3, 32, 32)))
    add(Entry("alexnet", "torchvision", _tv("alexnet", **c10), (3, 64, 64)))
    add(Entry("googlenet", "torchvision", _tv("googlenet", aux_logits=False, init_weights=True, **c10), (3, 32, 32)))
    add(Entry("inception_v3", "torchvision", _tv("inception_v3", aux_logits=False, init_weights=True, **c10),
              (3, 79, 79)))
    for name in large:
        add(Entry(name, "torchvision", _tv(name, **c10), (3, 32, 32), slow=True))
    for name, size in (("vit_b_16", 32), ("vit_b_32", 64), ("vit_l_16", 32), ("vit_l_32", 64), ("vit_h_14", 28)):
        add(Entry(name, "torchvision", _tv(name, image_size=size, **c10), (3, size, size), "transformer",
                  slow=name != "vit_b_16"))
    for name in ("swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s", "swin_v2_b"):
        add(Entry(name, "torchvision", _tv(name, **c10), (3, 32, 32), "transformer", slow=name not in ("swin_t",)))
    add(Entry("maxvit_t", "torchvision", _tv("maxvit_t", **c10), (3, 224, 224), "transformer", slow=True))
    # torchvision video: D4 in the (H, W) plane with the kernels kept anisotropic
    keep = {"anisotropic": "keep"}
    for name in ("r3d_18", "mc3_18", "r2plus1d_18"):
        add(Entry(name, "torchvision.video", _tv_video(name, **c10), (3, 4, 32, 32), "video", keep, group="plane"))
    add(Entry("s3d", "torchvision.video", _tv_video("s3d", **c10), (3, 16, 224, 224), "video", keep, slow=True,
              group="plane", static="its fixed (2, 7, 7) final pooling needs 224x224 frames: ~40 GFLOP per float64 "
                                    "forward; static report only"))
    for name in ("mvit_v1_b", "mvit_v2_s"):  # fixed 16 x 224 x 224 input: ~60 GFLOPs a forward
        add(Entry(name, "torchvision.video", _tv_video(name, **c10), (3, 16, 224, 224), "transformer", keep,
                  group="plane", static="fixed 16x224x224 input, ~60 GFLOP per float64 forward: static report only"))
    add(Entry("swin3d_t", "torchvision.video", _tv_video("swin3d_t", **c10), (3, 4, 32, 32), "transformer", keep,
              slow=True, group="plane"))
    # timm
    for name in ("tf_efficientnet_b0", "nf_resnet26", "ese_vovnet19b_dw", "convnext_atto", "mobilevit_xxs",
                 "resnet18d", "efficientnet_b0"):
        add(Entry(f"timm/{name}", "timm", _timm(name, **c10), (3, 64, 64)))
    add(Entry("timm/vit_tiny_patch16_224", "timm", _timm("vit_tiny_patch16_224", img_size=32, **c10), (3, 32, 32),
              "transformer"))
    add(Entry("timm/swin_tiny_patch4_window7_224", "timm",
              _timm("swin_tiny_patch4_window7_224", img_size=56, **c10), (3, 56, 56), "transformer", slow=True))
    add(Entry("timm/maxvit_tiny_rw_224", "timm", _timm("maxvit_tiny_rw_224", img_size=64, **c10), (3, 64, 64),
              "transformer", slow=True))
    # MONAI, 2D and 3D
    for dims, spatial, deep in ((2, (32, 32), (32, 32)), (3, (16, 16, 16), (32, 32, 32))):
        # ``deep``: models that downsample 32x need 32 voxels per axis
        common = {"spatial_dims": dims, "in_channels": 1}
        add(Entry(f"monai_densenet121_{dims}d", "monai", _monai("DenseNet121", out_channels=3, **common),
                  (1, *deep), slow=dims == 3))
        add(Entry(f"monai_resnet18_{dims}d", "monai",
                  _monai("resnet18", spatial_dims=dims, n_input_channels=1, num_classes=3), (1, *spatial),
                  slow=dims == 3))
        add(Entry(f"monai_seresnet50_{dims}d", "monai", _monai("SEResNet50", num_classes=3, **common),
                  (1, *spatial), slow=dims == 3))
        add(Entry(f"monai_efficientnet_b0_{dims}d", "monai",
                  _monai("EfficientNetBN", model_name="efficientnet-b0", pretrained=False, num_classes=3, **common),
                  (1, *deep), slow=dims == 3))
        add(Entry(f"monai_basicunet_{dims}d", "monai",
                  _monai("BasicUNet", out_channels=2, features=(8, 8, 16, 32, 64, 8), **common), (1, *deep),
                  "segmentation", slow=dims == 3))
        add(Entry(f"monai_unet_{dims}d", "monai",
                  _monai("UNet", out_channels=2, channels=(8, 16, 32, 64), strides=(2, 2, 2), num_res_units=2,
                         **common), (1, *spatial), "segmentation"))
    return entries


ZOO = {entry.name: entry for entry in _zoo()}


# ---------------------------------------------------------------------------------------------- measurements
def calibrate_batch_norm(model: nn.Module, shape: tuple[int, ...], seed: int = 0, batch: int = 4) -> None:
    """Replaces running statistics by those of random inputs (cumulative average), then eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        model.eval()
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    generator = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(batch, *shape, generator=generator))
    model.eval()


def _output(value: Any) -> torch.Tensor:
    while not isinstance(value, torch.Tensor):
        value = value[0] if isinstance(value, (tuple, list)) else next(iter(value.values()))
    return value


def independent_test(model: nn.Module, shape: tuple[int, ...], group: str, seed: int = 1) -> dict[str, Any]:
    """Output deviation per group element of a float64 copy, relative to the output's input-sensitivity."""
    from sreconv.groups import group_elements

    net = copy.deepcopy(model).double().eval()
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, *shape, generator=generator, dtype=torch.float64)
    other = torch.randn(1, *shape, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        ref = _output(net(x))
        sensitivity = float((_output(net(other)) - ref).abs().max())
        magnitude = float(ref.abs().max())
        eps = torch.finfo(torch.float64).eps
        rounding = max(float((_output(net(x * (1 + eps * torch.randn(x.shape, generator=generator,
                                                                      dtype=torch.float64)))) - ref).abs().max())
                       for _ in range(2))
        errors = {}
        for g in group_elements(group):
            out = _output(net(g.apply(x)))
            expected = g.apply(ref) if ref.dim() == x.dim() else ref
            diff = float((out - expected).abs().max()) if out.shape == expected.shape else math.inf
            errors[g.name] = diff / sensitivity if sensitivity > 0 else (0.0 if diff == 0 else math.inf)
    del net
    sensitive = sensitivity > 1e-8 * magnitude
    worst = max(errors, key=lambda k: errors[k])
    rounding = rounding / sensitivity if sensitivity > 0 else 0.0
    return {"errors": errors, "max_error": errors[worst], "worst_element": worst, "rounding": rounding,
            "relative_sensitivity": sensitivity / magnitude if magnitude else 0.0,
            "magnitude_error": max(errors.values()) * sensitivity / magnitude if magnitude else 0.0,
            "exact": bool(sensitive and errors[worst] <= max(THRESHOLD, NOISE_FACTOR * rounding)),
            "sensitive": bool(sensitive), "output": "map" if ref.dim() == x.dim() else "logits"}


def forward_time_ratio(original: nn.Module, converted: nn.Module, shape: tuple[int, ...], repeats: int = 7,
                       batch: int = 2) -> dict[str, float]:
    """Median forward time (float32, eval, no grad) of both, interleaved, and their ratio."""
    x = torch.randn(batch, *shape)
    times: dict[str, list[float]] = {"original": [], "converted": []}
    models = {"original": original.float().eval(), "converted": converted.float().eval()}
    with torch.no_grad():
        for _ in range(2):  # warm-up: kernel caches, allocator
            for model in models.values():
                model(x)
        for _ in range(repeats):
            for key, model in models.items():
                start = time.perf_counter()
                model(x)
                times[key].append(time.perf_counter() - start)
    medians = {key: statistics.median(values) for key, values in times.items()}
    return {"original_s": medians["original"], "converted_s": medians["converted"],
            "ratio": medians["converted"] / medians["original"]}


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run_entry(entry: Entry, timing: bool = True, seed: int = 0) -> dict[str, Any]:
    """Converts and checks one model; every failure becomes a row that says what went wrong."""
    from sreconv import check_equivariance, convert_to_sre

    row: dict[str, Any] = {"model": entry.name, "source": entry.source, "kind": entry.kind,
                           "input_shape": list(entry.shape), "converts": False}
    torch.manual_seed(seed)
    start = time.perf_counter()
    try:
        model = entry.build()
        row["params_before"] = _params(model)
        if not entry.static:
            calibrate_batch_norm(model, entry.shape, seed)
            original = copy.deepcopy(model)
            row["before"] = independent_test(original, entry.shape, entry.group or _full_group(len(entry.shape) - 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, report = convert_to_sre(model, return_report=True, warn=False, **entry.convert_kwargs)
        row["convert_s"] = time.perf_counter() - start
        if entry.static:
            row.update(converts=True, static=entry.static, params_after=_params(model), group=report.group,
                       report=_report_dict(report))
            return row
        # The converted kernels change the activations: batch-norm statistics are recalibrated (same protocol
        # as for the original) before the checker and the independent test see the model.
        calibrate_batch_norm(model, entry.shape, seed)
        report.attach_check(check_equivariance(model, entry.shape, entry.group or report.group))
    except Exception as exc:  # a zoo row, not a crash: the error is the result
        row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        row["traceback"] = traceback.format_exc(limit=4)
        return row
    row["converts"] = True
    row["params_after"] = _params(model)
    row["group"] = report.check.group
    row["report"] = _report_dict(report)
    check = report.check
    row["checker"] = {"passed": check.passed, "output_error": check.output_error,
                      "first_broken": check.first_broken, "constant_output": check.constant_output,
                      "reinitialized": check.reinitialized}
    try:
        row["after"] = independent_test(model, entry.shape, report.check.group)
    except Exception as exc:
        row["after"] = {"exact": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    row["agree"] = bool(row["after"]["exact"] == check.passed)
    if timing:
        try:
            row["timing"] = forward_time_ratio(original, model, entry.shape)
        except Exception as exc:
            row["timing"] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    del model, original
    gc.collect()
    return row


def _report_dict(report: Any) -> dict[str, Any]:
    return {"converted": len(report.converted), "restrided": len(report.restrided), "pools": len(report.pools),
            "pads": len(report.pads), "group": report.group,
            "unconverted": [list(item) for item in report.unconverted],
            "restricted": [list(item) for item in report.restricted], "kept": [list(item) for item in report.kept]}


def _full_group(ndim: int) -> str:
    return {1: "flip", 2: "d4", 3: "cube"}[ndim]


# ---------------------------------------------------------------------------------------------- table
COLUMNS = ["model", "converts", "report", "params before → after", "error per element (max, worst)",
           "error before", "checker", "agrees", "time ratio"]


def _fmt_error(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.1e}"


def format_row(row: dict[str, Any]) -> str:
    """One markdown table row."""
    if not row["converts"]:
        cells = [row["model"], "no", row.get("error", "")] + [""] * 6
        return "| " + " | ".join(cells) + " |"
    rep = row["report"]
    if row.get("static"):
        reasons = "; ".join(f"{n}: {r}" for n, r in rep["unconverted"][:1])
        cells = [f"{row['model']} ({row['kind']}, {'×'.join(map(str, row['input_shape']))})", "yes",
                 f"{len(rep['unconverted'])} not exact: {reasons}",
                 f"{row['params_before'] / 1e6:.2f} M → {row['params_after'] / 1e6:.2f} M",
                 f"not run ({row['static']})", "", "not run", "", ""]
        return "| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |"
    problems = "; ".join(f"{n}: {r}" for n, r in rep["unconverted"][:2])
    summary = (f"{rep['converted']} conv, {rep['restrided']} strides, {rep['pools']} pools, {rep['pads']} pads; "
               f"group {rep['group']}")
    if rep["restricted"]:
        summary += f" ({len(rep['restricted'])} layers restrict it)"
    if problems:
        summary += f"; **{len(rep['unconverted'])} not exact**: {problems}"
    after = row["after"]
    if "error" in after:
        error = after["error"]
    elif not after["sensitive"]:
        error = "output constant"
    else:
        error = f"{_fmt_error(after['max_error'])} ({after['worst_element']})"
        if after["exact"] and after["max_error"] > THRESHOLD:
            error += f" = rounding (one-ulp response {_fmt_error(after['rounding'])})"
    check = row["checker"]
    verdict = "PASS" if check["passed"] else "FAIL"
    if check["constant_output"]:
        verdict += " (constant output)"
    elif check["first_broken"] is not None:
        verdict += f" at `{check['first_broken'] or '<output>'}`"
    if check["reinitialized"]:
        verdict += " (zero params re-initialised)"
    before = row["before"]
    before_text = "constant" if not before["sensitive"] else _fmt_error(before["max_error"])
    timing = row.get("timing", {})
    ratio = f"{timing['ratio']:.2f}" if "ratio" in timing else ""
    cells = [f"{row['model']} ({row['kind']}, {'×'.join(map(str, row['input_shape']))}, {row['group']})", "yes",
             summary, f"{row['params_before'] / 1e6:.2f} M → {row['params_after'] / 1e6:.2f} M", error, before_text,
             verdict, "yes" if row["agree"] else "**no**", ratio]
    return "| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |"


def format_markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The whole ZOO.md page: targets summary, then the table."""
    converted = [r for r in rows if r["converts"]]
    checked = [r for r in converted if not r.get("static")]
    exact = [r for r in checked if r["after"].get("exact")]
    agree = [r for r in checked if r["agree"]]
    not_exact = [r for r in rows if not (r["converts"] and r.get("after", {}).get("exact")) and not r.get("static")]
    static = [r for r in converted if r.get("static")]
    rounding = [r for r in exact if r["after"]["max_error"] > THRESHOLD]
    transformers = [r for r in rows if r["kind"] == "transformer"]
    lines = [
        "# Model zoo: convert_to_sre + check_equivariance on torchvision, timm and MONAI models",
        "",
        f"Commands: {'; '.join(f'`{c}`' for c in meta['commands'])}; {meta['date']}; torch {meta['torch']}, "
        f"{meta['machine']}, "
        f"{meta['threads']} threads (timings taken while other engineers shared the machine: compare the ratios, "
        "not the times). Random init, batch-norm statistics calibrated on random inputs, float64 checks; an "
        f"error is `max |f(g x) - T_g f(x)|` relative to the output's input-sensitivity; exact means ≤ {THRESHOLD:g}.",
        "",
        f"- {len(rows)} models, {len(converted)} convert without error, **{len(exact)} exactly invariant or "
        f"equivariant** after conversion ({len(exact) - len(rounding)} within {THRESHOLD:g}, {len(rounding)} above it "
        "but at the network's own float64 rounding level, listed below).",
        f"- The checker's verdict agrees with the independent test on {len(agree)} of {len(checked)} models run "
        f"({len(converted) - len(checked)} too large to run here get the converter's static report only).",
        f"- Transformers: {sum(1 for r in transformers if r.get('report', {}).get('unconverted'))} of "
        f"{len(transformers)} reported as not convertible; none gets a PASS.",
        "",
        "Not exact (every one with the layer and the reason from the conversion report):",
        "",
    ]
    for r in not_exact:
        if not r["converts"]:
            lines.append(f"- {r['model']}: does not convert: {r.get('error')}")
            continue
        unconverted = r["report"]["unconverted"]
        reasons = "; ".join(f"`{n or '<model>'}`: {reason}" for n, reason in unconverted[:1])
        more = f" (and {len(unconverted) - 1} more layers)" if len(unconverted) > 1 else ""
        lines.append(f"- {r['model']}: {reasons or 'no reason reported'}{more}")
    if static:
        lines += ["", "Not run here (the converter's static report only):", ""]
        for r in static:
            unconverted = r["report"]["unconverted"]
            found = (f"{len(unconverted)} layers not convertible, first `{unconverted[0][0]}`: {unconverted[0][1]}"
                     if unconverted else f"nothing unconverted, group {r['report']['group']!r}")
            lines.append(f"- {r['model']}: {r['static']}; {r['report']['converted']} convolutions converted; {found}")
    if rounding:
        lines += ["", f"Above {THRESHOLD:g} but not above {NOISE_FACTOR:g}x the output's response to a one-ulp "
                  "perturbation of the input (the random network amplifies float64 rounding at this input; every "
                  "layer is within its rounding floor in the checker):", ""]
        lines += [f"- {r['model']}: error {_fmt_error(r['after']['max_error'])}, one-ulp response "
                  f"{_fmt_error(r['after']['rounding'])}" for r in rounding]
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += [format_row(r) for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", help="entries to run (default: every entry that is not slow)")
    parser.add_argument("--all", action="store_true", help="include the slow (large) entries")
    parser.add_argument("--list", action="store_true", help="list the entries and exit")
    parser.add_argument("--no-timing", action="store_true", help="skip the forward-time ratio")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=str(HERE / "zoo_results.json"))
    parser.add_argument("--markdown", default=str(HERE / "ZOO.md"))
    parser.add_argument("--merge", action="store_true", help="update the rows of an existing JSON instead of "
                                                              "replacing the file")
    args = parser.parse_args(argv)
    if args.list:
        for entry in ZOO.values():
            print(f"{entry.name:40s} {entry.source:18s} {entry.kind:13s} {entry.shape} {'slow' if entry.slow else ''}")
        return 0
    unknown = [name for name in args.models or [] if name not in ZOO]
    if unknown:
        parser.error(f"unknown models {unknown}; see --list")
    names = args.models or [name for name, entry in ZOO.items() if args.all or not entry.slow]
    torch.set_num_threads(args.threads)
    previous: dict[str, Any] = {}
    commands: list[str] = []
    if args.merge and Path(args.json).exists():
        stored = json.loads(Path(args.json).read_text())
        previous = {row["model"]: row for row in stored["rows"]}
        commands = stored["meta"].get("commands", [stored["meta"].get("command", "")])
    rows = dict(previous)
    for name in names:
        start = time.perf_counter()
        row = run_entry(ZOO[name], timing=not args.no_timing)
        rows[name] = row
        status = row.get("error") or row.get("static") or (
            f"exact={row['after'].get('exact')} checker={row['checker']['passed']} agree={row['agree']}")
        print(f"{name}: {time.perf_counter() - start:.1f}s {status}", flush=True)
    ordered = [rows[name] for name in ZOO if name in rows]
    command = "python benchmarks/zoo.py " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = {"commands": [*commands, command], "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
            "machine": f"{platform.machine()} CPU", "threads": args.threads}
    Path(args.json).write_text(json.dumps({"meta": meta, "rows": ordered}, indent=1, default=str))
    Path(args.markdown).write_text(format_markdown(ordered, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
