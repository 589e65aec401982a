"""Access to the official ``SRE-Conv`` 1.0.2 package as a test oracle.

The official package must not be installed into site-packages (our package
provides its own ``SRE_Conv`` compatibility module). Install it on its own::

    pip install --no-deps --target /tmp/official_sre SRE-Conv==1.0.2

It needs ``scipy`` and ``torchvision``; ``torchio`` is optional (stubbed when
missing). Point ``SRECONV_OFFICIAL_PATH`` elsewhere to use another location.
Recorded masks in ``official_ring_masks.pt`` cover the ring rule when the
package is absent.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ORACLE_DIR = Path(__file__).resolve().parent
ORACLE_SCRIPT = ORACLE_DIR / "official_oracle.py"
RING_MASKS_PATH = ORACLE_DIR / "official_ring_masks.pt"
DEFAULT_OFFICIAL_PATH = "/tmp/official_sre"


def official_path():
    """Return the official install directory, or None when it is absent.

    Returns:
        The directory named by ``SRECONV_OFFICIAL_PATH`` (default
        ``/tmp/official_sre``) if it contains ``SRE_Conv/__init__.py``, else None.
    """
    path = Path(os.environ.get("SRECONV_OFFICIAL_PATH", DEFAULT_OFFICIAL_PATH))
    return str(path) if (path / "SRE_Conv" / "__init__.py").is_file() else None


def run_official(spec, timeout=600):
    """Run the official package on ``spec`` in a subprocess.

    Args:
        spec: A spec dict as described in ``official_oracle.py``. Tensors for
            ``input`` or ``state_dict`` may be given directly under those keys;
            they are saved to temporary files and passed by path.
        timeout: Seconds to wait for the subprocess.

    Returns:
        The result dict loaded from the subprocess output, or None when the
        official package is not installed.

    Raises:
        RuntimeError: If the subprocess fails.
    """
    official = official_path()
    if official is None:
        return None
    spec = dict(spec)
    with tempfile.TemporaryDirectory(prefix="sre_oracle_") as tmp:
        for key, path_key in (("input", "input_path"), ("state_dict", "state_dict_path")):
            if key in spec:
                path = os.path.join(tmp, f"{key}.pt")
                torch.save(spec.pop(key), path)
                spec[path_key] = path
        out_path = os.path.join(tmp, "out.pt")
        proc = subprocess.run(
            [sys.executable, str(ORACLE_SCRIPT), official, "-", out_path],
            input=json.dumps(spec),
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"official oracle failed:\n{proc.stderr[-4000:]}")
        return torch.load(out_path, map_location="cpu")


def recorded_ring_masks():
    """Return the recorded official ring masks.

    Returns:
        Dict mapping keys such as ``"2d_k9_R5_circ"`` or ``"3d_k3x7x7_R2_circ"``
        to uint8 tensors of shape ``(R, prod(kernel_size))``.
    """
    return torch.load(RING_MASKS_PATH, map_location="cpu")
