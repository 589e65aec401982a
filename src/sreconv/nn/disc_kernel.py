"""Compiled CPU kernels for the ring engine (optional: used when ``numba`` is installed).

Two kernels, both computing what the eager ring engine computes (equal to float rounding):

* :func:`disc_sums` -- the disc sums of the ``'ring'`` path. The eager sums are a few dozen elementwise
  passes over tensors the size of the input; this kernel builds, for a block of output rows at a time, the
  boxes of just the input rows that block needs in a per-thread buffer that stays in cache, and sums every disc
  from them: the input is read once and the responses written once.
* :func:`fused_ring_conv` -- the whole convolution of the ``'fused'`` path: for a block of output rows it
  builds the boxes of one channel at a time, adds them into the disc sums of the block, and mixes the sums into
  the output channels while they are still in cache, so the ``S * C_in`` responses never reach memory. It
  reads and writes NCHW tensors directly (no channels-last copies), and in training computes the input
  gradient and the weight gradient of a stride-1 layer in one more such pass over the output gradient. The
  mixing is compiled loops rather than oneDNN's matrix kernels, so it wins where the mixing is small (few
  channels) and the disc sums and memory passes dominate; the tuner times it against the other paths.

Install with ``pip install sreconv[fast]`` (numba ships wheels for Linux, macOS and Windows and needs no C
compiler); without numba, or with :func:`set_compiled_kernels` ``(False)`` or ``SRECONV_COMPILED_KERNELS=0``,
the eager paths run. The kernels are compiled on first use (a few seconds each) and cached on disk by numba.
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
# Per-thread working buffers of the fused kernel, reused between calls (fresh ones fault their pages in).
_SCRATCH: dict[np.dtype, np.ndarray] = {}


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
    """Whether the compiled kernels can run on ``x`` (CPU, float32/64, enabled, outside compile/jit)."""
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


def _configure_threading() -> None:
    """Prefers numba's OpenMP thread pool where it loads, else its own (workqueue, which is always there).

    Measured on 2 cores next to torch's OpenMP threads (which keep spinning for a while after every op): the
    fused kernel took 0.44-0.49x nn.Conv2d's training step with the OpenMP layer and 0.65-0.67x with workqueue,
    whose worker threads hand off through the operating system. The user's ``NUMBA_THREADING_LAYER`` wins.
    """
    import numba

    if os.environ.get("NUMBA_THREADING_LAYER") is None:
        numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]  # type: ignore[attr-defined]
        numba.config.THREADING_LAYER = "default"  # type: ignore[attr-defined]


@lru_cache(maxsize=1)
def _kernel() -> Any:
    """The numba kernel, compiled (or loaded from numba's disk cache) at the first call."""
    from numba import njit, prange

    _configure_threading()

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


# ------------------------------------------------------------------------------------------- fused kernel
#: Elements of the per-thread working buffer of the fused kernel (one channel's boxes, the block's disc sums).
FUSED_BLOCK_ELEMENTS = 2**17


def _fused_row_block(plan: RingPlan, out: tuple[int, int, int], channels: int, stride: np.ndarray,
                     dilation: np.ndarray, jobs_per_row_block: int) -> tuple[int, int]:
    """Output rows per block and the working buffer's elements per thread.

    The buffer fits :data:`FUSED_BLOCK_ELEMENTS` and every thread gets at least two blocks.
    """
    kernel = _padded3(plan.kernel_size, 1)
    pitch = (out[2] - 1) * stride[2] + (kernel[2] - 1) * dilation[2] + 1

    def elements(rows: int) -> int:
        rows_in = (rows - 1) * stride[1] + (kernel[1] - 1) * dilation[1] + 1
        boxes = kernel[0] * plan.num_boxes * (rows_in * pitch + (kernel[2] // 2) * dilation[2])
        return int(boxes + (channels * plan.num_segments + 6) * rows * pitch)

    rows = out[1]
    while rows > 1 and elements(rows) > FUSED_BLOCK_ELEMENTS:
        rows = (rows + 1) // 2
    threads = torch.get_num_threads()
    while rows > 1 and jobs_per_row_block * math.ceil(out[1] / rows) < 2 * threads:
        rows = (rows + 1) // 2
    return rows, elements(rows) + 64


def _scratch(dtype: np.dtype, threads: int, elements: int) -> np.ndarray:
    """The fused kernel's per-thread buffers (held under :data:`_LAUNCH`)."""
    buffer = _SCRATCH.get(dtype)
    if buffer is None or buffer.shape[0] < threads or buffer.shape[1] < elements:
        _SCRATCH.clear()  # one dtype at a time: a model runs in one
        buffer = _SCRATCH[dtype] = np.empty((threads, elements), dtype=dtype)
    return buffer


def _as5d(t: torch.Tensor) -> np.ndarray:
    """``(N, C, *spatial)`` as the kernel's ``(N, C, D, H, W)`` numpy view."""
    return t.view(tuple(t.shape[:2]) + (1,) * (5 - t.dim()) + tuple(t.shape[2:])).numpy()


def _launch(x: torch.Tensor, wk: torch.Tensor, bias: torch.Tensor | None, y: torch.Tensor, xg: torch.Tensor | None,
            plan: RingPlan, stride: Sequence[int], dilation: Sequence[int], pads: Sequence[int], mix: bool = True
            ) -> np.ndarray | None:
    """Runs the fused kernel (the caller holds :data:`_LAUNCH`).

    ``y`` receives the mixed output when ``mix`` (otherwise it only gives the output's shape); with ``xg`` (the
    other factor of the weight gradient, on the output grid) the per-thread weight gradients are returned.
    """
    import numba

    n = len(plan.kernel_size)
    strides, dilations = _padded3(tuple(stride), 1), _padded3(tuple(dilation), 1)
    centre = _padded3(tuple(k // 2 for k in plan.kernel_size), 0)
    out3 = tuple(int(v) for v in (1,) * (3 - n) + tuple(y.shape[2:]))
    threads = torch.get_num_threads()
    rows, elements = _fused_row_block(plan, (out3[0], out3[1], out3[2]), x.shape[1], strides, dilations,
                                      y.shape[0] * out3[0])
    pool = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    numba.set_num_threads(min(threads, pool))
    dtype = x.numpy().dtype
    groups = wk.shape[0]
    if xg is None:
        xg5 = np.empty((1, groups, 1, 1, 1), dtype=dtype)
        gw = np.empty((1, groups, 1, 1), dtype=dtype)
    else:
        xg5 = _as5d(xg)
        gw = np.zeros((pool, groups, xg.shape[1] // groups, wk.shape[2]), dtype=dtype)
    bias_np = np.empty(0, dtype=dtype) if bias is None else bias.detach().contiguous().numpy()
    scratch = _scratch(dtype, pool, elements)
    _fused_kernel()(_as5d(x), wk.numpy(), bias_np, _as5d(y), xg5, gw, _padded3(tuple(pads), 0), strides, dilations,
                    centre, plan.num_boxes, *flat_terms(plan), rows, scratch, mix, xg is not None)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return None if xg is None else gw


def fused_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, plan: RingPlan,
                  stride: Sequence[int], dilation: Sequence[int], pads: Sequence[int], out_size: Sequence[int],
                  groups: int) -> torch.Tensor | None:
    """The ring convolution in one compiled pass: disc sums and mixing per block of rows, NCHW in and out.

    Args:
        x: ``(N, C_in, *spatial)``, float32/64 on CPU (any memory format; read as contiguous NCHW).
        weight: the mixing weight ``(C_out, S * C_in / groups)`` (:func:`~sreconv.nn.ring_conv.mixing_weight`).
        bias: ``(C_out,)`` or ``None``.
        plan: the ring plan.
        stride: per spatial dim.
        dilation: per spatial dim.
        pads: zero padding before the input, per spatial dim (the padding after follows from ``out_size``).
        out_size: the output's spatial size.
        groups: channel groups.

    Returns:
        ``(N, C_out, *out_size)`` contiguous, or ``None`` (nothing computed) when another thread is running
        a kernel.
    """
    if not _LAUNCH.acquire(blocking=False):
        return None
    try:
        c_out = weight.shape[0]
        wk = weight.detach().reshape(groups, c_out // groups, -1).contiguous()
        y = x.new_empty((x.shape[0], c_out, *out_size))
        _launch(x.detach().contiguous(), wk, bias, y, None, plan, stride, dilation, pads)
        return y
    finally:
        _LAUNCH.release()


def fused_backward(x: torch.Tensor, grad_out: torch.Tensor, weight: torch.Tensor, plan: RingPlan,
                   dilation: Sequence[int], back_pads: Sequence[int], groups: int, need_x: bool, need_w: bool
                   ) -> tuple[torch.Tensor | None, torch.Tensor | None] | None:
    """Input and weight gradients of a stride-1 ring convolution in one compiled pass over ``grad_out``.

    The discs are symmetric, so the input gradient is the same ring convolution of the output gradient padded
    by ``d * (k - 1) - p``, mixed by the transposed weights; its disc sums, taken on the input grid, give the
    weight gradient as their products with the input.

    Args:
        x: the layer's input ``(N, C_in, *spatial)``.
        grad_out: ``(N, C_out, *out)``.
        weight: the mixing weight ``(C_out, S * C_in / groups)``.
        plan: the ring plan.
        dilation: per spatial dim.
        back_pads: ``d * (k - 1) - p`` before the output gradient, per spatial dim (non-negative).
        groups: channel groups.
        need_x: compute the input gradient.
        need_w: compute the mixing weight's gradient.

    Returns:
        ``(grad_x, grad_weight)`` (``None`` where not needed), or ``None`` when another thread is running a
        kernel.
    """
    if not _LAUNCH.acquire(blocking=False):
        return None
    try:
        c_out, c_in = weight.shape[0], x.shape[1]
        out_group, in_group = c_out // groups, c_in // groups
        segments = plan.num_segments
        # transposed mixing: input channel (g, ci) reads responses (g, s, o) with the weight of (g, o, s, ci)
        wk = (weight.detach().reshape(groups, out_group, segments, in_group).permute(0, 3, 2, 1)
              .reshape(groups, in_group, segments * out_group).contiguous())
        xc = x.detach().contiguous()
        grad_x = x.new_empty(x.shape) if need_x else None
        gw = _launch(grad_out.detach().contiguous(), wk, None, xc if grad_x is None else grad_x,
                     xc if need_w else None, plan, (1,) * len(plan.kernel_size), dilation, back_pads, mix=need_x)
        grad_w = None
        if gw is not None:
            total = torch.from_numpy(gw.sum(axis=0))  # (G, C_in/g, S * C_out/g)
            grad_w = (total.reshape(groups, in_group, segments, out_group).permute(0, 3, 2, 1)
                      .reshape(weight.shape).to(weight.dtype))
        return grad_x, grad_w
    finally:
        _LAUNCH.release()


@lru_cache(maxsize=1)
def _fused_kernel() -> Any:
    """The fused numba kernel, compiled (or loaded from numba's disk cache) at the first call."""
    import numba
    from numba import njit, prange

    _configure_threading()

    # reassoc: the weight gradient's dot products vectorise; everything else is elementwise (same rounding).
    @njit(parallel=True, cache=True, boundscheck=False, fastmath={"reassoc", "contract"})
    def kernel(x, wk, bias, y, xg, gw, pads, stride, dilation, centre, num_boxes, term_seg, term_dz, term_dh,
               term_a, row_block, scratch, mix, grad_w):  # pragma: no cover - compiled; tested through the layers
        # x (N, C, D, H, W); wk (G, C_out/G, S * C/G); y (N, C_out, Do, Ho, Wo); xg (N, Cx, Do, Ho, Wo);
        # gw (threads, G, Cx/G, S * C/G). Rows are handled with a pitch of the padded width, so that every
        # addition is one long contiguous loop; the columns past the valid ones are never written out, and they
        # read only what this job wrote (never stale memory, which could hold an earlier call's inf or nan and
        # reach the weight gradient through their zero factors).
        n_batch, channels, depth_in, rows_in, width_in = x.shape
        _, c_out, depth_out, rows_out, width_out = y.shape
        groups = wk.shape[0]
        per_group = channels // groups
        out_group = c_out // groups
        k_group = wk.shape[2]
        segments = k_group // per_group
        cx_group = xg.shape[1] // groups
        blocks = (rows_out + row_block - 1) // row_block
        kz = 2 * centre[0] + 1
        pitch = (width_out - 1) * stride[2] + 2 * centre[2] * dilation[2] + 1
        off = centre[2] * dilation[2]
        # box 0 is the padded rows themselves, read at a shift of ``off``: ``off`` zeros follow them
        box_len = ((row_block - 1) * stride[1] + 2 * centre[1] * dilation[1] + 1) * pitch + off
        acc_len = row_block * pitch
        n_terms = term_seg.shape[0]
        for job in prange(n_batch * depth_out * blocks):
            tid = numba.get_thread_id()
            b = job // (depth_out * blocks)
            zo = (job // blocks) % depth_out
            h0 = (job % blocks) * row_block
            nrows = min(rows_out, h0 + row_block) - h0
            rows = (nrows - 1) * stride[1] + 2 * centre[1] * dilation[1] + 1
            span = nrows * pitch
            total = rows * pitch
            valid = total - 2 * off
            work = scratch[tid]
            used = kz * num_boxes * box_len
            boxes = work[:used].reshape((kz, num_boxes, box_len))
            acc = work[used:used + channels * segments * acc_len].reshape((channels * segments, acc_len))
            used += channels * segments * acc_len
            ybuf = work[used:used + 2 * acc_len]
            xbuf = work[used + 2 * acc_len:used + 6 * acc_len]
            for q in range(channels * segments):
                aq = acc[q]
                for i in range(span):
                    aq[i] = 0.0
            for c in range(channels):
                g = c // per_group
                for iz in range(kz):
                    zi = zo * stride[0] + iz * dilation[0] - pads[0]
                    padded = boxes[iz, 0]
                    lo = min(max(pads[2], 0), pitch)
                    hi_col = min(max(pads[2] + width_in, lo), pitch)
                    for r in range(rows):
                        hi = h0 * stride[1] + r - pads[1]
                        row = padded[r * pitch:(r + 1) * pitch]
                        if zi < 0 or zi >= depth_in or hi < 0 or hi >= rows_in:
                            for j in range(pitch):
                                row[j] = 0.0
                            continue
                        for j in range(lo):
                            row[j] = 0.0
                        part = row[lo:hi_col]
                        src = x[b, c, zi, hi, lo - pads[2]:hi_col - pads[2]]
                        for j in range(hi_col - lo):
                            part[j] = src[j]
                        for j in range(hi_col, pitch):
                            row[j] = 0.0
                    for i in range(total, total + off):
                        padded[i] = 0.0
                    # box_a at column j: the sum of the padded row over j + off - a..j + off + a (dilated)
                    for a in range(1, num_boxes):
                        prev = boxes[iz, a - 1]
                        cur = boxes[iz, a]
                        plus = padded[off + a * dilation[2]:off + a * dilation[2] + valid]
                        minus = padded[off - a * dilation[2]:off - a * dilation[2] + valid]
                        if a == 1:
                            prev = padded[off:off + valid]
                        for i in range(valid):
                            cur[i] = prev[i] + plus[i] + minus[i]
                        for i in range(valid, total):
                            cur[i] = 0.0
                for t in range(n_terms):
                    dst = acc[(g * segments + term_seg[t]) * per_group + c - g * per_group]
                    box = boxes[centre[0] + term_dz[t], term_a[t]]
                    shift = off if term_a[t] == 0 else 0  # box 0 is the padded row itself
                    row0 = (centre[1] + term_dh[t]) * dilation[1]
                    if stride[1] == 1:
                        srcv = box[row0 * pitch + shift:row0 * pitch + shift + span]
                        for i in range(span):
                            dst[i] += srcv[i]
                    else:
                        for r in range(nrows):
                            start = (r * stride[1] + row0) * pitch + shift
                            srcv = box[start:start + pitch]
                            drow = dst[r * pitch:(r + 1) * pitch]
                            for i in range(pitch):
                                drow[i] += srcv[i]
            if mix:
                for g in range(groups):
                    base = g * k_group
                    for o in range(0, out_group, 2):
                        # two outputs from three disc sums per pass: the most streams LLVM still vectorises
                        # (it checks every pair of them for overlap), measured 1.45x four sums into one output
                        pair = o + 1 < out_group
                        y0 = ybuf[:span]
                        y1 = ybuf[acc_len:acc_len + span]
                        value0 = bias[g * out_group + o] if bias.shape[0] > 0 else 0.0
                        value1 = bias[g * out_group + o + 1] if bias.shape[0] > 0 and pair else 0.0
                        for i in range(span):
                            y0[i] = value0
                            y1[i] = value1
                        w0 = wk[g, o]
                        w1 = wk[g, o + 1] if pair else wk[g, o]
                        k = 0
                        while k + 3 <= k_group:
                            a0 = acc[base + k, :span]
                            a1 = acc[base + k + 1, :span]
                            a2 = acc[base + k + 2, :span]
                            c00, c01, c02 = w0[k], w0[k + 1], w0[k + 2]
                            c10, c11, c12 = w1[k], w1[k + 1], w1[k + 2]
                            for i in range(span):
                                x0 = a0[i]
                                x1 = a1[i]
                                x2 = a2[i]
                                y0[i] += c00 * x0 + c01 * x1 + c02 * x2
                                y1[i] += c10 * x0 + c11 * x1 + c12 * x2
                            k += 3
                        while k < k_group:
                            a0 = acc[base + k, :span]
                            c00, c10 = w0[k], w1[k]
                            for i in range(span):
                                y0[i] += c00 * a0[i]
                                y1[i] += c10 * a0[i]
                            k += 1
                        for q in range(2 if pair else 1):
                            plane = y[b, g * out_group + o + q, zo]
                            for r in range(nrows):
                                drow = plane[h0 + r]
                                srow = ybuf[q * acc_len + r * pitch:q * acc_len + (r + 1) * pitch]
                                for w in range(width_out):
                                    drow[w] = srow[w * stride[2]]
            if grad_w:
                # four input channels by two disc sums per pass, eight sums held in registers (float32 ones:
                # a float64 zero would promote the products and halve the vector width)
                gt = gw[tid]
                zero = acc.dtype.type(0)
                xv = xbuf.reshape((4, acc_len))
                for q in range(4):
                    for i in range(span):
                        xv[q, i] = zero
                for g in range(groups):
                    for c0 in range(0, cx_group, 4):
                        count = min(4, cx_group - c0)
                        for q in range(4):
                            if q >= count:
                                for i in range(span):
                                    xv[q, i] = zero
                                continue
                            plane = xg[b, g * cx_group + c0 + q, zo]
                            for r in range(nrows):
                                srow = plane[h0 + r]
                                for w in range(width_out):
                                    xv[q, r * pitch + w * stride[2]] = srow[w]
                        x0 = xv[0, :span]
                        x1 = xv[1, :span]
                        x2 = xv[2, :span]
                        x3 = xv[3, :span]
                        for k in range(0, k_group, 2):
                            second = k + 1 < k_group
                            a0 = acc[g * k_group + k, :span]
                            a1 = acc[g * k_group + k + 1, :span] if second else a0
                            s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = zero
                            for i in range(span):
                                p = a0[i]
                                u = a1[i]
                                v = x0[i]
                                s00 += v * p
                                s01 += v * u
                                v = x1[i]
                                s10 += v * p
                                s11 += v * u
                                v = x2[i]
                                s20 += v * p
                                s21 += v * u
                                v = x3[i]
                                s30 += v * p
                                s31 += v * u
                            sums = ((s00, s01), (s10, s11), (s20, s21), (s30, s31))
                            for q in range(count):
                                gt[g, c0 + q, k] += sums[q][0]
                                if second:
                                    gt[g, c0 + q, k + 1] += sums[q][1]

    return kernel
