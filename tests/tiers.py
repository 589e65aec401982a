"""The two test tiers: ``pytest -m "not slow"`` (the fast tier) and the full suite (README.md has their times).

``slow`` marks the end-to-end runs, the oracle and zoo tests and whole-model checks beyond one representative.
"""

import itertools
from collections.abc import Iterable, Sequence

import pytest

slow = pytest.mark.slow


def representatives(values: Iterable, fast: Iterable) -> list:
    """``values`` for ``parametrize`` with every value not in ``fast`` marked slow.

    The fast tier keeps a representative case; the full suite runs them all.
    """
    keep = set(fast)
    return [value if value in keep else pytest.param(value, marks=slow) for value in values]


def _unwrap(value) -> tuple:
    """(value, marks) of a plain value or a ``pytest.param`` of one value."""
    if isinstance(value, type(pytest.param(None))):
        (inner,) = value.values
        return inner, tuple(value.marks)
    return value, ()


def all_pairs(*axes: Sequence) -> list:
    """The product of ``axes`` for ``parametrize``, with the cases outside an all-pairs cover marked slow.

    The fast tier keeps a greedy all-pairs cover (every value of every axis meets every value of every other axis
    in at least one case: 16 of the 64 cases of three 4-value axes); the full suite runs the whole product. Values
    may be ``pytest.param`` with marks of their own, which the cases containing them keep; the cover is taken
    among the cases without a slow value.

    Example:
        >>> cases = all_pairs([1, 2, 3], "ab", "xy")
        >>> len(cases), sum(not case.marks for case in cases)
        (12, 6)
    """
    if len(axes) < 2:
        raise ValueError(f"all_pairs needs at least 2 axes, got {len(axes)}")
    return _covered_product(axes, strength=2)


def each_value(*axes: Sequence) -> list:
    """The product of ``axes`` for ``parametrize``; the fast tier keeps a few cases that hold every value once.

    For grids whose axes do not interact much (a layer over input sizes), where even all pairs cost too much.

    Example:
        >>> cases = each_value([1, 2, 3], "ab")
        >>> len(cases), sum(not case.marks for case in cases)
        (6, 3)
    """
    return _covered_product(axes, strength=1)


def _covered_product(axes: Sequence[Sequence], strength: int) -> list:
    unwrapped = [[_unwrap(value) for value in axis] for axis in axes]
    cases = list(itertools.product(*(range(len(axis)) for axis in axes)))

    def tuples(case: tuple) -> set:
        return {tuple((axis, case[axis]) for axis in chosen)
                for chosen in itertools.combinations(range(len(case)), strength)}

    def is_slow(case: tuple) -> bool:
        return any(mark.name == "slow" for axis, index in enumerate(case) for mark in unwrapped[axis][index][1])

    candidates = [case for case in cases if not is_slow(case)]
    uncovered = set().union(*(tuples(case) for case in candidates))
    cover = set()
    while uncovered:
        best = max(candidates, key=lambda case: len(tuples(case) & uncovered))
        cover.add(best)
        uncovered -= tuples(best)
    params = []
    for case in cases:
        values = [unwrapped[axis][index] for axis, index in enumerate(case)]
        marks = [mark for _, own in values for mark in own] + ([] if case in cover else [slow])
        params.append(pytest.param(*(value for value, _ in values), marks=marks))
    return params
