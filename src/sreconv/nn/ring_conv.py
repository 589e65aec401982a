"""Ring engine: an SRE convolution computed as ring responses followed by a 1x1 channel mixing.

A radially symmetric kernel takes one value per ring, so ``conv(x, sum_r w[o, c, r] * basis[r])`` equals
``sum_{c, r} w[o, c, r] * (x_c * basis[r])``: first every input channel is summed over every ring (the
"ring responses", the same fixed masks for all channels), then a 1x1 convolution mixes ``C_in * R``
responses into ``C_out`` outputs. Per output pixel this costs about ``C_in * (ring sums) + C_in * R * C_out``
operations instead of ``prod(k) * C_in * C_out``.

Ring sums are cheap because a radial cell set, cut along the last spatial axis, is always a symmetric
interval ``{c - hi .. c - lo} U {c + lo .. c + hi}``: the difference of two centred "boxes" of half-widths
``hi`` and ``lo - 1``. All boxes of one input are built with two additions each (``box_a = box_{a-1} +
x[+a] + x[-a]``), and every ring is then a short signed sum of shifted boxes -- strided views and in-place
additions, no im2col, no ``k x k`` kernel.

The basis needs only to be radial: cells are grouped by their basis column (hard rings give the rings
themselves, gaussian rings give the distance shells), the responses are computed per group, and the ring
weights are folded into per-group weights ``w @ B`` where ``B[:, g]`` is group ``g``'s basis column.

Backward is a custom autograd Function that saves only the (padded) input and the weights and recomputes
the responses, so training keeps as much memory as a dense convolution, not ``G`` times the input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

IMPLS = ("auto", "dense", "ring")

# (lead offsets, box half-width, sign): one shifted box inside a group's response.
_Term = tuple[tuple[int, ...], int, int]


@dataclass(frozen=True)
class RingPlan:
    """How to compute the group responses of a radial basis with boxes along the last axis.

    Attributes:
        kernel_size: ``(k_1, ..., k_n)``.
        representatives: one flat kernel-cell index per group; ``basis.flatten(1)[:, representatives]`` is the
            ``(R, G)`` matrix ``B`` mapping ring weights to group weights.
        terms: per group, the signed boxes ``(lead offsets, half-width, sign)`` whose sum is the group sum.
        num_boxes: ``A``, one more than the largest half-width used.
    """

    kernel_size: tuple[int, ...]
    representatives: tuple[int, ...]
    terms: tuple[tuple[_Term, ...], ...]
    num_boxes: int

    @property
    def num_groups(self) -> int:
        return len(self.representatives)

    @property
    def num_terms(self) -> int:
        return sum(len(t) for t in self.terms)


def build_ring_plan(basis: torch.Tensor) -> RingPlan | None:
    """Groups the kernel cells of ``basis`` and decomposes each group into boxes.

    Args:
        basis: ``(R, *kernel_size)``, any radial basis (hard rings, gaussian rings, official masks).

    Returns:
        The plan, or ``None`` when some group is not a union of symmetric intervals along the last axis (a
        non-radial basis), in which case only the dense path applies.
    """
    values = basis.detach().to("cpu", torch.float64).numpy()
    size = tuple(values.shape[1:])
    if not size:
        return None
    flat = values.reshape(values.shape[0], -1)
    centre = size[-1] // 2
    groups = {}
    for cell in range(flat.shape[1]):
        column = flat[:, cell]
        if not np.any(column):
            continue
        groups.setdefault(column.tobytes(), []).append(cell)
    representatives, all_terms, widest = [], [], 0
    for cells in groups.values():
        rows = {}
        for cell in cells:
            index = np.unravel_index(cell, size)
            rows.setdefault(tuple(int(i) for i in index[:-1]), set()).add(int(index[-1]) - centre)
        terms = []
        for lead in sorted(rows):
            offsets = rows[lead]
            half = sorted({abs(t) for t in offsets})
            lo, hi = half[0], half[-1]
            symmetric = {s * t for t in range(lo, hi + 1) for s in (1, -1)}
            if offsets != symmetric:
                return None
            terms.append((lead, hi, 1))
            if lo > 0:
                terms.append((lead, lo - 1, -1))
            widest = max(widest, hi)
        representatives.append(cells[0])
        all_terms.append(tuple(terms))
    if not representatives:
        return None
    return RingPlan(size, tuple(representatives), tuple(all_terms), widest + 1)


def output_size(spatial: Sequence[int], kernel_size: Sequence[int], stride: Sequence[int],
                dilation: Sequence[int]) -> tuple[int, ...]:
    """Output size of an unpadded convolution (the input is padded beforehand)."""
    return tuple((s - d * (k - 1) - 1) // st + 1 for s, k, st, d in zip(spatial, kernel_size, stride, dilation))


def _window(offset: int, dilation: int, stride: int, count: int) -> slice:
    start = offset * dilation
    return slice(start, start + stride * (count - 1) + 1, stride)


def _boxes(xp: torch.Tensor, plan: RingPlan, stride: Sequence[int], dilation: Sequence[int],
           out: Sequence[int]) -> torch.Tensor:
    """Centred boxes along the last axis at the strided output columns: ``(A, *xp.shape[:-1], out[-1])``."""
    centre = plan.kernel_size[-1] // 2
    d, s, count = dilation[-1], stride[-1], out[-1]
    boxes = xp.new_empty((plan.num_boxes,) + tuple(xp.shape[:-1]) + (count,))
    boxes[0].copy_(xp[..., _window(centre, d, s, count)])
    for a in range(1, plan.num_boxes):
        torch.add(boxes[a - 1], xp[..., _window(centre + a, d, s, count)], out=boxes[a])
        boxes[a].add_(xp[..., _window(centre - a, d, s, count)])
    return boxes


def ring_responses(xp: torch.Tensor, plan: RingPlan, stride: Sequence[int], dilation: Sequence[int],
                   groups: int = 1) -> torch.Tensor:
    """Group sums of every input channel at every output position.

    Args:
        xp: padded input ``(N, C, *spatial)``.
        plan: from :func:`build_ring_plan`.
        stride, dilation: per spatial dim.
        groups: channel groups of the convolution; only changes the layout of the result.

    Returns:
        ``(N, groups, G, C / groups, *out)``, the layout the mixing matmul reads without a copy.
    """
    n_batch, channels = xp.shape[:2]
    out = output_size(xp.shape[2:], plan.kernel_size, stride, dilation)
    xg = xp.reshape((n_batch, groups, channels // groups) + tuple(xp.shape[2:]))
    boxes = _boxes(xg, plan, stride, dilation, out)
    resp = xp.new_empty((n_batch, groups, plan.num_groups, channels // groups) + out)
    lead_dims = len(out) - 1
    for g, terms in enumerate(plan.terms):
        target = resp[:, :, g]
        for i, (lead, a, sign) in enumerate(terms):
            index = (slice(None),) * 3 + tuple(
                _window(lead[j], dilation[j], stride[j], out[j]) for j in range(lead_dims))
            source = boxes[a][index]
            if i == 0:
                target.copy_(source) if sign > 0 else torch.neg(source, out=target)
            elif sign > 0:
                target.add_(source)
            else:
                target.sub_(source)
    return resp


def ring_responses_adjoint(grad: torch.Tensor, plan: RingPlan, stride: Sequence[int], dilation: Sequence[int],
                           padded_spatial: Sequence[int]) -> torch.Tensor:
    """Adjoint of :func:`ring_responses`: gradient ``(N, C, *padded_spatial)`` from ``(N, groups, G, C/g, *out)``."""
    n_batch, groups, _, per_group = grad.shape[:4]
    out = tuple(grad.shape[4:])
    lead_dims = len(out) - 1
    grad_boxes = grad.new_zeros((plan.num_boxes, n_batch, groups, per_group) + tuple(padded_spatial[:-1])
                                + (out[-1],))
    for g, terms in enumerate(plan.terms):
        source = grad[:, :, g]
        for lead, a, sign in terms:
            index = (slice(None),) * 3 + tuple(
                _window(lead[j], dilation[j], stride[j], out[j]) for j in range(lead_dims))
            grad_boxes[a][index].add_(source, alpha=sign)
    grad_x = grad.new_zeros((n_batch, groups, per_group) + tuple(padded_spatial))
    centre = plan.kernel_size[-1] // 2
    d, s, count = dilation[-1], stride[-1], out[-1]
    # box_a contains box_{a-1}: walking down from the widest box accumulates each box's total gradient.
    running = grad_boxes[plan.num_boxes - 1]
    for a in range(plan.num_boxes - 1, 0, -1):
        grad_x[..., _window(centre + a, d, s, count)].add_(running)
        grad_x[..., _window(centre - a, d, s, count)].add_(running)
        running = grad_boxes[a - 1].add_(running)
    grad_x[..., _window(centre, d, s, count)].add_(running)
    return grad_x.reshape((n_batch, groups * per_group) + tuple(padded_spatial))


def _mixing_weight(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """``(C_out, C_in/g, G)`` -> ``(groups, C_out/g, G * C_in/g)`` matching the responses' layout."""
    c_out, per_group, n_groups = weight.shape
    w = weight.reshape(groups, c_out // groups, per_group, n_groups).transpose(2, 3)
    return w.reshape(groups, c_out // groups, n_groups * per_group)


class _Responses(torch.autograd.Function):
    """:func:`ring_responses` as a linear autograd op whose backward is its adjoint (any order of grads)."""

    @staticmethod
    def forward(ctx, xp, plan, stride, dilation, groups):
        ctx.plan, ctx.stride, ctx.dilation, ctx.spatial = plan, stride, dilation, tuple(xp.shape[2:])
        return ring_responses(xp, plan, stride, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        return _ResponsesAdjoint.apply(grad, ctx.plan, ctx.stride, ctx.dilation, ctx.spatial), None, None, None, None


class _ResponsesAdjoint(torch.autograd.Function):
    """:func:`ring_responses_adjoint` as an autograd op; its backward is the forward ring sums again."""

    @staticmethod
    def forward(ctx, grad, plan, stride, dilation, spatial):
        ctx.plan, ctx.stride, ctx.dilation, ctx.groups = plan, stride, dilation, grad.shape[1]
        return ring_responses_adjoint(grad, plan, stride, dilation, spatial)

    @staticmethod
    def backward(ctx, grad_x):
        resp = _Responses.apply(grad_x, ctx.plan, ctx.stride, ctx.dilation, ctx.groups)
        return resp, None, None, None, None


class _RingConvFunction(torch.autograd.Function):
    """Ring responses + mixing with a recomputing backward (saves only the padded input and the weights)."""

    @staticmethod
    def forward(ctx, xp, group_weight, bias, plan, stride, dilation, groups):
        out = _chunked_forward(xp, group_weight, bias, plan, stride, dilation, groups)
        ctx.save_for_backward(xp, group_weight)
        ctx.plan, ctx.stride, ctx.dilation, ctx.groups = plan, stride, dilation, groups
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, grad_out):
        xp, group_weight = ctx.saved_tensors
        plan, stride, dilation, groups = ctx.plan, ctx.stride, ctx.dilation, ctx.groups
        n_batch, c_out = grad_out.shape[:2]
        out = tuple(grad_out.shape[2:])
        g_out = grad_out.reshape(n_batch, groups, c_out // groups, -1)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[2] and ctx.has_bias:
            grad_b = grad_out.sum(dim=[0] + list(range(2, grad_out.dim())))
        if ctx.needs_input_grad[1]:
            # Recomputed rather than saved: the responses are G times the input's size.
            resp = _Responses.apply(xp, plan, stride, dilation, groups)
            resp = resp.reshape(n_batch, groups, -1, math.prod(out))
            # N batched (C_out/g, P) @ (P, G*C_in/g) products, summed: no copy of the G-times-larger responses.
            w_mix = torch.matmul(g_out, resp.transpose(-1, -2)).sum(0)
            per_group, n_groups = group_weight.shape[1], group_weight.shape[2]
            grad_w = (w_mix.reshape(groups, c_out // groups, n_groups, per_group).transpose(2, 3)
                      .reshape(group_weight.shape))
        if ctx.needs_input_grad[0]:
            w_mix = _mixing_weight(group_weight, groups)
            grad_resp = torch.matmul(w_mix.transpose(1, 2), g_out)
            per_group = xp.shape[1] // groups
            grad_resp = grad_resp.reshape((n_batch, groups, plan.num_groups, per_group) + out)
            grad_x = _ResponsesAdjoint.apply(grad_resp, plan, stride, dilation, tuple(xp.shape[2:]))
        return grad_x, grad_w, grad_b, None, None, None, None


#: Bytes of boxes + responses processed at once: bounds the peak memory. Not smaller: every chunk costs
#: ~2*A + terms small parallel ops, and on a shared CPU each op waits for all OpenMP threads.
CHUNK_BYTES = 32 * 2**20


def _batch_chunk(xp: torch.Tensor, plan: RingPlan, out: Sequence[int]) -> int:
    """Samples per chunk so that one chunk's boxes and responses take about :data:`CHUNK_BYTES`."""
    channels = xp.shape[1]
    box_elems = plan.num_boxes * math.prod(xp.shape[2:-1]) * out[-1]
    per_sample = channels * (box_elems + plan.num_groups * math.prod(out)) * xp.element_size()
    return max(1, CHUNK_BYTES // max(per_sample, 1))


def _chunked_forward(xp, group_weight, bias, plan, stride, dilation, groups):
    n_batch = xp.shape[0]
    out_size = output_size(xp.shape[2:], plan.kernel_size, stride, dilation)
    chunk = _batch_chunk(xp, plan, out_size)
    if chunk >= n_batch:
        return _mix(ring_responses(xp, plan, stride, dilation, groups), group_weight, bias, groups)
    out = xp.new_empty((n_batch, group_weight.shape[0]) + out_size)
    for start in range(0, n_batch, chunk):
        resp = ring_responses(xp[start:start + chunk], plan, stride, dilation, groups)
        out[start:start + chunk] = _mix(resp, group_weight, bias, groups)
    return out


def _mix(resp: torch.Tensor, group_weight: torch.Tensor, bias: torch.Tensor | None, groups: int) -> torch.Tensor:
    n_batch = resp.shape[0]
    out = tuple(resp.shape[4:])
    flat = resp.reshape(n_batch, groups, -1, math.prod(out))
    y = torch.matmul(_mixing_weight(group_weight, groups), flat)
    y = y.reshape((n_batch, group_weight.shape[0]) + out)
    if bias is not None:
        y = y + bias.reshape((1, -1) + (1,) * len(out))
    return y


def group_weights(weight: torch.Tensor, basis: torch.Tensor, plan: RingPlan) -> torch.Tensor:
    """Ring weights ``(C_out, C_in/g, R)`` -> per-group weights ``(C_out, C_in/g, G)`` (``w @ B``).

    For hard rings ``B`` is the identity up to the order of the groups, so this only reorders.
    """
    index = torch.tensor(plan.representatives, device=basis.device)
    b = basis.reshape(basis.shape[0], -1).index_select(1, index).to(weight.dtype)
    return torch.matmul(weight, b)


def ring_conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    basis: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Sequence[int] = 1,
    padding: Sequence[int] = 0,
    dilation: Sequence[int] = 1,
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
        stride, dilation: int or per-dim tuple.
        padding: int, per-dim tuple, or the ``F.pad`` list (last dim first, two values per dim).
        groups: channel groups.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
        plan: a cached :func:`build_ring_plan` of ``basis`` (built here when ``None``).

    Returns:
        ``(N, C_out, *spatial_out)``.

    Example:
        >>> from sreconv.nn import hard_ring_basis, sre_conv
        >>> x, w, basis = torch.randn(2, 3, 12, 12), torch.randn(4, 3, 3), hard_ring_basis(5)
        >>> bool(torch.allclose(ring_conv(x, w, basis, padding=2), sre_conv(x, w, basis, padding=2), atol=1e-5))
        True
    """
    n = basis.dim() - 1
    stride = (stride,) * n if isinstance(stride, int) else tuple(stride)
    dilation = (dilation,) * n if isinstance(dilation, int) else tuple(dilation)
    if isinstance(padding, int):
        padding = (padding,) * n
    pads = tuple(padding)
    if len(pads) == n:
        pads = tuple(v for p in reversed(pads) for v in (p, p))
    if plan is None:
        plan = build_ring_plan(basis)
        if plan is None:
            raise ValueError("ring_conv needs a radial basis (each ring symmetric along the last axis)")
    if any(pads):
        mode = "constant" if padding_mode == "zeros" else padding_mode
        input = F.pad(input, pads, mode=mode)
    gw = group_weights(weight, basis, plan)
    return _RingConvFunction.apply(input, gw, bias, plan, stride, dilation, groups)


# ---------------------------------------------------------------------------------------------- auto rule
#: Cost of one elementwise pass over an element, in dense-conv multiply-adds (CPU, float32). A dense
#: convolution runs near the FMA peak (~125 G MAC/s on 2 cores), an in-cache elementwise add at ~14 G
#: elements/s; measured ratios (k=3..13, C=16..128) are reproduced with twice that, the rest being the
#: writes of the responses and the less regular memory access.
ELEMENTWISE_COST_CPU = 16.0
#: Same on CUDA, where dense convolutions use tensor cores and elementwise passes are relatively dearer.
ELEMENTWISE_COST_CUDA = 40.0
#: Relative efficiency of the mixing matmul versus a dense convolution.
MIXING_COST = 1.3
#: Fixed cost of one op (dispatch + waking the thread pool), in dense multiply-adds (~8 us).
OP_OVERHEAD = 1.0e6
#: ``auto`` takes the ring path only when its modelled cost is below this fraction of the dense one, so that
#: model error (or a busy machine, which penalises many small ops more than one big convolution) does not
#: make it lose to dense.
AUTO_MARGIN = 0.75


def modelled_costs(in_channels: int, out_channels: int, groups: int, plan: RingPlan, support: int,
                   stride: Sequence[int], training: bool, device_type: str = "cpu",
                   positions: int | None = None) -> tuple[float, float]:
    """Modelled cost of the dense and ring paths, in dense-convolution multiply-adds.

    Args:
        in_channels, out_channels, groups: channel counts of the convolution.
        plan: the ring plan.
        support: number of cells of the dense kernel (``prod(kernel_size)``).
        stride: per spatial dim; the boxes are built for every input row, so stride makes rings dearer.
        training: include backward (ring backward recomputes the responses and runs their adjoint).
        device_type: ``'cpu'`` or ``'cuda'``.
        positions: output positions ``N * prod(out)``; adds the per-op overhead (``None``: per position only).

    Returns:
        ``(dense, ring)``, per output position when ``positions`` is None, else in total.
    """
    elem = ELEMENTWISE_COST_CUDA if device_type == "cuda" else ELEMENTWISE_COST_CPU
    per_group = in_channels // groups
    dense = support * per_group * out_channels
    # boxes: 2 passes per half-width over every input row (over-counted by the row stride).
    row_factor = math.prod(stride[:-1]) if len(stride) > 1 else 1
    passes = plan.num_terms + 2 * (plan.num_boxes - 1) * row_factor + plan.num_groups
    ring_sums = in_channels * passes
    mixing = plan.num_groups * per_group * out_channels * MIXING_COST
    ring = elem * ring_sums + mixing
    if training:
        # dense: ~2 more convolutions; ring: recompute + adjoint (~3 elementwise passes) + 2 matmuls.
        dense *= 3.0
        ring = elem * ring_sums * 3.5 + 3.0 * mixing
    if positions is None:
        return float(dense), float(ring)
    ops = (passes + 2) * (3.5 if training else 1.0)
    return float(dense * positions), float(ring * positions + OP_OVERHEAD * ops)


def prefer_ring(dense: float, ring: float) -> bool:
    """The ``auto`` decision from :func:`modelled_costs`."""
    return ring < AUTO_MARGIN * dense
