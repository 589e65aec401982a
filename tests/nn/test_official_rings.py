"""Our hard rings against the official package's ``weight_index_mat`` masks.

``tests/oracle/official_ring_masks.pt`` holds 727 masks recorded from the official package (SRE-Conv 1.0.2)
for 1D/2D/3D kernels, many ring counts, circular and non-circular. Every one that our layers can build must
match bit for bit, so official checkpoints load with identical outputs.
"""

import re

import pytest
import torch

from sreconv.nn import hard_ring_basis, num_distinct_radii
from tests.oracle import recorded_ring_masks

KEY = re.compile(r"(?P<ndim>\d)d_k(?P<size>[\dx]+)_R(?P<rings>\d+)_(?P<mode>circ|nocirc)")


def _comparable():
    cases = []
    for key, mask in recorded_ring_masks().items():
        m = KEY.fullmatch(key)
        ndim, rings, circular = int(m["ndim"]), int(m["rings"]), m["mode"] == "circ"
        sizes = tuple(int(v) for v in m["size"].split("x"))
        size = sizes * ndim if len(sizes) == 1 else sizes
        if any(k % 2 == 0 for k in size) or size[0] != max(size):
            continue  # even kernels are rejected; anisotropic ones use the largest size, not the first
        if rings > num_distinct_radii(size, circular):
            continue  # more rings than radii: rejected with a clear error
        cases.append((key, size, rings, circular, mask))
    return cases


CASES = _comparable()


def test_enough_cases_are_compared():
    assert len(CASES) > 300
    assert {c[0].split("_")[0] for c in CASES} == {"1d", "2d", "3d"}
    assert any(not c[3] for c in CASES) and any(c[1] == (7, 3, 3) for c in CASES)


@pytest.mark.parametrize("key,size,rings,circular,mask", CASES, ids=[c[0] for c in CASES])
def test_matches_official_masks(key, size, rings, circular, mask):
    ours = hard_ring_basis(size, num_rings=rings, force_circular=circular)
    assert torch.equal(ours.reshape(rings, -1).to(torch.uint8), mask.to(torch.uint8)), key
