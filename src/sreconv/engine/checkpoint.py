"""Checkpoints: atomic writes, RNG state capture/restore, and loading for ``--resume``.

A training checkpoint is a dict ``{"model", "optimizer", "scheduler", "scaler", "epoch", "best", "rng",
"config", "version"}`` where ``epoch`` is the number of *completed* epochs. Files are written to a temporary
name in the same folder, flushed to disk, then renamed over the target, so a process killed at any moment
leaves either the previous checkpoint or the new one, never a truncated file.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Callable
from typing import IO, Any

import numpy as np
import torch

from sreconv.serialization import load

CHECKPOINT_VERSION = 1


def _atomic_write(path: str, mode: str, write: Callable[[IO], None], suffix: str = "") -> None:
    """Calls ``write(file)`` on a temporary file in ``path``'s folder, syncs it, then renames it over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)`` via a temporary file + ``os.replace`` (atomic on POSIX and Windows)."""
    _atomic_write(path, "wb", lambda f: torch.save(obj, f), suffix=".pt")


def atomic_write_text(text: str, path: str) -> None:
    """Writes a text file atomically (temporary file + rename)."""
    _atomic_write(path, "w", lambda f: f.write(text))


def rng_state() -> dict[str, Any]:
    """States of Python's, NumPy's, torch's CPU and (if present) every CUDA generator."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores what :func:`rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model


def load_checkpoint(path: str, map_location: Any = "cpu", trusted: bool = False) -> Any:
    """Loads a checkpoint safely (tensors and plain containers only; see :func:`sreconv.serialization.load`)."""
    return load(path, map_location=map_location, trusted=trusted)


def find_resume_checkpoint(out_dir: str) -> str | None:
    """``<out_dir>/checkpoints/last.pt`` if it exists, else None."""
    path = os.path.join(out_dir, "checkpoints", "last.pt")
    return path if os.path.isfile(path) else None
