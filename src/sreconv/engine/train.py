"""The training loop in steps: ``build_optimizer`` / ``lr_factor``, ``train_one_epoch``, ``fit`` (epochs,
validation, best/last checkpoints, exact resume), with callbacks for per-step and per-epoch hooks.

Reproducibility contract (CPU, ``deterministic=True``): a run killed at any point and resumed from its last
checkpoint ends with weights bit-identical to an uninterrupted run. It holds because everything an epoch
consumes is either stored in the end-of-epoch checkpoint (model, optimizer, scheduler, grad scaler and the
Python/NumPy/torch RNG states) or derived from ``(seed, epoch, rank)`` alone: the shuffling order
(``DistributedSampler`` seeded with ``seed``, ``set_epoch``) and the base seeds of loader workers (a fresh
generator seeded per epoch). A killed epoch is simply re-run from the last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from . import distributed as dist_utils
from .checkpoint import (
    CHECKPOINT_FILES,
    CHECKPOINT_VERSION,
    append_line,
    atomic_save,
    atomic_write_text,
    rng_state,
    set_rng_state,
    unwrap,
)
from .config import TrainConfig
from .evaluate import evaluate, infer_task, loss_fn, loss_target
from .metrics import MULTI_LABEL
from .runtime import autocast


class Callback:
    """Hooks :func:`fit` calls on every rank; override the ones you need."""

    def on_step_end(self, step: int, loss: float) -> None:
        """After optimizer step ``step`` (1-based, counted across epochs)."""

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        """After an epoch's checkpoint is written; ``record`` is its ``log.jsonl`` line."""

    def on_run_end(self, results: dict[str, Any], out_dir: str) -> None:
        """Called by :func:`~sreconv.engine.runner.run_train` on the main rank once ``results.json`` is written."""


@dataclass
class TrainState:
    """What an end-of-epoch checkpoint holds besides the RNG states and the config."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    epoch: int = 0
    best_val: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(cls, model: nn.Module, config: TrainConfig, steps_per_epoch: int,
               device: torch.device) -> TrainState:
        """A fresh state: the configured optimizer, its per-step lr schedule, a grad scaler (fp16 on CUDA only)."""
        optimizer = build_optimizer(model, config)
        return cls(
            model=model, optimizer=optimizer,
            scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps_per_epoch, config)),
            scaler=torch.amp.GradScaler(device.type, enabled=config.amp == "fp16" and device.type == "cuda"),
        )

    def checkpoint(self, config: TrainConfig, rngs: Sequence[dict[str, Any]],
                   model_spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """The dict written to ``checkpoints/last.pt``."""
        return {
            "model_spec": model_spec,
            "version": CHECKPOINT_VERSION,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": self.epoch,
            "best_val": self.best_val,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "rng": list(rngs),
            "config": config.to_dict(),
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Loads a :meth:`checkpoint` dict back (the RNG state of this rank included).

        Raises:
            ValueError: the checkpoint's weights or optimizer state do not fit.
        """
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            if ckpt.get("scaler"):
                self.scaler.load_state_dict(ckpt["scaler"])
        except (RuntimeError, ValueError, KeyError) as err:
            first = " ".join(str(err).split())[:300]
            raise ValueError(f"the checkpoint does not fit this model and optimizer: {first}") from err
        self.epoch = int(ckpt["epoch"])
        self.best_val, self.best_epoch = ckpt.get("best_val"), ckpt.get("best_epoch")
        self.history = list(ckpt.get("history", []))
        rng = ckpt["rng"]  # one state per rank; a run resumed on fewer ranks reuses rank 0's
        set_rng_state(rng[dist_utils.rank()] if dist_utils.rank() < len(rng) else rng[0])


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay), AdamW or Adam over all trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(step: int, steps_per_epoch: int, config: TrainConfig) -> float:
    """Multiplier of the base lr at optimizer step ``step`` (0-based), updated every step.

    Linear warm-up over ``warmup_epochs``, then: ``none`` (constant), ``cos`` (cosine from ``lr`` down to
    ``min_lr`` at the end of training), ``step`` (x ``gamma`` every ``step_size`` epochs) or ``multi-step``
    (x ``gamma`` at each epoch of ``milestones``). Epoch-based schedules use the fractional epoch.
    """
    warmup = config.warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    epoch = step / steps_per_epoch
    if config.schedule == "cos":
        total = max(config.epochs * steps_per_epoch - warmup, 1)
        t = min((step - warmup) / total, 1.0)
        floor = min(config.min_lr / config.lr, 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    if config.schedule == "step":
        return float(config.gamma ** int(epoch // config.step_size))
    if config.schedule == "multi-step":
        return float(config.gamma ** sum(1 for m in config.milestones if epoch >= m))
    return 1.0


def _truncate_log(path: str, keep_epochs: int) -> None:
    """Drops records of epochs past the checkpoint a resumed run restarts from."""
    if not os.path.isfile(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    kept = []
    for line in lines:
        try:
            if json.loads(line).get("epoch", 0) <= keep_epochs:
                kept.append(line)
        except json.JSONDecodeError:
            pass  # a line cut by the kill
    atomic_write_text("".join(kept), path)


def parameter_fingerprint(model: nn.Module) -> str:
    """SHA-256 of the bytes of every parameter (not buffers), in ``named_parameters`` order."""
    digest = hashlib.sha256()
    for name, p in model.named_parameters():
        digest.update(name.encode())
        digest.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _check_ranks_in_sync(model: nn.Module) -> bool:
    """Under DDP, checks every rank ends with bit-identical parameters (BatchNorm buffers may differ: DDP
    broadcasts them from rank 0 before each forward, so they are re-synchronised on the next use)."""
    if dist_utils.world_size() == 1:
        return True
    prints = dist_utils.all_gather_object(parameter_fingerprint(model))
    if len(set(prints)) != 1:
        raise RuntimeError(f"DDP ranks ended with different parameters: {prints}")
    return True


def train_one_epoch(net: nn.Module, loader: Iterable[Any], state: TrainState, criterion: nn.Module, task: str,
                    device: torch.device, config: TrainConfig, callbacks: Sequence[Callback] = (),
                    steps_path: str | None = None, desc: str | None = None) -> dict[str, Any]:
    """One pass over ``loader``; returns the epoch's ``{"train_loss", "train_acc", "lr", "time_s"}``.

    Args:
        net: the (possibly DDP-wrapped) model; ``state.model`` is the unwrapped one.
        loader: batches of ``(images, targets)``.
        state: optimizer, scheduler (stepped every batch) and grad scaler.
        criterion, task: loss and MedMNIST task name.
        device: where the batches go.
        config: ``amp`` and ``progress`` are read.
        callbacks: ``on_step_end`` after every optimizer step.
        steps_path: append one ``{"epoch", "step", "loss", "lr"}`` line per step there (rank 0 only).
        desc: label of the progress bar.
    """
    net.train()
    t0 = time.time()
    sums = torch.zeros(3, dtype=torch.float64)  # loss * n, correct, n
    steps_per_epoch = len(loader) if hasattr(loader, "__len__") else 0
    step = state.epoch * steps_per_epoch
    iterator: Iterable[Any] = loader
    bar = None
    if config.progress and dist_utils.is_main():
        from tqdm import tqdm

        iterator = bar = tqdm(loader, desc=desc, dynamic_ncols=True, leave=False)
    for images, target in iterator:
        images = images.to(device, non_blocking=True)
        target = loss_target(target, task).to(device, non_blocking=True)
        with autocast(device, config.amp):
            logits = net(images)
            loss = criterion(logits.float(), target)
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.scheduler.step()
        step += 1
        with torch.no_grad():
            n = images.shape[0]
            if task == MULTI_LABEL:
                correct = ((logits > 0).float() == target).float().mean(1).sum()
            else:
                correct = (logits.argmax(1) == target).sum()
            sums += torch.tensor([loss.item() * n, float(correct), n], dtype=torch.float64)
        if bar is not None:
            bar.set_postfix(loss=f"{sums[0] / sums[2]:.4f}", acc=f"{sums[1] / sums[2]:.3f}")
        if steps_path and dist_utils.is_main():
            append_line(steps_path, {"epoch": state.epoch + 1, "step": step, "loss": loss.item(),
                                     "lr": state.optimizer.param_groups[0]["lr"]})
        for callback in callbacks:
            callback.on_step_end(step, loss.item())
    sums = dist_utils.all_reduce_sum(sums)
    return {
        "lr": state.optimizer.param_groups[0]["lr"],
        "train_loss": float(sums[0] / sums[2]),
        "train_acc": float(sums[1] / sums[2]),
        "time_s": round(time.time() - t0, 3),
    }


def fit(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None = None,
    config: TrainConfig | dict[str, Any] | None = None,
    *,
    out_dir: str | None = None,
    resume_from: dict[str, Any] | None = None,
    task: str | None = None,
    device: str | torch.device | None = None,
    verbose: bool = True,
    callbacks: Sequence[Callback] = (),
    model_spec: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Trains ``model`` on ``train_set``; evaluates on ``val_set`` after every epoch.

    Args:
        model: a classifier ``(N, C, *S) -> (N, K)``. Under torch.distributed it is wrapped in
            DistributedDataParallel internally; the unwrapped model is updated in place and returned.
        train_set: map-style dataset of ``(image, target)``; its ``transform`` does the augmentation.
        val_set: optional validation dataset; it selects the best epoch (by accuracy) — never pass the test set.
        config: a :class:`TrainConfig` (or dict of its fields); the optimisation/runtime/output fields are used.
        out_dir: folder for ``log.jsonl`` and ``checkpoints/{last,best}.pt`` (rank 0 writes); None writes
            nothing. The caller owns the folder (see :class:`~sreconv.engine.checkpoint.RunLock`).
        resume_from: a ``checkpoints/last.pt`` dict to continue from (see
            :func:`~sreconv.engine.checkpoint.load_training_checkpoint`): training restarts after its epoch.
        task: MedMNIST task name; default ``train_set.task`` or ``"multi-class"``.
        device: default: the device of the model's parameters.
        verbose: print one summary line per epoch (rank 0).
        callbacks: :class:`Callback` objects, called on every rank.
        model_spec: ``{"name", "kwargs"}`` of :func:`~sreconv.models.create_model` that rebuild ``model``; stored
            in the checkpoints so that tools (``sreconv check``, ...) can rebuild it.
        **overrides: fields of :class:`TrainConfig` to override, e.g. ``epochs=3``.

    Returns:
        ``{"model", "ranks_in_sync", "history": [per-epoch dicts], "epoch", "best_epoch", "best_val",
        "best_path", "last_path"}``; ``epoch`` is the number of completed epochs of the returned weights.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> data = TensorDataset(torch.randn(32, 1, 8, 8), torch.arange(32) % 2)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
        >>> result = fit(model, data, data, epochs=2, batch_size=8, lr=0.1, progress=False, verbose=False)
        >>> [h["epoch"] for h in result["history"]]
        [1, 2]
    """
    if config is None:
        config = TrainConfig()
    elif isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    else:
        config = TrainConfig.from_dict(config.to_dict())
    config.update(overrides, "fit()").validate()
    task = infer_task(train_set, task)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    rank, world, main = dist_utils.rank(), dist_utils.world_size(), dist_utils.is_main()

    base_model = unwrap(model)
    net: nn.Module = base_model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(base_model, device_ids=[device.index] if device.type == "cuda"
                                                  else None)
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed)
    per_rank = len(sampler)
    # A lone sample in the last batch breaks BatchNorm in train mode; drop it rather than crash.
    drop_last = per_rank % config.batch_size == 1 and per_rank > 1
    steps_per_epoch = per_rank // config.batch_size if drop_last else math.ceil(per_rank / config.batch_size)
    if steps_per_epoch == 0:
        raise ValueError(f"training set too small: {len(train_set)} images for {world} rank(s)")
    state = TrainState.create(base_model, config, steps_per_epoch, device)
    criterion = loss_fn(task)

    last_path = os.path.join(out_dir, CHECKPOINT_FILES["last"]) if out_dir else None
    best_path = os.path.join(out_dir, CHECKPOINT_FILES["best"]) if out_dir and config.save_best else None
    log_path = os.path.join(out_dir, "log.jsonl") if out_dir else None
    steps_path = os.path.join(out_dir, "steps.jsonl") if out_dir and config.log else None

    if resume_from is not None:
        state.restore(resume_from)
        if main and verbose:
            print(f"resumed after epoch {state.epoch}", flush=True)
    if main and out_dir:
        os.makedirs(out_dir, exist_ok=True)
        for path in (log_path, steps_path):
            if path is not None and resume_from is not None:
                _truncate_log(path, state.epoch)
            elif path is not None and os.path.exists(path):
                os.remove(path)

    for epoch in range(state.epoch, config.epochs):
        sampler.set_epoch(epoch)
        generator = torch.Generator().manual_seed(config.seed * 100003 + epoch * 1009 + rank)
        loader = DataLoader(train_set, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers,
                            drop_last=drop_last, generator=generator, pin_memory=device.type == "cuda")
        record: dict[str, Any] = {"epoch": epoch + 1}
        record.update(train_one_epoch(net, loader, state, criterion, task, device, config, callbacks, steps_path,
                                      desc=f"epoch {epoch + 1}/{config.epochs}"))
        state.epoch = epoch + 1
        if val_set is not None:
            val = evaluate(base_model, val_set, task=task, batch_size=config.eval_batch_size,
                           num_workers=config.num_workers, device=device, amp=config.amp)
            record["val"] = val
            if state.best_val is None or val["acc"] > state.best_val:
                state.best_val, state.best_epoch = val["acc"], state.epoch
                if best_path and main:
                    atomic_save({"version": CHECKPOINT_VERSION, "model": base_model.state_dict(),
                                 "model_spec": model_spec, "epoch": state.epoch, "val": val,
                                 "config": config.to_dict()}, best_path)
        state.history.append(record)
        # Every rank contributes its RNG state so a resumed DDP run restores each rank's own stream.
        rngs = dist_utils.all_gather_object(rng_state())
        if main and log_path:
            append_line(log_path, record)  # before the checkpoint: a resume truncates lines past its epoch
        if main and last_path:
            atomic_save(state.checkpoint(config, rngs, model_spec), last_path)
        if main and verbose:
            val_txt = f" val acc {record['val']['acc']:.4f} auc {record['val']['auc']:.4f}" if "val" in record else ""
            print(f"epoch {state.epoch}/{config.epochs}: loss {record['train_loss']:.4f} "
                  f"acc {record['train_acc']:.4f}{val_txt} ({record['time_s']:.1f}s)", flush=True)
        for callback in callbacks:
            callback.on_epoch_end(record)
        dist_utils.barrier()
    return {
        "model": base_model,
        "ranks_in_sync": _check_ranks_in_sync(base_model),
        "history": state.history,
        "epoch": state.epoch,
        "best_epoch": state.best_epoch,
        "best_val": state.best_val,
        "best_path": best_path if best_path and os.path.isfile(best_path) else None,
        "last_path": last_path,
    }
