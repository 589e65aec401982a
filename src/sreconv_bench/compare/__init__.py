"""``sreconv compare``: the rotation-robustness benchmark, one command, one fixed budget.

Trains several models under the same budget (epochs, batch, optimizer, seed, train-set size) and the same
data pipeline (:func:`sreconv.engine.runner.build_datasets`, :func:`sreconv.engine.train.fit`), then scores
every one on the same test images upright, rotated by 0, 10, ..., 350 degrees (bilinear and bicubic), at 45
degrees and flipped, and writes ``results.json``, ``report.md`` (tables with mean ± std over seeds, the
targets, per-class accuracy) and ``accuracy_vs_angle.png`` into ``out``. Runs already in ``out/results.json``
with the same budget are kept, so a killed comparison resumes.

Modules: :mod:`.config` (:class:`CompareConfig`), :mod:`.entries` (the compared models), :mod:`.data`,
:mod:`.scoring` (views and metrics), :mod:`.run` (:func:`run_compare`), :mod:`.report`, :mod:`.targets` and
:mod:`.command` (the ``sreconv compare`` command).

Example:
    >>> from sreconv_bench.compare import CompareConfig, run_compare
    >>> config = CompareConfig(models=["cnn", "sre_d4_rotaug"], seeds=[0], out="runs/compare")
    >>> results = run_compare(config)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

# Names -> defining module, imported on first use: the command module (and ``sreconv --help``) must not pay
# for torch.
_EXPORTS = {
    "CompareConfig": "config", "OPTIMIZERS": "config",
    "DEFAULT_MODELS": "entries", "ENTRIES": "entries", "Entry": "entries", "build_entry_model": "entries",
    "entry_available": "entries", "resolve_entry": "entries",
    "COLUMNS": "report", "format_per_class": "report", "format_table": "report", "plot_results": "report",
    "write_outputs": "report",
    "run_compare": "run", "run_one": "run",
    "TARGETS": "targets", "check_targets": "targets", "format_targets": "targets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
