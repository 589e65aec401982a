"""fit() from Python on a plain TensorDataset, learning-rate schedules, checkpoint helpers."""

import os

import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from sreconv.engine import TrainConfig, fit
from sreconv.engine.checkpoint import atomic_save, load_checkpoint
from sreconv.engine.train import lr_factor
from sreconv.serialization import model_state


def _data(n=48):
    x = torch.randn(n, 1, 6, 6)
    y = (x.mean((1, 2, 3)) > 0).long()
    return TensorDataset(x, y)


def test_fit_on_any_dataset_learns_and_writes(tmp_path):
    torch.manual_seed(0)
    data = _data()
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 2))
    result = fit(model, data, data, epochs=4, batch_size=8, lr=0.2, optimizer="adamw", schedule="step",
                 step_size=2, progress=False, verbose=False, save_best=True, out_dir=str(tmp_path))
    assert result["model"] is model
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3, 4]
    assert result["history"][-1]["val"]["acc"] > 0.8
    assert result["best_path"] and os.path.isfile(result["best_path"])
    ckpt = load_checkpoint(result["last_path"])
    assert ckpt["epoch"] == 4 and {"model", "optimizer", "scheduler", "rng", "config"} <= set(ckpt)
    assert torch.equal(model_state(ckpt)["1.weight"], model[1].weight)


def test_multilabel_task_uses_bce(tmp_path):
    x = torch.randn(32, 1, 4, 4)
    y = torch.stack([(x.mean((1, 2, 3)) > 0), (x[:, 0, 0, 0] > 0)], 1).float()
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    result = fit(model, TensorDataset(x, y), TensorDataset(x, y), task="multi-label, binary-class", epochs=2,
                 batch_size=8, progress=False, verbose=False)
    val = result["history"][-1]["val"]
    with torch.no_grad():
        logits = model(x)
    # The reported loss is the mean per-label BCE of the logits (cross-entropy would differ) ...
    assert val["loss"] == pytest.approx(nn.functional.binary_cross_entropy_with_logits(logits, y).item(), rel=1e-5)
    # ... and the AUC is the macro average over the two labels of the sigmoid scores.
    from sklearn.metrics import roc_auc_score

    expected = roc_auc_score(y.numpy(), torch.sigmoid(logits).numpy(), average="macro")
    assert val["auc"] == pytest.approx(expected, rel=1e-6)


def test_lr_schedules():
    c = TrainConfig(epochs=10, lr=1.0, min_lr=0.0, warmup_epochs=1, schedule="cos")
    assert lr_factor(0, 10, c) == pytest.approx(0.1)        # warm-up starts low
    assert lr_factor(9, 10, c) == pytest.approx(1.0)        # and reaches the base lr
    assert lr_factor(10, 10, c) == pytest.approx(1.0)       # cosine starts at the top
    assert lr_factor(100, 10, c) == pytest.approx(0.0, abs=1e-12)  # and ends at min_lr
    c = TrainConfig(epochs=10, lr=1.0, schedule="step", step_size=3, gamma=0.5)
    assert [lr_factor(e * 10, 10, c) for e in (0, 3, 6)] == [1.0, 0.5, 0.25]
    c = TrainConfig(epochs=10, lr=1.0, schedule="multi-step", milestones=[2, 5], gamma=0.1)
    assert [lr_factor(e * 10, 10, c) for e in (1, 2, 5)] == pytest.approx([1.0, 0.1, 0.01])


def test_bad_fit_arguments():
    data = _data(8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 2))
    with pytest.raises(ValueError, match="unknown setting"):
        fit(model, data, epoch=3)
    with pytest.raises(ValueError, match="optimizer"):
        fit(model, data, optimizer="lbfgs")
    with pytest.raises(ValueError, match="unknown setting\\(s\\) 'resume'"):
        fit(model, data, resume=True)  # resuming is fit(resume_from=checkpoint dict), not a setting


def test_atomic_save_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    atomic_save({"a": 1}, str(path))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        atomic_save({"a": 2}, str(path))
    assert load_checkpoint(str(path)) == {"a": 1}
    assert os.listdir(tmp_path) == ["ckpt.pt"]
