"""Reading weight files safely: tensors and plain containers only, never code.

An unrestricted ``torch.load`` runs whatever a pickle asks for, so opening a downloaded ``.pt`` file can
run a stranger's code. Every file sreconv reads goes through :func:`load`, which uses torch's restricted
unpickler (``weights_only=True``): tensors, numbers, strings, lists, tuples, dicts, and -- for the NumPy RNG
state inside training checkpoints written by sreconv 0.1 -- NumPy arrays and dtypes. A file that needs
anything else (a pickled ``nn.Module``, a custom class) is refused with :class:`UnsafeCheckpointError`, which
names what the file wants to import; pass ``trusted=True`` (``--trust-checkpoint`` on the command line) only
for files you made yourself or otherwise trust.

This covers sreconv training checkpoints, bare ``state_dict`` files and the official ``SRE_Conv``
checkpoints (``{"state_dict": ..., "cur_ep": ...}``).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["UnsafeCheckpointError", "load", "model_state", "TRUST_FLAG"]

#: The command-line flag that opts into unrestricted unpickling (named in the refusal message).
TRUST_FLAG = "--trust-checkpoint"

# Prefixes that wrappers add to every key: DistributedDataParallel / DataParallel, and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class UnsafeCheckpointError(ValueError):
    """The file needs arbitrary code to load; it was not loaded."""


def _numpy_globals() -> list[Any]:
    """What pickled NumPy arrays and dtypes reference: constructors of data, not of behaviour."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    allowed: list[Any] = [_reconstruct, np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith("DType")]
    return allowed


def _unsafe_globals(path: str) -> list[str]:
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - only used to word the message
        return []


def load(path: str | os.PathLike[str], map_location: Any = "cpu", trusted: bool = False) -> Any:
    """Loads a ``torch.save`` file with the restricted unpickler (unless ``trusted``).

    Args:
        path: the file.
        map_location: as :func:`torch.load` (default: everything on the CPU).
        trusted: allow arbitrary pickles (runs code from the file). Only for files you trust.

    Returns:
        The loaded object.

    Raises:
        FileNotFoundError: no such file (or a folder).
        UnsafeCheckpointError: the file needs code to load and ``trusted`` is False.
        ValueError: the file is not a readable torch file.

    Example:
        >>> import tempfile
        >>> path = tempfile.mktemp(suffix=".pt")
        >>> torch.save({"weight": torch.ones(2)}, path)
        >>> load(path)["weight"].tolist()
        [1.0, 1.0]
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise FileNotFoundError(f"checkpoint {path} is a folder, not a file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location=map_location, weights_only=not trusted)
    except pickle.UnpicklingError as err:
        text = str(err)
        wanted = _unsafe_globals(path) or re.findall(r"GLOBAL ([\w.]+)", text)
        if not wanted and "Unsupported global" not in text:
            raise ValueError(f"checkpoint {path} is unreadable (not a torch file, or corrupt)") from None
        what = f" (it imports {', '.join(wanted[:3])}{', ...' if len(wanted) > 3 else ''})" if wanted else ""
        raise UnsafeCheckpointError(
            f"checkpoint {path} needs arbitrary code to load{what}, so it was not loaded; if you trust the file, "
            f"pass {TRUST_FLAG} (trusted=True)") from None
    except Exception as err:  # noqa: BLE001 - whatever the parser trips on, the file is not a usable checkpoint
        message = " ".join(str(err).split())[:300]
        raise ValueError(f"checkpoint {path} is unreadable ({type(err).__name__}: {message})") from err


def model_state(obj: Any) -> dict[str, torch.Tensor]:
    """The model ``state_dict`` inside a loaded file.

    Accepts a sreconv training checkpoint (``{"model": ...}``), an official ``SRE_Conv`` checkpoint
    (``{"state_dict": ...}``) or a bare state dict; strips the ``module.`` (DDP) and ``_orig_mod.``
    (``torch.compile``) prefixes.

    Raises:
        ValueError: ``obj`` holds no state dict of tensors.
    """
    state: Any = obj
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), Mapping):
                state = obj[key]
                break
    if not isinstance(state, Mapping) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        kind = type(obj).__name__
        raise ValueError(f"expected a state_dict of tensors (or a checkpoint holding one under 'model' or "
                         f"'state_dict'), got a {kind}" + (f" with keys {sorted(map(str, obj))[:6]}"
                                                           if isinstance(obj, Mapping) else ""))
    out = dict(state)
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in out):
            out = {k[len(prefix):]: v for k, v in out.items()}
    return out
