"""Ring engine: an SRE convolution computed as disc sums followed by a 1x1 channel mixing.

A radial kernel takes one value per squared distance ``d2`` of a cell to the centre. Sorting the distinct
values into segments ``(T_{s-1}, T_s]`` of equal basis column, the kernel telescopes into nested *discs*:
``sum_s w_s 1[T_{s-1} < d2 <= T_s] = sum_s (w_s - w_{s+1}) 1[d2 <= T_s]``. So ``conv(x, kernel)`` equals
``sum_s u_s * disc_s(x)``: every input channel is summed over each of the ``S`` discs (the "responses", the
same fixed sets for all channels), then a 1x1 convolution with the telescoped weights ``u = w @ Delta`` mixes
the ``S * C_in`` responses into ``C_out`` outputs. Per output pixel this costs about ``C_in * (disc sums) +
S * C_in * C_out`` operations instead of ``prod(k) * C_in * C_out``.

Disc sums are cheap because a disc is a union of shifted lower-dimensional discs: ``{d2 <= T}`` in ``n``
dims is, for every offset ``t`` along the first axis, the ``(n-1)``-dimensional disc ``{d2 <= T - t^2}``
shifted by ``t``; in one dimension it is a centred box. All boxes of one input are built with two additions
each (``box_a = box_{a-1} + x[+a] + x[-a]``), every 2D disc is then a short sum of shifted boxes (one term
per row, ``2 * radius + 1`` in all), and every 3D ball a short sum of shifted 2D discs (shared between balls).
Everything runs channels-last, so each addition is one long contiguous pass, and the mixing is a 1x1
convolution on a channels-last tensor, which oneDNN and cuDNN run near their peak.

Memory stays bounded: the input is processed in chunks of samples (and of rows when one sample is too large)
so that the transient boxes, discs and responses of a chunk fit :func:`sreconv.nn.tuning.workspace_limit`.
Backward is chunked the same way and saves only the unpadded input and the weights, recomputing the responses
where the weight gradient needs them, so training keeps as much memory as a dense convolution.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import disc_kernel, tuning
from .ring_basis import squared_distances

IMPLS = ("auto", "dense", "ring", "depthwise", "fused")

# (child key, offset along the level's axis): one shifted lower-level disc inside a disc.
_Term = tuple[int, int]
# (key, terms): a disc of one level.
_Node = tuple[int, tuple[_Term, ...]]
# Per spatial dim: (padding before, padding after).
_Pads = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class RingPlan:
    """How to compute the disc responses of a radial basis from boxes along the last axis.

    Attributes:
        kernel_size: ``(k_1, ..., k_n)``.
        thresholds: ``S`` increasing squared radii ``T_s``; response ``s`` is the sum over ``d2 <= T_s``.
        difference: the ``(R, S)`` matrix ``Delta`` (nested tuples) turning ring weights into disc weights:
            ``u = w @ Delta``, ``Delta[:, s] = column_s - column_{s+1}`` of the basis.
        num_boxes: ``A``, one more than the widest box half-width used.
        levels: for each level ``2..n`` (level ``j`` sums over the last ``j`` axes), its discs in computation
            order as ``(key, terms)``; keys are canonical squared radii (level 1: box half-widths).
        outputs: the key of the top-level disc of every segment (``n = 1``: box half-widths).
    """

    kernel_size: tuple[int, ...]
    thresholds: tuple[int, ...]
    difference: tuple[tuple[float, ...], ...]
    num_boxes: int
    levels: tuple[tuple[_Node, ...], ...]
    outputs: tuple[int, ...]

    @property
    def num_segments(self) -> int:
        """``S``, the number of responses per input channel."""
        return len(self.thresholds)

    @property
    def num_terms(self) -> int:
        """Additions above the boxes (one per shifted lower-level disc)."""
        return sum(len(terms) for level in self.levels for _, terms in level)

    def passes(self) -> int:
        """Elementwise passes of one forward: box chain, disc terms and the copies of one-term discs."""
        copies = self.num_segments if not self.levels else 0
        return 2 * (self.num_boxes - 1) + self.num_terms + copies


def _achievable(kernel_size: Sequence[int]) -> np.ndarray:
    """Sorted distinct squared distances of the cells of a kernel."""
    return np.unique(squared_distances(kernel_size))


def build_ring_plan(basis: torch.Tensor) -> RingPlan | None:
    """Checks that ``basis`` is radial and decomposes it into nested discs.

    Args:
        basis: ``(R, *kernel_size)`` with odd sizes: hard rings, gaussian rings, official masks.

    Returns:
        The plan, or ``None`` when the basis is not radial (two cells at the same distance from the centre
        with different basis values), empty, or of an even size; then only the dense path applies.
    """
    values = basis.detach().to("cpu", torch.float64).numpy()
    size = tuple(int(k) for k in values.shape[1:])
    if not size or any(k % 2 == 0 for k in size):
        return None
    flat = values.reshape(values.shape[0], -1)
    d2 = squared_distances(size).reshape(-1)
    columns: list[tuple[int, np.ndarray]] = []
    for shell in np.unique(d2):
        cells = flat[:, d2 == shell]
        if not np.all(cells == cells[:, :1]):
            return None
        columns.append((int(shell), cells[:, 0]))
    segments: list[tuple[int, np.ndarray]] = []
    for shell, column in columns:
        if segments and np.array_equal(segments[-1][1], column):
            segments[-1] = (shell, column)
        else:
            segments.append((shell, column))
    while segments and not np.any(segments[-1][1]):
        segments.pop()
    if not segments:
        return None
    thresholds = tuple(shell for shell, _ in segments)
    stacked = np.stack([column for _, column in segments] + [np.zeros(values.shape[0])], axis=1)
    difference = stacked[:, :-1] - stacked[:, 1:]
    levels, outputs, num_boxes = _disc_levels(size, thresholds)
    return RingPlan(size, thresholds, tuple(tuple(float(v) for v in row) for row in difference), num_boxes,
                    levels, outputs)


def _disc_levels(size: tuple[int, ...], thresholds: tuple[int, ...]
                 ) -> tuple[tuple[tuple[_Node, ...], ...], tuple[int, ...], int]:
    """Nodes of every level (top-down dependency closure), the output keys and the box count."""
    n = len(size)
    achievable = [_achievable(size[n - j:]) for j in range(1, n + 1)]

    def canonical(level: int, value: int) -> int | None:
        """Largest squared radius of level ``level`` that is ``<= value`` (the same set of cells)."""
        values = achievable[level - 1]
        index = int(np.searchsorted(values, value, side="right")) - 1
        return None if index < 0 else int(values[index])

    def key(level: int, value: int) -> int:
        return math.isqrt(value) if level == 1 else value

    needed: dict[int, set[int]] = {n: set()}
    outputs = []
    for threshold in thresholds:
        canon = canonical(n, threshold)
        assert canon is not None  # every threshold is a squared distance of the kernel
        needed[n].add(canon)
        outputs.append(key(n, canon))
    levels: list[tuple[_Node, ...]] = []
    for level in range(n, 1, -1):
        centre = size[n - level] // 2
        nodes = []
        needed[level - 1] = set()
        for value in sorted(needed[level]):
            terms = []
            for offset in range(-centre, centre + 1):
                child = canonical(level - 1, value - offset * offset)
                if child is not None:
                    needed[level - 1].add(child)
                    terms.append((key(level - 1, child), offset))
            nodes.append((value, tuple(terms)))
        levels.append(tuple(nodes))
    num_boxes = max(math.isqrt(v) for v in needed[1]) + 1
    return tuple(reversed(levels)), tuple(outputs), num_boxes


def output_size(spatial: Sequence[int], kernel_size: Sequence[int], stride: Sequence[int],
                dilation: Sequence[int]) -> tuple[int, ...]:
    """Output size of an unpadded convolution (the input is padded beforehand)."""
    return tuple((s - d * (k - 1) - 1) // st + 1 for s, k, st, d in zip(spatial, kernel_size, stride, dilation))


def disc_weights(weight: torch.Tensor, plan: RingPlan) -> torch.Tensor:
    """Ring weights ``(C_out, C_in/g, R)`` -> telescoped disc weights ``(C_out, C_in/g, S)`` (``w @ Delta``)."""
    delta = torch.tensor(plan.difference, dtype=weight.dtype, device=weight.device)
    return torch.matmul(weight, delta)


def mixing_weight(disc_weight: torch.Tensor, groups: int) -> torch.Tensor:
    """``(C_out, C_in/g, S)`` -> the 1x1 mixing weight ``(C_out, S * C_in/g)`` in the responses' channel order."""
    return disc_weight.transpose(1, 2).reshape(disc_weight.shape[0], -1)


# ------------------------------------------------------------------------------------------- schedule
@dataclass(frozen=True)
class _Schedule:
    """Index tuples of every shifted view, for one plan, stride, dilation and padded size."""

    out: tuple[int, ...]
    box_windows: tuple[tuple[Any, Any], ...]  # per half-width a >= 1: views of x at +a and -a
    centre_window: Any
    levels: tuple[tuple[tuple[int, tuple[tuple[int, Any], ...]], ...], ...]


def _window(offset: int, dilation: int, stride: int, count: int) -> slice:
    start = offset * dilation
    return slice(start, start + stride * (count - 1) + 1, stride)


def _build_schedule(plan: RingPlan, stride: tuple[int, ...], dilation: tuple[int, ...],
                    padded: tuple[int, ...]) -> _Schedule:
    n = len(plan.kernel_size)
    out = output_size(padded, plan.kernel_size, stride, dilation)

    def index(axis: int, offset: int) -> tuple[Any, ...]:
        centre = plan.kernel_size[axis] // 2
        return (slice(None),) * (axis + 1) + (_window(centre + offset, dilation[axis], stride[axis], out[axis]),)

    boxes = tuple((index(n - 1, a), index(n - 1, -a)) for a in range(1, plan.num_boxes))
    levels = []
    for j, nodes in enumerate(plan.levels):
        axis = n - 2 - j
        levels.append(tuple((node_key, tuple((child, index(axis, offset)) for child, offset in terms))
                            for node_key, terms in nodes))
    return _Schedule(out, boxes, index(n - 1, 0), tuple(levels))


_cached_schedule = lru_cache(maxsize=256)(_build_schedule)


def _schedule(plan: RingPlan, stride: tuple[int, ...], dilation: tuple[int, ...],
              padded: tuple[int, ...]) -> _Schedule:
    if torch.compiler.is_compiling():
        return _build_schedule(plan, stride, dilation, padded)
    return _cached_schedule(plan, stride, dilation, padded)


# ------------------------------------------------------------------------------------------- workspace
class _Arena:
    """Bump allocator over one reused flat buffer, so that a chunk's transients cause no page faults.

    Fresh multi-megabyte allocations on CPU are returned to the OS when freed and fault in page by page on
    the next call, which costs more than the additions written into them. A request that does not fit the
    buffer gets a fresh tensor.
    """

    def __init__(self, buffer: torch.Tensor | None, like: torch.Tensor) -> None:
        self.buffer, self.like, self.offset = buffer, like, 0

    def empty(self, shape: Sequence[int]) -> torch.Tensor:
        numel = math.prod(shape)
        if self.buffer is None or self.offset + numel > self.buffer.numel():
            return self.like.new_empty(tuple(shape))
        view = self.buffer[self.offset:self.offset + numel].view(tuple(shape))
        self.offset += -(-numel // 16) * 16  # keep every view 64-byte aligned
        return view

    def zeros(self, shape: Sequence[int]) -> torch.Tensor:
        return self.empty(shape).zero_()


_WORKSPACES = threading.local()


def _arena(like: torch.Tensor, numel: int) -> _Arena:
    """An arena of at least ``numel`` elements on ``like``'s device and dtype (reused per thread on CPU)."""
    if like.device.type != "cpu" or torch.compiler.is_compiling() or numel * like.element_size() > max(
            tuning.workspace_limit(), 1):
        return _Arena(None, like)
    buffers = getattr(_WORKSPACES, "buffers", None)
    if buffers is None:
        buffers = _WORKSPACES.buffers = {}
    key = (like.dtype, tuning.workspace_generation())
    buffer = buffers.get(key)
    if buffer is None or buffer.numel() < numel:
        buffers.clear()
        buffer = buffers[key] = like.new_empty(numel + 16 * 64)
    return _Arena(buffer, like)


# ------------------------------------------------------------------------------------------- responses
def ring_responses(xp: torch.Tensor, plan: RingPlan, stride: Sequence[int], dilation: Sequence[int],
                   groups: int = 1, arena: _Arena | None = None) -> torch.Tensor:
    """Disc sums of every input channel at every output position, channels-last.

    Args:
        xp: padded input, channels-last ``(N, *spatial, C)`` (contiguous is fastest; any strides work).
        plan: from :func:`build_ring_plan`.
        stride: per spatial dim.
        dilation: per spatial dim.
        groups: channel groups of the convolution; only changes the channel order of the result.
        arena: where the transients (and the result) are allocated (default: fresh tensors).

    Returns:
        ``(N, *out, S * C)`` with channels ordered ``(groups, S, C / groups)``: the input of the 1x1 mixing.
    """
    arena = arena or _Arena(None, xp)
    n = len(plan.kernel_size)
    sched = _schedule(plan, tuple(stride), tuple(dilation), tuple(xp.shape[1:-1]))
    channels = xp.shape[-1]
    base = tuple(xp.shape[:1]) + sched.out
    if torch.compiler.is_compiling():
        return _functional_responses(xp, plan, sched, groups)
    resp = arena.empty(base + (groups, plan.num_segments, channels // groups))
    if disc_kernel.applies(xp) and disc_kernel.disc_sums(xp, plan, stride, dilation, resp):
        return resp.view(base + (-1,))
    targets = [resp[..., s, :] for s in range(plan.num_segments)]
    boxes: dict[int, torch.Tensor] = {0: xp[sched.centre_window]}
    box_shape = boxes[0].shape
    for a, (plus, minus) in enumerate(sched.box_windows, start=1):
        box = torch.add(xp[plus], xp[minus], out=arena.empty(box_shape))
        boxes[a] = box.add_(boxes[a - 1])
    if not sched.levels:
        for s, a in enumerate(plan.outputs):
            targets[s].copy_(boxes[a].view(targets[s].shape))
        return resp.view(base + (-1,))
    below = boxes
    scratch: torch.Tensor | None = None
    for level, nodes in enumerate(sched.levels, start=2):
        current: dict[int, torch.Tensor] = {}
        for node_key, terms in nodes:
            views = [below[child][idx] for child, idx in terms]
            if level < n:
                acc = arena.empty(views[0].shape)
                if len(views) == 1:
                    acc.copy_(views[0])
                else:
                    torch.add(views[0], views[1], out=acc)
                for v in views[2:]:
                    acc.add_(v)
                current[node_key] = acc
                continue
            # top level: sum in a contiguous scratch, write the last term into the strided response slice
            target = targets[plan.outputs.index(node_key)]
            views = [v.view(target.shape) for v in views]
            if len(views) <= 2:
                target.copy_(views[0]) if len(views) == 1 else torch.add(views[0], views[1], out=target)
                continue
            if scratch is None:
                scratch = arena.empty(target.shape)
            torch.add(views[0], views[1], out=scratch)
            for v in views[2:-1]:
                scratch.add_(v)
            torch.add(scratch, views[-1], out=target)
        below = current
    return resp.view(base + (-1,))


def _functional_responses(xp: torch.Tensor, plan: RingPlan, sched: _Schedule, groups: int) -> torch.Tensor:
    """:func:`ring_responses` without ``out=`` or in-place writes: one expression that ``torch.compile`` fuses."""
    n = len(plan.kernel_size)
    below = {0: xp[sched.centre_window]}
    for a, (plus, minus) in enumerate(sched.box_windows, start=1):
        below[a] = below[a - 1] + xp[plus] + xp[minus]
    tops = {}
    for level, nodes in enumerate(sched.levels, start=2):
        current = {}
        for node_key, terms in nodes:
            total = below[terms[0][0]][terms[0][1]]
            for child, idx in terms[1:]:
                total = total + below[child][idx]
            current[node_key] = total
        below = current if level < n else below
        tops = current
    outputs = tops if sched.levels else below
    base = tuple(xp.shape[:1]) + sched.out
    split = base + (groups, xp.shape[-1] // groups)
    resp = torch.stack([outputs[key].reshape(split) for key in plan.outputs], dim=-2)
    return resp.reshape(base + (-1,))


def ring_responses_adjoint(grad: torch.Tensor, plan: RingPlan, stride: Sequence[int], dilation: Sequence[int],
                           padded: Sequence[int], groups: int = 1, arena: _Arena | None = None) -> torch.Tensor:
    """Adjoint of :func:`ring_responses`: ``(N, *padded, C)`` from the gradient ``(N, *out, S * C)``."""
    arena = arena or _Arena(None, grad)
    n = len(plan.kernel_size)
    sched = _schedule(plan, tuple(stride), tuple(dilation), tuple(padded))
    channels = grad.shape[-1] // plan.num_segments
    base = tuple(grad.shape[:1]) + sched.out
    per_seg = grad.reshape(base + (groups, plan.num_segments, channels // groups))
    above: dict[int, torch.Tensor] = {
        key: per_seg[..., s, :].reshape(base + (channels,)) for s, key in enumerate(plan.outputs)}
    for level in range(n, 1, -1):
        shape = grad.shape[:1] + tuple(padded[:n - level + 1]) + sched.out[n - level + 1:] + (channels,)
        below: dict[int, torch.Tensor] = {}
        for node_key, terms in sched.levels[level - 2]:
            g = above[node_key]
            for child, idx in terms:
                if child not in below:
                    below[child] = arena.zeros(shape)
                below[child][idx].add_(g)
        above = below
    grad_x = arena.zeros(grad.shape[:1] + tuple(padded) + (channels,))
    # box_a contains box_{a-1}: walking down from the widest box accumulates each box's total gradient.
    running = above[plan.num_boxes - 1]
    for a in range(plan.num_boxes - 1, 0, -1):
        plus, minus = sched.box_windows[a - 1]
        grad_x[plus].add_(running)
        grad_x[minus].add_(running)
        lower = above.get(a - 1)
        if lower is not None:  # the disc gradients are ours to overwrite; for n = 1 they are views of ``grad``
            running = lower.add_(running) if n > 1 else torch.add(lower, running, out=arena.empty(running.shape))
    grad_x[sched.centre_window].add_(running)
    return grad_x


# ------------------------------------------------------------------------------------------- layout helpers
def _rows_view(t: torch.Tensor) -> torch.Tensor:
    """``(N, *out, K)`` -> ``(N * prod(out[:-1]), K, 1, out[-1])``: a channels-last view for a 1x1 ``conv2d``.

    Folding every spatial axis but the last into the batch makes one 2D convolution serve 1D, 2D and 3D, and
    a large batch keeps torch on its oneDNN kernels for 1x1 convolutions (it avoids them for batches < 16).
    """
    return t.reshape(-1, 1, t.shape[-2], t.shape[-1]).movedim(-1, 1)


def _mix(resp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int) -> torch.Tensor:
    """1x1 convolution of channels-last responses ``(N, *out, S*C)`` -> ``(N, C_out, *out)`` (channels-last)."""
    y = F.conv2d(_rows_view(resp), weight[:, :, None, None], bias, 1, 0, 1, groups)
    return y.movedim(1, -1).reshape(resp.shape[:-1] + (weight.shape[0],)).movedim(-1, 1)


def _pad_channels_last(x: torch.Tensor, pads: _Pads, rows: tuple[int, int] | None = None,
                       arena: _Arena | None = None) -> torch.Tensor:
    """Zero-padded channels-last copy ``(N, *padded, C)`` of ``x`` ``(N, C, *spatial)``.

    ``rows`` restricts the result to padded rows ``[start, stop)`` of the first spatial axis.
    """
    arena = arena or _Arena(None, x)
    spatial = tuple(x.shape[2:])
    padded = [s + b + a for s, (b, a) in zip(spatial, pads)]
    offsets = [b for b, _ in pads]
    src: list[slice] = [slice(None)] * len(spatial)
    if rows is not None:
        start, stop = rows
        padded[0] = stop - start
        lo, hi = max(start - pads[0][0], 0), min(stop - pads[0][0], spatial[0])
        src[0] = slice(lo, hi)
        offsets[0] = lo + pads[0][0] - start
        spatial = (max(hi - lo, 0),) + spatial[1:]
    moved = x.movedim(1, -1)[(slice(None),) + tuple(src)]
    xp = arena.empty((x.shape[0], *padded, x.shape[1]))
    if tuple(padded) == spatial:
        return xp.copy_(moved)
    # zero only the borders: the interior is overwritten
    for axis, (offset, size) in enumerate(zip(offsets, spatial), start=1):
        if offset > 0:
            xp.narrow(axis, 0, offset).zero_()
        if offset + size < xp.shape[axis]:
            xp.narrow(axis, offset + size, xp.shape[axis] - offset - size).zero_()
    xp[(slice(None),) + tuple(slice(o, o + s) for o, s in zip(offsets, spatial))] = moved
    return xp


def _unpad(grad_xp: torch.Tensor, pads: _Pads, spatial: Sequence[int], rows: tuple[int, int] | None = None
           ) -> tuple[torch.Tensor, slice]:
    """The part of a padded channels-last gradient that lies on the input, as ``(N, C, *part)``, and its rows."""
    idx: list[slice] = [slice(b, b + s) for (b, _), s in zip(pads, spatial)]
    first = slice(0, spatial[0])
    if rows is not None:
        start, _ = rows
        lo, hi = max(start - pads[0][0], 0), min(start + grad_xp.shape[1] - pads[0][0], spatial[0])
        idx[0] = slice(lo + pads[0][0] - start, hi + pads[0][0] - start)
        first = slice(lo, hi)
    return grad_xp[(slice(None),) + tuple(idx)].movedim(-1, 1), first


def _prefers_channels_last(x: torch.Tensor) -> bool:
    if x.dim() == 4:
        return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    if x.dim() == 5:
        return x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous()
    return False


def _in_format_of(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y`` in the memory format of ``x`` (channels-last stays channels-last, anything else is contiguous)."""
    if _prefers_channels_last(x):
        return y.contiguous(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
    return y.contiguous()


def _empty_like_input(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    if _prefers_channels_last(x):
        fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
        return x.new_empty(tuple(shape)).contiguous(memory_format=fmt)
    return x.new_empty(tuple(shape))


# ------------------------------------------------------------------------------------------- chunking
def transient_elements(plan: RingPlan, padded: Sequence[int], out: Sequence[int], channels: int,
                       backward: bool = False) -> int:
    """Elements of the reusable transients of one sample (padded input, boxes, discs, responses).

    ``backward`` adds the adjoint's buffers (the gradients of the discs and of the padded input).
    """
    n = len(plan.kernel_size)
    box = math.prod(padded[:-1]) * out[-1]
    levels = sum(len(nodes) * math.prod(padded[:n - j]) * math.prod(out[n - j:])
                 for j, nodes in enumerate(plan.levels[:-1], start=2))
    forward = math.prod(padded) + (plan.num_boxes - 1) * box + levels + (plan.num_segments + 1) * math.prod(out)
    if not backward:
        return channels * forward
    adjoint = math.prod(padded) + (plan.num_boxes + 1) * box + levels
    return channels * max(forward, adjoint)


def _tiles(n_batch: int, per_sample: int, rows_out: int) -> list[tuple[int, int, int, int]]:
    """``(batch start, batch stop, out-row start, out-row stop)`` pieces of ``per_sample`` bytes that fit the budget."""
    limit = tuning.workspace_limit()
    if per_sample * n_batch <= limit:
        return [(0, n_batch, 0, rows_out)]
    if per_sample <= limit or rows_out == 1:
        chunk = max(1, limit // per_sample)
        return [(b, min(b + chunk, n_batch), 0, rows_out) for b in range(0, n_batch, chunk)]
    rows = max(1, rows_out * limit // per_sample)
    return [(b, b + 1, r, min(r + rows, rows_out)) for b in range(n_batch) for r in range(0, rows_out, rows)]


def _input_rows(r0: int, r1: int, plan: RingPlan, stride: Sequence[int], dilation: Sequence[int]
                ) -> tuple[int, int]:
    return r0 * stride[0], (r1 - 1) * stride[0] + dilation[0] * (plan.kernel_size[0] - 1) + 1


# ------------------------------------------------------------------------------------------- autograd
@dataclass(frozen=True)
class _Geometry:
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: _Pads
    groups: int


class _Responses(torch.autograd.Function):
    """:func:`ring_responses` as a linear autograd op whose backward is its adjoint (any order of grads)."""

    @staticmethod
    def forward(ctx, xp, plan, stride, dilation, groups):
        ctx.plan, ctx.stride, ctx.dilation, ctx.groups = plan, stride, dilation, groups
        ctx.padded = tuple(xp.shape[1:-1])
        return ring_responses(xp, plan, stride, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        grad_xp = _ResponsesAdjoint.apply(grad, ctx.plan, ctx.stride, ctx.dilation, ctx.padded, ctx.groups)
        return grad_xp, None, None, None, None


class _ResponsesAdjoint(torch.autograd.Function):
    """:func:`ring_responses_adjoint` as an autograd op; its backward is the forward disc sums again."""

    @staticmethod
    def forward(ctx, grad, plan, stride, dilation, padded, groups):
        ctx.plan, ctx.stride, ctx.dilation, ctx.groups = plan, stride, dilation, groups
        return ring_responses_adjoint(grad, plan, stride, dilation, padded, groups)

    @staticmethod
    def backward(ctx, grad_xp):
        return _Responses.apply(grad_xp, ctx.plan, ctx.stride, ctx.dilation, ctx.groups), None, None, None, None, None


def _differentiable_conv(x, weight, bias, plan, geo):
    """The whole ring convolution from differentiable pieces: the backward of a backward goes through here."""
    pads = tuple(v for b, a in reversed(geo.pads) for v in (b, a))
    xp = F.pad(x, pads).movedim(1, -1)
    resp = _Responses.apply(xp, plan, geo.stride, geo.dilation, geo.groups)
    return _mix(resp, weight, bias, geo.groups)


def _differentiable_grads(x, weight, bias, plan, geo, grad_out, needs):
    """The gradients that ``needs`` asks for, as a graph (for a backward of the backward)."""
    with torch.enable_grad():
        y = _differentiable_conv(x, weight, bias, plan, geo)
        inputs = [t for t, need in zip((x, weight, bias), needs) if need]
        grads = iter(torch.autograd.grad(y, inputs, grad_out, create_graph=True))
    return tuple(next(grads) if need else None for need in needs)


class _RingConvFunction(torch.autograd.Function):
    """Chunked disc sums + mixing with a chunked, recomputing backward (saves the unpadded input and weights)."""

    @staticmethod
    def forward(ctx, x, weight, bias, plan, geo):
        ctx.save_for_backward(x, weight, bias)
        ctx.plan, ctx.geo = plan, geo
        return _chunked_forward(x, weight, bias, plan, geo)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, bias = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # create_graph=True: build a graph of differentiable pieces
            return _differentiable_grads(x, weight, bias, ctx.plan, ctx.geo, grad_out, needs) + (None, None)
        grad_x, grad_w, grad_b = _chunked_backward(x, weight, grad_out, ctx.plan, ctx.geo, needs)
        return grad_x, grad_w, grad_b, None, None


def _sizes(x: torch.Tensor, plan: RingPlan, geo: _Geometry) -> tuple[tuple[int, ...], tuple[int, ...]]:
    padded = tuple(s + b + a for s, (b, a) in zip(x.shape[2:], geo.pads))
    return padded, output_size(padded, plan.kernel_size, geo.stride, geo.dilation)


def _tile_padded(padded: tuple[int, ...], rows: tuple[int, int] | None) -> tuple[int, ...]:
    return padded if rows is None else (rows[1] - rows[0],) + padded[1:]


def _chunked_forward(x, weight, bias, plan, geo):
    n_batch, channels = x.shape[:2]
    padded, out_size = _sizes(x, plan, geo)
    per_sample = transient_elements(plan, padded, out_size, channels)
    tiles = _tiles(n_batch, per_sample * x.element_size(), out_size[0])
    out = None if len(tiles) == 1 else _empty_like_input(x, (n_batch, weight.shape[0]) + out_size)
    for b0, b1, r0, r1 in tiles:
        rows = None if (r0, r1) == (0, out_size[0]) else _input_rows(r0, r1, plan, geo.stride, geo.dilation)
        arena = _arena(x, (b1 - b0) * per_sample * (r1 - r0) // out_size[0] + 64 * plan.num_segments)
        xp = _pad_channels_last(x[b0:b1], geo.pads, rows, arena)
        y = _mix(ring_responses(xp, plan, geo.stride, geo.dilation, geo.groups, arena), weight, bias, geo.groups)
        if out is None:
            return _in_format_of(y, x)
        out[b0:b1, :, r0:r1] = y
    return out


def _chunked_backward(x, weight, grad_out, plan, geo, needs):
    need_x, need_w, need_b = needs
    n_batch, channels = x.shape[:2]
    spatial = tuple(x.shape[2:])
    padded, out_size = _sizes(x, plan, geo)
    grad_b = grad_out.sum(dim=[0] + list(range(2, grad_out.dim()))) if need_b else None
    if not (need_x or need_w):
        return None, None, grad_b
    kernel = plan.kernel_size
    back_pads = tuple((d * (k - 1) - b, d * (k - 1) - a) for d, k, (b, a) in zip(geo.dilation, kernel, geo.pads))
    if all(s == 1 for s in geo.stride) and all(min(p) >= 0 for p in back_pads):
        back_padded = tuple(o + b + a for o, (b, a) in zip(out_size, back_pads))
        per_sample = transient_elements(plan, back_padded, spatial, grad_out.shape[1])
        if per_sample * x.element_size() <= max(tuning.workspace_limit(), 1):
            grad_x, grad_w = _backward_by_correlation(x, weight, grad_out, plan, geo, back_pads, per_sample,
                                                      need_x, need_w)
            return grad_x, grad_w, grad_b
    per_sample = transient_elements(plan, padded, out_size, channels, backward=True)
    tiles = _tiles(n_batch, per_sample * x.element_size(), out_size[0])
    grad_x = _empty_like_input(x, x.shape) if need_x else None
    if grad_x is not None and any((t[2], t[3]) != (0, out_size[0]) for t in tiles):
        grad_x.zero_()
    grad_w = torch.zeros_like(weight) if need_w else None
    w = weight[:, :, None, None]
    for b0, b1, r0, r1 in tiles:
        whole = (r0, r1) == (0, out_size[0])
        rows = None if whole else _input_rows(r0, r1, plan, geo.stride, geo.dilation)
        numel = (b1 - b0) * per_sample * (r1 - r0) // out_size[0] + 64 * plan.num_segments
        g = _rows_view(grad_out[b0:b1, :, r0:r1].movedim(1, -1).contiguous())
        if need_w:
            arena = _arena(x, numel)
            xp = _pad_channels_last(x[b0:b1], geo.pads, rows, arena)
            resp = _rows_view(ring_responses(xp, plan, geo.stride, geo.dilation, geo.groups, arena))
            grad_resp, gw, _ = torch.ops.aten.convolution_backward(
                g, resp, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], geo.groups, [need_x, True, False])
            grad_w += gw.reshape(weight.shape)
        else:
            grad_resp = F.conv_transpose2d(g, w, None, 1, 0, 0, geo.groups)
        if need_x:
            grad_resp = grad_resp.movedim(1, -1).reshape((b1 - b0, r1 - r0) + out_size[1:] + (-1,))
            grad_xp = ring_responses_adjoint(grad_resp, plan, geo.stride, geo.dilation, _tile_padded(padded, rows),
                                             geo.groups, _arena(x, numel))
            part, first = _unpad(grad_xp, geo.pads, spatial, rows)
            assert grad_x is not None
            if whole:
                grad_x[b0:b1] = part
            else:
                grad_x[b0:b1, :, first].add_(part)
    return grad_x, grad_w, grad_b


def _backward_by_correlation(x, weight, grad_out, plan, geo, back_pads, per_sample, need_x, need_w):
    """Stride-1 backward from one set of disc sums of the output gradient (no recomputation, no adjoint).

    The discs are symmetric, so the adjoint of a stride-1 correlation is the same correlation of the
    gradient padded by ``d * (k - 1) - p``: its responses ``D_s(g)`` on the input grid give the input gradient
    through the transposed 1x1 mixing and the weight gradient as their product with the input.
    """
    n_batch, channels = x.shape[:2]
    c_out, groups = grad_out.shape[1], geo.groups
    spatial = tuple(x.shape[2:])
    # the transposed mixing: input channel (group i, c) reads responses (i, s, o) with weight w[i*C_out/g + o, c, s]
    per_group, segments = channels // groups, plan.num_segments
    w_t = (weight.reshape(groups, c_out // groups, segments, per_group).permute(0, 3, 2, 1)
           .reshape(channels, segments * (c_out // groups)))
    grad_x = _empty_like_input(x, x.shape) if need_x else None
    grad_w = torch.zeros_like(weight) if need_w else None
    for b0, b1 in _batch_chunks(n_batch, per_sample * x.element_size()):
        arena = _arena(x, (b1 - b0) * per_sample + 64 * segments)
        gp = _pad_channels_last(grad_out[b0:b1], back_pads, None, arena)
        resp = ring_responses(gp, plan, (1,) * len(spatial), geo.dilation, groups, arena)
        if need_x:
            part = _mix(resp, w_t, None, groups)
            if grad_x is not None:
                grad_x[b0:b1] = part
        if need_w and grad_w is not None:
            xs = _rows_view(x[b0:b1].movedim(1, -1).contiguous())
            # the weight gradient of "responses -> input" is sum_p x * D_s(g): ask oneDNN for it
            gw = torch.ops.aten.convolution_backward(
                xs, _rows_view(resp), w_t[:, :, None, None], None, [1, 1], [0, 0], [1, 1], False, [0, 0], groups,
                [False, True, False])[1]
            grad_w += (gw.reshape(groups, per_group, segments, c_out // groups).permute(0, 3, 2, 1)
                       .reshape(weight.shape))
    return grad_x, grad_w


def _geometry(basis: torch.Tensor, stride: int | Sequence[int], dilation: int | Sequence[int],
              padding: int | Sequence[int]) -> tuple[int, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Spatial dims, per-axis stride and dilation, and padding as ``F.pad`` pairs (last axis first)."""
    n = basis.dim() - 1
    strides = (stride,) * n if isinstance(stride, int) else tuple(stride)
    dilations = (dilation,) * n if isinstance(dilation, int) else tuple(dilation)
    pad_list = (padding,) * n if isinstance(padding, int) else tuple(padding)
    if len(pad_list) == n:
        pad_list = tuple(v for p in reversed(pad_list) for v in (p, p))
    return n, strides, dilations, pad_list


def ring_conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    basis: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    plan: RingPlan | None = None,
) -> torch.Tensor:
    """SRE convolution through the ring engine; equals :func:`sreconv.nn.functional.sre_conv` up to rounding.

    Args:
        input: ``(N, C_in, *spatial)``.
        weight: ``(C_out, C_in / groups, R)`` ring weights.
        basis: ``(R, *kernel_size)`` radial basis.
        bias: optional ``(C_out,)``.
        stride: int or per-dim tuple.
        padding: int, per-dim tuple, or the ``F.pad`` list (last dim first, two values per dim).
        dilation: int or per-dim tuple.
        groups: channel groups.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
        plan: a cached :func:`build_ring_plan` of ``basis`` (built here when ``None``).

    Returns:
        ``(N, C_out, *spatial_out)``, in the memory format of ``input`` (channels-last stays channels-last).

    Raises:
        ValueError: when ``basis`` is not radial.

    Example:
        >>> from sreconv.nn import hard_ring_basis, sre_conv
        >>> x, w, basis = torch.randn(2, 3, 12, 12), torch.randn(4, 3, 3), hard_ring_basis(5)
        >>> bool(torch.allclose(ring_conv(x, w, basis, padding=2), sre_conv(x, w, basis, padding=2), atol=1e-5))
        True
    """
    return _RingConvFunction.apply(*_ring_arguments("ring_conv", input, weight, basis, bias, stride, padding,
                                                    dilation, groups, padding_mode, plan))


def _ring_arguments(caller, input, weight, basis, bias, stride, padding, dilation, groups, padding_mode, plan):
    """``(input, mixing weight, bias, plan, geometry)`` for the ring paths' autograd functions."""
    n, stride, dilation, pad_list = _geometry(basis, stride, dilation, padding)
    if plan is None:
        plan = build_ring_plan(basis)
        if plan is None:
            raise ValueError(f"{caller} needs a radial basis (equal values at equal distances from the centre)")
    if padding_mode != "zeros" and any(pad_list):
        input = F.pad(input, pad_list, mode=padding_mode)
        pad_list = (0,) * (2 * n)
    pads = tuple((pad_list[2 * (n - 1 - i)], pad_list[2 * (n - 1 - i) + 1]) for i in range(n))
    return input, mixing_weight(disc_weights(weight, plan), groups), bias, plan, _Geometry(stride, dilation, pads,
                                                                                           groups)


# ------------------------------------------------------------------------------------------- fused path
class _FusedConvFunction(torch.autograd.Function):
    """The ring convolution as one compiled CPU kernel per direction (:mod:`sreconv.nn.disc_kernel`).

    Forward sums the discs of a block of rows and mixes them in cache; a stride-1 backward computes the input
    and weight gradients in one such pass over the output gradient. Whatever the kernel does not cover (a busy
    kernel, strided backward, double backward) runs the ``'ring'`` path's code, which gives the same values.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, plan, geo):
        ctx.save_for_backward(x, weight, bias)
        ctx.plan, ctx.geo = plan, geo
        padded, out_size = _sizes(x, plan, geo)
        y = disc_kernel.fused_forward(x, weight, bias, plan, geo.stride, geo.dilation, [b for b, _ in geo.pads],
                                      out_size, geo.groups)
        if y is None:
            return _chunked_forward(x, weight, bias, plan, geo)
        return _in_format_of(y, x)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, bias = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # create_graph=True: build a graph of differentiable pieces
            return _differentiable_grads(x, weight, bias, ctx.plan, ctx.geo, grad_out, needs) + (None, None)
        plan, geo = ctx.plan, ctx.geo
        back_pads = [d * (k - 1) - b for d, k, (b, _) in zip(geo.dilation, plan.kernel_size, geo.pads)]
        computed = None
        if (needs[0] or needs[1]) and all(s == 1 for s in geo.stride) and min(back_pads) >= 0:
            computed = disc_kernel.fused_backward(x, grad_out, weight, plan, geo.dilation, back_pads, geo.groups,
                                                  needs[0], needs[1])
        if computed is None:
            return _chunked_backward(x, weight, grad_out, plan, geo, needs) + (None, None)
        grad_x, grad_w = computed
        grad_b = grad_out.sum(dim=[0] + list(range(2, grad_out.dim()))) if needs[2] else None
        return None if grad_x is None else _in_format_of(grad_x, x), grad_w, grad_b, None, None


def fused_conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    basis: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    plan: RingPlan | None = None,
) -> torch.Tensor:
    """SRE convolution as disc sums and mixing fused in one compiled CPU kernel (the ``'fused'`` path).

    Same arguments and result as :func:`ring_conv`, which it runs where the compiled kernel does not apply
    (no numba, CUDA, half precision, inside ``torch.compile`` or ``torch.jit``). It keeps no responses in
    memory, reads and writes NCHW directly, and pays off where the 1x1 mixing is small (few channels).

    Example:
        >>> from sreconv.nn import hard_ring_basis, sre_conv
        >>> x, w, basis = torch.randn(2, 3, 12, 12), torch.randn(4, 3, 3), hard_ring_basis(5)
        >>> bool(torch.allclose(fused_conv(x, w, basis, padding=2), sre_conv(x, w, basis, padding=2), atol=1e-5))
        True
    """
    if not disc_kernel.applies(input):
        return ring_conv(input, weight, basis, bias, stride, padding, dilation, groups, padding_mode, plan)
    return _FusedConvFunction.apply(*_ring_arguments("fused_conv", input, weight, basis, bias, stride, padding,
                                                     dilation, groups, padding_mode, plan))


# ------------------------------------------------------------------------------------------- depthwise path
def _to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory (a no-op when it already is); 1D tensors get a unit height."""
    if x.dim() == 3:
        x = x.unsqueeze(2)
    return x.contiguous(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)


def _depthwise_masks(basis: torch.Tensor, out_channels: int, groups: int, like: torch.Tensor) -> torch.Tensor:
    """Depthwise weight ``(g * R * C_out/g, 1, *k)``: channel ``(i, r, o)`` correlates with ring ``r``."""
    masks = basis.to(like).unsqueeze(1).repeat_interleave(out_channels // groups, 0)
    masks = masks.repeat((groups,) + (1,) * basis.dim())
    return _to_channels_last(masks.unsqueeze(2) if basis.dim() == 2 else masks)


def _depthwise_weight(weight: torch.Tensor, groups: int, spatial_dims: int) -> torch.Tensor:
    """Ring weights ``(C_out, C_in/g, R)`` -> the 1x1 weight ``(g * R * C_out/g, C_in/g, 1, ...)`` of the mixing."""
    c_out, per_group, rings = weight.shape
    w = weight.reshape(groups, c_out // groups, per_group, rings).permute(0, 3, 1, 2)
    return w.reshape((groups * rings * (c_out // groups), per_group) + (1,) * max(spatial_dims, 2))


def _dw_params(geo: _Geometry) -> tuple[list[int], list[int], list[int]]:
    """Stride, padding and dilation of the depthwise step (1D runs as 2D with a unit height)."""
    stride, dilation, padding = list(geo.stride), list(geo.dilation), [b for b, _ in geo.pads]
    if len(stride) == 1:
        return [1] + stride, [0] + padding, [1] + dilation
    return stride, padding, dilation


def _dw_sample_elements(x: torch.Tensor, out: Sequence[int], rings: int, out_channels: int) -> int:
    """Transient elements per sample of the depthwise path: mixed input, ring responses, gradients."""
    spatial = math.prod(x.shape[2:])
    return 2 * rings * out_channels * (spatial + math.prod(out)) + 2 * x.shape[1] * spatial


class _DepthwiseConvFunction(torch.autograd.Function):
    """Mixing first, then a depthwise convolution with the ring masks and a sum over the rings.

    ``conv(x, sum_r w_r basis_r) = sum_r basis_r * (w_r x)``: a 1x1 convolution makes ``R * C_out`` channels,
    a depthwise convolution applies ring ``r`` to the channels of ring ``r``, and the rings are summed. Both
    convolutions are oneDNN/cuDNN kernels on channels-last tensors. Backward needs no recomputation: the
    depthwise step is linear with symmetric masks (its adjoint is itself with the complementary padding)
    and the mixing's weight gradient reads the saved input.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, basis, geo):
        ctx.save_for_backward(x, weight)
        ctx.basis, ctx.geo = basis, geo
        return _depthwise_chunked(x, weight, bias, basis, geo)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # create_graph=True: differentiate the forward's pieces
            with torch.enable_grad():
                y = _depthwise_forward(x, weight, None, ctx.basis, ctx.geo)
                inputs = [t for t, need in zip((x, weight), needs[:2]) if need]
                grads = iter(torch.autograd.grad(y, inputs, grad_out, create_graph=True))
            grad_x = next(grads) if needs[0] else None
            grad_w = next(grads) if needs[1] else None
        else:
            grad_x, grad_w = _depthwise_backward_chunked(x, weight, grad_out, ctx.basis, ctx.geo, needs[:2])
        grad_b = grad_out.sum(dim=[0] + list(range(2, grad_out.dim()))) if needs[2] else None
        return grad_x, grad_w, grad_b, None, None


def _batch_chunks(n_batch: int, per_sample_bytes: int) -> list[tuple[int, int]]:
    chunk = max(1, tuning.workspace_limit() // max(per_sample_bytes, 1))
    return [(b, min(b + chunk, n_batch)) for b in range(0, n_batch, chunk)]


def _depthwise_chunked(x, weight, bias, basis, geo):
    n_batch = x.shape[0]
    padded, out_size = _dw_sizes(x, basis, geo)
    chunks = _batch_chunks(n_batch, _dw_sample_elements(x, out_size, basis.shape[0], weight.shape[0])
                           * x.element_size())
    if len(chunks) == 1:
        return _depthwise_forward(x, weight, bias, basis, geo)
    out = _empty_like_input(x, (n_batch, weight.shape[0]) + out_size)
    for b0, b1 in chunks:
        out[b0:b1] = _depthwise_forward(x[b0:b1], weight, bias, basis, geo)
    return out


def _dw_sizes(x: torch.Tensor, basis: torch.Tensor, geo: _Geometry) -> tuple[tuple[int, ...], tuple[int, ...]]:
    padded = tuple(s + b + a for s, (b, a) in zip(x.shape[2:], geo.pads))
    return padded, output_size(padded, basis.shape[1:], geo.stride, geo.dilation)


def _depthwise_forward(x, weight, bias, basis, geo):
    n = x.dim() - 2
    c_out, rings, groups = weight.shape[0], basis.shape[0], geo.groups
    stride, padding, dilation = _dw_params(geo)
    conv = F.conv2d if n <= 2 else F.conv3d
    z = conv(_to_channels_last(x), _depthwise_weight(weight, groups, n), None, 1, 0, 1, groups)
    d = conv(z, _depthwise_masks(basis, c_out, groups, z), None, stride, padding, dilation, rings * c_out)
    del z
    spatial = tuple(d.shape[2:])
    parts = d.movedim(1, -1).reshape(d.shape[:1] + spatial + (groups, rings, c_out // groups))
    y = torch.add(parts[..., 0, :], parts[..., 1, :]) if rings > 1 else parts[..., 0, :].clone()
    for r in range(2, rings):
        y.add_(parts[..., r, :])
    if bias is not None:
        y.add_(bias.reshape(groups, c_out // groups))
    y = y.reshape(d.shape[:1] + spatial + (c_out,)).movedim(-1, 1)
    if n == 1:
        y = y.squeeze(2)
    return _in_format_of(y, x)


def _depthwise_backward_chunked(x, weight, grad_out, basis, geo, needs):
    need_x, need_w = needs
    n_batch = x.shape[0]
    _, out_size = _dw_sizes(x, basis, geo)
    chunks = _batch_chunks(n_batch, _dw_sample_elements(x, out_size, basis.shape[0], weight.shape[0])
                           * x.element_size())
    grad_x = _empty_like_input(x, x.shape) if need_x and len(chunks) > 1 else None
    grad_w = torch.zeros_like(weight) if need_w and len(chunks) > 1 else None
    for b0, b1 in chunks:
        gx, gw = _depthwise_backward(x[b0:b1], weight, grad_out[b0:b1], basis, geo, needs)
        if len(chunks) == 1:
            return gx, gw
        if grad_x is not None:
            grad_x[b0:b1] = gx
        if grad_w is not None:
            grad_w += gw
    return grad_x, grad_w


def _depthwise_backward(x, weight, grad_out, basis, geo, needs):
    need_x, need_w = needs
    n = x.dim() - 2
    c_out, rings, groups = weight.shape[0], basis.shape[0], geo.groups
    stride, padding, dilation = _dw_params(geo)
    conv = F.conv2d if n <= 2 else F.conv3d
    xc = _to_channels_last(x)
    g = _to_channels_last(grad_out)
    batch, spatial = g.shape[:1], tuple(g.shape[2:])
    # every ring's channels receive the whole output gradient
    nhwc = g.movedim(1, -1).reshape(batch + spatial + (groups, 1, c_out // groups))
    expanded = nhwc.expand(batch + spatial + (groups, rings, c_out // groups))
    gd = expanded.reshape(batch + spatial + (-1,)).movedim(-1, 1)
    masks = _depthwise_masks(basis, c_out, groups, gd)
    kernel = tuple(basis.shape[1:]) if n > 1 else (1,) + tuple(basis.shape[1:])
    back_pad = [d * (k - 1) - p for d, k, p in zip(dilation, kernel, padding)]
    if all(s == 1 for s in stride) and all(p >= 0 for p in back_pad):
        # symmetric masks: the adjoint of a stride-1 correlation is the same correlation, complementary padding
        grad_z = conv(gd, masks, None, 1, back_pad, dilation, rings * c_out)
    else:
        fake = _to_channels_last(xc.new_empty((x.shape[0], rings * c_out) + tuple(xc.shape[2:])))
        grad_z = torch.ops.aten.convolution_backward(
            gd, fake, masks, None, stride, padding, dilation, False, [0] * len(stride), rings * c_out,
            [True, False, False])[0]
    del gd, expanded
    ones, zeros = [1] * max(n, 2), [0] * max(n, 2)
    grad_x, grad_w1, _ = torch.ops.aten.convolution_backward(
        _to_channels_last(grad_z), xc, _depthwise_weight(weight, groups, n), None, ones, zeros, ones, False, zeros,
        groups, [need_x, need_w, False])
    grad_w = None
    if need_w:
        grad_w = (grad_w1.reshape(groups, rings, c_out // groups, weight.shape[1]).permute(0, 2, 3, 1)
                  .reshape(weight.shape))
    if need_x:
        if n == 1:
            grad_x = grad_x.squeeze(2)
        grad_x = _in_format_of(grad_x, x)
    return grad_x, grad_w


def depthwise_conv(input: torch.Tensor, weight: torch.Tensor, basis: torch.Tensor, bias: torch.Tensor | None = None,
                   stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                   dilation: int | Sequence[int] = 1, groups: int = 1, padding_mode: str = "zeros") -> torch.Tensor:
    """SRE convolution as a 1x1 mixing into ``R * C_out`` channels, a depthwise ring convolution and a ring sum.

    Equals :func:`sreconv.nn.functional.sre_conv` up to rounding; the batch is processed in chunks whose
    transients fit :func:`sreconv.nn.tuning.workspace_limit`.

    Args:
        input: ``(N, C_in, *spatial)``.
        weight: ``(C_out, C_in / groups, R)`` ring weights.
        basis: ``(R, *kernel_size)``, symmetric under flipping every axis (radial bases are).
        bias: optional ``(C_out,)``.
        stride: int or per-dim tuple.
        padding: int, per-dim tuple, or the ``F.pad`` list (last dim first, two values per dim).
        dilation: int or per-dim tuple.
        groups: channel groups.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.

    Returns:
        ``(N, C_out, *spatial_out)``, in the memory format of ``input``.

    Example:
        >>> from sreconv.nn import hard_ring_basis, sre_conv
        >>> x, w, basis = torch.randn(2, 3, 12, 12), torch.randn(4, 3, 3), hard_ring_basis(5)
        >>> y = depthwise_conv(x, w, basis, padding=2)
        >>> bool(torch.allclose(y, sre_conv(x, w, basis, padding=2), atol=1e-5))
        True
    """
    n, stride, dilation, pad_list = _geometry(basis, stride, dilation, padding)
    pairs = tuple((pad_list[2 * (n - 1 - i)], pad_list[2 * (n - 1 - i) + 1]) for i in range(n))
    if padding_mode != "zeros" or any(b != a for b, a in pairs):
        if any(pad_list):
            input = F.pad(input, pad_list, mode="constant" if padding_mode == "zeros" else padding_mode)
        pairs = ((0, 0),) * n
    return _DepthwiseConvFunction.apply(input, weight, bias, basis, _Geometry(stride, dilation, pairs, groups))


# ---------------------------------------------------------------------------------------------- cost model
#: Cost of one elementwise pass over an element, in dense-convolution multiply-adds (CPU, float32): a dense
#: convolution runs near the FMA peak (~90 G MAC/s per AVX-512 core), an elementwise pass at ~4 G elements/s.
ELEMENTWISE_COST_CPU = 20.0
#: Same on CUDA, where dense convolutions use tensor cores and elementwise passes are relatively dearer.
ELEMENTWISE_COST_CUDA = 40.0
#: Relative cost of a multiply-add of a 1x1 mixing versus one of a dense convolution.
MIXING_COST = 1.3
#: Relative cost of a multiply-add of a depthwise convolution (memory-bound: few multiply-adds per load).
DEPTHWISE_COST = 4.0
#: Fixed cost of one op (dispatch + waking the thread pool), in dense multiply-adds (~6 us).
OP_OVERHEAD = 5.0e5
#: The cost model takes another path than ``'dense'`` only when it is modelled below this fraction of the
#: dense cost, so that model error does not make it lose to dense.
AUTO_MARGIN = 0.8
#: Relative cost of a multiply-add of the fused kernel's mixing (compiled loops, not oneDNN's matrix kernels).
FUSED_MIXING_COST = 4.0
#: Cost of one in-cache addition of the fused kernel's disc sums, in dense multiply-adds.
FUSED_ELEMENTWISE_COST = 6.0
#: Fixed cost of one fused kernel launch (argument marshalling, numba dispatch, thread team), ~100 us.
FUSED_LAUNCH_COST = 20 * OP_OVERHEAD
#: Paths of an SRE convolution besides ``'dense'``.
RING_PATHS = ("ring", "depthwise", "fused")


def modelled_costs(in_channels: int, out_channels: int, groups: int, plan: RingPlan, stride: Sequence[int],
                   training: bool, positions: int, input_positions: int, device_type: str = "cpu",
                   transposes: bool = False) -> dict[str, float]:
    """Modelled cost of every path, in dense-convolution multiply-adds (fitted on 2 AVX-512 cores, float32).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        groups: channel groups.
        plan: the ring plan (kernel size, discs, rings).
        stride: per spatial dim; the boxes are built over every input row, so stride makes rings dearer.
        training: include backward (the ring path recomputes its responses; depthwise needs no recompute).
        positions: output positions ``N * prod(out)``.
        input_positions: padded input positions ``N * prod(padded)``.
        device_type: ``'cpu'`` or ``'cuda'``.
        transposes: the input is not channels-last, so the ring paths convert it (and their output) once.

    Returns:
        ``{'dense': ..., 'ring': ..., 'depthwise': ...}``, and ``'fused'`` on CPU where the compiled kernels
        are available (:func:`sreconv.nn.disc_kernel.compiled_kernels`).
    """
    elem = ELEMENTWISE_COST_CUDA if device_type == "cuda" else ELEMENTWISE_COST_CPU
    per_group = in_channels // groups
    support = math.prod(plan.kernel_size)
    rings = len(plan.difference)
    convert = elem * 4.0 * (in_channels * input_positions + out_channels * positions) if transposes else 0.0
    # dense: one convolution (three with backward)
    dense = float(support * per_group * out_channels * positions) * (3.0 if training else 1.0) + OP_OVERHEAD
    # ring: padded copy, box chain over every input row, disc terms, response writes, 1x1 mixing
    row_factor = math.prod(stride[:-1]) if len(stride) > 1 else 1
    passes = plan.num_terms + 2 * (plan.num_boxes - 1) * row_factor + 4
    sums = elem * in_channels * passes * positions
    mixing = plan.num_segments * per_group * out_channels * MIXING_COST * positions
    # depthwise: 1x1 mixing into R * C_out channels over the input, depthwise masks, ~2 passes over the rings
    dw_mixing = rings * per_group * out_channels * MIXING_COST * input_positions
    dw_conv = rings * out_channels * support * DEPTHWISE_COST * positions
    dw_memory = elem * 2.0 * rings * out_channels * positions
    if training:
        # ring: recompute + adjoint of the sums, three mixings; depthwise: no recompute, three mixings
        ring = 3.5 * sums + 3.0 * mixing + 2.0 * convert + OP_OVERHEAD * 3.5 * (passes + 4)
        depthwise = 3.0 * dw_mixing + 2.0 * (dw_conv + dw_memory + convert) + OP_OVERHEAD * 2.0 * (rings + 6)
    else:
        ring = sums + mixing + convert + OP_OVERHEAD * (passes + 4)
        depthwise = dw_mixing + dw_conv + dw_memory + convert + OP_OVERHEAD * (rings + 3)
    costs = {"dense": dense, "ring": float(ring), "depthwise": float(depthwise)}
    if device_type == "cpu" and disc_kernel.compiled_kernels():
        # NCHW in and out (no conversions); backward: the sums of the output gradient, two mixings' worth
        fused_sums = FUSED_ELEMENTWISE_COST * in_channels * passes * positions
        fused_mixing = FUSED_MIXING_COST * plan.num_segments * per_group * out_channels * positions
        fused = 2.0 * fused_sums + 3.0 * fused_mixing if training else fused_sums + fused_mixing
        costs["fused"] = float(fused) + FUSED_LAUNCH_COST * (2.0 if training else 1.0)
    return costs


def model_choice(costs: dict[str, float]) -> str:
    """The cost model's path: the cheapest, but another than ``'dense'`` only by a margin (:data:`AUTO_MARGIN`)."""
    best = min(costs, key=costs.__getitem__)
    return best if best == "dense" or costs[best] < AUTO_MARGIN * costs["dense"] else "dense"
