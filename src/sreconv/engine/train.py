"""``fit``: the training loop (SGD/AdamW, schedules with warm-up, AMP, DDP, checkpoints, exact resume).

Reproducibility contract (CPU, ``deterministic=True``): a run killed at any point and restarted with
``resume=True`` ends with weights bit-identical to an uninterrupted run. It holds because everything an
epoch consumes is either stored in the end-of-epoch checkpoint (model, optimizer, scheduler, grad scaler and
the Python/NumPy/torch RNG states) or derived from ``(seed, epoch, rank)`` alone: the shuffling order
(``DistributedSampler`` seeded with ``seed``, ``set_epoch``) and the base seeds of loader workers (a fresh
generator seeded per epoch). A killed epoch is simply re-run from the last checkpoint.

Test hook: when the environment variable ``SRECONV_TEST_KILL_AT_STEP=N`` is set, the process sends itself
SIGKILL right after optimizer step ``N`` (counted from the start of training, across epochs), which
simulates a crash mid-epoch deterministically.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from . import distributed as dist_utils
from .checkpoint import atomic_save, find_resume_checkpoint, load_checkpoint, rng_state, set_rng_state, unwrap
from .config import TrainConfig
from .evaluate import _loss_target, evaluate, infer_task, loss_fn

KILL_ENV = "SRECONV_TEST_KILL_AT_STEP"


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
        return config.gamma ** int(epoch // config.step_size)
    if config.schedule == "multi-step":
        return config.gamma ** sum(1 for m in config.milestones if epoch >= m)
    return 1.0


def _autocast(device: torch.device, amp: str):
    if amp == "none" or device.type != "cuda":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast("cuda", dtype=torch.float16 if amp == "fp16" else torch.bfloat16)


def _write_jsonl(path: str, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


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
    with open(path, "w") as f:
        f.writelines(kept)


def parameter_fingerprint(model: nn.Module) -> str:
    """SHA-256 of the bytes of every parameter (not buffers), in ``named_parameters`` order."""
    import hashlib

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


def fit(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None = None,
    config: TrainConfig | dict[str, Any] | None = None,
    *,
    out_dir: str | None = None,
    task: str | None = None,
    device: str | torch.device | None = None,
    verbose: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Trains ``model`` on ``train_set``; evaluates on ``val_set`` after every epoch.

    Args:
        model: a classifier ``(N, C, *S) -> (N, K)``. Under torch.distributed it is wrapped in
            DistributedDataParallel internally; the unwrapped model is updated in place and returned.
        train_set: map-style dataset of ``(image, target)``; its ``transform`` does the augmentation.
        val_set: optional validation dataset; it selects the best epoch (by accuracy) — never pass the test set.
        config: a :class:`TrainConfig` (or dict of its fields); only the optimisation/runtime/output fields
            are used here.
        out_dir: folder for ``log.jsonl`` and ``checkpoints/{last,best}.pt`` (rank 0 writes); None writes
            nothing and cannot resume.
        task: MedMNIST task name; default ``train_set.task`` or ``"multi-class"``.
        device: default: the device of the model's parameters.
        verbose: print one summary line per epoch (rank 0).
        **overrides: fields of :class:`TrainConfig` to override, e.g. ``epochs=3``.

    Returns:
        ``{"model", "ranks_in_sync", "history": [per-epoch dicts], "best_epoch", "best_val", "best_path",
        "last_path"}``; ``ranks_in_sync`` is True once all ranks were checked to hold identical parameters.

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
    rank, world = dist_utils.rank(), dist_utils.world_size()
    main = dist_utils.is_main()

    base_model = unwrap(model)
    net: nn.Module = base_model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(base_model, device_ids=ids)
    criterion = loss_fn(task)
    optimizer = build_optimizer(base_model, config)
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed)
    per_rank = len(sampler)
    # A lone sample in the last batch breaks BatchNorm in train mode; drop it rather than crash.
    drop_last = per_rank % config.batch_size == 1 and per_rank > 1
    steps_per_epoch = per_rank // config.batch_size if drop_last else math.ceil(per_rank / config.batch_size)
    if steps_per_epoch == 0:
        raise ValueError(f"training set too small: {len(train_set)} images for {world} rank(s)")
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch, config)
    )
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp == "fp16" and device.type == "cuda")

    ckpt_dir = os.path.join(out_dir, "checkpoints") if out_dir else None
    last_path = os.path.join(ckpt_dir, "last.pt") if ckpt_dir else None
    best_path = os.path.join(ckpt_dir, "best.pt") if ckpt_dir and config.save_best else None
    log_path = os.path.join(out_dir, "log.jsonl") if out_dir else None
    steps_path = os.path.join(out_dir, "steps.jsonl") if out_dir and config.log else None

    start_epoch, best_val, best_epoch, history = 0, None, None, []
    if config.resume:
        if not out_dir:
            raise ValueError("resume needs an output folder (--out DIR)")
        path = find_resume_checkpoint(out_dir)
        if path is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {os.path.join(out_dir, 'checkpoints')}")
        ckpt = load_checkpoint(path, map_location="cpu")
        base_model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch = int(ckpt["epoch"])
        best_val, best_epoch = ckpt.get("best_val"), ckpt.get("best_epoch")
        history = list(ckpt.get("history", []))
        rng = ckpt["rng"]  # one state per rank; a run resumed on fewer ranks reuses rank 0's
        set_rng_state(rng[rank] if rank < len(rng) else rng[0])
        if main and log_path:
            _truncate_log(log_path, start_epoch)
            if steps_path:
                _truncate_log(steps_path, start_epoch)
        if main and verbose:
            print(f"resumed from {path} after epoch {start_epoch}", flush=True)
    elif main and out_dir:
        os.makedirs(out_dir, exist_ok=True)
        for p in (log_path, steps_path):
            if p and os.path.exists(p):
                os.remove(p)

    kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
    global_step = start_epoch * steps_per_epoch
    show = config.progress and main
    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)
        generator = torch.Generator().manual_seed(config.seed * 100003 + epoch * 1009 + rank)
        loader = DataLoader(
            train_set, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers,
            drop_last=drop_last, generator=generator, pin_memory=device.type == "cuda",
        )
        net.train()
        t0 = time.time()
        sums = torch.zeros(3, dtype=torch.float64)  # loss * n, correct, n
        iterator = loader
        if show:
            from tqdm import tqdm

            iterator = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", dynamic_ncols=True, leave=False)
        for images, target in iterator:
            images = images.to(device, non_blocking=True)
            target = _loss_target(target, task).to(device, non_blocking=True)
            with _autocast(device, config.amp):
                logits = net(images)
                loss = criterion(logits.float(), target)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            global_step += 1
            with torch.no_grad():
                n = images.shape[0]
                if task == "multi-label, binary-class":
                    correct = ((logits > 0).float() == target).float().mean(1).sum()
                else:
                    correct = (logits.argmax(1) == target).sum()
                sums += torch.tensor([loss.item() * n, float(correct), n], dtype=torch.float64)
            if show:
                iterator.set_postfix(loss=f"{sums[0] / sums[2]:.4f}", acc=f"{sums[1] / sums[2]:.3f}")
            if steps_path and main:
                _write_jsonl(steps_path, {"epoch": epoch + 1, "step": global_step, "loss": loss.item(),
                                          "lr": optimizer.param_groups[0]["lr"]})
            if kill_at and global_step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        sums = dist_utils.all_reduce_sum(sums)
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": float(sums[0] / sums[2]),
            "train_acc": float(sums[1] / sums[2]),
            "time_s": round(time.time() - t0, 3),
        }
        if val_set is not None:
            val = evaluate(base_model, val_set, task=task, batch_size=config.eval_batch_size,
                           num_workers=config.num_workers, device=device,
                           amp=None if config.amp == "none" else config.amp)
            record["val"] = val
            improved = best_val is None or val["acc"] > best_val
            if improved:
                best_val, best_epoch = val["acc"], epoch + 1
                if best_path and main:
                    atomic_save({"model": base_model.state_dict(), "epoch": epoch + 1, "val": val,
                                 "config": config.to_dict()}, best_path)
        history.append(record)
        if main and log_path:
            _write_jsonl(log_path, record)
        if main and verbose:
            val_txt = f" val acc {record['val']['acc']:.4f} auc {record['val']['auc']:.4f}" if "val" in record else ""
            print(f"epoch {epoch + 1}/{config.epochs}: loss {record['train_loss']:.4f} "
                  f"acc {record['train_acc']:.4f}{val_txt} ({record['time_s']:.1f}s)", flush=True)
        # Every rank contributes its RNG state so a resumed DDP run restores each rank's own stream.
        rngs = dist_utils.all_gather_object(rng_state())
        if main and last_path:
            atomic_save({
                "model": base_model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "epoch": epoch + 1,
                "best_val": best_val,
                "best_epoch": best_epoch,
                "history": history,
                "rng": rngs,
                "config": config.to_dict(),
                "version": 1,
            }, last_path)
        dist_utils.barrier()
    in_sync = _check_ranks_in_sync(base_model)
    return {
        "model": base_model,
        "ranks_in_sync": in_sync,
        "history": history,
        "best_epoch": best_epoch,
        "best_val": best_val,
        "best_path": best_path if best_path and os.path.isfile(best_path) else None,
        "last_path": last_path,
    }
