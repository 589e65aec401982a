"""The engine's steps on every device (CPU here; CUDA too where one is present, marked ``gpu``)."""

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from sreconv import SREConv2d
from sreconv.engine import evaluate, evaluate_flips, evaluate_rotations
from sreconv.engine.config import TrainConfig
from sreconv.engine.evaluate import loss_fn
from sreconv.engine.train import TrainState, train_one_epoch


def _net() -> nn.Module:
    """Ring conv + global average pool: logits invariant to quarter turns and flips."""
    return nn.Sequential(SREConv2d(1, 6, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(6, 3))


def _data(n: int = 24) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    return TensorDataset(torch.rand(n, 1, 9, 9, generator=generator), torch.arange(n) % 3)


class TestTrainOneEpoch:
    def test_steps_on_the_device_and_matches_the_cpu(self, device):
        config = TrainConfig(epochs=1, lr=0.05, optimizer="sgd", progress=False)
        loader = DataLoader(_data(), batch_size=8, shuffle=False)
        reference = _net()
        moved = _net().to(device)
        moved.load_state_dict(reference.state_dict())
        records = []
        for model, where in ((reference, torch.device("cpu")), (moved, device)):
            state = TrainState.create(model, config, len(loader), where)
            records.append(train_one_epoch(model, loader, state, loss_fn("multi-class"), "multi-class", where, config))
        assert all(p.device.type == device.type for p in moved.parameters())
        assert records[1]["train_loss"] == pytest.approx(records[0]["train_loss"], rel=1e-4)
        for p, q in zip(reference.parameters(), moved.parameters(), strict=True):
            torch.testing.assert_close(q.cpu(), p, rtol=1e-4, atol=1e-5)
        start = _net()
        assert any(not torch.equal(p, q) for p, q in zip(start.parameters(), reference.parameters(), strict=True))


class TestEvaluate:
    def test_metrics_match_the_cpu(self, device):
        model = _net().eval()
        data = _data()
        on_cpu = evaluate(model, data, batch_size=10)
        on_device = evaluate(model.to(device), data, batch_size=10, device=device)
        assert on_device["acc"] == on_cpu["acc"]
        assert on_device["loss"] == pytest.approx(on_cpu["loss"], rel=1e-5)

    def test_invariant_model_scores_the_same_at_quarter_turns_and_flips(self, device):
        model = _net().to(device).eval()
        data = _data()
        rotations = evaluate_rotations(model, data, angles=[0, 90, 180, 270], batch_size=10, device=device)
        assert len(set(rotations["acc"])) == 1, rotations["acc"]
        flips = evaluate_flips(model, data, batch_size=10, device=device)
        assert flips["none"]["acc"] == flips["horizontal"]["acc"] == flips["vertical"]["acc"]
