"""The resolved configuration of a training run: defaults < ``--config file.yaml`` < command-line flags.

:class:`TrainConfig` is a flat dataclass; its defaults are the paper's 2D recipe (SRE-ResNet-18 with kernels
``[9, 9, 5, 5]``, 100 epochs, batch 128, SGD lr 2e-2 momentum 0.9, cosine schedule). ``QUICKSTART`` is the
small preset ``sreconv train`` starts from when no dataset is given. The resolved config is written to
``<out>/config.yaml`` and stored in every checkpoint; a YAML file with the same keys can be passed back with
``--config``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from typing import Any

from sreconv.data.transforms import ROTATIONS

OPTIMIZERS = ("sgd", "adamw", "adam")
SCHEDULES = ("none", "cos", "step", "multi-step")
TRAIN_ROTATIONS = ROTATIONS  # the training pipelines' rotation augmentations
AMP_MODES = ("none", "fp16", "bf16")


@dataclass
class TrainConfig:
    """Every setting of a run. Field names are the long flags with ``-`` replaced by ``_``.

    Data:
        dataset: a name of ``sreconv.data.list_datasets()`` (MedMNIST flag, ``mnist5k``, ``fashion-mnist``,
            ``folder``).
        data_root: folder of the dataset files (default: the dataset's own default).
        medmnist_size: MedMNIST file variant (28, 64, 128, 224; 3D 28/64).
        image_size: side the 2D images are resized to; None = 32 for 28-pixel MedMNIST (as the paper),
            else the native size. Ignored in 3D.
        val_fraction: validation fraction for datasets without an official validation split.
        download: let ``medmnist`` download missing files.
        limit_train, limit_val, limit_test: use a fixed random subset of that many images (quick runs).
    Model:
        model: a name of ``sreconv.models.list_models()``.
        sre_conv_size: SRE kernel size per stage.
        sre_k: rings per stage (None = ``k//2 + 1``).
        width: channels of the stem / first stage (official ``--res-inplanes``).
        res_keep_conv1: stem takes the dataset's channel count (official flag). Without it gray images are
            repeated to 3 channels, as the official stem always took 3.
    Optimisation:
        epochs, batch_size, lr, momentum, weight_decay, optimizer, schedule, min_lr, warmup_epochs,
        step_size, gamma, milestones: see ``sreconv train --help``.
    Augmentation:
        moco_aug, translation, translate_ratio, train_flip_p: the paper's 2D augmentations; 3D runs always
        use the paper's 3D pipeline (affine + blur) when ``moco_aug`` is set.
        train_rotation: None, ``'any'`` (2D: uniform random angle) or ``'rot90'`` (random quarter turn).
    Runtime:
        seed, deterministic, amp, cudnn, device, num_workers, eval_batch_size, progress, log.
    Evaluation:
        eval_rot, eval_flip, eval_angles, eval_axes, eval_mask: rotation/flip evaluation of the final model.
    Output:
        out: output folder; save_model: write ``model.pt``; save_best: keep ``checkpoints/best.pt``
        (best validation accuracy) and evaluate it at the end; resume: continue from ``out``.
    """

    # data
    dataset: str = "mnist5k"
    data_root: str | None = None
    medmnist_size: int = 28
    image_size: int | None = None
    val_fraction: float | None = None
    download: bool = False
    limit_train: int | None = None
    limit_val: int | None = None
    limit_test: int | None = None
    # model
    model: str = "sre_resnet18"
    sre_conv_size: list[int] = field(default_factory=lambda: [9, 9, 5, 5])
    sre_k: list[int] | None = None
    width: int = 64
    res_keep_conv1: bool = False
    # optimisation
    epochs: int = 100
    batch_size: int = 128
    lr: float = 2e-2
    momentum: float = 0.9
    weight_decay: float = 1e-3
    optimizer: str = "sgd"
    schedule: str = "cos"
    min_lr: float = 1e-6
    warmup_epochs: int = 0
    step_size: int = 30
    gamma: float = 0.1
    milestones: list[int] = field(default_factory=lambda: [50, 75])
    # augmentation
    moco_aug: bool = False
    translation: bool = False
    translate_ratio: float = 0.2
    train_flip_p: float = 0.5
    train_rotation: str | None = None
    # runtime
    seed: int = 1
    deterministic: bool = False
    amp: str = "none"
    cudnn: bool = False
    device: str = "auto"
    num_workers: int = 0
    eval_batch_size: int = 256
    progress: bool = True
    log: bool = False
    # evaluation
    eval_rot: bool = False
    eval_flip: bool = False
    eval_angles: list[float] | None = None
    eval_axes: list[str] = field(default_factory=lambda: ["x", "y", "z"])
    eval_mask: bool = False
    # output
    out: str | None = None
    save_model: bool = False
    save_best: bool = False
    resume: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Builds a config from a dict, rejecting unknown keys with a one-line error."""
        config = cls()
        config.update(values, source)
        return config

    def update(self, values: dict[str, Any], source: str = "config") -> TrainConfig:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            import difflib

            hints = [f"{k!r} (did you mean {difflib.get_close_matches(k, known, 1)[0]!r}?)"
                     if difflib.get_close_matches(k, known, 1) else repr(k) for k in unknown]
            raise ValueError(f"{source}: unknown setting(s) {', '.join(hints)}")
        for key, value in values.items():
            setattr(self, key, value)
        return self

    def validate(self) -> TrainConfig:
        """Checks value ranges and choices; raises ValueError with a one-line message."""
        def positive(name, allow_none=False):
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name.replace('_', '-')} must be a positive integer, got {v!r}")

        for name in ("epochs", "batch_size", "width", "eval_batch_size", "medmnist_size", "step_size"):
            positive(name)
        for name in ("limit_train", "limit_val", "limit_test", "image_size"):
            positive(name, allow_none=True)
        if not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        for name in ("momentum", "weight_decay", "min_lr", "translate_ratio"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.train_flip_p <= 1.0:
            raise ValueError(f"train-flip-p must be in [0, 1], got {self.train_flip_p!r}")
        if self.warmup_epochs < 0 or self.num_workers < 0:
            raise ValueError("warmup-epochs and num-workers must be >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.train_rotation not in (None, *TRAIN_ROTATIONS):
            raise ValueError(f"train-rot must be one of {', '.join(TRAIN_ROTATIONS)} (or unset), got "
                             f"{self.train_rotation!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if not self.sre_conv_size or any(isinstance(k, bool) or not isinstance(k, int) or k < 1
                                         for k in self.sre_conv_size):
            raise ValueError(f"sre-conv-size-list must hold positive integers, got {self.sre_conv_size!r}")
        bad_axes = [a for a in self.eval_axes if a not in ("x", "y", "z")]
        if bad_axes or not self.eval_axes:
            raise ValueError(f"eval-axes must be among x, y, z, got {self.eval_axes!r}")
        if self.eval_angles is not None and not self.eval_angles:
            raise ValueError("eval-angles must not be empty")
        return self


#: ``sreconv train`` without a dataset: a compact SRE-ResNet on MNIST-5k, a few minutes on 2 CPU cores.
#: Measured on MNIST-5k after 3 epochs: AdamW 2e-3 with [5, 5, 3, 3] kernels reached 0.79 train accuracy,
#: SGD 5e-2 with the paper's [9, 9, 5, 5] 0.51, at about half the time per epoch. 15 epochs: 140 s on 2 cores,
#: test accuracy 0.942 upright and at every multiple of 90 degrees, 0.774 at 45, 0.83 mean over 24 angles.
QUICKSTART: dict[str, Any] = dict(
    dataset="mnist5k",
    model="sre_resnet18",
    width=16,
    sre_conv_size=[5, 5, 3, 3],
    res_keep_conv1=True,
    epochs=15,
    batch_size=64,
    optimizer="adamw",
    lr=2e-3,
    weight_decay=1e-4,
    schedule="cos",
    train_flip_p=0.0,
    eval_rot=True,
    eval_angles=[float(a) for a in range(0, 360, 15)],
)


#: Official ``main.py`` names accepted as keys of a ``--config`` file, as on the command line.
ALIASES = {
    "med_mnist": "dataset",
    "model_type": "model",
    "sre_conv_size_list": "sre_conv_size",
    "ri_conv_size_list": "sre_conv_size",
    "sre_conv_k": "sre_k",
    "res_inplanes": "width",
    "test_batch_size": "eval_batch_size",
}


def load_yaml(path: str) -> dict[str, Any]:
    """Reads a YAML mapping (``--config``); one-line errors for missing or malformed files."""
    import yaml

    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} not found")
    try:
        with open(path) as f:
            values = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ValueError(f"config file {path} is not valid YAML ({str(err).splitlines()[0]})") from err
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold a mapping of settings, got {type(values).__name__}")
    keys = [str(k).replace("-", "_") for k in values]
    return {ALIASES.get(k, k): v for k, v in zip(keys, values.values())}


def dump_yaml(config: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False)
