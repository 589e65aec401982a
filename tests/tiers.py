"""The two test tiers: ``pytest -m "not slow"`` (the fast tier) and the full suite (README.md has their times).

``slow`` marks the end-to-end runs, the oracle and zoo tests and whole-model checks beyond one representative.
"""

from collections.abc import Iterable

import pytest

slow = pytest.mark.slow


def representatives(values: Iterable, fast: Iterable) -> list:
    """``values`` for ``parametrize`` with every value not in ``fast`` marked slow.

    The fast tier keeps a representative case; the full suite runs them all.
    """
    keep = set(fast)
    return [value if value in keep else pytest.param(value, marks=slow) for value in values]
