"""Side-by-side speed and memory of SRE layers (auto / dense / ring) against plain and equivariant peers.

Everything is measured in one process, interleaved (each repetition runs every candidate once, so slow
drifts of a shared machine hit all candidates alike), median of ``--reps`` runs after ``--warmup`` runs.

Usage (from the repository root)::

    python benchmarks/bench_layers.py                       # full default grid, ~10 min on 2 CPU cores
    python benchmarks/bench_layers.py --quick               # a handful of points, ~1-2 min
    python benchmarks/bench_layers.py --k 9 13 --channels 64 --dims 2 --no-models --json out.json

Peers, each skipped when not available:

* ``nn.Conv2d`` / ``nn.Conv3d`` with the same kernel size (the baseline of every ratio);
* the official ``SRE_Conv`` package, imported from ``--official-path`` (added to ``sys.path`` only inside this
  process; it must not be on the default path because sreconv ships its own ``SRE_Conv`` compat module);
* e2cnn ``R2Conv`` on ``Rot2dOnR2(4)`` with trivial fields (2D only);
* whole models through ``sreconv.create_model`` (SRE-ResNet18 [9,9,5,5] and plain ResNet-18) and the
  official ``sre_resnet18``.

Times are wall-clock milliseconds (CUDA events on a GPU). "train" is forward + backward of ``out.sum()``
(models: a full SGD step on a cross-entropy loss); "eval" is a forward under ``torch.no_grad()`` in eval mode.
Peak memory is the growth of the process's peak resident set during one run, after ``malloc_trim`` and a
reset of the high-water mark (CPU, Linux), or ``torch.cuda.max_memory_allocated`` (GPU).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


# ------------------------------------------------------------------------------------------------ timing
class Timer:
    """Wall-clock (CPU) or CUDA-event timing of one call, in milliseconds."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __call__(self, fn: Callable[[], object]) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end)
        begin = time.perf_counter()
        fn()
        return (time.perf_counter() - begin) * 1e3


def _proc_status() -> dict[str, int]:
    values = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                values[key] = int(value.split()[0]) * 1024
    return values


def peak_memory_mb(fn: Callable[[], object], device: torch.device) -> float | None:
    """Extra peak memory of one call in MiB, or ``None`` where it cannot be measured."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    try:
        _malloc_trim()
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets the peak-RSS high-water mark (Linux >= 4.0)
        base = _proc_status()["VmRSS"]
        fn()
        return (_proc_status()["VmHWM"] - base) / 2**20
    except (OSError, KeyError):
        return None


def _malloc_trim() -> None:
    """Gives glibc's free heap pages back to the OS, so that reusing them during a run shows in the RSS."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure(cands: dict[str, Callable[[], object]], reps: int, warmup: int, device: torch.device,
            memory: bool) -> dict[str, dict[str, float | None]]:
    """Interleaved medians (and peak memory) of several candidates."""
    timer = Timer(device)
    times: dict[str, list[float]] = {name: [] for name in cands}
    for rep in range(warmup + reps):
        # rotate the order so that no candidate always runs right after the same neighbour
        names = list(cands)
        names = names[rep % len(names):] + names[:rep % len(names)]
        for name in names:
            t = timer(cands[name])
            if rep >= warmup:
                times[name].append(t)
    result = {}
    for name, fn in cands.items():
        result[name] = {"ms": statistics.median(times[name]), "min_ms": min(times[name]),
                        "peak_mb": peak_memory_mb(fn, device) if memory else None}
    return result


# ------------------------------------------------------------------------------------------------ peers
def import_official(path: str):
    """The official package from ``path`` (never from the default path), or ``None``."""
    if not path or not os.path.isdir(os.path.join(path, "SRE_Conv")):
        return None
    sys.path.insert(0, path)
    try:
        for name in [m for m in sys.modules if m == "SRE_Conv" or m.startswith("SRE_Conv.")]:
            del sys.modules[name]
        import SRE_Conv  # noqa: F401  (the official one: its directory is first on sys.path)

        if not os.path.abspath(SRE_Conv.__file__).startswith(os.path.abspath(path)):
            return None
        return SRE_Conv
    except Exception as error:  # a missing optional dependency of the official package
        print(f"# official SRE_Conv not usable: {error!r}", file=sys.stderr)
        return None
    finally:
        sys.path.remove(path)


def import_e2cnn():
    try:
        from e2cnn import gspaces
        from e2cnn import nn as enn

        return gspaces, enn
    except Exception:
        return None


def make_e2cnn_layer(e2cnn, channels: int, k: int):
    gspaces, enn = e2cnn
    space = gspaces.Rot2dOnR2(N=4)
    field = enn.FieldType(space, channels * [space.trivial_repr])
    conv = enn.R2Conv(field, field, kernel_size=k, padding=k // 2)

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x):
            return self.conv(enn.GeometricTensor(x, field)).tensor

    return Wrapped()


# ------------------------------------------------------------------------------------------------ runs
def _run_fn(module: nn.Module, x: torch.Tensor, mode: str) -> Callable[[], object]:
    params = [p for p in module.parameters() if p.requires_grad]
    if mode == "eval":
        module.eval()

        def run():
            with torch.no_grad():
                return module(x)

        return run
    module.train()
    x = x.detach().requires_grad_()

    def run():
        for p in params:
            p.grad = None
        x.grad = None
        module(x).sum().backward()

    return run


def layer_candidates(dim: int, k: int, channels: int, official, e2cnn, device, impls: list[str]):
    from sreconv.nn import SREConv2d, SREConv3d

    sre = {2: SREConv2d, 3: SREConv3d}[dim]
    conv = {2: nn.Conv2d, 3: nn.Conv3d}[dim]
    cands = {"conv": conv(channels, channels, k, padding=k // 2)}
    for impl in impls:
        cands[f"sre_{impl}"] = sre(channels, channels, k, padding=k // 2, impl=impl)
    if official is not None:
        cls = {2: official.SRE_Conv2d, 3: getattr(official, "SRE_Conv3d", None)}[dim]
        if cls is not None:
            cands["official"] = cls(channels, channels, k, padding=k // 2)
    if e2cnn is not None and dim == 2:
        cands["e2cnn"] = make_e2cnn_layer(e2cnn, channels, k)
    return {name: m.to(device) for name, m in cands.items()}


def bench_layers(args, official, e2cnn, device) -> list[dict]:
    rows = []
    impls = ["auto", "dense", "ring"]
    for dim in args.dims:
        ks = args.k if dim == 2 else args.k3d
        size, batch = (args.size2d, args.batch) if dim == 2 else (args.size3d, args.batch3d)
        for k in ks:
            for channels in (args.channels if dim == 2 else args.channels3d):
                cands = layer_candidates(dim, k, channels, official, e2cnn, device, impls)
                x = torch.randn((batch, channels) + (size,) * dim, device=device)
                auto_layer = cands["sre_auto"]
                for mode in args.modes:
                    fns = {name: _run_fn(m, x, mode) for name, m in cands.items()}
                    with torch.set_grad_enabled(mode == "train"):
                        chosen = auto_layer.resolved_impl(x.detach().requires_grad_(mode == "train"))
                    res = measure(fns, args.reps, args.warmup, device, args.memory)
                    row = {"section": "layer", "dim": dim, "k": k, "channels": channels, "batch": batch,
                           "size": size, "mode": mode, "auto_choice": chosen, "results": res}
                    rows.append(row)
                    print_row(row, flush=True)
    return rows


def bench_models(args, official, device) -> list[dict]:
    try:
        from sreconv import create_model
        from sreconv.nn.conv import _SREConvNd
    except Exception as error:
        print(f"# models skipped: sreconv.create_model not importable ({error!r})")
        return []
    rows = []
    batch, size = args.model_batch, 32
    builders = {}
    for impl in ("auto", "dense", "ring"):
        def build(impl=impl):
            model = create_model("sre_resnet18", num_classes=10, in_channels=3, sre_conv_size=[9, 9, 5, 5])
            for module in model.modules():
                if isinstance(module, _SREConvNd):
                    module.impl = impl
            return model
        builders[f"sre_resnet18_{impl}"] = build
    builders["plain_resnet18"] = lambda: create_model("plain_resnet18", num_classes=10, in_channels=3)
    if official is not None:
        builders["official_sre_resnet18"] = lambda: official.sre_resnet18(
            num_classes=10, sre_conv_size=[9, 9, 5, 5], skip_first_maxpool=True)
    models = {}
    for name, build in builders.items():
        try:
            models[name] = build().to(device)
        except Exception as error:
            print(f"# model {name} skipped: {error!r}")
    x = torch.randn(batch, 3, size, size, device=device)
    target = torch.randint(0, 10, (batch,), device=device)
    for mode in args.modes:
        fns = {}
        for name, model in models.items():
            if mode == "eval":
                model.eval()

                def run(model=model):
                    with torch.no_grad():
                        return model(x)
            else:
                model.train()
                opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

                def run(model=model, opt=opt):
                    opt.zero_grad(set_to_none=True)
                    F.cross_entropy(model(x), target).backward()
                    opt.step()
            fns[name] = run
        res = measure(fns, max(3, args.reps if not args.quick else 3), 1, device, args.memory)
        row = {"section": "model", "batch": batch, "size": size, "mode": mode, "results": res}
        rows.append(row)
        print_row(row, flush=True)
    return rows


# ------------------------------------------------------------------------------------------------ output
def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_row(row: dict, flush: bool = False) -> None:
    res = row["results"]
    if row["section"] == "layer":
        head = f"{row['dim']}D k={row['k']:<2d} C={row['channels']:<3d} {row['mode']:<5s}"
        base = res["conv"]["ms"]
        parts = [f"{name}={_fmt(r['ms'])}ms" for name, r in res.items()]
        ratios = [f"{name}/conv={r['ms'] / base:.2f}" for name, r in res.items() if name != "conv"]
        if "official" in res:
            ratios.append(f"auto/official={res['sre_auto']['ms'] / res['official']['ms']:.2f}")
        mem = [f"{name}:{_fmt(r['peak_mb'])}" for name, r in res.items()]
        print(f"{head} auto->{row['auto_choice']:<5s} | {' '.join(parts)} | {' '.join(ratios)} | MB {' '.join(mem)}",
              flush=flush)
    else:
        parts = [f"{name}={_fmt(r['ms'])}ms ({_fmt(r['peak_mb'])} MB)" for name, r in res.items()]
        print(f"model B={row['batch']} {row['size']}px {row['mode']:<5s} | {' '.join(parts)}", flush=flush)


def markdown(rows: list[dict]) -> str:
    """The layer rows as a markdown table (ratios against nn.ConvNd and the official layer)."""
    lines = []
    layer_rows = [r for r in rows if r["section"] == "layer"]
    if layer_rows:
        names = []
        for r in layer_rows:
            names += [n for n in r["results"] if n not in names]
        head = ["dim", "k", "C", "mode", "auto->"] + [f"{n} ms" for n in names] + \
            [f"{n}/conv" for n in names if n != "conv"] + \
            (["auto/official"] if "official" in names else []) + [f"{n} MB" for n in names]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in layer_rows:
            res = r["results"]
            base = res["conv"]["ms"]
            cells = [f"{r['dim']}D", str(r["k"]), str(r["channels"]), r["mode"], r["auto_choice"]]
            cells += [_fmt(res[n]["ms"]) if n in res else "-" for n in names]
            cells += [f"{res[n]['ms'] / base:.2f}" if n in res else "-" for n in names if n != "conv"]
            if "official" in names:
                cells.append(f"{res['sre_auto']['ms'] / res['official']['ms']:.2f}" if "official" in res else "-")
            cells += [_fmt(res[n]["peak_mb"]) if n in res else "-" for n in names]
            lines.append("| " + " | ".join(cells) + " |")
    for r in rows:
        if r["section"] == "model":
            lines.append("")
            lines.append(f"Models, batch {r['batch']}, {r['size']}x{r['size']}, {r['mode']}:")
            lines.append("")
            lines.append("| model | ms | peak MB |")
            lines.append("|---|---|---|")
            for name, res in r["results"].items():
                lines.append(f"| {name} | {_fmt(res['ms'])} | {_fmt(res['peak_mb'])} |")
    return "\n".join(lines)


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    try:
        import subprocess

        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                        cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except Exception:
        pass
    return info


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a few points (k 3/9/13, C=64, 2D + one 3D), 3 reps")
    p.add_argument("--k", type=int, nargs="+", default=[3, 5, 7, 9, 13], help="2D kernel sizes")
    p.add_argument("--k3d", type=int, nargs="+", default=[3, 5, 7], help="3D kernel sizes")
    p.add_argument("--channels", type=int, nargs="+", default=[16, 64, 128], help="2D channels (in = out)")
    p.add_argument("--channels3d", type=int, nargs="+", default=[16, 64], help="3D channels (in = out)")
    p.add_argument("--dims", type=int, nargs="+", default=[2, 3], choices=[2, 3])
    p.add_argument("--modes", nargs="+", default=["eval", "train"], choices=["eval", "train"])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--batch3d", type=int, default=4)
    p.add_argument("--size2d", type=int, default=32)
    p.add_argument("--size3d", type=int, default=16)
    p.add_argument("--model-batch", type=int, default=16)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--official-path", default="/tmp/official_sre")
    p.add_argument("--no-peers", action="store_true", help="skip the official package and e2cnn")
    p.add_argument("--no-models", action="store_true")
    p.add_argument("--no-memory", dest="memory", action="store_false")
    p.add_argument("--json", help="write all results (and the machine description) to this file")
    p.add_argument("--markdown", help="write the layer table as markdown to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.k, args.channels, args.k3d, args.channels3d = [3, 9, 13], [64], [5], [16]
        args.reps, args.warmup = 3, 1
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    official = None if args.no_peers else import_official(args.official_path)
    e2cnn = None if args.no_peers else import_e2cnn()
    info = machine()
    info.update(official=official is not None, e2cnn=e2cnn is not None, device=str(device))
    print("# " + json.dumps(info))
    rows = bench_layers(args, official, e2cnn, device)
    if not args.no_models:
        rows += bench_models(args, official, device)
    table = markdown(rows)
    print()
    print(table)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": info, "args": vars(args), "rows": rows}, handle, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(table + "\n")


if __name__ == "__main__":
    main()
