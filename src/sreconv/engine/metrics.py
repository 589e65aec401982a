"""Classification metrics: accuracy, AUC, balanced accuracy and macro F1, in plain NumPy.

Definitions follow ``medmnist.Evaluator`` (``getACC``/``getAUC``) where it defines a metric, and
scikit-learn's ``balanced_accuracy_score`` / ``f1_score(average="macro")`` for the other two, so numbers are
comparable with published MedMNIST tables. They are re-implemented here so the engine needs neither
scikit-learn nor medmnist at run time; ``tests/engine/test_metrics.py`` checks them against scikit-learn.

Scores, not logits, are what the metrics take (see :func:`scores_from_logits`):

* ``multi-class`` and ``ordinal-regression``: softmax probabilities ``(N, C)``; prediction = argmax;
  AUC = mean over classes of the one-vs-rest ROC AUC (as medmnist).
* ``binary-class``: probability of the positive class (the last softmax column, or the sigmoid of a single
  logit); prediction = score > 0.5 (as medmnist's threshold).
* ``multi-label, binary-class``: per-label sigmoid probabilities ``(N, L)``; prediction = score > 0.5;
  accuracy, AUC and balanced accuracy are averaged over labels; F1 is macro over labels.

An AUC that is undefined (a class or label with only one of positives/negatives in ``y_true``) is left out
of the average; if no term is defined the AUC is ``nan``.
"""

from __future__ import annotations

import numpy as np
import torch

MULTI_CLASS = "multi-class"
MULTI_LABEL = "multi-label, binary-class"
BINARY = "binary-class"
ORDINAL = "ordinal-regression"
TASKS = (MULTI_CLASS, MULTI_LABEL, BINARY, ORDINAL)
METRICS = ("acc", "auc", "balanced_acc", "f1")


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(repr(t) for t in TASKS)}")
    return task


def scores_from_logits(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Turns model outputs ``(N, C)`` into the scores the metrics take.

    Args:
        logits: raw model outputs, ``(N, C)``.
        task: a MedMNIST task name.

    Returns:
        ``(N, C)`` float64 probabilities: sigmoid for the multi-label task (and for a binary task with a
        single output unit), softmax otherwise.
    """
    check_task(task)
    logits = logits.detach().double()
    if task == MULTI_LABEL or (task == BINARY and logits.shape[-1] == 1):
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=-1)


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Binary ROC AUC (the Mann-Whitney statistic, ties counted one half), ``nan`` if undefined.

    Equals ``sklearn.metrics.roc_auc_score`` whenever both classes are present.
    """
    y_true = np.asarray(y_true).astype(bool).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    n_pos = int(y_true.sum())
    n_neg = y_true.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Average ranks handle ties exactly as the trapezoidal ROC area does.
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    ranks = np.empty(score.size, dtype=np.float64)
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(avg, counts)
    u = ranks[y_true].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true`` (sklearn's ``balanced_accuracy_score``)."""
    recalls = [np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]
    return float(np.mean(recalls)) if recalls else float("nan")


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro F1 over the labels present in ``y_true`` or ``y_pred``; 0 where undefined (as sklearn)."""
    labels = np.union1d(np.unique(y_true), np.unique(y_pred))
    f1s = []
    for c in labels:
        tp = np.sum((y_pred == c) & (y_true == c))
        denom = np.sum(y_pred == c) + np.sum(y_true == c)
        f1s.append(2.0 * tp / denom if denom else 0.0)
    return float(np.mean(f1s)) if f1s else float("nan")


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.mean(values[~np.isnan(values)])) if np.any(~np.isnan(values)) else float("nan")


def compute_metrics(y_true, y_score, task: str, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, AUC, balanced accuracy and macro F1 of scores against targets.

    Args:
        y_true: ``(N,)`` class indices (``(N, 1)`` accepted), or ``(N, L)`` 0/1 targets for the multi-label task.
        y_score: ``(N, C)`` scores from :func:`scores_from_logits` (``(N,)`` accepted for binary-class).
        task: ``"multi-class"``, ``"binary-class"``, ``"ordinal-regression"`` or ``"multi-label, binary-class"``.
        threshold: decision threshold on probabilities for the binary and multi-label tasks.

    Returns:
        ``{"acc", "auc", "balanced_acc", "f1"}`` as Python floats.

    Example:
        >>> import numpy as np
        >>> m = compute_metrics(np.array([0, 1, 1]), np.array([[.9, .1], [.2, .8], [.6, .4]]), "binary-class")
        >>> round(m["acc"], 3), m["auc"]
        (0.667, 1.0)
    """
    check_task(task)
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if len(y_true) != len(y_score):
        raise ValueError(f"y_true has {len(y_true)} rows but y_score has {len(y_score)}")
    if len(y_true) == 0:
        return {k: float("nan") for k in METRICS}
    if task == MULTI_LABEL:
        y_true = y_true.reshape(len(y_true), -1).astype(np.int64)
        y_score = y_score.reshape(len(y_score), -1)
        if y_true.shape != y_score.shape:
            raise ValueError(f"multi-label targets {y_true.shape} and scores {y_score.shape} differ in shape")
        y_pred = (y_score > threshold).astype(np.int64)
        n_labels = y_true.shape[1]
        acc = float(np.mean([np.mean(y_true[:, j] == y_pred[:, j]) for j in range(n_labels)]))
        auc = _nanmean([roc_auc(y_true[:, j], y_score[:, j]) for j in range(n_labels)])
        bacc = float(np.mean([_balanced_accuracy(y_true[:, j], y_pred[:, j]) for j in range(n_labels)]))
        f1s = []
        for j in range(n_labels):
            tp = np.sum((y_pred[:, j] == 1) & (y_true[:, j] == 1))
            denom = np.sum(y_pred[:, j]) + np.sum(y_true[:, j])
            f1s.append(2.0 * tp / denom if denom else 0.0)
        return {"acc": acc, "auc": auc, "balanced_acc": bacc, "f1": float(np.mean(f1s))}

    y_true = y_true.reshape(len(y_true)).astype(np.int64)
    if task == BINARY:
        pos = y_score[:, -1] if y_score.ndim == 2 else y_score
        y_pred = (pos > threshold).astype(np.int64)
        auc = roc_auc(y_true == 1, pos)
    else:
        if y_score.ndim != 2:
            raise ValueError(f"{task} scores must have shape (N, C), got {y_score.shape}")
        y_pred = np.argmax(y_score, axis=1)
        auc = _nanmean([roc_auc(y_true == c, y_score[:, c]) for c in range(y_score.shape[1])])
    return {
        "acc": float(np.mean(y_pred == y_true)),
        "auc": auc,
        "balanced_acc": _balanced_accuracy(y_true, y_pred),
        "f1": _macro_f1(y_true, y_pred),
    }
