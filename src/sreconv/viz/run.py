"""Rebuilding a trained model and its test set from a ``sreconv train`` output folder or a checkpoint.

Everything is delegated to the engine (:mod:`sreconv.engine.runner` builds datasets and models from a
:class:`~sreconv.engine.config.TrainConfig`, :mod:`sreconv.engine.checkpoint` reads checkpoints); this module
only decides which files of a run folder to use.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["LoadedRun", "load_run", "read_results", "VizError"]


class VizError(ValueError):
    """Bad input to a visualisation command (missing run, index out of range, unsupported method...)."""


def read_results(path: str) -> dict[str, Any]:
    """Reads a ``results.json`` (or the one inside a run folder)."""
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    if not os.path.isfile(path):
        raise VizError(f"results file {path} not found")
    try:
        with open(path) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise VizError(f"results file {path} is not valid JSON ({err})") from err
    if not isinstance(results, dict):
        raise VizError(f"results file {path} must hold a JSON object")
    return results


@dataclass
class LoadedRun:
    """A trained model in eval mode on the CPU, with the configuration that built it.

    Attributes:
        model: the network (eval mode).
        config: the run's :class:`~sreconv.engine.config.TrainConfig`.
        checkpoint: path of the weights.
        run_dir: the output folder, or None when loaded from a bare checkpoint.
        results: the run's ``results.json`` when present.
    """

    model: torch.nn.Module
    config: Any
    checkpoint: str
    run_dir: str | None = None
    results: dict[str, Any] | None = None
    _test: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """A short label: the folder name, else ``model (dataset)``."""
        if self.run_dir:
            return os.path.basename(os.path.normpath(self.run_dir))
        return f"{self.config.model} ({self.config.dataset})"

    @property
    def spatial_dims(self) -> int:
        return int(getattr(self.model, "spatial_dims", 2))

    def test_set(self):
        """The run's test set with its evaluation transform (and ``--limit-test`` subset), built once."""
        if self._test is None:
            from sreconv.engine.runner import build_datasets

            self._test = build_datasets(self.config, train=False)["test"]
        return self._test

    def sample(self, index: int) -> tuple[torch.Tensor, Any]:
        """Test image ``index`` (normalised, ``(C, *S)``) and its label.

        Raises:
            VizError: ``index`` is out of range.
        """
        test = self.test_set()
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(test):
            raise VizError(
                f"index {index} out of range: the test set of {self.name} has {len(test)} images "
                f"(0..{len(test) - 1})"
            )
        return test[index]

    def label_names(self):
        return list(getattr(self.test_set(), "label_names", []))


def load_run(run_dir: str | None = None, checkpoint: str | None = None) -> LoadedRun:
    """Rebuilds the model of a run folder (``--run``) or of a checkpoint file (``--checkpoint``).

    The configuration comes from the checkpoint (training checkpoints store it), else from the run folder's
    ``config.yaml``; the model is built by :func:`sreconv.engine.runner.build_model` for the run's test set.

    Args:
        run_dir: a ``sreconv train --out`` folder.
        checkpoint: a checkpoint file; with ``run_dir`` it overrides the folder's choice.

    Raises:
        VizError: missing folder/file, no usable configuration, or weights that do not fit.
    """
    from sreconv.engine.checkpoint import find_checkpoint, load_checkpoint
    from sreconv.engine.config import TrainConfig, load_yaml, saved_settings
    from sreconv.engine.runner import build_datasets, build_model
    from sreconv.serialization import UnsafeCheckpointError, model_state

    if run_dir is None and checkpoint is None:
        raise VizError("give --run DIR (a sreconv train output folder) or --checkpoint FILE.pt")
    if checkpoint is None:
        checkpoint = find_checkpoint(run_dir)
    elif not os.path.isfile(checkpoint):
        raise VizError(f"checkpoint {checkpoint} not found")
    if run_dir is not None and not os.path.isdir(run_dir):
        raise VizError(f"run folder {run_dir} not found")
    if run_dir is None:
        # A checkpoint inside <run>/checkpoints/ belongs to that run (its config.yaml and results.json).
        parent = os.path.dirname(os.path.dirname(os.path.abspath(checkpoint)))
        if os.path.isfile(os.path.join(parent, "config.yaml")):
            run_dir = parent
    try:
        ckpt = load_checkpoint(checkpoint)
    except UnsafeCheckpointError:
        raise VizError(f"checkpoint {checkpoint} needs arbitrary code to load, so it was not loaded; the "
                       "visualisations read checkpoints written by sreconv train") from None
    values: dict[str, Any] = {}
    if isinstance(ckpt, dict) and isinstance(ckpt.get("config"), dict):
        values.update(saved_settings(ckpt["config"]))
    elif run_dir and os.path.isfile(os.path.join(run_dir, "config.yaml")):
        values.update(load_yaml(os.path.join(run_dir, "config.yaml")))
    else:
        raise VizError(
            f"checkpoint {checkpoint} holds no configuration and no config.yaml is next to it; "
            "use a checkpoint written by sreconv train"
        )
    # Visualisation runs on the CPU, single process, without progress bars.
    values.update({"device": "cpu", "progress": False, "num_workers": 0})
    config = TrainConfig.from_dict(values, "checkpoint config").validate()
    test = build_datasets(config, train=False)["test"]
    model = build_model(config, test)
    try:
        model.load_state_dict(model_state(ckpt))
    except RuntimeError as err:
        first = " ".join(str(err).split())[:300]
        raise VizError(f"checkpoint {checkpoint} does not fit model {config.model!r}: {first}") from err
    model.eval()
    results = None
    if run_dir and os.path.isfile(os.path.join(run_dir, "results.json")):
        results = read_results(run_dir)
    return LoadedRun(
        model=model, config=config, checkpoint=checkpoint, run_dir=run_dir, results=results, _test=test
    )
