"""The budget and options of one comparison: a typed, validated dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["CompareConfig", "OPTIMIZERS", "SCORING_VERSION"]

OPTIMIZERS = ("sgd", "adamw", "adam")
#: Bumped when the scored views change, so that results of another scoring are not mixed on resume
#: (2: bicubic views added beside the bilinear ones).
SCORING_VERSION = 2


def _default_models() -> list[str]:
    from .entries import DEFAULT_MODELS

    return list(DEFAULT_MODELS)


@dataclass
class CompareConfig:
    """Everything a comparison depends on; every model is trained and scored under the same budget.

    Attributes:
        dataset: ``fashion-mnist``, ``mnist5k`` or a 2D MedMNIST flag.
        data_root: folder of the dataset files (None: the dataset's own default).
        medmnist_size: MedMNIST file variant (28, 64, 128, 224).
        image_size: side the images are resized to (None: native, e.g. 28).
        models: entry labels (:data:`~sreconv_bench.compare.entries.ENTRIES`) or registry names.
        width: channels of the stem / first stage of every model.
        sre_conv_size: per-stage kernel sizes of the SRE and GMR models (4 odd ints).
        epochs, batch_size, optimizer, lr, weight_decay: the training budget (cosine schedule).
        limit_train: fixed random training subset (0 = all).
        limit_test: fixed random test subset (0 = all).
        seeds: one training run per seed and model.
        angle_step: rotation sweep step in degrees (10: 36 angles).
        eval_batch_size: batch size of the scoring passes.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        threads: torch CPU threads (0: torch's default).
        out: folder of ``results.json``, ``report.md`` and the plot.
        restart: ignore the runs already in ``out/results.json``.
        plot: write ``accuracy_vs_angle.png``.
        quiet: no per-epoch lines.
    """

    dataset: str = "fashion-mnist"
    data_root: str | None = None
    medmnist_size: int = 28
    image_size: int | None = None
    models: list[str] = field(default_factory=_default_models)
    width: int = 16
    sre_conv_size: list[int] = field(default_factory=lambda: [5, 5, 3, 3])
    epochs: int = 8
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    limit_train: int = 4000
    limit_test: int = 500
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    angle_step: float = 10.0
    eval_batch_size: int = 250
    device: str = "auto"
    threads: int = 0
    out: str = "benchmarks/robustness"
    restart: bool = False
    plot: bool = True
    quiet: bool = False

    def validate(self) -> CompareConfig:
        """Checks every field; raises ``ValueError`` with a one-line message naming the field.

        Example:
            >>> CompareConfig(epochs=0).validate()
            Traceback (most recent call last):
            ...
            ValueError: epochs must be an int >= 1, got 0
        """
        for name in ("width", "epochs", "batch_size", "eval_batch_size", "medmnist_size"):
            _check_int(name, getattr(self, name), 1)
        for name in ("limit_train", "limit_test", "threads"):
            _check_int(name, getattr(self, name), 0, " (0 = all)" if name.startswith("limit") else " (0 = default)")
        if self.image_size is not None:
            _check_int("image_size", self.image_size, 1, " or None (native size)")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset must be a dataset name such as 'fashion-mnist', got {self.dataset!r}")
        if not isinstance(self.models, (list, tuple)) or not self.models or not all(
                isinstance(m, str) and m for m in self.models):
            raise ValueError(f"models must be a non-empty list of entry labels or registry names, got {self.models!r}")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models must not repeat a label, got {self.models!r}")
        if (not isinstance(self.sre_conv_size, (list, tuple)) or len(self.sre_conv_size) != 4 or not all(
                isinstance(k, int) and not isinstance(k, bool) and k >= 1 and k % 2 == 1 for k in self.sre_conv_size)):
            raise ValueError(f"sre_conv_size must be 4 odd positive ints (one kernel size per stage), "
                             f"got {self.sre_conv_size!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in ("lr", "angle_step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.angle_step > 360:
            raise ValueError(f"angle_step must be at most 360 degrees, got {self.angle_step!r}")
        if (isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float))
                or self.weight_decay < 0):
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not isinstance(self.seeds, (list, tuple)) or not self.seeds or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in self.seeds):
            raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {self.seeds!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must not repeat, got {self.seeds!r}")
        if not isinstance(self.device, str) or not (self.device in ("auto", "cpu", "cuda")
                                                    or self.device.startswith("cuda:")):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if not isinstance(self.out, str) or not self.out:
            raise ValueError(f"out must be a folder path, got {self.out!r}")
        for name in ("restart", "plot", "quiet"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        return self

    def budget(self) -> dict[str, Any]:
        """What makes runs comparable (two results files can be merged only if these agree, seeds aside)."""
        return dict(dataset=self.dataset, limit_train=self.limit_train or "all", limit_test=self.limit_test or "all",
                    image_size=self.image_size or "native", width=self.width, epochs=self.epochs,
                    batch_size=self.batch_size, optimizer=self.optimizer, lr=self.lr,
                    weight_decay=self.weight_decay, schedule="cos", sre_conv_size=list(self.sre_conv_size),
                    angle_step=self.angle_step, scoring=SCORING_VERSION, seeds=list(self.seeds))

    def command_line(self) -> str:
        """The ``sreconv compare`` command that reproduces this comparison."""
        parts = ["sreconv compare", f"--dataset {self.dataset}", f"--models {' '.join(self.models)}",
                 f"--width {self.width}", f"--sre-conv-size {' '.join(map(str, self.sre_conv_size))}",
                 f"--epochs {self.epochs}", f"--batch-size {self.batch_size}", f"--optimizer {self.optimizer}",
                 f"--lr {self.lr:g}", f"--weight-decay {self.weight_decay:g}", f"--limit-train {self.limit_train}",
                 f"--limit-test {self.limit_test}", f"--seeds {' '.join(map(str, self.seeds))}",
                 f"--angle-step {self.angle_step:g}", f"--out {self.out}"]
        if self.image_size:
            parts.append(f"--image-size {self.image_size}")
        if self.data_root:
            parts.append(f"--data-root {self.data_root}")
        if self.dataset in _medmnist_flags() and self.medmnist_size != 28:
            parts.append(f"--medmnist-size {self.medmnist_size}")
        return " ".join(parts)

    def replace(self, **changes: Any) -> CompareConfig:
        """A copy with ``changes`` applied (unknown names raise ``TypeError``)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of the fields, in declaration order."""
        return [f.name for f in fields(cls)]


def _medmnist_flags() -> tuple[str, ...]:
    from sreconv.data.medmnist import FLAGS_2D

    return tuple(FLAGS_2D)


def _check_int(name: str, value: Any, minimum: int, note: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}{note}, got {value!r}")
