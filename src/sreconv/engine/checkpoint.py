"""Everything that touches a run folder's files: checkpoints (find, load, save, version), atomic writes, RNG
state, and the lock that makes one process the only writer of a folder.

A training checkpoint is a dict ``{"version", "model", "optimizer", "scheduler", "scaler", "epoch",
"best_val", "best_epoch", "history", "rng", "config"}`` where ``epoch`` is the number of *completed* epochs.
Files are written to a temporary name in the same folder, flushed to disk, then renamed over the target, so a
process killed at any moment leaves either the previous file or the new one, never a truncated file; a
failed write (disk full, permission denied, read-only folder) raises an ``OSError`` whose one-line message
names the file and says that the previous version is kept. New files get the usual ``0o666 & ~umask`` mode.
Checkpoints are read with the safe loader of :mod:`sreconv.serialization` (tensors and plain data only).
"""

from __future__ import annotations

import errno
import json
import os
import random
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

import numpy as np
import torch

from sreconv.serialization import load

#: Written into every training checkpoint; :func:`load_training_checkpoint` refuses newer versions.
CHECKPOINT_VERSION = 2

#: Checkpoints of a run folder by kind, relative to the folder.
CHECKPOINT_FILES = {
    "best": os.path.join("checkpoints", "best.pt"),
    "last": os.path.join("checkpoints", "last.pt"),
    "model": "model.pt",
}

#: The weights ``results.json`` was computed with come first: best.pt exists only with ``--save-best``, and
#: then it is the evaluated one; model.pt holds the evaluated weights too.
EVALUATED_FIRST = ("best", "last", "model")

_FAULTS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the folder is on a read-only file system",
}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fault(err: BaseException, path: str) -> OSError:
    """A one-line ``OSError`` for a failed write of ``path`` (keeping ``errno``)."""
    code = getattr(err, "errno", None)
    if code is None and ("unexpected pos" in str(err) or "file write failed" in str(err)):
        code = errno.ENOSPC  # torch.save reports a full disk as "[enforce fail ...] unexpected pos"
    reason = _FAULTS.get(code or -1, " ".join(str(err).split()) or type(err).__name__)
    kept = " (the previous version is kept)" if os.path.exists(path) else ""
    fault = OSError(f"could not write {path}: {reason}{kept}")
    fault.errno = code or errno.EIO
    return fault


def _atomic_write(path: str, mode: str, write: Callable[[IO[Any]], None]) -> None:
    """Calls ``write(file)`` on a temporary file in ``path``'s folder, syncs it, then renames it over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; give the mode open() would
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        if isinstance(err.__context__, KeyboardInterrupt):
            # Ctrl-C inside torch.save's write callback surfaces as a RuntimeError ("unexpected pos"), which
            # would otherwise read as a full disk: it stays an interrupt.
            raise err.__context__ from None
        raise _fault(err, path) from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)`` via a temporary file + ``os.replace`` (atomic on POSIX and Windows)."""
    _atomic_write(path, "wb", lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str) -> None:
    """Writes a text file atomically (temporary file + rename)."""
    _atomic_write(path, "w", lambda f: f.write(text))


def append_line(path: str, record: dict[str, Any]) -> None:
    """Appends one JSON line to ``path`` (logs), with the same fault messages as the atomic writes."""
    try:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as err:
        raise _fault(err, path) from err


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
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, torch.nn.Module) else model


def load_checkpoint(path: str, map_location: Any = "cpu", trusted: bool = False) -> Any:
    """Loads a checkpoint safely (tensors and plain containers only; see :func:`sreconv.serialization.load`)."""
    return load(path, map_location=map_location, trusted=trusted)


_TRAINING_KEYS = ("model", "optimizer", "scheduler", "epoch", "rng", "config")


def load_training_checkpoint(path: str) -> dict[str, Any]:
    """A ``checkpoints/last.pt`` written by :func:`sreconv.engine.train.fit`, checked for the keys resume needs."""
    ckpt = load_checkpoint(path)
    missing = [k for k in _TRAINING_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ValueError(f"{path} is not a sreconv training checkpoint (missing {', '.join(missing)})")
    version = ckpt.get("version", 1)
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise ValueError(f"{path} was written by a newer sreconv (checkpoint version {version!r}; this one reads "
                         f"up to {CHECKPOINT_VERSION})")
    return ckpt


def find_checkpoint(run_dir: str, kinds: Sequence[str] = EVALUATED_FIRST) -> str:
    """The first checkpoint of ``kinds`` (``'best'``, ``'last'``, ``'model'``) that exists in a run folder.

    Raises:
        FileNotFoundError: the folder does not exist or holds none of them.
    """
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run folder {run_dir} not found")
    for kind in kinds:
        path = os.path.join(run_dir, CHECKPOINT_FILES[kind])
        if os.path.isfile(path):
            return path
    names = ", ".join(CHECKPOINT_FILES[k] for k in kinds)
    raise FileNotFoundError(f"no checkpoint in {run_dir} (looked for {names})")


class RunLock:
    """An advisory lock that makes one process the only writer of an output folder.

    ``fcntl.flock`` on ``<folder>/.lock``, held from :meth:`acquire` to :meth:`release` (or the end of the
    process: the kernel drops the lock of a killed process, so a stale lock file never blocks a resume). The
    file records the holder (pid, host, start time) for the message a second process gets. A folder that holds
    nothing but the lock at :meth:`release` (a run refused after the lock, e.g. for a corrupted data file) is
    left as it was found: the lock file goes, and so do the folder and its parents if :meth:`acquire` created them.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> first = RunLock(folder).acquire()
        >>> try:
        ...     RunLock(folder).acquire()
        ... except BlockingIOError as err:
        ...     print("in use by another sreconv process" in str(err))
        True
        >>> first.release()
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, ".lock")
        self._file: IO[str] | None = None
        self._created: list[str] = []

    def acquire(self) -> RunLock:
        import fcntl

        created = []
        parent = os.path.abspath(self.folder)
        while not os.path.exists(parent):
            created.append(parent)
            parent = os.path.dirname(parent)
        try:
            os.makedirs(self.folder, exist_ok=True)
            handle = open(self.path, "a+")
        except OSError as err:
            raise _fault(err, self.path) from err
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise BlockingIOError(f"output folder {self.folder} is in use by another sreconv process ({holder}); "
                                  "wait for it to finish or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        self._file = handle
        self._created = created
        return self

    def release(self) -> None:
        if self._file is None:
            return
        try:
            only_the_lock = os.listdir(self.folder) == [".lock"]
        except OSError:  # the folder was removed under us
            only_the_lock = False
        if only_the_lock:
            # Unlinked while still held, so no other process can take the lock of a folder about to vanish.
            os.unlink(self.path)
            for folder in self._created:  # deepest first
                try:
                    os.rmdir(folder)
                except OSError:  # another process wrote there meanwhile: keep it
                    break
        self._file.close()  # closing drops the flock
        self._file = None
        self._created = []

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
