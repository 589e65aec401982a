"""A compiled CPU kernel for the ring engine's disc sums (optional: used when ``numba`` is installed).

The eager disc sums of :func:`~sreconv.nn.ring_conv.ring_responses` are a few dozen elementwise passes, each
over a tensor the size of the input; on CPU they run at memory bandwidth, and at small widths they cost as
much as the dense convolution they replace. This kernel builds, for a block of output rows at a time, the
boxes of just the input rows that block needs in a per-thread buffer that stays in cache, and sums every disc
from them: the input is read once and the responses written once. It computes the same boxes and the same
disc sums as the eager path (equal to float rounding), so the tuner may take either.

Install with ``pip install sreconv[fast]`` (numba ships wheels for Linux, macOS and Windows and needs no C
compiler); without numba, or with :func:`set_compiled_kernels` ``(False)`` or ``SRECONV_COMPILED_KERNELS=0``,
the eager path runs. The kernel is compiled on first use (a few seconds) and cached on disk by numba.
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from .ring_conv import RingPlan

#: Dtypes the kernel computes in (others take the eager path).
KERNEL_DTYPES = (torch.float32, torch.float64)
#: Elements of the per-thread box buffer of one block of rows (512 KiB of float32: inside a core's L2).
BLOCK_ELEMENTS = 2**17

_ENABLED = os.environ.get("SRECONV_COMPILED_KERNELS", "1") != "0"
# numba's default thread pool (workqueue) aborts the process when two threads launch kernels at once: a
# second caller takes the eager path instead of waiting.
_LAUNCH = threading.Lock()


def numba_available() -> bool:
    """Whether numba can be imported (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def set_compiled_kernels(enabled: bool) -> None:
    """Turns the compiled disc-sum kernel on or off (on by default where numba is installed).

    Args:
        enabled: ``False`` makes the ring path use its eager disc sums.

    Raises:
        ValueError: when ``enabled`` is not a bool.
    """
    global _ENABLED
    if not isinstance(enabled, bool):
        raise ValueError(f"enabled must be True or False, got {enabled!r}")
    _ENABLED = enabled


def compiled_kernels() -> bool:
    """Whether the ring path computes its disc sums with the compiled kernel (enabled and numba installed)."""
    return _ENABLED and numba_available()


def applies(x: torch.Tensor) -> bool:
    """Whether :func:`disc_sums` can compute the disc sums of ``x`` (CPU, float32/64, outside compile/jit)."""
    return (x.device.type == "cpu" and x.dtype in KERNEL_DTYPES and compiled_kernels()
            and not torch.compiler.is_compiling() and not torch.jit.is_scripting() and not torch.jit.is_tracing())


@lru_cache(maxsize=256)
def flat_terms(plan: RingPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every disc of ``plan`` as a list of boxes: ``(segment, z offset, row offset, box half-width)`` per term.

    The eager path shares lower-level discs between the balls of a 3D plan; here each ball is expanded into its
    rows of boxes (the additions then run in cache, where sharing saves less than it costs in passes).
    """
    n = len(plan.kernel_size)
    terms: list[tuple[int, int, int, int]] = []
    if n == 1:
        terms = [(s, 0, 0, a) for s, a in enumerate(plan.outputs)]
    else:
        discs = dict(plan.levels[0])  # 2D discs: (box half-width, row offset) terms
        balls = dict(plan.levels[1]) if n == 3 else None
        for s, key in enumerate(plan.outputs):
            rows = [(child, dz) for child, dz in balls[key]] if balls is not None else [(key, 0)]
            for disc, dz in rows:
                terms += [(s, dz, dh, a) for a, dh in discs[disc]]
    columns = np.array(terms, dtype=np.int64).T
    return tuple(np.ascontiguousarray(c) for c in columns)  # type: ignore[return-value]


def _padded3(values: Sequence[int], fill: int) -> np.ndarray:
    return np.array((fill,) * (3 - len(values)) + tuple(values), dtype=np.int64)


def _row_block(plan: RingPlan, out: tuple[int, int, int], channels: int, stride: np.ndarray, dilation: np.ndarray,
               jobs_per_row_block: int) -> int:
    """Output rows per block: the block's boxes fit :data:`BLOCK_ELEMENTS`, and every thread gets work."""
    kernel = _padded3(plan.kernel_size, 1)
    per_row = kernel[0] * plan.num_boxes * out[2] * channels
    fixed = (kernel[1] - 1) * dilation[1] + 1
    rows = max(1, int((BLOCK_ELEMENTS // max(per_row, 1) - fixed) // stride[1] + 1))
    rows = min(rows, out[1])
    threads = torch.get_num_threads()
    while rows > 1 and jobs_per_row_block * math.ceil(out[1] / rows) < 2 * threads:
        rows = (rows + 1) // 2
    return rows


def disc_sums(xp: torch.Tensor, plan: RingPlan, stride: Sequence[int], dilation: Sequence[int],
              resp: torch.Tensor) -> bool:
    """Writes the disc sums of ``xp`` into ``resp``, as :func:`~sreconv.nn.ring_conv.ring_responses` computes them.

    Args:
        xp: padded input, channels-last ``(N, *padded, C)``.
        plan: the ring plan.
        stride: per spatial dim.
        dilation: per spatial dim.
        resp: contiguous ``(N, *out, groups, S, C / groups)``, overwritten.

    Returns:
        ``False`` (and nothing written) when another thread is running the kernel: the caller sums eagerly.
    """
    if not _LAUNCH.acquire(blocking=False):
        return False
    try:
        import numba

        n = len(plan.kernel_size)
        x = xp.detach().contiguous()
        padded, out = tuple(x.shape[1:-1]), tuple(resp.shape[1:1 + n])
        x5 = x.view((x.shape[0],) + (1,) * (3 - n) + padded + (x.shape[-1],))
        r7 = resp.view((resp.shape[0],) + (1,) * (3 - n) + out + tuple(resp.shape[-3:]))
        strides, dilations = _padded3(tuple(stride), 1), _padded3(tuple(dilation), 1)
        centre = _padded3(tuple(k // 2 for k in plan.kernel_size), 0)
        out3 = (int(r7.shape[1]), int(r7.shape[2]), int(r7.shape[3]))
        threads = torch.get_num_threads()
        rows = _row_block(plan, out3, x.shape[-1], strides, dilations, r7.shape[0] * out3[0])
        kernel = _kernel()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
        kernel(x5.numpy(), r7.detach().numpy(), strides, dilations, centre, plan.num_boxes, *flat_terms(plan), rows)
        if torch.get_num_threads() != threads:  # an OpenMP layer chosen by the user's numba shares torch's pool
            torch.set_num_threads(threads)
        return True
    finally:
        _LAUNCH.release()


@lru_cache(maxsize=1)
def _kernel() -> Any:
    """The numba kernel, compiled (or loaded from numba's disk cache) at the first call."""
    import numba
    from numba import njit, prange

    if os.environ.get("NUMBA_THREADING_LAYER") is None:
        # numba's own thread pool: its OpenMP layer would share (and resize) torch's OpenMP threads
        numba.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]

    @njit(parallel=True, cache=True, boundscheck=False)
    def kernel(xp, out, stride, dilation, centre, num_boxes, term_seg, term_dz, term_dh, term_a,
               row_block):  # pragma: no cover - compiled; tested through disc_sums
        # xp (N, Zp, Hp, Wp, C); out (N, Zo, Ho, Wo, G, S, Cg); one job = one block of output rows.
        n_batch, _, rows_in, _, channels = xp.shape
        _, depth_out, rows_out, width_out, groups, segments, per_group = out.shape
        blocks = (rows_out + row_block - 1) // row_block
        kz = 2 * centre[0] + 1
        rows_needed = (row_block - 1) * stride[1] + 2 * centre[1] * dilation[1] + 1
        for job in prange(n_batch * depth_out * blocks):
            b = job // (depth_out * blocks)
            zo = (job // blocks) % depth_out
            h0 = (job % blocks) * row_block
            h1 = min(rows_out, h0 + row_block)
            first_row = h0 * stride[1]
            rows = min(rows_needed, rows_in - first_row)
            boxes = np.empty((kz, rows, num_boxes, width_out * channels), dtype=xp.dtype)
            acc = np.empty((segments, width_out * channels), dtype=xp.dtype)
            for iz in range(kz):
                zi = zo * stride[0] + iz * dilation[0]
                for ih in range(rows):
                    hi = first_row + ih
                    for w in range(width_out):
                        col = w * stride[2] + centre[2] * dilation[2]
                        for c in range(channels):
                            boxes[iz, ih, 0, w * channels + c] = xp[b, zi, hi, col, c]
                    for a in range(1, num_boxes):
                        for w in range(width_out):
                            plus = w * stride[2] + (centre[2] + a) * dilation[2]
                            minus = w * stride[2] + (centre[2] - a) * dilation[2]
                            for c in range(channels):
                                boxes[iz, ih, a, w * channels + c] = (boxes[iz, ih, a - 1, w * channels + c]
                                                                      + xp[b, zi, hi, plus, c]
                                                                      + xp[b, zi, hi, minus, c])
            for ho in range(h0, h1):
                for s in range(segments):
                    row_acc = acc[s]
                    for i in range(width_out * channels):
                        row_acc[i] = 0.0
                for t in range(term_seg.shape[0]):
                    src = boxes[centre[0] + term_dz[t], (ho - h0) * stride[1] + (centre[1] + term_dh[t]) * dilation[1],
                                term_a[t]]
                    dst = acc[term_seg[t]]
                    for i in range(width_out * channels):
                        dst[i] += src[i]
                for w in range(width_out):
                    for g in range(groups):
                        for s in range(segments):
                            for c in range(per_group):
                                out[b, zo, ho, w, g, s, c] = acc[s, w * channels + g * per_group + c]

    return kernel
