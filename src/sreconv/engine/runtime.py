"""Where and how a run computes: device choice, mixed precision, determinism and seeding."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from ..nn import tuning
from . import distributed as dist_utils
from .config import TrainConfig

_AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def check_amp(amp: str, device: torch.device) -> None:
    """fp16 autocast needs CUDA; bf16 runs on CUDA and on the CPU."""
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"--amp fp16 needs a CUDA device (training would run on {device}); use --amp bf16 on the "
                         "CPU or leave --amp out")


def autocast(device: torch.device, amp: str | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``amp`` in ``{'fp16', 'bf16'}`` on ``device``; a no-op for ``None``/``'none'``."""
    if amp in (None, "none"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_AMP_DTYPES[amp])


def seed_everything(seed: int) -> None:
    """Seeds Python's, NumPy's and torch's generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup_runtime(config: TrainConfig) -> torch.device:
    """Process group (under torchrun), device, AMP check, determinism, cuDNN and allocator settings."""
    # A training run owns its process: keep freed tensor memory for reuse instead of faulting it in again every
    # step (benchmarks/RESULTS.md, "The quick start": ~1.4x per training step on 2 KVM cores).
    tuning.retain_freed_memory()
    if config.deterministic:
        # Must be set before the first cuBLAS call for deterministic GEMMs on CUDA.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    device = dist_utils.init_from_env(config.device)
    check_amp(config.amp, device)
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif config.cudnn:
        # The official --cudnn flag: let cuDNN pick the fastest kernels (non-deterministic).
        torch.backends.cudnn.benchmark = True
    return device
