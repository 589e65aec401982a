"""The fast tier's covers keep the full product in the suite and the promised coverage in the fast tier; an
xdist worker runs on its share of the cores."""

import itertools
import os

import pytest
import torch

from tests.tiers import all_pairs, each_value


def _fast(cases):
    return [case.values for case in cases if not any(mark.name == "slow" for mark in case.marks)]


@pytest.mark.parametrize("axes", [([1, 2, 3, 4],) * 3, ([1, 2], "abc", "xyz", [0, 1, 2, 3]), ([1, 2, 3], "ab")])
def test_all_pairs_keeps_the_product_and_covers_every_pair(axes):
    cases = all_pairs(*axes)
    assert [case.values for case in cases] == list(itertools.product(*axes))
    fast = _fast(cases)
    for i, j in itertools.combinations(range(len(axes)), 2):
        assert {(case[i], case[j]) for case in fast} == set(itertools.product(axes[i], axes[j]))
    if len(axes) > 2:
        assert len(fast) < len(cases)


def test_each_value_covers_every_value_with_fewer_cases():
    axes = ([1, 2, 3, 7, 8, 14], "abcd")
    fast = _fast(each_value(*axes))
    assert len(fast) == 6
    for axis, values in enumerate(axes):
        assert {case[axis] for case in fast} == set(values)


def test_slow_values_stay_slow_and_the_cover_avoids_them():
    cases = all_pairs(["ring", pytest.param("depthwise", marks=pytest.mark.slow)], [1, 2], "ab")
    fast = _fast(cases)
    assert all(case[0] == "ring" for case in fast)
    assert {case[1:] for case in fast} == set(itertools.product([1, 2], "ab"))
    assert len(cases) == 8


def test_all_pairs_needs_two_axes():
    with pytest.raises(ValueError, match="at least 2 axes"):
        all_pairs([1, 2])


@pytest.mark.skipif("PYTEST_XDIST_WORKER_COUNT" not in os.environ, reason="runs under pytest-xdist")
def test_an_xdist_worker_uses_its_share_of_the_cores():
    assert torch.get_num_threads() == int(os.environ["OMP_NUM_THREADS"])
