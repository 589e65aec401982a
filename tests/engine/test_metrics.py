"""The engine's NumPy metrics against scikit-learn (and medmnist's definitions) on fixed arrays."""

import numpy as np
import pytest

from sreconv.engine.metrics import compute_metrics, roc_auc

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def _rng():
    return np.random.default_rng(0)


def test_roc_auc_matches_sklearn_with_ties():
    rng = _rng()
    y = rng.integers(0, 2, 200)
    score = np.round(rng.random(200), 1)  # many ties
    assert roc_auc(y, score) == pytest.approx(sklearn_metrics.roc_auc_score(y, score), abs=1e-12)
    assert np.isnan(roc_auc(np.ones(5), np.arange(5.0)))


@pytest.mark.parametrize("task", ["multi-class", "ordinal-regression"])
def test_multiclass(task):
    rng = _rng()
    y = rng.integers(0, 5, 300)
    s = rng.dirichlet(np.ones(5), 300)
    s[np.arange(300)[:150], y[:150]] += 0.5  # better than chance
    m = compute_metrics(y, s, task)
    pred = s.argmax(1)
    auc = np.mean([sklearn_metrics.roc_auc_score(y == c, s[:, c]) for c in range(5)])  # medmnist's getAUC
    assert m["acc"] == pytest.approx(sklearn_metrics.accuracy_score(y, pred))
    assert m["auc"] == pytest.approx(auc)
    assert m["balanced_acc"] == pytest.approx(sklearn_metrics.balanced_accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(sklearn_metrics.f1_score(y, pred, average="macro"))
    # (N, 1) targets as MedMNIST stores them are accepted
    assert compute_metrics(y[:, None], s, task) == m


def test_multiclass_with_missing_predicted_class():
    y = np.array([0, 1, 2, 2, 1, 0])
    s = np.eye(3)[[0, 0, 2, 2, 0, 0]]  # class 1 never predicted
    m = compute_metrics(y, s, "multi-class")
    assert m["f1"] == pytest.approx(sklearn_metrics.f1_score(y, s.argmax(1), average="macro", zero_division=0))
    assert m["balanced_acc"] == pytest.approx(sklearn_metrics.balanced_accuracy_score(y, s.argmax(1)))


def test_binary():
    rng = _rng()
    y = rng.integers(0, 2, 100)
    p = np.clip(0.3 * y + 0.7 * rng.random(100), 0, 1)
    s = np.stack([1 - p, p], 1)
    m = compute_metrics(y, s, "binary-class")
    pred = (p > 0.5).astype(int)
    assert m["acc"] == pytest.approx(sklearn_metrics.accuracy_score(y, pred))
    assert m["auc"] == pytest.approx(sklearn_metrics.roc_auc_score(y, p))
    assert m["balanced_acc"] == pytest.approx(sklearn_metrics.balanced_accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(sklearn_metrics.f1_score(y, pred, average="macro"))
    assert compute_metrics(y, p, "binary-class") == m  # a 1-D score is the positive-class probability


def test_multilabel():
    rng = _rng()
    y = rng.integers(0, 2, (120, 6))
    s = np.clip(0.4 * y + 0.6 * rng.random((120, 6)), 0, 1)
    m = compute_metrics(y, s, "multi-label, binary-class")
    pred = (s > 0.5).astype(int)
    acc = np.mean([sklearn_metrics.accuracy_score(y[:, j], pred[:, j]) for j in range(6)])  # medmnist's getACC
    auc = np.mean([sklearn_metrics.roc_auc_score(y[:, j], s[:, j]) for j in range(6)])
    bacc = np.mean([sklearn_metrics.balanced_accuracy_score(y[:, j], pred[:, j]) for j in range(6)])
    assert m["acc"] == pytest.approx(acc)
    assert m["auc"] == pytest.approx(auc)
    assert m["balanced_acc"] == pytest.approx(bacc)
    assert m["f1"] == pytest.approx(sklearn_metrics.f1_score(y, pred, average="macro", zero_division=0))


def test_medmnist_evaluator_agrees():
    evaluator = pytest.importorskip("medmnist.evaluator")
    rng = _rng()
    y = rng.integers(0, 4, 80)
    s = rng.dirichlet(np.ones(4), 80)
    m = compute_metrics(y, s, "multi-class")
    assert m["acc"] == pytest.approx(evaluator.getACC(y[:, None], s, "multi-class"))
    assert m["auc"] == pytest.approx(evaluator.getAUC(y[:, None], s, "multi-class"))


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown task"):
        compute_metrics([0], [[1.0]], "regression")
    with pytest.raises(ValueError, match="rows"):
        compute_metrics([0, 1], [[1.0, 0.0]], "multi-class")
