"""torch.distributed helpers: set-up from torchrun's environment, rank queries and collectives.

``torchrun --nproc_per_node=N -m sreconv train ...`` (or a multi-node rendezvous) sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT``; :func:`init_from_env` then starts the
process group with NCCL on GPUs and Gloo on CPU. Every helper is a no-op (or the identity) when no process
group is running, so single-process code paths call them unconditionally.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (and when not distributed): the only rank that writes files and prints."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init_from_env(device: str | None = None) -> torch.device:
    """Starts the process group if launched by torchrun with ``WORLD_SIZE > 1`` and picks the device.

    Args:
        device: ``"cpu"``, ``"cuda"`` or None (CUDA if available). Under torchrun each rank takes
            ``cuda:LOCAL_RANK``.

    Returns:
        The device this rank trains on.
    """
    want_cuda = torch.cuda.is_available() if device in (None, "auto") else str(device).startswith("cuda")
    if want_cuda and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but no CUDA device is available")
    if launched_by_torchrun() and not is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if want_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    if want_cuda:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) if is_initialized() else 0)
    return torch.device("cpu")


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` (``[obj]`` when not distributed)."""
    if not is_initialized():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over ranks (returns a new tensor; float64 on CPU for Gloo/NCCL compatibility)."""
    if not is_initialized():
        return values.clone()
    backend = dist.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    out = values.detach().to(device=device, dtype=torch.float64).clone()
    dist.all_reduce(out)
    return out.cpu()


def cleanup() -> None:
    if is_initialized():
        dist.destroy_process_group()
