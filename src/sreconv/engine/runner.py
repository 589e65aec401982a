"""What ``sreconv train`` and ``sreconv eval`` do: datasets + model from a config, fit, final evaluation,
``results.json`` and a printed summary.

Output folder layout (``--out DIR``, written by rank 0 only)::

    config.yaml          the resolved configuration
    log.jsonl            one record per epoch (train loss/acc, lr, validation metrics, time)
    steps.jsonl          one record per optimizer step (only with --log)
    checkpoints/last.pt  model, optimizer, scheduler, epoch, RNG states, config (for --resume)
    checkpoints/best.pt  best validation accuracy (only with --save-best)
    model.pt             final evaluated weights, a bare state_dict (only with --save-model)
    results.json         dataset, model, params, val, test, rotation, flip metrics, the tuner's choices
    .lock                held by the process that writes the folder (see RunLock)

A run owns its folder: a second process is refused at once. A resumed run changes nothing in the folder until
its checkpoint has loaded into the model and its settings have been checked against ``config.yaml``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from sreconv.nn import tuning
from sreconv.serialization import model_state

from . import distributed as dist_utils
from .checkpoint import atomic_save, atomic_write_text, load_checkpoint
from .config import TrainConfig, dump_yaml
from .evaluate import evaluate, evaluate_flips, evaluate_rotations
from .train import Callback

MEDMNIST_2D_PAPER_SIZE = 32


class LimitedView(Dataset):
    """A fixed random subset of a dataset (seeded), forwarding metadata such as ``task`` and ``n_classes``.

    A random rather than leading subset, because some datasets (MNIST-5k) are stored sorted by class.
    """

    def __init__(self, dataset: Dataset, limit: int, seed: int = 0) -> None:
        n = len(dataset)
        generator = torch.Generator().manual_seed(seed)
        self.indices = torch.randperm(n, generator=generator)[: min(limit, n)].sort().values.tolist()
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.dataset[self.indices[i]]

    def __getattr__(self, name: str):
        if name.startswith("__") or "dataset" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.dataset, name)


def image_size_for(config: TrainConfig, dataset) -> int | None:
    """2D resize target: ``image_size`` if set, 32 for 28-pixel MedMNIST (the paper's choice), else native."""
    if config.image_size:
        return config.image_size
    from sreconv.data.medmnist import FLAGS_2D

    if config.dataset.lower() in FLAGS_2D and config.medmnist_size == 28:
        return MEDMNIST_2D_PAPER_SIZE
    return dataset.image_size[-1]


def build_datasets(config: TrainConfig, train: bool = True) -> dict[str, Dataset]:
    """``{"train", "val", "test"}`` (``train`` omitted when ``train=False``) with the run's transforms."""
    from sreconv.data import build_dataset, eval_transform_2d, eval_transform_3d, train_transform_2d, train_transform_3d
    from sreconv.data.medmnist import FLAGS_2D, FLAGS_3D

    name = config.dataset.lower()
    common = dict(data_root=config.data_root, as_rgb=not config.res_keep_conv1, download=config.download)
    if name in FLAGS_2D or name in FLAGS_3D:
        common["size"] = config.medmnist_size
    else:
        common["val_fraction"] = config.val_fraction
        common["seed"] = 0  # the split must not move with the training seed
    test = build_dataset(name, "test", **common)
    out: dict[str, Dataset] = {}
    if test.spatial_dims == 2:
        size = image_size_for(config, test)
        eval_t = eval_transform_2d(size)
        flip_p = config.train_flip_p
        train_t = train_transform_2d(size, moco=config.moco_aug,
                                     translate=config.translate_ratio if config.translation else 0.0,
                                     hflip_p=flip_p, vflip_p=flip_p, rotation=config.train_rotation)
    else:
        eval_t = eval_transform_3d()
        if config.moco_aug:
            train_t = train_transform_3d(flip_p=config.train_flip_p, rotation=config.train_rotation)
        else:
            train_t = train_transform_3d(affine_scale=0.0, affine_translate=0.0, blur_p=0.0,
                                         flip_p=config.train_flip_p, rotation=config.train_rotation)
    if getattr(test, "n_classes", 2) < 2:
        raise ValueError(f"dataset {config.dataset!r} has {test.n_classes} class; classification needs at least two "
                         f"(found: {', '.join(map(str, getattr(test, 'label_names', [])))})")
    test.transform = eval_t  # our own freshly built object, not a caller's dataset
    if train:
        out["train"] = build_dataset(name, "train", transform=train_t, **common)
    out["val"] = build_dataset(name, "val", transform=eval_t, **common)
    out["test"] = test
    for split, limit in (("train", config.limit_train), ("val", config.limit_val), ("test", config.limit_test)):
        if limit and split in out:
            out[split] = LimitedView(out[split], limit, seed=0)
    return out


def model_kwargs(config: TrainConfig, dataset: Any) -> dict[str, Any]:
    """The :func:`~sreconv.models.create_model` arguments of ``config.model`` for ``dataset``'s channels, classes
    and dimensionality (stored in checkpoints as ``model_spec`` so tools can rebuild the model without the data)."""
    from sreconv.models.registry import model_info

    info = model_info(config.model)
    if info.spatial_dims != dataset.spatial_dims:
        raise ValueError(f"model {config.model!r} is {info.spatial_dims}D but dataset {config.dataset!r} is "
                         f"{dataset.spatial_dims}D; choose a {dataset.spatial_dims}D model "
                         f"(e.g. {'sre_r3d_18' if dataset.spatial_dims == 3 else 'sre_resnet18'})")
    kwargs: dict[str, Any] = dict(num_classes=dataset.n_classes, in_channels=dataset.n_channels,
                                  inplanes=config.width)
    if info.invariant:
        kwargs["sre_conv_size"] = list(config.sre_conv_size)
        if config.sre_k is not None:
            kwargs["sre_k"] = list(config.sre_k)
        if info.spatial_dims == 2:
            kwargs["skip_first_maxpool"] = True  # the official main.py always removes the stem max-pool
    return kwargs


def build_model(config: TrainConfig, dataset: Any) -> torch.nn.Module:
    """The registry model for ``dataset``'s channels, classes and dimensionality (see :func:`model_kwargs`)."""
    from sreconv.models.registry import create_model

    return create_model(config.model, **model_kwargs(config, dataset))


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def final_evaluation(model, datasets: dict[str, Dataset], config: TrainConfig, device) -> dict[str, Any]:
    """Validation and test metrics, plus rotation/flip sweeps on the test set when enabled."""
    from sreconv.data import normalized_fill

    amp = None if config.amp == "none" else config.amp
    kw = dict(batch_size=config.eval_batch_size, num_workers=config.num_workers, device=device, amp=amp)
    results: dict[str, Any] = {}
    if "val" in datasets:
        results["val"] = evaluate(model, datasets["val"], **kw)
    results["test"] = evaluate(model, datasets["test"], progress=config.progress, **kw)
    test = datasets["test"]
    if config.eval_rot:
        extra = {"axes": config.eval_axes} if test.spatial_dims == 3 else {}
        results["rotation"] = evaluate_rotations(
            model, test, angles=config.eval_angles, fill=normalized_fill(), mask=config.eval_mask,
            progress=config.progress, **extra, **kw)
    if config.eval_flip:
        results["flip"] = evaluate_flips(model, test, progress=config.progress, **kw)
    return results


def tuning_record(model: torch.nn.Module) -> list[dict[str, Any]]:
    """The tuner's choices for ``model``'s layers (``results.json``'s ``tuning``): for each layer geometry and
    input shape, train or eval, the path that ran and the candidates' measured milliseconds, so that a run's speed
    can be traced to the paths it took on its machine."""
    return [{"layer": list(c["layer"]), "input_shape": list(c["input_shape"]), "training": c["training"],
             "threads": c["threads"], "path": c["path"], "source": c["source"],
             "times_ms": {p: round(t, 3) for p, t in c["times_ms"].items()} if c["times_ms"] else None}
            for c in tuning.tuning_choices(model)]


def _fmt(v: float) -> str:
    return "  nan " if v != v else f"{v:.4f}"


def summary_table(results: dict[str, Any]) -> str:
    """Plain-text tables of the test metrics, accuracy per angle next to upright, and flips."""
    lines = [f"{results.get('model')} on {results.get('dataset')} ({results.get('params', 0):,} parameters)"]
    lines.append(f"{'split':<8}{'acc':>8}{'auc':>8}{'bal_acc':>9}{'f1':>8}")
    for split in ("val", "test"):
        if split in results:
            m = results[split]
            lines.append(f"{split:<8}{_fmt(m['acc']):>8}{_fmt(m['auc']):>8}{_fmt(m['balanced_acc']):>9}"
                         f"{_fmt(m['f1']):>8}")
    rot = results.get("rotation")
    if rot:
        blocks = {"": rot} if "angles" in rot else rot
        for axis, block in blocks.items():
            upright = block["acc"][0]
            title = f"rotation{' about ' + axis if axis else ''} (test): accuracy per angle vs upright"
            lines += ["", title, f"{'angle':>7}{'acc':>8}{'auc':>8}{'vs 0°':>9}"]
            for a, acc, auc in zip(block["angles"], block["acc"], block["auc"]):
                lines.append(f"{a:>7g}{_fmt(acc):>8}{_fmt(auc):>8}{acc - upright:>+9.4f}")
            lines.append(f"{'mean':>7}{_fmt(float(np.mean(block['acc']))):>8}"
                         f"{_fmt(float(np.nanmean(block['auc']))):>8}")
    flips = results.get("flip")
    if flips:
        lines += ["", "flips (test)", f"{'flip':<12}{'acc':>8}{'auc':>8}"]
        for mode, m in flips.items():
            lines.append(f"{mode:<12}{_fmt(m['acc']):>8}{_fmt(m['auc']):>8}")
    return "\n".join(lines)


def default_out_dir(config: TrainConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{config.dataset.lower()}-{config.model}-{stamp}")


def check_settings(config: TrainConfig) -> None:
    """Checks what can be checked from the settings alone, before any file is read or written.

    Raises:
        ValueError: an unknown model or dataset, a model of the wrong dimensionality for the data, or an
            option that does not apply to the data's dimensionality.
    """
    from sreconv.data import dataset_spatial_dims
    from sreconv.data.medmnist import FLAGS_2D, FLAGS_3D
    from sreconv.models.registry import model_info

    medmnist_flags = FLAGS_2D + FLAGS_3D
    config.validate()
    dims = dataset_spatial_dims(config.dataset)
    info = model_info(config.model)
    if info.spatial_dims != dims:
        raise ValueError(f"model {config.model!r} is {info.spatial_dims}D but dataset {config.dataset!r} is {dims}D; "
                         f"choose a {dims}D model (e.g. {'sre_r3d_18' if dims == 3 else 'sre_resnet18'})")
    if dims == 2 and config.eval_axes is not None:
        raise ValueError(f"--eval-axes applies to 3D data only; dataset {config.dataset!r} is 2D (2D rotations "
                         "are about the image centre)")
    if config.val_fraction is not None and config.dataset.lower() in medmnist_flags:
        raise ValueError(f"--val-fraction does not apply to {config.dataset}: MedMNIST has an official validation "
                         "split")
    if dims == 3 and config.image_size is not None:
        raise ValueError(f"--image-size applies to 2D data only; dataset {config.dataset!r} is 3D")
    if dims == 3 and config.train_rotation == "any":
        raise ValueError(f"--train-rot any is 2D only; for 3D dataset {config.dataset!r} use --train-rot rot90")


def _prepare_resume(config: TrainConfig, out: str) -> dict[str, Any]:
    """The checkpoint a resumed run continues from, after checking that the folder holds a run whose settings
    agree with ``config`` (nothing is written)."""
    from .checkpoint import CHECKPOINT_FILES, load_training_checkpoint
    from .config import load_yaml, resume_conflicts, saved_settings

    path = os.path.join(out, CHECKPOINT_FILES["last"])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--resume: no checkpoint {path}; is {out} a sreconv output folder?")
    ckpt = load_training_checkpoint(path)
    saved_path = os.path.join(out, "config.yaml")
    saved = TrainConfig.from_dict(load_yaml(saved_path) if os.path.isfile(saved_path)
                                  else saved_settings(ckpt["config"]),
                                  saved_path)
    conflicts = resume_conflicts(saved, config, int(ckpt["epoch"]))
    if conflicts:
        raise ValueError(f"--resume: these settings differ from {saved_path} and cannot change on resume: "
                         f"{'; '.join(conflicts)} (start a new run with another --out instead)")
    return ckpt


def run_train(config: TrainConfig, resume: bool = False, callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Trains and evaluates as configured; returns the results dict (the same on every rank).

    Args:
        config: the run's settings (``config.out`` is the folder; default ``runs/<dataset>-<model>-<time>``).
        resume: continue the run in ``config.out`` from its ``checkpoints/last.pt``; only the
            :data:`~sreconv.engine.config.RESUMABLE` settings may differ from its ``config.yaml``.
        callbacks: :class:`~sreconv.engine.train.Callback` objects passed to :func:`~sreconv.engine.train.fit`.

    Raises:
        ValueError, FileNotFoundError: bad settings or files, refused before anything is written.
        BlockingIOError: another process holds the output folder.
    """
    from .checkpoint import CHECKPOINT_FILES, RunLock
    from .runtime import seed_everything, setup_runtime
    from .train import fit

    check_settings(config)
    t0 = time.time()
    device = setup_runtime(config)
    lock = None
    try:
        main = dist_utils.is_main()
        if not config.out:
            if resume:
                raise ValueError("--resume needs the run's folder: --resume DIR (or --out DIR --resume)")
            config.out = dist_utils.broadcast_object(default_out_dir(config))
        out = config.out
        error = None
        if main:
            try:
                lock = RunLock(out).acquire()
                if not resume and os.path.isfile(os.path.join(out, CHECKPOINT_FILES["last"])):
                    raise ValueError(f"output folder {out} already holds a run; pass --resume to continue it "
                                     "or choose another --out")
            except (OSError, ValueError) as err:
                error = err
        failure = dist_utils.broadcast_object(None if error is None else str(error))
        if error is not None:
            raise error
        if failure is not None:
            raise ValueError(failure)
        ckpt = _prepare_resume(config, out) if resume else None
        seed_everything(config.seed)
        datasets = build_datasets(config)
        spec = {"name": config.model, "kwargs": model_kwargs(config, datasets["train"])}
        model = build_model(config, datasets["train"])
        if ckpt is not None:
            try:
                model.load_state_dict(ckpt["model"])
            except RuntimeError as err:
                first = " ".join(str(err).split())[:300]
                raise ValueError(f"--resume: the checkpoint of {out} does not fit model {config.model!r}: "
                                 f"{first}") from err
        model.to(device)
        # Same initial weights on every rank (seeded above); distinct augmentation streams per rank.
        seed_everything(config.seed + 7919 * dist_utils.rank())
        if main:
            atomic_write_text(dump_yaml(config), os.path.join(out, "config.yaml"))
            sizes = ", ".join(f"{k} {len(v)}" for k, v in datasets.items())
            print(f"{config.model} ({count_params(model):,} parameters) on {config.dataset} ({sizes}); "
                  f"{dist_utils.world_size()} process(es) on {device}; output in {out}", flush=True)
        fitted = fit(model, datasets["train"], datasets.get("val"), config, out_dir=out, device=device,
                     resume_from=ckpt, callbacks=callbacks, model_spec=spec)
        if config.save_best and fitted["best_path"]:
            model.load_state_dict(load_checkpoint(fitted["best_path"])["model"])
            evaluated, epochs = f"best validation epoch {fitted['best_epoch']}", fitted["best_epoch"]
        else:
            evaluated, epochs = f"last epoch {fitted['epoch']}", fitted["epoch"]
        results: dict[str, Any] = {
            "dataset": config.dataset.lower(),
            "model": config.model,
            "params": count_params(model),
            "task": datasets["test"].task,
            "weights": evaluated,
            "epochs": epochs,
            "world_size": dist_utils.world_size(),
            "ranks_in_sync": fitted["ranks_in_sync"],
        }
        results.update(final_evaluation(model, datasets, config, device))
        results["time_s"] = round(time.time() - t0, 1)
        results["tuning"] = tuning_record(model)
        if main:
            atomic_write_text(json.dumps(results, indent=2) + "\n", os.path.join(out, "results.json"))
            if config.save_model:
                atomic_save(model.state_dict(), os.path.join(out, "model.pt"))
            print("\n" + summary_table(results) + f"\n\nresults in {os.path.join(out, 'results.json')} "
                  f"({results['time_s']:.0f}s)", flush=True)
            for callback in callbacks:
                callback.on_run_end(results, out)
        dist_utils.barrier()
        return results
    finally:
        if lock is not None:
            lock.release()
        dist_utils.cleanup()


def run_eval(config: TrainConfig, checkpoint: str, split: str = "test", results_path: str | None = None,
             trusted: bool = False) -> dict[str, Any]:
    """Evaluates a checkpoint (training checkpoint, bare state_dict or official ``{"state_dict"}``).

    Args:
        config: settings that build the model and the data (from the checkpoint, the run's config.yaml or flags).
        checkpoint: the weights.
        split: ``'test'`` or ``'val'``.
        results_path: where to write the results JSON (None: print only).
        trusted: load a checkpoint that needs arbitrary code (see :func:`sreconv.serialization.load`).
    """
    from .runtime import setup_runtime

    check_settings(config)
    if split not in ("test", "val"):
        raise ValueError(f"--split must be test or val, got {split!r}")
    device = setup_runtime(config)
    try:
        state = model_state(load_checkpoint(checkpoint, trusted=trusted))
        datasets = build_datasets(config, train=False)
        if split == "val":
            datasets = {"test": datasets["val"]}
        else:
            datasets.pop("val")
        model = build_model(config, datasets["test"])
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).strip().splitlines()
            raise ValueError(f"checkpoint {checkpoint} does not fit model {config.model!r} built for "
                             f"{config.dataset!r}: {' '.join(s.strip() for s in first[:2])[:300]}") from err
        model.to(device)
        results: dict[str, Any] = {"dataset": config.dataset.lower(), "model": config.model,
                                   "params": count_params(model), "checkpoint": os.path.abspath(checkpoint),
                                   "split": split}
        ev = final_evaluation(model, datasets, config, device)
        results["test" if split == "test" else "val"] = ev.pop("test")
        results.update(ev)
        if dist_utils.is_main():
            print(summary_table(results), flush=True)
            if results_path:
                atomic_write_text(json.dumps(results, indent=2) + "\n", results_path)
                print(f"\nresults in {results_path}", flush=True)
        return results
    finally:
        dist_utils.cleanup()
