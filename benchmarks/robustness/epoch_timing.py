"""Training time per epoch of compare entries, measured side by side: epochs of every entry interleaved in one
process (round-robin), median over the rounds, ratio to the first entry.

On a shared machine sequential runs are not comparable; interleaving puts every entry under the same load.
Each entry trains on exactly its ``sreconv compare`` pipeline (same data, augmentation, batch, optimizer).
``--clock cpu`` measures the process's CPU time instead of the wall clock: with ``--threads 1`` that is what
the training costs, nearly independent of what else runs on the machine.

Usage (from the repository root)::

    python benchmarks/robustness/epoch_timing.py e2cnn_rotaug sre_d4_rotaug --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import torch

from sreconv.engine.config import TrainConfig
from sreconv.engine.train import fit
from sreconv_bench.compare import CompareConfig, build_entry_model, resolve_entry
from sreconv_bench.compare.data import compare_datasets


def epoch_times(labels: list[str], rounds: int, config: CompareConfig, clock: str = "wall") -> dict[str, list[float]]:
    """Seconds per training epoch of every entry, one epoch per entry per round (wall or CPU time)."""
    timer = time.process_time if clock == "cpu" else time.perf_counter
    jobs = []
    for label in labels:
        entry = resolve_entry(label)
        data = compare_datasets(config, entry.rotation_aug)
        torch.manual_seed(0)
        model = build_entry_model(entry, data["test"].n_classes, data["test"].n_channels, config.width,
                                  config.sre_conv_size)
        jobs.append((label, model, data["train"]))
    train_config = TrainConfig(dataset=config.dataset, epochs=1, batch_size=config.batch_size, lr=config.lr,
                               optimizer=config.optimizer, weight_decay=config.weight_decay, schedule="cos",
                               progress=False, device="cpu")
    times: dict[str, list[float]] = {label: [] for label in labels}
    for _ in range(rounds):
        for label, model, train in jobs:
            t0 = timer()
            fit(model, train, None, train_config, device=torch.device("cpu"), verbose=False)
            times[label].append(timer() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("entries", nargs="+", help="compare entries or registry names; the first is the reference")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="e2cnn")
    times = epoch_times(args.entries, args.rounds, CompareConfig(seeds=[0]).validate(), args.clock)
    reference = statistics.median(times[args.entries[0]])
    print(f"| entry | {args.clock} s/epoch (median of {args.rounds}) | all rounds | ratio to {args.entries[0]} |")
    print("|---|---|---|---|")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"| {label} | {median:.2f} | {' '.join(f'{v:.2f}' for v in values)} | {median / reference:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
