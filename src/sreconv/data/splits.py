"""Seeded, stratified splits for datasets that ship without a validation (or test) split.

Model selection must happen on a validation split, never on the test split, so MNIST-5k, Fashion-MNIST and
image folders get a validation split carved out of their training data here. The split depends only on
the labels and the seed: building ``"train"`` and ``"val"`` separately with the same seed gives disjoint
index sets that together cover the pool.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratified_split(labels: Sequence[int], fractions: Sequence[float], seed: int = 0) -> list[np.ndarray]:
    """Splits indices ``0..N-1`` into parts with the given fractions, class by class.

    Within each class the indices are shuffled with ``numpy.random.default_rng(seed)`` and cut into parts
    of ``round(fraction * n_class)`` items (every part but the first); the first part takes the rest, so
    nothing is dropped and class proportions are kept in every part.

    Args:
        labels: ``(N,)`` integer class labels.
        fractions: one fraction per part, each in [0, 1], summing to 1.
        seed: seed of the shuffle.

    Returns:
        One sorted int64 index array per part.

    Example:
        >>> train, val = stratified_split([0] * 8 + [1] * 4, [0.75, 0.25], seed=0)
        >>> len(train), len(val)
        (9, 3)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"stratified_split needs 1D class labels, got shape {labels.shape}")
    fractions = [float(f) for f in fractions]
    if any(f < 0 or f > 1 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must lie in [0, 1] and sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        counts = [round(f * len(members)) for f in fractions[1:]]
        if sum(counts) > len(members):
            # Rounding up several small parts can overshoot a tiny class; trim the last parts first.
            for j in reversed(range(len(counts))):
                excess = sum(counts) - len(members)
                counts[j] -= min(excess, counts[j])
        counts.insert(0, len(members) - sum(counts))
        start = 0
        for part, n in zip(parts, counts):
            part.append(members[start : start + n])
            start += n
    return [np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for p in parts]


def train_val_split(labels: Sequence[int], val_fraction: float, seed: int = 0):
    """Carves a stratified validation split out of a training pool.

    Args:
        labels: ``(N,)`` class labels of the training pool.
        val_fraction: fraction of each class that goes to validation, in (0, 1).
        seed: seed of the shuffle.

    Returns:
        ``(train_indices, val_indices)``, disjoint, sorted, covering ``0..N-1``.

    Example:
        >>> tr, va = train_val_split([0, 1] * 50, 0.1, seed=3)
        >>> len(tr), len(va)
        (90, 10)
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    train, val = stratified_split(labels, [1.0 - val_fraction, val_fraction], seed)
    return train, val
