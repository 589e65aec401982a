"""The self-tuning engine: which computation ``impl='auto'`` runs, and how much transient memory it may use.

Like ``torch.backends.cudnn.benchmark``, the first call of an SRE layer for a given input shape (the batch
rounded up to a power of two, so that a last, partial batch reuses the choice), memory format, dtype, device,
layer geometry, train/eval (whether a backward will follow) and thread count times every
candidate path (``'dense'``, ``'ring'``, ``'depthwise'`` and, on CPU with numba, ``'fused'``) on the real input
and caches the fastest; a cost model only skips paths that are certainly slower, and decides alone for inputs
too small to be worth timing.
Every path computes the same convolution (equal to float rounding), so tuning never changes results beyond
that; it consumes no random numbers and records no autograd history in the caller's graph.

Modes (:func:`set_tuning`, or the ``SRECONV_TUNING`` environment variable):

* ``'benchmark'`` (default): time the candidates on the first call of each key, as above;
* ``'model'``: the cost model alone (deterministic choices, no timing runs);
* ``'off'``: ``impl='auto'`` always runs the dense kernel.

Inside ``torch.compile``, ``torch.jit.trace`` and with ``torch.use_deterministic_algorithms(True)`` the cost
model decides (nothing is timed there). Choices can be inspected with :func:`tuning_choices` and kept per
machine with :func:`save_tuning_cache` / :func:`load_tuning_cache` (or ``SRECONV_TUNING_CACHE=path``, which
loads the file at the first choice and rewrites it after every new measurement).

The ring paths process their input in chunks whose transient tensors fit :func:`workspace_limit` bytes
(:func:`set_workspace_limit`, or ``SRECONV_WORKSPACE_MB``); on CPU that workspace is reused between calls.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

MODES = ("benchmark", "model", "off")

#: Default transient budget of the ring paths: small enough to stay in a shared L3 cache, large enough for few,
#: long passes (measured on 2 AVX-512 cores: 4-8 MB is the fastest alone, 1 MB twice as slow, and a busy
#: machine penalises every extra op, so the default errs on the large side).
DEFAULT_WORKSPACE_BYTES = 16 * 2**20
#: Inputs whose cheapest modelled path costs less than this (dense multiply-adds, ~50 us) are not timed.
MIN_TIMED_COST = 5.0e6
#: Paths modelled as more than this many times dearer than the cheapest are not timed.
PREFILTER_RATIO = 4.0
#: After its warm-up run, each candidate is timed (interleaved with the others) until it has run this long
#: (seconds, at least once) ...
TIMING_BUDGET_S = 0.05
#: ... or this many times: a sub-millisecond op gets many runs, so that its median is not set by a few runs another
#: process descheduled (3 runs each, the earlier rule, let a busy machine's noise pick a 1-ms op's slower path).
TIMING_MAX_REPEATS = 25


def _env_mode() -> str:
    mode = os.environ.get("SRECONV_TUNING", "benchmark")
    return mode if mode in MODES else "benchmark"


def _env_workspace() -> int:
    try:
        return max(0, int(float(os.environ["SRECONV_WORKSPACE_MB"]) * 2**20))
    except (KeyError, ValueError):
        return DEFAULT_WORKSPACE_BYTES


@dataclass
class Choice:
    """One cached decision.

    Attributes:
        path: the chosen path.
        source: ``'benchmark'`` (timed here), ``'model'`` (cost model) or ``'file'`` (loaded from a cache file).
        times_ms: fastest timed milliseconds per candidate (``None`` when not timed).
        modelled: modelled cost per candidate (dense multiply-adds).
    """

    path: str
    source: str
    times_ms: dict[str, float] | None = None
    modelled: dict[str, float] = field(default_factory=dict)
    settled: bool = True  # False: recorded in 'model' mode, to be decided again in 'benchmark' mode


class _State:
    def __init__(self) -> None:
        self.mode = _env_mode()
        self.workspace = _env_workspace()
        self.generation = 0
        self.cache: dict[tuple, Choice] = {}
        self.lock = threading.RLock()
        self.cache_file = os.environ.get("SRECONV_TUNING_CACHE") or None
        self.file_loaded = False


_STATE = _State()


# ------------------------------------------------------------------------------------------------ switch
def set_tuning(mode: str) -> None:
    """Sets how ``impl='auto'`` chooses: ``'benchmark'``, ``'model'`` or ``'off'`` (see the module docstring).

    Args:
        mode: one of :data:`MODES`.

    Raises:
        ValueError: for any other value.

    Example:
        >>> import sreconv
        >>> sreconv.set_tuning("model"); sreconv.get_tuning()
        'model'
        >>> sreconv.set_tuning("benchmark")
    """
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"tuning mode must be one of {', '.join(repr(m) for m in MODES)}, got {mode!r}")
    _STATE.mode = mode


def get_tuning() -> str:
    """The current tuning mode."""
    return _STATE.mode


@contextlib.contextmanager
def tuning_mode(mode: str) -> Iterator[None]:
    """Context manager that sets the tuning mode and restores the previous one.

    Example:
        >>> import torch, sreconv
        >>> layer = sreconv.SREConv2d(4, 4, 5, padding=2)
        >>> with sreconv.tuning_mode("off"):
        ...     layer.resolved_impl(torch.randn(1, 4, 8, 8))
        'dense'
    """
    previous = get_tuning()
    set_tuning(mode)
    try:
        yield
    finally:
        _STATE.mode = previous


def set_workspace_limit(num_bytes: int) -> None:
    """Bounds the transient memory of one ring-path call (boxes, discs, responses of one chunk).

    Args:
        num_bytes: the budget in bytes (``0``: one sample, or one row of one sample, at a time).

    Raises:
        ValueError: when ``num_bytes`` is not a non-negative int.
    """
    if isinstance(num_bytes, bool) or not isinstance(num_bytes, int) or num_bytes < 0:
        raise ValueError(f"workspace limit must be a non-negative int of bytes, got {num_bytes!r}")
    with _STATE.lock:
        _STATE.workspace = num_bytes
        _STATE.generation += 1  # drops the reused buffers at their next use


def workspace_limit() -> int:
    """The transient budget of the ring paths, in bytes."""
    return _STATE.workspace


def workspace_generation() -> int:
    """Changes whenever the budget changes (the ring engine then reallocates its reused buffer)."""
    return _STATE.generation


def retain_freed_memory() -> bool:
    """Keeps memory freed by tensors in this process for reuse instead of returning it to the OS (glibc only).

    glibc hands large freed blocks back to the kernel, and the next allocation of that size faults its pages
    in again, zero-filled, one by one: on a virtual machine that can cost more than the arithmetic written into
    them (measured on 2 KVM cores: a quarter of a small SRE-ResNet's training step, whichever path it takes).
    After this call the process's resident memory stays at its high-water mark instead. It changes the whole
    process's allocator and cannot be undone, so it is an opt-in for applications (a training run), never done
    on import; PyTorch's performance guide recommends jemalloc or tcmalloc for the same reason.

    Returns:
        Whether the setting was applied (``False`` where the C library is not glibc).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mmap_ok = bool(mallopt(m_mmap_threshold, 2**30)) or bool(mallopt(m_mmap_threshold, 2**25))
    return bool(mallopt(m_trim_threshold, 2**31 - 1)) and mmap_ok


# ------------------------------------------------------------------------------------------------ cache
def clear_tuning_cache() -> None:
    """Forgets every choice (the next call of each layer decides again)."""
    with _STATE.lock:
        _STATE.cache.clear()


def tuning_choices(model: torch.nn.Module | None = None) -> list[dict[str, Any]]:
    """Every cached choice, for inspection.

    Args:
        model: only the choices of this module's SRE layers (the cache is shared by the whole process; layers
            of the same geometry share their choices).

    Returns:
        One dict per key: the key's fields (``layer``, ``input_shape``, ``dtype``, ``device``, ``training``,
        ``threads``, ...), the chosen ``path``, its ``source`` and, when timed, ``times_ms`` per candidate.

    Example:
        >>> import torch, sreconv
        >>> sreconv.clear_tuning_cache()
        >>> with torch.no_grad(), sreconv.tuning_mode("model"):
        ...     _ = sreconv.SREConv2d(8, 8, 9, padding=4)(torch.randn(2, 8, 16, 16))
        >>> [(c["path"], c["source"], c["training"]) for c in sreconv.tuning_choices()]
        [('dense', 'model', False)]
    """
    with _STATE.lock:
        items = list(_STATE.cache.items())
    if model is not None:
        layers = {m._tuning_key for m in model.modules() if hasattr(m, "_tuning_key")}
        items = [(key, c) for key, c in items if key[0] in layers]
    return [dict(_describe(key), path=c.path, source=c.source, times_ms=c.times_ms, modelled=dict(c.modelled))
            for key, c in items]


_KEY_FIELDS = ("layer", "input_shape", "channels_last", "dtype", "device", "training", "threads")


def _describe(key: tuple) -> dict[str, Any]:
    return dict(zip(_KEY_FIELDS, key))


def machine_fingerprint() -> str:
    """A short hash of what makes timings machine-specific (CPU model and flags, torch build, GPU name)."""
    parts = [platform.machine(), torch.__version__, torch.backends.mkldnn.is_available()]
    try:
        with open("/proc/cpuinfo") as handle:
            info = handle.read()
        for prefix in ("model name", "flags"):
            line = next((ln for ln in info.splitlines() if ln.startswith(prefix)), "")
            parts.append(line)
    except OSError:
        parts.append(platform.processor())
    if torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name())
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def save_tuning_cache(path: str | os.PathLike) -> int:
    """Writes the timed choices to ``path`` (JSON, tagged with :func:`machine_fingerprint`), atomically.

    Entries of other machines already in the file are kept.

    Args:
        path: the file.

    Returns:
        The number of entries of this machine written.
    """
    path = os.fspath(path)
    fingerprint = machine_fingerprint()
    data: dict[str, Any] = {"version": 1, "machines": {}}
    with contextlib.suppress(OSError, ValueError), open(path) as handle:
        loaded = json.load(handle)
        if isinstance(loaded, dict) and isinstance(loaded.get("machines"), dict):
            data = loaded
    with _STATE.lock:
        entries = [{"key": _jsonable(key), "path": c.path, "times_ms": c.times_ms}
                   for key, c in _STATE.cache.items() if c.source in ("benchmark", "file")]
    data["machines"][fingerprint] = entries
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)
    return len(entries)


def load_tuning_cache(path: str | os.PathLike) -> int:
    """Adds the choices stored for this machine in ``path`` (missing file or other machines: nothing).

    Args:
        path: a file written by :func:`save_tuning_cache`.

    Returns:
        The number of entries loaded.

    Raises:
        ValueError: when the file is not a tuning cache.
    """
    try:
        with open(os.fspath(path)) as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return 0
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{os.fspath(path)} is not a readable sreconv tuning cache ({error})") from error
    if not isinstance(data, dict) or not isinstance(data.get("machines"), dict):
        raise ValueError(f"{os.fspath(path)} is not an sreconv tuning cache (no 'machines' table)")
    entries = data["machines"].get(machine_fingerprint(), [])
    count = 0
    with _STATE.lock:
        for entry in entries:
            key = _from_json(entry.get("key"))
            if key is not None and isinstance(entry.get("path"), str):
                _STATE.cache.setdefault(key, Choice(entry["path"], "file", entry.get("times_ms")))
                count += 1
    return count


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"t": [_jsonable(v) for v in value]}
    if isinstance(value, (torch.dtype, torch.device)):
        return {"s": str(value)}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        return tuple(_from_json(v) for v in value["t"])
    if isinstance(value, dict) and "s" in value:
        text = value["s"]
        if text.startswith("torch."):
            return getattr(torch, text.split(".", 1)[1], text)
        return text
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    return value


def _autoload() -> None:
    if _STATE.cache_file and not _STATE.file_loaded:
        _STATE.file_loaded = True
        with contextlib.suppress(ValueError, OSError):
            load_tuning_cache(_STATE.cache_file)


# ------------------------------------------------------------------------------------------------ decide
def timing_disallowed() -> bool:
    """True inside ``torch.compile``/``torch.jit`` and with deterministic algorithms: the cost model decides."""
    return (torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.are_deterministic_algorithms_enabled())


def cached_choice(key: tuple) -> str | None:
    """The settled choice for ``key`` in ``'benchmark'`` mode (``None``: :func:`choose` must decide)."""
    if _STATE.mode != "benchmark":
        return None
    cached = _STATE.cache.get(key)
    return cached.path if cached is not None and cached.settled else None


def choose(key: tuple, modelled: dict[str, float], model_choice: str,
           run: Callable[[str], Callable[[], object]], device: torch.device) -> str:
    """The path for ``key``: cached, modelled or timed now (the engine's entry point; see the module docstring).

    Args:
        key: ``(layer geometry, input shape, channels_last, dtype, device, training, threads)``.
        modelled: modelled cost per candidate path.
        model_choice: the cost model's decision.
        run: ``run(path)`` gives a callable that runs ``path`` once on the real input (outside the caller's
            graph); only called when timing.
        device: where the input lives (to synchronise CUDA timings).

    Returns:
        The chosen path.
    """
    mode = _STATE.mode
    if mode == "off":
        return "dense"
    if timing_disallowed():
        return model_choice
    _autoload()
    cached = _STATE.cache.get(key)
    if mode == "model":
        if cached is None:
            with _STATE.lock:
                _STATE.cache[key] = Choice(model_choice, "model", modelled=modelled, settled=False)
        return model_choice
    if cached is not None and cached.settled:
        return cached.path
    best = min(modelled.values())
    finalists = [p for p, cost in modelled.items() if cost <= PREFILTER_RATIO * best]
    if best < MIN_TIMED_COST or len(finalists) == 1:
        choice = Choice(model_choice if best < MIN_TIMED_COST else finalists[0], "model", modelled=modelled)
    else:
        times = _time_candidates({p: run(p) for p in finalists}, device)
        choice = Choice(min(times, key=times.__getitem__), "benchmark", times, modelled)
    with _STATE.lock:
        if len(_STATE.cache) > 4096:  # unbounded input shapes: keep the cache bounded
            _STATE.cache.clear()
        _STATE.cache[key] = choice
    if choice.source == "benchmark" and _STATE.cache_file:
        with contextlib.suppress(OSError):
            save_tuning_cache(_STATE.cache_file)
    return choice.path


def _time_candidates(candidates: dict[str, Callable[[], object]], device: torch.device) -> dict[str, float]:
    """Median milliseconds of each candidate, runs interleaved, after one warm-up run each.

    The (lower) median, not the minimum: a path whose runs vary (fresh allocations, page faults in a backward)
    costs its typical run, which is what a training loop pays (measured on a 2-core VM: choosing by the minimum
    picked a path 1.05-1.41x slower than the fastest on 9 of 84 benchmark rows, 8 of them training rows). A run
    that another process descheduled is still outvoted by the others.
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    elapsed = {name: 0.0 for name in candidates}
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for fn in candidates.values():
        fn()
    sync()
    for repeat in range(TIMING_MAX_REPEATS):
        pending = [name for name in candidates if repeat == 0 or elapsed[name] < TIMING_BUDGET_S]
        if not pending:
            break
        for name in pending:
            fn = candidates[name]
            start = time.perf_counter()
            fn()
            sync()
            took = time.perf_counter() - start
            elapsed[name] += took
            times[name].append(took * 1e3)
    return {name: statistics.median_low(values) for name, values in times.items()}
