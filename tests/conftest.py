"""Shared fixtures: a fixed seed for every test, device/dtype parameters in the style of kornia's tests, and one
share of the cores per pytest-xdist worker.

``device`` runs a test on the CPU and, when a CUDA device is present, again on it (marked ``gpu``);
``dtype`` runs it in float32 and float64. Tests marked ``gpu`` are skipped where there is no CUDA device.
"""

import os

import pytest
import torch

_CUDA = torch.cuda.is_available()

# Under pytest-xdist every worker would start one intra-op thread per core: 2 workers x 2 threads on 2 cores made
# single tests 10-40x slower at random (OpenMP threads spinning against each other) and the fast tier vary 45-97 s.
# Each worker gets its share of the cores; subprocesses it starts inherit the share.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _SHARE = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ.setdefault("OMP_NUM_THREADS", _SHARE)
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request) -> torch.device:
    """``torch.device('cpu')``, and ``'cuda'`` (marked ``gpu``, skipped without a CUDA device)."""
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request) -> torch.dtype:
    """float32 and float64."""
    return request.param


def pytest_collection_modifyitems(config, items):
    if _CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
