"""The resolved configuration of a training run: defaults < ``--config file.yaml`` < command-line flags.

:class:`TrainConfig` is a flat dataclass; its defaults are the paper's 2D recipe (SRE-ResNet-18 with kernels
``[9, 9, 5, 5]``, 100 epochs, batch 128, SGD lr 2e-2 momentum 0.9, cosine schedule). Every field carries its
help text, group and command-line spellings in its metadata, so the ``sreconv train`` flags are generated from
the dataclass (one place for a setting, its default and its description). ``QUICKSTART`` is the small preset
``sreconv train`` starts from when no dataset is given. The resolved config is written to ``<out>/config.yaml``
and stored in every checkpoint; a YAML file with the same keys can be passed back with ``--config``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sreconv.data.transforms import ROTATIONS

OPTIMIZERS = ("sgd", "adamw", "adam")
SCHEDULES = ("none", "cos", "step", "multi-step")
AMP_MODES = ("none", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda")
AXES = ("x", "y", "z")

#: Settings a resumed run may change: they affect neither the weights so far nor how training continues
#: (``epochs`` may only grow: it extends the run, see :func:`resume_conflicts`).
RESUMABLE = frozenset({
    "epochs", "device", "num_workers", "progress", "eval_batch_size", "eval_rot", "eval_flip", "eval_angles",
    "eval_axes", "eval_mask", "save_model", "limit_test", "download", "data_root", "cudnn", "log",
})


#: Keys older sreconv versions wrote into config.yaml and checkpoints; ignored when read back.
RETIRED = frozenset({"resume"})


def setting(default: Any, help: str, *, group: str, flags: Sequence[str] = (), choices: Sequence[Any] | None = None,
            metavar: str | None = None, nargs: str | None = None, element: type | None = None) -> Any:
    """A :class:`TrainConfig` field with its command-line description.

    Args:
        default: the default value (lists are copied per instance).
        help: one line for ``--help`` (the default is appended there).
        group: the ``--help`` section.
        flags: extra spellings (official ``main.py`` names); the main one is ``--field-name``.
        choices: allowed values.
        metavar: placeholder in ``--help``.
        nargs: ``'+'`` for list settings.
        element: type of one value (default: the default's type).
    """
    meta = dict(help=help, group=group, flags=tuple(flags), choices=choices, metavar=metavar, nargs=nargs,
                element=element)
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Every setting of a run. Field names are the long flags with ``-`` replaced by ``_``.

    ``sreconv train --help`` lists them by group with their defaults; the metadata of each field holds its help.
    """

    # data
    dataset: str = setting("mnist5k", "a MedMNIST flag, mnist5k, fashion-mnist or folder", group="data",
                           flags=("--med-mnist",), metavar="NAME")
    data_root: str | None = setting(None, "folder of the dataset files (default: the dataset's own)", group="data",
                                    metavar="DIR", element=str)
    medmnist_size: int = setting(28, "MedMNIST file variant: 28, 64, 128 or 224 (3D: 28 or 64)", group="data",
                                 metavar="N")
    image_size: int | None = setting(None, "resize 2D images to N (unset: 32 for 28-pixel MedMNIST as the paper, "
                                     "else native)", group="data", metavar="N", element=int)
    val_fraction: float | None = setting(None, "validation fraction in (0, 1) for datasets without a validation "
                                         "split (unset: the dataset's default)", group="data", metavar="F",
                                         element=float)
    download: bool = setting(False, "let medmnist download missing files", group="data")
    limit_train: int | None = setting(None, "use a fixed random subset of N training images", group="data",
                                      metavar="N", element=int)
    limit_val: int | None = setting(None, "use a fixed random subset of N validation images", group="data",
                                    metavar="N", element=int)
    limit_test: int | None = setting(None, "use a fixed random subset of N test images", group="data", metavar="N",
                                     element=int)
    # model
    model: str = setting("sre_resnet18", "registry name (sreconv models lists them)", group="model",
                         flags=("--model-type",), metavar="NAME")
    sre_conv_size: list[int] = setting([9, 9, 5, 5], "SRE kernel size per stage", group="model",
                                       flags=("--sre-conv-size-list", "--ri-conv-size-list"), metavar="K", nargs="+",
                                       element=int)
    sre_k: list[int] | None = setting(None, "rings per stage (unset: k//2 + 1)", group="model",
                                      flags=("--sre-conv-k",), metavar="R", nargs="+", element=int)
    width: int = setting(64, "channels of the stem and the first stage", group="model", flags=("--res-inplanes",),
                         metavar="C")
    res_keep_conv1: bool = setting(False, "the stem takes the data's channel count; without it gray images are "
                                   "repeated to 3 channels, as the official stem always took 3", group="model")
    # optimisation
    epochs: int = setting(100, "training epochs", group="optimisation", metavar="N")
    batch_size: int = setting(128, "per-process batch size", group="optimisation", flags=("-b",), metavar="N")
    lr: float = setting(2e-2, "base learning rate", group="optimisation", metavar="LR")
    momentum: float = setting(0.9, "SGD momentum", group="optimisation", metavar="M")
    weight_decay: float = setting(1e-3, "weight decay (official default)", group="optimisation", metavar="WD")
    optimizer: str = setting("sgd", "optimizer (shortcuts: --sgd, --adamw, --adam)", group="optimisation",
                             choices=OPTIMIZERS)
    schedule: str = setting("cos", "learning-rate schedule (shortcuts: --cos, --step, --multi-step)",
                            group="optimisation", choices=SCHEDULES)
    min_lr: float = setting(1e-6, "final lr of the cosine schedule", group="optimisation", metavar="LR")
    warmup_epochs: int = setting(0, "linear warm-up epochs", group="optimisation", metavar="N")
    step_size: int = setting(30, "epochs between decays of --schedule step", group="optimisation", metavar="N")
    gamma: float = setting(0.1, "decay factor of the step and multi-step schedules", group="optimisation",
                           metavar="G")
    milestones: list[int] = setting([50, 75], "epochs of the multi-step decays", group="optimisation", metavar="E",
                                    nargs="+", element=int)
    # augmentation
    moco_aug: bool = setting(False, "2D: random resized crop + colour jitter; 3D: random affine + blur (the "
                             "paper's augmentations)", group="augmentation")
    translation: bool = setting(False, "2D random translation by --translate-ratio", group="augmentation")
    translate_ratio: float = setting(0.2, "maximal translation as a fraction of the size (official default)",
                                     group="augmentation", metavar="F")
    train_flip_p: float = setting(0.5, "probability of random horizontal and vertical flips (official default)",
                                  group="augmentation", metavar="P")
    train_rotation: str | None = setting(None, "random rotation of every training image: 'any' angle (2D, "
                                         "bilinear) or a quarter turn ('rot90'); unset: none", group="augmentation",
                                         flags=("--train-rot",), choices=ROTATIONS, element=str)
    # runtime
    seed: int = setting(1, "random seed", group="runtime", metavar="S")
    deterministic: bool = setting(False, "deterministic algorithms (bit-exact resume)", group="runtime")
    amp: str = setting("none", "mixed precision: fp16 (CUDA only) or bf16 (CUDA or CPU); shortcut --bf16",
                       group="runtime", choices=AMP_MODES)
    cudnn: bool = setting(False, "official flag: set cudnn.benchmark (ignored with --deterministic)",
                          group="runtime")
    device: str = setting("auto", "auto = CUDA if available", group="runtime", choices=DEVICES)
    num_workers: int = setting(0, "data loader workers", group="runtime", metavar="N")
    eval_batch_size: int = setting(256, "evaluation batch size", group="runtime", flags=("--test-batch-size",),
                                   metavar="N")
    progress: bool = setting(True, "tqdm progress bars", group="runtime")
    log: bool = setting(False, "official flag: also write steps.jsonl (loss and lr per step)", group="runtime")
    # evaluation
    eval_rot: bool = setting(False, "evaluate the test set rotated by each angle", group="evaluation")
    eval_flip: bool = setting(False, "evaluate the test set flipped", group="evaluation")
    eval_angles: list[float] | None = setting(None, "rotation angles in degrees (unset: 0..350 step 10 in 2D, "
                                              "0..330 step 30 in 3D)", group="evaluation", metavar="DEG",
                                              nargs="+", element=float)
    eval_axes: list[str] | None = setting(None, "3D rotation axes (unset: x y z)", group="evaluation", nargs="+",
                                          choices=AXES, element=str)
    eval_mask: bool = setting(False, "mask all test images to their inscribed disc/ball", group="evaluation")
    # output
    out: str | None = setting(None, "output folder (unset: runs/<dataset>-<model>-<time>)", group="output",
                              metavar="DIR", element=str)
    save_model: bool = setting(False, "write the evaluated weights to DIR/model.pt", group="output")
    save_best: bool = setting(False, "keep checkpoints/best.pt (best validation accuracy) and evaluate it instead "
                              "of the last epoch", group="output")

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
            hints = [f"{k!r} (did you mean {difflib.get_close_matches(k, known, 1)[0]!r}?)"
                     if difflib.get_close_matches(k, known, 1) else repr(k) for k in unknown]
            raise ValueError(f"{source}: unknown setting(s) {', '.join(hints)}")
        for key, value in values.items():
            setattr(self, key, value)
        return self

    def validate(self) -> TrainConfig:
        """Checks types, ranges and choices; raises ValueError with a one-line message naming the flag."""
        for name in ("epochs", "batch_size", "width", "eval_batch_size", "medmnist_size", "step_size"):
            _positive_int(self, name)
        for name in ("limit_train", "limit_val", "limit_test", "image_size"):
            _positive_int(self, name, allow_none=True)
        for name in ("warmup_epochs", "num_workers", "seed"):
            _int_at_least(self, name, 0)
        for name in ("lr", "momentum", "weight_decay", "min_lr", "translate_ratio", "gamma", "train_flip_p"):
            _finite_number(self, name)
        if not self.lr > 0:
            raise ValueError(f"{_flag('lr')} must be > 0, got {self.lr!r}")
        for name in ("momentum", "weight_decay", "min_lr", "translate_ratio", "gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"{_flag(name)} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.train_flip_p <= 1.0:
            raise ValueError(f"{_flag('train_flip_p')} must be in [0, 1], got {self.train_flip_p!r}")
        if self.val_fraction is not None:
            _finite_number(self, "val_fraction")
            if not 0.0 < self.val_fraction < 1.0:
                raise ValueError(f"{_flag('val_fraction')} must be in (0, 1), got {self.val_fraction!r}")
        for f in fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices is None:
                continue
            values = value if isinstance(value, list) else [value]
            if value is None and f.default is None:
                continue
            bad = [v for v in values if v not in choices]
            if bad or (isinstance(value, list) and not value):
                raise ValueError(f"{_flag(f.name)} must be {'among' if isinstance(value, list) else 'one of'} "
                                 f"{', '.join(map(str, choices))}, got {value!r}")
        for name in ("sre_conv_size", "sre_k", "milestones"):
            value = getattr(self, name)
            if value is None and name == "sre_k":
                continue
            if not isinstance(value, list) or not value or any(
                    isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in value):
                raise ValueError(f"{_flag(name)} must hold positive integers, got {value!r}")
        if self.eval_angles is not None:
            if not isinstance(self.eval_angles, list) or not self.eval_angles:
                raise ValueError(f"{_flag('eval_angles')} must list at least one angle, got {self.eval_angles!r}")
            bad = [a for a in self.eval_angles
                   if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a)]
            if bad:
                raise ValueError(f"{_flag('eval_angles')} must be finite numbers of degrees, got {bad[0]!r}")
        for name in ("dataset", "model"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{_flag(name)} must be a non-empty name, got {getattr(self, name)!r}")
        return self


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _positive_int(config: TrainConfig, name: str, allow_none: bool = False) -> None:
    value = getattr(config, name)
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{_flag(name)} must be a positive integer, got {value!r}")


def _int_at_least(config: TrainConfig, name: str, minimum: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{_flag(name)} must be an integer >= {minimum}, got {value!r}")


def _finite_number(config: TrainConfig, name: str) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{_flag(name)} must be a finite number, got {value!r}")


def resume_conflicts(saved: TrainConfig, requested: TrainConfig, completed_epochs: int) -> list[str]:
    """Why ``requested`` cannot continue the run of ``saved``: one entry per conflicting setting (empty: fine).

    Only :data:`RESUMABLE` settings may change; ``epochs`` may not drop below the epochs already completed.
    """
    conflicts = []
    for f in fields(saved):
        before, after = getattr(saved, f.name), getattr(requested, f.name)
        if before != after and f.name not in RESUMABLE and f.name != "out":
            conflicts.append(f"{_flag(f.name)} {before!r} -> {after!r}")
    if requested.epochs < completed_epochs:
        conflicts.append(f"{_flag('epochs')} {requested.epochs} is fewer than the {completed_epochs} epochs the run "
                         "has completed")
    return conflicts


#: ``sreconv train`` without a dataset: a compact SRE-ResNet on MNIST-5k, a few minutes on 2 CPU cores.
#: Measured on MNIST-5k after 3 epochs: AdamW 2e-3 with [5, 5, 3, 3] kernels reached 0.79 train accuracy,
#: SGD 5e-2 with the paper's [9, 9, 5, 5] 0.51, at about half the time per epoch. 15 epochs (README: time and
#: accuracy of the latest run): 0.935 upright and at every multiple of 90 degrees, 0.769 at 45, 0.83 over 24 angles.
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
    flag[2:].replace("-", "_"): f.name
    for f in fields(TrainConfig) for flag in f.metadata["flags"] if flag.startswith("--")
}


def load_yaml(path: str) -> dict[str, Any]:
    """Reads a YAML mapping (``--config``); one-line errors for missing or malformed files."""
    import yaml

    if os.path.isdir(path):
        raise FileNotFoundError(f"config file {path} is a folder, not a file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} not found")
    try:
        with open(path) as f:
            values = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f"config file {path} is not valid YAML ({str(err).splitlines()[0]})") from err
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold a mapping of settings, got {type(values).__name__}")
    keys = [str(k).replace("-", "_") for k in values]
    return saved_settings({ALIASES.get(k, k): v for k, v in zip(keys, values.values())})


def saved_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Settings read back from a file (config.yaml, a checkpoint), without the :data:`RETIRED` keys."""
    return {k: v for k, v in values.items() if k not in RETIRED}


def dump_yaml(config: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False)
