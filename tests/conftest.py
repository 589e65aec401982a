"""Shared fixtures: a fixed seed for every test, and device/dtype parameters in the style of kornia's tests.

``device`` runs a test on the CPU and, when a CUDA device is present, again on it (marked ``gpu``);
``dtype`` runs it in float32 and float64. Tests marked ``gpu`` are skipped where there is no CUDA device.
"""

import pytest
import torch

_CUDA = torch.cuda.is_available()


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
