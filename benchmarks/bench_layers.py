"""Side-by-side speed and memory of SRE layers (auto / dense / ring / depthwise) against plain and equivariant peers.

Everything is measured in one process, interleaved (each repetition runs every candidate once, in a rotating
order, so slow drifts of a shared machine hit all candidates alike), median of ``--reps`` runs after
``--warmup`` runs. ``auto`` is tuned by its first (warm-up) call, exactly as in use; every row reports its
choice and its *regret*: auto's time over the fastest of the explicit paths (1.00 = it picked the best).

Usage (from the repository root)::

    python benchmarks/bench_layers.py --markdown benchmarks/results_cpu.md --json benchmarks/results_cpu.json
    python benchmarks/bench_layers.py --quick                    # a handful of points, ~2 min on 2 cores
    python benchmarks/bench_layers.py --k 9 13 --channels 64 --dims 2 --threads 2 --no-models

``--threads 1 2`` (the default) runs the whole grid once per thread count. The markdown output holds the
machine facts (CPU model and flags, oneDNN/MKL versions, load average), the exact command and the date, then
one table per thread count with every ratio against ``nn.ConvNd`` and the targets of the self-tuning engine.

Peers, each skipped when not available:

* ``nn.Conv2d`` / ``nn.Conv3d`` with the same kernel size (the baseline of every ratio);
* the official ``SRE_Conv`` package, imported from ``--official-path`` (added to ``sys.path`` only inside this
  process; it must not be on the default path because sreconv ships its own ``SRE_Conv`` compat module);
* e2cnn ``R2Conv`` on ``Rot2dOnR2(4)`` with trivial fields (2D only);
* whole models through ``sreconv.create_model``: SRE-ResNet18 [9,9,5,5] per path and the plain ResNet-18 of the
  same geometry (batch ``--model-batch``, 32x32, 3 channels), the quick start's compact SRE-ResNet18 (width 16,
  [5,5,3,3], 28x28 gray, batch 64) and the official ``sre_resnet18``.

Times are wall-clock milliseconds (CUDA events on a GPU). "train" is forward + backward of ``out.sum()``
(models: a full SGD step on a cross-entropy loss); "eval" is a forward under ``torch.no_grad()`` in eval mode.
Peak memory is the growth of the process's peak resident set during one run, after ``malloc_trim`` and a
reset of the high-water mark (CPU, Linux), or ``torch.cuda.max_memory_allocated`` (GPU).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

PATHS = ("dense", "ring", "depthwise", "fused")


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


def layer_candidates(dim: int, k: int, channels: int, official, e2cnn, device):
    from sreconv.nn import SREConv2d, SREConv3d

    sre = {2: SREConv2d, 3: SREConv3d}[dim]
    conv = {2: nn.Conv2d, 3: nn.Conv3d}[dim]
    cands = {"conv": conv(channels, channels, k, padding=k // 2)}
    for impl in ("auto",) + PATHS:
        cands[impl] = sre(channels, channels, k, padding=k // 2, impl=impl)
    if official is not None:
        cls = {2: official.SRE_Conv2d, 3: getattr(official, "SRE_Conv3d", None)}[dim]
        if cls is not None:
            cands["official"] = cls(channels, channels, k, padding=k // 2)
    if e2cnn is not None and dim == 2:
        cands["e2cnn"] = make_e2cnn_layer(e2cnn, channels, k)
    return {name: m.to(device) for name, m in cands.items()}


def bench_layers(args, official, e2cnn, device, threads: int) -> list[dict]:
    from sreconv.nn import tuning

    rows = []
    for dim in args.dims:
        ks = args.k if dim == 2 else args.k3d
        size = args.size2d if dim == 2 else args.size3d
        for k in ks:
            for channels in (args.channels if dim == 2 else args.channels3d):
                batch = args.batch3d if dim == 3 else (args.batch_small if channels <= 16 else args.batch)
                cands = layer_candidates(dim, k, channels, official, e2cnn, device)
                x = torch.randn((batch, channels) + (size,) * dim, device=device)
                if args.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last if dim == 2 else torch.channels_last_3d)
                for mode in args.modes:
                    fns = {name: _run_fn(m, x, mode) for name, m in cands.items()}
                    res = measure(fns, args.reps, max(args.warmup, 1), device, args.memory)
                    choice = _auto_choice(tuning, x, mode)
                    rows.append({"section": "layer", "threads": threads, "dim": dim, "k": k, "channels": channels,
                                 "batch": batch, "size": size, "mode": mode, "auto_choice": choice["path"],
                                 "tuner": choice, "results": res})
                    print_row(rows[-1], flush=True)
    return rows


def _auto_choice(tuning, x: torch.Tensor, mode: str) -> dict:
    """The tuner's entry for the row just measured (the last key with this input shape and mode)."""
    shape = tuple(x.shape)
    for choice in reversed(tuning.tuning_choices()):
        if choice["input_shape"] == shape and choice["training"] == (mode == "train"):
            return {"path": choice["path"], "source": choice["source"], "times_ms": choice["times_ms"]}
    return {"path": "dense", "source": "-", "times_ms": None}


def _fastest_path_ms(res: dict) -> float:
    return min(res[p]["ms"] for p in PATHS if p in res)


def regret(res: dict) -> float:
    """auto's time over the fastest explicit path."""
    return res["auto"]["ms"] / _fastest_path_ms(res)


def latest(row: dict) -> dict:
    """A layer row's latest timing: its re-timing (``--recheck``) where it has one, else the grid run's; both
    with ``results`` and ``auto_choice``."""
    return row.get("recheck", row)


def row_regret(row: dict) -> float:
    """A row's regret in its latest timing."""
    return regret(latest(row)["results"])


def recheck(rows: list[dict], reps: int, threshold: float, device: torch.device) -> int:
    """Times auto again against the paths that matter, with ``reps`` interleaved runs, on every layer row whose
    regret or choice regret exceeds ``threshold`` in its latest timing: auto's choice and the fastest path of
    the grid run, plus auto's new choice (a fresh layer tunes again). A 5-run median of a few-millisecond call
    varies by +-20% on a shared VM; the re-timing separates a wrong choice from that noise. Stores
    ``row['recheck']`` (replacing an earlier one, counting the rounds); returns the rows re-timed."""
    from sreconv.nn import SREConv2d, SREConv3d, tuning

    count = 0
    for row in rows:
        if row["section"] != "layer" or max(row_regret(row), choice_regret(row)) <= threshold:
            continue
        torch.set_num_threads(row["threads"])
        sre = {2: SREConv2d, 3: SREConv3d}[row["dim"]]
        k, channels = row["k"], row["channels"]
        x = torch.randn((row["batch"], channels) + (row["size"],) * row["dim"], device=device)
        auto = sre(channels, channels, k, padding=k // 2).to(device)
        _run_fn(auto, x, row["mode"])()  # tunes
        chosen = _auto_choice(tuning, x, row["mode"])["path"]
        fastest = min((p for p in PATHS if p in row["results"]), key=lambda p: row["results"][p]["ms"])
        paths = sorted({row["auto_choice"], fastest, chosen})
        cands = {"auto": auto} | {p: sre(channels, channels, k, padding=k // 2, impl=p).to(device) for p in paths}
        fns = {name: _run_fn(m, x, row["mode"]) for name, m in cands.items()}
        rounds = row.get("recheck", {}).get("rounds", 0) + 1
        row["recheck"] = {"reps": reps, "rounds": rounds, "auto_choice": chosen,
                          "results": measure(fns, reps, 2, device, memory=False)}
        count += 1
        print(f"# recheck t={row['threads']} {row['dim']}D k={k} C={channels} {row['mode']}: regret "
              f"{regret(row['results']):.2f} -> {row_regret(row):.2f} ({reps} runs; auto -> {chosen})", flush=True)
    return count


def choice_regret(row: dict) -> float:
    """The time of the path auto chose over the fastest explicit path: the choice's quality alone (1.00: the
    fastest), without the noise between auto's own runs and the same path's; in the row's latest timing."""
    timing = latest(row)
    return timing["results"][timing["auto_choice"]]["ms"] / _fastest_path_ms(timing["results"])


def _set_impl(model: nn.Module, impl: str) -> nn.Module:
    from sreconv.nn.conv import _SREConvNd

    for module in model.modules():
        if isinstance(module, _SREConvNd):
            module.impl = impl
    return model


def bench_models(args, official, device, threads: int) -> list[dict]:
    try:
        from sreconv import create_model
    except Exception as error:
        print(f"# models skipped: sreconv.create_model not importable ({error!r})")
        return []
    rows = []
    setups = {
        # the geometry of the memory and speed targets: SRE-ResNet18 [9,9,5,5] against plain ResNet-18
        "resnet18": (args.model_batch, 3, 32, [
            *[(f"sre_resnet18_{impl}", lambda impl=impl: _set_impl(create_model(
                "sre_resnet18", num_classes=10, in_channels=3, sre_conv_size=[9, 9, 5, 5],
                skip_first_maxpool=True), impl)) for impl in ("auto",) + PATHS],
            ("plain_resnet18", lambda: create_model("plain_resnet18", num_classes=10, in_channels=3)),
        ] + ([("official_sre_resnet18", lambda: official.sre_resnet18(
            num_classes=10, sre_conv_size=[9, 9, 5, 5], skip_first_maxpool=True))] if official is not None else [])),
        # the quick start's model (sreconv train): width 16, [5,5,3,3], 28x28 gray digits, batch 64
        "quickstart": (64, 1, 28, [
            *[(f"quickstart_{impl}", lambda impl=impl: _set_impl(create_model(
                "sre_resnet18", num_classes=10, in_channels=1, inplanes=16, sre_conv_size=[5, 5, 3, 3],
                skip_first_maxpool=True), impl)) for impl in ("auto",) + PATHS],
        ]),
    }
    for setup, (batch, in_channels, size, builders) in setups.items():
        models = {}
        for name, build in builders:
            try:
                models[name] = build().to(device)
            except Exception as error:
                print(f"# model {name} skipped: {error!r}")
        x = torch.randn(batch, in_channels, size, size, device=device)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            models = {name: m.to(memory_format=torch.channels_last) for name, m in models.items()}
        target = torch.randint(0, 10, (batch,), device=device)
        for mode in args.modes:
            fns = {}
            for name, model in models.items():
                if mode == "eval":
                    model.eval()

                    def run(model=model, x=x):
                        with torch.no_grad():
                            return model(x)
                else:
                    model.train()
                    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

                    def run(model=model, opt=opt, x=x, target=target):
                        opt.zero_grad(set_to_none=True)
                        F.cross_entropy(model(x), target).backward()
                        opt.step()
                fns[name] = run
            res = measure(fns, 3 if args.quick else max(3, args.reps), 1, device, args.memory)
            row = {"section": "model", "setup": setup, "threads": threads, "batch": batch, "size": size,
                   "mode": mode, "results": res}
            rows.append(row)
            print_row(row, flush=True)
    return rows


# ------------------------------------------------------------------------------------------------ output
def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_row(row: dict, flush: bool = False) -> None:
    res = row["results"]
    if row["section"] == "layer":
        head = (f"t={row['threads']} {row['dim']}D k={row['k']:<2d} C={row['channels']:<3d} B={row['batch']:<3d} "
                f"{row['mode']:<5s}")
        base = res["conv"]["ms"]
        parts = [f"{name}={_fmt(r['ms'])}" for name, r in res.items()]
        ratios = [f"{name}/conv={r['ms'] / base:.2f}" for name, r in res.items() if name != "conv"]
        print(f"{head} auto->{row['auto_choice']:<9s} regret={regret(res):.2f} | {' '.join(parts)} ms | "
              f"{' '.join(ratios)}", flush=flush)
    else:
        parts = [f"{name}={_fmt(r['ms'])}ms ({_fmt(r['peak_mb'])} MB)" for name, r in res.items()]
        print(f"t={row['threads']} model {row['setup']} B={row['batch']} {row['mode']:<5s} | {' '.join(parts)}",
              flush=flush)


def layer_table(rows: list[dict]) -> list[str]:
    names: list[str] = []
    for r in rows:
        names += [n for n in r["results"] if n not in names]
    others = [n for n in names if n != "conv"]
    head = (["dim", "k", "C", "B", "mode", "auto ->", "regret", "choice", "conv ms"] + [f"{n}/conv" for n in others]
            + [f"{n} MB" for n in names])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        res = r["results"]
        base = res["conv"]["ms"]
        again = f" (re-timed {row_regret(r):.2f}, -> {r['recheck']['auto_choice']})" if "recheck" in r else ""
        cells = [f"{r['dim']}D", str(r["k"]), str(r["channels"]), str(r["batch"]), r["mode"], r["auto_choice"],
                 f"{regret(res):.2f}{again}", f"{choice_regret(r):.2f}", _fmt(base)]
        cells += [f"{res[n]['ms'] / base:.2f}" if n in res else "-" for n in others]
        cells += [_fmt(res[n]["peak_mb"]) if n in res else "-" for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def model_table(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        lines += ["", f"Models ({r['setup']}), batch {r['batch']}, {r['size']}x{r['size']}, {r['mode']}:", "",
                  "| model | ms | peak MB |", "|---|---|---|"]
        lines += [f"| {name} | {_fmt(res['ms'])} | {_fmt(res['peak_mb'])} |" for name, res in r["results"].items()]
    return lines


def _find(rows, **match):
    for r in rows:
        if r["section"] == "layer" and all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def targets(rows: list[dict], threads: int) -> list[str]:
    """The issue's targets, evaluated on the measured rows (``-`` where the grid lacks the point)."""
    lines = ["| target | measured | met |", "|---|---|---|"]
    layer_rows = [r for r in rows if r["section"] == "layer" and r["threads"] == threads]
    if layer_rows:
        worst = max(layer_rows, key=row_regret)
        value = row_regret(worst)
        rechecked = sum("recheck" in r for r in layer_rows)
        note = f"; {rechecked} rows above 1.05 re-timed" if rechecked else ""
        lines.append(f"| auto within 5% of the fastest path on every row | worst regret {value:.2f} "
                     f"({worst['dim']}D k={worst['k']} C={worst['channels']} {worst['mode']}{note}) | "
                     f"{'yes' if value <= 1.05 else 'no'} |")
        worst = max(layer_rows, key=choice_regret)
        value = choice_regret(worst)
        within = sum(choice_regret(r) <= 1.05 for r in layer_rows)
        lines.append(f"| auto's choice within 5% of the fastest path on every row | worst {value:.2f} "
                     f"({worst['dim']}D k={worst['k']} C={worst['channels']} {worst['mode']}); "
                     f"{within} of {len(layer_rows)} rows within 5% | {'yes' if value <= 1.05 else 'no'} |")
    checks = [(dict(dim=2, k=9, channels=64, mode="eval"), 0.4), (dict(dim=2, k=13, channels=64, mode="eval"), 0.3),
              (dict(dim=2, k=9, channels=64, mode="train"), 0.5), (dict(dim=2, k=3, channels=64, mode="eval"), 1.0),
              (dict(dim=2, k=3, channels=64, mode="train"), 1.0), (dict(dim=2, k=9, channels=16, mode="eval"), 0.7),
              (dict(dim=2, k=9, channels=16, mode="train"), 0.7)]
    for match, limit in checks:
        r = _find(layer_rows, **match)
        label = f"{match['dim']}D k={match['k']} C={match['channels']} {match['mode']} auto <= {limit}x nn.Conv2d"
        if r is None:
            lines.append(f"| {label} | - | - |")
            continue
        ratio = r["results"]["auto"]["ms"] / r["results"]["conv"]["ms"]
        lines.append(f"| {label} (B={r['batch']}) | {ratio:.2f} (auto -> {r['auto_choice']}) | "
                     f"{'yes' if ratio <= limit else 'no'} |")
    for r in rows:
        if r["section"] == "model" and r["setup"] == "resnet18" and r["mode"] == "train" and r["threads"] == threads:
            res = r["results"]
            auto, plain = res.get("sre_resnet18_auto"), res.get("plain_resnet18")
            if auto and plain and auto["peak_mb"] and plain["peak_mb"]:
                ratio = auto["peak_mb"] / plain["peak_mb"]
                lines.append(f"| SRE-ResNet18 train step peak <= 1.2x ResNet-18 (B={r['batch']}) | "
                             f"{ratio:.2f} ({_fmt(auto['peak_mb'])} vs {_fmt(plain['peak_mb'])} MB) | "
                             f"{'yes' if ratio <= 1.2 else 'no'} |")
            if auto and plain:
                ratio = auto["ms"] / plain["ms"]
                lines.append(f"| SRE-ResNet18 train step time <= ResNet-18's (B={r['batch']}) | {ratio:.2f} "
                             f"({_fmt(auto['ms'])} vs {_fmt(plain['ms'])} ms) | {'yes' if ratio <= 1.0 else 'no'} |")
    return lines


def markdown(rows: list[dict], info: dict, command: str) -> str:
    """The RESULTS.md sections: machine, command, date, then per thread count the layer, model and target tables."""
    lines = [f"Command: `{command}`", "",
             f"Date: {info['date']}. Machine: {info.get('cpu', info['processor'])}, {info['cpu_count']} logical CPUs, "
             f"{info['platform']}; Python {info['python']}, torch {info['torch']}"
             f"{', ' + info['gpu'] if 'gpu' in info else ''}; oneDNN {info.get('onednn', '?')}, "
             f"MKL {info.get('mkl', '?')}; CPU flags: {info.get('flags', '?')}; load average "
             f"{info.get('load_start', '?')} at the start, {info.get('load_end', '?')} at the end; "
             f"commit {info.get('commit', '?')}."]
    for number, again in enumerate(info.get("rechecks", []), 1):
        lines += ["", f"Re-timing {number}: the {again['rows']} rows whose {again['criterion']} then exceeded "
                      f"1.05, by `{again['command']}` ({again['date']}, commit {again['commit']}, load average "
                      f"{again['load']})."]
    lines += [""]
    for threads in sorted({r["threads"] for r in rows}):
        layer_rows = [r for r in rows if r["section"] == "layer" and r["threads"] == threads]
        model_rows = [r for r in rows if r["section"] == "model" and r["threads"] == threads]
        lines += [f"### {threads} thread{'s' if threads > 1 else ''}", ""]
        if layer_rows:
            lines += layer_table(layer_rows)
        lines += model_table(model_rows)
        lines += ["", f"Targets ({threads} thread{'s' if threads > 1 else ''}):", ""] + targets(rows, threads) + [""]
    return "\n".join(lines)


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "date": datetime.date.today().isoformat()}
    try:
        with open("/proc/cpuinfo") as handle:
            text = handle.read()
        model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
        flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
        if model:
            info["cpu"] = model.group(1).strip()
        if flags:
            wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile",
                      "amx_bf16")
            present = set(flags.group(1).split())
            info["flags"] = " ".join(f for f in wanted if f in present) or "none of avx2/avx512/amx"
    except OSError:
        pass
    config = torch.__config__.show()
    onednn = re.search(r"MKL-DNN v([\w.]+)", config) or re.search(r"oneDNN v([\w.]+)", config)
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", config)
    info["onednn"] = onednn.group(1) if onednn else "none"
    info["mkl"] = mkl.group(1) if mkl else "none"
    capability = re.search(r"CPU capability usage: (\w+)", config)
    if capability:
        info["cpu_capability"] = capability.group(1)
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    try:
        info["load_start"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        pass
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                        cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except Exception:
        pass
    return info


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a few points (2D k 3/9/13 at C=64, k 9 at C=16; 3D k 5), 3 reps, 2 threads")
    p.add_argument("--k", type=int, nargs="+", default=[3, 5, 7, 9, 13], help="2D kernel sizes")
    p.add_argument("--k3d", type=int, nargs="+", default=[3, 5, 7], help="3D kernel sizes")
    p.add_argument("--channels", type=int, nargs="+", default=[16, 64, 128], help="2D channels (in = out)")
    p.add_argument("--channels3d", type=int, nargs="+", default=[16, 64], help="3D channels (in = out)")
    p.add_argument("--dims", type=int, nargs="+", default=[2, 3], choices=[2, 3])
    p.add_argument("--modes", nargs="+", default=["eval", "train"], choices=["eval", "train"])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts, one grid each")
    p.add_argument("--batch", type=int, default=16, help="2D batch for C > 16")
    p.add_argument("--batch-small", type=int, default=64, help="2D batch for C <= 16 (the quick start's width)")
    p.add_argument("--batch3d", type=int, default=4)
    p.add_argument("--size2d", type=int, default=32)
    p.add_argument("--size3d", type=int, default=16)
    p.add_argument("--model-batch", type=int, default=16)
    p.add_argument("--channels-last", action="store_true", help="inputs (and models) in channels-last memory")
    p.add_argument("--retain-freed-memory", action="store_true",
                   help="call sreconv.nn.tuning.retain_freed_memory() first (no page faults on reused memory)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2, help="warm-up runs (the first one tunes auto)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--official-path", default="/tmp/official_sre")
    p.add_argument("--no-peers", action="store_true", help="skip the official package and e2cnn")
    p.add_argument("--no-models", action="store_true")
    p.add_argument("--no-memory", dest="memory", action="store_false")
    p.add_argument("--json", help="write all results (and the machine description) to this file")
    p.add_argument("--from-json", metavar="FILE", help="only rebuild the tables (and --markdown) from a --json file")
    p.add_argument("--recheck", metavar="FILE",
                   help="re-time, with --recheck-reps runs, the rows of a --json file whose regret or choice regret "
                        "exceeds 1.05 "
                        "and write the file (or --json) back with the results and the tables")
    p.add_argument("--recheck-reps", type=int, default=21)
    p.add_argument("--markdown", help="write the machine facts, command and tables as markdown to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.k, args.channels, args.k3d, args.channels3d = [3, 9, 13], [16, 64], [5], [16]
        args.reps, args.warmup, args.threads = 3, 1, [2]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.from_json:
        with open(args.from_json) as handle:
            saved = json.load(handle)
        text = markdown(saved["rows"], saved["machine"], saved["command"])
        print(text)
        if args.markdown:
            with open(args.markdown, "w") as handle:
                handle.write(text + "\n")
        return
    command = "python benchmarks/bench_layers.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    device = torch.device(args.device)
    if args.recheck:
        with open(args.recheck) as handle:
            saved = json.load(handle)
        facts = machine()
        torch.manual_seed(0)
        count = recheck(saved["rows"], args.recheck_reps, 1.05, device)
        saved["machine"].setdefault("rechecks", []).append(
            {"command": command, "rows": count, "criterion": "regret or choice regret",
             "date": datetime.date.today().isoformat(), "commit": facts.get("commit", "?"),
             "load": facts.get("load_start", "?")})
        text = markdown(saved["rows"], saved["machine"], saved["command"])
        print(text)
        with open(args.json or args.recheck, "w") as handle:
            json.dump(saved, handle, indent=1, default=str)
        if args.markdown:
            with open(args.markdown, "w") as handle:
                handle.write(text + "\n")
        return
    if args.retain_freed_memory:
        from sreconv.nn.tuning import retain_freed_memory

        print(f"# retain_freed_memory: {retain_freed_memory()}")
    torch.manual_seed(0)
    official = None if args.no_peers else import_official(args.official_path)
    e2cnn = None if args.no_peers else import_e2cnn()
    info = machine()
    info.update(official=official is not None, e2cnn=e2cnn is not None, device=str(device))
    print("# " + json.dumps(info), flush=True)
    rows: list[dict] = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        rows += bench_layers(args, official, e2cnn, device, threads)
        if not args.no_models:
            rows += [dict(r, threads=threads) for r in bench_models(args, official, device, threads)]
    try:
        info["load_end"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        pass
    text = markdown(rows, info, command)
    print()
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": info, "command": command, "args": vars(args), "rows": rows}, handle, indent=1,
                      default=str)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
